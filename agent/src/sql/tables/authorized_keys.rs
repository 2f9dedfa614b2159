//! `authorized_keys`: the public keys in each account's `~/.ssh/authorized_keys` and
//! `~/.ssh/authorized_keys2` (accounts and file guards: [`super::user_files`]; `WHERE uid =
//! N` reads one account, `pid_with_namespace` a process's root). A line is a key when it
//! has an OpenSSH key type (`ssh-rsa`, `ssh-ed25519`, `ecdsa-sha2-nistp*`, `ssh-dss`, the
//! `sk-` security-key types and their `-cert-v01` certificates), optionally after the
//! options (quoted commas and spaces allowed); `key` is the base64 blob, `comment` the rest.
//! As in osquery, a line with no key type but a `zos-key-ring-label=` option is a row of
//! options only. Comments and other lines are skipped.

use std::path::Path;

use rusqlite::types::Value;

use crate::sql::{
    tables::{
        ns::ns_roots,
        user_files::{accounts, in_home, read_text_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col, hidden},
};

const COLUMNS: &[Column] = &[
    col("uid", BigInt),
    col("algorithm", Text),
    col("key", Text),
    col("options", Text),
    col("comment", Text),
    col("key_file", Text),
    hidden("pid_with_namespace", Integer),
];
const UID: usize = 0;
const PID_WITH_NAMESPACE: usize = 6;
const FILES: [&str; 2] = [".ssh/authorized_keys", ".ssh/authorized_keys2"];
const MAX_BYTES: u64 = 4 << 20;

#[derive(Debug)]
pub struct AuthorizedKeys;

/// One key line: algorithm, key, options, comment.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Key {
    pub algorithm: String,
    pub key: String,
    pub options: String,
    pub comment: String,
}

/// Whether `t` names an OpenSSH public key type.
pub fn is_key_type(t: &str) -> bool {
    let base = t.strip_suffix("-cert-v01@openssh.com").unwrap_or(t);
    matches!(
        base,
        "ssh-rsa"
            | "ssh-dss"
            | "ssh-ed25519"
            | "ssh-ed448"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
            | "sk-ecdsa-sha2-nistp256@openssh.com"
            | "sk-ssh-ed25519@openssh.com"
    )
}

/// The end of the options field at the start of `line`: the first blank outside quotes.
fn options_end(line: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return i,
            _ => {}
        }
    }
    line.len()
}

/// The key of one authorized_keys line; None for comments, blanks and other lines.
pub fn parse_line(line: &str) -> Option<Key> {
    let line = line.trim_matches([' ', '\t', '\r']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (options, rest) = match line.split_once([' ', '\t']) {
        Some((first, _)) if is_key_type(first) => ("", line),
        _ => {
            let end = options_end(line);
            (&line[..end], line[end..].trim_start_matches([' ', '\t']))
        }
    };
    let mut parts = rest.splitn(2, [' ', '\t']);
    let algorithm = parts.next().unwrap_or("");
    if !is_key_type(algorithm) {
        // osquery keeps z/OS key-ring lines as options alone.
        return options
            .split(',')
            .any(|o| o.starts_with("zos-key-ring-label="))
            .then(|| Key {
                options: line.to_owned(),
                ..Key::default()
            });
    }
    let rest = parts.next().unwrap_or("").trim_start_matches([' ', '\t']);
    let (key, comment) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    if key.is_empty() {
        return None;
    }
    Some(Key {
        algorithm: algorithm.to_owned(),
        key: key.to_owned(),
        options: options.to_owned(),
        comment: comment.trim_matches([' ', '\t']).to_owned(),
    })
}

/// The rows under the file system root `root`, tagged with `pid`.
fn rows_under(root: &Path, pid: i64, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        for rel in FILES {
            let (path, shown) = in_home(&a, rel);
            let Some(s) = read_text_inside(&a.path, &path, MAX_BYTES) else {
                continue;
            };
            for k in s.lines().filter_map(parse_line) {
                rows.push(vec![
                    int(a.uid),
                    text(k.algorithm),
                    text(k.key),
                    text(k.options),
                    text(k.comment),
                    text(shown.clone()),
                    int(pid),
                ]);
            }
        }
    }
    rows
}

impl Table for AuthorizedKeys {
    fn name(&self) -> &'static str {
        "authorized_keys"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut rows = Vec::new();
        for at in ns_roots(ctx, PID_WITH_NAMESPACE) {
            rows.extend(rows_under(&at.root, at.pid, ctx));
        }
        Ok(Box::new(rows.into_iter().map(Ok)))
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

    fn k(algorithm: &str, key: &str, options: &str, comment: &str) -> Option<Key> {
        Some(Key {
            algorithm: algorithm.into(),
            key: key.into(),
            options: options.into(),
            comment: comment.into(),
        })
    }

    #[test]
    fn key_lines_split_into_their_fields() {
        assert_eq!(
            parse_line("ssh-ed25519 AAAAC3Nz alice@laptop"),
            k("ssh-ed25519", "AAAAC3Nz", "", "alice@laptop")
        );
        assert_eq!(
            parse_line(
                "from=\"10.0.0.1,host x\",command=\"echo a b\",no-pty ssh-rsa AAAAB3 my key  "
            ),
            k(
                "ssh-rsa",
                "AAAAB3",
                "from=\"10.0.0.1,host x\",command=\"echo a b\",no-pty",
                "my key"
            )
        );
        assert_eq!(
            parse_line("\tecdsa-sha2-nistp256\tAAAAE2"),
            k("ecdsa-sha2-nistp256", "AAAAE2", "", "")
        );
        assert_eq!(
            parse_line("restrict sk-ssh-ed25519@openssh.com AAAAGnNr c"),
            k("sk-ssh-ed25519@openssh.com", "AAAAGnNr", "restrict", "c")
        );
        assert_eq!(
            parse_line("zos-key-ring-label=\"KeyRing\""),
            Some(Key {
                options: "zos-key-ring-label=\"KeyRing\"".into(),
                ..Key::default()
            })
        );
        for junk in [
            "# ssh-rsa AAAA c",
            "",
            "ssh-rsa",
            "1024 35 1234 old",
            "no-pty",
        ] {
            assert_eq!(parse_line(junk), None, "{junk}");
        }
    }

    /// Keys made by ssh-keygen, read back: algorithm and blob as in the `.pub` files, and the
    /// type and comment `ssh-keygen -l` reports for the same file.
    #[test]
    fn keys_in_a_fake_home_match_ssh_keygen() {
        let root = fake_root(&[("alice", 1000, "/home/alice"), ("bob", 1001, "/home/bob")]);
        let ssh = root.path().join("home/alice/.ssh");
        std::fs::create_dir(&ssh).unwrap();
        let mut lines = String::from("# my keys\n");
        let mut pubs = Vec::new();
        for (t, opts) in [
            ("ed25519", ""),
            ("ecdsa", "no-pty,from=\"a b\" "),
            ("rsa", ""),
        ] {
            let f = ssh.join(format!("id_{t}"));
            tool(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    t,
                    "-N",
                    "",
                    "-C",
                    &format!("{t} key"),
                    "-f",
                    f.to_str().unwrap(),
                ],
            );
            let p = std::fs::read_to_string(f.with_extension("pub")).unwrap();
            lines.push_str(&format!("{opts}{}", p));
            pubs.push(
                p.split_whitespace()
                    .take(2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            );
        }
        let ak = ssh.join("authorized_keys");
        std::fs::write(&ak, &lines).unwrap();
        // Bob's file is a symlink out of his home: not read.
        std::fs::create_dir(root.path().join("home/bob/.ssh")).unwrap();
        std::os::unix::fs::symlink(&ak, root.path().join("home/bob/.ssh/authorized_keys")).unwrap();

        let rows = rows_under(root.path(), 0, &QueryContext::default());
        let want: Vec<Vec<Value>> = pubs
            .iter()
            .zip(["ed25519 key", "ecdsa key", "rsa key"])
            .zip(["", "no-pty,from=\"a b\"", ""])
            .map(|((p, c), o)| {
                vec![
                    int(1000),
                    text(p[0].clone()),
                    text(p[1].clone()),
                    text(o),
                    text(c),
                    text("/home/alice/.ssh/authorized_keys"),
                    int(0),
                ]
            })
            .collect();
        assert_eq!(rows, want);
        assert_eq!(
            rows_under(root.path(), 0, &uid_eq(UID, 1001)),
            Vec::<Vec<Value>>::new()
        );
        assert_eq!(rows_under(root.path(), 0, &uid_eq(UID, 1000)).len(), 3);

        // `ssh-keygen -l`: "<bits> <fingerprint> <comment> (<TYPE>)" per key of the file.
        let listed = tool("ssh-keygen", &["-l", "-f", ak.to_str().unwrap()]);
        let from_tool: Vec<(String, String)> = listed
            .lines()
            .map(|l| {
                let (rest, ty) = l.rsplit_once(" (").unwrap();
                let comment = rest.splitn(3, ' ').nth(2).unwrap_or("").to_owned();
                (ty.trim_end_matches(')').to_lowercase(), comment)
            })
            .collect();
        let ours: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                let (Value::Text(a), Value::Text(c)) = (&r[1], &r[4]) else {
                    panic!("{r:?}")
                };
                let ty = a
                    .trim_start_matches("ssh-")
                    .split('-')
                    .next()
                    .unwrap()
                    .to_owned();
                (ty, c.clone())
            })
            .collect();
        assert_eq!(ours, from_tool);
    }
}
