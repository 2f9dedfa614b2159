//! `portage_keywords`: Gentoo's per-package keyword, mask and unmask settings, from
//! `/etc/portage/package.accept_keywords` and `package.keywords` (osquery reads the latter),
//! `package.mask` and `package.unmask` (each a file, or a folder of files read in name
//! order). One row per atom as written: its package and version (split as in
//! [`super::portage_packages`]), the keyword that follows it, and `mask` / `unmask` = 1 when
//! the mask / unmask files list the same atom. Not Gentoo, no rows.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            portage_packages::{atoms, split_atom},
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("package", Text),
    col("version", Text),
    col("keyword", Text),
    col("mask", Integer),
    col("unmask", Integer),
];

#[derive(Debug)]
pub struct PortageKeywords;

/// A portage configuration file's text, or the texts of the files of that folder.
fn read_conf(path: &Path) -> String {
    if path.is_dir() {
        let Ok(rd) = std::fs::read_dir(path) else {
            return String::new();
        };
        let mut files: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|f| read_text(f))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        read_text(path).unwrap_or_default()
    }
}

/// (atom, keyword, mask, unmask) of the three files' texts, in the order atoms first appear.
pub fn summary(keywords: &str, mask: &str, unmask: &str) -> Vec<(String, String, bool, bool)> {
    let mut out: Vec<(String, String, bool, bool)> = Vec::new();
    for w in atoms(keywords) {
        let keyword = w.get(1).copied().unwrap_or("");
        if keyword.starts_with('#') || out.iter().any(|(a, ..)| a == w[0]) {
            continue;
        }
        out.push((w[0].to_owned(), keyword.to_owned(), false, false));
    }
    for (s, is_mask) in [(mask, true), (unmask, false)] {
        for w in atoms(s) {
            let i = match out.iter().position(|(a, ..)| a == w[0]) {
                Some(i) => i,
                None => {
                    out.push((w[0].to_owned(), String::new(), false, false));
                    out.len() - 1
                }
            };
            if is_mask {
                out[i].2 = true;
            } else {
                out[i].3 = true;
            }
        }
    }
    out
}

fn rows_under(root: &Path) -> Vec<Vec<Value>> {
    let etc = root.join("etc/portage");
    let keywords = [
        read_conf(&etc.join("package.accept_keywords")),
        read_conf(&etc.join("package.keywords")),
    ]
    .join("\n");
    let mask = read_conf(&etc.join("package.mask"));
    let unmask = read_conf(&etc.join("package.unmask"));
    summary(&keywords, &mask, &unmask)
        .into_iter()
        .map(|(atom, keyword, m, u)| {
            let (package, version) = split_atom(&atom);
            vec![
                text(package),
                text(version),
                text(keyword),
                int(i64::from(m)),
                int(i64::from(u)),
            ]
        })
        .collect()
}

impl Table for PortageKeywords {
    fn name(&self) -> &'static str {
        "portage_keywords"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(rows_under(Path::new("/")).into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_masks_and_unmasks_merge_per_atom() {
        let got = summary(
            "# testing\n=dev-lang/rust-1.80.0 ~amd64\napp-misc/foo\n>=sys-apps/x-2 #comment\n",
            "=dev-lang/rust-1.80.0\n>=sys-kernel/gentoo-sources-6.10\n",
            "app-misc/foo\n# not\n",
        );
        let o = |a: &str, k: &str, m, u| (a.to_owned(), k.to_owned(), m, u);
        assert_eq!(
            got,
            [
                o("=dev-lang/rust-1.80.0", "~amd64", true, false),
                o("app-misc/foo", "", false, true),
                o(">=sys-kernel/gentoo-sources-6.10", "", true, false),
            ]
        );
    }

    #[test]
    fn files_and_folders_under_a_fake_root() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc/portage");
        std::fs::create_dir_all(etc.join("package.accept_keywords")).unwrap();
        std::fs::write(
            etc.join("package.accept_keywords/b"),
            "www-client/firefox ~amd64\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("package.accept_keywords/a"),
            "=dev-lang/rust-1.80.0 ~amd64\n",
        )
        .unwrap();
        std::fs::write(etc.join("package.mask"), ">=www-client/firefox-130\n").unwrap();
        let t = |p: &str, v: &str, k: &str, m: i64, u: i64| {
            vec![text(p), text(v), text(k), int(m), int(u)]
        };
        assert_eq!(
            rows_under(dir.path()),
            [
                t("dev-lang/rust", "1.80.0", "~amd64", 0, 0),
                t("www-client/firefox", "", "~amd64", 0, 0),
                t("www-client/firefox", ">=130", "", 1, 0),
            ]
        );
        assert!(rows_under(&dir.path().join("none")).is_empty());
    }
}
