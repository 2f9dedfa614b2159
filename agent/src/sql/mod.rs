//! SQL over live state and stored events: an in-memory SQLite connection whose tables are
//! virtual tables ([`vtab`]) backed by [`tables`].

pub mod functions;
pub mod guard;
pub mod tables;
pub mod vtab;

use std::sync::Arc;

use rusqlite::{Connection, types::Value};

use crate::{
    flags::{Flags, persist},
    storage::Store,
};

/// What `osquery_flags` shows for a store and this process's flags: the flags and the FIM
/// status line. Injected by the layer above (the control plane applies the config's
/// `options`), so that SQL never loads the config itself.
pub type FlagsView = Arc<dyn Fn(Option<&Store>, &Flags) -> (Flags, String) + Send + Sync>;

/// Something that owns a table and can make it for an environment: the event sources
/// (`crate::sources`) own their event tables this way.
pub trait TableProvider: Sync {
    fn make_table(&self, env: &TableEnv) -> Arc<dyn vtab::Table>;
}

/// osquery's `events_optimize` for one engine (the scheduler's): while a scheduled query runs,
/// event-table scans skip the rows it has seen (a seq at or below `after`; seqs are given in
/// write order, so that is exact) and record the highest seq they pass. Scans start
/// [`EVENTS_LATENESS_NS`] before the newest time seen, so that an event written late with an
/// older time is still found.
#[derive(Debug, Default)]
pub struct EventsCursor {
    state: std::sync::Mutex<CursorState>,
}

/// How far before the newest event time seen a scan starts again (5 minutes).
pub const EVENTS_LATENESS_NS: u64 = 300_000_000_000;

/// Where a scheduled query is in the event tables: the newest (time_ns, seq) it has seen.
pub type EventsMark = (u64, u64);

#[derive(Debug, Default)]
struct CursorState {
    active: bool,
    after: Option<EventsMark>,
    /// An event table was scanned during this run.
    used: bool,
    /// Every scan of the run went to its end (a LIMIT can stop one early).
    complete: bool,
    newest: Option<EventsMark>,
}

impl EventsCursor {
    fn lock(&self) -> std::sync::MutexGuard<'_, CursorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A run starts, after `after` (None: everything is new).
    pub fn begin(&self, after: Option<EventsMark>) {
        *self.lock() = CursorState {
            active: true,
            after,
            used: false,
            complete: true,
            newest: after,
        };
    }

    /// The run ended: whether it read an event table, and where the next run starts (None
    /// when a scan stopped early: the next run sees those rows again rather than missing any).
    pub fn end(&self) -> (bool, Option<EventsMark>) {
        let mut s = self.lock();
        s.active = false;
        let next = if s.complete { s.newest } else { s.after };
        (s.used, next)
    }

    /// A scan starts: (lowest time to read, seq at or below which rows are skipped).
    fn scan_start(&self) -> Option<(u64, u64)> {
        let mut s = self.lock();
        if !s.active {
            return None;
        }
        s.used = true;
        Some(s.after.map_or((0, 0), |(t, seq)| {
            (t.saturating_sub(EVENTS_LATENESS_NS), seq)
        }))
    }

    fn saw(&self, time_ns: u64, seq: u64) {
        let mut s = self.lock();
        let newest = s.newest.get_or_insert((time_ns, seq));
        newest.0 = newest.0.max(time_ns);
        newest.1 = newest.1.max(seq);
    }

    fn stopped_early(&self) {
        self.lock().complete = false;
    }
}

/// The osquery version whose tables, flags, API and log formats this build follows: the
/// `version` of `osquery_info` (Fleet picks its queries by it) and of queries and packs.
/// Osprey's own version is `osquery_info.osprey_version`.
pub const OSQUERY_COMPAT: &str = "5.12.1";

/// One file carve: the files of a `carves` query, archived and uploaded by the layer that
/// has the remote API (the `carves` table only starts carves and lists them).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Carve {
    /// Unix seconds when it started.
    pub time: u64,
    pub carve_guid: String,
    /// The distributed query that asked for it.
    pub request_id: String,
    pub paths: Vec<String>,
    /// STARTING, UPLOADING, SUCCESS, or FAILED: <why>.
    pub status: String,
    /// The archive's size and SHA-256 (known once it is made).
    pub size: u64,
    pub sha256: String,
}

/// Where the carve records are kept (store metadata, JSON list of [`Carve`]).
pub const CARVES_META: &[u8] = b"remote.carves";

/// The carve records kept in `store`.
pub fn stored_carves(store: &Store) -> Vec<Carve> {
    store
        .get_meta(CARVES_META)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_slice(&v).ok())
        .unwrap_or_default()
}

/// Starts carves for the `carves` table: injected by the layer above (the remote API).
pub trait Carver: Send + Sync {
    /// Starts carving `paths` (existing regular files) and returns the carve as started.
    fn start(&self, paths: Vec<String>) -> Result<Carve, String>;
    /// The carves made so far (kept in the store).
    fn list(&self) -> Vec<Carve>;
}

/// Tables that come and go while an engine lives (the tables of osquery extensions): an
/// engine adds the ones it has not seen before each statement.
pub trait DynamicTables: Send + Sync {
    /// Changes whenever the set of tables changes.
    fn generation(&self) -> u64;
    /// The tables now. A table whose owner is gone may still be asked for rows by an engine
    /// that saw it: it answers with an error.
    fn tables(&self) -> Vec<Arc<dyn vtab::Table>>;
    /// (registry, plugin name, owner uuid) of every plugin registered (`osquery_registry`).
    fn plugins(&self) -> Vec<(String, String, i64)> {
        Vec::new()
    }
    /// The extensions registered (`osquery_extensions`).
    fn extensions(&self) -> Vec<ExtensionRow> {
        Vec::new()
    }
}

/// One registered extension as `osquery_extensions` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRow {
    pub uuid: i64,
    pub name: String,
    pub version: String,
    pub sdk_version: String,
    /// Where it listens (`<socket>.<uuid>`).
    pub path: String,
}

/// What tables can draw on.
#[derive(Clone)]
pub struct TableEnv {
    /// The event store (a secondary instance when run by `osprey query`).
    pub store: Option<Arc<Store>>,
    pub flags: Arc<Flags>,
    pub flags_view: FlagsView,
    /// Tables owned outside `sql` (the event sources' tables).
    pub providers: Vec<&'static dyn TableProvider>,
    /// The scheduler's `events_optimize` place (None: every scan reads its whole range).
    pub events_cursor: Option<Arc<EventsCursor>>,
    /// Who carves for the `carves` table (None: `carve = 1` is an error saying why).
    pub carver: Option<Arc<dyn Carver>>,
    /// Tables registered while the engine lives (osquery extensions).
    pub dynamic: Option<Arc<dyn DynamicTables>>,
}

impl std::fmt::Debug for TableEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableEnv")
            .field("store", &self.store)
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

impl TableEnv {
    /// Live tables only, and `osquery_flags` showing a live daemon's flags or else `flags`.
    pub fn new(store: Option<Arc<Store>>, flags: Arc<Flags>) -> Self {
        Self {
            store,
            flags,
            flags_view: Arc::new(|store, local| {
                persist::daemon_view(store, local).unwrap_or_else(|| (local.clone(), String::new()))
            }),
            providers: Vec::new(),
            events_cursor: None,
            carver: None,
            dynamic: None,
        }
    }

    pub fn with_dynamic(mut self, dynamic: Arc<dyn DynamicTables>) -> Self {
        self.dynamic = Some(dynamic);
        self
    }

    pub fn with_carver(mut self, carver: Arc<dyn Carver>) -> Self {
        self.carver = Some(carver);
        self
    }

    pub fn with_events_cursor(mut self, cursor: Arc<EventsCursor>) -> Self {
        self.events_cursor = Some(cursor);
        self
    }

    pub fn with_tables(
        mut self,
        providers: impl IntoIterator<Item = &'static dyn TableProvider>,
    ) -> Self {
        self.providers.extend(providers);
        self
    }

    pub fn with_flags_view(mut self, view: FlagsView) -> Self {
        self.flags_view = view;
        self
    }
}

/// A connection with every table registered.
pub struct Engine {
    conn: Connection,
    guard: guard::Guard,
    limits: guard::Limits,
    tables: Vec<Arc<dyn vtab::Table>>,
    env: TableEnv,
    /// The generation of `env.dynamic` last seen, and the dynamic tables registered on this
    /// connection (by name: the address of their column list, which changes with them).
    dynamic: std::cell::RefCell<(u64, std::collections::HashMap<&'static str, usize>)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// A query result: column names and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Engine {
    pub fn new(env: TableEnv) -> rusqlite::Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        functions::register(&conn)?;
        let guard = guard::Guard::install(&mut conn)?;
        let mut tables = tables::all(&env);
        tables.extend(env.providers.iter().map(|p| p.make_table(&env)));
        for t in &tables {
            vtab::register(&conn, t.clone())?;
        }
        Ok(Self {
            conn,
            guard,
            limits: guard::Limits::default(),
            tables,
            env,
            dynamic: std::cell::RefCell::new((u64::MAX, std::collections::HashMap::new())),
        })
    }

    /// Registers the dynamic tables this connection has not seen (a core table of the same
    /// name always wins; registration refuses such names anyway).
    fn refresh_dynamic(&self) -> Result<(), String> {
        let Some(d) = &self.env.dynamic else {
            return Ok(());
        };
        let generation = d.generation();
        let mut seen = self.dynamic.borrow_mut();
        if seen.0 == generation {
            return Ok(());
        }
        for t in d.tables() {
            let name = t.name();
            if self.tables.iter().any(|c| c.name() == name) {
                continue;
            }
            let columns = t.columns().as_ptr() as usize;
            if seen.1.get(name) == Some(&columns) {
                continue;
            }
            vtab::register(&self.conn, t).map_err(|e| format!("table {name}: {e}"))?;
            seen.1.insert(name, columns);
        }
        seen.0 = generation;
        Ok(())
    }

    /// This engine's statements run unattended: a time budget and a result cap.
    pub fn with_limits(mut self, limits: guard::Limits) -> Self {
        self.limits = limits;
        self
    }

    fn error(&self, e: rusqlite::Error) -> String {
        self.guard.explain(sql_error(e), &self.limits)
    }

    /// Stops the statement running on this engine from another thread (it fails with
    /// "interrupted").
    pub fn interrupt_handle(&self) -> rusqlite::InterruptHandle {
        self.conn.get_interrupt_handle()
    }

    pub fn table_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.tables.iter().map(|t| t.name()).collect();
        v.sort_unstable();
        v
    }

    /// Every table with its columns, the dynamic ones (extensions') included, by name.
    pub fn catalog(&self) -> Vec<(&'static str, &'static [vtab::Column])> {
        let mut out: Vec<_> = self
            .tables
            .iter()
            .map(|t| (t.name(), t.columns()))
            .collect();
        if let Some(d) = &self.env.dynamic {
            let _ = self.refresh_dynamic();
            for t in d.tables() {
                if !out.iter().any(|(n, _)| *n == t.name()) {
                    out.push((t.name(), t.columns()));
                }
            }
        }
        out.sort_unstable_by_key(|(n, _)| *n);
        out
    }

    pub fn table(&self, name: &str) -> Option<&Arc<dyn vtab::Table>> {
        self.tables.iter().find(|t| t.name() == name)
    }

    /// The columns the last statement of `sql` with columns would return, with their declared
    /// types (`UNKNOWN` for an expression), without running it.
    pub fn columns(&self, sql: &str) -> Result<Vec<(String, String)>, String> {
        self.refresh_dynamic()?;
        let mut last = Vec::new();
        for stmt_sql in split_statements(sql) {
            let stmt = self.conn.prepare(stmt_sql).map_err(|e| self.error(e))?;
            let cols: Vec<(String, String)> = stmt
                .columns()
                .map(|c| {
                    let ty = c.decl_type().unwrap_or("UNKNOWN").to_ascii_uppercase();
                    (c.name().to_owned(), ty)
                })
                .collect();
            if !cols.is_empty() {
                last = cols;
            }
        }
        Ok(last)
    }

    /// Runs `sql` (one or more statements); returns the rows of the last one that has columns.
    pub fn query(&self, sql: &str) -> Result<ResultSet, String> {
        // Pick up what the daemon wrote since the last statement.
        if let Some(store) = &self.env.store {
            store.catch_up().map_err(|e| e.to_string())?;
        }
        self.refresh_dynamic()?;
        self.guard.arm(self.limits.time);
        let result = self.run(sql);
        self.guard.arm(None);
        result
    }

    fn run(&self, sql: &str) -> Result<ResultSet, String> {
        let mut last = ResultSet {
            columns: Vec::new(),
            rows: Vec::new(),
        };
        let cap = self.limits.result_bytes.unwrap_or(u64::MAX);
        for stmt_sql in split_statements(sql) {
            if guard::is_vacuum(stmt_sql) {
                return Err(
                    "VACUUM is not allowed: Osprey's SQL reads tables and may write only temp tables"
                        .into(),
                );
            }
            let mut stmt = self.conn.prepare(stmt_sql).map_err(|e| self.error(e))?;
            let columns: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
            let n = columns.len();
            let mut rows = Vec::new();
            let mut bytes = 0u64;
            let mut q = stmt.raw_query();
            while let Some(r) = q.next().map_err(|e| self.error(e))? {
                let mut row = Vec::with_capacity(n);
                for i in 0..n {
                    let v = r.get::<_, Value>(i).map_err(|e| self.error(e))?;
                    bytes += match &v {
                        Value::Text(t) => t.len() as u64,
                        Value::Blob(b) => b.len() as u64,
                        _ => 8,
                    };
                    row.push(v);
                }
                if bytes > cap {
                    return Err(format!(
                        "the result is larger than {cap} bytes (--sql_result_max_bytes); ask for fewer rows or columns"
                    ));
                }
                rows.push(row);
            }
            if n > 0 {
                last = ResultSet { columns, rows };
            }
        }
        Ok(last)
    }
}

/// A value as osquery passes every value, as text; NULL is the empty string.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Splits `sql` into complete statements (SQLite decides where one ends), skipping empty ones.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, ch) in sql.char_indices() {
        if ch == ';' && vtab::is_complete_statement(&sql[start..=i]) {
            out.push(&sql[start..=i]);
            start = i + 1;
        }
    }
    out.push(&sql[start..]);
    out.into_iter()
        .map(|s| s.trim().trim_end_matches(';').trim())
        .filter(|s| !s.is_empty())
        .collect()
}

fn sql_error(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg,
        other => other.to_string(),
    }
}

/// A result set as osquery rows: columns by name, NULL as "", numbers kept as numbers (the
/// log format decides whether they are written as strings).
pub fn json_rows(rs: &ResultSet) -> Vec<serde_json::Map<String, serde_json::Value>> {
    use serde_json::Value as Json;
    rs.rows
        .iter()
        .map(|r| {
            let mut sorted: std::collections::BTreeMap<&str, Json> =
                std::collections::BTreeMap::new();
            for (c, v) in rs.columns.iter().zip(r) {
                let v = match v {
                    Value::Null => Json::String(String::new()),
                    Value::Integer(i) => Json::from(*i),
                    Value::Real(f) => serde_json::Number::from_f64(*f)
                        .map_or_else(|| Json::String(f.to_string()), Json::Number),
                    Value::Text(s) => Json::String(s.clone()),
                    Value::Blob(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
                };
                sorted.insert(c, v);
            }
            sorted.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
        })
        .collect()
}
