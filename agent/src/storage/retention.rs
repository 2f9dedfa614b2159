//! Retention: a background thread that keeps every event table inside its limits with RocksDB
//! range deletes over the time-ordered keys. Reading never deletes.
//!
//! - `events_expiry` (s): rows whose time is older than `now - expiry` go.
//! - `events_max` (rows): the key of the N-th newest row is found by iterating backwards from
//!   the end; every older row goes.
//! - `events_max_bytes`: when the table's approximate size (live SST files plus unflushed
//!   memtables) is over the cap, the table keeps `rows * cap / size` of its newest rows
//!   (rows are assumed to be of similar size); the deleted range is then compacted so the
//!   next round measures what is really left.
//!
//! The cut is the largest of the three, so each round is one range delete per table. Nothing
//! is remembered between rounds: the limits are computed from keys and the clock, so they
//! hold across restarts. Removed rows are counted in the subscriber's `expired` counter
//! (retention, not loss: `event_drops` shows it under reason `expired`).
//!
//! Counting is done on the rows below the cut just before the delete; a row written in
//! between with an older key than the cut (an event whose time lags the N-th newest) is
//! deleted without being counted. Expiry cannot hit that case in practice.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rocksdb::{BoundColumnFamily, ReadOptions};

use super::{StorageError, Store, event_key};
use crate::{
    rt::{Shutdown, counters::SubscriberCounters},
    sys::Clock,
};

/// The limits of every event table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Seconds a row is kept (0 = forever).
    pub expiry_secs: u64,
    /// Most rows per table (0 = no cap).
    pub max_events: u64,
    /// Approximate bytes per table (0 = no cap).
    pub max_bytes: u64,
}

impl Limits {
    pub fn is_off(&self) -> bool {
        self.expiry_secs == 0 && self.max_events == 0 && self.max_bytes == 0
    }
}

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub limits: Limits,
    /// Time between rounds.
    pub interval: Duration,
    /// The event tables to keep in bounds, each with the counters its removals go to.
    pub tables: Vec<(&'static str, Arc<SubscriberCounters>)>,
    /// "Now" for expiry: the same mapping the publishers give event times
    /// ([`crate::sys::Clock`]), so a wall-clock step cannot expire new events.
    pub clock: Clock,
}

impl RetentionConfig {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

    pub fn new(limits: Limits, tables: Vec<(&'static str, Arc<SubscriberCounters>)>) -> Self {
        Self {
            limits,
            interval: Self::DEFAULT_INTERVAL,
            tables,
            clock: Clock::now(),
        }
    }
}

/// Which limit decided the cut of one round (the one that removed the most).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Expiry,
    MaxEvents,
    MaxBytes,
}

/// What one round did to one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removed {
    pub rows: u64,
    pub cause: Cause,
}

/// The retention loop, for a thread of its own: one round at once (rows left over from before
/// a restart go first), then one per `cfg.interval`, until `shutdown` is set.
pub fn run(store: Arc<Store>, cfg: RetentionConfig, shutdown: Shutdown) {
    {
        if cfg.limits.is_off() {
            log::info!("retention is off (events_expiry, events_max and events_max_bytes are 0)");
            return;
        }
        let mut last_error_log: Option<Instant> = None;
        loop {
            for (table, counters) in &cfg.tables {
                match enforce(&store, table, &cfg.limits, cfg.clock.now_wall_ns()) {
                    Ok(Some(r)) => {
                        counters.expired.add(r.rows);
                        log::debug!(
                            "retention removed {} rows of {table} ({:?})",
                            r.rows,
                            r.cause
                        );
                    }
                    Ok(None) => {}
                    Err(e) => {
                        if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                            log::warn!("retention of {table} failed (will retry): {e}");
                            last_error_log = Some(Instant::now());
                        }
                    }
                }
            }
            let next = Instant::now() + cfg.interval;
            while Instant::now() < next {
                if shutdown.is_set() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100).min(cfg.interval));
            }
            if shutdown.is_set() {
                return;
            }
        }
    }
}

/// One round for one table at time `now_ns`: the rows removed, or None when within limits.
pub fn enforce(
    store: &Store,
    table: &str,
    limits: &Limits,
    now_ns: u64,
) -> Result<Option<Removed>, StorageError> {
    let cf = store.cf(table)?;
    let mut cut: Option<(Vec<u8>, Cause)> = None;
    let mut raise = |key: Vec<u8>, cause: Cause| {
        if cut.as_ref().is_none_or(|(k, _)| key > *k) {
            cut = Some((key, cause));
        }
    };
    if limits.expiry_secs > 0 {
        let oldest_kept = now_ns.saturating_sub(limits.expiry_secs.saturating_mul(1_000_000_000));
        if oldest_kept > 0 {
            raise(event_key(oldest_kept, 0).to_vec(), Cause::Expiry);
        }
    }
    if limits.max_events > 0
        && let Some(k) = nth_newest_key(store, &cf, limits.max_events)?
    {
        raise(k, Cause::MaxEvents);
    }
    let mut compact = false;
    if limits.max_bytes > 0 {
        let bytes = approximate_bytes(store, &cf)?;
        if bytes > limits.max_bytes {
            let rows = count_below(store, &cf, None)?.0;
            let keep =
                u64::try_from(u128::from(rows) * u128::from(limits.max_bytes) / u128::from(bytes))
                    .unwrap_or(u64::MAX);
            let key = if keep == 0 {
                // Above every 16-byte key: everything goes.
                Some(vec![0xff; 17])
            } else {
                nth_newest_key(store, &cf, keep)?
            };
            if let Some(k) = key {
                raise(k, Cause::MaxBytes);
                compact = true;
            }
        }
    }
    let Some((cut, cause)) = cut else {
        return Ok(None);
    };
    let (rows, first) = count_below(store, &cf, Some(&cut))?;
    let Some(first) = first else {
        return Ok(None);
    };
    store.ensure_space(2 * cut.len() as u64, super::WriteKind::Bookkeeping)?;
    store
        .db
        .delete_range_cf(&cf, &first[..], &cut[..])
        .map_err(|e| store.err(e))?;
    // Whole SST files inside the range go at once; the rest waits for compaction, which the
    // size cap forces because it measures the files.
    store
        .db
        .delete_file_in_range_cf(&cf, &first[..], &cut[..])
        .map_err(|e| store.err(e))?;
    if compact {
        store
            .db
            .compact_range_cf(&cf, Some(&first[..]), Some(&cut[..]));
    }
    Ok(Some(Removed { rows, cause }))
}

/// Live SST bytes plus unflushed memtable bytes of one column family.
pub fn approximate_bytes(
    store: &Store,
    cf: &Arc<BoundColumnFamily<'_>>,
) -> Result<u64, StorageError> {
    let prop = |name: &str| {
        store
            .db
            .property_int_value_cf(cf, name)
            .map(Option::unwrap_or_default)
            .map_err(|e| store.err(e))
    };
    Ok(prop("rocksdb.live-sst-files-size")? + prop("rocksdb.cur-size-all-mem-tables")?)
}

/// The key of the `n`-th newest row (n >= 1), or None when there are fewer rows.
fn nth_newest_key(
    store: &Store,
    cf: &Arc<BoundColumnFamily<'_>>,
    n: u64,
) -> Result<Option<Vec<u8>>, StorageError> {
    let mut it = store.db.raw_iterator_cf(cf);
    it.seek_to_last();
    let mut seen = 0u64;
    while it.valid() {
        seen += 1;
        if seen == n {
            return Ok(it.key().map(<[u8]>::to_vec));
        }
        it.prev();
    }
    it.status().map_err(|e| store.err(e))?;
    Ok(None)
}

/// Rows with a key below `below` (all rows for None), and the first key.
fn count_below(
    store: &Store,
    cf: &Arc<BoundColumnFamily<'_>>,
    below: Option<&[u8]>,
) -> Result<(u64, Option<Vec<u8>>), StorageError> {
    let mut ro = ReadOptions::default();
    if let Some(b) = below {
        ro.set_iterate_upper_bound(b.to_vec());
    }
    // A one-off scan: keep it out of the block cache.
    ro.fill_cache(false);
    let mut it = store.db.raw_iterator_cf_opt(cf, ro);
    it.seek_to_first();
    let first = it.key().map(<[u8]>::to_vec);
    let mut n = 0u64;
    while it.valid() {
        n += 1;
        it.next();
    }
    it.status().map_err(|e| store.err(e))?;
    Ok((n, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "process_events";
    const SEC: u64 = 1_000_000_000;

    /// Rows at times 1..=n seconds, seq = time in seconds.
    fn fill(s: &Store, from: u64, to: u64) {
        let items: Vec<_> = (from..=to)
            .map(|i| (T, event_key(i * SEC, i), vec![0u8; 100]))
            .collect();
        s.write(&items, false).unwrap();
    }

    fn times(s: &Store) -> Vec<u64> {
        let mut v = Vec::new();
        s.scan(T, 0, u64::MAX, |t, _, _| {
            v.push(t / SEC);
            true
        })
        .unwrap();
        v
    }

    #[test]
    fn off_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        fill(&s, 1, 10);
        assert_eq!(enforce(&s, T, &Limits::default(), 100 * SEC).unwrap(), None);
        assert_eq!(times(&s).len(), 10);
    }

    #[test]
    fn expiry_removes_rows_older_than_now_minus_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        fill(&s, 1, 100);
        let limits = Limits {
            expiry_secs: 30,
            ..Default::default()
        };
        // now = 100 s: rows with time < 70 s go, 70..=100 stay.
        assert_eq!(
            enforce(&s, T, &limits, 100 * SEC).unwrap(),
            Some(Removed {
                rows: 69,
                cause: Cause::Expiry
            })
        );
        assert_eq!(times(&s), (70..=100).collect::<Vec<_>>());
        // Nothing more to do at the same time; the next second removes one more row.
        assert_eq!(enforce(&s, T, &limits, 100 * SEC).unwrap(), None);
        assert_eq!(
            enforce(&s, T, &limits, 101 * SEC).unwrap(),
            Some(Removed {
                rows: 1,
                cause: Cause::Expiry
            })
        );
        assert_eq!(times(&s).first(), Some(&71));
    }

    #[test]
    fn max_events_keeps_the_newest_n_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_events: 25,
            ..Default::default()
        };
        {
            let s = Store::open_primary(dir.path()).unwrap();
            fill(&s, 1, 100);
            assert_eq!(
                enforce(&s, T, &limits, 1000 * SEC).unwrap(),
                Some(Removed {
                    rows: 75,
                    cause: Cause::MaxEvents
                })
            );
            assert_eq!(times(&s), (76..=100).collect::<Vec<_>>());
        }
        // No state: the same limit on a reopened store with more rows.
        let s = Store::open_primary(dir.path()).unwrap();
        fill(&s, 101, 110);
        assert_eq!(
            enforce(&s, T, &limits, 1000 * SEC).unwrap(),
            Some(Removed {
                rows: 10,
                cause: Cause::MaxEvents
            })
        );
        assert_eq!(times(&s), (86..=110).collect::<Vec<_>>());
        assert_eq!(enforce(&s, T, &limits, 1000 * SEC).unwrap(), None);
    }

    #[test]
    fn the_stricter_limit_wins() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        fill(&s, 1, 100);
        let limits = Limits {
            expiry_secs: 50,
            max_events: 10,
            max_bytes: 0,
        };
        assert_eq!(
            enforce(&s, T, &limits, 100 * SEC).unwrap(),
            Some(Removed {
                rows: 90,
                cause: Cause::MaxEvents
            })
        );
        assert_eq!(times(&s), (91..=100).collect::<Vec<_>>());
    }

    #[test]
    fn max_bytes_keeps_the_newest_share_and_reclaims_space() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_primary(dir.path()).unwrap();
        // Incompressible values so that the size is proportional to the rows.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let items: Vec<_> = (1..=4000u64)
            .map(|i| {
                let v: Vec<u8> = (0..200)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                (T, event_key(i * SEC, i), v)
            })
            .collect();
        s.write(&items, false).unwrap();
        let cf = s.cf(T).unwrap();
        s.db.flush_cf(&cf).unwrap();
        let before = approximate_bytes(&s, &cf).unwrap();
        assert!(before > 800_000, "{before}");
        let limits = Limits {
            max_bytes: before / 4,
            ..Default::default()
        };
        let r = enforce(&s, T, &limits, 0).unwrap().unwrap();
        assert_eq!(r.cause, Cause::MaxBytes);
        // rows * cap / size, exactly (rounded down).
        let keep = 4000 * (before / 4) / before;
        assert_eq!(r.rows, 4000 - keep);
        let left = times(&s);
        assert_eq!(left.len() as u64, keep);
        assert_eq!(left.last(), Some(&4000));
        let after = approximate_bytes(&s, &cf).unwrap();
        assert!(
            after <= before / 4 + before / 50,
            "{after} vs cap {}",
            before / 4
        );
        drop(cf);
        // The cap is met now, up to the SST overhead; a second round removes little or nothing.
        let again = enforce(&s, T, &limits, 0).unwrap().map_or(0, |r| r.rows);
        assert!(again < 40, "{again}");
    }

    #[test]
    fn spawned_thread_counts_expired_rows_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Store::open_primary(dir.path()).unwrap());
        fill(&s, 1, 50);
        let counters = Arc::new(SubscriberCounters::default());
        let shutdown = Shutdown::default();
        let mut cfg = RetentionConfig::new(
            Limits {
                max_events: 20,
                ..Default::default()
            },
            vec![(T, counters.clone())],
        );
        cfg.interval = Duration::from_millis(50);
        let h = {
            let (s, shutdown) = (s.clone(), shutdown.clone());
            std::thread::spawn(move || run(s, cfg, shutdown))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while counters.expired.get() < 30 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(counters.expired.get(), 30);
        assert_eq!(times(&s), (31..=50).collect::<Vec<_>>());
        shutdown.trigger();
        h.join().unwrap();
        assert_eq!(counters.expired.get(), 30);
    }

    /// One time base: after the wall clock steps forward by twice `events_expiry`, events
    /// timed through the shared clock after the step are not expired by retention reading
    /// "now" through the same clock (with a per-publisher offset fixed at start, they all were).
    #[test]
    fn a_clock_step_past_the_expiry_expires_no_new_event() {
        use crate::sys::clock_testing::Stepped;
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Store::open_primary(dir.path()).unwrap());
        let src = Stepped::at(1_000 * SEC as i64, 10 * SEC as i64);
        let clock = Clock::with_source(Box::new(src.clone()));
        let counters = Arc::new(SubscriberCounters::default());
        let mut cfg = RetentionConfig::new(
            Limits {
                expiry_secs: 60,
                ..Default::default()
            },
            vec![(T, counters.clone())],
        );
        cfg.clock = clock.clone();
        let put = |mono: u64, seq: u64| {
            let t = clock.wall_ns(mono);
            s.write(&[(T, event_key(t, seq), vec![1])], false).unwrap();
            t / SEC
        };
        let old = put(10 * SEC, 1);
        assert_eq!(old, 1_000);
        // Two minutes later by the wall clock, one second later by the kernel's.
        src.step_wall(120 * SEC as i64);
        src.advance(SEC as i64);
        let new = put(11 * SEC, 2);
        assert_eq!(new, 1_121);
        let removed = enforce(&s, T, &cfg.limits, cfg.clock.now_wall_ns()).unwrap();
        assert_eq!(
            removed.map(|r| r.rows),
            Some(1),
            "only the event before the step"
        );
        assert_eq!(times(&s), vec![1_121]);
    }
}
