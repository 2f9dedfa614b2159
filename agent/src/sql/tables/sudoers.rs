//! `sudoers`: the rules of `/etc/sudoers` and of the files it includes (`@include`,
//! `@includedir` and their `#` spellings; a relative name is taken from the including file's
//! folder; in an included folder, names with a `.` or ending in `~` are skipped, as sudo does;
//! at most 128 levels). Each line that is not blank or a comment is a row: its first word
//! (`header`) and the rest (`rule_details`), as osquery splits them; a line ending in `\`
//! continues on the next. The include lines are rows too.

use std::path::{Path, PathBuf};

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("source", Text),
    col("header", Text),
    col("rule_details", Text),
];
const SUDOERS: &str = "/etc/sudoers";
const MAX_NEST: usize = 128;
/// A sudoers file larger than this is read up to it.
const MAX_BYTES: usize = 4 << 20;

#[derive(Debug)]
pub struct Sudoers;

/// One row: source, header, rule details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub source: String,
    pub header: String,
    pub rule_details: String,
}

/// What an include line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Include {
    File(String),
    Dir(String),
}

const WS: [char; 3] = [' ', '\t', '\x0b'];

/// The rules of one file's text, and the includes in the order they appear (each after the
/// index of the rule it follows).
pub fn parse(source: &str, s: &str) -> (Vec<Rule>, Vec<(usize, Include)>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut includes = Vec::new();
    let mut continued = false;
    for line in s.split('\n') {
        let line = line.trim_matches(WS);
        if line.is_empty() {
            continue;
        }
        if continued {
            continued = line.ends_with('\\');
            if let Some(last) = rules.last_mut() {
                // The backslash goes; the next line is appended as written.
                if last.rule_details.is_empty() {
                    last.header.pop();
                } else {
                    last.rule_details.pop();
                }
                last.rule_details.push_str(line);
            }
            continue;
        }
        let (header, rest) = line.split_at(line.find(WS).unwrap_or(line.len()));
        let is_include = header == "#include" || header == "@include";
        let is_dir = header == "#includedir" || header == "@includedir";
        if line.starts_with('#') && !is_include && !is_dir {
            continue;
        }
        let details = rest.trim_matches(WS);
        if details.is_empty() && (is_include || is_dir) {
            continue;
        }
        if !is_include && !is_dir && line.ends_with('\\') {
            continued = true;
        }
        rules.push(Rule {
            source: source.to_owned(),
            header: header.to_owned(),
            rule_details: details.to_owned(),
        });
        if is_include {
            includes.push((rules.len(), Include::File(details.to_owned())));
        } else if is_dir {
            includes.push((rules.len(), Include::Dir(details.to_owned())));
        }
    }
    (rules, includes)
}

fn resolve(file: &Path, target: &str) -> PathBuf {
    if target.starts_with('/') {
        PathBuf::from(target)
    } else {
        file.parent().unwrap_or(Path::new("/")).join(target)
    }
}

/// The rules of `file` and of what it includes, in order, appended to `out`.
pub fn read_file(file: &Path, level: usize, out: &mut Vec<Rule>) {
    if level > MAX_NEST {
        return;
    }
    let Some(mut s) = read_text(file) else {
        return;
    };
    if s.len() > MAX_BYTES {
        let mut cut = MAX_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    let (rules, includes) = parse(&file.display().to_string(), &s);
    let mut next = includes.into_iter().peekable();
    for (i, rule) in rules.into_iter().enumerate() {
        out.push(rule);
        while let Some((_, inc)) = next.next_if(|(after, _)| *after == i + 1) {
            match inc {
                Include::File(t) => read_file(&resolve(file, &t), level + 1, out),
                Include::Dir(t) => {
                    let Ok(rd) = std::fs::read_dir(resolve(file, &t)) else {
                        continue;
                    };
                    let mut names: Vec<PathBuf> = rd
                        .flatten()
                        .filter(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            !n.contains('.') && !n.ends_with('~')
                        })
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect();
                    names.sort();
                    for p in names {
                        read_file(&p, level + 1, out);
                    }
                }
            }
        }
    }
}

impl Table for Sudoers {
    fn name(&self) -> &'static str {
        "sudoers"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let mut rules = Vec::new();
        read_file(Path::new(SUDOERS), 1, &mut rules);
        Ok(Box::new(rules.into_iter().map(|r| {
            Ok(vec![text(r.source), text(r.header), text(r.rule_details)])
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(source: &str, header: &str, details: &str) -> Rule {
        Rule {
            source: source.into(),
            header: header.into(),
            rule_details: details.into(),
        }
    }

    #[test]
    fn lines_split_into_header_and_details() {
        let (rules, includes) = parse(
            "/s",
            "# comment\nDefaults\tenv_reset\n\n  root ALL=(ALL:ALL) ALL  \n%sudo ALL=(ALL) \\\n   NOPASSWD: /bin/ls\nCmnd_Alias X = /a, \\\n/b\n#includedir\n@includedir /etc/sudoers.d\n#include other\nlonely\\\nnext\n",
        );
        assert_eq!(
            rules,
            [
                r("/s", "Defaults", "env_reset"),
                r("/s", "root", "ALL=(ALL:ALL) ALL"),
                r("/s", "%sudo", "ALL=(ALL) NOPASSWD: /bin/ls"),
                r("/s", "Cmnd_Alias", "X = /a, /b"),
                r("/s", "@includedir", "/etc/sudoers.d"),
                r("/s", "#include", "other"),
                r("/s", "lonely", "next"),
            ]
        );
        assert_eq!(
            includes,
            [
                (5, Include::Dir("/etc/sudoers.d".into())),
                (6, Include::File("other".into()))
            ]
        );
    }

    #[test]
    fn includes_are_followed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = d.join("sudoers");
        std::fs::create_dir(d.join("sudoers.d")).unwrap();
        std::fs::write(
            &main,
            "root ALL=(ALL) ALL\n@includedir sudoers.d\n#include extra\nDefaults:bob !lecture\n",
        )
        .unwrap();
        std::fs::write(d.join("sudoers.d/10-admins"), "%admin ALL=(ALL) ALL\n").unwrap();
        std::fs::write(d.join("sudoers.d/20-ops"), "ops ALL=/bin/systemctl\n").unwrap();
        std::fs::write(d.join("sudoers.d/skipped.bak"), "x ALL=ALL\n").unwrap();
        std::fs::write(d.join("sudoers.d/skipped~"), "y ALL=ALL\n").unwrap();
        std::fs::write(d.join("extra"), "alice ALL=(ALL) NOPASSWD: ALL\n").unwrap();
        // A file that includes itself stops at the nesting limit.
        std::fs::write(d.join("loop"), "a b\n@include loop\n").unwrap();
        let mut got = Vec::new();
        read_file(&main, 1, &mut got);
        let p = |n: &str| d.join(n).display().to_string();
        assert_eq!(
            got,
            [
                r(&p("sudoers"), "root", "ALL=(ALL) ALL"),
                r(&p("sudoers"), "@includedir", "sudoers.d"),
                r(&p("sudoers.d/10-admins"), "%admin", "ALL=(ALL) ALL"),
                r(&p("sudoers.d/20-ops"), "ops", "ALL=/bin/systemctl"),
                r(&p("sudoers"), "#include", "extra"),
                r(&p("extra"), "alice", "ALL=(ALL) NOPASSWD: ALL"),
                r(&p("sudoers"), "Defaults:bob", "!lecture"),
            ]
        );
        let mut looped = Vec::new();
        read_file(&d.join("loop"), 1, &mut looped);
        assert_eq!(looped.len(), 2 * MAX_NEST);
    }

    /// The host's own file, when there is one: each rule is a line of it (continuations
    /// joined), in order.
    #[test]
    fn the_host_file_rows_are_its_lines() {
        let Some(s) = read_text(Path::new(SUDOERS)) else {
            assert!(crate::sql::tables::util::rows_of("SELECT * FROM sudoers").is_empty());
            return;
        };
        let rows = crate::sql::tables::util::rows_of(&format!(
            "SELECT header, rule_details FROM sudoers WHERE source = '{SUDOERS}'"
        ));
        // Continued lines joined: the backslash dropped, the next line trimmed.
        let mut joined: Vec<String> = Vec::new();
        let mut open = false;
        for l in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match joined.last_mut() {
                Some(last) if open => {
                    last.pop();
                    last.push_str(l);
                }
                _ => joined.push(l.to_owned()),
            }
            open = l.ends_with('\\') && !l.starts_with('#');
        }
        let want: Vec<Vec<String>> = joined
            .iter()
            .map(|l| l.as_str())
            .filter(|l| {
                !l.starts_with('#') || l.starts_with("#include ") || l.starts_with("#includedir ")
            })
            .map(|l| {
                let (h, d) = l.split_once([' ', '\t']).unwrap_or((l, ""));
                vec![h.to_owned(), d.trim().to_owned()]
            })
            .collect();
        assert_eq!(rows, want);
    }
}
