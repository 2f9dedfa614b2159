//! Extension data, kept apart from events: each extension gets its own column family
//! `ext:<name>` and a schema version in `meta` (`ext/<name>/schema`). Event tables, retention
//! and the drop counters never look at these column families; `uninstall` drops one whole.
//!
//! Crash safety: installing creates the column family before it records the schema version;
//! uninstalling drops the column family before it forgets the version. A version without its
//! column family therefore means "not installed" (a crash during uninstall), and a column
//! family without a version is adopted by the next install (a crash during install, no data).

use std::sync::PoisonError;

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use thiserror::Error;

use super::{StorageError, Store, cf_options};

/// Prefix of every extension column family.
pub const CF_PREFIX: &str = "ext:";
const NAME_MAX: usize = 64;

#[derive(Debug, Error)]
pub enum ExtensionError {
    #[error("bad extension name {0:?}: use 1 to {NAME_MAX} ASCII letters, digits, '_', '-' or '.'")]
    BadName(String),
    #[error(
        "extension {name} has stored data in schema version {stored}, but version {requested} was asked for; migrate or uninstall it first"
    )]
    SchemaMismatch {
        name: String,
        stored: u32,
        requested: u32,
    },
    #[error("extension {0} is not installed (a read-only store cannot install it)")]
    NotInstalled(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn check_name(name: &str) -> Result<(), ExtensionError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ExtensionError::BadName(name.to_owned()))
    }
}

fn schema_key(name: &str) -> String {
    format!("ext/{name}/schema")
}

/// The column family of extension `name`.
pub fn cf_name(name: &str) -> String {
    format!("{CF_PREFIX}{name}")
}

impl Store {
    fn stored_schema(&self, name: &str) -> Result<Option<u32>, StorageError> {
        let key = schema_key(name);
        match self.get_meta(key.as_bytes())? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 4] = v.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                    key,
                    what: "schema version is not 4 bytes",
                })?;
                Ok(Some(u32::from_be_bytes(b)))
            }
        }
    }

    fn has_cf(&self, cf: &str) -> bool {
        self.db.cf_handle(cf).is_some()
    }

    /// The data of extension `name`, installing it (empty, at `schema_version`) if needed.
    /// A different stored schema version is an error: the caller migrates or uninstalls.
    pub fn extension(
        &self,
        name: &str,
        schema_version: u32,
    ) -> Result<ExtensionStore<'_>, ExtensionError> {
        check_name(name)?;
        let cf = cf_name(name);
        let _guard = self.ext_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let installed = self.has_cf(&cf);
        match self.stored_schema(name)? {
            Some(stored) if installed && stored != schema_version => {
                return Err(ExtensionError::SchemaMismatch {
                    name: name.to_owned(),
                    stored,
                    requested: schema_version,
                });
            }
            Some(_) if installed => {}
            _ if self.is_secondary() => return Err(ExtensionError::NotInstalled(name.to_owned())),
            _ => {
                if !installed {
                    self.db
                        .create_cf(&cf, &cf_options(&cf))
                        .map_err(|e| self.err(e))?;
                }
                self.put_meta(
                    schema_key(name).as_bytes(),
                    &schema_version.to_be_bytes(),
                    true,
                )?;
            }
        }
        Ok(ExtensionStore {
            store: self,
            cf,
            schema_version,
        })
    }

    /// Records `schema_version` as extension `name`'s, keeping its data (the extension
    /// migrated it). Installs it if needed.
    pub fn migrate_extension(
        &self,
        name: &str,
        schema_version: u32,
    ) -> Result<ExtensionStore<'_>, ExtensionError> {
        check_name(name)?;
        if self.is_secondary() {
            return Err(ExtensionError::NotInstalled(name.to_owned()));
        }
        {
            let _guard = self.ext_lock.lock().unwrap_or_else(PoisonError::into_inner);
            if self.has_cf(&cf_name(name)) {
                self.put_meta(
                    schema_key(name).as_bytes(),
                    &schema_version.to_be_bytes(),
                    true,
                )?;
            }
        }
        self.extension(name, schema_version)
    }

    /// Installed extensions and their schema versions, by name.
    pub fn extensions(&self) -> Result<Vec<(String, u32)>, StorageError> {
        let names = Self::cf_names(&self.path)?;
        let mut out = Vec::new();
        for n in names {
            if let Some(name) = n.strip_prefix(CF_PREFIX)
                && let Some(v) = self.stored_schema(name)?
            {
                out.push((name.to_owned(), v));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Drops extension `name` and its data. Returns false when it was not installed.
    pub fn uninstall(&self, name: &str) -> Result<bool, ExtensionError> {
        check_name(name)?;
        if self.is_secondary() {
            return Err(ExtensionError::NotInstalled(name.to_owned()));
        }
        let cf = cf_name(name);
        let _guard = self.ext_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let had_cf = self.has_cf(&cf);
        if had_cf {
            self.db.drop_cf(&cf).map_err(|e| self.err(e))?;
        }
        let had_schema = self.stored_schema(name)?.is_some();
        if had_schema {
            self.delete_meta(schema_key(name).as_bytes(), true)?;
        }
        Ok(had_cf || had_schema)
    }
}

/// One extension's key-value namespace. Every operation stays inside `ext:<name>`.
#[derive(Debug)]
pub struct ExtensionStore<'a> {
    store: &'a Store,
    cf: String,
    schema_version: u32,
}

/// Puts and deletes applied together by [`ExtensionStore::write`], or not at all.
#[derive(Debug, Default)]
pub struct ExtensionBatch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl ExtensionBatch {
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push((key.to_vec(), Some(value.to_vec())));
        self
    }
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.ops.push((key.to_vec(), None));
        self
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl ExtensionStore<'_> {
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let cf = self.store.cf(&self.cf)?;
        self.store
            .db
            .get_cf(&cf, key)
            .map_err(|e| self.store.err(e))
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let mut b = ExtensionBatch::default();
        b.put(key, value);
        self.write(&b)
    }

    pub fn delete(&self, key: &[u8]) -> Result<(), StorageError> {
        let mut b = ExtensionBatch::default();
        b.delete(key);
        self.write(&b)
    }

    /// Applies `batch` atomically through the WAL.
    pub fn write(&self, batch: &ExtensionBatch) -> Result<(), StorageError> {
        let cf = self.store.cf(&self.cf)?;
        let bytes: usize = batch
            .ops
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        self.store
            .ensure_space(bytes as u64, super::WriteKind::Data)?;
        let mut b = WriteBatch::default();
        for (k, v) in &batch.ops {
            match v {
                Some(v) => b.put_cf(&cf, k, v),
                None => b.delete_cf(&cf, k),
            }
        }
        self.store
            .db
            .write_opt(b, &WriteOptions::default())
            .map_err(|e| self.store.err(e))
    }

    /// Entries whose key starts with `prefix`, in key order, until `each` returns false.
    pub fn scan(
        &self,
        prefix: &[u8],
        mut each: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let cf = self.store.cf(&self.cf)?;
        let iter = self
            .store
            .db
            .iterator_cf(&cf, IteratorMode::From(prefix, Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(|e| self.store.err(e))?;
            if !k.starts_with(prefix) || !each(&k, &v) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::event_key;

    fn collect(e: &ExtensionStore<'_>, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v = Vec::new();
        e.scan(prefix, |k, val| {
            v.push((k.to_vec(), val.to_vec()));
            true
        })
        .unwrap();
        v
    }

    #[test]
    fn put_get_delete_scan_stay_in_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        s.write(
            &[("process_events", event_key(1, 1), b"event".to_vec())],
            false,
        )
        .unwrap();
        let a = s.extension("alpha", 1).unwrap();
        let b = s.extension("beta", 7).unwrap();
        a.put(b"k/1", b"a1").unwrap();
        a.put(b"k/2", b"a2").unwrap();
        a.put(b"l/1", b"other prefix").unwrap();
        b.put(b"k/1", b"b1").unwrap();
        assert_eq!(a.get(b"k/1").unwrap().as_deref(), Some(&b"a1"[..]));
        assert_eq!(b.get(b"k/1").unwrap().as_deref(), Some(&b"b1"[..]));
        assert_eq!(b.get(b"k/2").unwrap(), None);
        assert_eq!(
            collect(&a, b"k/"),
            vec![
                (b"k/1".to_vec(), b"a1".to_vec()),
                (b"k/2".to_vec(), b"a2".to_vec())
            ]
        );
        assert_eq!(collect(&a, b"").len(), 3);
        a.delete(b"k/1").unwrap();
        assert_eq!(a.get(b"k/1").unwrap(), None);
        assert_eq!(collect(&a, b"k/").len(), 1);
        // Events are untouched and no event table sees extension keys.
        let mut events = 0;
        for t in ["process_events", "file_events", "socket_events"] {
            s.scan(t, 0, u64::MAX, |_, _, _| {
                events += 1;
                true
            })
            .unwrap();
        }
        assert_eq!(events, 1);
        assert_eq!(
            s.extensions().unwrap(),
            vec![("alpha".to_owned(), 1), ("beta".to_owned(), 7)]
        );
    }

    #[test]
    fn batches_are_atomic_and_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        let e = s.extension("ext1", 1).unwrap();
        e.put(b"gone", b"x").unwrap();
        let mut b = ExtensionBatch::default();
        b.put(b"a", b"1")
            .put(b"b", b"2")
            .delete(b"gone")
            .put(b"a", b"3");
        assert_eq!(b.len(), 4);
        e.write(&b).unwrap();
        assert_eq!(
            collect(&e, b""),
            vec![
                (b"a".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
    }

    #[test]
    fn schema_version_persists_and_a_mismatch_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open_primary(dir.path()).unwrap();
            let e = s.extension("fleet", 3).unwrap();
            assert_eq!(e.schema_version(), 3);
            e.put(b"k", b"v").unwrap();
        }
        let s = Store::open_primary(dir.path()).unwrap();
        let err = s.extension("fleet", 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extension fleet has stored data in schema version 3, but version 4 was asked for; migrate or uninstall it first"
        );
        let e = s.extension("fleet", 3).unwrap();
        assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        // A secondary reads it too, and cannot install anything.
        let sec = Store::open_secondary(dir.path()).unwrap();
        let se = sec.extension("fleet", 3).unwrap();
        assert_eq!(se.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(matches!(
            sec.extension("new", 1),
            Err(ExtensionError::NotInstalled(n)) if n == "new"
        ));
    }

    #[test]
    fn uninstall_drops_the_data_and_the_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open_primary(dir.path()).unwrap();
            let e = s.extension("tmp", 2).unwrap();
            e.put(b"k", b"v").unwrap();
            assert!(s.uninstall("tmp").unwrap());
            assert!(!s.uninstall("tmp").unwrap());
            // The handle of an uninstalled extension fails instead of writing elsewhere.
            assert_eq!(
                e.put(b"k", b"v").unwrap_err().to_string(),
                "unknown column family ext:tmp"
            );
        }
        let s = Store::open_primary(dir.path()).unwrap();
        assert!(
            !Store::cf_names(dir.path())
                .unwrap()
                .contains(&"ext:tmp".to_owned())
        );
        // Reinstalling at another version starts empty.
        let e = s.extension("tmp", 5).unwrap();
        assert_eq!(e.get(b"k").unwrap(), None);
        assert_eq!(s.extensions().unwrap(), vec![("tmp".to_owned(), 5)]);
    }

    #[test]
    fn a_version_without_its_column_family_is_not_installed() {
        // What a crash between drop_cf and deleting the version leaves behind.
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        s.put_meta(b"ext/half/schema", &9u32.to_be_bytes(), true)
            .unwrap();
        let e = s.extension("half", 1).unwrap();
        e.put(b"k", b"v").unwrap();
        assert_eq!(s.extensions().unwrap(), vec![("half".to_owned(), 1)]);
    }

    #[test]
    fn bad_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        for bad in ["", "a/b", "a:b", "ü", &"x".repeat(65)] {
            let err = s.extension(bad, 1).unwrap_err();
            assert!(
                matches!(&err, ExtensionError::BadName(n) if n == bad),
                "{err}"
            );
        }
        assert!(s.extension(&"x".repeat(64), 1).is_ok());
    }
}
