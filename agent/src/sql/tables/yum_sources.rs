//! `yum_sources`: the repositories of `/etc/yum.conf` and of the `*.repo` files in its
//! `reposdir` (default `/etc/yum.repos.d`), INI files: every section but `[main]` is a row
//! with its file (`source`) and its `name`, `baseurl`, `mirrorlist`, `metalink`, `enabled`,
//! `gpgcheck` and `gpgkey` as written (empty when absent; a value continued on indented
//! lines is joined with spaces). No yum
//! configuration, no rows. `pid_with_namespace` reads a process's root.

use std::path::Path;

use rusqlite::types::Value;

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
    col("name", Text),
    col("source", Text),
    col("baseurl", Text),
    col("mirrorlist", Text),
    col("metalink", Text),
    col("enabled", Text),
    col("gpgcheck", Text),
    col("gpgkey", Text),
    hidden("pid_with_namespace", Integer),
];
const PID_WITH_NAMESPACE: usize = 8;
const KEYS: [&str; 7] = [
    "name",
    "baseurl",
    "mirrorlist",
    "metalink",
    "enabled",
    "gpgcheck",
    "gpgkey",
];
const YUM_CONF: &str = "etc/yum.conf";
const REPOS_DIR: &str = "/etc/yum.repos.d";

#[derive(Debug)]
pub struct YumSources;

/// The sections of an INI text: (section, [(key, value)]).
pub fn parse_ini(s: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in s.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.push((name.trim().to_owned(), Vec::new()));
            continue;
        }
        let Some((_, keys)) = out.last_mut() else {
            continue;
        };
        if line.starts_with([' ', '\t']) && !t.contains('=') {
            if let Some((_, v)) = keys.last_mut() {
                v.push(' ');
                v.push_str(t);
            }
        } else if let Some((k, v)) = t.split_once('=') {
            keys.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn get<'a>(keys: &'a [(String, String)], k: &str) -> Option<&'a str> {
    keys.iter()
        .rev()
        .find(|(x, _)| x == k)
        .map(|(_, v)| v.as_str())
}

/// The repositories of one file's text: the seven values of each section but `[main]`.
pub fn repos(s: &str) -> Vec<[String; 7]> {
    parse_ini(s)
        .into_iter()
        .filter(|(sec, _)| sec != "main")
        .map(|(_, keys)| KEYS.map(|k| get(&keys, k).unwrap_or("").to_owned()))
        .collect()
}

fn rows_under(root: &Path, pid: i64) -> Vec<Vec<Value>> {
    let conf = read_text(&root.join(YUM_CONF)).unwrap_or_default();
    let mut found: Vec<(String, [String; 7])> = repos(&conf)
        .into_iter()
        .map(|r| (format!("/{YUM_CONF}"), r))
        .collect();
    let dirs = parse_ini(&conf)
        .into_iter()
        .find(|(s, _)| s == "main")
        .and_then(|(_, k)| get(&k, "reposdir").map(str::to_owned))
        .unwrap_or_else(|| REPOS_DIR.to_owned());
    for shown in dirs.split([',', ' ']).filter(|d| d.starts_with('/')) {
        let dir = root.join(shown.trim_start_matches('/'));
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".repo"))
            .collect();
        names.sort();
        for n in names {
            let source = format!("{}/{n}", shown.trim_end_matches('/'));
            let text_ = read_text(&dir.join(&n)).unwrap_or_default();
            found.extend(repos(&text_).into_iter().map(|r| (source.clone(), r)));
        }
    }
    found
        .into_iter()
        .map(|(source, r)| {
            let mut row: Vec<Value> = r.into_iter().map(text).collect();
            row.insert(1, text(source));
            row.push(int(pid));
            row
        })
        .collect()
}

impl Table for YumSources {
    fn name(&self) -> &'static str {
        "yum_sources"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut rows = Vec::new();
        for at in ns_roots(ctx, PID_WITH_NAMESPACE) {
            rows.extend(rows_under(&at.root, at.pid));
        }
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "# repos\n[baseos]\nname=Example BaseOS $releasever\nmirrorlist=https://mirror.example.org/?repo=BaseOS\ngpgcheck = 1\nenabled=1\ngpgkey=file:///etc/pki/a\n   file:///etc/pki/b\n\n; off\n[extras-source]\nname=Extras source\nbaseurl=https://mirror.example.org/extras/\nmetalink=https://mirror.example.org/metalink?repo=extras\nenabled=0\ncountme=1\n";

    #[test]
    fn repo_sections_become_rows() {
        let r = |v: [&str; 7]| v.map(str::to_owned);
        assert_eq!(
            repos(REPO),
            [
                r([
                    "Example BaseOS $releasever",
                    "",
                    "https://mirror.example.org/?repo=BaseOS",
                    "",
                    "1",
                    "1",
                    "file:///etc/pki/a file:///etc/pki/b"
                ]),
                r([
                    "Extras source",
                    "https://mirror.example.org/extras/",
                    "",
                    "https://mirror.example.org/metalink?repo=extras",
                    "0",
                    "",
                    ""
                ]),
            ]
        );
        assert!(repos("[main]\ngpgcheck=1\nno equals\n=\n").is_empty());
    }

    #[test]
    fn yum_conf_and_its_reposdir_under_a_fake_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/other.d")).unwrap();
        std::fs::create_dir_all(r.join("etc/yum.repos.d")).unwrap();
        std::fs::write(
            r.join(YUM_CONF),
            "[main]\nreposdir=/etc/other.d\n[inline]\nname=Inline\nbaseurl=http://mirror.example.org/i\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/other.d/a.repo"), REPO).unwrap();
        std::fs::write(r.join("etc/other.d/b.repo.rpmsave"), "[x]\nname=X\n").unwrap();
        // Not the configured reposdir: not read.
        std::fs::write(r.join("etc/yum.repos.d/c.repo"), "[y]\nname=Y\n").unwrap();
        let names: Vec<Value> = rows_under(r, 7)
            .into_iter()
            .map(|row| row[0].clone())
            .collect();
        assert_eq!(
            names,
            [
                text("Inline"),
                text("Example BaseOS $releasever"),
                text("Extras source")
            ]
        );
        let first = &rows_under(r, 7)[0];
        assert_eq!(first[1], text("/etc/yum.conf"));
        assert_eq!(first[2], text("http://mirror.example.org/i"));
        assert_eq!(first[8], int(7));
        let sources: Vec<Value> = rows_under(r, 7)
            .into_iter()
            .map(|row| row[1].clone())
            .collect();
        assert_eq!(
            sources,
            [
                text("/etc/yum.conf"),
                text("/etc/other.d/a.repo"),
                text("/etc/other.d/a.repo")
            ]
        );
        // Without yum.conf the default folder is read.
        std::fs::remove_file(r.join(YUM_CONF)).unwrap();
        let names: Vec<Value> = rows_under(r, 0)
            .into_iter()
            .map(|row| row[0].clone())
            .collect();
        assert_eq!(names, [text("Y")]);
        // No yum at all: no rows.
        assert!(rows_under(&r.join("none"), 0).is_empty());
    }
}
