//! The once-a-second report: live counters to `meta/stats`, and a drop window for every loss
//! counter that moved.

use std::sync::Arc;

use crate::{
    sources::{self, Source},
    stats::{self, DropCount, DropWindow, Snapshot, Stats},
    storage::{CF_DROPS, Store, WriteKind, event_key},
    sys::ebpf::DropCounters,
};

/// Persists counters once a second, and a drop window for each loss counter that moved.
pub struct Reporter {
    store: Arc<Store>,
    stats: Arc<Stats>,
    kernel_drops: Option<DropCounters>,
    started_ns: u64,
    pub running: bool,
    /// (publisher, hook strategy) of the kernel sources in use.
    pub hooks: Vec<(&'static str, String)>,
    /// Publishers of the enabled sources.
    pub active: Vec<&'static str>,
    sources: Vec<&'static dyn Source>,
    last_totals: std::collections::BTreeMap<(String, String, String), u64>,
    last_tick_ns: u64,
    window_seq: u64,
    /// Loss totals of the daemons before this one (from the last persisted snapshot), so
    /// that totals count since the database was created.
    base: Vec<DropCount>,
    /// The last snapshot of the previous daemon on this database, if any.
    previous: Option<Snapshot>,
}

impl Reporter {
    pub fn new(
        store: Arc<Store>,
        stats: Arc<Stats>,
        kernel_drops: Option<DropCounters>,
        started_ns: u64,
        sources: &[&'static dyn Source],
    ) -> Self {
        let previous = match Snapshot::load(&store) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("reading the previous counters: {e}; loss totals restart at 0");
                None
            }
        };
        let base = previous
            .as_ref()
            .map(|p| p.drops.clone())
            .unwrap_or_default();
        Self {
            last_totals: stats::totals(&base),
            base,
            previous,
            store,
            stats,
            kernel_drops,
            started_ns,
            running: true,
            hooks: Vec::new(),
            active: Vec::new(),
            sources: sources.to_vec(),
            last_tick_ns: started_ns,
            // Unique per start: windows of two daemons never share a key.
            window_seq: started_ns,
        }
    }

    /// Records the blind interval before this start: from the previous daemon's last
    /// heartbeat to `resumed_ns`, when capture resumed. One `agent_down` row, and its total.
    pub fn record_downtime(&mut self, resumed_ns: u64) {
        let Some(prev) = &self.previous else {
            return; // a new database: nothing was captured before, nothing was missed
        };
        let how = if prev.running {
            "it did not stop cleanly (killed or crashed)"
        } else {
            "it was stopped"
        };
        log::warn!(
            "no capture from {} to {} (the previous daemon, pid {}: {how}); recorded as agent_down",
            prev.updated_ns / 1_000_000_000,
            resumed_ns.div_ceil(1_000_000_000),
            prev.pid
        );
        let w = DropWindow {
            start_ns: prev.updated_ns,
            end_ns: resumed_ns,
            publisher: stats::PUBLISHER_AGENT.into(),
            event_type: "any".into(),
            reason: stats::REASON_AGENT_DOWN.into(),
            count: 1,
        };
        self.window_seq += 1;
        let item = (CF_DROPS, event_key(w.end_ns, self.window_seq), w.encode());
        if let Err(e) = self.store.write_as(&[item], true, WriteKind::Bookkeeping) {
            log::error!("saving the agent_down window: {e}");
        }
        merge(
            &mut self.base,
            &[DropCount {
                publisher: stats::PUBLISHER_AGENT.into(),
                event_type: "any".into(),
                reason: stats::REASON_AGENT_DOWN.into(),
                cpu: -1,
                count: 1,
            }],
        );
        self.last_totals = stats::totals(&self.base);
    }

    /// This daemon's counters plus the totals of the daemons before it.
    fn drops(&self) -> Vec<DropCount> {
        let mut out = self.base.clone();
        merge(&mut out, &self.own_drops());
        out
    }

    fn own_drops(&self) -> Vec<DropCount> {
        let mut out = Vec::new();
        if let Some(k) = &self.kernel_drops {
            match k.read() {
                Ok(slots) => {
                    for (slot, per_cpu) in slots {
                        let kind = slot.kind();
                        let Some(src) = sources::owner(&self.sources, kind) else {
                            continue;
                        };
                        let (publisher, event_type) = (src.publisher(), src.drop_event_type(kind));
                        for (cpu, count) in per_cpu.into_iter().enumerate() {
                            out.push(DropCount {
                                publisher: publisher.into(),
                                event_type: event_type.into(),
                                reason: slot.reason().into(),
                                cpu: cpu as i64,
                                count,
                            });
                        }
                    }
                }
                Err(e) => log::warn!("reading kernel drop counters: {e:#}"),
            }
        }
        for (name, c) in &self.stats.publishers {
            out.push(DropCount {
                publisher: (*name).into(),
                event_type: "any".into(),
                reason: "decode_error".into(),
                cpu: -1,
                count: c.decode_errors.get(),
            });
            out.push(DropCount {
                publisher: (*name).into(),
                event_type: "any".into(),
                reason: "queue_full".into(),
                cpu: -1,
                count: c.queue_full.get(),
            });
            for (reason, c) in [
                ("tracking_evicted", &c.tracking_evicted),
                ("tracking_stale", &c.tracking_stale),
                ("queue_overflow", &c.source_overflow),
            ] {
                out.push(DropCount {
                    publisher: (*name).into(),
                    event_type: "any".into(),
                    reason: reason.into(),
                    cpu: -1,
                    count: c.get(),
                });
            }
        }
        // Extension-socket connections closed on a frame that cannot be a request.
        out.push(DropCount {
            publisher: "extensions".into(),
            event_type: "thrift".into(),
            reason: "bad_frame".into(),
            cpu: -1,
            count: self.stats.extensions.bad_frames.get(),
        });
        // Result and status lines that did not fit in the log buffer, that a sink refused
        // for good, or that could not be read back from the buffer.
        for (reason, c) in [
            ("log_buffer_full", &self.stats.logger.buffer_full),
            ("log_rejected", &self.stats.logger.rejected),
            ("log_undecodable", &self.stats.logger.undecodable),
        ] {
            out.push(DropCount {
                publisher: "logger".into(),
                event_type: "log".into(),
                reason: reason.into(),
                cpu: -1,
                count: c.get(),
            });
        }
        for (table, _, c) in &self.stats.subscribers {
            out.push(DropCount {
                publisher: (*table).into(),
                event_type: "any".into(),
                reason: "write_error".into(),
                cpu: -1,
                count: c.write_errors.get(),
            });
            // Retention, not loss: a total only (see `tick`).
            out.push(DropCount {
                publisher: (*table).into(),
                event_type: "any".into(),
                reason: stats::REASON_EXPIRED.into(),
                cpu: -1,
                count: c.expired.get(),
            });
        }
        out
    }

    pub fn tick(&mut self, persist: bool) {
        let now = crate::sys::now_ns();
        let drops = self.drops();
        let totals = stats::totals(&drops);
        let mut windows = Vec::new();
        for (key, total) in &totals {
            let before = self.last_totals.get(key).copied().unwrap_or(0);
            // Expired rows left by retention, not by loss: a window would make a time range
            // look incomplete, so they only appear as totals.
            if *total > before && key.2 != stats::REASON_EXPIRED {
                windows.push(DropWindow {
                    start_ns: self.last_tick_ns,
                    end_ns: now,
                    publisher: key.0.clone(),
                    event_type: key.1.clone(),
                    reason: key.2.clone(),
                    count: total - before,
                });
            }
        }
        let snap = Snapshot {
            pid: std::process::id(),
            started_ns: self.started_ns,
            updated_ns: now,
            running: self.running,
            publishers: self
                .stats
                .publishers
                .iter()
                .map(|(n, c)| stats::PublisherSnapshot {
                    name: (*n).into(),
                    events: c.events.get(),
                    active: self.active.contains(n),
                    hook: self
                        .hooks
                        .iter()
                        .find(|(p, _)| p == n)
                        .map(|(_, h)| h.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            subscribers: self
                .stats
                .subscribers
                .iter()
                .map(|(t, p, c)| stats::SubscriberSnapshot {
                    name: (*t).into(),
                    publisher: (*p).into(),
                    events: c.events.get(),
                })
                .collect(),
            drops,
        };
        if persist {
            if let Err(e) = snap.save(&self.store) {
                log::warn!("saving counters: {e}");
            }
            if !windows.is_empty() {
                let items: Vec<_> = windows
                    .iter()
                    .map(|w| {
                        self.window_seq += 1;
                        (CF_DROPS, event_key(w.end_ns, self.window_seq), w.encode())
                    })
                    .collect();
                if let Err(e) = self.store.write_as(&items, false, WriteKind::Bookkeeping) {
                    // Not lost: the next tick writes one wider window from the same start.
                    log::warn!("saving drop windows (retried next second): {e}");
                    return;
                }
            }
        }
        self.last_totals = totals;
        self.last_tick_ns = now;
    }
}

/// Adds `more` into `into`, row by row (publisher, event type, reason, CPU).
fn merge(into: &mut Vec<DropCount>, more: &[DropCount]) {
    for d in more {
        match into.iter_mut().find(|x| {
            x.publisher == d.publisher
                && x.event_type == d.event_type
                && x.reason == d.reason
                && x.cpu == d.cpu
        }) {
            Some(x) => x.count += d.count,
            None => into.push(d.clone()),
        }
    }
}
