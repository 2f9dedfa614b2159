//! An extension: table and logger plugins registered with a manager (osquery's or Osprey's)
//! and served on the extension's own socket, `<manager socket>.<uuid>`.
//!
//! [`Extension::run`] waits up to `--timeout` seconds for the manager's socket, registers,
//! listens, and then pings the manager every `--interval` seconds; when the manager fails two
//! pings in a row (it stopped, or it was restarted and forgot this extension) the extension
//! removes its socket and returns, as osquery's SDKs do. Every connection is served on a
//! thread of its own, one request at a time; a request that cannot be read closes it.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use thrift::server::TProcessor as _;

use crate::{
    client,
    context::Context,
    osquery::{
        ExtensionPluginRequest, ExtensionRegistry, ExtensionResponse, ExtensionStatus,
        ExtensionSyncHandler, ExtensionSyncProcessor, InternalExtensionInfo,
        TExtensionManagerSyncClient as _, TExtensionSyncClient as _,
    },
    transport::{Listener, Stream},
    wire,
};

/// A row: column name to value, as text (osquery's wire form).
pub type Row = BTreeMap<String, String>;

/// A column's type, by osquery's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    BigInt,
    Double,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::BigInt => "BIGINT",
            ColumnType::Double => "DOUBLE",
        }
    }
}

/// A column of a table plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// A table plugin: its name, its columns, and its rows for a query's [`Context`].
pub trait Table: Send + Sync {
    fn name(&self) -> String;
    fn columns(&self) -> Vec<Column>;
    /// The rows for `ctx`; SQLite checks the constraints again, so extra rows are filtered.
    /// Err: the query fails with this message.
    fn generate(&self, ctx: &Context) -> Result<Vec<Row>, String>;
}

/// What a line given to a logger plugin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A query's result line (osquery's `string`).
    Result,
    /// A snapshot line.
    Snapshot,
    /// Status lines: a JSON array of `{"s": severity, "f": file, "i": line, "m": message}`.
    Status,
    /// A health report.
    Health,
}

/// A logger plugin: gets every line of the kinds above when the manager's `--logger_plugin`
/// names it.
pub trait Logger: Send + Sync {
    fn name(&self) -> String;
    /// Err: the manager keeps the line and gives it again later.
    fn log(&self, kind: LogKind, text: &str) -> Result<(), String>;
}

/// A config plugin: the config when the manager's `--config_plugin` names it, as osquery's
/// sources (source name to config JSON; the manager merges several in order).
pub trait Config: Send + Sync {
    fn name(&self) -> String;
    fn gen_config(&self) -> Result<BTreeMap<String, String>, String>;
}

/// A distributed plugin: where live queries come from when the manager's
/// `--distributed_plugin` names it.
pub trait Distributed: Send + Sync {
    fn name(&self) -> String;
    /// The queries to run, as osquery's JSON: `{"queries": {id: sql}, "discovery": {id: sql},
    /// "accelerate": seconds}` (the last two optional).
    fn get_queries(&self) -> Result<String, String>;
    /// Their answers, as osquery's JSON: `{"queries": {id: [rows]}, "statuses": {id: code},
    /// "messages": {id: error}}`. Err: the manager sends them again at its next poll.
    fn write_results(&self, results: &str) -> Result<(), String>;
}

/// How to reach the manager: osquery's extension arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The manager's socket (`--socket`).
    pub socket: PathBuf,
    /// Per call, and the wait for the manager at start (`--timeout`, seconds).
    pub timeout: Duration,
    /// Between pings of the manager (`--interval`, seconds).
    pub interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/var/osquery/osquery.em"),
            timeout: Duration::from_secs(3),
            interval: Duration::from_secs(3),
        }
    }
}

impl Options {
    /// Reads `--socket PATH`, `--timeout N`, `--interval N` (also `--name=value`) and
    /// `--verbose` (accepted, no effect), as osquery starts an extension. Anything else is
    /// an error that names it.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut o = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            if name == "--verbose" {
                continue;
            }
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            let seconds = |v: String| {
                v.trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{name}: {v:?} is not a number of seconds"))
            };
            match name.as_str() {
                "--socket" => o.socket = PathBuf::from(value()?),
                "--timeout" => o.timeout = seconds(value()?)?,
                "--interval" => o.interval = seconds(value()?)?.max(Duration::from_secs(1)),
                _ => {
                    return Err(format!(
                        "unknown argument {arg:?} (--socket, --timeout, --interval)"
                    ));
                }
            }
        }
        Ok(o)
    }
}

/// An extension's name, version and plugins.
#[derive(Clone)]
pub struct Extension {
    name: String,
    version: String,
    tables: Vec<Arc<dyn Table>>,
    loggers: Vec<Arc<dyn Logger>>,
    configs: Vec<Arc<dyn Config>>,
    distributed: Vec<Arc<dyn Distributed>>,
}

fn status(code: i32, message: impl Into<String>) -> ExtensionStatus {
    ExtensionStatus {
        code: Some(code),
        message: Some(message.into()),
        uuid: None,
    }
}

/// A table's column routes, as registration and `columns` give them.
fn routes(t: &dyn Table) -> Vec<Row> {
    t.columns()
        .into_iter()
        .map(|c| {
            Row::from([
                ("id".to_owned(), "column".to_owned()),
                ("name".to_owned(), c.name),
                ("type".to_owned(), c.ty.name().to_owned()),
                ("op".to_owned(), "0".to_owned()),
            ])
        })
        .collect()
}

fn response(result: Result<Vec<Row>, String>) -> ExtensionResponse {
    match result {
        Ok(rows) => ExtensionResponse {
            status: Some(status(0, "OK")),
            response: Some(rows),
        },
        Err(e) => ExtensionResponse {
            status: Some(status(1, e)),
            response: Some(Vec::new()),
        },
    }
}

impl Extension {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            tables: Vec::new(),
            loggers: Vec::new(),
            configs: Vec::new(),
            distributed: Vec::new(),
        }
    }

    pub fn with_table(mut self, table: impl Table + 'static) -> Self {
        self.tables.push(Arc::new(table));
        self
    }

    pub fn with_logger(mut self, logger: impl Logger + 'static) -> Self {
        self.loggers.push(Arc::new(logger));
        self
    }

    pub fn with_config(mut self, config: impl Config + 'static) -> Self {
        self.configs.push(Arc::new(config));
        self
    }

    pub fn with_distributed(mut self, plugin: impl Distributed + 'static) -> Self {
        self.distributed.push(Arc::new(plugin));
        self
    }

    /// What registration tells the manager: each table's column routes, each logger's name.
    pub fn registry(&self) -> ExtensionRegistry {
        let mut reg = ExtensionRegistry::new();
        let tables = self
            .tables
            .iter()
            .map(|t| (t.name(), routes(t.as_ref())))
            .collect();
        reg.insert("table".to_owned(), tables);
        if !self.loggers.is_empty() {
            let loggers = self
                .loggers
                .iter()
                .map(|l| (l.name(), Vec::new()))
                .collect();
            reg.insert("logger".to_owned(), loggers);
        }
        if !self.configs.is_empty() {
            let configs = self
                .configs
                .iter()
                .map(|c| (c.name(), Vec::new()))
                .collect();
            reg.insert("config".to_owned(), configs);
        }
        if !self.distributed.is_empty() {
            let plugins = self
                .distributed
                .iter()
                .map(|d| (d.name(), Vec::new()))
                .collect();
            reg.insert("distributed".to_owned(), plugins);
        }
        reg
    }

    /// The answer to `call(registry, item, request)`; never panics on what a peer sends.
    pub fn handle(
        &self,
        registry: &str,
        item: &str,
        request: &ExtensionPluginRequest,
    ) -> ExtensionResponse {
        match registry {
            "table" => {
                let Some(t) = self.tables.iter().find(|t| t.name() == item) else {
                    return response(Err(format!("no table {item:?} in {}", self.name)));
                };
                match request.get("action").map(String::as_str) {
                    Some("columns") => response(Ok(routes(t.as_ref()))),
                    Some("generate") => {
                        let ctx = request.get("context").map_or("", String::as_str);
                        response(Context::parse(ctx).and_then(|ctx| t.generate(&ctx)))
                    }
                    other => response(Err(format!(
                        "table action {other:?} is not served (columns, generate)"
                    ))),
                }
            }
            "logger" => {
                let Some(l) = self.loggers.iter().find(|l| l.name() == item) else {
                    return response(Err(format!("no logger {item:?} in {}", self.name)));
                };
                let line = [
                    ("string", LogKind::Result),
                    ("snapshot", LogKind::Snapshot),
                    ("log", LogKind::Status),
                    ("health", LogKind::Health),
                ]
                .into_iter()
                .find_map(|(key, kind)| request.get(key).map(|text| (kind, text)));
                match line {
                    Some((kind, text)) => response(l.log(kind, text).map(|()| Vec::new())),
                    // `init` and other requests: nothing to do.
                    None => response(Ok(Vec::new())),
                }
            }
            "config" => {
                let Some(c) = self.configs.iter().find(|c| c.name() == item) else {
                    return response(Err(format!("no config {item:?} in {}", self.name)));
                };
                match request.get("action").map(String::as_str) {
                    Some("genConfig") => response(c.gen_config().map(|sources| vec![sources])),
                    other => response(Err(format!(
                        "config action {other:?} is not served (genConfig)"
                    ))),
                }
            }
            "distributed" => {
                let Some(d) = self.distributed.iter().find(|d| d.name() == item) else {
                    return response(Err(format!("no distributed {item:?} in {}", self.name)));
                };
                match request.get("action").map(String::as_str) {
                    Some("getQueries") => response(
                        d.get_queries()
                            .map(|json| vec![Row::from([("results".to_owned(), json)])]),
                    ),
                    Some("writeResults") => response(
                        d.write_results(request.get("results").map_or("", String::as_str))
                            .map(|()| Vec::new()),
                    ),
                    other => response(Err(format!(
                        "distributed action {other:?} is not served (getQueries, writeResults)"
                    ))),
                }
            }
            other => response(Err(format!("no {other:?} plugins in {}", self.name))),
        }
    }

    /// Registers with the manager at `o.socket`, serves calls until the manager is gone,
    /// then returns. Err: the manager could not be reached or refused the registration.
    pub fn run(self, o: &Options) -> Result<(), String> {
        let deadline = Instant::now() + o.timeout;
        let mut manager = loop {
            match client::manager(&o.socket, o.timeout) {
                Ok(m) => break m,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("no extension manager: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let info = InternalExtensionInfo {
            name: Some(self.name.clone()),
            version: Some(self.version.clone()),
            sdk_version: Some(crate::SDK_VERSION.to_owned()),
            min_sdk_version: Some(crate::SDK_VERSION.to_owned()),
        };
        let answer = manager
            .register_extension(info, self.registry())
            .map_err(|e| format!("registering with {}: {e}", o.socket.display()))?;
        if answer.code != Some(0) {
            return Err(format!(
                "the manager refused {}: {}",
                self.name,
                answer.message.unwrap_or_default()
            ));
        }
        let uuid = answer.uuid.unwrap_or_default();
        let mut path = o.socket.clone().into_os_string();
        path.push(format!(".{uuid}"));
        let path = PathBuf::from(path);
        let listener = Listener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(self);
        {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::Builder::new()
                .name("extension-accept".into())
                .spawn(move || accept(&listener, &served, &stop))
                .map_err(|e| format!("a thread: {e}"))?;
        }
        let mut failed = 0;
        while !stop.load(Ordering::Relaxed) && failed < 2 {
            std::thread::sleep(o.interval);
            let alive = client::manager(&o.socket, o.timeout)
                .and_then(|mut m| m.ping().map_err(|e| e.to_string()))
                .is_ok_and(|s| s.code == Some(0));
            failed = if alive { 0 } else { failed + 1 };
        }
        stop.store(true, Ordering::Relaxed);
        Listener::remove(&path);
        Ok(())
    }
}

fn accept(listener: &Listener, ext: &Arc<Extension>, stop: &Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = listener.accept() else {
            // Out of descriptors or handles, for a while: not a busy loop.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (ext, stop) = (ext.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("extension-conn".into())
            .spawn(move || serve(stream, ext, stop));
    }
}

struct Handler {
    ext: Arc<Extension>,
    stop: Arc<AtomicBool>,
}

impl ExtensionSyncHandler for Handler {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        Ok(status(0, "OK"))
    }

    fn handle_call(
        &self,
        registry: String,
        item: String,
        request: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        Ok(self.ext.handle(&registry, &item, &request))
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// One connection: requests in order until the peer closes it or sends what cannot be read.
fn serve(stream: Stream, ext: Arc<Extension>, stop: Arc<AtomicBool>) {
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let (mut i, mut o) = client::protocols(reader, stream, wire::REQUEST_MAX);
    let processor = ExtensionSyncProcessor::new(Handler { ext, stop });
    while processor.process(&mut i, &mut o).is_ok() && !i.failed() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Squares;

    impl Table for Squares {
        fn name(&self) -> String {
            "squares".into()
        }
        fn columns(&self) -> Vec<Column> {
            vec![
                Column::new("n", ColumnType::Integer),
                Column::new("square", ColumnType::BigInt),
            ]
        }
        fn generate(&self, ctx: &Context) -> Result<Vec<Row>, String> {
            let wanted: Vec<i64> = ctx.equals("n").filter_map(|v| v.parse().ok()).collect();
            Ok(wanted
                .into_iter()
                .map(|n| {
                    Row::from([
                        ("n".into(), n.to_string()),
                        ("square".into(), (n * n).to_string()),
                    ])
                })
                .collect())
        }
    }

    struct Refuses;

    impl Logger for Refuses {
        fn name(&self) -> String {
            "refuses".into()
        }
        fn log(&self, kind: LogKind, text: &str) -> Result<(), String> {
            Err(format!("{kind:?} {text}"))
        }
    }

    struct Fixed;

    impl Config for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        fn gen_config(&self) -> Result<BTreeMap<String, String>, String> {
            Ok(BTreeMap::from([("main".into(), "{}".into())]))
        }
    }

    fn req(pairs: &[(&str, &str)]) -> ExtensionPluginRequest {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn calls_are_routed_to_their_plugin_and_bad_ones_answered_with_an_error() {
        let ext = Extension::new("t", "1")
            .with_table(Squares)
            .with_logger(Refuses);
        let reg = ext.registry();
        assert_eq!(reg["table"]["squares"][1]["type"], "BIGINT");
        assert!(reg["logger"].contains_key("refuses"));
        let r = ext.handle(
            "table",
            "squares",
            &req(&[
                ("action", "generate"),
                (
                    "context",
                    r#"{"constraints":[{"name":"n","list":[{"op":2,"expr":"7"}]}]}"#,
                ),
            ]),
        );
        assert_eq!(r.status.unwrap().code, Some(0));
        assert_eq!(
            r.response.unwrap(),
            [Row::from([
                ("n".into(), "7".into()),
                ("square".into(), "49".into())
            ])]
        );
        let bad = |r: ExtensionResponse| r.status.unwrap().message.unwrap();
        assert_eq!(
            bad(ext.handle("table", "nope", &req(&[]))),
            "no table \"nope\" in t"
        );
        assert_eq!(
            bad(ext.handle(
                "table",
                "squares",
                &req(&[("action", "generate"), ("context", "{")])
            )),
            "context: EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(
            bad(ext.handle("logger", "refuses", &req(&[("string", "{}")]))),
            "Result {}"
        );
        assert_eq!(
            bad(ext.handle("nope", "x", &req(&[]))),
            "no \"nope\" plugins in t"
        );
        let ext = ext.with_config(Fixed);
        let r = ext.handle("config", "fixed", &req(&[("action", "genConfig")]));
        assert_eq!(
            r.response.unwrap(),
            [Row::from([("main".into(), "{}".into())])]
        );
        assert_eq!(
            bad(ext.handle("config", "fixed", &req(&[]))),
            "config action None is not served (genConfig)"
        );
    }

    #[test]
    fn arguments_are_read_as_osquery_passes_them() {
        let o = Options::from_args(
            [
                "--socket",
                "/tmp/s.em",
                "--timeout=5",
                "--interval",
                "0",
                "--verbose",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(o.socket, PathBuf::from("/tmp/s.em"));
        assert_eq!((o.timeout.as_secs(), o.interval.as_secs()), (5, 1));
        assert_eq!(
            Options::from_args(["--timeout", "x"].map(String::from)).unwrap_err(),
            "--timeout: \"x\" is not a number of seconds"
        );
        assert_eq!(
            Options::from_args(["--socket"].map(String::from)).unwrap_err(),
            "--socket needs a value"
        );
        assert!(
            Options::from_args(["-x".to_owned()])
                .unwrap_err()
                .starts_with("unknown argument \"-x\"")
        );
    }
}
