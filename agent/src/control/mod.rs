//! The control plane: everything that is not the hot event path, as tasks on one tokio
//! runtime with at most two worker threads. Today: the config service (start-up load, SIGHUP
//! and `--config_refresh` reloads, `file_paths_query`) and the once-a-second counter report;
//! the scheduler, loggers, remote API, extension socket and D-Bus readers join it here.
//!
//! It sits above `config` and `sql`: it runs `file_paths_query` for the config service
//! ([`expander`]) and gives SQL the config-aware `osquery_flags` view ([`flags_view`]), so
//! neither of those two imports the other.

use std::{sync::Arc, time::Duration};

use rusqlite::types::Value;

use crate::{
    config::{
        Config, Service,
        live::{Expander, Fetch, Live, LoadError, build},
    },
    fim::FimState,
    flags::{Flags, persist},
    rt::{Shutdown, Watch, supervise::Supervisor},
    sql::{Engine, TableEnv},
    storage::Store,
};

/// Worker threads of the control-plane runtime.
pub const WORKERS: usize = 2;

/// The control plane of a daemon: its runtime, the config service and what follows it.
pub struct Control {
    runtime: tokio::runtime::Runtime,
    config: Service,
    fim: Watch<FimState>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error("starting the control-plane runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Control {
    /// Builds the runtime and loads the start-up config (fatal on error: there is no last
    /// good config yet).
    pub fn start(base: &Flags) -> Result<Self, ControlError> {
        Self::start_on(runtime()?, base, None)
    }

    /// [`Control::start`] on `runtime`, with the config from `remote` (the `tls` config
    /// plugin, which needs the runtime first) instead of `config_path` when it is set.
    pub fn start_on(
        runtime: tokio::runtime::Runtime,
        base: &Flags,
        remote: Option<Arc<dyn Fetch>>,
    ) -> Result<Self, ControlError> {
        let config = Service::start(base, Some(expander()), remote)?;
        let fim = Watch::new(config.current().fim_state());
        Ok(Self {
            runtime,
            config,
            fim,
        })
    }

    /// The config in force now.
    pub fn live(&self) -> Arc<Live> {
        self.config.current()
    }

    /// The FIM state the file source follows.
    pub fn fim(&self) -> &Watch<FimState> {
        &self.fim
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Writes the effective flags for `osprey query` (`running` false at the end).
    pub fn persist(&self, store: &Store, running: bool) {
        self.config.persist(store, running);
    }

    /// Starts the config refresh task: SIGHUP and `--config_refresh` reloads, persisted to
    /// `store`; after each applied reload the FIM state is replaced and `on_change` runs
    /// (the daemon re-programs the kernel filters there). Returns the service when the
    /// shutdown comes, for the final persist.
    pub fn spawn_config_refresh(
        self,
        sup: &Supervisor,
        store: Arc<Store>,
        on_change: impl Fn(&Arc<Live>) + Send + 'static,
    ) -> Running {
        let Control {
            runtime,
            mut config,
            fim,
        } = self;
        let shutdown = sup.shutdown().clone();
        let follower = fim.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        sup.spawn_task(runtime.handle(), "config", async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !shutdown.is_set() {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait() => break,
                }
                // A reload reads a file and may run SQL: off the async workers.
                if tokio::task::block_in_place(|| config.poll(Some(&store))) {
                    let live = config.current();
                    follower.set(live.fim_state());
                    on_change(&live);
                    // Said after the kernel filters and subscribers follow it: from here on,
                    // events are judged by this config.
                    log::info!("config generation {} in force", live.generation);
                }
            }
            let _ = tx.send(config);
        });
        Running {
            runtime,
            config: rx,
            fim,
        }
    }
}

/// The control-plane runtime: [`WORKERS`] threads, timers and I/O.
pub fn runtime() -> Result<tokio::runtime::Runtime, ControlError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("control")
        .enable_all()
        .build()
        .map_err(ControlError::Runtime)
}

/// The control plane while the daemon runs.
pub struct Running {
    runtime: tokio::runtime::Runtime,
    config: tokio::sync::oneshot::Receiver<Service>,
    fim: Watch<FimState>,
}

impl Running {
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    pub fn fim(&self) -> &Watch<FimState> {
        &self.fim
    }

    /// Blocks the calling thread until `shutdown`.
    pub fn wait(&self, shutdown: &Shutdown) {
        self.runtime.block_on(shutdown.wait());
    }

    /// Waits for the config task and stops the runtime; the config service comes back for
    /// the final persist (None if its task failed).
    pub fn stop(self) -> Option<Service> {
        let svc = self.runtime.block_on(self.config).ok();
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        svc
    }
}

/// The `file_paths_query` runner handed to the config service: each query runs on live
/// tables (no event store), and `osquery_flags` shows the flags being applied (never a config
/// load, so a query that reads it cannot recurse).
pub fn expander() -> Expander {
    Arc::new(|config: &mut Config, flags: &Flags| {
        let engine = match Engine::new(table_env(None, flags.clone())) {
            Ok(e) => e.with_limits(crate::sql::guard::Limits::unattended(flags)),
            Err(e) => return vec![format!("file_paths_query: no SQL engine: {e}")],
        };
        config.expand_file_paths_query(&mut |sql| {
            let rs = engine.query(sql)?;
            let col = rs
                .columns
                .iter()
                .position(|c| c == "path")
                .ok_or("its result has no `path` column")?;
            Ok(rs
                .rows
                .iter()
                .filter_map(|row| match row.get(col) {
                    Some(Value::Text(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
                .collect())
        })
    })
}

/// A SQL environment whose `osquery_flags` is fixed to `flags` (plus a live daemon's, if any).
fn table_env(store: Option<Arc<Store>>, flags: Flags) -> TableEnv {
    TableEnv::new(store, Arc::new(flags))
}

/// What `osquery_flags` shows in `osprey query`/`shell`: with a live daemon on `store`, its
/// flags (shell-only ones stay `local`) and FIM status; otherwise `local` with the options
/// of the config it names (or the embedded default) applied. `file_paths_query` is not run.
pub fn flags_view(store: Option<&Store>, local: &Flags) -> (Flags, String) {
    if let Some(v) = persist::daemon_view(store, local) {
        return v;
    }
    match build(local, local.path("config_path").as_deref(), None) {
        Ok((live, _)) => {
            let status = live.fim.to_string();
            (live.flags, status)
        }
        Err(e) => (local.clone(), format!("FIM unknown: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{
        Source,
        persist::{DaemonFlags, META_KEY},
    };

    #[test]
    fn view_shows_a_live_daemon_and_otherwise_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_primary(&dir.path().join("db")).unwrap();
        let mut daemon = Flags::default();
        daemon
            .apply_config_options(&[("events_max".into(), "77".into())])
            .unwrap();
        let mut p = DaemonFlags::new(&daemon, "FIM off: test".into());
        p.save(&store).unwrap();
        assert_eq!(DaemonFlags::load(&store), Some(p.clone()));
        let (f, status) = flags_view(Some(&store), &Flags::default());
        assert_eq!(
            (f.get("events_max"), f.source("events_max"), status.as_str()),
            ("77", Source::Config, "FIM off: test")
        );

        // Gone: exited cleanly, or its pid no longer exists. This process's view then, with
        // the embedded default config's options.
        let local = |p: &DaemonFlags| {
            p.save(&store).unwrap();
            let (f, status) = flags_view(Some(&store), &Flags::default());
            (
                f.get("events_max").to_owned(),
                f.source("config_refresh"),
                status,
            )
        };
        let want = (
            "50000".to_owned(),
            Source::Config,
            "FIM off: enable_file_events=false (default)".to_owned(),
        );
        p.running = false;
        assert_eq!(local(&p), want);
        p.running = true;
        p.pid = u32::MAX;
        assert_eq!(local(&p), want);
        // Undecodable bytes are "no daemon", not an error.
        store.put_meta(META_KEY, b"\xff{", false).unwrap();
        assert_eq!(DaemonFlags::load(&store), None);
        assert_eq!(
            flags_view(Some(&store), &Flags::default())
                .0
                .get("events_max"),
            "50000"
        );
    }

    #[test]
    fn osquery_flags_table_shows_sources_and_alias_rows() {
        use rusqlite::types::Value;
        let mut local = Flags::default();
        local
            .parse_args(
                &["--disable_endpointsecurity_fim=false".to_owned()],
                Source::CommandLine,
            )
            .unwrap();
        let engine =
            Engine::new(TableEnv::new(None, Arc::new(local)).with_flags_view(Arc::new(flags_view)))
                .unwrap();
        let rs = engine
            .query(
                "SELECT name, value, source FROM osquery_flags WHERE name IN \
                 ('enable_file_events', 'disable_endpointsecurity_fim', 'config_refresh') \
                 ORDER BY name",
            )
            .unwrap();
        let text = |s: &str| Value::Text(s.to_owned());
        assert_eq!(
            rs.rows,
            vec![
                vec![text("config_refresh"), text("0"), text("config")],
                vec![
                    text("disable_endpointsecurity_fim"),
                    text("false"),
                    text("command line")
                ],
                vec![
                    text("enable_file_events"),
                    text("true"),
                    text("command line")
                ],
            ]
        );
    }

    #[test]
    fn file_paths_query_rows_become_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(
            &path,
            r#"{"options": {"enable_file_events": true},
                "file_paths": {"etc": ["/etc/%"]},
                "file_paths_query": {
                  "etc": ["SELECT '/etc/ssh/%%' AS path UNION ALL SELECT '' AS path"],
                  "db": ["SELECT value || '/%%' AS path FROM osquery_flags WHERE name = 'database_path'"],
                  "bad": ["SELECT 'relative' AS path", "SELECT 1 AS nopath", "SELEC"]
                }}"#,
        )
        .unwrap();
        let mut base = Flags::default();
        base.parse_args(
            &[
                format!("--config_path={}", path.display()),
                "--database_path=/srv/db".into(),
            ],
            Source::CommandLine,
        )
        .unwrap();
        let (live, warnings) = build(&base, Some(&path), Some(&expander())).unwrap();
        assert_eq!(
            live.config.queried_paths,
            [
                ("etc".to_owned(), vec!["/etc/ssh/%%".to_owned()]),
                // Read through osquery_flags, which shows the flags being applied: no config reload.
                ("db".to_owned(), vec!["/srv/db/%%".to_owned()]),
                ("bad".to_owned(), vec![]),
            ]
        );
        assert_eq!(
            warnings[..2],
            [
                "file_paths_query.bad[0]: row ignored: \"relative\" is not an absolute path (osquery resolves it against its working directory; Osprey refuses it)",
                "file_paths_query.bad[1]: its result has no `path` column",
            ]
        );
        // The rest of SQLite's message belongs to the SQL engine.
        assert!(
            warnings[2].starts_with("file_paths_query.bad[2]: near \"SELEC\": syntax error"),
            "{warnings:?}"
        );
        assert_eq!(warnings.len(), 3);
        assert_eq!(live.matcher.category("/etc/ssh/a/b"), Some("etc"));
        assert_eq!(live.matcher.category("/srv/db/x/y"), Some("db"));
        assert_eq!(
            live.fim.to_string(),
            "FIM on: enable_file_events=true (config), 2 categories"
        );
        // The file's own keys round-trip without the query results.
        assert!(live.config.to_json()["file_paths"]["db"].is_null());
    }
}
