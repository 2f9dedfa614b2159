//! Counters for every stage, so no loss is silent, and their persisted form.
//!
//! The daemon owns live counters ([`Stats`]); once a second it writes a [`Snapshot`] to the
//! `meta` column family and a [`DropWindow`] row for every loss counter that moved, so
//! `osprey query` (another process) can show them and join losses against time ranges.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::storage::{
    StorageError, Store,
    codec::{DecodeError, Reader, Writer},
};

pub const META_STATS: &[u8] = b"stats";

/// A heartbeat older than this means the daemon that wrote it is not capturing.
pub const HEARTBEAT_STALE_NS: u64 = 10_000_000_000;

pub use crate::rt::counters::{
    Counter, ExtensionCounters, LoggerCounters, PublisherCounters, SubscriberCounters,
};

/// The `event_drops` reason of an interval in which no daemon was capturing (stopped, crashed,
/// starting): one row per interval, `count` 1 (the events of a blind interval are unknown).
pub const REASON_AGENT_DOWN: &str = "agent_down";
/// The publisher name of agent-wide rows (`agent_down`).
pub const PUBLISHER_AGENT: &str = "osprey";

/// The `event_drops` reason of rows removed by retention.
pub const REASON_EXPIRED: &str = "expired";

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub publishers: Vec<(&'static str, Arc<PublisherCounters>)>,
    pub subscribers: Vec<(&'static str, &'static str, Arc<SubscriberCounters>)>,
    /// The scheduler's and loggers' counters.
    pub logger: Arc<LoggerCounters>,
    /// The extension manager's.
    pub extensions: Arc<ExtensionCounters>,
}

/// A loss counter as persisted: who lost what, why, and how many in total.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DropCount {
    pub publisher: String,
    pub event_type: String,
    pub reason: String,
    /// -1 when the counter is not per CPU.
    pub cpu: i64,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublisherSnapshot {
    pub name: String,
    pub events: u64,
    pub active: bool,
    /// The hook strategy (`tracepoint`, `tracepoint+fentry`); empty when not a kernel source.
    #[serde(default)]
    pub hook: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubscriberSnapshot {
    pub name: String,
    pub publisher: String,
    pub events: u64,
}

/// What the daemon persists once a second.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub pid: u32,
    pub started_ns: u64,
    pub updated_ns: u64,
    /// False once the daemon has shut down cleanly.
    pub running: bool,
    pub publishers: Vec<PublisherSnapshot>,
    pub subscribers: Vec<SubscriberSnapshot>,
    pub drops: Vec<DropCount>,
}

impl Snapshot {
    pub fn load(store: &Store) -> Result<Option<Self>, StorageError> {
        Ok(store
            .get_meta(META_STATS)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Whether the daemon that wrote this snapshot is still running: it said so, its pid
    /// exists, and its last heartbeat (written once a second) is recent. A daemon killed by
    /// SIGKILL leaves `running = true` behind; this is false for it.
    pub fn is_live(&self, now_ns: u64) -> bool {
        self.running
            && std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
            && now_ns.saturating_sub(self.updated_ns) < HEARTBEAT_STALE_NS
    }

    pub fn save(&self, store: &Store) -> Result<(), StorageError> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        store.put_meta(META_STATS, &json, false)
    }
}

/// Losses counted in one time window (one row of `event_drops`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropWindow {
    pub start_ns: u64,
    pub end_ns: u64,
    pub publisher: String,
    pub event_type: String,
    pub reason: String,
    pub count: u64,
}

impl DropWindow {
    pub const FORMAT: u8 = 1;

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(Self::FORMAT);
        w.u64(self.start_ns)
            .u64(self.end_ns)
            .str(&self.publisher)
            .str(&self.event_type)
            .str(&self.reason)
            .u64(self.count);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let (v, mut r) = Reader::new(buf)?;
        if v != Self::FORMAT {
            return Err(DecodeError::UnknownVersion(v));
        }
        Ok(Self {
            start_ns: r.u64()?,
            end_ns: r.u64()?,
            publisher: r.string()?,
            event_type: r.string()?,
            reason: r.string()?,
            count: r.u64()?,
        })
    }
}

/// Sums per-CPU counts per (publisher, type, reason) for comparing against the last tick.
pub fn totals(drops: &[DropCount]) -> std::collections::BTreeMap<(String, String, String), u64> {
    let mut m = std::collections::BTreeMap::new();
    for d in drops {
        *m.entry((d.publisher.clone(), d.event_type.clone(), d.reason.clone()))
            .or_insert(0) += d.count;
    }
    m
}

// ---------------------------------------------------------------------------------------------
// The scheduler's statistics

/// Where the scheduler's statistics are kept in `meta` (for `osquery_schedule`).
pub const STATS_KEY: &[u8] = b"schedule_stats";

/// Per query, as `osquery_schedule` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryStats {
    pub name: String,
    pub query: String,
    pub interval: u64,
    pub executions: u64,
    pub last_executed: u64,
    pub denylisted: bool,
    pub output_size: u64,
    pub wall_time_ms: u64,
    pub last_wall_time_ms: u64,
    pub user_time: u64,
    pub last_user_time: u64,
    pub system_time: u64,
    pub last_system_time: u64,
    pub average_memory: u64,
    pub last_memory: u64,
}

/// Per pack, as `osquery_packs` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackStats {
    pub name: String,
    pub platform: String,
    pub version: String,
    pub shard: u64,
    pub discovery_cache_hits: u64,
    pub discovery_executions: u64,
    pub active: bool,
}

/// What is persisted under [`STATS_KEY`] (written by the scheduler, read by
/// `osquery_schedule` and `osquery_packs`, also in `osprey query`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStats {
    pub queries: Vec<QueryStats>,
    pub packs: Vec<PackStats>,
}

impl ScheduleStats {
    /// Persists these statistics (not synced: they are statistics).
    pub fn save(&self, store: &Store) -> Result<(), StorageError> {
        let v = serde_json::to_vec(self).unwrap_or_default();
        store.put_meta(STATS_KEY, &v, false)
    }

    /// What a daemon persisted (None: no scheduler ran on this store, or unreadable).
    pub fn load(store: &Store) -> Option<Self> {
        let v = store.get_meta(STATS_KEY).ok()??;
        serde_json::from_slice(&v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_window_round_trip() {
        let w = DropWindow {
            start_ns: 1,
            end_ns: 2,
            publisher: "ebpf_process".into(),
            event_type: "exec".into(),
            reason: "ring_buffer_full".into(),
            count: 9,
        };
        assert_eq!(DropWindow::decode(&w.encode()).unwrap(), w);
    }

    #[test]
    fn totals_sum_cpus() {
        let d = |cpu, count| DropCount {
            publisher: "p".into(),
            event_type: "t".into(),
            reason: "r".into(),
            cpu,
            count,
        };
        let t = totals(&[d(0, 2), d(1, 3)]);
        assert_eq!(t.values().copied().collect::<Vec<_>>(), vec![5]);
    }
}
