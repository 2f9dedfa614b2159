//! How the daemon connects the registered sources: counters and queues per source, the kernel
//! loaded once for every enabled source, publishers, the writer and retention, each a
//! supervised thread.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Result;

use crate::{
    config::Live,
    flags::Flags,
    logger::{Forwarder, Sink},
    pipeline::{self, Queue, QueueReceiver, WhenFull, WriterConfig},
    remote::{Remote, logger::TlsLogger},
    rt::{
        Watch,
        counters::{PublisherCounters, SubscriberCounters},
        supervise::{Supervised, Supervisor},
    },
    schedule::Scheduler,
    sources::{self, Ctx, Source, Wiring as SourceWiring},
    sql::TableEnv,
    stats::Stats,
    storage::logbuf::LogBuffer,
    storage::{
        Store,
        retention::{self, Limits, RetentionConfig},
    },
    sys::{
        ebpf::{DropCounters, Kernel},
        fsguard::FsGuard,
    },
};

pub struct Wiring {
    sources: Vec<&'static dyn Source>,
    pub active: Vec<&'static dyn Source>,
    pub stats: Arc<Stats>,
    publisher_counters: Vec<Arc<PublisherCounters>>,
    subscriber_counters: Vec<Arc<SubscriberCounters>>,
    /// One sender per source into the writer's queue.
    pub queues: Vec<Queue>,
    rx: Option<QueueReceiver>,
    pub kernel: Option<Kernel>,
    pub kernel_drops: Option<DropCounters>,
    /// (publisher, hook strategy) of the kernel sources in use.
    pub hooks: Vec<(&'static str, String)>,
    publishers: Vec<Supervised>,
}

impl Wiring {
    /// Counters and a queue sender for every source (enabled or not: `osquery_events` lists
    /// them all).
    pub fn new(sources: &[&'static dyn Source], ctx: Ctx<'_>) -> Self {
        let flags = ctx.flags;
        let publisher_counters: Vec<Arc<PublisherCounters>> =
            sources.iter().map(|_| Arc::default()).collect();
        let subscriber_counters: Vec<Arc<SubscriberCounters>> =
            sources.iter().map(|_| Arc::default()).collect();
        let mut stats = Stats::default();
        for (i, s) in sources.iter().enumerate() {
            stats
                .publishers
                .push((s.publisher(), publisher_counters[i].clone()));
            stats
                .subscribers
                .push((s.table(), s.publisher(), subscriber_counters[i].clone()));
        }
        let (first, rx) = pipeline::queue(
            flags.event_queue_size() as usize,
            flags.event_queue_bytes(),
            WhenFull::from_flag(flags.event_queue_policy()),
            Arc::default(),
        );
        let queues = publisher_counters
            .iter()
            .map(|c| first.for_publisher(c.clone()))
            .collect();
        Self {
            sources: sources.to_vec(),
            active: sources.iter().copied().filter(|s| s.enabled(ctx)).collect(),
            stats: Arc::new(stats),
            publisher_counters,
            subscriber_counters,
            queues,
            rx: Some(rx),
            kernel: None,
            kernel_drops: None,
            hooks: Vec::new(),
            publishers: Vec::new(),
        }
    }

    fn index(&self, s: &dyn Source) -> usize {
        self.sources
            .iter()
            .position(|x| x.publisher() == s.publisher())
            .unwrap_or(0)
    }

    /// Loads the kernel programs for the enabled sources that need them, then starts each
    /// enabled source's publisher. `--event_source`: `ebpf` (a load failure stops the
    /// daemon), `fallback` (no kernel programs: each source's fallback, or off), `auto` (the
    /// kernel programs; where they cannot load, the fallbacks, logged once).
    pub fn start_sources(&mut self, ctx: Ctx<'_>, sup: &Supervisor) -> Result<()> {
        let kernel_sources: Vec<_> = self
            .active
            .iter()
            .copied()
            .filter(|s| !s.kinds().is_empty())
            .collect();
        let mode = ctx.flags.get("event_source").to_owned();
        let mut fallback = mode == "fallback";
        if kernel_sources.is_empty() {
            if !self.active.is_empty() {
                log::info!("no enabled source needs the kernel programs");
            }
        } else if !fallback {
            match self.load_kernel(&kernel_sources, ctx, sup) {
                Ok(()) => {}
                Err(e) if mode == "auto" => {
                    log::warn!(
                        "the kernel programs cannot load ({e:#}); --event_source=auto falls back"
                    );
                    fallback = true;
                }
                Err(e) => return Err(e),
            }
        }
        for s in self.active.clone() {
            let i = self.index(s);
            let w = SourceWiring {
                kernel: self.kernel.as_mut(),
                queue: self.queues[i].clone(),
                counters: self.publisher_counters[i].clone(),
                supervisor: sup,
            };
            if fallback && !s.kinds().is_empty() {
                match s.fallback() {
                    Some(hook) => {
                        self.publishers.push(s.start_fallback(ctx, w)?);
                        log::info!("{}: fallback source {hook}", s.publisher());
                        self.hooks.push((s.publisher(), hook.to_owned()));
                    }
                    None => log::warn!(
                        "{}: no fallback without eBPF; its events are off",
                        s.publisher()
                    ),
                }
                continue;
            }
            self.publishers.push(s.start(w)?);
        }
        if !self
            .active
            .iter()
            .any(|s| s.publisher() == sources::process::PUBLISHER)
        {
            log::warn!("process events are off (disable_events or enable_process_events=false)");
        }
        Ok(())
    }

    fn load_kernel(
        &mut self,
        kernel_sources: &[&'static dyn Source],
        ctx: Ctx<'_>,
        sup: &Supervisor,
    ) -> Result<()> {
        let mut k = Kernel::load(&sources::load_options(kernel_sources, ctx)?)?;
        log::debug!("kernel offsets resolved from BTF: {:?}", k.offsets);
        self.kernel_drops = Some(k.take_drops()?);
        if let Some(klog) = k.take_kernel_log() {
            // Started before the sources, so the start-up snapshot's lines are read too.
            let shutdown = sup.shutdown().clone();
            self.publishers
                .push(sup.spawn("ebpf-log", move || klog.run(|| shutdown.is_set()))?);
        }
        for s in kernel_sources {
            if let Some(h) = s.kinds().first().and_then(|kind| k.strategy(*kind)) {
                self.hooks.push((s.publisher(), h.to_owned()));
            }
        }
        self.kernel = Some(k);
        Ok(())
    }

    /// The writer thread, with every source's subscriber.
    pub fn spawn_writer(
        &mut self,
        ctx: Ctx<'_>,
        sup: &Supervisor,
        store: Arc<Store>,
    ) -> Result<Supervised> {
        let flags = ctx.flags;
        let cfg = WriterConfig {
            batch_events: flags.storage_batch_events().max(1) as usize,
            batch_time: Duration::from_millis(flags.storage_batch_ms()),
            sync: flags.storage_sync() == "batch",
        };
        let subs = self
            .sources
            .iter()
            .zip(&self.subscriber_counters)
            .map(|(s, c)| s.subscriber(ctx, c.clone()))
            .collect();
        let rx = self
            .rx
            .take()
            .ok_or_else(|| anyhow::anyhow!("the writer was started twice"))?;
        Ok(sup.spawn("writer", move || pipeline::run_writer(store, rx, subs, cfg))?)
    }

    pub fn spawn_retention(
        &self,
        flags: &Flags,
        sup: &Supervisor,
        store: Arc<Store>,
    ) -> Result<Supervised> {
        let cfg = RetentionConfig::new(
            Limits {
                expiry_secs: flags.events_expiry(),
                max_events: flags.events_max(),
                max_bytes: flags.events_max_bytes(),
            },
            self.stats
                .subscribers
                .iter()
                .map(|(table, _, c)| (*table, c.clone()))
                .collect(),
        );
        let shutdown = sup.shutdown().clone();
        Ok(sup.spawn("retention", move || retention::run(store, cfg, shutdown))?)
    }

    /// Joins every publisher; true if one of them failed (already logged and counted).
    pub fn join_publishers(&mut self) -> bool {
        let mut failed = false;
        for p in self.publishers.drain(..) {
            failed |= p.join().is_err();
        }
        failed
    }

    pub fn active_names(&self) -> String {
        if self.active.is_empty() {
            return "none".into();
        }
        let names: Vec<_> = self.active.iter().map(|s| s.publisher()).collect();
        names.join(", ")
    }
}

/// After a config reload: every enabled source re-programs its kernel part.
pub fn follow_config(
    kernel: &Mutex<Option<Kernel>>,
    active: &[&'static dyn Source],
    flags: &Flags,
    fs: &FsGuard,
    live: &Live,
) {
    reprogram(kernel, active, flags, fs, &Watch::new(live.fim_state()));
    if live.fim.on
        && !live.matcher.is_empty()
        && !active
            .iter()
            .any(|s| s.publisher() == sources::file::PUBLISHER)
    {
        log::warn!("FIM was off when the daemon started; turning it on takes a restart");
    }
}

/// Every enabled source re-programs its kernel part for `fim`: after a reload, and every
/// second (watched folders are followed by identity, and a folder may be replaced).
pub fn reprogram(
    kernel: &Mutex<Option<Kernel>>,
    active: &[&'static dyn Source],
    flags: &Flags,
    fs: &FsGuard,
    fim: &Watch<crate::fim::FimState>,
) {
    let ctx = Ctx { flags, fim, fs };
    let mut kernel = super::lock(kernel);
    for s in active {
        if let Some(k) = kernel.as_mut()
            && let Err(e) = s.reconfigure(k, ctx)
        {
            log::error!("updating {}: {e:#}", s.publisher());
        }
    }
}

/// Every table (live and stored events) of this daemon, as the scheduler and distributed
/// queries see them.
pub fn table_env(
    store: &Arc<Store>,
    sources: &[&'static dyn Source],
    live: &Live,
    extensions: Option<&Arc<crate::extensions::Registry>>,
) -> TableEnv {
    let env = TableEnv::new(Some(store.clone()), Arc::new(live.flags.clone()))
        .with_tables(sources::tables_of(sources))
        .with_flags_view(Arc::new(crate::control::flags_view));
    match extensions {
        Some(r) => env.with_dynamic(Arc::new(crate::extensions::ExtensionTables(r.clone()))),
        None => env,
    }
}

/// A query worker for `flags` (watchdog), or None when the watchdog is off. Unit
/// tests run the daemon in the test process, whose executable is no osprey: none there.
pub fn query_worker(
    flags: &Flags,
    shutdown: &crate::rt::Shutdown,
) -> Result<Option<crate::watchdog::Worker>> {
    let Some(limits) = crate::watchdog::Limits::from_flags(flags) else {
        return Ok(None);
    };
    if cfg!(test) {
        return Ok(None);
    }
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("finding the osprey executable: {e}"))?;
    Ok(Some(crate::watchdog::Worker::new(
        exe,
        flags,
        limits,
        shutdown.clone(),
    )))
}

/// The remote API client for `flags`: its host identifier as the result logs carry it,
/// and enrollment details from this host's tables.
pub fn remote(
    flags: &Flags,
    store: &Arc<Store>,
    rt: tokio::runtime::Handle,
) -> Result<Arc<Remote>> {
    let instance = LogBuffer::open(store.clone())?.instance_id()?;
    let id = crate::schedule::host_identifier(flags, &instance);
    let env = TableEnv::new(Some(store.clone()), Arc::new(flags.clone()))
        .with_flags_view(Arc::new(crate::control::flags_view));
    let details: crate::remote::Details = Arc::new(move || crate::remote::host_details(&env));
    Remote::new(flags, store.clone(), rt, id, details)
        .map_err(|e| anyhow::anyhow!("the TLS remote API: {e}"))
}

/// The scheduler over every table (live and stored events) of this daemon, with the loggers'
/// buffer on `store`.
pub fn scheduler(
    store: &Arc<Store>,
    sources: &[&'static dyn Source],
    live: &Arc<Live>,
    counters: Arc<crate::rt::counters::LoggerCounters>,
    remote: Option<(&Arc<Remote>, crate::remote::distributed::Settings)>,
    extensions: Option<&Arc<crate::extensions::Registry>>,
    shutdown: &crate::rt::Shutdown,
) -> Result<(Scheduler, Forwarder)> {
    let buffer = Arc::new(LogBuffer::open(store.clone())?);
    let env = table_env(store, sources, live, extensions);
    let now = crate::sys::now_ns() / 1_000_000_000;
    let mut sched = Scheduler::new(env, buffer.clone(), counters.clone(), live, now)
        .map_err(|e| anyhow::anyhow!("starting the scheduler's SQL engine: {e}"))?;
    match query_worker(&live.flags, shutdown)? {
        Some(w) => {
            let l = crate::watchdog::Limits::from_flags(&live.flags).unwrap_or(w.limits());
            log::info!(
                "watchdog: scheduled and distributed queries run in query workers; limits {} MB resident, {}% CPU for more than {} s, enforced after {} s",
                l.memory_bytes / (1024 * 1024),
                l.cpu_percent,
                l.latency_secs,
                l.delay.as_secs()
            );
            sched = sched.with_worker(w);
        }
        None => log::info!("watchdog off: scheduled and distributed queries run in the daemon"),
    }
    let (sinks, warnings) = crate::logger::sinks_from_flags(
        &live.flags,
        &live.config.kafka_topics,
        &counters,
        &mut |name| {
            match (name, &remote) {
            ("tls", Some((r, settings))) => Some(Ok(Box::new(TlsLogger::new(
                (*r).clone(),
                settings.clone(),
                counters.clone(),
            )) as Box<dyn Sink>)),
            ("tls", None) => Some(Err(
                "logger_plugin tls set by the config: the TLS remote API starts only from the command line or flagfile".into(),
            )),
            // Any other name: an extension's logger plugin, once one registers it.
            (name, _) => extensions.map(|reg| {
                log::info!(
                    "logger_plugin {name:?} is no built-in logger: its lines wait in the buffer for an extension that registers logger plugin {name:?}"
                );
                Ok(Box::new(crate::extensions::ExtensionLogger::new(
                    reg.clone(),
                    name,
                    counters.clone(),
                )) as Box<dyn Sink>)
            }),
        }
        },
    );
    for w in warnings {
        log::warn!("{w}");
    }
    // From here on the daemon's own INFO, WARN and ERROR lines are status lines too.
    crate::rt::status::set_hook(Some(sched.status_hook()));
    let (lines, bytes) = buffer.len();
    if lines > 0 {
        log::info!("log buffer: {lines} line(s), {bytes} bytes from before this start, sent first");
    }
    Ok((sched, Forwarder::new(buffer, sinks, counters)))
}

/// Two tasks: the scheduler (once a second: follow the config, run what is due, persist the
/// statistics) and the log forwarder (once a second, and a last time at shutdown), so that a
/// slow sink never delays a scheduled query.
pub fn spawn_schedule(
    sup: &Supervisor,
    rt: &tokio::runtime::Handle,
    (mut sched, mut fwd): (Scheduler, Forwarder),
    current: Arc<Mutex<Arc<Live>>>,
    store: Arc<Store>,
) {
    let shutdown = sup.shutdown().clone();
    sup.spawn_task(rt, "schedule", async move {
        let mut tick = tokio::time::interval(crate::schedule::TICK);
        // The config generation whose queries osquery_schedule shows (they are listed
        // before their first run, as osquery lists them).
        let mut shown = 0;
        while !shutdown.is_set() {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => break,
            }
            tokio::task::block_in_place(|| {
                let live = super::lock(&current).clone();
                let now = crate::sys::now_ns() / 1_000_000_000;
                sched.update(&live, now);
                if (sched.tick(now) > 0 || live.generation != shown)
                    && let Err(e) = sched.stats().save(&store)
                {
                    log::warn!("saving the scheduler's statistics: {e}");
                }
                shown = live.generation;
            });
        }
    });
    let shutdown = sup.shutdown().clone();
    sup.spawn_task(rt, "logger", async move {
        let mut tick = tokio::time::interval(crate::schedule::TICK);
        let mut pump = move || {
            if let Err(e) = fwd.pump() {
                log::error!("log buffer: {e}");
            }
        };
        while !shutdown.is_set() {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => break,
            }
            tokio::task::block_in_place(&mut pump);
        }
        tokio::task::block_in_place(&mut pump);
    });
}

/// An extension's distributed plugin (`--distributed_plugin=NAME`, NAME no built-in plugin)
/// as the peer of the distributed poll loop: osquery's `getQueries` (the read reply as JSON
/// in the first row's `results`) and `writeResults` (the write body as JSON in `results`).
pub struct ExtensionDistributed {
    pub registry: Arc<crate::extensions::Registry>,
    pub name: String,
}

impl ExtensionDistributed {
    async fn call(
        &self,
        request: BTreeMap<String, String>,
    ) -> Result<Vec<BTreeMap<String, String>>, String> {
        let (registry, name) = (self.registry.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || {
            registry
                .call_plugin("distributed", &name, request)
                .map_err(|e| {
                    e.unwrap_or_else(|| {
                        format!("no extension has registered distributed plugin {name:?}")
                    })
                })
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

impl crate::remote::distributed::Peer for ExtensionDistributed {
    fn read(
        &self,
    ) -> crate::remote::distributed::PeerFuture<'_, serde_json::Map<String, serde_json::Value>>
    {
        Box::pin(async move {
            let rows = self
                .call(BTreeMap::from([(
                    "action".to_owned(),
                    "getQueries".to_owned(),
                )]))
                .await?;
            let text = rows
                .first()
                .and_then(|r| r.get("results"))
                .ok_or("getQueries: no results in the answer")?;
            match serde_json::from_str(text) {
                Ok(serde_json::Value::Object(o)) => Ok(o),
                _ => Err("getQueries: the results are not a JSON object".to_owned()),
            }
        })
    }

    fn write(
        &self,
        body: serde_json::Map<String, serde_json::Value>,
    ) -> crate::remote::distributed::PeerFuture<'_, ()> {
        Box::pin(async move {
            self.call(BTreeMap::from([
                ("action".to_owned(), "writeResults".to_owned()),
                (
                    "results".to_owned(),
                    serde_json::Value::Object(body).to_string(),
                ),
            ]))
            .await
            .map(|_| ())
        })
    }
}
