//! `portage_packages`: the packages Gentoo's portage has installed, one per folder
//! `/var/db/pkg/<category>/<name>-<version>`: its `SLOT`, `BUILD_TIME`, `repository`, `EAPI`
//! and `SIZE` files, and `world` = 1 when `/var/lib/portage/world` lists the package. No
//! `/var/db/pkg` (not Gentoo), no rows. Also the helpers of `portage_use` and
//! `portage_keywords`: splitting an atom into package and version as osquery does, and the
//! list of installed package folders.

use std::path::{Path, PathBuf};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("package", Text),
    col("version", Text),
    col("slot", Text),
    col("build_time", BigInt),
    col("repository", Text),
    col("eapi", BigInt),
    col("size", BigInt),
    col("world", Integer),
];
pub const PKG_DB: &str = "var/db/pkg";
const WORLD: &str = "var/lib/portage/world";

#[derive(Debug)]
pub struct PortagePackages;

/// An atom (`>=dev-lang/python-3.11.8-r2`, `app-misc/foo`) as (package, version): the
/// version keeps a comparison prefix (`>=`, `<`; a lone `=` is dropped) and starts at the
/// last `-` after the category that a digit follows (or the one before it, for a `-r1`
/// revision); no such `-`, no version.
pub fn split_atom(atom: &str) -> (String, String) {
    let mut s = atom.strip_suffix('/').unwrap_or(atom);
    let mut version = String::new();
    while let Some(c) = s.chars().next().filter(|c| matches!(c, '<' | '>' | '=')) {
        if !(version.is_empty() && c == '=') {
            version.push(c);
        }
        s = &s[1..];
    }
    let slash = s.find('/');
    let splits_at = |i: usize| {
        slash.is_none_or(|d| i > d) && s[i + 1..].starts_with(|c: char| c.is_ascii_digit())
    };
    let last = s.rfind('-');
    let cut = match last {
        Some(i) if splits_at(i) => Some(i),
        Some(i) => s[..i].rfind('-').filter(|j| splits_at(*j)),
        None => None,
    };
    match cut {
        Some(i) => {
            version.push_str(&s[i + 1..]);
            (s[..i].to_owned(), version)
        }
        None => (s.to_owned(), version),
    }
}

/// The installed package folders under `root` as (`category/name-version`, folder), sorted.
pub fn installed(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(cats) = std::fs::read_dir(root.join(PKG_DB)) else {
        return out;
    };
    for cat in cats.flatten().filter(|e| e.path().is_dir()) {
        let Ok(pkgs) = std::fs::read_dir(cat.path()) else {
            continue;
        };
        for p in pkgs.flatten().filter(|e| e.path().is_dir()) {
            out.push((
                format!(
                    "{}/{}",
                    cat.file_name().to_string_lossy(),
                    p.file_name().to_string_lossy()
                ),
                p.path(),
            ));
        }
    }
    out.sort();
    out
}

/// The atoms of a portage list file: each line's first word, comments and blanks skipped.
pub fn atoms(s: &str) -> impl Iterator<Item = Vec<&str>> {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first().is_some_and(|a| !a.starts_with('#')))
}

fn rows_under(root: &Path) -> Vec<Vec<Value>> {
    let world_text = read_text(&root.join(WORLD)).unwrap_or_default();
    let world: Vec<String> = atoms(&world_text).map(|w| split_atom(w[0]).0).collect();
    installed(root)
        .into_iter()
        .map(|(pf, dir)| {
            let (package, version) = split_atom(&pf);
            let file = |n: &str| read_text(&dir.join(n)).map(|s| s.trim().to_owned());
            let num = |n: &str| {
                file(n)
                    .and_then(|s| s.parse::<i64>().ok())
                    .map_or(Value::Null, int)
            };
            let in_world = world.contains(&package);
            vec![
                text(package),
                text(version),
                file("SLOT").map_or(Value::Null, text),
                num("BUILD_TIME"),
                file("repository").map_or(Value::Null, text),
                num("EAPI"),
                num("SIZE"),
                int(i64::from(in_world)),
            ]
        })
        .collect()
}

impl Table for PortagePackages {
    fn name(&self) -> &'static str {
        "portage_packages"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(rows_under(Path::new("/")).into_iter().map(Ok)))
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A fake root with installed packages `(category/name-version, [(file, content)])`.
    pub fn fake_pkg_db(pkgs: &[(&str, &[(&str, &str)])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pf, files) in pkgs {
            let d = dir.path().join(PKG_DB).join(pf);
            std::fs::create_dir_all(&d).unwrap();
            for (f, c) in *files {
                std::fs::write(d.join(f), c).unwrap();
            }
        }
        dir
    }

    #[test]
    fn atoms_split_into_package_and_version() {
        let s = |a: &str| {
            let (p, v) = split_atom(a);
            (p, v)
        };
        let o = |p: &str, v: &str| (p.to_owned(), v.to_owned());
        assert_eq!(
            s("dev-lang/python-3.11.8-r2"),
            o("dev-lang/python", "3.11.8-r2")
        );
        assert_eq!(s(">=sys-libs/glibc-2.38"), o("sys-libs/glibc", ">=2.38"));
        assert_eq!(s("=app-misc/foo-1.0"), o("app-misc/foo", "1.0"));
        assert_eq!(s("<x11-libs/gtk+-3"), o("x11-libs/gtk+", "<3"));
        assert_eq!(s("app-misc/foo"), o("app-misc/foo", ""));
        assert_eq!(s("app-misc/foo-bar"), o("app-misc/foo-bar", ""));
        assert_eq!(
            s("media-libs/x264-0.0.20230712/"),
            o("media-libs/x264", "0.0.20230712")
        );
        assert_eq!(s("cat-1/pkg"), o("cat-1/pkg", ""));
        assert_eq!(s(""), o("", ""));
        assert_eq!(s("="), o("", ""));
        assert_eq!(s("-"), o("-", ""));
    }

    #[test]
    fn installed_packages_under_a_fake_root() {
        let root = fake_pkg_db(&[
            (
                "app-shells/bash-5.2_p26",
                &[
                    ("SLOT", "0\n"),
                    ("BUILD_TIME", "1700000000\n"),
                    ("repository", "gentoo\n"),
                    ("EAPI", "8\n"),
                    ("SIZE", "8364011\n"),
                ],
            ),
            (
                "dev-lang/python-3.11.8-r2",
                &[("SLOT", "3.11\n"), ("EAPI", "x")],
            ),
        ]);
        std::fs::create_dir_all(root.path().join("var/lib/portage")).unwrap();
        std::fs::write(root.path().join(WORLD), "# mine\napp-shells/bash\n").unwrap();
        assert_eq!(
            rows_under(root.path()),
            [
                vec![
                    text("app-shells/bash"),
                    text("5.2_p26"),
                    text("0"),
                    int(1_700_000_000),
                    text("gentoo"),
                    int(8),
                    int(8_364_011),
                    int(1)
                ],
                vec![
                    text("dev-lang/python"),
                    text("3.11.8-r2"),
                    text("3.11"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    int(0)
                ],
            ]
        );
        assert!(rows_under(&root.path().join("none")).is_empty());
    }
}
