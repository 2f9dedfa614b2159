//! The compact binary value format: a format-version byte, then fields as LEB128 varints and
//! length-prefixed byte strings. Decoding never panics: short or malformed input is an error.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record ends early (needed {needed} more bytes at offset {at})")]
    Short { at: usize, needed: usize },
    #[error("varint at offset {at} is too long")]
    VarintOverflow { at: usize },
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    #[error("bad field value at offset {at}: {what}")]
    Bad { at: usize, what: &'static str },
}

#[derive(Default, Debug)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_version(version: u8) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.push(version);
        Self { buf }
    }

    pub fn u64(&mut self, mut v: u64) -> &mut Self {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return self;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// Signed values, zig-zag encoded.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(((v << 1) ^ (v >> 63)) as u64)
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading; returns the format-version byte alongside.
    pub fn new(buf: &'a [u8]) -> Result<(u8, Self), DecodeError> {
        let (&version, _) = buf
            .split_first()
            .ok_or(DecodeError::Short { at: 0, needed: 1 })?;
        Ok((version, Self { buf, pos: 1 }))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(DecodeError::Short {
                at: self.pos,
                needed: 1,
            })?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::VarintOverflow { at: start })
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        u32::try_from(self.u64()?).map_err(|_| DecodeError::Bad {
            at,
            what: "u32 out of range",
        })
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u64()?).map_err(|_| DecodeError::Bad {
            at: self.pos,
            what: "length",
        })?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or(DecodeError::Short {
                at: self.pos,
                needed: len,
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = Writer::with_version(3);
        w.u64(0)
            .u64(300)
            .u64(u64::MAX)
            .i64(-5)
            .i64(i64::MIN)
            .str("héllo")
            .bytes(&[]);
        let buf = w.finish();
        let (v, mut r) = Reader::new(&buf).unwrap();
        assert_eq!(v, 3);
        assert_eq!(r.u64().unwrap(), 0);
        assert_eq!(r.u64().unwrap(), 300);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.i64().unwrap(), i64::MIN);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.bytes().unwrap(), b"");
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut w = Writer::with_version(1);
        w.str("abcdef");
        let buf = w.finish();
        for cut in 0..buf.len() {
            let Ok((_, mut r)) = Reader::new(&buf[..cut]) else {
                continue;
            };
            assert!(r.bytes().is_err(), "cut at {cut}");
        }
        let (_, mut r) = Reader::new(&[
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ])
        .unwrap();
        assert_eq!(r.u64(), Err(DecodeError::VarintOverflow { at: 1 }));
    }
}
