//! Reading Thrift from a peer that may lie about sizes. The `thrift` crate's binary protocol
//! allocates whatever a length prefix says (a string of 2 GiB, a list of 2^31 maps: an abort
//! of the whole agent when the allocation fails, a capacity panic when it is negative).
//! [`Bounded`] wraps it: lengths and element counts are checked against what is left of a
//! per-message budget before anything is allocated, and the message header and every string
//! are read here, byte by byte through the inner protocol, so no unchecked length reaches an
//! allocation. Everything else is the inner protocol's.

use thrift::{
    ProtocolError, ProtocolErrorKind,
    protocol::{
        TFieldIdentifier, TInputProtocol, TListIdentifier, TMapIdentifier, TMessageIdentifier,
        TMessageType, TSetIdentifier, TStructIdentifier, TType,
    },
};

/// Most bytes one request to the manager may have.
pub const REQUEST_MAX: usize = 16 << 20;
/// Most bytes one reply from an extension may have (a table's rows).
pub const REPLY_MAX: usize = 256 << 20;
/// Most elements one list, set or map may declare (each is at least a byte anyway).
const ELEMENTS_MAX: usize = 1 << 20;

/// An input protocol that refuses sizes the message cannot hold.
pub struct Bounded<P> {
    inner: P,
    max: usize,
    used: usize,
    /// A read failed: the stream may be anywhere inside a message, so the connection must
    /// not be used again (the processor answers an error and would read on).
    failed: bool,
}

fn refused(kind: ProtocolErrorKind, message: String) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError { kind, message })
}

impl<P: TInputProtocol> Bounded<P> {
    pub fn new(inner: P, max: usize) -> Self {
        Self {
            inner,
            max,
            used: 0,
            failed: false,
        }
    }

    /// Whether a read failed on this stream (see [`Bounded::failed`]'s field).
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn mark<T>(&mut self, r: thrift::Result<T>) -> thrift::Result<T> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn spend(&mut self, n: usize) -> thrift::Result<()> {
        self.used = self.used.saturating_add(n);
        if self.used > self.max {
            return Err(refused(
                ProtocolErrorKind::SizeLimit,
                format!("message over {} bytes", self.max),
            ));
        }
        Ok(())
    }

    /// A declared length or count: not negative, and within what is left.
    fn size(&mut self, declared: i32, unit: usize) -> thrift::Result<usize> {
        let n = usize::try_from(declared).map_err(|_| {
            refused(
                ProtocolErrorKind::NegativeSize,
                format!("negative size {declared}"),
            )
        })?;
        if n > ELEMENTS_MAX && unit == 0 {
            return Err(refused(
                ProtocolErrorKind::SizeLimit,
                format!("{n} elements declared"),
            ));
        }
        let left = self.max.saturating_sub(self.used);
        if n.saturating_mul(unit.max(1)) > left {
            return Err(refused(
                ProtocolErrorKind::SizeLimit,
                format!("size {n} over the {left} bytes left in the message"),
            ));
        }
        Ok(n)
    }

    fn read_raw(&mut self) -> thrift::Result<Vec<u8>> {
        let len = self.inner.read_i32()?;
        self.spend(4)?;
        let n = self.size(len, 1)?;
        let mut buf = Vec::with_capacity(n);
        for _ in 0..n {
            buf.push(self.inner.read_byte()?);
        }
        self.spend(n)?;
        Ok(buf)
    }
}

impl<P: TInputProtocol> Bounded<P> {
    fn raw_read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        self.used = 0;
        // Strict binary protocol: 0x8001, a byte unused, the message type; then the name
        // and the sequence number.
        let header = self.inner.read_i32()? as u32;
        self.spend(4)?;
        if header >> 16 != 0x8001 {
            return Err(refused(
                ProtocolErrorKind::BadVersion,
                format!("not a strict binary message (header {header:#010x})"),
            ));
        }
        let kind = TMessageType::try_from((header & 0xff) as u8)?;
        let name = String::from_utf8(self.read_raw()?)?;
        let seq = self.inner.read_i32()?;
        self.spend(4)?;
        Ok(TMessageIdentifier::new(name, kind, seq))
    }

    fn raw_read_message_end(&mut self) -> thrift::Result<()> {
        self.inner.read_message_end()
    }

    fn raw_read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        self.inner.read_struct_begin()
    }

    fn raw_read_struct_end(&mut self) -> thrift::Result<()> {
        self.inner.read_struct_end()
    }

    fn raw_read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        let f = self.inner.read_field_begin()?;
        self.spend(if f.field_type == TType::Stop { 1 } else { 3 })?;
        Ok(f)
    }

    fn raw_read_field_end(&mut self) -> thrift::Result<()> {
        self.inner.read_field_end()
    }

    fn raw_read_bool(&mut self) -> thrift::Result<bool> {
        self.spend(1)?;
        self.inner.read_bool()
    }

    fn raw_read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        self.read_raw()
    }

    fn raw_read_i8(&mut self) -> thrift::Result<i8> {
        self.spend(1)?;
        self.inner.read_i8()
    }

    fn raw_read_i16(&mut self) -> thrift::Result<i16> {
        self.spend(2)?;
        self.inner.read_i16()
    }

    fn raw_read_i32(&mut self) -> thrift::Result<i32> {
        self.spend(4)?;
        self.inner.read_i32()
    }

    fn raw_read_i64(&mut self) -> thrift::Result<i64> {
        self.spend(8)?;
        self.inner.read_i64()
    }

    fn raw_read_double(&mut self) -> thrift::Result<f64> {
        self.spend(8)?;
        self.inner.read_double()
    }

    fn raw_read_string(&mut self) -> thrift::Result<String> {
        Ok(String::from_utf8(self.read_raw()?)?)
    }

    fn raw_read_list_begin(&mut self) -> thrift::Result<TListIdentifier> {
        let l = self.inner.read_list_begin()?;
        self.spend(5)?;
        self.size(l.size, 0)?;
        self.size(l.size, 1)?;
        Ok(l)
    }

    fn raw_read_list_end(&mut self) -> thrift::Result<()> {
        self.inner.read_list_end()
    }

    fn raw_read_set_begin(&mut self) -> thrift::Result<TSetIdentifier> {
        let l = self.inner.read_set_begin()?;
        self.spend(5)?;
        self.size(l.size, 0)?;
        self.size(l.size, 1)?;
        Ok(l)
    }

    fn raw_read_set_end(&mut self) -> thrift::Result<()> {
        self.inner.read_set_end()
    }

    fn raw_read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        let m = self.inner.read_map_begin()?;
        self.spend(6)?;
        self.size(m.size, 0)?;
        self.size(m.size, 2)?;
        Ok(m)
    }

    fn raw_read_map_end(&mut self) -> thrift::Result<()> {
        self.inner.read_map_end()
    }

    fn raw_read_byte(&mut self) -> thrift::Result<u8> {
        self.spend(1)?;
        self.inner.read_byte()
    }
}

impl<P: TInputProtocol> TInputProtocol for Bounded<P> {
    fn read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        let r = self.raw_read_message_begin();
        self.mark(r)
    }

    fn read_message_end(&mut self) -> thrift::Result<()> {
        let r = self.raw_read_message_end();
        self.mark(r)
    }

    fn read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        let r = self.raw_read_struct_begin();
        self.mark(r)
    }

    fn read_struct_end(&mut self) -> thrift::Result<()> {
        let r = self.raw_read_struct_end();
        self.mark(r)
    }

    fn read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        let r = self.raw_read_field_begin();
        self.mark(r)
    }

    fn read_field_end(&mut self) -> thrift::Result<()> {
        let r = self.raw_read_field_end();
        self.mark(r)
    }

    fn read_bool(&mut self) -> thrift::Result<bool> {
        let r = self.raw_read_bool();
        self.mark(r)
    }

    fn read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        let r = self.raw_read_bytes();
        self.mark(r)
    }

    fn read_i8(&mut self) -> thrift::Result<i8> {
        let r = self.raw_read_i8();
        self.mark(r)
    }

    fn read_i16(&mut self) -> thrift::Result<i16> {
        let r = self.raw_read_i16();
        self.mark(r)
    }

    fn read_i32(&mut self) -> thrift::Result<i32> {
        let r = self.raw_read_i32();
        self.mark(r)
    }

    fn read_i64(&mut self) -> thrift::Result<i64> {
        let r = self.raw_read_i64();
        self.mark(r)
    }

    fn read_double(&mut self) -> thrift::Result<f64> {
        let r = self.raw_read_double();
        self.mark(r)
    }

    fn read_string(&mut self) -> thrift::Result<String> {
        let r = self.raw_read_string();
        self.mark(r)
    }

    fn read_list_begin(&mut self) -> thrift::Result<TListIdentifier> {
        let r = self.raw_read_list_begin();
        self.mark(r)
    }

    fn read_list_end(&mut self) -> thrift::Result<()> {
        let r = self.raw_read_list_end();
        self.mark(r)
    }

    fn read_set_begin(&mut self) -> thrift::Result<TSetIdentifier> {
        let r = self.raw_read_set_begin();
        self.mark(r)
    }

    fn read_set_end(&mut self) -> thrift::Result<()> {
        let r = self.raw_read_set_end();
        self.mark(r)
    }

    fn read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        let r = self.raw_read_map_begin();
        self.mark(r)
    }

    fn read_map_end(&mut self) -> thrift::Result<()> {
        let r = self.raw_read_map_end();
        self.mark(r)
    }

    fn read_byte(&mut self) -> thrift::Result<u8> {
        let r = self.raw_read_byte();
        self.mark(r)
    }
}

#[cfg(test)]
mod tests {
    use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol, TOutputProtocol};

    use super::*;

    fn input(
        bytes: Vec<u8>,
        max: usize,
    ) -> Bounded<TBinaryInputProtocol<std::io::Cursor<Vec<u8>>>> {
        Bounded::new(
            TBinaryInputProtocol::new(std::io::Cursor::new(bytes), true),
            max,
        )
    }

    fn header(name: &str) -> Vec<u8> {
        let mut v = vec![0x80, 0x01, 0x00, 0x01];
        v.extend_from_slice(&(name.len() as i32).to_be_bytes());
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(&7i32.to_be_bytes());
        v
    }

    #[test]
    fn a_well_formed_message_reads_as_the_plain_protocol_reads_it() {
        let mut out = TBinaryOutputProtocol::new(Vec::new(), true);
        out.write_message_begin(&TMessageIdentifier::new("query", TMessageType::Call, 3))
            .unwrap();
        out.write_string("SELECT 1").unwrap();
        out.write_map_begin(&TMapIdentifier::new(TType::String, TType::String, 1))
            .unwrap();
        out.write_string("k").unwrap();
        out.write_string("v").unwrap();
        out.flush().unwrap();
        let bytes = out.transport.clone();
        let mut p = input(bytes, 1 << 10);
        let m = p.read_message_begin().unwrap();
        assert_eq!((m.name.as_str(), m.sequence_number), ("query", 3));
        assert_eq!(p.read_string().unwrap(), "SELECT 1");
        assert_eq!(p.read_map_begin().unwrap().size, 1);
        assert_eq!(p.read_string().unwrap(), "k");
        assert_eq!(p.read_string().unwrap(), "v");
    }

    #[test]
    fn lying_sizes_are_errors_before_any_allocation() {
        let kind = |e: thrift::Error| match e {
            thrift::Error::Protocol(p) => p.kind,
            other => panic!("{other:?}"),
        };
        // A message name of 2 GiB, of -1 bytes.
        let mut b = vec![0x80, 0x01, 0x00, 0x01];
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            kind(input(b, 1 << 20).read_message_begin().unwrap_err()),
            ProtocolErrorKind::SizeLimit
        );
        let mut b = vec![0x80, 0x01, 0x00, 0x01];
        b.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            kind(input(b, 1 << 20).read_message_begin().unwrap_err()),
            ProtocolErrorKind::NegativeSize
        );
        // A list of 2^31 - 1 maps, a map of -5 entries.
        let mut b = header("q");
        b.push(TType::Map as u8);
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut p = input(b, 1 << 20);
        p.read_message_begin().unwrap();
        assert_eq!(
            kind(p.read_list_begin().unwrap_err()),
            ProtocolErrorKind::SizeLimit
        );
        let mut b = header("q");
        b.extend_from_slice(&[TType::String as u8, TType::String as u8]);
        b.extend_from_slice(&(-5i32).to_be_bytes());
        let mut p = input(b, 1 << 20);
        p.read_message_begin().unwrap();
        assert_eq!(
            kind(p.read_map_begin().unwrap_err()),
            ProtocolErrorKind::NegativeSize
        );
        // A plain (non-strict) header is refused.
        let b = vec![0x00, 0x00, 0x00, 0x05, b'q'];
        assert_eq!(
            kind(input(b, 1 << 20).read_message_begin().unwrap_err()),
            ProtocolErrorKind::BadVersion
        );
        // Strings that fit one by one but not together.
        let mut b = header("q");
        for _ in 0..3 {
            b.extend_from_slice(&40i32.to_be_bytes());
            b.extend_from_slice(&[b'x'; 40]);
        }
        let mut p = input(b, 100);
        p.read_message_begin().unwrap();
        p.read_string().unwrap();
        assert_eq!(
            kind(p.read_string().unwrap_err()),
            ProtocolErrorKind::SizeLimit
        );
    }
}
