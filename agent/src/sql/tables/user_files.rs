//! Shared by the tables over users' files (`authorized_keys`, `known_hosts`, `user_ssh_keys`,
//! `shell_history`, `ssh_configs`, `vscode_extensions`, …): the accounts a query asks for
//! and a guarded read of a file in an account's home folder.
//!
//! Accounts come from `<root>/etc/passwd` (`root` is `/`, or a process's root for
//! `pid_with_namespace`): the accounts a `uid = N` constraint names, or every account when
//! there is none (osquery reads only its own account then; a superset, the same rows for
//! `JOIN users USING (uid)`).
//!
//! A file in a home folder is read only when, once opened, it is a regular file whose real
//! path (after every symlink) is inside the home folder's real path: a user cannot make the
//! agent read `/etc/shadow` through `~/.bash_history -> /etc/shadow`. It is opened
//! non-blocking (a FIFO never stalls a query) and at most `max` bytes are read.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::{Path, PathBuf},
};

use crate::{
    sql::{
        tables::{
            ns::value_i64,
            users::{Passwd, parse_passwd},
        },
        vtab::{Op, QueryContext},
    },
    sys::procfs::read_text,
};

/// An account whose files a table reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    /// The home folder as the process at `root` sees it (what the rows show).
    pub home: String,
    /// The home folder on this host's view (`root` joined).
    pub path: PathBuf,
}

/// The accounts of `<root>/etc/passwd` that the `=` constraints on `uid_column` ask for (all
/// of them without one), sorted by uid; an account without an absolute home is skipped.
pub fn accounts(root: &Path, ctx: &QueryContext, uid_column: usize) -> Vec<Account> {
    let asked = ctx.equals(uid_column);
    let wanted: Option<Vec<i64>> =
        (!asked.is_empty()).then(|| asked.into_iter().filter_map(value_i64).collect());
    let passwd = read_text(&root.join("etc/passwd")).unwrap_or_default();
    let mut out: Vec<Account> = parse_passwd(&passwd)
        .into_iter()
        .filter(|p| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&i64::from(p.uid)))
        })
        .filter(|p| p.dir.starts_with('/'))
        .map(|p: Passwd| Account {
            uid: p.uid,
            path: root.join(p.dir.trim_start_matches('/')),
            home: p.dir,
        })
        .collect();
    out.sort_by_key(|a| a.uid);
    out.dedup();
    out
}

/// The planner's cost for a table keyed by uid: cheap with `uid =`, so a `JOIN users USING
/// (uid)` reads one account per user row.
pub fn uid_cost(constrained: &[(usize, Op)], uid_column: usize) -> f64 {
    if constrained
        .iter()
        .any(|(c, op)| *c == uid_column && *op == Op::Eq)
    {
        100.0
    } else {
        1_000_000.0
    }
}

/// `file` opened, if it is a regular file whose real path is inside `home`'s real path.
pub fn open_inside(home: &Path, file: &Path) -> Option<File> {
    let home_real = std::fs::canonicalize(home).ok()?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(file)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    // What was opened, not what the path names now: no race with a swapped symlink.
    let real = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?;
    real.starts_with(&home_real).then_some(f)
}

/// The bytes of `file` (see [`open_inside`]): the first `max` bytes, or with `tail` the last
/// `max` (from the first line start in them).
pub fn read_inside(home: &Path, file: &Path, max: u64, tail: bool) -> Option<Vec<u8>> {
    let mut f = open_inside(home, file)?;
    let len = f.metadata().ok()?.len();
    let mut buf = Vec::new();
    if tail && len > max {
        // One byte more, before the window: a line that starts the window is kept whole.
        f.seek(SeekFrom::Start(len - max - 1)).ok()?;
        f.take(max + 1).read_to_end(&mut buf).ok()?;
        let start = buf
            .iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        buf.drain(..start);
    } else {
        f.take(max).read_to_end(&mut buf).ok()?;
    }
    Some(buf)
}

/// [`read_inside`] as text (bytes that are not UTF-8 replaced).
pub fn read_text_inside(home: &Path, file: &Path, max: u64) -> Option<String> {
    read_inside(home, file, max, false).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `rel` under the account's home: (the path to open, the path the rows show).
pub fn in_home(a: &Account, rel: &str) -> (PathBuf, String) {
    let shown = if a.home.ends_with('/') {
        format!("{}{rel}", a.home)
    } else {
        format!("{}/{rel}", a.home)
    };
    (a.path.join(rel), shown)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sql::vtab::Constraint;

    /// A fake root with an `/etc/passwd` of `(name, uid, home)`, the homes created.
    pub fn fake_root(accounts: &[(&str, u32, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut passwd = String::new();
        for (name, uid, home) in accounts {
            passwd.push_str(&format!("{name}:x:{uid}:{uid}::{home}:/bin/sh\n"));
            std::fs::create_dir_all(dir.path().join(home.trim_start_matches('/'))).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        dir
    }

    pub fn uid_eq(column: usize, uid: i64) -> QueryContext {
        QueryContext {
            constraints: vec![Constraint {
                column,
                op: Op::Eq,
                value: rusqlite::types::Value::Integer(uid),
            }],
            columns_used: None,
        }
    }

    #[test]
    fn accounts_follow_the_uid_constraint_and_reads_stay_in_the_home() {
        let root = fake_root(&[("alice", 1000, "/home/alice"), ("bob", 1001, "/home/bob")]);
        let r = root.path();
        let all = accounts(r, &QueryContext::default(), 0);
        assert_eq!(
            all.iter()
                .map(|a| (a.uid, a.home.as_str()))
                .collect::<Vec<_>>(),
            [(1000, "/home/alice"), (1001, "/home/bob")]
        );
        assert_eq!(all[0].path, r.join("home/alice"));
        let bob = accounts(r, &uid_eq(0, 1001), 0);
        assert_eq!(bob.len(), 1);
        assert_eq!(bob[0].uid, 1001);
        assert!(accounts(r, &uid_eq(0, 7), 0).is_empty());

        let alice = r.join("home/alice");
        std::fs::write(alice.join("ok"), "0123456789\nabc\n").unwrap();
        std::fs::write(r.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(r.join("secret"), alice.join("out")).unwrap();
        std::os::unix::fs::symlink(alice.join("ok"), alice.join("in")).unwrap();
        std::fs::create_dir(alice.join("d")).unwrap();
        let read = |name: &str, max, tail| read_inside(&alice, &alice.join(name), max, tail);
        assert_eq!(read("ok", 100, false).unwrap(), b"0123456789\nabc\n");
        assert_eq!(read("ok", 4, false).unwrap(), b"0123");
        assert_eq!(read("ok", 6, true).unwrap(), b"abc\n");
        assert_eq!(read("ok", 4, true).unwrap(), b"abc\n");
        assert_eq!(read("ok", 3, true).unwrap(), b"");
        assert_eq!(read("in", 100, false).unwrap(), b"0123456789\nabc\n");
        assert_eq!(read("out", 100, false), None);
        assert_eq!(read("d", 100, false), None);
        assert_eq!(read("missing", 100, false), None);
        let (p, shown) = in_home(&all[0], ".ssh/config");
        assert_eq!(p, alice.join(".ssh/config"));
        assert_eq!(shown, "/home/alice/.ssh/config");
    }

    /// On the host, through the engine: each table over users' files gives the same rows
    /// alone and joined with `users` (Fleet's way to ask for every user's), and `uid = N`
    /// keeps that account's.
    #[test]
    fn the_tables_join_users_on_the_host() {
        use crate::sql::tables::util::rows_of;
        for (t, cols) in [
            ("authorized_keys", "uid, algorithm, key_file"),
            ("known_hosts", "uid, key_file, key"),
            ("user_ssh_keys", "uid, path, encrypted, key_type"),
            ("shell_history", "uid, time, history_file"),
            ("ssh_configs", "uid, block, option, ssh_config_file"),
            ("vscode_extensions", "uid, name, path"),
            ("atom_packages", "uid, name, path"),
        ] {
            let alone = rows_of(&format!("SELECT {cols} FROM {t} ORDER BY 1, 2, 3"));
            let q = cols
                .split(", ")
                .map(|c| format!("{t}.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let joined = rows_of(&format!(
                "SELECT {q} FROM users JOIN {t} USING (uid) ORDER BY 1, 2, 3"
            ));
            assert_eq!(alone, joined, "{t}");
            let root_only = rows_of(&format!(
                "SELECT {cols} FROM {t} WHERE uid = 0 ORDER BY 1, 2, 3"
            ));
            let want: Vec<Vec<String>> = alone.iter().filter(|r| r[0] == "0").cloned().collect();
            assert_eq!(root_only, want, "{t}");
        }
    }
}
