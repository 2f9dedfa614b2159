//! Markers for `events_optimize`: a scheduled query over an event table should only see rows
//! it has not seen on its previous run. Each query name keeps the key of the last row it
//! returned in `meta` under `optimize/<query name>`; the next run starts after it.
//!
//! The marker is a key (`time_ns ‖ seq`), not a time alone: several rows share a time, and
//! seqs are unique and never reused, so "after the marker" is exact across restarts.

use super::{StorageError, Store, event_key, split_key};

const PREFIX: &str = "optimize/";
/// Format byte in front of the 16-byte key, so the value can change shape later.
const FORMAT: u8 = 1;

/// The last row a scheduled query has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OptimizeMarker {
    pub time_ns: u64,
    pub seq: u64,
}

impl OptimizeMarker {
    /// True when the row `(time_ns, seq)` comes after this marker in key order (is new).
    pub fn is_before(&self, time_ns: u64, seq: u64) -> bool {
        (time_ns, seq) > (self.time_ns, self.seq)
    }

    fn encode(&self) -> [u8; 17] {
        let mut v = [0u8; 17];
        v[0] = FORMAT;
        v[1..].copy_from_slice(&event_key(self.time_ns, self.seq));
        v
    }

    fn decode(key: &str, v: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |what| StorageError::Corrupt {
            key: key.to_owned(),
            what,
        };
        let (&version, rest) = v.split_first().ok_or(corrupt("empty"))?;
        if version != FORMAT {
            return Err(corrupt("unknown format version"));
        }
        if rest.len() != 16 {
            return Err(corrupt("not a 16-byte key"));
        }
        let (time_ns, seq) = split_key(rest).ok_or(corrupt("not a 16-byte key"))?;
        Ok(Self { time_ns, seq })
    }
}

fn meta_key(query: &str) -> String {
    format!("{PREFIX}{query}")
}

impl Store {
    /// The marker of scheduled query `query`, or None before its first run.
    pub fn optimize_marker(&self, query: &str) -> Result<Option<OptimizeMarker>, StorageError> {
        let key = meta_key(query);
        self.get_meta(key.as_bytes())?
            .map(|v| OptimizeMarker::decode(&key, &v))
            .transpose()
    }

    /// Persists (synced) the marker of `query` after a run has delivered its results.
    pub fn set_optimize_marker(
        &self,
        query: &str,
        marker: OptimizeMarker,
    ) -> Result<(), StorageError> {
        self.put_meta(meta_key(query).as_bytes(), &marker.encode(), true)
    }

    /// Forgets the marker (the query was removed from the schedule).
    pub fn clear_optimize_marker(&self, query: &str) -> Result<(), StorageError> {
        self.delete_meta(meta_key(query).as_bytes(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = OptimizeMarker {
            time_ns: 1_700_000_000_123_456_789,
            seq: 42,
        };
        {
            let s = Store::open_primary(dir.path()).unwrap();
            assert_eq!(s.optimize_marker("pack_a_q1").unwrap(), None);
            s.set_optimize_marker("pack_a_q1", m).unwrap();
            s.set_optimize_marker("other", OptimizeMarker { time_ns: 1, seq: 2 })
                .unwrap();
        }
        let s = Store::open_primary(dir.path()).unwrap();
        assert_eq!(s.optimize_marker("pack_a_q1").unwrap(), Some(m));
        assert_eq!(
            s.optimize_marker("other").unwrap(),
            Some(OptimizeMarker { time_ns: 1, seq: 2 })
        );
        assert_eq!(
            s.get_meta(b"optimize/pack_a_q1").unwrap().unwrap(),
            [&[1u8][..], &event_key(m.time_ns, 42)].concat()
        );
        s.clear_optimize_marker("pack_a_q1").unwrap();
        assert_eq!(s.optimize_marker("pack_a_q1").unwrap(), None);
        assert!(s.optimize_marker("other").unwrap().is_some());
    }

    #[test]
    fn is_before_orders_by_time_then_seq() {
        let m = OptimizeMarker {
            time_ns: 10,
            seq: 5,
        };
        assert!(!m.is_before(10, 5));
        assert!(m.is_before(10, 6));
        assert!(m.is_before(11, 0));
        assert!(!m.is_before(9, 100));
    }

    #[test]
    fn malformed_marker_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        for (bad, what) in [
            (&b""[..], "empty"),
            (&[2u8; 17][..], "unknown format version"),
            (&[1u8, 0, 0][..], "not a 16-byte key"),
        ] {
            s.put_meta(b"optimize/q", bad, false).unwrap();
            let err = s.optimize_marker("q").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("stored value of optimize/q is malformed: {what}")
            );
        }
    }
}
