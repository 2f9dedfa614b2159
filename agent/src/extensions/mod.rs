//! osquery's extension manager: the Thrift `ExtensionManager` service (strict binary protocol,
//! buffered transport) on a UNIX socket (`--extensions_socket`, mode 0600), so that
//! osquery-python, osquery-go and C++ SDK clients talk to Osprey as to osquery.
//!
//! The service and struct shapes come from `osquery.thrift` (ours, written from osquery's
//! published IDL); `osquery.rs` is generated from it by Debian's `thrift-compiler` 0.17 and
//! checked in (an xtask test regenerates it and fails on a difference).
//!
//! Served here: `ping`, `query`, `getQueryColumns`, `options`, `extensions`,
//! `registerExtension`/`deregisterExtension` (the registry below), and `call` on the core
//! `table` registry (columns and generate). Extensions' tables are SQL tables of every engine
//! of the daemon ([`ExtensionTables`]; rows by a `call` into the extension at
//! `<socket>.<uuid>`, one connection per call, `--extensions_timeout` per call). Every
//! `--extensions_interval` each extension is pinged; one that fails two pings in a row
//! (after a grace time of `--extensions_timeout` from its registration) is deregistered.
//! Extensions' logger plugins are sinks of the loggers' buffer ([`ExtensionLogger`]), a
//! config plugin can be where the config comes from ([`ExtensionConfig`]). Not yet:
//! extensions' distributed plugins.
//!
//! Architecture invariant: the [`Registry`] has one lock, and it is never held across a call
//! to an extension or a query: every method copies what it needs and releases it.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use osprey_sdk::osquery::{
    ExtensionManagerSyncHandler, ExtensionManagerSyncProcessor, ExtensionPluginRequest,
    ExtensionRegistry, ExtensionResponse, ExtensionRouteUUID, ExtensionStatus,
    ExtensionSyncHandler, InternalExtensionInfo, InternalExtensionList, InternalOptionInfo,
    InternalOptionList, TExtensionSyncClient as _,
};
use thrift::server::TProcessor as _;

use crate::{
    flags::Flags,
    rt::Shutdown,
    sql::{DynamicTables, Engine, TableEnv, vtab},
};

/// A Thrift client of one extension.
type Client = osprey_sdk::client::Extension;

/// The registries osquery routes plugins through; an extension may register in these.
pub const REGISTRIES: &[&str] = &["table", "config", "logger", "distributed"];

pub mod autoload;
mod config;
mod logger;
mod storage;
mod table;
mod via_manager;

pub use config::ExtensionConfig;
pub use logger::ExtensionLogger;
pub use via_manager::{ViaManager, uninstall};

/// The extensions registered now, and the ids given so far; where they listen
/// (`<socket>.<uuid>`) and how long a call into one may take.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    socket: PathBuf,
    timeout: Duration,
    /// Bumped at every registration and deregistration (engines add new tables then).
    generation: AtomicU64,
    /// Connections closed because the peer sent what cannot be a request.
    pub counters: Arc<crate::rt::counters::ExtensionCounters>,
}

#[derive(Debug, Default)]
struct Inner {
    last_uuid: i64,
    extensions: BTreeMap<i64, Registered>,
}

#[derive(Debug, Clone)]
struct Registered {
    info: InternalExtensionInfo,
    plugins: ExtensionRegistry,
    /// When it registered: an SDK starts listening on its socket only after that, so pings
    /// within the first `timeout` do not count.
    since: std::time::Instant,
    /// Pings failed in a row.
    failures: u32,
}

fn status(code: i32, message: impl Into<String>, uuid: i64) -> ExtensionStatus {
    ExtensionStatus {
        code: Some(code),
        message: Some(message.into()),
        uuid: Some(uuid),
    }
}

impl Registry {
    /// A registry whose extensions listen beside `socket` and get `timeout` per call.
    pub fn new(socket: PathBuf, timeout: Duration) -> Self {
        Self {
            socket,
            timeout,
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One call into extension `uuid` on a connection of its own (opened for it, closed
    /// after it: a call that fails or times out never leaves a half-read stream behind).
    pub fn call(
        &self,
        uuid: i64,
        registry: &str,
        item: &str,
        request: ExtensionPluginRequest,
    ) -> Result<ExtensionResponse, String> {
        let mut client = self.connect(uuid)?;
        client
            .call(registry.to_owned(), item.to_owned(), request)
            .map_err(|e| format!("extension {uuid}: {e}"))
    }

    fn connect(&self, uuid: i64) -> Result<Client, String> {
        let mut path = self.socket.clone().into_os_string();
        path.push(format!(".{uuid}"));
        osprey_sdk::client::extension(Path::new(&path), self.timeout)
            .map_err(|e| format!("extension {uuid} at {e}"))
    }

    /// Whether extension `uuid` answers a ping.
    pub fn ping(&self, uuid: i64) -> Result<(), String> {
        let mut client = self.connect(uuid)?;
        let st = client
            .ping()
            .map_err(|e| format!("extension {uuid}: {e}"))?;
        match st.code {
            Some(0) => Ok(()),
            _ => Err(format!(
                "extension {uuid}: ping answered {:?}",
                st.message.unwrap_or_default()
            )),
        }
    }

    /// The rows of extension table `name` (from whichever extension owns it now).
    /// The extension that registered plugin `item` in `registry`.
    pub fn owner(&self, registry: &str, item: &str) -> Option<i64> {
        self.lock()
            .extensions
            .iter()
            .find(|(_, e)| {
                e.plugins
                    .get(registry)
                    .is_some_and(|t| t.contains_key(item))
            })
            .map(|(k, _)| *k)
    }

    fn call_table(
        &self,
        name: &str,
        request: ExtensionPluginRequest,
    ) -> Result<Vec<BTreeMap<String, String>>, String> {
        self.call_plugin("table", name, request)
            .map_err(|e| e.unwrap_or_else(|| "its extension is gone".to_owned()))
    }

    /// `call(registry, item, request)` into the extension that registered that plugin: its
    /// rows, or the error (None: no extension has that plugin now).
    pub fn call_plugin(
        &self,
        registry: &str,
        item: &str,
        request: ExtensionPluginRequest,
    ) -> Result<Vec<BTreeMap<String, String>>, Option<String>> {
        let uuid = self.owner(registry, item).ok_or(None)?;
        let r = self.call(uuid, registry, item, request).map_err(Some)?;
        let st = r.status.unwrap_or_default();
        if st.code.unwrap_or(0) != 0 {
            return Err(Some(st.message.unwrap_or_default()));
        }
        Ok(r.response.unwrap_or_default())
    }

    /// The name extension `uuid` registered with.
    pub fn name_of(&self, uuid: i64) -> Option<String> {
        self.lock()
            .extensions
            .get(&uuid)
            .map(|e| e.info.name.clone().unwrap_or_default())
    }

    /// Records a ping's answer; true when the extension is to be dropped: a second failure in
    /// a row, outside the grace time after its registration.
    fn pinged(&self, uuid: i64, ok: bool) -> bool {
        let mut g = self.lock();
        let Some(e) = g.extensions.get_mut(&uuid) else {
            return false;
        };
        if ok {
            e.failures = 0;
            return false;
        }
        if e.since.elapsed() < self.timeout {
            return false;
        }
        e.failures += 1;
        e.failures >= 2
    }

    /// The names of the extensions registered now.
    pub fn names(&self) -> Vec<String> {
        self.lock()
            .extensions
            .values()
            .map(|e| e.info.name.clone().unwrap_or_default())
            .collect()
    }

    /// The ids registered now.
    pub fn uuids(&self) -> Vec<i64> {
        self.lock().extensions.keys().copied().collect()
    }

    /// Registers an extension and its plugins; refused (code 1) for an unknown registry, a
    /// name already registered (by another extension, or a core table in `core_tables`), or
    /// an extension name already registered.
    pub fn register(
        &self,
        info: InternalExtensionInfo,
        plugins: ExtensionRegistry,
        core_tables: &[&str],
    ) -> ExtensionStatus {
        let name = info.name.clone().unwrap_or_default();
        if name.is_empty() {
            return status(1, "an extension needs a name", 0);
        }
        if let Some(r) = plugins.keys().find(|r| !REGISTRIES.contains(&r.as_str())) {
            return status(
                1,
                format!("unknown registry {r:?} (known: {REGISTRIES:?})"),
                0,
            );
        }
        // The same name again: an extension restarted after a crash, before the pings found
        // the old one dead. The old one is asked now (outside the lock); gone, it makes room.
        let same = self
            .lock()
            .extensions
            .iter()
            .find(|(_, e)| e.info.name.as_deref() == Some(&name))
            .map(|(k, _)| *k);
        if let Some(old) = same
            && let Err(e) = self.ping(old)
        {
            log::warn!("{e}: replaced by a new registration of {name:?}");
            self.deregister(old);
        }
        let mut g = self.lock();
        if g.extensions
            .values()
            .any(|e| e.info.name.as_deref() == Some(&name))
        {
            return status(
                1,
                format!("an extension named {name:?} is already registered"),
                0,
            );
        }
        for (registry, items) in &plugins {
            for item in items.keys() {
                if registry == "table" && core_tables.contains(&item.as_str()) {
                    return status(1, format!("table {item:?} is a core table"), 0);
                }
                let taken = g.extensions.values().find(|e| {
                    e.plugins
                        .get(registry)
                        .is_some_and(|p| p.contains_key(item))
                });
                if let Some(e) = taken {
                    return status(
                        1,
                        format!(
                            "{registry} plugin {item:?} is already registered by {:?}",
                            e.info.name.as_deref().unwrap_or("")
                        ),
                        0,
                    );
                }
            }
        }
        g.last_uuid += 1;
        let uuid = g.last_uuid;
        g.extensions.insert(
            uuid,
            Registered {
                info,
                plugins,
                since: std::time::Instant::now(),
                failures: 0,
            },
        );
        self.generation.fetch_add(1, Ordering::SeqCst);
        log::info!("extension {name:?} registered as {uuid}");
        status(0, "OK", uuid)
    }

    pub fn deregister(&self, uuid: i64) -> ExtensionStatus {
        let removed = self.lock().extensions.remove(&uuid);
        match removed {
            Some(e) => {
                self.generation.fetch_add(1, Ordering::SeqCst);
                log::info!(
                    "extension {:?} ({uuid}) deregistered",
                    e.info.name.as_deref().unwrap_or("")
                );
                status(0, "OK", uuid)
            }
            None => status(1, format!("no extension {uuid}"), uuid),
        }
    }

    pub fn list(&self) -> InternalExtensionList {
        self.lock()
            .extensions
            .iter()
            .map(|(k, v)| (*k, v.info.clone()))
            .collect()
    }
}

/// The extensions' tables, for the SQL engines of the daemon.
#[derive(Debug, Clone)]
pub struct ExtensionTables(pub Arc<Registry>);

impl DynamicTables for ExtensionTables {
    fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::SeqCst)
    }

    fn tables(&self) -> Vec<Arc<dyn vtab::Table>> {
        let g = self.0.lock();
        g.extensions
            .values()
            .filter_map(|e| e.plugins.get("table"))
            .flat_map(|t| t.iter())
            .map(|(name, routes)| {
                Arc::new(table::ExtensionTable {
                    name: table::table_name(name),
                    columns: table::columns_of(routes),
                    source: self.0.clone(),
                }) as Arc<dyn vtab::Table>
            })
            .collect()
    }

    fn plugins(&self) -> Vec<(String, String, i64)> {
        let g = self.0.lock();
        let mut out = Vec::new();
        for (uuid, e) in &g.extensions {
            for (registry, items) in &e.plugins {
                out.extend(items.keys().map(|i| (registry.clone(), i.clone(), *uuid)));
            }
        }
        out
    }

    fn extensions(&self) -> Vec<crate::sql::ExtensionRow> {
        let g = self.0.lock();
        g.extensions
            .iter()
            .map(|(uuid, e)| crate::sql::ExtensionRow {
                uuid: *uuid,
                name: e.info.name.clone().unwrap_or_default(),
                version: e.info.version.clone().unwrap_or_default(),
                sdk_version: e.info.sdk_version.clone().unwrap_or_default(),
                path: format!("{}.{uuid}", self.0.socket.display()),
            })
            .collect()
    }
}

/// The manager's side of one connection: its own SQL engine (connections are served on
/// threads of their own), the shared registry and the flags to report.
struct Handler {
    engine: Engine,
    registry: Arc<Registry>,
    flags: Arc<Flags>,
    /// The daemon's store, for extension storage.
    store: Option<Arc<crate::storage::Store>>,
}

fn rows_of(rs: &crate::sql::ResultSet) -> Vec<BTreeMap<String, String>> {
    rs.rows
        .iter()
        .map(|r| {
            rs.columns
                .iter()
                .cloned()
                .zip(r.iter().map(crate::sql::text_of))
                .collect()
        })
        .collect()
}

fn answer(result: Result<Vec<BTreeMap<String, String>>, String>) -> ExtensionResponse {
    match result {
        Ok(rows) => ExtensionResponse {
            status: Some(status(0, "OK", 0)),
            response: Some(rows),
        },
        Err(e) => ExtensionResponse {
            status: Some(status(1, e, 0)),
            response: Some(Vec::new()),
        },
    }
}

impl Handler {
    /// `call("table", name, {"action": ...})` on a core table: its columns, or its rows
    /// (`generate`, every column).
    fn core_table(&self, item: &str, request: &ExtensionPluginRequest) -> ExtensionResponse {
        let Some(table) = self.engine.table(item) else {
            return answer(Err(format!("no table {item:?}")));
        };
        match request.get("action").map(String::as_str) {
            Some("columns") => answer(Ok(table
                .columns()
                .iter()
                .map(|c| {
                    BTreeMap::from([
                        ("id".to_owned(), "column".to_owned()),
                        ("name".to_owned(), c.name.to_owned()),
                        ("type".to_owned(), c.ty.sql_name().to_owned()),
                        ("op".to_owned(), "0".to_owned()),
                    ])
                })
                .collect())),
            Some("generate") => answer(
                self.engine
                    .query(&format!("SELECT * FROM \"{item}\""))
                    .map(|rs| rows_of(&rs)),
            ),
            other => answer(Err(format!(
                "table action {other:?} is not served (columns, generate)"
            ))),
        }
    }
}

impl Handler {
    /// `call("table", name, …)` for an extension's table: forwarded to the extension that
    /// owns it (as osquery routes registry calls), its answer returned as it is.
    fn extension_table(&self, item: &str, request: ExtensionPluginRequest) -> ExtensionResponse {
        match self.registry.owner("table", item) {
            None => answer(Err(format!("no table {item:?}"))),
            Some(uuid) => self
                .registry
                .call(uuid, "table", item, request)
                .unwrap_or_else(|e| answer(Err(e))),
        }
    }
}

impl ExtensionSyncHandler for Handler {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        Ok(status(0, "OK", 0))
    }

    fn handle_call(
        &self,
        registry: String,
        item: String,
        request: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        Ok(match registry.as_str() {
            "table" if self.engine.table(&item).is_none() => self.extension_table(&item, request),
            "table" => self.core_table(&item, &request),
            "storage" => match &self.store {
                Some(store) => storage::call(store, &self.registry, &item, &request),
                None => answer(Err("storage: this manager has no store".to_owned())),
            },
            other => answer(Err(format!(
                "the manager serves no {other:?} plugin {item:?} in this build"
            ))),
        })
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        // An extension cannot stop the agent.
        Ok(())
    }
}

impl ExtensionManagerSyncHandler for Handler {
    fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
        Ok(self.registry.list())
    }

    fn handle_options(&self) -> thrift::Result<InternalOptionList> {
        Ok(self
            .flags
            .iter()
            .map(|(def, value, _)| {
                (
                    def.name.to_owned(),
                    InternalOptionInfo {
                        value: Some(value.to_owned()),
                        default_value: Some(def.default.to_owned()),
                        type_: Some(def.ty.name().to_owned()),
                    },
                )
            })
            .collect())
    }

    fn handle_register_extension(
        &self,
        info: InternalExtensionInfo,
        registry: ExtensionRegistry,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(self
            .registry
            .register(info, registry, &self.engine.table_names()))
    }

    fn handle_deregister_extension(
        &self,
        uuid: ExtensionRouteUUID,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(self.registry.deregister(uuid))
    }

    fn handle_query(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        Ok(answer(self.engine.query(&sql).map(|rs| rows_of(&rs))))
    }

    fn handle_get_query_columns(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        Ok(answer(self.engine.columns(&sql).map(|cols| {
            cols.into_iter()
                .map(|(name, ty)| BTreeMap::from([(name, ty)]))
                .collect()
        })))
    }
}

/// Connections served at once; more are refused (each has a thread).
const CONNECTIONS_MAX: usize = 1024;

/// Why the manager could not listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("--extensions_socket is empty")]
    NoPath,
    #[error("{0}: a path for a UNIX socket must be shorter than 104 bytes")]
    TooLong(PathBuf),
    #[error("{0}: exists and is not a socket; not replaced")]
    NotASocket(PathBuf),
    #[error("{0}: another extension manager answers there")]
    InUse(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The manager listening on its socket; [`Manager::serve`] answers until shutdown.
pub struct Manager {
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
    registry: Arc<Registry>,
    env: TableEnv,
    /// Between health pings of every extension (`--extensions_interval`).
    interval: Duration,
    flags: Arc<Flags>,
}

impl Manager {
    /// Binds `--extensions_socket` (its folder made if missing; a stale socket of a manager
    /// that is gone is replaced; the socket is mode 0600).
    pub fn listen(
        flags: &Flags,
        env: TableEnv,
        registry: Arc<Registry>,
    ) -> Result<Self, ListenError> {
        let path = flags.path("extensions_socket").ok_or(ListenError::NoPath)?;
        let io = |e| ListenError::Io(path.clone(), e);
        if path.as_os_str().len() >= 104 {
            return Err(ListenError::TooLong(path));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                use std::os::unix::fs::FileTypeExt as _;
                if !m.file_type().is_socket() {
                    return Err(ListenError::NotASocket(path));
                }
                if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                    return Err(ListenError::InUse(path));
                }
                std::fs::remove_file(&path).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = std::os::unix::net::UnixListener::bind(&path).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(Self {
            path,
            listener,
            registry,
            env,
            interval: Duration::from_secs(flags.u64("extensions_interval").max(1)),
            flags: Arc::new(flags.clone()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections on the control-plane runtime; each is served on a blocking thread
    /// of its own (the Thrift processor is synchronous) until its peer closes it or the agent
    /// stops. The socket file is removed at the end.
    pub async fn serve(self, shutdown: Shutdown) {
        let Self {
            path,
            listener,
            registry,
            env,
            interval,
            flags,
        } = self;
        tokio::spawn(health(registry.clone(), interval, shutdown.clone()));
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixListener::from_std(listener))
        {
            Ok(l) => l,
            Err(e) => {
                log::error!("extension manager on {}: {e}", path.display());
                return;
            }
        };
        log::info!("extension manager listening on {}", path.display());
        // The live connections, so that shutdown can end them (each removes itself).
        let open: Arc<Mutex<BTreeMap<u64, std::os::unix::net::UnixStream>>> = Arc::default();
        let mut next_id = 0u64;
        loop {
            let stream = tokio::select! {
                r = listener.accept() => r,
                () = shutdown.wait() => break,
            };
            let stream = match stream.and_then(|(s, _)| s.into_std()) {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("extension manager: accept: {e}");
                    continue;
                }
            };
            if lock(&open).len() >= CONNECTIONS_MAX {
                log::warn!(
                    "extension manager: {CONNECTIONS_MAX} connections are open; a new one is refused"
                );
                continue; // dropped: closed
            }
            next_id += 1;
            let id = next_id;
            if let Ok(clone) = stream.try_clone() {
                lock(&open).insert(id, clone);
            }
            let (registry, env, flags) = (registry.clone(), env.clone(), flags.clone());
            let mine = open.clone();
            // A thread of its own (not the runtime's blocking pool, which idle connections
            // would fill: SDK clients keep theirs open).
            let spawned = std::thread::Builder::new()
                .name("extension-conn".into())
                .spawn(move || {
                    let ended = serve_connection(stream, env, registry.clone(), flags);
                    lock(&mine).remove(&id);
                    match ended {
                        // The peer closed it: the normal end.
                        Err(thrift::Error::Transport(t))
                            if t.kind == thrift::TransportErrorKind::EndOfFile => {}
                        Err(e) => {
                            registry.counters.bad_frames.add(1);
                            let n = registry.counters.bad_frames.get();
                            log::warn!("extension manager: connection closed ({n} so far): {e}");
                        }
                        Ok(()) => {}
                    }
                });
            if let Err(e) = spawned {
                log::warn!("extension manager: no thread for a connection: {e}");
                lock(&open).remove(&id);
            }
        }
        // Unblock the connection threads (their reads fail), then remove the socket.
        for s in std::mem::take(&mut *lock(&open)).into_values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// Pings every extension each `interval`; one that does not answer is deregistered (its
/// tables and plugins go with it).
async fn health(registry: Arc<Registry>, interval: Duration, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shutdown.is_set() {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.wait() => break,
        }
        // All at once: an extension slow to answer delays no other one's verdict.
        let mut pings = tokio::task::JoinSet::new();
        for uuid in registry.uuids() {
            let r = registry.clone();
            pings.spawn_blocking(move || (uuid, r.ping(uuid)));
        }
        while let Some(answer) = pings.join_next().await {
            let Ok((uuid, answer)) = answer else { continue };
            let drop = registry.pinged(uuid, answer.is_ok());
            if let (true, Err(e)) = (drop, answer) {
                log::warn!("{e} (second failed ping): deregistered");
                registry.deregister(uuid);
                // Its socket file, if the dead extension left one.
                let mut path = registry.socket.clone().into_os_string();
                path.push(format!(".{uuid}"));
                if std::fs::symlink_metadata(&path).is_ok_and(|m| {
                    use std::os::unix::fs::FileTypeExt as _;
                    m.file_type().is_socket()
                }) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One connection: requests in order, one reply each, until the peer closes it or sends
/// what cannot be a request (then the connection is closed: its stream cannot be trusted).
fn serve_connection(
    stream: std::os::unix::net::UnixStream,
    env: TableEnv,
    registry: Arc<Registry>,
    flags: Arc<Flags>,
) -> thrift::Result<()> {
    let setup = |e: String| {
        thrift::Error::Application(thrift::ApplicationError::new(
            thrift::ApplicationErrorKind::InternalError,
            e,
        ))
    };
    stream
        .set_nonblocking(false)
        .map_err(|e| setup(e.to_string()))?;
    let store = env.store.clone();
    let limits = crate::sql::guard::Limits::unattended(&env.flags);
    let engine = Engine::new(env)
        .map_err(|e| setup(e.to_string()))?
        .with_limits(limits);
    let processor = ExtensionManagerSyncProcessor::new(Handler {
        engine,
        registry,
        flags,
        store,
    });
    let reader = stream.try_clone().map_err(|e| setup(e.to_string()))?;
    let (mut i, mut o) =
        osprey_sdk::client::protocols(reader, stream, osprey_sdk::wire::REQUEST_MAX);
    loop {
        processor.process(&mut i, &mut o)?;
        // The processor answered a request it could not read with an error reply; the
        // stream may be anywhere inside that request, so it is not read again.
        if i.failed() {
            return Err(setup("a request that could not be read".to_owned()));
        }
    }
}

#[cfg(test)]
mod tests;
