//! `apt_sources`: the binary (`deb`) repositories apt is configured with: the one-line entries
//! of `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list`, and the deb822 stanzas of
//! `/etc/apt/sources.list.d/*.sources` (a row per URI and suite; `Enabled: no` skipped).
//! `base_uri` is the URI without trailing slashes, `name` the URI without its scheme and the
//! suite, as osquery names them; `release` (Codename), `version`, `maintainer` (Origin),
//! `components` and `architectures` come from the repository's cached `InRelease` or
//! `Release` file in `/var/lib/apt/lists` (empty when apt has not fetched it yet; osquery
//! drops such a source). `pid_with_namespace` reads a process's root (a container's apt).

use std::path::{Path, PathBuf};

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
    col("base_uri", Text),
    col("release", Text),
    col("version", Text),
    col("maintainer", Text),
    col("components", Text),
    col("architectures", Text),
    hidden("pid_with_namespace", Integer),
];
const PID_WITH_NAMESPACE: usize = 8;
const LISTS: &str = "var/lib/apt/lists";

#[derive(Debug)]
pub struct AptSources;

/// A configured repository: its URI (no trailing slash) and suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub uri: String,
    pub suite: String,
}

/// The `deb` entry of one sources.list line; None for `deb-src`, comments and bad lines.
pub fn parse_line(line: &str) -> Option<Source> {
    let line = line.split('#').next().unwrap_or("");
    let mut tokens = line.split_whitespace();
    if tokens.next()? != "deb" {
        return None;
    }
    let mut uri = tokens.next()?;
    if uri.starts_with('[') {
        // Options: `[arch=amd64 signed-by=…]`, up to the token that closes them.
        let mut t = uri;
        while !t.ends_with(']') {
            t = tokens.next()?;
        }
        uri = tokens.next()?;
    }
    let suite = tokens.next()?;
    source(uri, suite)
}

fn source(uri: &str, suite: &str) -> Option<Source> {
    let (_, rest) = uri.split_once("://")?;
    let uri = uri.trim_end_matches('/');
    (!rest.trim_end_matches('/').is_empty()).then(|| Source {
        uri: uri.to_owned(),
        suite: suite.to_owned(),
    })
}

/// The `deb` repositories of a deb822 `.sources` file.
pub fn parse_deb822(s: &str) -> Vec<Source> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut flush = |fields: &mut Vec<(String, String)>| {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map_or("", |(_, v)| v.as_str())
        };
        let enabled = !get("Enabled").trim().eq_ignore_ascii_case("no");
        if enabled && get("Types").split_whitespace().any(|t| t == "deb") {
            for uri in get("URIs").split_whitespace() {
                for suite in get("Suites").split_whitespace() {
                    out.extend(source(uri, suite));
                }
            }
        }
        fields.clear();
    };
    for line in s.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    flush(&mut fields);
    out
}

/// The name of a repository's file in apt's lists folder, without the `InRelease` /
/// `Release` ending: the URI without scheme and credentials, then `dists/<suite>` (or the
/// flat suite path), `/` written `_`.
fn list_prefix(s: &Source) -> String {
    let rest = s.uri.split_once("://").map_or(s.uri.as_str(), |(_, r)| r);
    let rest = match rest.split_once('/') {
        Some((host, path)) => format!("{}/{path}", host.rsplit('@').next().unwrap_or(host)),
        None => rest.rsplit('@').next().unwrap_or(rest).to_owned(),
    };
    let path = if s.suite.ends_with('/') {
        let flat = s.suite.trim_start_matches("./").trim_end_matches('/');
        if flat.is_empty() || flat == "." {
            rest
        } else {
            format!("{rest}/{flat}")
        }
    } else {
        format!("{rest}/dists/{}", s.suite)
    };
    format!("{}_", path.replace('/', "_"))
}

/// The fields of a Release file this table reports: release, version, maintainer,
/// components, architectures.
pub fn parse_release(s: &str) -> [String; 5] {
    let mut out: [String; 5] = Default::default();
    for line in s.lines() {
        if line == "-----BEGIN PGP SIGNATURE-----" {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let i = match k {
            "Codename" => 0,
            "Version" => 1,
            "Origin" => 2,
            "Components" => 3,
            "Architectures" => 4,
            _ => continue,
        };
        out[i] = v.trim().to_owned();
    }
    out
}

/// The sources files under `root`: (path to read, path shown).
fn files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = vec![(
        root.join("etc/apt/sources.list"),
        "/etc/apt/sources.list".to_owned(),
    )];
    if let Ok(rd) = std::fs::read_dir(root.join("etc/apt/sources.list.d")) {
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".list") || n.ends_with(".sources"))
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| {
            (
                root.join("etc/apt/sources.list.d").join(&n),
                format!("/etc/apt/sources.list.d/{n}"),
            )
        }));
    }
    out
}

fn rows_under(root: &Path, pid: i64) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for (path, shown) in files(root) {
        let Some(s) = read_text(&path) else {
            continue;
        };
        let sources = if shown.ends_with(".sources") {
            parse_deb822(&s)
        } else {
            s.lines().filter_map(parse_line).collect()
        };
        for src in sources {
            let prefix = list_prefix(&src);
            let release = ["InRelease", "Release"]
                .iter()
                .find_map(|end| read_text(&root.join(LISTS).join(format!("{prefix}{end}"))))
                .map(|r| parse_release(&r))
                .unwrap_or_default();
            let name = format!(
                "{} {}",
                src.uri.split_once("://").map_or("", |(_, r)| r),
                src.suite
            );
            let mut row = vec![text(name), text(shown.clone()), text(src.uri)];
            row.extend(release.into_iter().map(text));
            row.push(int(pid));
            rows.push(row);
        }
    }
    rows
}

impl Table for AptSources {
    fn name(&self) -> &'static str {
        "apt_sources"
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
    use crate::sql::tables::util::{rows_of, tool};

    fn s(uri: &str, suite: &str) -> Source {
        Source {
            uri: uri.into(),
            suite: suite.into(),
        }
    }

    #[test]
    fn one_line_and_deb822_entries_parse() {
        assert_eq!(
            parse_line("deb http://mirror.example.org/debian/ bookworm main contrib # c"),
            Some(s("http://mirror.example.org/debian", "bookworm"))
        );
        assert_eq!(
            parse_line(
                "deb [arch=amd64 signed-by=/k.gpg] https://mirror.example.org/x stable main"
            ),
            Some(s("https://mirror.example.org/x", "stable"))
        );
        for junk in [
            "deb-src http://mirror.example.org/debian bookworm main",
            "# deb http://mirror.example.org/debian bookworm main",
            "deb http://mirror.example.org/debian",
            "deb /local/path bookworm main",
            "deb [arch=amd64 http://mirror.example.org/debian",
            "",
        ] {
            assert_eq!(parse_line(junk), None, "{junk}");
        }
        let d = "Types: deb deb-src\nURIs: http://mirror.example.org/debian\n  https://mirror.example.org/alt/\nSuites: bookworm bookworm-updates\nComponents: main\n\n# off\nTypes: deb\nURIs: http://mirror.example.org/off\nSuites: x\nEnabled: no\n\nTypes: deb-src\nURIs: http://mirror.example.org/src\nSuites: y\n\nTypes: deb\nURIs: http://mirror.example.org/flat\nSuites: ./\n";
        assert_eq!(
            parse_deb822(d),
            [
                s("http://mirror.example.org/debian", "bookworm"),
                s("http://mirror.example.org/debian", "bookworm-updates"),
                s("https://mirror.example.org/alt", "bookworm"),
                s("https://mirror.example.org/alt", "bookworm-updates"),
                s("http://mirror.example.org/flat", "./"),
            ]
        );
        assert_eq!(
            list_prefix(&s("http://u:p@mirror.example.org/debian", "bookworm")),
            "mirror.example.org_debian_dists_bookworm_"
        );
        assert_eq!(
            list_prefix(&s("http://mirror.example.org/flat", "./")),
            "mirror.example.org_flat_"
        );
        assert_eq!(
            list_prefix(&s("http://mirror.example.org/r", "sub/")),
            "mirror.example.org_r_sub_"
        );
    }

    const IN_RELEASE: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Example\nLabel: Example\nSuite: stable\nVersion: 12.5\nCodename: bookworm\nDate: Sat, 10 Feb 2024 09:00:00 UTC\nArchitectures: all amd64 arm64\nComponents: main contrib\nDescription: Example 12.5\nMD5Sum:\n 0123 12 main/Contents-all\n-----BEGIN PGP SIGNATURE-----\n\nOrigin: Forged\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn a_fake_root_gives_exact_rows() {
        assert_eq!(
            parse_release(IN_RELEASE),
            [
                "bookworm",
                "12.5",
                "Example",
                "main contrib",
                "all amd64 arm64"
            ]
            .map(String::from)
        );
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/apt/sources.list.d")).unwrap();
        std::fs::create_dir_all(r.join(LISTS)).unwrap();
        std::fs::write(
            r.join("etc/apt/sources.list"),
            "# main\ndeb http://mirror.example.org/debian bookworm main\ndeb-src http://mirror.example.org/debian bookworm main\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/apt/sources.list.d/b.sources"),
            "Types: deb\nURIs: http://mirror.example.org/debian-security/\nSuites: bookworm-security\nComponents: main\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/apt/sources.list.d/c.list.disabled"),
            "deb http://x.example.org/ a b\n",
        )
        .unwrap();
        std::fs::write(
            r.join(LISTS)
                .join("mirror.example.org_debian_dists_bookworm_InRelease"),
            IN_RELEASE,
        )
        .unwrap();
        let rows = rows_under(r, 0);
        let t = |v: [&str; 8]| {
            let mut row: Vec<Value> = v.into_iter().map(text).collect();
            row.push(int(0));
            row
        };
        assert_eq!(
            rows,
            [
                t([
                    "mirror.example.org/debian bookworm",
                    "/etc/apt/sources.list",
                    "http://mirror.example.org/debian",
                    "bookworm",
                    "12.5",
                    "Example",
                    "main contrib",
                    "all amd64 arm64"
                ]),
                t([
                    "mirror.example.org/debian-security bookworm-security",
                    "/etc/apt/sources.list.d/b.sources",
                    "http://mirror.example.org/debian-security",
                    "",
                    "",
                    "",
                    "",
                    ""
                ]),
            ]
        );
    }

    /// The host's own sources, as apt itself lists them (`apt-get indextargets`): the same
    /// sites, suites, source files, and the codename, origin and version of apt's cache.
    #[test]
    fn the_host_sources_match_apt_get_indextargets() {
        let listed = tool(
            "apt-get",
            &[
                "indextargets",
                "--format",
                "$(SITE)|$(RELEASE)|$(CODENAME)|$(ORIGIN)|$(VERSION)|$(SOURCESENTRY)",
                "Target-Of: deb",
            ],
        );
        let mut want: Vec<Vec<String>> = listed
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                let file = f[5].rsplit_once(':').map_or(f[5], |(p, _)| p);
                [f[0], f[1], f[2], f[3], f[4], file]
                    .map(str::to_owned)
                    .to_vec()
            })
            .collect();
        want.sort();
        want.dedup();
        let mut got = rows_of(
            "SELECT base_uri, substr(name, instr(name, ' ') + 1), release, maintainer, version, source FROM apt_sources",
        );
        got.sort();
        assert_eq!(got, want);
        assert!(!got.is_empty());
    }
}
