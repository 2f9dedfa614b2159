//! `python_packages`: the Python distributions installed system-wide, from each
//! `*.dist-info/METADATA` and `*.egg-info` (`PKG-INFO`, or the file itself) in the
//! site-packages folders osquery reads (`/usr/lib/python3/dist-packages`,
//! `/usr/lib/python3.*/{site,dist}-packages`, the same under `/usr/local`), or in the folders a
//! `WHERE directory = '…'` names.

use std::path::{Path, PathBuf};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("uid", BigInt),
    col("version", Text),
    col("summary", Text),
    col("author", Text),
    col("license", Text),
    col("path", Text),
    col("directory", Text),
    hidden("pid_with_namespace", Integer),
];
const DIRECTORY: usize = 7;

#[derive(Debug)]
pub struct PythonPackages;

/// The header fields of a core-metadata file (RFC 822 style, up to the first blank line).
pub fn parse_metadata(s: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in s.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn get<'a>(f: &'a [(String, String)], key: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map_or("", |(_, v)| v.as_str())
}

/// The `python*` folders of `base`, sorted.
fn pythons(base: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut pys: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path())
        .collect();
    pys.sort();
    pys
}

/// The site-packages folders that exist, each with the uid whose packages it holds: the
/// system's (0), then each account's `~/.local/lib/python*/site-packages`.
fn default_dirs() -> Vec<(PathBuf, i64)> {
    let mut out: Vec<(PathBuf, i64)> = system_dirs().into_iter().map(|d| (d, 0)).collect();
    let passwd = read_text(Path::new("/etc/passwd")).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for u in super::users::parse_passwd(&passwd) {
        if u.dir.is_empty() || u.dir == "/" || !seen.insert(u.dir.clone()) {
            continue;
        }
        for p in pythons(&Path::new(&u.dir).join(".local/lib")) {
            let site = p.join("site-packages");
            if site.is_dir() {
                out.push((site, i64::from(u.uid)));
            }
        }
    }
    out
}

fn system_dirs() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/usr/lib/python3/dist-packages")];
    for base in ["/usr/lib", "/usr/local/lib"] {
        for p in pythons(Path::new(base)) {
            for sub in ["site-packages", "dist-packages"] {
                out.push(p.join(sub));
            }
        }
    }
    out.retain(|p| p.is_dir());
    out.dedup();
    out
}

/// The rows of the distributions in `dir`, installed for `uid`.
fn scan(dir: &Path, uid: i64, rows: &mut Vec<Vec<Value>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = if name.ends_with(".dist-info") {
            p.join("METADATA")
        } else if name.ends_with(".egg-info") {
            if p.is_dir() {
                p.join("PKG-INFO")
            } else {
                p.clone()
            }
        } else {
            continue;
        };
        let Some(text_) = read_text(&meta) else {
            continue;
        };
        let f = parse_metadata(&text_);
        if get(&f, "Name").is_empty() {
            continue;
        }
        rows.push(vec![
            text(get(&f, "Name")),
            Value::Integer(uid),
            text(get(&f, "Version")),
            text(get(&f, "Summary")),
            text(get(&f, "Author")),
            text(get(&f, "License")),
            text(p.display().to_string()),
            text(dir.display().to_string()),
            Value::Null,
        ]);
    }
}

impl Table for PythonPackages {
    fn name(&self) -> &'static str {
        "python_packages"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let asked: Vec<(PathBuf, i64)> = ctx
            .equal_texts(DIRECTORY)
            .into_iter()
            .map(|d| {
                use std::os::unix::fs::MetadataExt;
                let uid = std::fs::metadata(&d).map_or(0, |m| i64::from(m.uid()));
                (PathBuf::from(d), uid)
            })
            .collect();
        let dirs = if asked.is_empty() {
            default_dirs()
        } else {
            asked
        };
        let mut rows = Vec::new();
        for (d, uid) in &dirs {
            scan(d, *uid, &mut rows);
        }
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_info_and_egg_info_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("requests-2.28.1.dist-info")).unwrap();
        std::fs::write(
            d.join("requests-2.28.1.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nSummary: Python HTTP for Humans.\nAuthor: Kenneth Reitz\nLicense: Apache 2.0\n\nName: not-a-header\n",
        )
        .unwrap();
        std::fs::write(
            d.join("six-1.16.0.egg-info"),
            "Name: six\nVersion: 1.16.0\nLicense: MIT\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("broken.dist-info")).unwrap();
        let mut rows = Vec::new();
        scan(d, 1000, &mut rows);
        let got: Vec<String> = rows
            .iter()
            .map(|r| match (&r[0], &r[2], &r[5], &r[1]) {
                (Value::Text(a), Value::Text(b), Value::Text(c), Value::Integer(u)) => {
                    format!("{a} {b} {c} {u}")
                }
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            got,
            ["requests 2.28.1 Apache 2.0 1000", "six 1.16.0 MIT 1000"]
        );
    }
}
