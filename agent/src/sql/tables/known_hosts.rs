//! `known_hosts`: the lines of each account's `~/.ssh/known_hosts` (accounts and file guards:
//! [`super::user_files`]; `WHERE uid = N` reads one account). As in osquery every line that
//! is not blank or a `#` comment is a row, unparsed (`key`), hashed host names included.

use std::path::Path;

use rusqlite::types::Value;

use crate::sql::{
    tables::{
        user_files::{accounts, in_home, read_text_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[col("uid", BigInt), col("key", Text), col("key_file", Text)];
const UID: usize = 0;
const FILE: &str = ".ssh/known_hosts";
const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug)]
pub struct KnownHosts;

/// The entries of a known_hosts file's text.
pub fn parse(s: &str) -> impl Iterator<Item = &str> {
    s.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        let (path, shown) = in_home(&a, FILE);
        let Some(s) = read_text_inside(&a.path, &path, MAX_BYTES) else {
            continue;
        };
        rows.extend(parse(&s).map(|l| vec![int(a.uid), text(l), text(shown.clone())]));
    }
    rows
}

impl Table for KnownHosts {
    fn name(&self) -> &'static str {
        "known_hosts"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(
            rows_under(Path::new("/"), ctx).into_iter().map(Ok),
        ))
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        uid_cost(constrained, UID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::{
        user_files::tests::{fake_root, uid_eq},
        util::tool,
    };

    const FIXTURE: &str = "# added by hand\n\n\
        mirror.example.org,192.0.2.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0\n\
        |1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAE2VjZHNh\n\
        @cert-authority *.example.org ssh-rsa AAAAB3NzaC1yc2E\r\n";

    #[test]
    fn every_entry_line_is_a_row() {
        assert_eq!(
            parse(FIXTURE).collect::<Vec<_>>(),
            [
                "mirror.example.org,192.0.2.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0",
                "|1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAE2VjZHNh",
                "@cert-authority *.example.org ssh-rsa AAAAB3NzaC1yc2E",
            ]
        );
    }

    /// A file in a fake home, and the hosts `ssh-keygen -F` finds in it.
    #[test]
    fn a_users_file_is_read_and_matches_ssh_keygen() {
        let root = fake_root(&[("root", 0, "/root"), ("carol", 1002, "/home/carol")]);
        let ssh = root.path().join("home/carol/.ssh");
        std::fs::create_dir(&ssh).unwrap();
        let f = ssh.join("known_hosts");
        std::fs::write(&f, FIXTURE).unwrap();
        let rows = rows_under(root.path(), &QueryContext::default());
        let want: Vec<Vec<Value>> = parse(FIXTURE)
            .map(|l| vec![int(1002), text(l), text("/home/carol/.ssh/known_hosts")])
            .collect();
        assert_eq!(rows, want);
        assert_eq!(
            rows_under(root.path(), &uid_eq(UID, 0)),
            Vec::<Vec<Value>>::new()
        );
        let found = tool(
            "ssh-keygen",
            &["-F", "mirror.example.org", "-f", f.to_str().unwrap()],
        );
        let line = found.lines().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(rows[0][1], text(line));
    }
}
