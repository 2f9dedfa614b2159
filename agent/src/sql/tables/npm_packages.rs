//! `npm_packages`: Node.js packages installed globally (the `node_modules` of `/usr/lib` and
//! `/usr/local/lib`), or in the `node_modules` of the folders a `WHERE directory = '…'`
//! names (a project folder, as in osquery), from each package's `package.json` (scoped
//! `@org/name` packages included), and the packages nested in their own `node_modules`
//! down to `max_depth` (default 100, -1 unlimited; `depth` 0 = a direct dependency). A folder
//! reached twice (a symlink loop) is read once.

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
    col("depth", Integer),
    hidden("max_depth", Integer),
    hidden("pid_with_namespace", Integer),
    hidden("mount_namespace_id", Text),
];
const DIRECTORY: usize = 7;
const MAX_DEPTH: usize = 9;
const DEFAULT_MAX_DEPTH: i64 = 100;
const GLOBAL: &[&str] = &["/usr/lib", "/usr/local/lib"];

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

/// The row of the package in `pkg` (a folder with a `package.json`), found under `dir`.
pub fn package_row(pkg: &Path, dir: &Path, depth: i64, max_depth: i64) -> Option<Vec<Value>> {
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
        Value::Integer(depth),
        Value::Integer(max_depth),
        Value::Null,
        Value::Null,
    ])
}

/// The package folders of `folder/node_modules` (`name` and `@scope/name`), sorted.
fn packages_in(folder: &Path) -> Vec<PathBuf> {
    let sorted = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for p in sorted(&folder.join("node_modules")) {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('@'))
        {
            out.extend(sorted(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The packages under `dir` (its `node_modules`), depth first, nested ones down to
/// `max_depth` (-1: no limit).
fn scan(dir: &Path, max_depth: i64, rows: &mut Vec<Vec<Value>>) {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![(dir.to_owned(), 0i64)];
    while let Some((folder, depth)) = todo.pop() {
        let Ok(m) = std::fs::metadata(&folder) else {
            continue;
        };
        if !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        let mut nested = Vec::new();
        for pkg in packages_in(&folder) {
            let Some(r) = package_row(&pkg, dir, depth, max_depth) else {
                continue;
            };
            rows.push(r);
            if (max_depth < 0 || depth < max_depth) && pkg.join("node_modules").is_dir() {
                nested.push((pkg, depth + 1));
            }
        }
        // Popped in order: the first package's dependencies come next.
        todo.extend(nested.into_iter().rev());
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
        let max_depth = ctx
            .equals(MAX_DEPTH)
            .first()
            .and_then(|v| match v {
                Value::Integer(i) => Some(*i),
                Value::Text(t) => t.parse().ok(),
                _ => None,
            })
            .unwrap_or(DEFAULT_MAX_DEPTH);
        let mut rows = Vec::new();
        for d in &dirs {
            scan(d, max_depth, &mut rows);
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
        let inner = nm.join("left-pad/node_modules/pad-core");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(
            inner.join("package.json"),
            r#"{"name":"pad-core","version":"0.1.0"}"#,
        )
        .unwrap();
        // A loop back to left-pad: listed where it is found, never walked twice.
        std::fs::create_dir_all(inner.join("node_modules")).unwrap();
        std::os::unix::fs::symlink(nm.join("left-pad"), inner.join("node_modules/loop")).unwrap();
        let mut rows = Vec::new();
        scan(dir.path(), 100, &mut rows);
        let t = |r: &[Value], i: usize| match &r[i] {
            Value::Text(s) => s.clone(),
            _ => String::new(),
        };
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{}|{}|{}|{}|{}|{:?}",
                    t(r, 0),
                    t(r, 1),
                    t(r, 3),
                    t(r, 4),
                    t(r, 5),
                    r[8]
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "@types/node|20.1.0|DefinitelyTyped|MIT||Integer(0)",
                "left-pad|1.3.0|azer|WTFPL|https://example.org/lp|Integer(0)",
                "pad-core|0.1.0||||Integer(1)",
                "left-pad|1.3.0|azer|WTFPL|https://example.org/lp|Integer(2)",
            ]
        );
        assert_eq!(t(&rows[1], 7), dir.path().display().to_string());
        assert_eq!(
            t(&rows[2], 6),
            inner.join("package.json").display().to_string()
        );
        // max_depth 0: the direct dependencies only.
        let got = crate::sql::tables::util::rows_of(&format!(
            "SELECT name, depth FROM npm_packages WHERE directory = '{}' AND max_depth = 0",
            dir.path().display()
        ));
        assert_eq!(
            got,
            [["@types/node", "0"], ["left-pad", "0"]].map(|r| r.map(str::to_owned).to_vec())
        );
    }
}
