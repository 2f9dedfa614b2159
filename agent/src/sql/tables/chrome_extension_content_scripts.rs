//! `chrome_extension_content_scripts`: one row per content script and URL pattern of the
//! extensions `chrome_extensions` finds (the same profiles, folders and guards, see
//! [`super::chrome_extensions`]; `WHERE uid = N` reads one account): each
//! `content_scripts` entry of a manifest with both `matches` and `js` gives a row for every
//! pattern × script. `identifier` is the id derived from the manifest's `key`, else the
//! preferences' id of the extension, else empty.

use std::path::Path;

use rusqlite::types::Value;

use crate::sql::{
    tables::{
        chrome_extensions::profiles,
        user_files::uid_cost,
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("browser_type", Text),
    col("uid", BigInt),
    col("identifier", Text),
    col("version", Text),
    col("script", Text),
    col("match", Text),
    col("profile_path", Text),
    col("path", Text),
    col("referenced", BigInt),
];
const UID: usize = 1;

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for p in profiles(root, ctx, UID) {
        for e in &p.extensions {
            let id = e
                .identifier
                .clone()
                .unwrap_or_else(|| e.setting("referenced_identifier"));
            for (pattern, script) in &e.scripts {
                rows.push(vec![
                    text(p.browser),
                    int(p.uid),
                    text(id.clone()),
                    text(e.prop("version")),
                    text(script.clone()),
                    text(pattern.clone()),
                    text(p.path.clone()),
                    text(e.path.clone()),
                    int(i64::from(e.referenced)),
                ]);
            }
        }
    }
    rows
}

#[derive(Debug)]
pub struct ChromeExtensionContentScripts;

impl Table for ChromeExtensionContentScripts {
    fn name(&self) -> &'static str {
        "chrome_extension_content_scripts"
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
    use crate::sql::tables::{
        chrome_extensions::tests::{KEY_ID, chrome_home},
        user_files::tests::{fake_root, uid_eq},
    };

    fn strings(rows: Vec<Vec<Value>>) -> Vec<Vec<String>> {
        rows.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        Value::Text(t) => t,
                        Value::Integer(i) => i.to_string(),
                        v => format!("{v:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn each_pattern_and_script_is_a_row() {
        let root = fake_root(&[("ann", 1000, "/home/ann"), ("bob", 1001, "/home/bob")]);
        let r = root.path();
        chrome_home(r, "/home/ann");
        chrome_home(r, "/home/bob");
        let prof = "/home/bob/.config/google-chrome/Default";
        let a = format!("{prof}/Extensions/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1.2.3_0");
        let b = format!("{prof}/Extensions/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/4.0_0");
        let row = |id: &str, v: &str, s: &str, m: &str, path: &str, refd: &str| {
            ["chrome", "1001", id, v, s, m, prof, path, refd]
                .map(str::to_owned)
                .to_vec()
        };
        assert_eq!(
            strings(rows_under(r, &uid_eq(UID, 1001))),
            [
                row("", "4.0", "all.js", "*://*/*", &b, "0"),
                row(KEY_ID, "1.2.3", "a.js", "https://example.org/*", &a, "1"),
                row(KEY_ID, "1.2.3", "b.js", "https://example.org/*", &a, "1"),
                row(KEY_ID, "1.2.3", "a.js", "https://example.com/*", &a, "1"),
                row(KEY_ID, "1.2.3", "b.js", "https://example.com/*", &a, "1"),
            ]
        );
        assert_eq!(rows_under(r, &QueryContext::default()).len(), 10);
        assert!(rows_under(r, &uid_eq(UID, 0)).is_empty());
    }
}
