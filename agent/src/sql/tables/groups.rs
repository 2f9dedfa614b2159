//! `groups`: local groups from `/etc/group`, with osquery's columns. Malformed lines are
//! skipped. `WHERE pid_with_namespace = N` reads process N's `/etc/group` (a container's).

use crate::{
    sql::{
        tables::{
            ns::ns_roots,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("gid", BigInt),
    col("gid_signed", BigInt),
    col("groupname", Text),
    hidden("pid_with_namespace", Integer),
];

const PID_WITH_NAMESPACE: usize = 3;

#[derive(Debug)]
pub struct Groups;

/// (name, gid) of each well-formed group(5) line: `name:password:gid:members`.
pub fn parse_group(s: &str) -> Vec<(String, u32)> {
    s.lines()
        .filter_map(|line| {
            if line.starts_with(['#', '+', '-']) {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            let [name, _pw, gid, _members] = f.as_slice() else {
                return None;
            };
            if name.is_empty() {
                return None;
            }
            Some(((*name).to_owned(), gid.trim().parse().ok()?))
        })
        .collect()
}

impl Table for Groups {
    fn name(&self) -> &'static str {
        "groups"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut rows = Vec::new();
        for at in ns_roots(ctx, PID_WITH_NAMESPACE) {
            let Some(s) = read_text(&at.join("/etc/group")) else {
                continue;
            };
            for (name, gid) in parse_group(&s) {
                rows.push(Ok(vec![int(gid), int(gid as i32), text(name), int(at.pid)]));
            }
        }
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
    fn group_lines() {
        let got = parse_group(
            "root:x:0:\nsudo:x:27:alice,bob\n#c\nbad\nnum:x:z:\n:x:3:\nmany:x:1:a:b\n\
             nogroup:x:65534:\n",
        );
        assert_eq!(
            got,
            vec![
                ("root".to_owned(), 0),
                ("sudo".to_owned(), 27),
                ("nogroup".to_owned(), 65534)
            ]
        );
    }

    #[test]
    fn root_group_is_gid_zero() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query("SELECT gid, gid_signed, groupname FROM groups WHERE gid = 0")
            .expect("query");
        assert_eq!(rs.rows, vec![vec![int(0), int(0), text("root")]]);
        let me = std::process::id();
        let ns = engine
            .query(&format!(
                "SELECT groupname, pid_with_namespace FROM groups \
                 WHERE pid_with_namespace = {me} AND gid = 0"
            ))
            .expect("query");
        assert_eq!(ns.rows, vec![vec![text("root"), int(me)]]);
        // A pid that does not exist has no root to read: no rows, no error.
        let none = engine
            .query("SELECT count(*) FROM groups WHERE pid_with_namespace = 2147483647")
            .expect("query");
        assert_eq!(none.rows, vec![vec![int(0)]]);
        let group = std::fs::read_to_string("/etc/group").expect("group");
        let n = engine.query("SELECT count(*) FROM groups").expect("query");
        assert_eq!(n.rows, vec![vec![int(parse_group(&group).len() as i64)]]);
    }
}
