//! The publisher/subscriber pipeline.
//!
//! ```text
//! publisher thread (one per source) --Queue (bounded, WhenFull policy)--> writer thread
//!     writer: each Subscriber turns events into rows -> batched RocksDB writes
//! ```
//! Every hand-off counts what it passes and what it loses ([`crate::stats`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use crate::{
    events::{FileEvent, ProcessEvent, SocketEvent},
    rt::counters::{PublisherCounters, SubscriberCounters},
    storage::{EventBatch, SeqAllocator, Store, event_key},
};

/// An event on its way from a publisher to the subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Process(ProcessEvent),
    File(FileEvent),
    Socket(SocketEvent),
}

/// What a full queue does with a new event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room. The publisher stops reading, so the loss (if any) moves to the kernel's
    /// ring buffer, where it is counted per CPU.
    Block,
    /// Drop the new event and count it in the publisher's `queue_full`.
    DropNewest,
}

impl WhenFull {
    pub fn from_flag(v: &str) -> Self {
        if v == "drop_newest" {
            Self::DropNewest
        } else {
            Self::Block
        }
    }
}

impl Event {
    /// What the event holds in memory, in bytes (the struct and its strings): the unit of
    /// `--event_queue_bytes`.
    pub fn approx_bytes(&self) -> u64 {
        let strs = |v: &[&String]| v.iter().map(|s| s.capacity()).sum::<usize>();
        let list = |v: &[String]| v.iter().map(|s| s.capacity() + 24).sum::<usize>();
        let heap = match self {
            Self::Process(p) => strs(&[&p.path, &p.cwd]) + list(&p.argv) + list(&p.env),
            Self::File(f) => strs(&[
                &f.action,
                &f.operation,
                &f.target_path,
                &f.other_path,
                &f.category,
                &f.syscall,
            ]),
            Self::Socket(s) => strs(&[
                &s.action,
                &s.syscall,
                &s.path,
                &s.local_address,
                &s.remote_address,
                &s.socket,
            ]),
        };
        (size_of::<Self>() + heap) as u64
    }
}

/// What the queue holds: events by count (the channel's capacity) and by bytes.
#[derive(Debug, Default)]
struct Budget {
    bytes: AtomicU64,
    /// Set when the receiver is gone: a blocked sender stops waiting.
    closed: AtomicBool,
}

/// The sending side of the bounded queue between a publisher and the writer. It is bounded
/// twice: by count (`--event_queue_size`) and by the bytes the queued events hold
/// (`--event_queue_bytes`; one event larger than the whole budget still passes alone).
#[derive(Debug, Clone)]
pub struct Queue {
    tx: Sender<(Event, u64)>,
    policy: WhenFull,
    counters: Arc<PublisherCounters>,
    budget: Arc<Budget>,
    max_bytes: u64,
}

/// The receiving side: hands events to the writer and gives their bytes back to the budget.
#[derive(Debug)]
pub struct QueueReceiver {
    rx: Receiver<(Event, u64)>,
    budget: Arc<Budget>,
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        self.budget.closed.store(true, Ordering::SeqCst);
    }
}

impl QueueReceiver {
    fn take(&self, (ev, bytes): (Event, u64)) -> Event {
        self.budget.bytes.fetch_sub(bytes, Ordering::SeqCst);
        ev
    }
    pub fn recv(&self) -> Result<Event, RecvTimeoutError> {
        self.rx
            .recv()
            .map(|m| self.take(m))
            .map_err(|_| RecvTimeoutError::Disconnected)
    }
    pub fn recv_timeout(&self, d: Duration) -> Result<Event, RecvTimeoutError> {
        self.rx.recv_timeout(d).map(|m| self.take(m))
    }
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        self.rx.try_recv().map(|m| self.take(m))
    }
    /// Bytes the queued events hold now.
    pub fn queued_bytes(&self) -> u64 {
        self.budget.bytes.load(Ordering::SeqCst)
    }
}

pub fn queue(
    capacity: usize,
    max_bytes: u64,
    policy: WhenFull,
    counters: Arc<PublisherCounters>,
) -> (Queue, QueueReceiver) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let budget = Arc::new(Budget::default());
    (
        Queue {
            tx,
            policy,
            counters,
            budget: budget.clone(),
            max_bytes: max_bytes.max(1),
        },
        QueueReceiver { rx, budget },
    )
}

impl Queue {
    /// Another sender into the same writer queue, counting for another publisher.
    pub fn for_publisher(&self, counters: Arc<PublisherCounters>) -> Self {
        Self {
            counters,
            ..self.clone()
        }
    }

    /// Takes `bytes` from the budget; false when there is no room now.
    fn reserve(&self, bytes: u64) -> bool {
        let b = &self.budget.bytes;
        let mut cur = b.load(Ordering::SeqCst);
        loop {
            if cur > 0 && cur.saturating_add(bytes) > self.max_bytes {
                return false;
            }
            match b.compare_exchange(cur, cur + bytes, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Hands an event on. Returns false once the writer has gone away (then the event is
    /// counted as lost too).
    pub fn push(&self, ev: Event) -> bool {
        let bytes = ev.approx_bytes();
        while !self.reserve(bytes) {
            match self.policy {
                WhenFull::DropNewest => {
                    self.counters.queue_full.add(1);
                    return true;
                }
                WhenFull::Block => {
                    if self.budget.closed.load(Ordering::SeqCst) {
                        self.counters.queue_full.add(1);
                        return false;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        let sent = match self.policy {
            WhenFull::Block => self.tx.send((ev, bytes)).is_ok(),
            WhenFull::DropNewest => match self.tx.try_send((ev, bytes)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.budget.bytes.fetch_sub(bytes, Ordering::SeqCst);
                    self.counters.queue_full.add(1);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if !sent {
            self.budget.bytes.fetch_sub(bytes, Ordering::SeqCst);
            self.counters.queue_full.add(1);
        }
        sent
    }
}

/// Turns events into stored rows of one event table.
pub trait Subscriber: Send {
    /// The table (and column family) this subscriber fills.
    fn table(&self) -> &'static str;
    /// The publisher it listens to.
    fn publisher(&self) -> &'static str;
    fn counters(&self) -> Arc<SubscriberCounters>;
    /// The row for `ev` as `(time_ns, encoded value)`, or None if `ev` is not for this table.
    fn transform(&mut self, ev: &Event) -> Option<(u64, Vec<u8>)>;
}

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub batch_events: usize,
    pub batch_time: Duration,
    /// fsync each batch.
    pub sync: bool,
}

/// The writer loop: runs until every [`Queue`] is dropped, then writes what is pending.
///
/// Two stages, so that two cores share the work: this thread turns events into rows, assigns
/// seqs and builds the next [`EventBatch`] while a `writer-commit` thread writes the previous
/// one to RocksDB and counts it. Returns once every batch is committed.
pub fn run_writer(
    store: Arc<Store>,
    rx: QueueReceiver,
    mut subs: Vec<Box<dyn Subscriber>>,
    cfg: WriterConfig,
) {
    let counters: Vec<Arc<SubscriberCounters>> = subs.iter().map(|s| s.counters()).collect();
    let seq = match store.seq_allocator() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot read the seq reservation: {e}; no event will be stored");
            while let Ok(ev) = rx.recv() {
                drop(ev);
                for c in &counters {
                    c.write_errors.add(1);
                }
            }
            return;
        }
    };
    let store = &*store;
    std::thread::scope(|scope| {
        // One batch in flight and one waiting: enough to overlap building and writing.
        let (tx, batches) = crossbeam_channel::bounded::<Commit>(1);
        let committer = std::thread::Builder::new()
            .name("writer-commit".into())
            .spawn_scoped(scope, {
                let counters = &counters;
                move || {
                    let mut last_error_log = None;
                    for c in batches {
                        commit(store, c, counters, cfg.sync, &mut last_error_log);
                    }
                }
            });
        let sink = match committer {
            Ok(_) => Sink::Thread(tx),
            Err(e) => {
                log::warn!("cannot start the commit thread ({e}); writing on one thread");
                Sink::Inline(None)
            }
        };
        build_batches(store, &rx, &mut subs, &counters, seq, cfg, sink);
    });
}

/// A batch ready to be written, with the rows each subscriber put in it.
struct Commit {
    batch: EventBatch,
    rows: Vec<u64>,
}

enum Sink {
    Thread(Sender<Commit>),
    /// No commit thread: write here (with this thread's error-log limiter).
    Inline(Option<Instant>),
}

fn build_batches(
    store: &Store,
    rx: &QueueReceiver,
    subs: &mut [Box<dyn Subscriber>],
    counters: &[Arc<SubscriberCounters>],
    mut seq: SeqAllocator,
    cfg: WriterConfig,
    mut sink: Sink,
) {
    let mut builder = store.batch_builder();
    let mut batch = EventBatch::default();
    let n_subs = subs.len();
    let mut rows = vec![0u64; n_subs];
    let mut deadline: Option<Instant> = None;
    let mut last_error_log: Option<Instant> = None;
    let mut add = |ev: Event, batch: &mut EventBatch, rows: &mut [u64]| {
        for (i, s) in subs.iter_mut().enumerate() {
            let Some((t, v)) = s.transform(&ev) else {
                continue;
            };
            let put = seq
                .next(store)
                .and_then(|seq| builder.put(batch, s.table(), &event_key(t, seq), &v));
            match put {
                Ok(()) => rows[i] += 1,
                Err(e) => {
                    counters[i].write_errors.add(1);
                    log_write_error(&mut last_error_log, 1, &e);
                }
            }
        }
    };
    loop {
        let msg = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => rx.recv(),
        };
        let mut done = false;
        match msg {
            Ok(ev) => {
                add(ev, &mut batch, &mut rows);
                // Take what is already queued without looking at the clock for each event.
                while batch.len() < cfg.batch_events {
                    match rx.try_recv() {
                        Ok(ev) => add(ev, &mut batch, &mut rows),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            done = true;
                            break;
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => done = true,
        }
        if deadline.is_none() && !batch.is_empty() {
            deadline = Some(Instant::now() + cfg.batch_time);
        }
        let due = deadline.is_some_and(|d| Instant::now() >= d);
        if !batch.is_empty() && (done || due || batch.len() >= cfg.batch_events) {
            let c = Commit {
                batch: std::mem::take(&mut batch),
                rows: std::mem::replace(&mut rows, vec![0; n_subs]),
            };
            match &mut sink {
                Sink::Thread(tx) => {
                    if let Err(crossbeam_channel::SendError(c)) = tx.send(c) {
                        // The commit thread is gone (it panicked): write here from now on.
                        let mut limiter = None;
                        commit(store, c, counters, cfg.sync, &mut limiter);
                        sink = Sink::Inline(limiter);
                    }
                }
                Sink::Inline(limiter) => commit(store, c, counters, cfg.sync, limiter),
            }
            deadline = None;
        }
        if done {
            return;
        }
    }
}

fn commit(
    store: &Store,
    c: Commit,
    counters: &[Arc<SubscriberCounters>],
    sync: bool,
    last_error_log: &mut Option<Instant>,
) {
    let n = c.batch.len();
    match store.commit(c.batch, sync) {
        Ok(()) => {
            for (counter, rows) in counters.iter().zip(&c.rows) {
                counter.events.add(*rows);
            }
        }
        Err(e) => {
            for (counter, rows) in counters.iter().zip(&c.rows) {
                counter.write_errors.add(*rows);
            }
            log_write_error(last_error_log, n, &e);
        }
    }
}

/// One line per 10 s at most: a full disk must not also flood the log.
fn log_write_error(last: &mut Option<Instant>, events: usize, e: &crate::storage::StorageError) {
    if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
        log::error!("writing {events} events failed (counted in write_errors): {e}");
        *last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StorageError, Store};

    /// Stores every process event whose pid is even; ignores the others.
    struct EvenPids(Arc<SubscriberCounters>);

    impl Subscriber for EvenPids {
        fn table(&self) -> &'static str {
            "process_events"
        }
        fn publisher(&self) -> &'static str {
            "test"
        }
        fn counters(&self) -> Arc<SubscriberCounters> {
            self.0.clone()
        }
        fn transform(&mut self, ev: &Event) -> Option<(u64, Vec<u8>)> {
            match ev {
                Event::Process(p) if p.pid % 2 == 0 => Some((p.time_ns, p.encode())),
                _ => None,
            }
        }
    }

    fn run(store: &Arc<Store>, n: u32, batch_events: usize) -> Arc<SubscriberCounters> {
        let counters = Arc::new(SubscriberCounters::default());
        let (q, rx) = queue(
            64,
            u64::MAX,
            WhenFull::Block,
            Arc::new(PublisherCounters::default()),
        );
        let producer = std::thread::spawn(move || {
            for pid in 0..n {
                let ev = ProcessEvent {
                    time_ns: 1_000 + u64::from(pid / 3),
                    pid,
                    ..Default::default()
                };
                assert!(q.push(Event::Process(ev)));
            }
        });
        run_writer(
            store.clone(),
            rx,
            vec![Box::new(EvenPids(counters.clone()))],
            WriterConfig {
                batch_events,
                batch_time: Duration::from_millis(5),
                sync: false,
            },
        );
        producer.join().unwrap();
        counters
    }

    fn stored(store: &Store) -> Vec<(u64, u64, u32)> {
        let mut rows = Vec::new();
        store
            .scan("process_events", 0, u64::MAX, |t, s, v| {
                rows.push((t, s, ProcessEvent::decode(v).unwrap().pid));
                true
            })
            .unwrap();
        rows
    }

    #[test]
    fn every_event_is_stored_once_with_a_unique_seq_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_primary(dir.path()).unwrap());
        let counters = run(&store, 10_000, 128);
        assert_eq!(counters.events.get(), 5_000);
        assert_eq!(counters.write_errors.get(), 0);
        let rows = stored(&store);
        assert_eq!(rows.len(), 5_000);
        // Seqs are handed out in arrival order from 0 (a new database), one per stored row.
        let mut by_seq: Vec<_> = rows.iter().map(|(t, s, pid)| (*s, *t, *pid)).collect();
        by_seq.sort_unstable();
        for (i, (s, t, pid)) in by_seq.iter().enumerate() {
            assert_eq!(*s, i as u64);
            assert_eq!(*pid, 2 * i as u32);
            assert_eq!(*t, 1_000 + u64::from(pid / 3));
        }
        // Key order is time order.
        assert!(rows.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
    }

    #[test]
    fn a_second_run_continues_above_every_seq_of_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_primary(dir.path()).unwrap());
        run(&store, 100, 7);
        let first_max = stored(&store).iter().map(|r| r.1).max().unwrap();
        run(&store, 100, 7);
        let rows = stored(&store);
        assert_eq!(rows.len(), 100);
        let mut seqs: Vec<u64> = rows.iter().map(|r| r.1).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 100);
        assert_eq!(seqs.iter().filter(|s| **s > first_max).count(), 50);
    }

    #[test]
    fn failed_writes_are_counted_as_write_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_primary(dir.path()).unwrap());
        // Rows need the whole reserve, counters and seq reservations a quarter: as if the disk
        // were nearly full, rows fail and the seq reservation still works.
        let free = rustix::fs::statvfs(dir.path()).unwrap();
        let free = free.f_bavail * free.f_frsize;
        store.set_reserve(free.saturating_mul(2));
        assert!(matches!(
            store.write(&[("process_events", event_key(1, 1), vec![1])], false),
            Err(StorageError::DiskFull { .. })
        ));
        let counters = run(&store, 1_000, 64);
        assert_eq!(counters.events.get(), 0);
        assert_eq!(counters.write_errors.get(), 500);
        assert!(stored(&store).is_empty());
        // Space again: the next events are stored.
        store.set_reserve(0);
        let counters = run(&store, 10, 64);
        assert_eq!(counters.events.get(), 5);
        assert_eq!(stored(&store).len(), 5);
    }

    fn big(pid: u32) -> Event {
        Event::Process(ProcessEvent {
            pid,
            argv: vec!["x".repeat(10_000)],
            ..Default::default()
        })
    }

    #[test]
    fn the_queue_is_bounded_by_bytes_and_drop_newest_counts_what_does_not_fit() {
        let counters = Arc::new(PublisherCounters::default());
        let one = big(0).approx_bytes();
        assert!(one > 10_000, "{one}");
        // Room for three such events by bytes, for 1000 by count.
        let (q, rx) = queue(
            1000,
            3 * one + one / 2,
            WhenFull::DropNewest,
            counters.clone(),
        );
        for pid in 0..10 {
            assert!(q.push(big(pid)));
        }
        assert_eq!(counters.queue_full.get(), 7);
        assert_eq!(rx.queued_bytes(), 3 * one);
        let pids: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match e {
                Event::Process(p) => p.pid,
                _ => u32::MAX,
            })
            .collect();
        assert_eq!(pids, [0, 1, 2]);
        assert_eq!(rx.queued_bytes(), 0);
        // An event larger than the whole budget still passes alone.
        let (q, rx) = queue(1000, 10, WhenFull::DropNewest, counters.clone());
        assert!(q.push(big(1)));
        assert!(q.push(big(2)));
        assert_eq!(counters.queue_full.get(), 8);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn a_blocked_sender_waits_for_bytes_and_gives_up_when_the_writer_is_gone() {
        let counters = Arc::new(PublisherCounters::default());
        let one = big(0).approx_bytes();
        let (q, rx) = queue(1000, 2 * one, WhenFull::Block, counters.clone());
        let producer = std::thread::spawn(move || {
            for pid in 0..50 {
                assert!(q.push(big(pid)));
            }
            q
        });
        let mut got = Vec::new();
        let mut max_seen = 0;
        while got.len() < 50 {
            max_seen = max_seen.max(rx.queued_bytes());
            if let Ok(Event::Process(p)) = rx.recv_timeout(Duration::from_secs(10)) {
                got.push(p.pid);
            }
        }
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert!(max_seen <= 2 * one, "{max_seen}");
        assert_eq!(counters.queue_full.get(), 0);
        let q = producer.join().unwrap();
        // The budget is full and the writer goes away: the sender stops, counting the event.
        assert!(q.push(big(100)));
        assert!(q.push(big(101)));
        drop(rx);
        assert!(!q.push(big(102)));
        assert_eq!(counters.queue_full.get(), 1);
    }
}
