//! `shell_history`: the commands in each account's `~/.bash_history`, `~/.zsh_history`,
//! `~/.zhistory`, `~/.history`, `~/.sh_history` and `~/.bash_sessions/*.history` (accounts and
//! file guards: [`super::user_files`]; `WHERE uid = N` reads one account). One row per line,
//! as osquery reads them: a bash `#<epoch>` line gives the next line its `time`; a zsh
//! extended line `: <epoch>:<elapsed>;<command>` is split; any other line is a command with
//! `time` 0. Only the last 8 MiB of a file are read (the latest commands).

use std::path::Path;

use rusqlite::types::Value;

use crate::sql::{
    tables::{
        user_files::{Account, accounts, in_home, read_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("uid", BigInt),
    col("time", Integer),
    col("command", Text),
    col("history_file", Text),
];
const UID: usize = 0;
const FILES: [&str; 5] = [
    ".bash_history",
    ".zsh_history",
    ".zhistory",
    ".history",
    ".sh_history",
];
const MAX_BYTES: u64 = 8 << 20;

#[derive(Debug)]
pub struct ShellHistory;

/// `#<digits>` alone on a line: a bash timestamp.
fn bash_time(line: &str) -> Option<&str> {
    let d = line.strip_prefix('#')?;
    (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// `: <up to 10 spaces><1-11 digits>:<digits>;<command>`: a zsh extended entry.
fn zsh_entry(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(':')?;
    let trimmed = rest.trim_start_matches(' ');
    if rest.len() - trimmed.len() > 10 {
        return None;
    }
    let (time, rest) = trimmed.split_once(':')?;
    let (elapsed, command) = rest.split_once(';')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(time) && time.len() <= 11 && digits(elapsed)).then_some((time, command))
}

/// (time, command) of each entry of a history file's text.
pub fn parse(s: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut pending: Option<i64> = None;
    let body = s.strip_suffix('\n').unwrap_or(s);
    if s.is_empty() {
        return out;
    }
    for line in body.split('\n') {
        if pending.is_none()
            && let Some(t) = bash_time(line)
        {
            pending = Some(t.parse().unwrap_or(0));
            continue;
        }
        if let Some(t) = pending.take() {
            out.push((t, line.to_owned()));
        } else if let Some((t, cmd)) = zsh_entry(line) {
            out.push((t.parse().unwrap_or(0), cmd.to_owned()));
        } else {
            out.push((0, line.to_owned()));
        }
    }
    out
}

/// The history files of an account: (path to open, path shown).
fn files_of(a: &Account) -> Vec<(std::path::PathBuf, String)> {
    let mut out: Vec<_> = FILES.iter().map(|f| in_home(a, f)).collect();
    let (sessions, _) = in_home(a, ".bash_sessions");
    if let Ok(rd) = std::fs::read_dir(sessions) {
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".history"))
            .collect();
        names.sort();
        out.extend(
            names
                .iter()
                .map(|n| in_home(a, &format!(".bash_sessions/{n}"))),
        );
    }
    out
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        for (path, shown) in files_of(&a) {
            let Some(b) = read_inside(&a.path, &path, MAX_BYTES, true) else {
                continue;
            };
            for (t, cmd) in parse(&String::from_utf8_lossy(&b)) {
                rows.push(vec![int(a.uid), int(t), text(cmd), text(shown.clone())]);
            }
        }
    }
    rows
}

impl Table for ShellHistory {
    fn name(&self) -> &'static str {
        "shell_history"
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
    use crate::sql::tables::user_files::tests::{fake_root, uid_eq};

    #[test]
    fn bash_and_zsh_lines_parse_as_osquery_reads_them() {
        let c = |t: i64, s: &str| (t, s.to_owned());
        assert_eq!(
            parse("ls -la\n#1700000000\ncd /tmp\n#12\n#34\n# not a time\n"),
            [
                c(0, "ls -la"),
                c(1_700_000_000, "cd /tmp"),
                c(12, "#34"),
                c(0, "# not a time")
            ]
        );
        assert_eq!(
            parse(": 1700000001:0;git status\n:  1700000002:12;echo a;b\n: x:0;no\nplain"),
            [
                c(1_700_000_001, "git status"),
                c(1_700_000_002, "echo a;b"),
                c(0, ": x:0;no"),
                c(0, "plain")
            ]
        );
        assert_eq!(parse(""), []);
        assert_eq!(parse("\n"), [c(0, "")]);
    }

    #[test]
    fn histories_in_a_fake_home_are_rows() {
        let root = fake_root(&[("frank", 1005, "/home/frank"), ("gina", 1006, "/home/gina")]);
        let home = root.path().join("home/frank");
        std::fs::write(home.join(".bash_history"), "#1700000000\nmake\nls\n").unwrap();
        std::fs::write(home.join(".zsh_history"), ": 1700000005:0;vim a\n").unwrap();
        std::fs::create_dir(home.join(".bash_sessions")).unwrap();
        std::fs::write(home.join(".bash_sessions/A1.history"), "top\n").unwrap();
        std::fs::write(home.join(".bash_sessions/A1.session"), "skip\n").unwrap();
        // Gina's history points at Frank's: outside her home, not read.
        std::os::unix::fs::symlink(
            home.join(".bash_history"),
            root.path().join("home/gina/.bash_history"),
        )
        .unwrap();
        let f = |t: i64, c: &str, file: &str| {
            vec![
                int(1005),
                int(t),
                text(c),
                text(format!("/home/frank/{file}")),
            ]
        };
        let want = vec![
            f(1_700_000_000, "make", ".bash_history"),
            f(0, "ls", ".bash_history"),
            f(1_700_000_005, "vim a", ".zsh_history"),
            f(0, "top", ".bash_sessions/A1.history"),
        ];
        assert_eq!(rows_under(root.path(), &QueryContext::default()), want);
        assert_eq!(rows_under(root.path(), &uid_eq(UID, 1005)), want);
        assert!(rows_under(root.path(), &uid_eq(UID, 1006)).is_empty());

        // A huge history: only its last lines, from a line start.
        let mut big = String::new();
        let n = (MAX_BYTES as usize) / 10 + 1000;
        for i in 0..n {
            big.push_str(&format!("cmd{i:06}\n"));
        }
        std::fs::write(home.join(".history"), &big).unwrap();
        let rows = rows_under(root.path(), &uid_eq(UID, 1005));
        let hist: Vec<&Vec<Value>> = rows
            .iter()
            .filter(|r| r[3] == text("/home/frank/.history"))
            .collect();
        assert_eq!(hist.len(), (MAX_BYTES as usize) / 10);
        assert_eq!(hist.last().unwrap()[2], text(format!("cmd{:06}", n - 1)));
        assert_eq!(
            hist[0][2],
            text(format!("cmd{:06}", n - (MAX_BYTES as usize) / 10))
        );
    }
}
