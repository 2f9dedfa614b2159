//! `osprey daemon`: kernel sources -> pipeline -> RocksDB, until SIGINT or SIGTERM.
//!
//! Shutdown order matters for "nothing lost silently": detach the programs first (no new
//! records), let the publishers drain their ring buffers, close the queues, let the writer
//! flush, write the final counters, then exit 0.

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use agent_common::EventKind;
use anyhow::{Context as _, Result};

use crate::{
    ebpf::{self, DropCounters},
    flags::Flags,
    pipeline::{self, Shutdown, WhenFull, WriterConfig, file, process, socket},
    stats::{self, DropCount, DropWindow, PublisherCounters, Snapshot, Stats, SubscriberCounters},
    storage::{
        self, CF_DROPS, Store, event_key,
        retention::{Limits, RetentionConfig},
    },
};

pub fn run(flags: &Flags) -> Result<()> {
    // The config's `options` sit under the command line, environment and flagfile; from here
    // on `flags` are the effective ones. `config.handle()` gives a component the live config
    // and a change notification (see config::live); SIGHUP and --config_refresh reload it.
    let mut config = crate::config::Service::start(flags).map_err(anyhow::Error::msg)?;
    let live = config.current();
    let flags: &Flags = &live.flags;
    let db_path = flags
        .path("database_path")
        .context("--database_path must not be empty")?;
    let store = Arc::new(
        Store::open_primary(&db_path)
            .with_context(|| format!("opening the event store at {}", db_path.display()))?,
    );
    let started_ns = crate::sys::now_ns();
    let shutdown = Shutdown::default();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.flag()).context("installing signal handlers")?;
    }

    let events_on = !flags.bool("disable_events");
    let process_on = events_on && flags.bool("enable_process_events");
    // FIM: the one switch (enable_file_events, aliases, disable_events) decides; the kernel
    // filter gets the matcher's literal prefixes, the subscriber the exact matcher.
    let file_on = events_on && live.fim.on && !live.matcher.is_empty();
    let socket_on = events_on && flags.bool("enable_socket_events");
    let kernel_prefixes = |l: &crate::config::Live| -> Vec<String> {
        l.matcher
            .kernel_prefixes()
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    };
    let mut stats = Stats::default();
    let mut threads = Vec::new();
    let mut kernel = None;
    let mut drop_counters = None;
    let mut hooks = Vec::new();

    let proc_counters = Arc::new(PublisherCounters::default());
    let file_counters = Arc::new(PublisherCounters::default());
    let proc_sub = Arc::new(SubscriberCounters::default());
    let file_sub = Arc::new(SubscriberCounters::default());
    stats
        .publishers
        .push((process::PUBLISHER, proc_counters.clone()));
    stats
        .publishers
        .push((file::PUBLISHER, file_counters.clone()));
    stats
        .subscribers
        .push((process::TABLE, process::PUBLISHER, proc_sub.clone()));
    stats
        .subscribers
        .push((file::TABLE, file::PUBLISHER, file_sub.clone()));
    let (proc_queue, rx) = pipeline::queue(
        flags.u64("event_queue_size") as usize,
        WhenFull::from_flag(flags.get("event_queue_policy")),
        proc_counters.clone(),
    );
    let file_queue = proc_queue.for_publisher(file_counters.clone());
    let sock_counters = Arc::new(PublisherCounters::default());
    let sock_sub = Arc::new(SubscriberCounters::default());
    stats
        .publishers
        .push((socket::PUBLISHER, sock_counters.clone()));
    stats
        .subscribers
        .push((socket::TABLE, socket::PUBLISHER, sock_sub.clone()));
    let sock_queue = proc_queue.for_publisher(sock_counters.clone());

    if process_on || file_on || socket_on {
        let ring_bytes = u32::try_from(flags.u64("ring_buffer_bytes"))
            .context("--ring_buffer_bytes is too large")?;
        let mut enabled = Vec::new();
        if process_on {
            enabled.extend([
                EventKind::ProcessExec,
                EventKind::ProcessExit,
                EventKind::ProcessFork,
            ]);
        }
        if file_on {
            enabled.extend([EventKind::File, EventKind::FileFd]);
        }
        if socket_on {
            enabled.push(EventKind::Socket);
        }
        let mut k = ebpf::Kernel::load(&ebpf::LoadOptions {
            ring_buffer_bytes: ring_bytes,
            enabled,
            watched_prefixes: kernel_prefixes(&live),
            watch_all: false,
            report_reads: !live.config.file_accesses.is_empty(),
            exec_args_max: u32::try_from(flags.u64("exec_args_max"))
                .unwrap_or(u32::MAX)
                .min(agent_common::process::ARGS_MAX as u32 - 1),
            hooks: flags
                .get("ebpf_hooks")
                .parse()
                .map_err(|e: String| anyhow::anyhow!(e))?,
            exec_env_max: u32::try_from(flags.u64("exec_env_max"))
                .unwrap_or(u32::MAX)
                .min(agent_common::process::ENV_MAX as u32 - 1),
        })?;
        log::debug!("kernel offsets resolved from BTF: {:?}", k.offsets);
        hooks = k.strategies.clone();
        drop_counters = Some(k.take_drops()?);
        if process_on {
            // After the exec program is attached: every process is in the snapshot, in an
            // exec record, or both.
            let tasks = k.task_snapshot()?;
            let snapshot = process::snapshot_events(
                &tasks,
                &process::Clock::now(),
                crate::sys::monotonic_ns(),
            );
            log::info!(
                "{} processes were running at start-up (task iterator)",
                snapshot.len()
            );
            let ring = k.take_process_ring()?;
            let (q, c, s) = (proc_queue.clone(), proc_counters.clone(), shutdown.clone());
            threads.push(
                thread::Builder::new()
                    .name("pub-process".into())
                    .spawn(move || process::run_publisher(ring, q, c, s, snapshot))?,
            );
        }
        if file_on {
            let ring = k.take_file_ring()?;
            let (q, c, s) = (file_queue.clone(), file_counters.clone(), shutdown.clone());
            threads.push(
                thread::Builder::new()
                    .name("pub-file".into())
                    .spawn(move || file::run_publisher(ring, q, c, s))?,
            );
        }
        if socket_on {
            let ring = k.take_sock_ring()?;
            let (q, c, s) = (sock_queue.clone(), sock_counters.clone(), shutdown.clone());
            threads.push(
                thread::Builder::new()
                    .name("pub-socket".into())
                    .spawn(move || socket::run_publisher(ring, q, c, s))?,
            );
        }
        kernel = Some(k);
    }
    if !process_on {
        log::warn!("process events are off (disable_events or enable_process_events=false)");
    }
    let queues = vec![proc_queue, file_queue, sock_queue];

    let writer_cfg = WriterConfig {
        batch_events: flags.u64("storage_batch_events").max(1) as usize,
        batch_time: Duration::from_millis(flags.u64("storage_batch_ms")),
        sync: flags.get("storage_sync") == "batch",
    };
    let subs: Vec<Box<dyn pipeline::Subscriber>> = vec![
        Box::new(process::ProcessEventsSubscriber::new(proc_sub)),
        Box::new(file::FileEventsSubscriber::new(
            file_sub,
            config.handle(),
            flags.u64("read_max"),
            flags.u64("hash_cache_max") as usize,
        )),
        Box::new(socket::SocketEventsSubscriber::new(sock_sub)),
    ];
    let writer = {
        let store = store.clone();
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || pipeline::run_writer(store, rx, subs, writer_cfg))?
    };

    let stats = Arc::new(stats);
    let retention = storage::retention::spawn(
        store.clone(),
        RetentionConfig::new(
            Limits {
                expiry_secs: flags.u64("events_expiry"),
                max_events: flags.u64("events_max"),
                max_bytes: flags.u64("events_max_bytes"),
            },
            stats
                .subscribers
                .iter()
                .map(|(table, _, c)| (*table, c.clone()))
                .collect(),
        ),
        shutdown.clone(),
    );
    let mut reporter = Reporter::new(
        store.clone(),
        stats.clone(),
        drop_counters,
        started_ns,
        process_on,
    );
    reporter.hooks = hooks;
    reporter.tick(true);
    // Before the pidfile: `osprey query` may look at osquery_flags as soon as it exists.
    config.persist(&store, true);

    let pidfile = flags
        .path("pidfile")
        .unwrap_or_else(|| db_path.join("osprey.pid"));
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing the pidfile {}", pidfile.display()))?;
    log::info!(
        "osprey daemon {} running: database {}, process events {}",
        std::process::id(),
        db_path.display(),
        if process_on { "on" } else { "off" }
    );

    let mut last_tick = Instant::now();
    while !shutdown.is_set() {
        thread::sleep(Duration::from_millis(100));
        if config.poll(Some(&store)) {
            // A reload: new prefixes go in before old ones go out, so nothing still watched is
            // uncovered in between.
            let now = config.current();
            match kernel.as_mut() {
                Some(k) if file_on => {
                    if let Err(e) = k.set_watched(&kernel_prefixes(&now)) {
                        log::error!("updating the watched paths: {e:#}");
                    }
                }
                _ if now.fim.on && !now.matcher.is_empty() => {
                    log::warn!("FIM was off when the daemon started; turning it on takes a restart")
                }
                _ => {}
            }
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            reporter.tick(true);
            last_tick = Instant::now();
        }
    }
    log::info!("shutting down: detaching programs and draining ring buffers");
    drop(kernel);
    for t in threads {
        let _ = t.join();
    }
    drop(queues);
    let _ = writer.join();
    let _ = retention.join();
    reporter.running = false;
    reporter.tick(true);
    config.persist(&store, false);
    if let Err(e) = store.flush_wal() {
        log::error!("final WAL sync failed: {e}");
    }
    let _ = std::fs::remove_file(&pidfile);
    log::info!("stopped cleanly");
    Ok(())
}

/// Persists counters once a second, and a drop window for each loss counter that moved.
struct Reporter {
    store: Arc<Store>,
    stats: Arc<Stats>,
    kernel_drops: Option<DropCounters>,
    started_ns: u64,
    running: bool,
    process_on: bool,
    /// (publisher, hook strategy) of the kernel sources in use.
    hooks: Vec<(&'static str, String)>,
    last_totals: std::collections::BTreeMap<(String, String, String), u64>,
    last_tick_ns: u64,
    window_seq: u64,
}

impl Reporter {
    fn new(
        store: Arc<Store>,
        stats: Arc<Stats>,
        kernel_drops: Option<DropCounters>,
        started_ns: u64,
        process_on: bool,
    ) -> Self {
        Self {
            store,
            stats,
            kernel_drops,
            started_ns,
            running: true,
            process_on,
            hooks: Vec::new(),
            last_totals: Default::default(),
            last_tick_ns: started_ns,
            window_seq: 0,
        }
    }

    fn drops(&self) -> Vec<DropCount> {
        let mut out = Vec::new();
        if let Some(k) = &self.kernel_drops {
            match k.read() {
                Ok(slots) => {
                    for (slot, per_cpu) in slots {
                        let (publisher, event_type) = match slot.kind() {
                            EventKind::ProcessExec => (process::PUBLISHER, "exec"),
                            EventKind::ProcessExit => (process::PUBLISHER, "exit"),
                            EventKind::ProcessFork => (process::PUBLISHER, "fork"),
                            EventKind::File | EventKind::FileFd => (file::PUBLISHER, "file"),
                            EventKind::Socket => (socket::PUBLISHER, "socket"),
                        };
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

    fn tick(&mut self, persist: bool) {
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
                    active: self.process_on,
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
                if let Err(e) = self.store.write(&items, false) {
                    log::warn!("saving drop windows: {e}");
                }
            }
        }
        self.last_totals = totals;
        self.last_tick_ns = now;
    }
}
