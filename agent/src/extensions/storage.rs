//! Extension storage through the manager: `call("storage", op, request)`. Each extension has
//! its own namespace (the `ext:<name>` column family of the daemon's store, never the files),
//! named by the extension it registered as (`uuid` in the request); the schema version it
//! declares (`schema`) must be the stored one, unless it asks to migrate (`migrate` = `1`).
//!
//! | op | request | rows |
//! |---|---|---|
//! | `get` | `key` | `{key, value}` or none |
//! | `put` | `key`, `value` | none |
//! | `delete` | `key` | none |
//! | `scan` | `prefix` (default all), `limit` (default 1000, at most 100000) | `{key, value}` in key order |
//! | `batch` | `ops`: a JSON list of `{"op": "put", "key", "value"}` / `{"op": "delete", "key"}` | none; all or nothing |
//! | `uninstall` | `extension` (a name; no uuid needed) | `{removed: 1 or 0}` |
//!
//! Keys and values are text (Thrift strings); an extension stores bytes as base64.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ExtensionResponse, Registry, answer};
use crate::storage::{Store, extensions::ExtensionBatch};

const SCAN_DEFAULT: usize = 1000;
const SCAN_MAX: usize = 100_000;

type Rows = Vec<BTreeMap<String, String>>;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum BatchOp {
    Put { key: String, value: String },
    Delete { key: String },
}

fn field<'a>(req: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, String> {
    req.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("storage: `{name}` is missing"))
}

fn kv(key: &[u8], value: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("key".to_owned(), String::from_utf8_lossy(key).into_owned()),
        (
            "value".to_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ),
    ])
}

/// One storage call.
pub fn call(
    store: &Store,
    registry: &Registry,
    op: &str,
    req: &BTreeMap<String, String>,
) -> ExtensionResponse {
    answer(run(store, registry, op, req))
}

fn run(
    store: &Store,
    registry: &Registry,
    op: &str,
    req: &BTreeMap<String, String>,
) -> Result<Rows, String> {
    if op == "uninstall" {
        let name = field(req, "extension")?;
        let removed = store.uninstall(name).map_err(|e| e.to_string())?;
        log::info!("extension storage of {name:?} uninstalled (had data: {removed})");
        return Ok(vec![BTreeMap::from([(
            "removed".to_owned(),
            u8::from(removed).to_string(),
        )])]);
    }
    let uuid: i64 = field(req, "uuid")?
        .parse()
        .map_err(|_| "storage: `uuid` is not a number".to_owned())?;
    let name = registry
        .name_of(uuid)
        .ok_or_else(|| format!("storage: no extension {uuid} is registered"))?;
    let schema: u32 = field(req, "schema")?
        .parse()
        .map_err(|_| "storage: `schema` is not a version number".to_owned())?;
    let ns = if req.get("migrate").is_some_and(|m| m == "1") {
        store.migrate_extension(&name, schema)
    } else {
        store.extension(&name, schema)
    }
    .map_err(|e| e.to_string())?;
    let e = |e: crate::storage::StorageError| e.to_string();
    match op {
        "get" => {
            let key = field(req, "key")?;
            Ok(ns
                .get(key.as_bytes())
                .map_err(e)?
                .map(|v| vec![kv(key.as_bytes(), &v)])
                .unwrap_or_default())
        }
        "put" => {
            ns.put(
                field(req, "key")?.as_bytes(),
                field(req, "value")?.as_bytes(),
            )
            .map_err(e)?;
            Ok(Vec::new())
        }
        "delete" => {
            ns.delete(field(req, "key")?.as_bytes()).map_err(e)?;
            Ok(Vec::new())
        }
        "scan" => {
            let prefix = req.get("prefix").map_or("", String::as_str);
            let limit = match req.get("limit") {
                None => SCAN_DEFAULT,
                Some(l) => l
                    .parse::<usize>()
                    .map_err(|_| "storage: `limit` is not a number".to_owned())?
                    .min(SCAN_MAX),
            };
            let mut rows = Vec::new();
            ns.scan(prefix.as_bytes(), |k, v| {
                rows.push(kv(k, v));
                rows.len() < limit
            })
            .map_err(e)?;
            Ok(rows)
        }
        "batch" => {
            let ops: Vec<BatchOp> = serde_json::from_str(field(req, "ops")?)
                .map_err(|err| format!("storage: `ops`: {err}"))?;
            let mut b = ExtensionBatch::default();
            for op in &ops {
                match op {
                    BatchOp::Put { key, value } => b.put(key.as_bytes(), value.as_bytes()),
                    BatchOp::Delete { key } => b.delete(key.as_bytes()),
                };
            }
            ns.write(&b).map_err(e)?;
            Ok(Vec::new())
        }
        other => Err(format!(
            "storage: unknown op {other:?} (get, put, delete, scan, batch, uninstall)"
        )),
    }
}
