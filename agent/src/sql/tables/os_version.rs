//! `os_version`: the distribution from os-release(5) and the architecture from uname(2), with
//! osquery's columns. `WHERE pid_with_namespace = N` reads the os-release of process N's root
//! (a container's), as osquery does.

use crate::{
    sql::{
        tables::{
            ns::ns_roots,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::{NsRoot, parse_env_file, read_text},
};
use rusqlite::types::Value;

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("version", Text),
    col("major", Integer),
    col("minor", Integer),
    col("patch", Integer),
    col("build", Text),
    col("platform", Text),
    col("platform_like", Text),
    col("codename", Text),
    col("arch", Text),
    col("extra", Text),
    // Windows-only in osquery: hidden, so `SELECT *` matches osquery on Linux, while queries
    // written for Windows hosts still run (NULL here).
    hidden("install_date", BigInt),
    hidden("revision", Integer),
    hidden("pid_with_namespace", Integer),
    hidden("mount_namespace_id", Text),
];

const PID_WITH_NAMESPACE: usize = 13;

#[derive(Debug)]
pub struct OsVersion;

/// major, minor, patch from `VERSION_ID` ("22.04" -> 22, 4, 0); parts that are missing or not
/// numbers are 0, as osquery reports them.
pub fn version_parts(version_id: &str) -> (i64, i64, i64) {
    let mut it = version_id
        .split('.')
        .map(|p| p.trim().parse::<i64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// The row for os-release text `release` (may be empty when no file exists).
pub fn row(release: &str, arch: &str, at: &NsRoot) -> Vec<Value> {
    let kv = parse_env_file(release);
    let get = |k: &str| {
        kv.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let (major, minor, patch) = version_parts(&get("VERSION_ID").unwrap_or_default());
    // `NAME` defaults to "Linux" in os-release(5).
    let name = get("NAME").unwrap_or_else(|| "Linux".to_owned());
    let version = get("VERSION")
        .or_else(|| get("VERSION_ID"))
        .unwrap_or_default();
    let codename = get("VERSION_CODENAME")
        .or_else(|| get("UBUNTU_CODENAME"))
        .unwrap_or_default();
    vec![
        text(name),
        text(version),
        int(major),
        int(minor),
        int(patch),
        text(get("BUILD_ID").unwrap_or_default()),
        text(get("ID").unwrap_or_else(|| "linux".to_owned())),
        text(get("ID_LIKE").unwrap_or_default()),
        text(codename),
        text(arch),
        text(get("VARIANT_ID").unwrap_or_default()),
        Value::Null,
        Value::Null,
        int(at.pid),
        at.mount_namespace_id().map_or(Value::Null, text),
    ]
}

impl Table for OsVersion {
    fn name(&self) -> &'static str {
        "os_version"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let arch = rustix::system::uname()
            .machine()
            .to_string_lossy()
            .into_owned();
        let rows: Vec<_> = ns_roots(ctx, PID_WITH_NAMESPACE)
            .into_iter()
            .filter_map(|at| {
                // os-release(5): /etc first, /usr/lib as the fallback.
                let release = read_text(&at.join("/etc/os-release"))
                    .or_else(|| read_text(&at.join("/usr/lib/os-release")));
                // A namespace we cannot read has no row; the host always has one.
                if release.is_none() && at.pid != 0 {
                    return None;
                }
                Some(Ok(row(&release.unwrap_or_default(), &arch, &at)))
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        flags::Flags,
        sql::{Engine, TableEnv},
    };

    #[test]
    fn parts() {
        assert_eq!(version_parts("12"), (12, 0, 0));
        assert_eq!(version_parts("22.04"), (22, 4, 0));
        assert_eq!(version_parts("9.3.1.7"), (9, 3, 1));
        assert_eq!(version_parts(""), (0, 0, 0));
        assert_eq!(version_parts("rolling"), (0, 0, 0));
        assert_eq!(version_parts("99999999999999999999.1"), (0, 1, 0));
    }

    #[test]
    fn row_from_text() {
        let at = NsRoot {
            pid: 0,
            root: "/".into(),
        };
        let r = row(
            "NAME=\"Ubuntu\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\n\
             VERSION_ID=\"22.04\"\nUBUNTU_CODENAME=jammy\n",
            "aarch64",
            &at,
        );
        assert_eq!(
            r[..13].to_vec(),
            vec![
                text("Ubuntu"),
                text("22.04.3 LTS (Jammy Jellyfish)"),
                int(22),
                int(4),
                int(0),
                text(""),
                text("ubuntu"),
                text("debian"),
                text("jammy"),
                text("aarch64"),
                text(""),
                Value::Null,
                Value::Null,
            ]
        );
        assert_eq!(r[13], int(0));
        let empty = row("", "x86_64", &at);
        assert_eq!(empty[0], text("Linux"));
        assert_eq!(empty[6], text("linux"));
    }

    #[test]
    fn matches_etc_os_release() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query("SELECT name, version, major, codename, platform, arch FROM os_version")
            .expect("query");
        let release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .expect("this host has an os-release");
        // An independent reading of the file, by line, not through parse_env_file.
        let field = |k: &str| {
            release
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let major: i64 = field("VERSION_ID")
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let uname = rustix::system::uname();
        assert_eq!(
            rs.rows,
            vec![vec![
                text(field("NAME")),
                text(field("VERSION")),
                int(major),
                text(field("VERSION_CODENAME")),
                text(field("ID")),
                text(uname.machine().to_string_lossy()),
            ]]
        );
    }

    #[test]
    fn own_namespace_by_pid() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let me = std::process::id();
        let rs = engine
            .query(&format!(
                "SELECT name, pid_with_namespace FROM os_version WHERE pid_with_namespace = {me}"
            ))
            .expect("query");
        let host = engine.query("SELECT name FROM os_version").expect("query");
        assert_eq!(rs.rows.len(), 1);
        assert_eq!(rs.rows[0][0], host.rows[0][0]);
        assert_eq!(rs.rows[0][1], int(i64::from(me)));
    }
}
