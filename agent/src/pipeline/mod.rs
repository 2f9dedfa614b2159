//! The publisher/subscriber pipeline.
//!
//! ```text
//! publisher thread (one per source) --Queue (bounded, WhenFull policy)--> writer thread
//!     writer: each Subscriber turns events into rows -> batched RocksDB writes
//! ```
//! Every hand-off counts what it passes and what it loses ([`crate::stats`]).

pub mod process;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::{
    events::ProcessEvent,
    stats::{PublisherCounters, SubscriberCounters},
    storage::{Store, event_key},
};

/// An event on its way from a publisher to the subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Process(ProcessEvent),
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
pub fn run_writer(
    store: Arc<Store>,
    rx: Receiver<Event>,
    mut subs: Vec<Box<dyn Subscriber>>,
    cfg: WriterConfig,
) {
    let mut seq = match store.seq_allocator() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot read the seq reservation: {e}; no event will be stored");
            for ev in rx.iter() {
                drop(ev);
                for s in &subs {
                    s.counters().write_errors.add(1);
                }
            }
            return;
        }
    };
    // (subscriber index, time_ns, value)
    let mut pending: Vec<(usize, u64, Vec<u8>)> = Vec::with_capacity(cfg.batch_events);
    let mut deadline: Option<Instant> = None;
    let mut last_error_log: Option<Instant> = None;
    loop {
        let msg = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let done = match msg {
            Ok(ev) => {
                for (i, s) in subs.iter_mut().enumerate() {
                    if let Some((t, v)) = s.transform(&ev) {
                        pending.push((i, t, v));
                    }
                }
                if deadline.is_none() && !pending.is_empty() {
                    deadline = Some(Instant::now() + cfg.batch_time);
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = deadline.is_some_and(|d| Instant::now() >= d);
        if !pending.is_empty() && (done || due || pending.len() >= cfg.batch_events) {
            flush(
                &store,
                &mut seq,
                &subs,
                &mut pending,
                cfg.sync,
                &mut last_error_log,
            );
            deadline = None;
        }
        if done {
            return;
        }
    }
}

fn flush(
    store: &Store,
    seq: &mut crate::storage::SeqAllocator,
    subs: &[Box<dyn Subscriber>],
    pending: &mut Vec<(usize, u64, Vec<u8>)>,
    sync: bool,
    last_error_log: &mut Option<Instant>,
) {
    let mut items = Vec::with_capacity(pending.len());
    let mut result = Ok(());
    for (i, t, v) in pending.iter_mut() {
        match seq.next(store) {
            Ok(s) => items.push((subs[*i].table(), event_key(*t, s), std::mem::take(v))),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        result = store.write(&items, sync);
    }
    match result {
        Ok(()) => {
            for (i, _, _) in pending.iter() {
                subs[*i].counters().events.add(1);
            }
        }
        Err(e) => {
            for (i, _, _) in pending.iter() {
                subs[*i].counters().write_errors.add(1);
            }
            // One line per 10 s at most: a full disk must not also flood the log.
            if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                log::error!(
                    "writing {} events failed (counted in write_errors): {e}",
                    pending.len()
                );
                *last_error_log = Some(Instant::now());
            }
        }
    }
    pending.clear();
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
