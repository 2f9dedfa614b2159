//! An extension's config plugin as the source of the config (`--config_plugin=NAME` where NAME
//! is no built-in plugin): the config service asks `call("config", NAME, {"action":
//! "genConfig"})` of the extension that registered it, at start-up, at every
//! `--config_refresh`, and at once when such an extension registers (so a config plugin that
//! starts after the daemon is applied within a poll, not at the next refresh).
//!
//! The answer is osquery's: rows of `{source name: config JSON}`; one source is the config,
//! several are merged in order (objects key by key, a later source's value winning). The last
//! config that built is kept in the store, for a start-up before the extension is back.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde_json::Value;

use super::Registry;
use crate::{config::live::Fetch, storage::Store};

/// The config from the extension that registers config plugin `name`.
pub struct ExtensionConfig {
    registry: Arc<Registry>,
    name: String,
    store: Arc<Store>,
    /// The registry generation at the last fetch (u64::MAX: none yet).
    seen: AtomicU64,
}

impl ExtensionConfig {
    pub fn new(registry: Arc<Registry>, name: &str, store: Arc<Store>) -> Self {
        Self {
            registry,
            name: name.to_owned(),
            store,
            seen: AtomicU64::new(u64::MAX),
        }
    }

    fn meta_key(&self) -> Vec<u8> {
        format!("config:extension:{}", self.name).into_bytes()
    }
}

/// The sources of a `genConfig` answer as one config text.
pub fn merge(sources: &[std::collections::BTreeMap<String, String>]) -> Result<String, String> {
    let texts: Vec<(&String, &String)> = sources.iter().flatten().collect();
    match texts.as_slice() {
        [] => Err("the plugin gave no config".to_owned()),
        [(_, text)] => Ok((*text).clone()),
        many => {
            let mut out = serde_json::Map::new();
            for (source, text) in many {
                let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) else {
                    return Err(format!("source {source:?} is not a JSON object"));
                };
                for (k, v) in o {
                    match (out.get_mut(&k), v) {
                        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                        (_, v) => {
                            out.insert(k, v);
                        }
                    }
                }
            }
            Ok(Value::Object(out).to_string())
        }
    }
}

impl Fetch for ExtensionConfig {
    fn origin(&self) -> String {
        format!("extension config plugin {}", self.name)
    }

    fn fetch(&self) -> Result<String, String> {
        self.seen.store(
            self.registry.generation.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        let request = [("action".to_owned(), "genConfig".to_owned())].into();
        let sources = self
            .registry
            .call_plugin("config", &self.name, request)
            .map_err(|e| {
                e.unwrap_or_else(|| {
                    format!("no extension has registered config plugin {:?}", self.name)
                })
            })?;
        merge(&sources)
    }

    fn cached(&self) -> Option<String> {
        self.store
            .get_meta(&self.meta_key())
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    fn keep(&self, text: &str) {
        if self.cached().as_deref() == Some(text) {
            return;
        }
        if let Err(e) = self
            .store
            .put_meta(&self.meta_key(), text.as_bytes(), false)
        {
            log::warn!("keeping the extension's config: {e}");
        }
    }

    fn reload_now(&self) -> bool {
        let now = self.registry.generation.load(Ordering::SeqCst);
        now != self.seen.load(Ordering::SeqCst)
            && self.registry.owner("config", &self.name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::merge;

    #[test]
    fn sources_merge_in_order_and_bad_ones_are_named() {
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(merge(&[one("a", "{\"x\": 1}")]).unwrap(), "{\"x\": 1}");
        let two = [
            one(
                "a",
                r#"{"schedule": {"q1": {"query": "SELECT 1;"}}, "options": {"x": 1}}"#,
            ),
            one(
                "b",
                r#"{"schedule": {"q2": {"query": "SELECT 2;"}}, "options": 5}"#,
            ),
        ];
        assert_eq!(
            merge(&two).unwrap(),
            r#"{"schedule":{"q1":{"query":"SELECT 1;"},"q2":{"query":"SELECT 2;"}},"options":5}"#
        );
        assert_eq!(
            merge(&[one("a", "{}"), one("b", "[1]")]).unwrap_err(),
            "source \"b\" is not a JSON object"
        );
        assert_eq!(merge(&[]).unwrap_err(), "the plugin gave no config");
    }
}
