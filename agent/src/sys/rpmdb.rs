//! The RPM database where one exists: `rpmdb.sqlite` (rpm 4.16 and later), opened read-only;
//! each row of its `Packages` table is one package's header blob.

use std::path::Path;

/// The header blobs of the database at `path`; None when there is no such database.
pub fn headers(path: &Path) -> Option<Result<Vec<Vec<u8>>, String>> {
    if !path.is_file() {
        return None;
    }
    let read = || -> rusqlite::Result<Vec<Vec<u8>>> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut stmt = conn.prepare("SELECT blob FROM Packages")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.collect()
    };
    Some(read().map_err(|e| format!("{}: {e}", path.display())))
}

/// rpm's header entry types.
pub const T_INT8: u32 = 2;
pub const T_INT16: u32 = 3;
pub const T_INT32: u32 = 4;
pub const T_INT64: u32 = 5;
pub const T_STRING: u32 = 6;
pub const T_STRING_ARRAY: u32 = 8;
pub const T_I18NSTRING: u32 = 9;

/// One index entry of a header: tag, type, offset into the data, item count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tag: u32,
    pub ty: u32,
    pub offset: usize,
    pub count: usize,
}

/// A header blob as rpm stores it: entry count, data size, 16-byte big-endian index
/// entries, then the data. Shared by `rpm_packages` and `rpm_package_files`.
#[derive(Debug)]
pub struct Header<'a> {
    pub entries: Vec<Entry>,
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

impl<'a> Header<'a> {
    /// The blob's index and data; None when it is not a header.
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        let il = be32(b, 0)? as usize;
        let dl = be32(b, 4)? as usize;
        let data_at = 8usize.checked_add(il.checked_mul(16)?)?;
        let data = b.get(data_at..data_at.checked_add(dl)?)?;
        let entries = (0..il)
            .map(|i| {
                let e = 8 + i * 16;
                Some(Entry {
                    tag: be32(b, e)?,
                    ty: be32(b, e + 4)?,
                    offset: be32(b, e + 8)? as usize,
                    count: be32(b, e + 12)? as usize,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { entries, data })
    }

    pub fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// The strings of a string entry (`count` NUL-terminated strings; one for a STRING).
    pub fn strings_of(&self, e: Entry) -> Option<Vec<String>> {
        let n = match e.ty {
            T_STRING => 1,
            T_STRING_ARRAY | T_I18NSTRING => e.count,
            _ => return None,
        };
        let mut s = self.data.get(e.offset..)?;
        // Every string takes a byte at least: a count beyond the data is corrupt.
        if n > s.len() {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let end = s.iter().position(|c| *c == 0)?;
            out.push(String::from_utf8_lossy(&s[..end]).into_owned());
            s = &s[end + 1..];
        }
        Some(out)
    }

    /// The numbers of an integer entry.
    pub fn ints_of(&self, e: Entry) -> Option<Vec<i64>> {
        let width = match e.ty {
            T_INT8 => 1,
            T_INT16 => 2,
            T_INT32 => 4,
            T_INT64 => 8,
            _ => return None,
        };
        let bytes = self
            .data
            .get(e.offset..e.offset.checked_add(e.count.checked_mul(width)?)?)?;
        Some(
            bytes
                .chunks_exact(width)
                .map(|c| match width {
                    1 => i64::from(c[0]),
                    2 => i64::from(u16::from_be_bytes([c[0], c[1]])),
                    4 => i64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
                    _ => i64::from_be_bytes(c.try_into().unwrap_or([0; 8])),
                })
                .collect(),
        )
    }

    pub fn strings(&self, tag: u32) -> Option<Vec<String>> {
        self.strings_of(self.entry(tag)?)
    }

    pub fn ints(&self, tag: u32) -> Option<Vec<i64>> {
        self.ints_of(self.entry(tag)?)
    }
}
