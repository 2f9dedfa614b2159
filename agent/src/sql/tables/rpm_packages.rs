//! `rpm_packages`: the packages of the RPM database (`/var/lib/rpm/rpmdb.sqlite`), where one
//! exists: no database, no rows. Each package's header blob is read here (rpm's header
//! format: entry count, data size, 16-byte index entries, then the data).

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::rpmdb::{self, T_I18NSTRING, T_INT32, T_INT64, T_STRING},
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("version", Text),
    col("release", Text),
    col("source", Text),
    col("size", BigInt),
    col("sha1", Text),
    col("arch", Text),
    col("epoch", Integer),
    col("install_time", Integer),
    col("vendor", Text),
    col("package_group", Text),
    hidden("pid_with_namespace", Integer),
    hidden("mount_namespace_id", Text),
];
const DB: &str = "/var/lib/rpm/rpmdb.sqlite";

// rpm's tags and types.
const SHA1HEADER: u32 = 269;
const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const INSTALLTIME: u32 = 1008;
const SIZE: u32 = 1009;
const VENDOR: u32 = 1011;
const GROUP: u32 = 1016;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;
const LONGSIZE: u32 = 5009;

#[derive(Debug)]
pub struct RpmPackages;

/// A header's value of one tag: text, or a number.
#[derive(Debug, PartialEq, Eq)]
pub enum Tag {
    Text(String),
    Int(i64),
}

/// The tags of a header blob this table uses; None when the blob is not a header.
pub fn parse_header(b: &[u8]) -> Option<Vec<(u32, Tag)>> {
    let h = rpmdb::Header::parse(b)?;
    let mut out = Vec::new();
    for e in h.entries.iter().copied() {
        let wanted = matches!(
            e.tag,
            SHA1HEADER
                | NAME
                | VERSION
                | RELEASE
                | EPOCH
                | INSTALLTIME
                | SIZE
                | VENDOR
                | GROUP
                | ARCH
                | SOURCERPM
                | LONGSIZE
        );
        if !wanted {
            continue;
        }
        let v = match e.ty {
            T_STRING | T_I18NSTRING => Tag::Text(h.strings_of(e)?.into_iter().next()?),
            T_INT32 | T_INT64 => Tag::Int(*h.ints_of(rpmdb::Entry { count: 1, ..e })?.first()?),
            _ => continue,
        };
        out.push((e.tag, v));
    }
    Some(out)
}

fn row(tags: &[(u32, Tag)]) -> Vec<Value> {
    let s = |t: u32| match tags.iter().find(|(k, _)| *k == t) {
        Some((_, Tag::Text(v))) => text(v.clone()),
        _ => text(""),
    };
    let n = |t: u32| {
        tags.iter().find_map(|(k, v)| match v {
            Tag::Int(i) if *k == t => Some(*i),
            _ => None,
        })
    };
    vec![
        s(NAME),
        s(VERSION),
        s(RELEASE),
        s(SOURCERPM),
        n(LONGSIZE).or(n(SIZE)).map_or(Value::Null, int),
        s(SHA1HEADER),
        s(ARCH),
        n(EPOCH).map_or(int(0), int),
        n(INSTALLTIME).map_or(Value::Null, int),
        s(VENDOR),
        s(GROUP),
        Value::Null,
        Value::Null,
    ]
}

impl Table for RpmPackages {
    fn name(&self) -> &'static str {
        "rpm_packages"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let Some(blobs) = rpmdb::headers(Path::new(DB)) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let rows: Vec<_> = blobs?
            .iter()
            .filter_map(|b| parse_header(b))
            .map(|t| Ok(row(&t)))
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob as rpm writes one: index entries, then the data.
    fn blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, ty, bytes) in entries {
            // Integers are aligned in rpm's data store.
            while (*ty == T_INT32 && data.len() % 4 != 0) || (*ty == T_INT64 && data.len() % 8 != 0)
            {
                data.push(0);
            }
            index.extend(tag.to_be_bytes());
            index.extend(ty.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend(bytes);
        }
        let mut b = Vec::new();
        b.extend((entries.len() as u32).to_be_bytes());
        b.extend((data.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(data);
        b
    }

    fn z(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    #[test]
    fn a_header_blob_becomes_a_row_and_junk_does_not() {
        let b = blob(&[
            (NAME, T_STRING, z("bash")),
            (VERSION, T_STRING, z("5.1.8")),
            (RELEASE, T_STRING, z("9.el9")),
            (EPOCH, T_INT32, 1u32.to_be_bytes().to_vec()),
            (ARCH, T_STRING, z("x86_64")),
            (SIZE, T_INT32, 7_738_634u32.to_be_bytes().to_vec()),
            (
                INSTALLTIME,
                T_INT32,
                1_700_000_000u32.to_be_bytes().to_vec(),
            ),
            (VENDOR, T_STRING, z("Rocky Enterprise Software Foundation")),
            (GROUP, T_I18NSTRING, z("Unspecified")),
            (SOURCERPM, T_STRING, z("bash-5.1.8-9.el9.src.rpm")),
            (SHA1HEADER, T_STRING, z("0123abcd")),
        ]);
        let tags = parse_header(&b).unwrap();
        let r = row(&tags);
        assert_eq!(
            r,
            vec![
                text("bash"),
                text("5.1.8"),
                text("9.el9"),
                text("bash-5.1.8-9.el9.src.rpm"),
                int(7_738_634),
                text("0123abcd"),
                text("x86_64"),
                int(1),
                int(1_700_000_000),
                text("Rocky Enterprise Software Foundation"),
                text("Unspecified"),
                Value::Null,
                Value::Null,
            ]
        );
        // Truncations of a valid blob and junk never panic.
        for cut in 0..b.len() {
            let _ = parse_header(&b[..cut]);
        }
        assert_eq!(parse_header(&[0xff; 12]), None);
    }

    #[test]
    fn the_database_is_read_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rpmdb.sqlite");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
        )
        .unwrap();
        let b = blob(&[(NAME, T_STRING, z("zlib"))]);
        c.execute("INSERT INTO Packages (blob) VALUES (?1)", [&b])
            .unwrap();
        drop(c);
        let got = rpmdb::headers(&p).unwrap().unwrap();
        assert_eq!(got, vec![b]);
        assert!(rpmdb::headers(&dir.path().join("none")).is_none());
    }
}
