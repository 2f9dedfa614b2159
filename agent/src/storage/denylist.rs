//! A persisted denylist: names (a distributed query's SQL, a scheduled query's name) refused
//! until a unix second, kept as one metadata value so a restart keeps it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Store;

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Denylist {
    /// Name → unix second until which it is refused.
    pub until: BTreeMap<String, u64>,
    #[serde(skip)]
    key: Vec<u8>,
}

impl Denylist {
    /// The denylist stored under `key` (empty when there is none or it cannot be read).
    pub fn load(store: &Store, key: &[u8]) -> Self {
        let mut d: Self = store
            .get_meta(key)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        d.key = key.to_vec();
        d
    }

    /// Refuses `name` until `until` and saves the list (a failure is logged).
    pub fn add(&mut self, store: &Store, name: &str, until: u64) {
        self.until.insert(name.to_owned(), until);
        let saved = serde_json::to_vec(self)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                store
                    .put_meta(&self.key, &v, true)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            log::warn!(
                "saving the denylist {}: {e}",
                String::from_utf8_lossy(&self.key)
            );
        }
    }

    /// Seconds `name` stays refused after `now` (None: it may run). Expired entries go.
    pub fn refused(&mut self, name: &str, now: u64) -> Option<u64> {
        self.until.retain(|_, t| *t > now);
        self.until.get(name).map(|t| t - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_persist_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_primary(&dir.path().join("db")).unwrap();
        let mut d = Denylist::load(&store, b"test.denylist");
        assert_eq!(d.refused("q", 100), None);
        d.add(&store, "q", 160);
        let mut again = Denylist::load(&store, b"test.denylist");
        assert_eq!(again.refused("q", 100), Some(60));
        assert_eq!(again.refused("q", 160), None);
        assert!(again.until.is_empty());
        assert!(Denylist::load(&store, b"other").until.is_empty());
    }
}
