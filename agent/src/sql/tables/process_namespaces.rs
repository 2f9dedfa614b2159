//! `process_namespaces`: the namespaces of each process, as the inode numbers of
//! `/proc/<pid>/ns/<kind>` (what `lsns` and `readlink` show inside `kind:[…]`). `WHERE pid = N`
//! reads only that process.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            ns::pids_for,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_link,
};

const KINDS: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];

const COLUMNS: &[Column] = &[
    col("pid", Integer),
    col("cgroup_namespace", Text),
    col("ipc_namespace", Text),
    col("mnt_namespace", Text),
    col("net_namespace", Text),
    col("pid_namespace", Text),
    col("user_namespace", Text),
    col("uts_namespace", Text),
];
const PID: usize = 0;

#[derive(Debug)]
pub struct ProcessNamespaces;

/// The inode of a namespace link's target `kind:[inode]`.
pub fn inode(target: &str) -> Option<&str> {
    target.split_once(":[")?.1.strip_suffix(']')
}

impl Table for ProcessNamespaces {
    fn name(&self) -> &'static str {
        "process_namespaces"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, _) = pids_for(ctx, PID, Path::new("/proc"))?;
        let mut rows = Vec::new();
        for pid in pids {
            let ns: Vec<Option<String>> = KINDS
                .iter()
                .map(|k| {
                    read_link(Path::new(&format!("/proc/{pid}/ns/{k}")))
                        .and_then(|t| inode(&t).map(str::to_owned))
                })
                .collect();
            // Gone, or not ours to read: no row.
            if ns.iter().all(Option::is_none) {
                continue;
            }
            let mut row = vec![int(pid)];
            row.extend(ns.into_iter().map(|n| n.map_or(Value::Null, text)));
            rows.push(Ok(row));
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn our_namespaces_are_what_readlink_shows() {
        assert_eq!(super::inode("mnt:[4026531841]"), Some("4026531841"));
        assert_eq!(super::inode("garbage"), None);
        let pid = std::process::id();
        let want: Vec<String> = super::KINDS
            .iter()
            .map(|k| {
                let t = tool("readlink", &[&format!("/proc/{pid}/ns/{k}")]);
                super::inode(t.trim()).unwrap().to_owned()
            })
            .collect();
        let got = rows_of(&format!(
            "SELECT cgroup_namespace, ipc_namespace, mnt_namespace, net_namespace, pid_namespace, user_namespace, uts_namespace FROM process_namespaces WHERE pid = {pid}"
        ));
        assert_eq!(got, [want]);
    }
}
