//! `users`: local accounts from `/etc/passwd`, with osquery's columns. Malformed lines are
//! skipped. `WHERE pid_with_namespace = N` reads process N's `/etc/passwd` (a container's).

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            ns::ns_roots,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::{NsRoot, read_text},
};

const COLUMNS: &[Column] = &[
    col("uid", BigInt),
    col("gid", BigInt),
    col("uid_signed", BigInt),
    col("gid_signed", BigInt),
    col("username", Text),
    col("description", Text),
    col("directory", Text),
    col("shell", Text),
    col("uuid", Text),
    // Windows-only in osquery (roaming/local/system profile): hidden and NULL here, so
    // `SELECT *` matches osquery on Linux.
    hidden("type", Text),
    hidden("pid_with_namespace", Integer),
];

const PID_WITH_NAMESPACE: usize = 10;

#[derive(Debug)]
pub struct Users;

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub dir: String,
    pub shell: String,
}

/// Entries of a passwd(5) file; comments, blank, short and non-numeric lines are skipped,
/// and so are NIS `+`/`-` compat entries, which are not accounts.
pub fn parse_passwd(s: &str) -> Vec<Passwd> {
    s.lines()
        .filter_map(|line| {
            if line.starts_with(['#', '+', '-']) {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            let [name, _pw, uid, gid, gecos, dir, shell] = f.as_slice() else {
                return None;
            };
            if name.is_empty() {
                return None;
            }
            Some(Passwd {
                name: (*name).to_owned(),
                uid: uid.trim().parse().ok()?,
                gid: gid.trim().parse().ok()?,
                gecos: (*gecos).to_owned(),
                dir: (*dir).to_owned(),
                shell: (*shell).to_owned(),
            })
        })
        .collect()
}

fn row(p: Passwd, at: &NsRoot) -> Vec<Value> {
    vec![
        int(p.uid),
        int(p.gid),
        // The same 32 bits read as signed: 4294967294 ("nobody" on some systems) is -2.
        int(p.uid as i32),
        int(p.gid as i32),
        text(p.name),
        text(p.gecos),
        text(p.dir),
        text(p.shell),
        text(""),
        Value::Null,
        int(at.pid),
    ]
}

impl Table for Users {
    fn name(&self) -> &'static str {
        "users"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut rows = Vec::new();
        for at in ns_roots(ctx, PID_WITH_NAMESPACE) {
            let Some(s) = read_text(&at.join("/etc/passwd")) else {
                continue;
            };
            rows.extend(parse_passwd(&s).into_iter().map(|p| Ok(row(p, &at))));
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
    fn passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    # comment\n\
                    \n\
                    short:x:1:1\n\
                    toolong:x:1:1:a:b:c:d\n\
                    baduid:x:abc:1:a:/h:/bin/sh\n\
                    neg:x:-1:1:a:/h:/bin/sh\n\
                    +nisuser::::::\n\
                    :x:5:5::/:/bin/sh\n\
                    nobody:x:4294967294:4294967294:Kernel Overflow User:/nonexistent:/usr/sbin/nologin\n\
                    spaced:x:1000:1000:Jane Doe,,,:/home/jane doe:/bin/zsh";
        let got = parse_passwd(text);
        let names: Vec<_> = got.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["root", "nobody", "spaced"]);
        assert_eq!(
            got[2],
            Passwd {
                name: "spaced".into(),
                uid: 1000,
                gid: 1000,
                gecos: "Jane Doe,,,".into(),
                dir: "/home/jane doe".into(),
                shell: "/bin/zsh".into(),
            }
        );
        let at = NsRoot {
            pid: 0,
            root: "/".into(),
        };
        let r = row(got[1].clone(), &at);
        assert_eq!(
            r[..4].to_vec(),
            vec![
                int(4_294_967_294u32),
                int(4_294_967_294u32),
                int(-2),
                int(-2)
            ]
        );
    }

    #[test]
    fn root_is_uid_zero_with_home_root() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query(
                "SELECT uid, gid, uid_signed, username, directory FROM users \
                 WHERE username = 'root'",
            )
            .expect("query");
        assert_eq!(
            rs.rows,
            vec![vec![int(0), int(0), int(0), text("root"), text("/root")]]
        );
        // Through our own root (`/proc/<own pid>/root`): the same accounts, tagged.
        let me = std::process::id();
        let ns = engine
            .query(&format!(
                "SELECT username, pid_with_namespace FROM users \
                 WHERE pid_with_namespace = {me} AND uid = 0"
            ))
            .expect("query");
        assert_eq!(ns.rows, vec![vec![text("root"), int(me)]]);
        // Every passwd line that parses is a row.
        let passwd = std::fs::read_to_string("/etc/passwd").expect("passwd");
        let n = engine.query("SELECT count(*) FROM users").expect("query");
        assert_eq!(n.rows, vec![vec![int(parse_passwd(&passwd).len() as i64)]]);
    }
}
