//! `ssh_configs`: the options of each account's `~/.ssh/config` (accounts and file guards:
//! [`super::user_files`]; `WHERE uid = N` reads one account) and of the system-wide
//! `/etc/ssh/ssh_config` (uid 0). As osquery reads them: each line trimmed and lowercased,
//! comments and blank lines skipped; a `Host`/`Match` line opens a block (`block`), every other
//! line is an `option` of the block it is in (empty before the first). `Include`d files are
//! not followed (osquery does not either); they show as an `include …` option.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            user_files::{accounts, in_home, read_text_inside, uid_cost},
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("uid", BigInt),
    col("block", Text),
    col("option", Text),
    col("ssh_config_file", Text),
];
const UID: usize = 0;
const SYSTEM: &str = "/etc/ssh/ssh_config";
const USER: &str = ".ssh/config";
const MAX_BYTES: u64 = 4 << 20;

#[derive(Debug)]
pub struct SshConfigs;

/// Whether a (lowercased) line opens a block: `host` or `match`, then a blank or `=`.
fn opens_block(line: &str) -> bool {
    ["host", "match"].iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|r| r.starts_with([' ', '\t', '=']))
    })
}

/// (block, option) of each option line of a config's text.
pub fn parse(s: &str) -> Vec<(String, String)> {
    let mut block = String::new();
    let mut out = Vec::new();
    for line in s.lines() {
        let line = line.trim().to_lowercase();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if opens_block(&line) {
            block = line;
        } else {
            out.push((block.clone(), line));
        }
    }
    out
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    let mut add = |uid: u32, s: &str, shown: &str| {
        for (b, o) in parse(s) {
            rows.push(vec![int(uid), text(b), text(o), text(shown)]);
        }
    };
    for a in accounts(root, ctx, UID) {
        let (path, shown) = in_home(&a, USER);
        if let Some(s) = read_text_inside(&a.path, &path, MAX_BYTES) {
            add(a.uid, &s, &shown);
        }
    }
    if let Some(mut s) = read_text(&root.join(SYSTEM.trim_start_matches('/'))) {
        let mut cut = s.len().min(MAX_BYTES as usize);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        add(0, &s, SYSTEM);
    }
    rows
}

impl Table for SshConfigs {
    fn name(&self) -> &'static str {
        "ssh_configs"
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

    const CONFIG: &str = "# mine\nCompression yes\n\nHost mirror.example.org\n    User Bob\n\tPort 2222\n  # inner\nMatch host *.example.org exec \"true\"\n  IdentityFile ~/.ssh/id_x\nHostName=ignored.example.org\nhost\tother\n  ForwardAgent no\n";

    #[test]
    fn options_fall_in_their_blocks() {
        let o = |b: &str, s: &str| (b.to_owned(), s.to_owned());
        assert_eq!(
            parse(CONFIG),
            [
                o("", "compression yes"),
                o("host mirror.example.org", "user bob"),
                o("host mirror.example.org", "port 2222"),
                o(
                    "match host *.example.org exec \"true\"",
                    "identityfile ~/.ssh/id_x"
                ),
                o(
                    "match host *.example.org exec \"true\"",
                    "hostname=ignored.example.org"
                ),
                o("host\tother", "forwardagent no"),
            ]
        );
    }

    /// A user's config and the system one under a fake root; the options of the
    /// `mirror.example.org` block are what `ssh -G` resolves for that host.
    #[test]
    fn user_and_system_files_are_rows_and_agree_with_ssh() {
        let root = fake_root(&[("hank", 1007, "/home/hank")]);
        let ssh = root.path().join("home/hank/.ssh");
        std::fs::create_dir(&ssh).unwrap();
        std::fs::write(ssh.join("config"), CONFIG).unwrap();
        std::fs::create_dir_all(root.path().join("etc/ssh")).unwrap();
        std::fs::write(
            root.path().join("etc/ssh/ssh_config"),
            "Host *\n  SendEnv LANG\n",
        )
        .unwrap();
        let rows = rows_under(root.path(), &QueryContext::default());
        let mut want: Vec<Vec<Value>> = parse(CONFIG)
            .into_iter()
            .map(|(b, o)| vec![int(1007), text(b), text(o), text("/home/hank/.ssh/config")])
            .collect();
        want.push(vec![
            int(0),
            text("host *"),
            text("sendenv lang"),
            text(SYSTEM),
        ]);
        assert_eq!(rows, want);
        // With `uid = 0` the system file's rows are still there (SQLite keeps them), hank's not.
        assert_eq!(rows_under(root.path(), &uid_eq(UID, 0)), want[6..].to_vec());

        let resolved = tool(
            "ssh",
            &[
                "-G",
                "-F",
                ssh.join("config").to_str().unwrap(),
                "mirror.example.org",
            ],
        );
        for r in &rows[1..3] {
            let Value::Text(opt) = &r[2] else { panic!() };
            // ssh keeps the values' case; osquery lowercases the whole line.
            assert!(
                resolved.lines().any(|l| l.eq_ignore_ascii_case(opt)),
                "{opt} not in ssh -G"
            );
        }
    }
}
