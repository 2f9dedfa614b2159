//! `portage_use`: the USE flags each installed Gentoo package was built with, a row per flag
//! of `/var/db/pkg/<category>/<name>-<version>/USE` (package and version split as in
//! [`super::portage_packages`]). Not Gentoo, no rows.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            portage_packages::{installed, split_atom},
            util::text,
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("package", Text), col("version", Text), col("use", Text)];

#[derive(Debug)]
pub struct PortageUse;

fn rows_under(root: &Path) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for (pf, dir) in installed(root) {
        let Some(flags) = read_text(&dir.join("USE")) else {
            continue;
        };
        let (package, version) = split_atom(&pf);
        for flag in flags.split_whitespace() {
            rows.push(vec![text(&package), text(&version), text(flag)]);
        }
    }
    rows
}

impl Table for PortageUse {
    fn name(&self) -> &'static str {
        "portage_use"
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
    use crate::sql::tables::portage_packages::tests::fake_pkg_db;

    #[test]
    fn each_use_flag_of_each_package_is_a_row() {
        let root = fake_pkg_db(&[
            ("app-editors/vim-9.1.0", &[("USE", "acl  crypt\tnls\n")]),
            ("app-misc/empty-1", &[("USE", "\n")]),
            ("app-misc/none-2", &[]),
        ]);
        let r = |u: &str| vec![text("app-editors/vim"), text("9.1.0"), text(u)];
        assert_eq!(rows_under(root.path()), [r("acl"), r("crypt"), r("nls")]);
        assert!(rows_under(&root.path().join("none")).is_empty());
    }
}
