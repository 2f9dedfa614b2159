//! The live counters of the hot path: plain relaxed atomics, shared by `Arc`.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The extension manager's counters.
#[derive(Debug, Default)]
pub struct ExtensionCounters {
    /// Connections closed because the peer sent what cannot be a request (a malformed or
    /// oversized frame), reported in `event_drops` as `bad_frame`.
    pub bad_frames: Counter,
}

/// Live counters of one publisher.
#[derive(Debug, Default)]
pub struct PublisherCounters {
    /// Records received from the source.
    pub events: Counter,
    /// Records that could not be decoded (counted, then skipped).
    pub decode_errors: Counter,
    /// Records dropped because the queue to the subscribers was full.
    pub queue_full: Counter,
    /// Tracked open files forgotten because the tracking table was full: their next write or
    /// close is not reported.
    pub tracking_evicted: Counter,
    /// Writes not reported because their tracked file was stale (the `struct file` address
    /// belonged to another file by then).
    pub tracking_stale: Counter,
    /// Notifications the operating system lost before the source read them (a fanotify
    /// queue overflow, a proc connector that ran out of buffer), reported as
    /// `queue_overflow`.
    pub source_overflow: Counter,
}

/// Live counters of one subscriber.
#[derive(Debug, Default)]
pub struct SubscriberCounters {
    /// Rows durably handed to RocksDB.
    pub events: Counter,
    /// Rows lost because a batch write failed.
    pub write_errors: Counter,
    /// Rows removed by retention (events_expiry, events_max, events_max_bytes). Not a loss:
    /// reported under reason [`crate::stats::REASON_EXPIRED`], and never in per-second drop windows.
    pub expired: Counter,
}

/// Counters of the scheduler and the loggers.
#[derive(Debug, Default)]
pub struct LoggerCounters {
    /// Lines delivered to a sink (once per sink).
    pub sent: Counter,
    /// Failed sends (the lines stay buffered).
    pub send_errors: Counter,
    /// Lines that did not fit in the buffer (`buffered_log_max`, `buffered_log_max_bytes`):
    /// lost, reported as `log_buffer_full`.
    pub buffer_full: Counter,
    /// Lines a sink refused for good (a Kafka cluster rejecting a message): lost, reported as
    /// `log_rejected`.
    pub rejected: Counter,
    /// Buffered lines that could not be decoded (skipped): lost, reported as
    /// `log_undecodable`.
    pub undecodable: Counter,
    /// Scheduled query runs that failed (a status line says why).
    pub query_errors: Counter,
}
