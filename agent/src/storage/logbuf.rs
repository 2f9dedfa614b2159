//! The durable log buffer every logger reads from, and the scheduled queries' previous
//! results (for differential logging).
//!
//! - `log_buffer`: key = big-endian seq, value = one log line as the logger layer encoded it.
//!   Lines are appended in one synced batch together with the new result state of the query
//!   that produced them, so a crash either keeps both or neither: no line is lost and no row
//!   is reported twice. A line leaves the buffer only after every sink acknowledged it
//!   ([`LogBuffer::release`]).
//! - `query_results`: key = scheduled query name, value = its state as the scheduler encoded
//!   it (opaque here).
//! - Each sink's position is kept in `meta` under `log_cursor/<sink>`.

use std::sync::{Arc, Mutex};

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::{StorageError, Store};

pub const CF_LOG_BUFFER: &str = "log_buffer";
pub const CF_QUERY_RESULTS: &str = "query_results";

const CURSOR_PREFIX: &str = "log_cursor/";

/// The most the buffer holds (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_lines: u64,
    pub max_bytes: u64,
}

/// What one append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub kept: u64,
    /// Lines that did not fit under the limits (counted by the caller as a loss).
    pub dropped: u64,
}

#[derive(Debug)]
struct Inner {
    next: u64,
    lines: u64,
    bytes: u64,
}

/// The buffer over a primary store.
#[derive(Debug)]
pub struct LogBuffer {
    store: Arc<Store>,
    inner: Mutex<Inner>,
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn key_seq(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

impl LogBuffer {
    /// Opens the buffer, counting what an earlier run left in it.
    /// The store the buffer lives in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn open(store: Arc<Store>) -> Result<Self, StorageError> {
        let cf = store.cf(CF_LOG_BUFFER)?;
        let (mut lines, mut bytes, mut last) = (0u64, 0u64, None);
        for item in store.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| store.err(e))?;
            lines += 1;
            bytes += v.len() as u64;
            last = key_seq(&k);
        }
        drop(cf);
        Ok(Self {
            store,
            inner: Mutex::new(Inner {
                next: last.map_or(1, |l| l + 1),
                lines,
                bytes,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (lines, bytes) buffered now.
    pub fn len(&self) -> (u64, u64) {
        let i = self.lock();
        (i.lines, i.bytes)
    }

    /// Appends `lines` (those that fit under `limits`) and, in the same synced batch,
    /// replaces the result state `state` = (query name, value) when given.
    pub fn append(
        &self,
        lines: &[Vec<u8>],
        state: Option<(&str, &[u8])>,
        limits: Limits,
    ) -> Result<Appended, StorageError> {
        self.append_with(lines, state, limits, true)
    }

    /// [`Self::append`], synced or not (through the WAL either way: not synced survives a
    /// crash of the process, not of the machine).
    pub fn append_with(
        &self,
        lines: &[Vec<u8>],
        state: Option<(&str, &[u8])>,
        limits: Limits,
        sync: bool,
    ) -> Result<Appended, StorageError> {
        let mut inner = self.lock();
        let mut b = WriteBatch::default();
        let cf = self.store.cf(CF_LOG_BUFFER)?;
        let mut out = Appended::default();
        let (mut next, mut n, mut bytes) = (inner.next, inner.lines, inner.bytes);
        for line in lines {
            let fits = (limits.max_lines == 0 || n < limits.max_lines)
                && (limits.max_bytes == 0 || bytes + line.len() as u64 <= limits.max_bytes);
            if !fits {
                out.dropped += 1;
                continue;
            }
            b.put_cf(&cf, seq_key(next), line);
            next += 1;
            n += 1;
            bytes += line.len() as u64;
            out.kept += 1;
        }
        if let Some((name, value)) = state {
            b.put_cf(&self.store.cf(CF_QUERY_RESULTS)?, name.as_bytes(), value);
        }
        if b.is_empty() {
            return Ok(out);
        }
        self.store
            .ensure_space(b.size_in_bytes() as u64, super::WriteKind::Data)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.store
            .db
            .write_opt(b, &wo)
            .map_err(|e| self.store.err(e))?;
        (inner.next, inner.lines, inner.bytes) = (next, n, bytes);
        Ok(out)
    }

    /// Up to `max` lines after seq `after` (from the start when 0), oldest first.
    pub fn read(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let cf = self.store.cf(CF_LOG_BUFFER)?;
        let start = seq_key(after.saturating_add(1));
        let mut out = Vec::new();
        for item in self
            .store
            .db
            .iterator_cf(&cf, IteratorMode::From(&start, Direction::Forward))
        {
            if out.len() >= max {
                break;
            }
            let (k, v) = item.map_err(|e| self.store.err(e))?;
            let seq = key_seq(&k).ok_or(StorageError::Corrupt {
                key: format!("{CF_LOG_BUFFER} key {k:?}"),
                what: "not an 8-byte seq",
            })?;
            out.push((seq, v.to_vec()));
        }
        Ok(out)
    }

    /// Removes every line up to seq `upto` (all sinks have them), synced.
    pub fn release(&self, upto: u64) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let cf = self.store.cf(CF_LOG_BUFFER)?;
        let (mut lines, mut bytes) = (0u64, 0u64);
        for item in self.store.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.store.err(e))?;
            if key_seq(&k).is_none_or(|s| s > upto) {
                break;
            }
            lines += 1;
            bytes += v.len() as u64;
        }
        if lines == 0 {
            return Ok(());
        }
        let mut b = WriteBatch::default();
        b.delete_range_cf(&cf, seq_key(0), seq_key(upto.saturating_add(1)));
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.store
            .db
            .write_opt(b, &wo)
            .map_err(|e| self.store.err(e))?;
        inner.lines = inner.lines.saturating_sub(lines);
        inner.bytes = inner.bytes.saturating_sub(bytes);
        Ok(())
    }

    /// The last seq sink `name` acknowledged (0: none yet).
    pub fn cursor(&self, name: &str) -> Result<u64, StorageError> {
        let key = format!("{CURSOR_PREFIX}{name}");
        match self.store.get_meta(key.as_bytes())? {
            None => Ok(0),
            Some(v) => key_seq(&v).ok_or(StorageError::Corrupt {
                key,
                what: "not an 8-byte seq",
            }),
        }
    }

    /// Records (synced) that sink `name` has every line up to `seq`.
    pub fn set_cursor(&self, name: &str, seq: u64) -> Result<(), StorageError> {
        let key = format!("{CURSOR_PREFIX}{name}");
        self.store.put_meta(key.as_bytes(), &seq_key(seq), true)
    }

    /// A random UUID made once for this database (osquery's `instance` host identifier).
    pub fn instance_id(&self) -> Result<String, StorageError> {
        const KEY: &[u8] = b"instance_id";
        if let Some(v) = self.store.get_meta(KEY)? {
            return Ok(String::from_utf8_lossy(&v).into_owned());
        }
        let id = crate::sys::random_uuid().unwrap_or_default();
        self.store.put_meta(KEY, id.as_bytes(), true)?;
        Ok(id)
    }

    /// The stored result state of scheduled query `name`.
    pub fn query_state(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let cf = self.store.cf(CF_QUERY_RESULTS)?;
        self.store
            .db
            .get_cf(&cf, name.as_bytes())
            .map_err(|e| self.store.err(e))
    }

    /// Names with a stored result state.
    pub fn query_state_names(&self) -> Result<Vec<String>, StorageError> {
        let cf = self.store.cf(CF_QUERY_RESULTS)?;
        let mut out = Vec::new();
        for item in self.store.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.store.err(e))?;
            out.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(out)
    }

    /// Forgets the state of a query that left the schedule.
    pub fn delete_query_state(&self, name: &str) -> Result<(), StorageError> {
        let cf = self.store.cf(CF_QUERY_RESULTS)?;
        let mut b = WriteBatch::default();
        b.delete_cf(&cf, name.as_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.store
            .db
            .write_opt(b, &wo)
            .map_err(|e| self.store.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_primary(&dir.path().join("db")).unwrap());
        (dir, store)
    }

    #[test]
    fn lines_survive_a_reopen_in_order_and_leave_only_when_released() {
        let (dir, store) = open();
        let buf = LogBuffer::open(store.clone()).unwrap();
        let lines: Vec<Vec<u8>> = (0..5).map(|i| format!("line {i}").into_bytes()).collect();
        let a = buf
            .append(&lines, Some(("q", b"state")), Limits::default())
            .unwrap();
        assert_eq!(
            a,
            Appended {
                kept: 5,
                dropped: 0
            }
        );
        assert_eq!(buf.len(), (5, 30));
        drop(buf);
        drop(store);
        let store = Arc::new(Store::open_primary(&dir.path().join("db")).unwrap());
        let buf = LogBuffer::open(store).unwrap();
        assert_eq!(buf.len(), (5, 30));
        assert_eq!(
            buf.query_state("q").unwrap().as_deref(),
            Some(&b"state"[..])
        );
        let got = buf.read(0, 2).unwrap();
        assert_eq!(got, vec![(1, b"line 0".to_vec()), (2, b"line 1".to_vec())]);
        assert_eq!(buf.read(4, 10).unwrap(), vec![(5, b"line 4".to_vec())]);
        buf.set_cursor("filesystem", 2).unwrap();
        assert_eq!(buf.cursor("filesystem").unwrap(), 2);
        assert_eq!(buf.cursor("stdout").unwrap(), 0);
        buf.release(2).unwrap();
        assert_eq!(buf.len(), (3, 18));
        assert_eq!(buf.read(0, 10).unwrap()[0].0, 3);
        // New lines continue the seqs after a reopen.
        buf.append(&[b"six".to_vec()], None, Limits::default())
            .unwrap();
        assert_eq!(buf.read(5, 10).unwrap(), vec![(6, b"six".to_vec())]);
    }

    #[test]
    fn lines_beyond_the_limits_are_dropped_and_reported() {
        let (_dir, store) = open();
        let buf = LogBuffer::open(store).unwrap();
        let limits = Limits {
            max_lines: 3,
            max_bytes: 0,
        };
        let lines: Vec<Vec<u8>> = (0..5).map(|_| b"x".to_vec()).collect();
        assert_eq!(
            buf.append(&lines, None, limits).unwrap(),
            Appended {
                kept: 3,
                dropped: 2
            }
        );
        let limits = Limits {
            max_lines: 0,
            max_bytes: 4,
        };
        assert_eq!(
            buf.append(&[b"yy".to_vec(), b"z".to_vec()], None, limits)
                .unwrap(),
            Appended {
                kept: 1,
                dropped: 1
            }
        );
        assert_eq!(buf.len(), (4, 4));
    }

    #[test]
    fn the_instance_id_is_made_once() {
        let (_dir, store) = open();
        let buf = LogBuffer::open(store).unwrap();
        let id = buf.instance_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(buf.instance_id().unwrap(), id);
    }

    #[test]
    fn query_states_are_listed_and_forgotten() {
        let (_dir, store) = open();
        let buf = LogBuffer::open(store).unwrap();
        buf.append(&[], Some(("a", b"1")), Limits::default())
            .unwrap();
        buf.append(&[], Some(("b", b"2")), Limits::default())
            .unwrap();
        assert_eq!(buf.query_state_names().unwrap(), ["a", "b"]);
        buf.delete_query_state("a").unwrap();
        assert_eq!(buf.query_state_names().unwrap(), ["b"]);
        assert_eq!(buf.query_state("a").unwrap(), None);
    }
}
