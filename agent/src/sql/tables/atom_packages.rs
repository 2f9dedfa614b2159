//! `atom_packages`: the packages of the Atom editor in each account's
//! `~/.atom/packages/<package>/package.json` (accounts and file guards:
//! [`super::user_files`]; `WHERE uid = N` reads one account): `name`, `version`,
//! `description`, `license` and `homepage` of the manifest (empty when not a string, NULL
//! when absent) and the manifest's path. osquery dropped this table in 5.11 (Atom was
//! retired); the columns are those of its last version.

use std::path::Path;

use rusqlite::types::Value;

use crate::sql::{
    tables::{
        user_files::{accounts, in_home, read_text_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("version", Text),
    col("description", Text),
    col("path", Text),
    col("license", Text),
    col("homepage", Text),
    col("uid", BigInt),
];
const UID: usize = 6;
const MAX_BYTES: u64 = 4 << 20;

#[derive(Debug)]
pub struct AtomPackages;

/// (name, version, description, license, homepage) of a package.json text; None when it is
/// not a JSON object.
pub fn parse(s: &str) -> Option<[Value; 5]> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let o = v.as_object()?;
    Some(
        ["name", "version", "description", "license", "homepage"].map(|k| match o.get(k) {
            None => Value::Null,
            Some(x) => text(x.as_str().unwrap_or("")),
        }),
    )
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        let (dir, _) = in_home(&a, ".atom/packages");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let (path, shown) = in_home(&a, &format!(".atom/packages/{n}/package.json"));
            let Some(fields) = read_text_inside(&a.path, &path, MAX_BYTES).and_then(|s| parse(&s))
            else {
                continue;
            };
            let [name, version, description, license, homepage] = fields;
            rows.push(vec![
                name,
                version,
                description,
                text(shown),
                license,
                homepage,
                int(a.uid),
            ]);
        }
    }
    rows
}

impl Table for AtomPackages {
    fn name(&self) -> &'static str {
        "atom_packages"
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
    fn manifests_give_their_fields() {
        assert_eq!(
            parse(
                r#"{"name":"minimap","version":"4.40.0","description":"A preview","license":"MIT","repository":"x","homepage":7}"#
            ),
            Some([
                text("minimap"),
                text("4.40.0"),
                text("A preview"),
                text("MIT"),
                text("")
            ])
        );
        assert_eq!(
            parse(r#"{"name":"bare"}"#),
            Some([
                text("bare"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ])
        );
        assert_eq!(parse("[1]"), None);
        assert_eq!(parse("{"), None);
    }

    #[test]
    fn packages_of_a_fake_home() {
        let root = fake_root(&[("kim", 1010, "/home/kim"), ("lee", 1011, "/home/lee")]);
        let pkgs = root.path().join("home/kim/.atom/packages");
        for (n, json) in [
            (
                "b-pkg",
                r#"{"name":"b-pkg","version":"2.0.0","license":"ISC"}"#,
            ),
            (
                "a-pkg",
                r#"{"name":"a-pkg","version":"1.0.0","homepage":"https://mirror.example.org/a"}"#,
            ),
            ("broken", "not json"),
        ] {
            std::fs::create_dir_all(pkgs.join(n)).unwrap();
            std::fs::write(pkgs.join(n).join("package.json"), json).unwrap();
        }
        std::fs::create_dir_all(pkgs.join("no-manifest")).unwrap();
        assert_eq!(
            rows_under(root.path(), &QueryContext::default()),
            [
                vec![
                    text("a-pkg"),
                    text("1.0.0"),
                    Value::Null,
                    text("/home/kim/.atom/packages/a-pkg/package.json"),
                    Value::Null,
                    text("https://mirror.example.org/a"),
                    int(1010)
                ],
                vec![
                    text("b-pkg"),
                    text("2.0.0"),
                    Value::Null,
                    text("/home/kim/.atom/packages/b-pkg/package.json"),
                    text("ISC"),
                    Value::Null,
                    int(1010)
                ],
            ]
        );
        assert!(rows_under(root.path(), &uid_eq(UID, 1011)).is_empty());
    }
}
