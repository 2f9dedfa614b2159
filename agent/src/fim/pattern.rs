//! FIM path patterns (`file_paths`, `exclude_paths`) with the semantics of osquery's Linux
//! publisher (`osquery/events/linux/inotify.cpp`, `osquery/events/pathset.h`), minus its need
//! for paths to exist at configure time.
//!
//! What osquery does, and so what this module does:
//!
//! - `%` is rewritten to `*` first, so `%` and `*` are the same wildcard.
//! - A pattern containing `**` (`%%`) is recursive; everything from the first `**` on is
//!   dropped (`/a/%%/b` is `/a/%%`: osquery's docs call it invalid, its code truncates; we warn).
//!   So `/etc/foo%%` is `/etc/foo` and everything below it, not `/etc/foo*`.
//! - If the last name of what remains has a `*` (`/etc/%.conf`, `/etc/%`), osquery watches the
//!   parent directory instead and, since 2017 (osquery commit 5a92d2c7, "Implementing exclude
//!   paths for FIM"), no longer filters the names: `/etc/%.conf` reports every entry directly in
//!   `/etc`. We do the same.
//! - What remains names a directory (or a file): a non-recursive watch reports the path itself
//!   and its direct entries (an inotify directory watch); a recursive one reports the path and
//!   everything below. `/etc`, `/etc/` and `/etc/%` are therefore the same watch.
//! - A `*` in a directory level (`/home/%/.ssh/%%`) is a glob(3) `*` within one level: it does
//!   not cross `/` and does not match a leading `.` (osquery globs without `GLOB_PERIOD`).
//!   osquery expands it against the filesystem at configure time; we match it at event time,
//!   so directories created later are covered.
//! - `exclude_paths` apply to every category (osquery's publisher merges all of them into one
//!   set). An event is excluded when its path or its parent directory equals an exclude entry,
//!   level by level, where only a level that is exactly `*` is a wildcard (one level; a `*`
//!   as the last level of an entry also matches any deeper path), `**` matches the rest, and
//!   `*` inside a name is compared literally (we warn about such entries).
//!
//! Where two categories match one path, osquery's answer depends on which subscription took
//! the inotify watch last; we pick the most specific pattern (the most directory levels, then
//! the most literal levels), then the first in config order.

use std::collections::BTreeSet;

/// One level of a watched directory pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Level {
    Literal(String),
    /// A name with `*` wildcards, matched within the level.
    Glob(String),
}

/// A compiled `file_paths` entry.
#[derive(Clone, Debug)]
struct Watch {
    category: String,
    levels: Vec<Level>,
    recursive: bool,
}

impl Watch {
    fn specificity(&self) -> (usize, usize) {
        let literal = self
            .levels
            .iter()
            .filter(|l| matches!(l, Level::Literal(_)))
            .count();
        (self.levels.len(), literal)
    }

    fn matches(&self, path: &[&str]) -> bool {
        if path.len() < self.levels.len() {
            return false;
        }
        let extra = path.len() - self.levels.len();
        if !self.recursive && extra > 1 {
            return false;
        }
        self.levels.iter().zip(path).all(|(l, name)| match l {
            Level::Literal(s) => s == name,
            Level::Glob(g) => glob_level(g, name),
        })
    }
}

/// A pattern checked and split the way osquery's publisher reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// The directory (or file) that is watched, with `*` levels; always starts with `/`.
    pub watched: String,
    pub recursive: bool,
    /// Something the user should know (text after `%%` dropped, a name wildcard widened).
    pub warning: Option<String>,
}

/// Checks one `file_paths` pattern. Errors and warnings are phrases; the caller adds the key.
pub fn compile(pattern: &str) -> Result<Compiled, String> {
    if pattern.is_empty() {
        return Err("empty pattern".into());
    }
    if !pattern.starts_with('/') {
        return Err(format!(
            "{pattern:?} is not an absolute path (osquery resolves it against its working directory; Osprey refuses it)"
        ));
    }
    if pattern.contains('\0') {
        return Err("a path cannot contain a NUL byte".into());
    }
    let s = pattern.replace('%', "*");
    let mut warning = None;
    let (base, recursive) = match s.find("**") {
        Some(i) => {
            let rest = &s[i + 2..];
            if !rest.trim_start_matches('*').is_empty() {
                warning = Some(format!(
                    "{pattern:?}: a recursive wildcard only works at the end; {:?} after it is ignored (as osquery does)",
                    &pattern[pattern.len() - rest.len()..]
                ));
            }
            (&s[..i], true)
        }
        None => (&s[..], false),
    };
    // A wildcard in the last name widens the watch to the parent directory.
    let watched = match base.rsplit_once('/') {
        Some((parent, leaf)) if leaf.contains('*') => {
            if leaf != "*" && warning.is_none() {
                warning = Some(format!(
                    "{pattern:?}: osquery does not filter names on Linux; every entry of {}/ is watched",
                    if parent.is_empty() { "" } else { parent }
                ));
            }
            format!("{parent}/")
        }
        _ => base.to_owned(),
    };
    Ok(Compiled {
        watched,
        recursive,
        warning,
    })
}

/// Checks one `exclude_paths` entry: a warning when it cannot match what it seems to say.
pub fn check_exclude(entry: &str) -> Option<String> {
    let s = entry.replace('%', "*");
    let literal_star = s
        .split('/')
        .any(|l| l.contains('*') && l != "*" && l != "**");
    literal_star.then(|| {
        format!(
            "{entry:?}: in exclude_paths only a whole level `%` or `%%` is a wildcard (osquery compares `%` inside a name literally), so this entry matches only names containing a literal `*`"
        )
    })
}

/// osquery's `patternedPath::createPath`: levels split on `/`, empty ones dropped, `/` alone
/// being one empty level.
fn levels_of(path: &str) -> Vec<&str> {
    if path == "/" {
        return vec![""];
    }
    path.split('/').filter(|l| !l.is_empty()).collect()
}

/// osquery's exclude comparison (`patternedPath::Compare`) as an equivalence: neither side
/// orders before the other.
fn exclude_equivalent(a: &[String], b: &[&str]) -> bool {
    let n = a.len().min(b.len());
    for i in 0..n {
        if a[i] == "**" || b[i] == "**" {
            return true;
        }
        if a[i] == "*" || b[i] == "*" {
            continue;
        }
        if a[i] != b[i] {
            return false;
        }
    }
    if (n > 0 && n == a.len() && a[n - 1] == "*") || (n > 0 && n == b.len() && b[n - 1] == "*") {
        return true;
    }
    a.len() == b.len()
}

/// A compiled `file_paths` / `exclude_paths` / `file_accesses` set: which category, if any, a
/// path belongs to, and which prefixes the kernel filter needs.
#[derive(Clone, Debug, Default)]
pub struct FimMatcher {
    watches: Vec<Watch>,
    /// Each exclude entry as osquery's `createVPath` expands it.
    excludes: Vec<Vec<String>>,
    accesses: BTreeSet<String>,
}

impl FimMatcher {
    /// Compiles the config's FIM keys. Invalid patterns (which config validation reports with
    /// their key) are skipped here, so this cannot fail.
    pub fn new<'a, P, E, A>(file_paths: P, exclude_paths: E, file_accesses: A) -> Self
    where
        P: IntoIterator<Item = (&'a str, &'a [String])>,
        E: IntoIterator<Item = &'a [String]>,
        A: IntoIterator<Item = &'a str>,
    {
        let mut watches = Vec::new();
        for (category, patterns) in file_paths {
            for p in patterns {
                let Ok(c) = compile(p) else { continue };
                let levels = c
                    .watched
                    .split('/')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        if l.contains('*') {
                            Level::Glob(l.to_owned())
                        } else {
                            Level::Literal(l.to_owned())
                        }
                    })
                    .collect();
                watches.push(Watch {
                    category: category.to_owned(),
                    levels,
                    recursive: c.recursive,
                });
            }
        }
        let mut excludes = Vec::new();
        for entries in exclude_paths {
            for e in entries {
                if e.is_empty() {
                    continue;
                }
                let s = e.replace('%', "*");
                let mut path: Vec<String> = Vec::new();
                for level in levels_of(&s) {
                    if level == "**" {
                        excludes.push(path.clone());
                        path.push(level.to_owned());
                        break;
                    }
                    path.push(level.to_owned());
                }
                excludes.push(path);
            }
        }
        Self {
            watches,
            excludes,
            accesses: file_accesses.into_iter().map(str::to_owned).collect(),
        }
    }

    /// True when nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// The category `path` (absolute, as the kernel reports it) belongs to, or None when no
    /// pattern covers it or an exclude entry removes it.
    pub fn category(&self, path: &str) -> Option<&str> {
        let levels: Vec<&str> = path.split('/').filter(|l| !l.is_empty()).collect();
        let mut best: Option<&Watch> = None;
        for w in &self.watches {
            if w.matches(&levels) && best.is_none_or(|b| w.specificity() > b.specificity()) {
                best = Some(w);
            }
        }
        let best = best?;
        if self.is_excluded(path) {
            return None;
        }
        Some(&best.category)
    }

    /// osquery's check: the path, or the directory it is in, equals an exclude entry.
    pub fn is_excluded(&self, path: &str) -> bool {
        if self.excludes.is_empty() {
            return false;
        }
        let parent = path.rfind('/').map_or(path, |i| &path[..i]);
        let (p, q) = (levels_of(parent), levels_of(path));
        // osquery splits "" (the parent of "/etc") into no levels; it matches no entry.
        self.excludes
            .iter()
            .any(|e| (!p.is_empty() && exclude_equivalent(e, &p)) || exclude_equivalent(e, &q))
    }

    /// True when `category` is listed in `file_accesses` (opens and reads are reported too).
    pub fn wants_accesses(&self, category: &str) -> bool {
        self.accesses.contains(category)
    }

    /// The distinct categories, in config order.
    pub fn categories(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for w in &self.watches {
            if !seen.contains(&w.category.as_str()) {
                seen.push(w.category.as_str());
            }
        }
        seen
    }

    /// The literal directory prefixes the in-kernel filter needs: `(prefix, recursive)`, where
    /// a prefix covers the path equal to it, its direct entries, and (when recursive) everything
    /// below. A pattern with a wildcard level contributes the literal levels before it,
    /// recursive. Sorted; prefixes covered by a recursive ancestor are left out. Every path
    /// [`FimMatcher::category`] accepts is covered by one of them ([`covers`]).
    pub fn kernel_prefixes(&self) -> Vec<(String, bool)> {
        let mut all: Vec<(String, bool)> = self
            .watches
            .iter()
            .map(|w| {
                let literal: Vec<&str> = w
                    .levels
                    .iter()
                    .map_while(|l| match l {
                        Level::Literal(s) => Some(s.as_str()),
                        Level::Glob(_) => None,
                    })
                    .collect();
                let whole = literal.len() == w.levels.len();
                (format!("/{}", literal.join("/")), w.recursive || !whole)
            })
            .collect();
        all.sort();
        all.dedup();
        let mut out: Vec<(String, bool)> = Vec::new();
        for (prefix, recursive) in &all {
            let covered = all.iter().any(|(other, rec)| {
                *rec && (other != prefix || !recursive) && is_at_or_below(prefix, other)
            });
            if !covered {
                out.push((prefix.clone(), *recursive));
            }
        }
        out
    }
}

/// Whether a kernel prefix `(prefix, recursive)` lets `path` through: the semantics the
/// in-kernel filter implements.
pub fn covers(prefix: &str, recursive: bool, path: &str) -> bool {
    if path == prefix {
        return true;
    }
    let below = if prefix == "/" {
        path.strip_prefix('/')
    } else {
        path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'))
    };
    match below {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

/// `path` equals `dir` or lies below it.
fn is_at_or_below(path: &str, dir: &str) -> bool {
    path == dir || covers(dir, true, path)
}

/// glob(3) `*` within one level: no `/` to cross; a leading `.` must be matched literally.
fn glob_level(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Iterative wildcard match: remember the last `*` and retry from one byte further on.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(paths: &[(&str, &[&str])], excludes: &[&str], accesses: &[&str]) -> FimMatcher {
        let paths: Vec<(String, Vec<String>)> = paths
            .iter()
            .map(|(c, ps)| (c.to_string(), ps.iter().map(|p| p.to_string()).collect()))
            .collect();
        let excludes: Vec<String> = excludes.iter().map(|e| e.to_string()).collect();
        FimMatcher::new(
            paths.iter().map(|(c, p)| (c.as_str(), p.as_slice())),
            [excludes.as_slice()],
            accesses.iter().copied(),
        )
    }

    /// (pattern, path, matches): one category, no excludes.
    const WILDCARDS: &[(&str, &str, bool)] = &[
        // `%` = one level: the directory and its direct entries.
        ("/etc/%", "/etc/passwd", true),
        ("/etc/%", "/etc", true),
        ("/etc/%", "/etc/ssh/sshd_config", false),
        ("/etc/%", "/etcetera/x", false),
        ("/etc/%", "/", false),
        // A literal directory is the same watch as `/dir/%` (an inotify directory watch).
        ("/etc", "/etc/passwd", true),
        ("/etc/", "/etc/passwd", true),
        ("/etc", "/etc/ssh/sshd_config", false),
        ("/etc/passwd", "/etc/passwd", true),
        ("/etc/passwd", "/etc/shadow", false),
        ("/etc/passwd", "/etc/passwd.bak", false),
        // `%%` = the directory and everything below.
        ("/etc/%%", "/etc/ssh/sshd_config", true),
        ("/etc/%%", "/etc/a/b/c/d", true),
        ("/etc/%%", "/etc", true),
        ("/etc/%%", "/etcetera/x", false),
        ("/etc/%%", "/usr/etc/x", false),
        ("/%%", "/anything/at/all", true),
        // `%%` after a partial name is the named path and below, not a name prefix.
        ("/etc/ssh%%", "/etc/ssh/sshd_config", true),
        ("/etc/ssh%%", "/etc/ssh", true),
        ("/etc/ssh%%", "/etc/sshd_config", false),
        // A wildcard in the last name watches the parent; names are not filtered (osquery).
        ("/etc/%.conf", "/etc/resolv.conf", true),
        ("/etc/%.conf", "/etc/passwd", true),
        ("/etc/%.conf", "/etc/ssh/ssh.conf", false),
        ("/bin/%sh", "/bin/ls", true),
        ("/usr/lib/abc%", "/usr/lib/xyz", true),
        // A wildcard level matches one name, not `/`, not a leading dot.
        ("/home/%/.ssh/%%", "/home/alice/.ssh/authorized_keys", true),
        ("/home/%/.ssh/%%", "/home/alice/.ssh/keys/id_ed25519", true),
        ("/home/%/.ssh/%%", "/home/alice/.ssh", true),
        ("/home/%/.ssh/%%", "/home/alice/.bashrc", false),
        ("/home/%/.ssh/%%", "/home/a/b/.ssh/x", false),
        ("/home/%/.ssh/%%", "/home/.hidden/.ssh/x", false),
        ("/home/%/.ssh/%%", "/home/alice/.sshx/x", false),
        ("/home/%/.ssh", "/home/bob/.ssh/known_hosts", true),
        ("/home/%/.ssh", "/home/bob/.ssh/a/b", false),
        ("/home/a%e/x", "/home/alice/x/f", true),
        ("/home/a%e/x", "/home/bob/x/f", false),
        ("/home/.%/x", "/home/.cfg/x/f", true),
        ("/Users/%/Library", "/Users/me/Library/Prefs", true),
        ("/Users/%/Library/", "/Users/me/Library/Prefs", true),
        // `*` is the same as `%`, `**` as `%%`.
        ("/var/*/log/**", "/var/app/log/a/b", true),
        ("/var/*/log/**", "/var/app/logs/a", false),
        // Text after `%%` is dropped, as osquery does.
        ("/Users/%%/Configuration.conf", "/Users/x/anything", true),
        // Doubled slashes and trailing slashes in events do not matter.
        ("/etc/%%", "//etc//x/", true),
    ];

    #[test]
    fn wildcard_table() {
        let mut failures = Vec::new();
        for (pattern, path, want) in WILDCARDS {
            let m = matcher(&[("c", &[pattern])], &[], &[]);
            let got = m.category(path) == Some("c");
            if got != *want {
                failures.push(format!("{pattern} vs {path}: got {got}, want {want}"));
            }
            // Whatever matches must get through the kernel filter.
            if got {
                assert!(
                    m.kernel_prefixes().iter().any(|(p, r)| covers(
                        p,
                        *r,
                        &path.replace("//", "/")
                    ) || covers(
                        p,
                        *r,
                        path.trim_end_matches('/')
                    )),
                    "{pattern}: {path} not covered by {:?}",
                    m.kernel_prefixes()
                );
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// (path, expected category) against one config with overlapping categories and excludes,
    /// modelled on osquery's docs example and its inotify tests.
    #[test]
    fn categories_and_excludes_table() {
        let m = matcher(
            &[
                ("homes", &["/root/.ssh/%%", "/home/%/.ssh/%%"]),
                ("etc", &["/etc/%%"]),
                ("ssh", &["/etc/ssh/%%"]),
                ("tmp", &["/tmp/%%"]),
                ("logs", &["/var/log/%"]),
            ],
            &[
                "/home/not_to_monitor/.ssh/%%",
                "/tmp/too_many_events/",
                "/etc/ssl/openssl.cnf",
                "/var/log/%",
                "/var/log/%.gz",
            ],
            &["homes"],
        );
        let table: &[(&str, Option<&str>)] = &[
            ("/root/.ssh/authorized_keys", Some("homes")),
            ("/home/bob/.ssh/id_rsa", Some("homes")),
            ("/home/not_to_monitor/.ssh/id_rsa", None),
            ("/home/not_to_monitor/.ssh", None),
            ("/home/not_to_monitor/.ssh/deep/x", None),
            ("/etc/passwd", Some("etc")),
            // The more specific pattern wins.
            ("/etc/ssh/sshd_config", Some("ssh")),
            ("/etc/ssh", Some("ssh")),
            ("/etc/ssl/openssl.cnf", None),
            ("/etc/ssl/certs/ca.pem", Some("etc")),
            ("/tmp/x", Some("tmp")),
            ("/tmp/too_many_events", None),
            ("/tmp/too_many_events/file", None),
            // A literal exclude covers the directory's direct entries only (osquery).
            ("/tmp/too_many_events/sub/file", Some("tmp")),
            // A trailing `%` exclude level also matches deeper paths, but not the directory.
            ("/var/log", Some("logs")),
            ("/var/log/syslog", None),
            // Not under any pattern.
            ("/usr/bin/ls", None),
        ];
        for (path, want) in table {
            assert_eq!(m.category(path), *want, "{path}");
        }
        assert!(m.wants_accesses("homes"));
        assert!(!m.wants_accesses("etc"));
        assert_eq!(m.categories(), ["homes", "etc", "ssh", "tmp", "logs"]);
    }

    #[test]
    fn exclude_edge_cases_follow_osquery_pathset() {
        // osquery's inotify test: excludes "/etc/ssh/%%", "/etc/", "/etc/ssl/openssl.cnf", "/".
        let m = matcher(
            &[("etc", &["/etc/%%"])],
            &["/etc/ssh/%%", "/etc/", "/etc/ssl/openssl.cnf", "/"],
            &[],
        );
        for (path, excluded) in [
            ("/etc/ssh/ssh_config", true),
            ("/etc/passwd", true),
            ("/etc/group", true),
            ("/etc/ssl/openssl.cnf", true),
            ("/etc/ssl/certs/", false),
            ("/etc/ssl/certs/x.pem", false),
        ] {
            assert_eq!(m.is_excluded(path), excluded, "{path}");
        }
        // `%` inside a name is compared literally.
        let m = matcher(&[("v", &["/var/%%"])], &["/var/log/%.gz"], &[]);
        assert!(!m.is_excluded("/var/log/a.gz"));
        assert!(m.is_excluded("/var/log/*.gz"));
    }

    #[test]
    fn compile_reports_what_osquery_would_do() {
        assert_eq!(
            compile("/etc/%%"),
            Ok(Compiled {
                watched: "/etc/".into(),
                recursive: true,
                warning: None
            })
        );
        assert_eq!(
            compile("/etc/%").map(|c| (c.watched, c.recursive, c.warning)),
            Ok(("/etc/".into(), false, None))
        );
        assert_eq!(
            compile("/etc/%.conf").unwrap().warning.as_deref(),
            Some(
                "\"/etc/%.conf\": osquery does not filter names on Linux; every entry of /etc/ is watched"
            )
        );
        assert_eq!(
            compile("/Users/%%/Configuration.conf")
                .unwrap()
                .warning
                .as_deref(),
            Some(
                "\"/Users/%%/Configuration.conf\": a recursive wildcard only works at the end; \"/Configuration.conf\" after it is ignored (as osquery does)"
            )
        );
        assert_eq!(compile("/etc/%%%").unwrap().warning, None);
        assert_eq!(
            compile("etc/%%"),
            Err("\"etc/%%\" is not an absolute path (osquery resolves it against its working directory; Osprey refuses it)".into())
        );
        assert_eq!(compile(""), Err("empty pattern".into()));
        assert!(check_exclude("/var/log/%.gz").is_some());
        assert_eq!(check_exclude("/var/%/x/%%"), None);
    }

    #[test]
    fn kernel_prefixes_are_literal_and_minimal() {
        let m = matcher(
            &[
                (
                    "a",
                    &["/etc/%%", "/etc/ssh/%", "/home/%/.ssh/%%", "/var/log/%.log"],
                ),
                ("b", &["/var/log/%", "/opt/app/config.json", "/srv/a%/b"]),
            ],
            &[],
            &[],
        );
        assert_eq!(
            m.kernel_prefixes(),
            vec![
                ("/etc".to_owned(), true),
                ("/home".to_owned(), true),
                ("/opt/app/config.json".to_owned(), false),
                ("/srv".to_owned(), true),
                ("/var/log".to_owned(), false),
            ]
        );
        let root = matcher(&[("r", &["/%%", "/etc/%"])], &[], &[]);
        assert_eq!(root.kernel_prefixes(), vec![("/".to_owned(), true)]);
        assert!(FimMatcher::default().kernel_prefixes().is_empty());
        assert!(FimMatcher::default().category("/etc/passwd").is_none());
    }

    #[test]
    fn covers_is_prefix_by_level() {
        assert!(covers("/etc", false, "/etc"));
        assert!(covers("/etc", false, "/etc/passwd"));
        assert!(!covers("/etc", false, "/etc/ssh/x"));
        assert!(covers("/etc", true, "/etc/ssh/x"));
        assert!(!covers("/etc", true, "/etcx"));
        assert!(covers("/", false, "/etc"));
        assert!(!covers("/", false, "/etc/x"));
        assert!(covers("/", true, "/etc/x"));
    }

    #[test]
    fn odd_patterns_and_paths_never_panic() {
        let odd = [
            "/",
            "//",
            "/%",
            "/%%",
            "/%%%%",
            "/%/%/%",
            "/a%%b%%c",
            "/é%/ü",
            "/a/../b",
            "/./%",
            "/\u{1F600}%",
            "/%\u{1F600}%/x",
            "/**/**",
            "/*",
            "/[a]/?",
        ];
        let owned: Vec<String> = odd.iter().map(|s| s.to_string()).collect();
        let m = FimMatcher::new([("c", owned.as_slice())], [owned.as_slice()], ["c"]);
        for p in odd
            .iter()
            .chain(["", "relative", "/é/ü", "/\u{1F600}x/x"].iter())
        {
            let _ = compile(p);
            let _ = check_exclude(p);
            let _ = m.category(p);
            let _ = m.is_excluded(p);
        }
        let _ = m.kernel_prefixes();
    }

    #[test]
    fn glob_level_cases() {
        for (p, n, want) in [
            ("*", "abc", true),
            ("*", ".abc", false),
            (".*", ".abc", true),
            ("a*c", "abc", true),
            ("a*c", "abcd", false),
            ("*sh", "bash", true),
            ("*sh", "shell", false),
            ("a**b", "ab", true),
            ("*a*a*", "banana", true),
            ("*a*a*a*a", "banana", false),
        ] {
            assert_eq!(glob_level(p, n), want, "{p} vs {n}");
        }
    }
}
