//! The publisher/subscriber pipeline.
//!
//! ```text
//! publisher thread (one per source) --Queue (bounded, WhenFull policy)--> writer thread
//!     writer: each Subscriber turns events into rows -> batched RocksDB writes
//! ```
//! Every hand-off counts what it passes and what it loses ([`crate::stats`]).

pub mod file;
pub mod process;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use crate::{
    events::{FileEvent, ProcessEvent},
    stats::{PublisherCounters, SubscriberCounters},
    storage::{EventBatch, SeqAllocator, Store, event_key},
};

/// An event on its way from a publisher to the subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Process(ProcessEvent),
    File(FileEvent),
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

/// The sending side of the bounded queue between a publisher and the writer.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: Sender<Event>,
    policy: WhenFull,
    counters: Arc<PublisherCounters>,
}

pub fn queue(
    capacity: usize,
    policy: WhenFull,
    counters: Arc<PublisherCounters>,
) -> (Queue, Receiver<Event>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        Queue {
            tx,
            policy,
            counters,
        },
        rx,
    )
}

impl Queue {
    /// Another sender into the same writer queue, counting for another publisher.
    pub fn for_publisher(&self, counters: Arc<PublisherCounters>) -> Self {
        Self {
            tx: self.tx.clone(),
            policy: self.policy,
            counters,
        }
    }

    /// Hands an event on. Returns false once the writer has gone away (then the event is
    /// counted as lost too).
    pub fn push(&self, ev: Event) -> bool {
        let sent = match self.policy {
            WhenFull::Block => self.tx.send(ev).is_ok(),
            WhenFull::DropNewest => match self.tx.try_send(ev) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.counters.queue_full.add(1);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if !sent {
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
    rx: Receiver<Event>,
    mut subs: Vec<Box<dyn Subscriber>>,
    cfg: WriterConfig,
) {
    let counters: Vec<Arc<SubscriberCounters>> = subs.iter().map(|s| s.counters()).collect();
    let seq = match store.seq_allocator() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot read the seq reservation: {e}; no event will be stored");
            for ev in rx.iter() {
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
    rx: &Receiver<Event>,
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
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
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

/// A shared stop flag for the threads of the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// Polls a kernel ring buffer and hands every record to `each` until `shutdown` is set, then
/// drains what is left. Stops early when `each` returns false (the writer is gone).
pub fn drain_ring(
    mut ring: aya::maps::RingBuf<aya::maps::MapData>,
    shutdown: &Shutdown,
    mut each: impl FnMut(&[u8]) -> bool,
) {
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        let stopping = shutdown.is_set();
        {
            let mut fds = [rustix::event::PollFd::new(
                &ring,
                rustix::event::PollFlags::IN,
            )];
            if let Err(e) = rustix::event::poll(&mut fds, Some(&timeout))
                && e != rustix::io::Errno::INTR
            {
                log::error!("poll on a ring buffer failed: {e}");
            }
        }
        while let Some(item) = ring.next() {
            if !each(&item) {
                return;
            }
        }
        if stopping {
            return;
        }
    }
}
