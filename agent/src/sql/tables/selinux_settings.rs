//! `selinux_settings`: the active SELinux settings, read from the selinuxfs mount
//! (`/proc/self/mounts`, type `selinuxfs`; no rows without one), as osquery reads them: the
//! root keys (`checkreqprot`, `deny_unknown`, `enforce`, `mls`, `policyvers`,
//! `reject_unknown`; scope empty), every file of `booleans` (`on`/`off`),
//! `policy_capabilities` and `initial_contexts` (scope the folder, key the file, value its
//! content without trailing NULs and newlines), and each class's permissions (scope
//! `class`, key `<class>/perms`, value the permission).

use std::path::{Path, PathBuf};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{mounts::parse_mounts, util::text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("scope", Text), col("key", Text), col("value", Text)];

const ROOT_KEYS: &[&str] = &[
    "checkreqprot",
    "deny_unknown",
    "enforce",
    "mls",
    "policyvers",
    "reject_unknown",
];
const SCOPES: &[&str] = &["booleans", "policy_capabilities", "initial_contexts"];

#[derive(Debug)]
pub struct SelinuxSettings;

/// Every file below `dir`, sorted (folders descended, not listed).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(_) => out.push(e.path()),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

fn value_of(path: &Path) -> Option<String> {
    read_text(path).map(|s| s.trim_end_matches(['\0', '\n']).to_owned())
}

/// (scope, key, value) of a selinuxfs mounted at `root`.
pub fn settings(root: &Path) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for k in ROOT_KEYS {
        out.push((String::new(), (*k).to_owned(), value_of(&root.join(k))));
    }
    for scope in SCOPES {
        for f in files_below(&root.join(scope)) {
            let Some(key) = f.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let Some(v) = value_of(&f) else { continue };
            let v = if *scope == "booleans" {
                match v.as_str() {
                    "0 0" => "off".to_owned(),
                    "1 1" => "on".to_owned(),
                    // A pending change (current and pending differ) or garbage.
                    _ => continue,
                }
            } else {
                v
            };
            out.push(((*scope).to_owned(), key, Some(v)));
        }
    }
    let class = root.join("class");
    for f in files_below(&class) {
        let (Some(name), Some(dir)) = (f.file_name(), f.parent()) else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        if name == "index" {
            continue;
        }
        let Ok(key) = dir.strip_prefix(&class) else {
            continue;
        };
        out.push((
            "class".to_owned(),
            key.to_string_lossy().into_owned(),
            Some(name),
        ));
    }
    out
}

impl Table for SelinuxSettings {
    fn name(&self) -> &'static str {
        "selinux_settings"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let mounts = read_text(Path::new("/proc/self/mounts")).unwrap_or_default();
        let Some(m) = parse_mounts(&mounts)
            .into_iter()
            .find(|m| m.fstype == "selinuxfs")
        else {
            return Ok(Box::new(std::iter::empty()));
        };
        let rows: Vec<_> = settings(Path::new(&m.path))
            .into_iter()
            .map(|(s, k, v)| Ok(vec![text(s), text(k), v.map_or(Value::Null, text)]))
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::util::rows_of;

    #[test]
    fn a_selinuxfs_tree_gives_settings() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let w = |p: &str, v: &str| {
            let p = r.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        for (k, v) in [
            ("checkreqprot", "0"),
            ("deny_unknown", "0"),
            ("enforce", "1"),
            ("mls", "1"),
            ("policyvers", "33"),
        ] {
            w(k, v);
        }
        w("booleans/httpd_can_network_connect", "1 1");
        w("booleans/ssh_sysadm_login", "0 0");
        w("booleans/pending", "0 1");
        w("policy_capabilities/network_peer_controls", "1");
        w("initial_contexts/kernel", "system_u:system_r:kernel_t:s0\0");
        w("class/file/index", "6");
        w("class/file/perms/read", "2");
        w("class/file/perms/write", "3");
        let s =
            |a: &str, b: &str, c: Option<&str>| (a.to_owned(), b.to_owned(), c.map(str::to_owned));
        assert_eq!(
            settings(r),
            [
                s("", "checkreqprot", Some("0")),
                s("", "deny_unknown", Some("0")),
                s("", "enforce", Some("1")),
                s("", "mls", Some("1")),
                s("", "policyvers", Some("33")),
                s("", "reject_unknown", None),
                s("booleans", "httpd_can_network_connect", Some("on")),
                s("booleans", "ssh_sysadm_login", Some("off")),
                s("policy_capabilities", "network_peer_controls", Some("1")),
                s(
                    "initial_contexts",
                    "kernel",
                    Some("system_u:system_r:kernel_t:s0")
                ),
                s("class", "file/perms", Some("read")),
                s("class", "file/perms", Some("write")),
            ]
        );
    }

    /// This host has no selinuxfs mounted: no rows. With one, `enforce` is what getenforce says.
    #[test]
    fn this_host_has_rows_only_with_selinuxfs() {
        let mounted = std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("selinuxfs"));
        let got =
            rows_of("SELECT value FROM selinux_settings WHERE scope = '' AND key = 'enforce'");
        if mounted {
            let want = match crate::sql::tables::util::tool("getenforce", &[]).trim() {
                "Enforcing" => "1",
                _ => "0",
            };
            assert_eq!(got, [vec![want.to_owned()]]);
        } else {
            assert!(got.is_empty());
            assert_eq!(
                rows_of("SELECT count(*) FROM selinux_settings"),
                [vec!["0".to_owned()]]
            );
        }
    }
}
