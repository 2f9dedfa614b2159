//! `firefox_addons`: the add-ons in the `extensions.json` of each Firefox profile of each
//! account: every sub-folder of `~/.mozilla/firefox`, `~/snap/firefox/common/.mozilla/firefox`
//! and `~/.config/mozilla/firefox` except `Crash Reports` and `Pending Pings` (accounts and
//! file guards: [`super::user_files`]; `WHERE uid = N` reads one account). Each object of
//! the file's `addons` array is a row: `defaultLocale.name`, `.creator` and `.description`,
//! `id`, `type`, `version`, `sourceURI`, `visible`, `active`, `applyBackgroundUpdates`,
//! `location` and `path`, as osquery shows them (text of a string or number, `1`/`0` for a
//! boolean, NULL when missing); `disabled` is 1 when any of `softDisable`, `appDisabled`
//! and `userDisabled` is true. A file that is not JSON with an `addons` array gives no rows.

use std::path::Path;

use rusqlite::types::Value;
use serde_json::Value as Json;

use crate::sql::{
    tables::{
        user_files::{accounts, in_home, read_text_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("uid", BigInt),
    col("name", Text),
    col("identifier", Text),
    col("creator", Text),
    col("type", Text),
    col("version", Text),
    col("description", Text),
    col("source_url", Text),
    col("visible", Integer),
    col("active", Integer),
    col("disabled", Integer),
    col("autoupdate", Integer),
    col("location", Text),
    col("path", Text),
];
const UID: usize = 0;
/// The folders of profiles in a home.
const FOLDERS: [&str; 3] = [
    ".mozilla/firefox",
    "snap/firefox/common/.mozilla/firefox",
    ".config/mozilla/firefox",
];
const MAX_BYTES: u64 = 16 << 20;

/// The value at a dotted path of an object.
fn at<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(v, |v, k| v.as_object()?.get(k))
}

/// A value as osquery's text: strings, numbers, booleans as 1/0, `null`; None for
/// containers.
fn as_text(v: &Json) -> Option<String> {
    Some(match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => i64::from(*b).to_string(),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{f:.6}"),
            _ => return None,
        },
        Json::Null => "null".to_owned(),
        Json::Array(_) | Json::Object(_) => return None,
    })
}

fn text_at(v: &Json, path: &str) -> Value {
    at(v, path).and_then(as_text).map_or(Value::Null, text)
}

/// An integer column: the text as a whole number, else NULL.
fn int_at(v: &Json, path: &str) -> Value {
    at(v, path)
        .and_then(as_text)
        .and_then(|t| t.parse::<i64>().ok())
        .map_or(Value::Null, int)
}

/// osquery's truth of a value: true, "true"/"t" in any case, a non-zero number.
fn truthy(v: Option<&Json>) -> bool {
    match v {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("t"),
        Some(Json::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// The rows (without uid) of an `extensions.json` text.
pub fn parse(s: &str) -> Vec<Vec<Value>> {
    let Ok(doc) = serde_json::from_str::<Json>(s) else {
        return Vec::new();
    };
    let Some(addons) = doc.get("addons").and_then(Json::as_array) else {
        return Vec::new();
    };
    addons
        .iter()
        .filter(|a| a.is_object())
        .map(|a| {
            let disabled = ["softDisable", "appDisabled", "userDisabled"]
                .iter()
                .any(|k| truthy(a.get(*k)));
            vec![
                text_at(a, "defaultLocale.name"),
                text_at(a, "id"),
                text_at(a, "defaultLocale.creator"),
                text_at(a, "type"),
                text_at(a, "version"),
                text_at(a, "defaultLocale.description"),
                text_at(a, "sourceURI"),
                int_at(a, "visible"),
                int_at(a, "active"),
                int(i64::from(disabled)),
                int_at(a, "applyBackgroundUpdates"),
                text_at(a, "location"),
                text_at(a, "path"),
            ]
        })
        .collect()
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        for folder in FOLDERS {
            let (dir, _) = in_home(&a, folder);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut profiles: Vec<String> = rd
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.ends_with("Crash Reports") && !n.ends_with("Pending Pings"))
                .collect();
            profiles.sort();
            for p in profiles {
                let file = dir.join(&p).join("extensions.json");
                let Some(s) = read_text_inside(&a.path, &file, MAX_BYTES) else {
                    continue;
                };
                for r in parse(&s) {
                    let mut row = vec![int(a.uid)];
                    row.extend(r);
                    rows.push(row);
                }
            }
        }
    }
    rows
}

#[derive(Debug)]
pub struct FirefoxAddons;

impl Table for FirefoxAddons {
    fn name(&self) -> &'static str {
        "firefox_addons"
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

    const JSON: &str = r#"{"schemaVersion": 36, "addons": [
      {"id": "helper@example.org", "syncGUID": "{0}", "version": "2.5.1", "type": "extension",
       "loader": null, "updateURL": null, "installOrigins": null, "manifestVersion": 2,
       "optionsURL": null, "optionsType": null,
       "defaultLocale": {"name": "Example Helper", "description": "Helps", "creator": "Ann Example",
                         "homepageURL": null, "developers": null},
       "visible": true, "active": true, "userDisabled": false, "appDisabled": false,
       "softDisable": false, "applyBackgroundUpdates": 1,
       "sourceURI": "https://example.org/ext/helper.xpi",
       "location": "app-profile",
       "path": "/home/ann/.mozilla/firefox/abcd1234.default-release/extensions/helper@example.org.xpi"},
      {"id": "theme@example.org", "version": 3, "type": "theme", "visible": false, "active": false,
       "userDisabled": "True", "applyBackgroundUpdates": 2.5, "location": "app-builtin",
       "defaultLocale": {"name": null, "creator": ["x"]}},
      {"id": "soft@example.org", "softDisable": 1},
      "junk"
    ]}"#;

    fn shown(rows: &[Vec<Value>]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        Value::Text(t) => t.clone(),
                        Value::Integer(i) => i.to_string(),
                        Value::Null => "NULL".to_owned(),
                        v => format!("{v:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn extensions_json_gives_the_addons() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shown(&parse(JSON)),
            [
                v(&[
                    "Example Helper",
                    "helper@example.org",
                    "Ann Example",
                    "extension",
                    "2.5.1",
                    "Helps",
                    "https://example.org/ext/helper.xpi",
                    "1",
                    "1",
                    "0",
                    "1",
                    "app-profile",
                    "/home/ann/.mozilla/firefox/abcd1234.default-release/extensions/helper@example.org.xpi",
                ]),
                v(&[
                    "null",
                    "theme@example.org",
                    "NULL",
                    "theme",
                    "3",
                    "NULL",
                    "NULL",
                    "0",
                    "0",
                    "1",
                    "NULL",
                    "app-builtin",
                    "NULL",
                ]),
                v(&[
                    "NULL",
                    "soft@example.org",
                    "NULL",
                    "NULL",
                    "NULL",
                    "NULL",
                    "NULL",
                    "NULL",
                    "NULL",
                    "1",
                    "NULL",
                    "NULL",
                    "NULL",
                ]),
            ]
        );
        assert!(parse("{ broken").is_empty());
        assert!(parse(r#"{"addons": {}}"#).is_empty());
        assert!(parse("[]").is_empty());
    }

    #[test]
    fn profiles_of_each_account_and_uid_reads_one() {
        let root = fake_root(&[("ann", 1000, "/home/ann"), ("bob", 1001, "/home/bob")]);
        let r = root.path();
        let one = r#"{"addons": [{"id": "one@example.org"}]}"#;
        for (dir, body) in [
            ("home/ann/.mozilla/firefox/abcd1234.default-release", JSON),
            ("home/ann/.mozilla/firefox/Crash Reports", one),
            ("home/ann/.config/mozilla/firefox/efgh.default", one),
            (
                "home/ann/snap/firefox/common/.mozilla/firefox/snap.default",
                one,
            ),
            ("home/bob/.mozilla/firefox/x.default", one),
            ("home/bob/.mozilla/firefox/y.broken", "{"),
        ] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
            std::fs::write(r.join(dir).join("extensions.json"), body).unwrap();
        }
        let ids = |ctx: &QueryContext| -> Vec<(Value, Value)> {
            rows_under(r, ctx)
                .into_iter()
                .map(|x| (x[0].clone(), x[2].clone()))
                .collect()
        };
        let id = |u: i64, s: &str| (int(u), text(s));
        assert_eq!(
            ids(&QueryContext::default()),
            [
                id(1000, "helper@example.org"),
                id(1000, "theme@example.org"),
                id(1000, "soft@example.org"),
                id(1000, "one@example.org"),
                id(1000, "one@example.org"),
                id(1001, "one@example.org"),
            ]
        );
        assert_eq!(ids(&uid_eq(UID, 1001)), [id(1001, "one@example.org")]);
        assert!(ids(&uid_eq(UID, 5)).is_empty());
    }
}
