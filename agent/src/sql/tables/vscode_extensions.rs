//! `vscode_extensions`: the extensions of Visual Studio Code and its forks in each account's
//! `~/<folder>/extensions/extensions.json`, the folders osquery reads (`.vscode`,
//! `.vscode-server`, the insiders', VSCodium's, Cursor's, Windsurf's and Trae's), each with
//! its `vscode_edition` (accounts and file guards: [`super::user_files`]; `WHERE uid = N`
//! reads one account). Each entry with `identifier`, `metadata` and `location` objects is a
//! row: `identifier.id`, `uuid` (`metadata.id`, else `identifier.uuid`), `version`,
//! `location.path`, the metadata's `publisherDisplayName`, `publisherId`,
//! `installedTimestamp` (ms) and `isPreReleaseVersion`; a value that is missing or of
//! another JSON type is NULL. No VS Code, no rows.

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
    col("uuid", Text),
    col("version", Text),
    col("path", Text),
    col("publisher", Text),
    col("publisher_id", Text),
    col("installed_at", BigInt),
    col("prerelease", Integer),
    col("uid", BigInt),
    col("vscode_edition", Text),
];
const UID: usize = 8;
/// The folders in a home with an `extensions/extensions.json`, and their edition.
const FOLDERS: [(&str, &str); 15] = [
    (".vscode-server", "vscode"),
    (".vscode", "vscode"),
    (".vscode-server-insiders", "vscode_insiders"),
    (".vscode-insiders", "vscode_insiders"),
    (".vscode-oss", "vscodium"),
    (".vscodium-server", "vscodium"),
    (".vscodium-insiders", "vscodium_insiders"),
    (".vscodium-server-insiders", "vscodium_insiders"),
    (".cursor", "cursor"),
    (".cursor-server", "cursor"),
    (".windsurf", "windsurf"),
    (".windsurf-server", "windsurf"),
    (".devin", "windsurf"),
    (".trae", "trae"),
    (".trae-server", "trae"),
];
const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug)]
pub struct VscodeExtensions;

/// The rows (without uid) of an `extensions.json` text; none when it is not a JSON array.
pub fn parse(s: &str) -> Vec<Vec<Value>> {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str::<serde_json::Value>(s) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let (Some(id), Some(meta), Some(loc)) = (
                e.get("identifier").filter(|v| v.is_object()),
                e.get("metadata").filter(|v| v.is_object()),
                e.get("location").filter(|v| v.is_object()),
            ) else {
                return None;
            };
            let s = |v: &serde_json::Value, k: &str| {
                v.get(k).and_then(|x| x.as_str()).map_or(Value::Null, text)
            };
            let uuid = match s(meta, "id") {
                Value::Null => s(id, "uuid"),
                v => v,
            };
            Some(vec![
                s(id, "id"),
                uuid,
                s(e, "version"),
                s(loc, "path"),
                s(meta, "publisherDisplayName"),
                s(meta, "publisherId"),
                meta.get("installedTimestamp")
                    .and_then(|x| x.as_i64())
                    .map_or(Value::Null, int),
                meta.get("isPreReleaseVersion")
                    .and_then(|x| x.as_bool())
                    .map_or(Value::Null, |b| int(i64::from(b))),
            ])
        })
        .collect()
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        for (folder, edition) in FOLDERS {
            let (path, _) = in_home(&a, &format!("{folder}/extensions/extensions.json"));
            let Some(s) = read_text_inside(&a.path, &path, MAX_BYTES) else {
                continue;
            };
            for mut r in parse(&s) {
                r.push(int(a.uid));
                r.push(text(edition));
                rows.push(r);
            }
        }
    }
    rows
}

impl Table for VscodeExtensions {
    fn name(&self) -> &'static str {
        "vscode_extensions"
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

    const JSON: &str = r#"[
      {"identifier":{"id":"rust-lang.rust-analyzer","uuid":"06574cb4-e5dc-4631-8174-a543a4533621"},
       "version":"0.3.2029",
       "location":{"$mid":1,"path":"/home/ivy/.vscode/extensions/rust-lang.rust-analyzer-0.3.2029-linux-x64","scheme":"file"},
       "relativeLocation":"rust-lang.rust-analyzer-0.3.2029-linux-x64",
       "metadata":{"installedTimestamp":1719000000000,"pinned":false,"source":"gallery",
                   "id":"06574cb4-e5dc-4631-8174-a543a4533621","publisherId":"cb775e7a-e8b5-4d1c-9b4b-1e9a8a3e6b48",
                   "publisherDisplayName":"The Rust Programming Language","targetPlatform":"linux-x64",
                   "isPreReleaseVersion":true}},
      {"identifier":{"id":"local.thing"},"version":3,"location":{"path":"/x"},"metadata":{"installedTimestamp":"soon"}},
      {"identifier":{"id":"no.location"},"metadata":{}},
      "junk"
    ]"#;

    #[test]
    fn extension_entries_become_rows() {
        assert_eq!(
            parse(JSON),
            [
                vec![
                    text("rust-lang.rust-analyzer"),
                    text("06574cb4-e5dc-4631-8174-a543a4533621"),
                    text("0.3.2029"),
                    text("/home/ivy/.vscode/extensions/rust-lang.rust-analyzer-0.3.2029-linux-x64"),
                    text("The Rust Programming Language"),
                    text("cb775e7a-e8b5-4d1c-9b4b-1e9a8a3e6b48"),
                    int(1_719_000_000_000i64),
                    int(1),
                ],
                vec![
                    text("local.thing"),
                    Value::Null,
                    Value::Null,
                    text("/x"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            ]
        );
        assert!(parse("{\"not\": \"a list\"}").is_empty());
        assert!(parse("[{").is_empty());
    }

    #[test]
    fn both_folders_of_a_fake_home_are_read() {
        let root = fake_root(&[("ivy", 1008, "/home/ivy"), ("jo", 1009, "/home/jo")]);
        let home = root.path().join("home/ivy");
        for (d, id) in [
            (".vscode", "a.local"),
            (".vscode-server", "b.remote"),
            (".cursor", "c.cursor"),
        ] {
            std::fs::create_dir_all(home.join(d).join("extensions")).unwrap();
            std::fs::write(
                home.join(d).join("extensions/extensions.json"),
                format!(
                    r#"[{{"identifier":{{"id":"{id}"}},"version":"1.0.0","location":{{"path":"/p/{id}"}},"metadata":{{"isPreReleaseVersion":false}}}}]"#
                ),
            )
            .unwrap();
        }
        let r = |id: &str, edition: &str| {
            vec![
                text(id),
                Value::Null,
                text("1.0.0"),
                text(format!("/p/{id}")),
                Value::Null,
                Value::Null,
                Value::Null,
                int(0),
                int(1008),
                text(edition),
            ]
        };
        assert_eq!(
            rows_under(root.path(), &QueryContext::default()),
            [
                r("b.remote", "vscode"),
                r("a.local", "vscode"),
                r("c.cursor", "cursor")
            ]
        );
        assert!(rows_under(root.path(), &uid_eq(UID, 1009)).is_empty());
    }
}
