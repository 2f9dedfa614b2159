//! `osprey daemon`: the wiring. Event sources → pipeline → RocksDB on dedicated threads, the
//! control plane (config refresh, counter report) as tasks on its runtime, until SIGINT,
//! SIGTERM or a component's failure.
//!
//! Shutdown order matters for "nothing lost silently": detach the programs first (no new
//! records), let the publishers drain their ring buffers, close the queues, let the writer
//! flush, write the final counters, then exit (non-zero if a component panicked).

mod reporter;
mod wiring;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, Result};

use crate::{
    control::Control,
    flags::Flags,
    rt::{Shutdown, supervise::Supervisor},
    sources::{self, Ctx, Source},
    storage::Store,
    sys::fsguard::FsGuard,
};
use reporter::Reporter;

/// `osprey daemon` as the command line starts it: the control plane (which loads the config),
/// the store it names, signal handlers, and every registered source.
pub fn main(flags: &Flags) -> Result<()> {
    crate::sys::private_umask();
    let runtime = crate::control::runtime()?;
    let (control, store, remote) = if crate::remote::wanted(flags) {
        // The remote API keeps its node key in the store and may be where the config comes
        // from: the store is the one the command line (or flagfile) names.
        let store = open_store(flags)?;
        let remote = wiring::remote(flags, &store, runtime.handle().clone())?;
        let fetch = (flags.get("config_plugin") == "tls").then(|| {
            Arc::new(crate::remote::config::TlsConfig::new(remote.clone()))
                as Arc<dyn crate::config::live::Fetch>
        });
        let control = Control::start_on(runtime, flags, fetch)?;
        if control.live().flags.path("database_path") != flags.path("database_path") {
            log::warn!(
                "the config's database_path is not used: with the TLS remote API the store is the one the command line names"
            );
        }
        (control, store, Some(remote))
    } else if let Some(name) = extension_config_plugin(flags) {
        // The config comes from an extension: the manager's registry exists before the
        // config service asks it, and the store (the last config delivered is kept there) is
        // the one the command line names.
        let store = open_store(flags)?;
        let registry = registry(flags);
        let fetch = Arc::new(crate::extensions::ExtensionConfig::new(
            registry.clone(),
            name,
            store.clone(),
        )) as Arc<dyn crate::config::live::Fetch>;
        let control = Control::start_on(runtime, flags, Some(fetch))?;
        let shutdown = Shutdown::default();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, shutdown.flag())
                .context("installing signal handlers")?;
        }
        return run_with(
            store,
            sources::REGISTRY,
            control,
            None,
            Some(registry),
            shutdown,
        );
    } else {
        let control = Control::start_on(runtime, flags, None)?;
        let store = open_store(&control.live().flags)?;
        (control, store, None)
    };
    let shutdown = Shutdown::default();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.flag()).context("installing signal handlers")?;
    }
    run(store, sources::REGISTRY, control, remote, shutdown)
}

/// `--extensions_require`: start-up waits up to `--extensions_timeout` seconds for every
/// extension named there to register, else fails naming the ones missing.
fn wait_for_required(flags: &Flags, registry: &crate::extensions::Registry) -> Result<()> {
    let wanted: Vec<&str> = flags
        .get("extensions_require")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let wait = Duration::from_secs(flags.u64("extensions_timeout"));
    let until = std::time::Instant::now() + wait;
    loop {
        let names = registry.names();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !names.iter().any(|n| n == w))
            .collect();
        if missing.is_empty() {
            log::info!("extensions_require: {} registered", wanted.join(", "));
            return Ok(());
        }
        if std::time::Instant::now() >= until {
            anyhow::bail!(
                "extensions_require: {} did not register within {} s (--extensions_timeout)",
                missing.join(", "),
                wait.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_store(flags: &Flags) -> Result<Arc<Store>> {
    let db_path = flags
        .path("database_path")
        .context("--database_path must not be empty")?;
    Ok(Arc::new(Store::open_primary(&db_path).with_context(
        || format!("opening the event store at {}", db_path.display()),
    )?))
}

/// Runs the daemon on `store` with `sources` until `shutdown` (or a component fails: then the
/// others are stopped in order and the failure is returned).
pub fn run(
    store: Arc<Store>,
    sources: &[&'static dyn Source],
    control: Control,
    remote: Option<Arc<crate::remote::Remote>>,
    shutdown: Shutdown,
) -> Result<()> {
    run_with(store, sources, control, remote, None, shutdown)
}

/// `--config_plugin` when it names no built-in config plugin (and extensions are on): an
/// extension's config plugin.
fn extension_config_plugin(flags: &Flags) -> Option<&str> {
    let name = flags.get("config_plugin").trim();
    (!flags.bool("disable_extensions") && !["", "filesystem", "tls"].contains(&name))
        .then_some(name)
}

/// The extension manager's registry for `flags`.
fn registry(flags: &Flags) -> Arc<crate::extensions::Registry> {
    Arc::new(crate::extensions::Registry::new(
        flags.path("extensions_socket").unwrap_or_default(),
        Duration::from_secs(flags.u64("extensions_timeout").max(1)),
    ))
}

/// [`run`] with the extensions' registry made already (when the config comes from one).
fn run_with(
    store: Arc<Store>,
    sources: &[&'static dyn Source],
    control: Control,
    remote: Option<Arc<crate::remote::Remote>>,
    extensions: Option<Arc<crate::extensions::Registry>>,
    shutdown: Shutdown,
) -> Result<()> {
    let started_ns = crate::sys::now_ns();
    let live = control.live();
    let flags: &Flags = &live.flags;
    let sup = Supervisor::new(shutdown.clone());
    // Subscribers' file-system calls (metadata, hashes) that may hang run here.
    let fs = FsGuard::helpers(Duration::from_millis(flags.enrichment_timeout_ms()))
        .context("locating this executable for the file-system helpers")?;
    let ctx = Ctx {
        flags,
        fim: control.fim(),
        fs: &fs,
    };
    store.ensure_event_tables(&sources::event_tables(sources))?;
    let mut w = wiring::Wiring::new(sources, ctx);
    // osquery extensions: their tables are in every SQL engine of the daemon.
    let extensions =
        extensions.or_else(|| (!flags.bool("disable_extensions")).then(|| registry(flags)));
    if let Some(r) = &extensions {
        // Its counters are reported with the others.
        let mut stats = (*w.stats).clone();
        stats.extensions = r.counters.clone();
        w.stats = Arc::new(stats);
    }
    w.start_sources(ctx, &sup)?;
    drop_capabilities(flags, &w.hooks);
    let writer = w.spawn_writer(ctx, &sup, store.clone())?;
    let retention = w.spawn_retention(flags, &sup, store.clone())?;
    let mut reporter = Reporter::new(
        store.clone(),
        w.stats.clone(),
        w.kernel_drops.take(),
        started_ns,
        sources,
    );
    reporter.hooks = std::mem::take(&mut w.hooks);
    reporter.active = w.active.iter().map(|s| s.publisher()).collect();
    reporter.record_downtime(crate::sys::now_ns());
    reporter.tick(true);
    // Before the pidfile: `osprey query` may look at osquery_flags as soon as it exists.
    control.persist(&store, true);
    let pidfile = flags
        .path("pidfile")
        .unwrap_or_else(|| store.path().join("osprey.pid"));
    crate::sys::write_pidfile(&pidfile)
        .with_context(|| format!("writing the pidfile {}", pidfile.display()))?;
    // Events flow: a `Type=notify` unit is started now.
    crate::sys::notify::notify("READY=1");

    let kernel = Arc::new(Mutex::new(w.kernel.take()));
    // The scheduler and the loggers follow the config in force.
    let current = Arc::new(Mutex::new(control.live()));
    // What the remote API's logger and poller follow: the flags in force now.
    let settings: crate::remote::distributed::Settings = {
        let now = current.clone();
        Arc::new(move || lock(&now).flags.clone())
    };
    let scheduler = wiring::scheduler(
        &store,
        sources,
        &live,
        w.stats.logger.clone(),
        remote.as_ref().map(|r| (r, settings.clone())),
        extensions.as_ref(),
        sup.shutdown(),
    )?;
    let running = control.spawn_config_refresh(&sup, store.clone(), {
        let (kernel, active, flags) = (kernel.clone(), w.active.clone(), flags.clone());
        let (fs, current) = (fs.clone(), current.clone());
        move |live| {
            wiring::follow_config(&kernel, &active, &flags, &fs, live);
            *lock(&current) = live.clone();
        }
    });
    wiring::spawn_schedule(
        &sup,
        &running.handle(),
        scheduler,
        current.clone(),
        store.clone(),
    );
    if let Some(r) = &remote
        && !flags.bool("disable_distributed")
        && flags.get("distributed_plugin") == "tls"
    {
        let env = wiring::table_env(&store, sources, &live, extensions.as_ref());
        sup.spawn_task(
            &running.handle(),
            "distributed",
            crate::remote::distributed::run(
                r.clone(),
                env,
                settings,
                shutdown.clone(),
                wiring::query_worker(&live.flags, &shutdown)?,
            ),
        );
    } else if let Some(registry) = &extensions
        && !flags.bool("disable_distributed")
        && !["", "tls"].contains(&flags.get("distributed_plugin").trim())
    {
        // An extension's distributed plugin (no carves: those need the TLS endpoints).
        let env = wiring::table_env(&store, sources, &live, extensions.as_ref());
        let peer = wiring::ExtensionDistributed {
            registry: registry.clone(),
            name: flags.get("distributed_plugin").trim().to_owned(),
        };
        let worker = wiring::query_worker(&live.flags, &shutdown)?;
        let (store, shutdown) = (store.clone(), shutdown.clone());
        sup.spawn_task(&running.handle(), "distributed", async move {
            crate::remote::distributed::poll(&peer, &store, env, None, settings, shutdown, worker)
                .await;
        });
    }
    let mut required: Option<anyhow::Error> = None;
    if let Some(registry) = &extensions {
        // A manager that cannot listen is reported once; the agent runs on without it.
        let env = wiring::table_env(&store, sources, &live, Some(registry));
        match crate::extensions::Manager::listen(flags, env, registry.clone()) {
            Ok(m) => {
                sup.spawn_task(&running.handle(), "extensions", m.serve(shutdown.clone()));
            }
            Err(e) => log::error!("extension manager not started: {e}"),
        }
        if let Some(list) = flags.path("extensions_autoload") {
            sup.spawn_task(
                &running.handle(),
                "extensions_autoload",
                crate::extensions::autoload::run(
                    list,
                    flags.path("extensions_socket").unwrap_or_default(),
                    flags.u64("extensions_timeout"),
                    flags.u64("extensions_interval"),
                    shutdown.clone(),
                ),
            );
        }
        if let Err(e) = wait_for_required(flags, registry) {
            // Stopped in order, like any other failure at start.
            log::error!("{e:#}");
            required = Some(e);
            shutdown.trigger();
        }
    }
    sup.spawn_task(&running.handle(), "rescan", {
        let (kernel, active, flags) = (kernel.clone(), w.active.clone(), flags.clone());
        let (fs, fim, shutdown) = (fs.clone(), running.fim().clone(), shutdown.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !shutdown.is_set() {
                tokio::select! {
                    _ = tick.tick() => tokio::task::block_in_place(|| {
                        wiring::reprogram(&kernel, &active, &flags, &fs, &fim);
                    }),
                    _ = shutdown.wait() => {}
                }
            }
        }
    });
    let reporter = Arc::new(Mutex::new(reporter));
    sup.spawn_task(&running.handle(), "reporter", {
        let (reporter, shutdown) = (reporter.clone(), shutdown.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            // systemd's watchdog (WatchdogSec): pinged from the once-a-second report, so a
            // control plane that stops turning is restarted by the service manager.
            let watchdog = crate::sys::notify::watchdog_interval();
            let mut pinged = std::time::Instant::now();
            while !shutdown.is_set() {
                tokio::select! {
                    _ = tick.tick() => {
                        lock(&reporter).tick(true);
                        if let Some(every) = watchdog
                            && pinged.elapsed() >= every.min(Duration::from_secs(1))
                        {
                            crate::sys::notify::notify("WATCHDOG=1");
                            pinged = std::time::Instant::now();
                        }
                    }
                    _ = shutdown.wait() => {}
                }
            }
        }
    });
    log::info!(
        "osprey daemon {} running: database {}, sources {}",
        std::process::id(),
        store.path().display(),
        w.active_names()
    );

    running.wait(&shutdown);
    log::info!("shutting down: detaching programs and draining ring buffers");
    drop(lock(&kernel).take());
    let mut failed = w.join_publishers();
    drop(w.queues.split_off(0));
    crate::sys::notify::notify("STOPPING=1");
    failed |= writer.join().is_err() | retention.join().is_err();
    let config = running.stop();
    crate::rt::status::set_hook(None);
    let mut reporter = lock(&reporter);
    reporter.running = false;
    reporter.tick(true);
    if let Some(config) = config {
        config.persist(&store, false);
    }
    if let Err(e) = store.flush_wal() {
        log::error!("final WAL sync failed: {e}");
    }
    let _ = std::fs::remove_file(&pidfile);
    if let Some(e) = required {
        return Err(e);
    }
    match sup.first_failure() {
        Some(f) => Err(anyhow::Error::new(f).context(format!(
            "stopped after a failure ({} panic(s); see the log)",
            sup.panics()
        ))),
        None if failed => anyhow::bail!("a component failed; see the log"),
        None => {
            log::info!("stopped cleanly");
            Ok(())
        }
    }
}

/// Once the kernel programs are attached: every thread keeps only what the daemon still
/// needs (`--keep_capabilities` keeps all). BPF and PERFMON: its maps, and programs attached
/// again after a config change; DAC_READ_SEARCH: reading every file it hashes and stats;
/// SYS_PTRACE: other processes' /proc entries; SYS_RESOURCE: its memlock limit; SYS_ADMIN
/// only when the fanotify fallback marks file systems as watched folders appear.
fn drop_capabilities(flags: &Flags, hooks: &[(&'static str, String)]) {
    use caps::Capability::*;
    // The unit tests run the daemon inside the test process: its capabilities stay (the
    // e2e tests run the real binary, which drops them).
    if cfg!(test) || !crate::sys::is_root() || flags.bool("keep_capabilities") {
        return;
    }
    let mut keep = vec![
        CAP_BPF,
        CAP_PERFMON,
        CAP_DAC_READ_SEARCH,
        CAP_SYS_PTRACE,
        CAP_SYS_RESOURCE,
    ];
    if hooks.iter().any(|(_, h)| h == "fanotify") {
        keep.push(CAP_SYS_ADMIN);
    }
    let numbers: Vec<u32> = keep.iter().map(|c| u32::from(c.index())).collect();
    match crate::sys::privileges::keep_only(&numbers) {
        Ok(d) if d.unreached.is_empty() => log::info!(
            "capabilities: {} threads keep only {}",
            d.threads,
            crate::sys::privileges::names(d.mask).join(", ")
        ),
        Ok(d) => log::warn!(
            "capabilities: {} threads keep only {}; {} thread(s) block signals and keep theirs ({})",
            d.threads - d.unreached.len(),
            crate::sys::privileges::names(d.mask).join(", "),
            d.unreached.len(),
            d.unreached.join(", ")
        ),
        Err(e) => log::warn!("capabilities: not dropped: {e}"),
    }
}

/// A lock whose holder panicked is still usable: the values behind it are counters and
/// handles, valid at every step.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
