//! `npm_packages`: Node.js packages installed globally (`/usr/lib/node_modules`,
//! `/usr/local/lib/node_modules`), or in the `node_modules` folders a
//! `WHERE directory = '…'` names, from each package's `package.json` (scoped `@org/name`
//! packages included).

use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use serde_json::Value as Json;

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("version", Text),
    col("description", Text),
    col("author", Text),
    col("license", Text),
    col("homepage", Text),
    col("path", Text),
    col("directory", Text),
    hidden("pid_with_namespace", Integer),
    hidden("mount_namespace_id", Text),
];
const DIRECTORY: usize = 7;
const GLOBAL: &[&str] = &["/usr/lib/node_modules", "/usr/local/lib/node_modules"];

#[derive(Debug)]
pub struct NpmPackages;

/// A field that is a string, or an object's `name` (npm's `author` may be either), or a
/// legacy `licenses` list's first `type`.
fn field(j: &Json, key: &str) -> String {
    match j.get(key) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Object(o)) => o
            .get("name")
            .or_else(|| o.get("type"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_owned(),
        Some(Json::Array(a)) => a
            .first()
            .map(|x| field(&serde_json::json!({ "x": x }), "x"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The row of the package in `pkg` (a folder with a `package.json`).
pub fn package_row(pkg: &Path, dir: &Path) -> Option<Vec<Value>> {
    let manifest = pkg.join("package.json");
    let j: Json = serde_json::from_str(&read_text(&manifest)?).ok()?;
    let name = field(&j, "name");
    if name.is_empty() {
        return None;
    }
    let license = match field(&j, "license") {
        l if l.is_empty() => field(&j, "licenses"),
        l => l,
    };
    Some(vec![
        text(name),
        text(field(&j, "version")),
        text(field(&j, "description")),
        text(field(&j, "author")),
        text(license),
        text(field(&j, "homepage")),
        text(manifest.display().to_string()),
        text(dir.display().to_string()),
        Value::Null,
        Value::Null,
    ])
}

fn scan(dir: &Path, rows: &mut Vec<Vec<Value>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let scoped = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('@'));
        if scoped {
            let Ok(inner) = std::fs::read_dir(&p) else {
                continue;
            };
            let mut pkgs: Vec<PathBuf> = inner.flatten().map(|e| e.path()).collect();
            pkgs.sort();
            rows.extend(pkgs.iter().filter_map(|q| package_row(q, dir)));
        } else if let Some(r) = package_row(&p, dir) {
            rows.push(r);
        }
    }
}

impl Table for NpmPackages {
    fn name(&self) -> &'static str {
        "npm_packages"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let asked: Vec<PathBuf> = ctx
            .equal_texts(DIRECTORY)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let dirs = if asked.is_empty() {
            GLOBAL.iter().map(PathBuf::from).collect()
        } else {
            asked
        };
        let mut rows = Vec::new();
        for d in &dirs {
            scan(d, &mut rows);
        }
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_scoped_packages_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let nm = dir.path().join("node_modules");
        for (p, json) in [
            (
                "left-pad",
                r#"{"name":"left-pad","version":"1.3.0","description":"String left pad","author":"azer","license":"WTFPL","homepage":"https://example.org/lp"}"#,
            ),
            (
                "@types/node",
                r#"{"name":"@types/node","version":"20.1.0","author":{"name":"DefinitelyTyped"},"licenses":[{"type":"MIT"}]}"#,
            ),
            ("broken", "{not json"),
        ] {
            std::fs::create_dir_all(nm.join(p)).unwrap();
            std::fs::write(nm.join(p).join("package.json"), json).unwrap();
        }
        let mut rows = Vec::new();
        scan(&nm, &mut rows);
        let t = |r: &[Value], i: usize| match &r[i] {
            Value::Text(s) => s.clone(),
            _ => String::new(),
        };
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{}|{}|{}|{}|{}",
                    t(r, 0),
                    t(r, 1),
                    t(r, 3),
                    t(r, 4),
                    t(r, 5)
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "@types/node|20.1.0|DefinitelyTyped|MIT|",
                "left-pad|1.3.0|azer|WTFPL|https://example.org/lp"
            ]
        );
        assert_eq!(t(&rows[1], 7), nm.display().to_string());
    }
}
