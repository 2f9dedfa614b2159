//! `deb_package_files`: the files of each installed Debian package, from dpkg's
//! `<admindir>/info/<package>[:<arch>].list` (default `/var/lib/dpkg`; `WHERE admindir = '…'`
//! reads another), osquery's columns. `WHERE package = '…'` reads only those lists. dpkg's
//! database records no owner, mode, size or SHA-256 per file, so those columns are empty (0
//! for `size`); join with `file` for what is on disk now (Fleet's software query does).

use std::path::Path;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("package", Text),
    col("path", Text),
    col("username", Text),
    col("groupname", Text),
    col("mode", Text),
    col("size", BigInt),
    col("sha256", Text),
    col("admindir", Text),
];
const PACKAGE: usize = 0;
const ADMINDIR: usize = 7;

#[derive(Debug)]
pub struct DebPackageFiles;

/// The package of an info file name `<package>[:<arch>].list`.
fn package_of(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(".list")?;
    Some(stem.split_once(':').map_or(stem, |(p, _)| p))
}

impl Table for DebPackageFiles {
    fn name(&self) -> &'static str {
        "deb_package_files"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let wanted = ctx.equal_texts(PACKAGE);
        let mut dirs = ctx.equal_texts(ADMINDIR);
        if dirs.is_empty() {
            dirs.push("/var/lib/dpkg".to_owned());
        }
        let mut rows = Vec::new();
        for admindir in dirs {
            let info = Path::new(&admindir).join("info");
            let Ok(rd) = std::fs::read_dir(&info) else {
                continue;
            };
            let mut lists: Vec<(String, String)> = rd
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let pkg = package_of(&name)?.to_owned();
                    (wanted.is_empty() || wanted.contains(&pkg)).then_some((pkg, name))
                })
                .collect();
            lists.sort();
            for (pkg, name) in lists {
                let Some(s) = read_text(&info.join(&name)) else {
                    continue;
                };
                for path in s.lines().filter(|l| !l.is_empty() && *l != "/.") {
                    rows.push(Ok(vec![
                        text(pkg.clone()),
                        text(path),
                        text(""),
                        text(""),
                        text(""),
                        int(0),
                        text(""),
                        text(admindir.clone()),
                    ]));
                }
            }
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn a_packages_files_are_what_dpkg_lists() {
        assert_eq!(
            super::package_of("binutils-common:amd64.list"),
            Some("binutils-common")
        );
        assert_eq!(super::package_of("bash.md5sums"), None);
        for pkg in ["bash", "coreutils"] {
            let want: Vec<Vec<String>> = tool("dpkg", &["-L", pkg])
                .lines()
                .filter(|l| !l.is_empty() && *l != "/.")
                .map(|l| vec![l.to_owned()])
                .collect();
            assert!(!want.is_empty());
            assert_eq!(
                rows_of(&format!(
                    "SELECT path FROM deb_package_files WHERE package = '{pkg}'"
                )),
                want
            );
        }
        // Fleet's join with `file`: every listed regular file of bash is on disk.
        let got = rows_of(
            "SELECT count(*) > 0 FROM deb_package_files JOIN file USING (path) WHERE package = 'bash' AND file.type = 'regular'",
        );
        assert_eq!(got, [vec!["1".to_owned()]]);
    }
}
