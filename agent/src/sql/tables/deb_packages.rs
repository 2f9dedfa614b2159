//! `deb_packages`: the packages dpkg knows, from `<admindir>/status` (default
//! `/var/lib/dpkg`; `WHERE admindir = '…'` reads another, e.g. a container's root), with
//! osquery's columns. `revision` is the Debian revision (after the last `-` of the version),
//! `source` the source package's name (empty when it is the binary's own), `size` the
//! installed size in KiB.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("version", Text),
    col("source", Text),
    col("size", BigInt),
    col("arch", Text),
    col("revision", Text),
    col("status", Text),
    col("maintainer", Text),
    col("section", Text),
    col("priority", Text),
    col("admindir", Text),
    hidden("pid_with_namespace", Integer),
    hidden("mount_namespace_id", Text),
];
const ADMINDIR: usize = 10;
const DEFAULT_ADMINDIR: &str = "/var/lib/dpkg";

#[derive(Debug)]
pub struct DebPackages;

/// One stanza of a dpkg status file: its fields in order (continuation lines joined).
pub fn parse_status(s: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in s.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(stanza: &'a [(String, String)], name: &str) -> &'a str {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// A stanza as a row; None without a package name.
pub fn row(stanza: &[(String, String)], admindir: &str) -> Option<Vec<Value>> {
    let name = field(stanza, "Package");
    if name.is_empty() {
        return None;
    }
    let version = field(stanza, "Version");
    let revision = version.rsplit_once('-').map_or("", |(_, r)| r);
    // "Source: name (version)" when the source's version differs.
    let source = field(stanza, "Source")
        .split_whitespace()
        .next()
        .unwrap_or("");
    let size = field(stanza, "Installed-Size").parse::<i64>().ok();
    Some(vec![
        text(name),
        text(version),
        text(source),
        size.map_or(Value::Null, int),
        text(field(stanza, "Architecture")),
        text(revision),
        text(field(stanza, "Status")),
        text(field(stanza, "Maintainer")),
        text(field(stanza, "Section")),
        text(field(stanza, "Priority")),
        text(admindir),
        Value::Null,
        Value::Null,
    ])
}

impl Table for DebPackages {
    fn name(&self) -> &'static str {
        "deb_packages"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut dirs: Vec<String> = ctx.equal_texts(ADMINDIR);
        if dirs.is_empty() {
            dirs.push(DEFAULT_ADMINDIR.to_owned());
        }
        let mut rows = Vec::new();
        for d in dirs {
            // No dpkg database there: no rows (a host without dpkg is not an error).
            let Some(s) = read_text(&Path::new(&d).join("status")) else {
                continue;
            };
            rows.extend(parse_status(&s).iter().filter_map(|st| row(st, &d)).map(Ok));
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 12345\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u10\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries.\n\nPackage: bash\nEssential: yes\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b7\nSource: bash (5.2.15-2)\n\nPackage: zz-half\nStatus: deinstall ok config-files\nVersion: 1:2.0\n\nNot-A-Package: x\n";

    #[test]
    fn status_stanzas_become_rows() {
        let st = parse_status(STATUS);
        assert_eq!(st.len(), 4);
        let rows: Vec<Vec<Value>> = st.iter().filter_map(|s| row(s, "/x")).collect();
        assert_eq!(rows.len(), 3);
        let t = |r: &[Value], i: usize| match &r[i] {
            Value::Text(s) => s.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Null => "NULL".into(),
            other => format!("{other:?}"),
        };
        let libc: Vec<String> = (0..11).map(|i| t(&rows[0], i)).collect();
        assert_eq!(
            libc,
            [
                "libc6",
                "2.36-9+deb12u10",
                "glibc",
                "12345",
                "amd64",
                "9+deb12u10",
                "install ok installed",
                "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
                "libs",
                "optional",
                "/x"
            ]
        );
        assert_eq!(t(&rows[1], 2), "bash");
        assert_eq!(t(&rows[1], 5), "2+b7");
        assert_eq!(t(&rows[2], 1), "1:2.0");
        assert_eq!(t(&rows[2], 5), "");
        assert_eq!(t(&rows[2], 3), "NULL");
        // Bytes that are not a status file never panic.
        for cut in 0..STATUS.len() {
            let _ = parse_status(&STATUS[..cut]);
        }
    }
}
