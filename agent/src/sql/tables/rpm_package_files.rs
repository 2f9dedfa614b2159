//! `rpm_package_files`: the files of each package in the RPM database
//! (`/var/lib/rpm/rpmdb.sqlite`, opened read-only as `rpm_packages` does; no database, no
//! rows), from each header's file list: `DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`, the owner
//! and group rpm records, `mode` as four octal digits (`0644`, as osquery's), the size
//! (`LONGFILESIZES`, else `FILESIZES`) and the file digest when the package's digest algorithm
//! is SHA-256 (empty otherwise). `WHERE package = '…'` keeps only those packages' files.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::rpmdb::{self, Header},
};

const COLUMNS: &[Column] = &[
    col("package", Text),
    col("path", Text),
    col("username", Text),
    col("groupname", Text),
    col("mode", Text),
    col("size", BigInt),
    col("sha256", Text),
];
const PACKAGE: usize = 0;
const DB: &str = "/var/lib/rpm/rpmdb.sqlite";

// rpm's tags.
const NAME: u32 = 1000;
const FILESIZES: u32 = 1028;
const FILEMODES: u32 = 1030;
const FILEDIGESTS: u32 = 1035;
const FILEUSERNAME: u32 = 1039;
const FILEGROUPNAME: u32 = 1040;
const DIRINDEXES: u32 = 1116;
const BASENAMES: u32 = 1117;
const DIRNAMES: u32 = 1118;
const LONGFILESIZES: u32 = 5008;
const FILEDIGESTALGO: u32 = 5011;
/// rpm's (PGP's) number for SHA-256; without the tag the digests are MD5.
const SHA256: i64 = 8;

#[derive(Debug)]
pub struct RpmPackageFiles;

/// The rows of one package header (empty when it is none or has no file list), if its name
/// is among `wanted` (any name when `wanted` is empty).
pub fn files_of(blob: &[u8], wanted: &[String]) -> Vec<Vec<Value>> {
    let Some(h) = Header::parse(blob) else {
        return Vec::new();
    };
    let Some(name) = h.strings(NAME).and_then(|v| v.into_iter().next()) else {
        return Vec::new();
    };
    if !wanted.is_empty() && !wanted.contains(&name) {
        return Vec::new();
    }
    let (Some(base), Some(dirs), Some(idx)) = (
        h.strings(BASENAMES),
        h.strings(DIRNAMES),
        h.ints(DIRINDEXES),
    ) else {
        return Vec::new();
    };
    let users = h.strings(FILEUSERNAME).unwrap_or_default();
    let groups = h.strings(FILEGROUPNAME).unwrap_or_default();
    let modes = h.ints(FILEMODES).unwrap_or_default();
    let sizes = h
        .ints(LONGFILESIZES)
        .or_else(|| h.ints(FILESIZES))
        .unwrap_or_default();
    let sha256 = h
        .ints(FILEDIGESTALGO)
        .and_then(|a| a.first().copied())
        .is_some_and(|a| a == SHA256);
    let digests = if sha256 {
        h.strings(FILEDIGESTS).unwrap_or_default()
    } else {
        Vec::new()
    };
    let s = |v: &[String], i: usize| text(v.get(i).cloned().unwrap_or_default());
    base.iter()
        .enumerate()
        .map(|(i, b)| {
            let dir = idx
                .get(i)
                .and_then(|d| usize::try_from(*d).ok())
                .and_then(|d| dirs.get(d))
                .map_or("", String::as_str);
            vec![
                text(name.clone()),
                text(format!("{dir}{b}")),
                s(&users, i),
                s(&groups, i),
                modes
                    .get(i)
                    .map_or(text(""), |m| text(format!("{:04o}", m & 0o7777))),
                sizes.get(i).map_or(Value::Null, |n| int(*n)),
                s(&digests, i),
            ]
        })
        .collect()
}

/// The rows of the database at `db`; None when there is none.
fn rows_in(db: &Path, wanted: Vec<String>) -> Option<Result<Rows, String>> {
    let blobs = rpmdb::headers(db)?;
    Some(blobs.map(|b| -> Rows {
        Box::new(
            b.into_iter()
                .flat_map(move |blob| files_of(&blob, &wanted))
                .map(Ok),
        )
    }))
}

impl Table for RpmPackageFiles {
    fn name(&self) -> &'static str {
        "rpm_package_files"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        rows_in(Path::new(DB), ctx.equal_texts(PACKAGE))
            .unwrap_or_else(|| Ok(Box::new(std::iter::empty())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::rpmdb::{T_INT16, T_INT32, T_INT64, T_STRING, T_STRING_ARRAY};

    /// A header blob: (tag, type, count, bytes) entries, integers aligned as rpm aligns them.
    fn blob(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, ty, count, bytes) in entries {
            let align = match *ty {
                T_INT16 => 2,
                T_INT32 => 4,
                T_INT64 => 8,
                _ => 1,
            };
            while data.len() % align != 0 {
                data.push(0);
            }
            for v in [*tag, *ty, data.len() as u32, *count] {
                index.extend(v.to_be_bytes());
            }
            data.extend(bytes);
        }
        let mut b = Vec::new();
        b.extend((entries.len() as u32).to_be_bytes());
        b.extend((data.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(data);
        b
    }

    fn strs(v: &[&str]) -> Vec<u8> {
        v.iter().flat_map(|s| s.bytes().chain([0])).collect()
    }

    fn package(name: &str, algo: Option<u32>) -> Vec<u8> {
        let mut e = vec![
            (NAME, T_STRING, 1, strs(&[name])),
            (
                BASENAMES,
                T_STRING_ARRAY,
                3,
                strs(&["bash", "bash.1.gz", "bash"]),
            ),
            (
                DIRNAMES,
                T_STRING_ARRAY,
                3,
                strs(&["/usr/bin/", "/usr/share/man/man1/", "/etc/skel/"]),
            ),
            (
                DIRINDEXES,
                T_INT32,
                3,
                [0u32, 1, 2].iter().flat_map(|i| i.to_be_bytes()).collect(),
            ),
            (
                FILEUSERNAME,
                T_STRING_ARRAY,
                3,
                strs(&["root", "root", "bin"]),
            ),
            (
                FILEGROUPNAME,
                T_STRING_ARRAY,
                3,
                strs(&["root", "man", "bin"]),
            ),
            (
                FILEMODES,
                T_INT16,
                3,
                [0o104755u16, 0o100644, 0o40700]
                    .iter()
                    .flat_map(|m| m.to_be_bytes())
                    .collect(),
            ),
            (
                FILESIZES,
                T_INT32,
                3,
                [1_234_567u32, 99, 4096]
                    .iter()
                    .flat_map(|s| s.to_be_bytes())
                    .collect(),
            ),
            (FILEDIGESTS, T_STRING_ARRAY, 3, strs(&["ab12", "cd34", ""])),
        ];
        if let Some(a) = algo {
            e.push((FILEDIGESTALGO, T_INT32, 1, a.to_be_bytes().to_vec()));
        }
        blob(&e)
    }

    #[test]
    fn a_header_file_list_becomes_rows() {
        let got = files_of(&package("bash", Some(8)), &[]);
        let r = |p: &str, u: &str, g: &str, m: &str, s: i64, d: &str| {
            vec![
                text("bash"),
                text(p),
                text(u),
                text(g),
                text(m),
                int(s),
                text(d),
            ]
        };
        assert_eq!(
            got,
            [
                r("/usr/bin/bash", "root", "root", "4755", 1_234_567, "ab12"),
                r(
                    "/usr/share/man/man1/bash.1.gz",
                    "root",
                    "man",
                    "0644",
                    99,
                    "cd34"
                ),
                r("/etc/skel/bash", "bin", "bin", "0700", 4096, ""),
            ]
        );
        // MD5 digests (no algorithm tag) are not SHA-256.
        let md5 = files_of(&package("bash", None), &[]);
        assert_eq!(md5[0][6], text(""));
        assert!(files_of(&package("bash", Some(8)), &["zsh".into()]).is_empty());
        // Truncations and junk never panic.
        let b = package("bash", Some(8));
        for cut in 0..b.len() {
            let _ = files_of(&b[..cut], &[]);
        }
        assert!(files_of(&[0xff; 40], &[]).is_empty());
    }

    #[test]
    fn the_database_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rpmdb.sqlite");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
        )
        .unwrap();
        for name in ["bash", "other"] {
            c.execute(
                "INSERT INTO Packages (blob) VALUES (?1)",
                [&package(name, Some(8))],
            )
            .unwrap();
        }
        drop(c);
        let paths = |wanted: Vec<String>| -> Vec<(Value, Value)> {
            rows_in(&p, wanted)
                .unwrap()
                .unwrap()
                .map(|r| {
                    let r = r.unwrap();
                    (r[0].clone(), r[1].clone())
                })
                .collect()
        };
        assert_eq!(paths(vec![]).len(), 6);
        assert_eq!(
            paths(vec!["other".into()]),
            [
                (text("other"), text("/usr/bin/bash")),
                (text("other"), text("/usr/share/man/man1/bash.1.gz")),
                (text("other"), text("/etc/skel/bash")),
            ]
        );
        assert!(rows_in(&dir.path().join("none"), vec![]).is_none());
    }
}
