//! RocksDB event storage without indexes.
//!
//! - One column family per event table; key = big-endian `time_ns ‖ seq`, so key order is time
//!   order and a time range is a range seek.
//! - `seq` is unique and never reused: the writer reserves blocks of it in the `meta` column
//!   family (synced) before handing any of them out, so a restart continues above every seq a
//!   crashed process could have used.
//! - The daemon is the only primary; `osprey query`/`shell` open a secondary instance that
//!   tails the primary's MANIFEST and WAL, so they see what the daemon wrote without stopping it.
//! - Retention ([`retention`]) is a background thread of range deletes; reading never deletes.
//! - Extension data ([`extensions`]) lives in its own `ext:<name>` column families.
//! - A full disk: every write first checks that a reserve stays free ([`Store::ensure_space`]),
//!   because the librocksdb 7.8 this links aborts the process on the WAL write that follows a
//!   failed one. Rows refused for space are counted as `write_error` by the writer, which
//!   stores again by itself once there is room; no reopen is needed, RocksDB never saw ENOSPC.
//!   Not covered, and not tested: a flush or compaction that needs more than the reserve
//!   (64 MiB, or a quarter of a small file system) fails inside RocksDB with a background
//!   error; whether 7.8's recovery from it avoids the same assertion is unknown.

pub mod codec;
pub mod denylist;
pub mod extensions;
pub mod logbuf;
pub mod optimize;
pub mod retention;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBWithThreadMode, Direction, IteratorMode, MultiThreaded, Options, ReadOptions, WriteBatch,
    WriteOptions,
};

/// Multi-threaded mode: extension column families are created and dropped through `&self`
/// while the writer and the retention thread use the same handle.
type Db = DBWithThreadMode<MultiThreaded>;
use thiserror::Error;

/// Event tables are named `<something>_events`, as in osquery; their column families get the
/// event options (compression, block size). Which ones exist is decided above storage, by the
/// source registry (`Store::ensure_event_tables`); a primary also creates one on first write.
pub const EVENT_SUFFIX: &str = "_events";

fn is_event_table(name: &str) -> bool {
    name.len() > EVENT_SUFFIX.len()
        && name.ends_with(EVENT_SUFFIX)
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}
/// Small bookkeeping values: seq reservations, persisted counters.
pub const CF_META: &str = "meta";
/// Drop windows: key = `window_end_ns ‖ seq`, value = an encoded [`crate::stats::DropWindow`].
pub const CF_DROPS: &str = "drops";

const META_SEQ_RESERVED: &[u8] = b"seq_reserved";
/// How many seqs one synced reservation covers.
const SEQ_BLOCK: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("no Osprey database at {0} (start `osprey daemon --database_path {0}` first)")]
    Missing(String),
    #[error("RocksDB error on {path}: {source}")]
    Rocks {
        path: String,
        #[source]
        source: rocksdb::Error,
    },
    #[error("unknown column family {0}")]
    UnknownTable(String),
    #[error(
        "not writing to {path}: the disk is almost full ({free} bytes free, {reserve} kept free so that RocksDB itself never runs out of space)"
    )]
    DiskFull {
        path: String,
        free: u64,
        reserve: u64,
    },
    #[error("stored value of {key} is malformed: {what}")]
    Corrupt { key: String, what: &'static str },
    #[error("cannot create the secondary instance folder {path}: {source}")]
    SecondaryDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Big-endian `time_ns ‖ seq`.
pub fn event_key(time_ns: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&time_ns.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a key made by [`event_key`]; None for a key of another shape.
pub fn split_key(key: &[u8]) -> Option<(u64, u64)> {
    let t: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let s: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some((u64::from_be_bytes(t), u64::from_be_bytes(s)))
}

pub struct Store {
    db: Db,
    path: PathBuf,
    /// For secondaries: their private folder, removed on drop.
    secondary_dir: Option<PathBuf>,
    /// Rows read by scans, for tests and the planner's statistics.
    rows_visited: AtomicU64,
    /// Serialises creating and dropping extension column families.
    ext_lock: std::sync::Mutex<()>,
    /// Free bytes event writes leave on the file system (see [`Store::ensure_space`]).
    reserve: AtomicU64,
}

/// What a write is for, which decides how much of the reserve it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// Event rows and extension data: stop at the full reserve.
    Data,
    /// Counters, seq reservations, markers, retention deletes: small, and needed to report
    /// and to recover, so they may use three quarters of the reserve.
    Bookkeeping,
}

/// The reserve for a file system of `total` bytes: a quarter of it, at most 64 MiB.
pub fn default_reserve(total: u64) -> u64 {
    (total / 4).min(64 << 20)
}

/// (free bytes for unprivileged users, total bytes) of the file system holding `path`.
fn fs_space(path: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some((
        st.f_bavail.saturating_mul(st.f_frsize),
        st.f_blocks.saturating_mul(st.f_frsize),
    ))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    if is_event_table(name) {
        // Events compress well (repeated paths and command lines).
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_bottommost_compression_type(DBCompressionType::Zstd);
        let mut b = BlockBasedOptions::default();
        b.set_block_size(32 << 10);
        o.set_block_based_table_factory(&b);
    }
    o
}

fn all_cfs() -> Vec<&'static str> {
    vec![
        CF_META,
        CF_DROPS,
        logbuf::CF_LOG_BUFFER,
        logbuf::CF_QUERY_RESULTS,
    ]
}

impl Store {
    /// Opens (creating if needed) the database as the single writer.
    pub fn open_primary(path: &Path) -> Result<Self, StorageError> {
        let rocks = |source| StorageError::Rocks {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(|e| StorageError::SecondaryDir {
            path: path.display().to_string(),
            source: e,
        })?;
        // Command lines, paths and (when captured) environments are private: the folder is
        // the owner's only, whatever it was created with (a folder made before is tightened).
        crate::sys::make_private_dir(path).map_err(|e| StorageError::SecondaryDir {
            path: path.display().to_string(),
            source: e,
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_max_total_wal_size(64 << 20);
        let mut cfs: Vec<ColumnFamilyDescriptor> = all_cfs()
            .into_iter()
            .map(|n| ColumnFamilyDescriptor::new(n, cf_options(n)))
            .collect();
        // Keep column families a newer version created (extension data, new tables).
        if let Ok(existing) = Db::list_cf(&opts, path) {
            for n in existing {
                if n != "default" && !all_cfs().contains(&n.as_str()) {
                    let o = cf_options(&n);
                    cfs.push(ColumnFamilyDescriptor::new(n, o));
                }
            }
        }
        let db = Db::open_cf_descriptors(&opts, path, cfs).map_err(rocks)?;
        Ok(Self {
            db,
            path: path.to_owned(),
            secondary_dir: None,
            rows_visited: AtomicU64::new(0),
            ext_lock: std::sync::Mutex::new(()),
            reserve: AtomicU64::new(fs_space(path).map_or(0, |(_, total)| default_reserve(total))),
        })
    }

    /// Opens a read-only follower of the daemon's database (its own files go to a folder in
    /// the temporary folder, named after the process; see [`remove_secondary_dirs_of`]).
    pub fn open_secondary(path: &Path) -> Result<Self, StorageError> {
        if !path.join("CURRENT").exists() {
            return Err(StorageError::Missing(path.display().to_string()));
        }
        let rocks = |source| StorageError::Rocks {
            path: path.display().to_string(),
            source,
        };
        let dir = std::env::temp_dir().join(format!(
            "osprey-secondary-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::SecondaryDir {
            path: dir.display().to_string(),
            source: e,
        })?;
        let mut opts = Options::default();
        opts.set_max_open_files(-1);
        let names = Db::list_cf(&opts, path).map_err(rocks)?;
        let cfs: Vec<ColumnFamilyDescriptor> = names
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(n, cf_options(n)))
            .collect();
        let db = Db::open_cf_descriptors_as_secondary(&opts, path, &dir, cfs).map_err(rocks)?;
        db.try_catch_up_with_primary().map_err(rocks)?;
        Ok(Self {
            db,
            path: path.to_owned(),
            secondary_dir: Some(dir),
            rows_visited: AtomicU64::new(0),
            ext_lock: std::sync::Mutex::new(()),
            reserve: AtomicU64::new(fs_space(path).map_or(0, |(_, total)| default_reserve(total))),
        })
    }

    /// Column family names of the database at `path` (from its MANIFEST).
    pub fn cf_names(path: &Path) -> Result<Vec<String>, StorageError> {
        Db::list_cf(&Options::default(), path).map_err(|source| StorageError::Rocks {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_secondary(&self) -> bool {
        self.secondary_dir.is_some()
    }

    /// Secondaries: read what the primary wrote since open (or the last catch-up).
    pub fn catch_up(&self) -> Result<(), StorageError> {
        if self.is_secondary() {
            self.db
                .try_catch_up_with_primary()
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Fails with [`StorageError::DiskFull`] when writing `bytes` would leave less free space
    /// than the reserve allows for `kind`.
    ///
    /// Why: the librocksdb 7.8 this links aborts the process (a failed assertion in
    /// `WritableFileWriter`) when it writes to a WAL after a failed WAL write, and it cannot
    /// leave that state without a reopen (fixed upstream in 9.x). So RocksDB must never see
    /// ENOSPC on its WAL: Osprey stops writing events first, counts them as `write_error`,
    /// and writes again on its own once space is back.
    pub fn ensure_space(&self, bytes: u64, kind: WriteKind) -> Result<(), StorageError> {
        let reserve = match kind {
            WriteKind::Data => self.reserve.load(Ordering::Relaxed),
            WriteKind::Bookkeeping => self.reserve.load(Ordering::Relaxed) / 4,
        };
        if reserve == 0 {
            return Ok(());
        }
        match fs_space(&self.path) {
            Some((free, _)) if free < reserve.saturating_add(bytes) => {
                Err(StorageError::DiskFull {
                    path: self.path.display().to_string(),
                    free,
                    reserve,
                })
            }
            _ => Ok(()),
        }
    }

    /// Changes the free space event writes leave (0: no check).
    pub fn set_reserve(&self, bytes: u64) {
        self.reserve.store(bytes, Ordering::Relaxed);
    }

    pub fn reserve(&self) -> u64 {
        self.reserve.load(Ordering::Relaxed)
    }

    fn err(&self, source: rocksdb::Error) -> StorageError {
        StorageError::Rocks {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn cf(&self, name: &str) -> Result<Arc<BoundColumnFamily<'_>>, StorageError> {
        if let Some(cf) = self.db.cf_handle(name) {
            return Ok(cf);
        }
        if !self.is_secondary() && is_event_table(name) {
            self.ensure_event_tables(&[name])?;
            if let Some(cf) = self.db.cf_handle(name) {
                return Ok(cf);
            }
        }
        Err(StorageError::UnknownTable(name.to_owned()))
    }

    /// Flushes `table` and rewrites all of it to the bottom level (zstd there), so that size
    /// measurements compare between runs; returns its SST bytes afterwards.
    pub fn compact_fully(&self, table: &str) -> Result<u64, StorageError> {
        let cf = self.cf(table)?;
        self.db.flush_cf(&cf).map_err(|e| self.err(e))?;
        let mut co = rocksdb::CompactOptions::default();
        co.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        self.db
            .compact_range_cf_opt(&cf, None::<&[u8]>, None::<&[u8]>, &co);
        Ok(self
            .db
            .property_int_value_cf(&cf, "rocksdb.total-sst-files-size")
            .map_err(|e| self.err(e))?
            .unwrap_or(0))
    }

    /// Creates the column families of `tables` that do not exist yet (primary only), so that a
    /// secondary opened later sees every table of the source registry.
    pub fn ensure_event_tables(&self, tables: &[&str]) -> Result<(), StorageError> {
        let _guard = self.ext_lock.lock().unwrap_or_else(|e| e.into_inner());
        for t in tables {
            if !is_event_table(t) {
                return Err(StorageError::UnknownTable((*t).to_owned()));
            }
            if self.db.cf_handle(t).is_none() {
                self.db
                    .create_cf(t, &cf_options(t))
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// The event tables this database holds (column families named `*_events`).
    pub fn event_tables(&self) -> Vec<String> {
        Self::cf_names(&self.path)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| is_event_table(n))
            .collect()
    }

    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .get_cf(&self.cf(CF_META)?, key)
            .map_err(|e| self.err(e))
    }

    pub fn put_meta(&self, key: &[u8], value: &[u8], sync: bool) -> Result<(), StorageError> {
        self.ensure_space((key.len() + value.len()) as u64, WriteKind::Bookkeeping)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        let mut b = WriteBatch::default();
        b.put_cf(&self.cf(CF_META)?, key, value);
        self.db.write_opt(b, &wo).map_err(|e| self.err(e))
    }

    /// Deletes a `meta` key (synced when `sync`).
    pub fn delete_meta(&self, key: &[u8], sync: bool) -> Result<(), StorageError> {
        self.ensure_space(key.len() as u64, WriteKind::Bookkeeping)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        let mut b = WriteBatch::default();
        b.delete_cf(&self.cf(CF_META)?, key);
        self.db.write_opt(b, &wo).map_err(|e| self.err(e))
    }

    /// Writes `(column family, key, value)` triples as one atomic batch through the WAL.
    pub fn write(
        &self,
        items: &[(&str, [u8; 16], Vec<u8>)],
        sync: bool,
    ) -> Result<(), StorageError> {
        self.write_as(items, sync, WriteKind::Data)
    }

    /// [`Store::write`] for small bookkeeping rows (drop windows), which may use part of the
    /// reserve: on a full disk the loss must still be recorded.
    pub fn write_as(
        &self,
        items: &[(&str, [u8; 16], Vec<u8>)],
        sync: bool,
        kind: WriteKind,
    ) -> Result<(), StorageError> {
        let bytes: usize = items.iter().map(|(_, k, v)| k.len() + v.len()).sum();
        self.ensure_space(bytes as u64, kind)?;
        let mut b = WriteBatch::default();
        // One handle lookup per run of rows for the same table, not one per row.
        let mut current: Option<(&str, Arc<BoundColumnFamily<'_>>)> = None;
        for (cf, k, v) in items {
            if current.as_ref().is_none_or(|(name, _)| name != cf) {
                current = Some((cf, self.cf(cf)?));
            }
            if let Some((_, handle)) = &current {
                b.put_cf(handle, k, v);
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(b, &wo).map_err(|e| self.err(e))
    }

    /// A builder of [`EventBatch`]es that looks up each table's handle once.
    pub fn batch_builder(&self) -> BatchBuilder<'_> {
        BatchBuilder {
            store: self,
            handles: Vec::new(),
        }
    }

    /// Writes `batch` atomically through the WAL (fsynced when `sync`).
    pub fn commit(&self, batch: EventBatch, sync: bool) -> Result<(), StorageError> {
        self.ensure_space(batch.batch.size_in_bytes() as u64, WriteKind::Data)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch.batch, &wo).map_err(|e| self.err(e))
    }

    /// Syncs the WAL to disk.
    pub fn flush_wal(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true).map_err(|e| self.err(e))
    }

    /// Rows of `table` with `from_ns <= time_ns <= to_ns`, oldest first. Stops when the
    /// callback returns false. Only the keys inside the range are visited.
    pub fn scan(
        &self,
        table: &str,
        from_ns: u64,
        to_ns: u64,
        mut each: impl FnMut(u64, u64, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let cf = self.cf(table)?;
        let mut ro = ReadOptions::default();
        if let Some(upper) = to_ns.checked_add(1) {
            ro.set_iterate_upper_bound(event_key(upper, 0).to_vec());
        }
        let start = event_key(from_ns, 0);
        let iter = self
            .db
            .iterator_cf_opt(&cf, ro, IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(|e| self.err(e))?;
            self.rows_visited.fetch_add(1, Ordering::Relaxed);
            let Some((t, s)) = split_key(&k) else {
                continue;
            };
            if !each(t, s, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Total rows visited by [`Self::scan`] so far.
    pub fn rows_visited(&self) -> u64 {
        self.rows_visited.load(Ordering::Relaxed)
    }

    /// The highest seq reserved so far (0 for a new database).
    pub fn seq_reserved(&self) -> Result<u64, StorageError> {
        Ok(self
            .get_meta(META_SEQ_RESERVED)?
            .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// A seq allocator that continues above every seq any earlier process may have used.
    pub fn seq_allocator(&self) -> Result<SeqAllocator, StorageError> {
        let start = self.seq_reserved()?;
        Ok(SeqAllocator {
            next: start,
            reserved: start,
        })
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(dir) = &self.secondary_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Rows for one atomic write. Built on one thread, it may be committed on another.
#[derive(Default)]
pub struct EventBatch {
    batch: WriteBatch,
    rows: usize,
}

impl std::fmt::Debug for EventBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBatch")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl EventBatch {
    pub fn len(&self) -> usize {
        self.rows
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

/// Adds rows to [`EventBatch`]es; keeps the column family handles of the tables it has seen.
pub struct BatchBuilder<'a> {
    store: &'a Store,
    handles: Vec<(&'static str, Arc<BoundColumnFamily<'a>>)>,
}

impl BatchBuilder<'_> {
    /// Adds the row `key -> value` of `table` to `batch` (the bytes are copied).
    pub fn put(
        &mut self,
        batch: &mut EventBatch,
        table: &'static str,
        key: &[u8; 16],
        value: &[u8],
    ) -> Result<(), StorageError> {
        let i = match self.handles.iter().position(|(t, _)| *t == table) {
            Some(i) => i,
            None => {
                self.handles.push((table, self.store.cf(table)?));
                self.handles.len() - 1
            }
        };
        batch.batch.put_cf(&self.handles[i].1, key, value);
        batch.rows += 1;
        Ok(())
    }
}

/// Hands out unique, strictly increasing seqs; persists a reservation before using a block.
#[derive(Debug)]
pub struct SeqAllocator {
    next: u64,
    reserved: u64,
}

impl SeqAllocator {
    pub fn next(&mut self, store: &Store) -> Result<u64, StorageError> {
        if self.next >= self.reserved {
            let new_reserved = self.reserved + SEQ_BLOCK;
            store.put_meta(META_SEQ_RESERVED, &new_reserved.to_be_bytes(), true)?;
            self.reserved = new_reserved;
        }
        let s = self.next;
        self.next += 1;
        Ok(s)
    }
}

/// Removes the secondary-instance folders that process `pid` made (a process that was
/// killed cannot remove its own).
pub fn remove_secondary_dirs_of(pid: u32) {
    let prefix = format!("osprey-secondary-{pid}-");
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_then_seq() {
        let a = event_key(1, u64::MAX);
        let b = event_key(2, 0);
        let c = event_key(2, 1);
        assert!(a < b && b < c);
        assert_eq!(split_key(&c), Some((2, 1)));
        assert_eq!(split_key(&c[..15]), None);
    }

    #[test]
    fn seq_never_reused_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let last = {
            let s = Store::open_primary(dir.path()).unwrap();
            let mut a = s.seq_allocator().unwrap();
            let first = a.next(&s).unwrap();
            assert_eq!(first, 0);
            a.next(&s).unwrap()
        };
        let s = Store::open_primary(dir.path()).unwrap();
        let mut a = s.seq_allocator().unwrap();
        let next = a.next(&s).unwrap();
        assert!(next > last, "{next} > {last}");
        assert_eq!(next, SEQ_BLOCK);
    }

    #[test]
    fn scan_visits_only_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        let items: Vec<_> = (0..100u64)
            .map(|i| ("process_events", event_key(i * 10, i), vec![i as u8]))
            .collect();
        s.write(&items, false).unwrap();
        let before = s.rows_visited();
        let mut got = Vec::new();
        s.scan("process_events", 200, 290, |t, _, v| {
            got.push((t, v[0]));
            true
        })
        .unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[0], (200, 20));
        assert_eq!(got[9], (290, 29));
        assert_eq!(s.rows_visited() - before, 10);
    }

    #[test]
    fn secondary_sees_primary_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = Store::open_primary(dir.path()).unwrap();
        p.write(&[("process_events", event_key(5, 1), vec![7])], false)
            .unwrap();
        let sec = Store::open_secondary(dir.path()).unwrap();
        let mut n = 0;
        sec.scan("process_events", 0, u64::MAX, |_, _, _| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 1);
        p.write(&[("process_events", event_key(6, 2), vec![8])], false)
            .unwrap();
        sec.catch_up().unwrap();
        n = 0;
        sec.scan("process_events", 0, u64::MAX, |_, _, _| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn reserve_is_a_quarter_of_the_disk_at_most_64_mib() {
        assert_eq!(default_reserve(4 << 20), 1 << 20);
        assert_eq!(default_reserve(1 << 40), 64 << 20);
        assert_eq!(default_reserve(0), 0);
    }

    #[test]
    fn writes_stop_at_the_reserve_and_resume_when_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        let (free, total) = fs_space(dir.path()).unwrap();
        assert_eq!(s.reserve(), default_reserve(total));
        // As if the disk were full: the reserve is larger than the free space.
        s.set_reserve(free.saturating_mul(2));
        let row = [("process_events", event_key(1, 1), vec![1u8])];
        let err = s.write(&row, false).unwrap_err();
        assert!(
            matches!(err, StorageError::DiskFull { reserve, .. } if reserve == free.saturating_mul(2)),
            "{err}"
        );
        let mut b = EventBatch::default();
        s.batch_builder()
            .put(&mut b, "process_events", &event_key(2, 2), &[2])
            .unwrap();
        assert!(matches!(
            s.commit(b, false),
            Err(StorageError::DiskFull { .. })
        ));
        // Counters may still be saved: bookkeeping uses a quarter of the reserve.
        s.put_meta(b"stats", b"{}", false).unwrap();
        // Room again.
        s.set_reserve(0);
        s.write(&row, false).unwrap();
        let mut n = 0;
        s.scan("process_events", 0, u64::MAX, |_, _, _| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn missing_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open_secondary(&dir.path().join("nope")).unwrap_err();
        assert!(
            err.to_string().starts_with("no Osprey database at "),
            "{err}"
        );
    }
}
