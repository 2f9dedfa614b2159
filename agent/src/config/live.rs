//! The config at run time: loaded at start-up, reloaded on SIGHUP and every `--config_refresh`
//! seconds, shared with the components that depend on it.
//!
//! A reload builds a complete new [`Live`] (config, effective flags, FIM matcher, FIM status)
//! off to the side; only if every step succeeds is it published, so a bad config never half
//! applies and the last good one stays in force. Consumers hold a [`ConfigHandle`]: `current()`
//! is a cheap `Arc` clone, and `subscribe()` gives a channel that receives the new generation
//! after each change (a publisher reprograms its kernel filter then, without stopping its ring).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::{Config, ConfigError, load};
use crate::{
    fim::{FimMatcher, FimState, FimStatus, fim_status},
    flags::{FlagError, Flags, persist::DaemonFlags},
    storage::Store,
};

/// Evaluates `file_paths_query` for a config about to be applied, with its effective flags,
/// and records the rows in [`Config::queried_paths`]; returns the warnings. Injected by the
/// layer above (the control plane runs the SQL): the config service never runs SQL itself.
pub type Expander = Arc<dyn Fn(&mut Config, &Flags) -> Vec<String> + Send + Sync>;

/// A config that does not come from a file (the `tls` config plugin), injected by the layer
/// above: the config service never makes network requests itself.
pub trait Fetch: Send + Sync {
    /// Where the config comes from, for log lines and `osquery_info.config_hash`'s origin.
    fn origin(&self) -> String;
    /// The config text now, or why not (the service keeps the last good config then).
    fn fetch(&self) -> Result<String, String>;
    /// The last config text this source delivered that built (kept across restarts), for
    /// a start-up while the source is unreachable.
    fn cached(&self) -> Option<String>;
    /// `text` built into a config: keep it for [`Fetch::cached`].
    fn keep(&self, text: &str);
    /// Whether to fetch again now, before the refresh is due (an extension's config plugin
    /// just registered). Asked at every poll.
    fn reload_now(&self) -> bool {
        false
    }
}

/// Fetches from `remote` and builds; the text is kept by the source only once it built, so
/// a bad reply never becomes the config of the next start.
fn fetch_and_build(
    base: &Flags,
    remote: &dyn Fetch,
    expand: Option<&Expander>,
) -> Result<(Live, Vec<String>), LoadError> {
    let text = remote.fetch().map_err(|reason| {
        LoadError::Config(ConfigError::Read {
            path: remote.origin(),
            reason,
        })
    })?;
    let built = build_text(base, &text, &remote.origin(), expand)?;
    remote.keep(&text);
    Ok(built)
}

/// One applied configuration and everything derived from it.
#[derive(Debug)]
pub struct Live {
    pub config: Config,
    /// Command line, environment and flagfile, with the config's `options` under them.
    pub flags: Flags,
    pub matcher: FimMatcher,
    pub fim: FimStatus,
    /// 1 for the start-up config, +1 for each applied reload.
    pub generation: u64,
}

/// A shared, swappable view of the current [`Live`].
#[derive(Clone, Debug)]
pub struct ConfigHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: RwLock<Arc<Live>>,
    subscribers: Mutex<Vec<Sender<u64>>>,
}

impl ConfigHandle {
    pub fn new(live: Live) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: RwLock::new(Arc::new(live)),
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Live> {
        // A panic elsewhere while holding the lock leaves a valid Arc behind: keep using it.
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn generation(&self) -> u64 {
        self.current().generation
    }

    /// A channel that receives the new generation after every change. It holds at most one
    /// pending notification (changes coalesce): on receipt, read [`ConfigHandle::current`].
    pub fn subscribe(&self) -> Receiver<u64> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Makes `live` current (its generation is set to the previous one + 1) and notifies.
    pub fn publish(&self, mut live: Live) -> u64 {
        let generation = {
            let mut cur = self
                .inner
                .current
                .write()
                .unwrap_or_else(|e| e.into_inner());
            live.generation = cur.generation + 1;
            *cur = Arc::new(live);
            cur.generation
        };
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|tx| match tx.try_send(generation) {
                // Full: a notification is already pending; the reader will see the newest.
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Disconnected(_)) => false,
            });
        generation
    }
}

/// Why a config could not be applied. Every variant names the file and the key path or line.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bad `options` value (the flag error names `options.<key>`).
    #[error("{origin}: {source}")]
    Options {
        origin: String,
        #[source]
        source: FlagError,
    },
    #[error("installing the SIGHUP handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// Loads the config at `path` (None: the embedded default) and applies its options on top of
/// `base`; `expand` evaluates `file_paths_query` (None: its queries are not run).
pub fn build(
    base: &Flags,
    path: Option<&Path>,
    expand: Option<&Expander>,
) -> Result<(Live, Vec<String>), LoadError> {
    apply(base, load(path)?, expand)
}

/// [`build`] from config text that came from `origin` (a fetched config: relative pack paths
/// have no folder to be relative to).
pub fn build_text(
    base: &Flags,
    text: &str,
    origin: &str,
    expand: Option<&Expander>,
) -> Result<(Live, Vec<String>), LoadError> {
    apply(base, super::parse(text, origin, None)?, expand)
}

fn apply(
    base: &Flags,
    parsed: super::Parsed,
    expand: Option<&Expander>,
) -> Result<(Live, Vec<String>), LoadError> {
    let mut config = parsed.config;
    let mut flags = base.clone();
    let mut warnings = parsed.warnings;
    warnings.extend(
        flags
            .apply_config_options(&config.options)
            .map_err(|source| LoadError::Options {
                origin: config.origin.clone(),
                source,
            })?,
    );
    if let Some(expand) = expand
        && !config.file_paths_query.is_empty()
    {
        warnings.extend(expand(&mut config, &flags));
    }
    let matcher = config.fim_matcher();
    let fim = fim_status(&flags, config.watched_categories());
    Ok((
        Live {
            config,
            flags,
            matcher,
            fim,
            generation: 1,
        },
        warnings,
    ))
}

impl Live {
    /// What the file source follows.
    pub fn fim_state(&self) -> FimState {
        FimState {
            on: self.fim.on,
            matcher: self.matcher.clone(),
            report_reads: !self.config.file_accesses.is_empty(),
        }
    }
}

/// The daemon's config owner: start-up load, reloads, persistence of the effective flags.
pub struct Service {
    /// Command line, environment and flagfile: fixed for the life of the process.
    base: Flags,
    path: Option<PathBuf>,
    /// The `tls` config plugin; `path` is not read when it is set.
    remote: Option<Arc<dyn Fetch>>,
    expand: Option<Expander>,
    handle: ConfigHandle,
    reload_requested: Arc<AtomicBool>,
    last_attempt: Instant,
    last_error: Option<String>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("path", &self.path)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Loads the start-up config (a failure here is fatal: there is no last good config yet),
    /// logs its warnings and the FIM status line, and installs the SIGHUP handler.
    pub fn start(
        base: &Flags,
        expand: Option<Expander>,
        remote: Option<Arc<dyn Fetch>>,
    ) -> Result<Self, LoadError> {
        let path = base.path("config_path");
        let mut last_error = None;
        let (live, warnings) = match &remote {
            None => build(base, path.as_deref(), expand.as_ref())?,
            Some(r) => match fetch_and_build(base, r.as_ref(), expand.as_ref()) {
                Ok(built) => built,
                Err(e) => {
                    // Start with the last config the server gave (or none) and keep asking.
                    let origin = format!("{} (cached)", r.origin());
                    let cached = r
                        .cached()
                        .and_then(|t| build_text(base, &t, &origin, expand.as_ref()).ok());
                    let what = if cached.is_some() {
                        "the last config it delivered"
                    } else {
                        "an empty config"
                    };
                    log::error!("config from {}: {e}; starting with {what}", r.origin());
                    last_error = Some(e.to_string());
                    match cached {
                        Some(built) => built,
                        None => build_text(base, "{}", &origin, expand.as_ref())?,
                    }
                }
            },
        };
        log::info!("config: {} (sha1 {})", live.config.origin, live.config.hash);
        for w in &warnings {
            log::warn!("config: {w}");
        }
        for w in live.flags.warnings() {
            log::warn!("{w}");
        }
        log::info!("{}", live.fim);
        let reload_requested = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, reload_requested.clone())
            .map_err(LoadError::Signal)?;
        Ok(Self {
            base: base.clone(),
            path,
            remote,
            expand,
            handle: ConfigHandle::new(live),
            reload_requested,
            last_attempt: Instant::now(),
            last_error,
        })
    }

    /// The handle to give to components that follow the config.
    pub fn handle(&self) -> ConfigHandle {
        self.handle.clone()
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Live> {
        self.handle.current()
    }

    /// The last reload error, if the latest attempt failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Call often (the daemon does every 100 ms): reloads when SIGHUP arrived or
    /// `config_refresh` seconds passed since the last attempt, and persists the result to
    /// `store`. Returns true when a new config was applied.
    pub fn poll(&mut self, store: Option<&Store>) -> bool {
        let flags = &self.current().flags;
        // A fetched config that failed is asked for again sooner (osquery's accelerated
        // refresh).
        let refresh = if self.remote.is_some() && self.last_error.is_some() {
            flags.u64("config_accelerated_refresh")
        } else {
            flags.config_refresh()
        };
        let due = refresh > 0 && self.last_attempt.elapsed() >= Duration::from_secs(refresh);
        let asked = self.remote.as_ref().is_some_and(|r| r.reload_now());
        if !self.reload_requested.swap(false, Ordering::SeqCst) && !due && !asked {
            return false;
        }
        let applied = self.reload().is_ok();
        if let Some(store) = store {
            self.persist(store, true);
        }
        applied
    }

    /// Reloads now. On failure the previous config stays and the error (naming the key or
    /// line) is logged and returned.
    pub fn reload(&mut self) -> Result<u64, LoadError> {
        self.last_attempt = Instant::now();
        let old = self.current();
        let built = match &self.remote {
            None => build(&self.base, self.path.as_deref(), self.expand.as_ref()),
            Some(r) => fetch_and_build(&self.base, r.as_ref(), self.expand.as_ref()),
        };
        match built {
            Ok((live, warnings)) => {
                self.last_error = None;
                if live.config == old.config && live.flags.changed(&old.flags).is_empty() {
                    log::debug!("config unchanged ({})", live.config.origin);
                    return Ok(old.generation);
                }
                for w in &warnings {
                    log::warn!("config: {w}");
                }
                for w in live
                    .flags
                    .warnings()
                    .iter()
                    .skip(self.base.warnings().len())
                {
                    log::warn!("{w}");
                }
                let changed = old.flags.changed(&live.flags);
                let fim_changed = live.fim != old.fim;
                let line = live.fim.to_string();
                let origin = live.config.origin.clone();
                let generation = self.handle.publish(live);
                log::info!("config reloaded from {origin} (generation {generation})");
                if !changed.is_empty() {
                    log::info!(
                        "flags changed by the config: {} (settings read only at start-up apply after a restart)",
                        changed.join(", ")
                    );
                }
                if fim_changed {
                    log::info!("{line}");
                }
                Ok(generation)
            }
            Err(e) => {
                log::error!("config reload failed; keeping the last good config: {e}");
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Writes the effective flags under [`crate::flags::persist::META_KEY`] for `osprey query`.
    pub fn persist(&self, store: &Store, running: bool) {
        let live = self.current();
        let mut p = DaemonFlags::new(&live.flags, live.fim.to_string());
        p.running = running;
        p.config_origin = live.config.origin.clone();
        p.config_hash = live.config.hash.clone();
        p.config_generation = live.generation;
        p.config_error = self.last_error.clone();
        if let Err(e) = p.save(store) {
            log::warn!("saving the effective flags: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Source;

    fn base(args: &[String]) -> Flags {
        let mut f = Flags::default();
        f.parse_args(args, Source::CommandLine).unwrap();
        f
    }

    #[test]
    fn reload_keeps_the_last_good_config_and_notifies_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.conf");
        std::fs::write(&path, r#"{"options": {"events_max": 7}}"#).unwrap();
        let mut svc = Service::start(
            &base(&[format!("--config_path={}", path.display())]),
            None,
            None,
        )
        .unwrap();
        let handle = svc.handle();
        let rx = handle.subscribe();
        assert_eq!(handle.generation(), 1);
        assert_eq!(
            (
                handle.current().flags.events_max(),
                handle.current().flags.source("events_max")
            ),
            (7, Source::Config)
        );

        std::fs::write(&path, r#"{"options": {"events_max": "many"}}"#).unwrap();
        let err = svc.reload().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: options.events_max: bad value \"many\" for --events_max: expected a non-negative integer",
                path.display()
            )
        );
        assert_eq!(svc.last_error(), Some(err.as_str()));
        assert_eq!(handle.current().flags.events_max(), 7);
        assert!(
            rx.try_recv().is_err(),
            "no notification for a failed reload"
        );

        std::fs::write(&path, "{\n  \"options\": {\n    \"events_max\": 8,\n  }\n}").unwrap();
        let err = svc.reload().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}:4:3: JSON syntax error: trailing comma", path.display())
        );
        assert_eq!(handle.current().flags.events_max(), 7);

        // Unchanged content: no new generation.
        std::fs::write(&path, r#"{"options": {"events_max": 7}}"#).unwrap();
        assert_eq!(svc.reload().unwrap(), 1);
        assert!(svc.last_error().is_none());

        std::fs::write(
            &path,
            r#"{"options": {"events_max": 9, "enable_file_events": true},
                "file_paths": {"etc": ["/etc/%%"]}}"#,
        )
        .unwrap();
        assert_eq!(svc.reload().unwrap(), 2);
        assert_eq!(rx.try_recv(), Ok(2));
        let live = handle.current();
        assert_eq!(live.flags.events_max(), 9);
        assert_eq!(live.matcher.category("/etc/hosts"), Some("etc"));
        assert_eq!(
            live.fim.to_string(),
            "FIM on: enable_file_events=true (config), 1 category"
        );
    }

    #[test]
    fn command_line_beats_config_options_across_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(
            &path,
            r#"{"options": {"events_max": 7, "events_expiry": 5}}"#,
        )
        .unwrap();
        let svc = Service::start(
            &base(&[
                format!("--config_path={}", path.display()),
                "--events_max=3".into(),
            ]),
            None,
            None,
        )
        .unwrap();
        let live = svc.current();
        assert_eq!(
            (live.flags.events_max(), live.flags.source("events_max")),
            (3, Source::CommandLine)
        );
        assert_eq!(
            (
                live.flags.events_expiry(),
                live.flags.source("events_expiry")
            ),
            (5, Source::Config)
        );
    }

    #[test]
    fn coalesced_notifications_and_dropped_subscribers() {
        let (live, _) = build(&Flags::default(), None, None).unwrap();
        let handle = ConfigHandle::new(live);
        let rx = handle.subscribe();
        let gone = handle.subscribe();
        drop(gone);
        for _ in 0..3 {
            let (live, _) = build(&Flags::default(), None, None).unwrap();
            handle.publish(live);
        }
        // One pending message (the first change); the current generation is the newest.
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(rx.try_recv().is_err());
        assert_eq!(handle.generation(), 4);
        assert_eq!(handle.inner.subscribers.lock().unwrap().len(), 1);
    }
}
