//! `user_groups`: every (uid, gid) membership: each account's primary group (`/etc/passwd`)
//! and the groups that list it as a member (`/etc/group`), osquery's columns.

use std::path::Path;

use crate::{
    sql::{
        tables::{users::parse_passwd, util::int},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("uid", BigInt), col("gid", BigInt)];

#[derive(Debug)]
pub struct UserGroups;

/// (gid, member names) of each well-formed group line.
fn members(s: &str) -> Vec<(u32, Vec<String>)> {
    s.lines()
        .filter(|l| !l.starts_with(['#', '+', '-']))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let [_, _, gid, m] = f.as_slice() else {
                return None;
            };
            Some((
                gid.trim().parse().ok()?,
                m.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ))
        })
        .collect()
}

/// The memberships of passwd and group texts, in order (uid, then gid), without repeats.
pub fn pairs(passwd: &str, group: &str) -> Vec<(u32, u32)> {
    let users = parse_passwd(passwd);
    let groups = members(group);
    let mut out: Vec<(u32, u32)> = Vec::new();
    for u in &users {
        out.push((u.uid, u.gid));
        out.extend(
            groups
                .iter()
                .filter(|(_, m)| m.contains(&u.name))
                .map(|(g, _)| (u.uid, *g)),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Table for UserGroups {
    fn name(&self) -> &'static str {
        "user_groups"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let passwd = read_text(Path::new("/etc/passwd")).unwrap_or_default();
        let group = read_text(Path::new("/etc/group")).unwrap_or_default();
        Ok(Box::new(
            pairs(&passwd, &group)
                .into_iter()
                .map(|(u, g)| Ok(vec![int(u), int(g)])),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn each_accounts_groups_are_what_id_says() {
        assert_eq!(
            super::pairs(
                "a:x:1000:100::/h:/bin/sh\nb:x:1001:1001::/h:/bin/sh\n",
                "users:x:100:\nsudo:x:27:a,b\nb:x:1001:\n"
            ),
            [(1000, 27), (1000, 100), (1001, 27), (1001, 1001)]
        );
        // For every account: `id -G NAME` (primary and supplementary groups from the files).
        for u in tool("getent", &["passwd"]).lines().take(40) {
            let f: Vec<&str> = u.split(':').collect();
            let mut want: Vec<Vec<String>> = tool("id", &["-G", f[0]])
                .split_whitespace()
                .map(|g| vec![f[2].to_owned(), g.to_owned()])
                .collect();
            want.sort();
            want.dedup();
            let mut got = rows_of(&format!(
                "SELECT uid, gid FROM user_groups WHERE uid = {}",
                f[2]
            ));
            got.sort();
            assert_eq!(got, want, "{}", f[0]);
        }
    }
}
