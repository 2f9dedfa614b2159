//! What a statement may do, on every connection the agent opens (the shell, `osprey query`,
//! the scheduler, distributed queries, `file_paths_query`, extensions' queries): SQLite's
//! authorizer refuses ATTACH and DETACH, writes to anything but temp tables (and creating,
//! altering or dropping anything but temp objects), `load_extension`, VACUUM and every PRAGMA
//! outside a read-only allow-list, with an error that names what was refused. Statements that
//! run unattended (scheduled, distributed, `file_paths_query`, extensions') also get a time
//! budget, enforced by SQLite's progress handler, and a cap on the size of their result.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::flags::Flags;

/// PRAGMAs that only read, allowed without a value (`PRAGMA table_info(x)` passes its
/// argument as the value: these take a name, not a setting).
const PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "function_list",
    "module_list",
    "pragma_list",
    "collation_list",
    "compile_options",
    "database_list",
];
/// Pragmas that take a table name as their argument (allowed with one).
const PRAGMAS_WITH_NAME: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// The decision for one action; Err(what) names what is refused.
pub fn decide(ctx: &AuthContext<'_>) -> Result<(), String> {
    let temp = ctx.database_name == Some("temp");
    let refuse = |what: String| Err(what);
    match ctx.action {
        AuthAction::Attach { .. } => refuse("ATTACH".into()),
        AuthAction::Detach { .. } => refuse("DETACH".into()),
        AuthAction::Function { function_name } => {
            if function_name.eq_ignore_ascii_case("load_extension") {
                refuse("load_extension()".into())
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let allowed = match pragma_value {
                None => PRAGMAS.contains(&name.as_str()),
                Some(_) => PRAGMAS_WITH_NAME.contains(&name.as_str()),
            };
            if allowed {
                Ok(())
            } else {
                refuse(format!("PRAGMA {pragma_name}"))
            }
        }
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => {
            if temp {
                Ok(())
            } else if table_name == "sqlite_master" || table_name == "sqlite_schema" {
                refuse("changing the schema outside temp (use CREATE TEMP …)".into())
            } else {
                refuse(format!("writing to {table_name}"))
            }
        }
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempView { .. }
        | AuthAction::DropTempTrigger { .. } => Ok(()),
        AuthAction::CreateTable { table_name }
        | AuthAction::CreateView {
            view_name: table_name,
        }
        | AuthAction::DropTable { table_name }
        | AuthAction::DropView {
            view_name: table_name,
        } => refuse(format!(
            "creating or dropping {table_name} outside temp (use CREATE TEMP …)"
        )),
        AuthAction::CreateIndex { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::Reindex { .. }
        | AuthAction::Analyze { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropVtable { .. } => refuse("changing the schema outside temp".into()),
        _ => Ok(()),
    }
}

/// Limits of a connection's statements; none for interactive use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub time: Option<Duration>,
    pub result_bytes: Option<u64>,
}

impl Limits {
    /// The limits of unattended statements: `--sql_time_limit` and `--sql_result_max_bytes`
    /// (0 = none).
    pub fn unattended(flags: &Flags) -> Self {
        let secs = flags.u64("sql_time_limit");
        let bytes = flags.u64("sql_result_max_bytes");
        Self {
            time: (secs > 0).then(|| Duration::from_secs(secs)),
            result_bytes: (bytes > 0).then_some(bytes),
        }
    }
}

/// The guard installed on one connection: what the authorizer refused last, and the
/// running statement's deadline (monotonic ns; 0 = none).
#[derive(Debug, Default, Clone)]
pub struct Guard {
    pub refused: Arc<Mutex<Option<String>>>,
    pub deadline_ns: Arc<AtomicU64>,
}

impl Guard {
    /// Installs the authorizer and the progress handler on `conn`.
    pub fn install(conn: &mut rusqlite::Connection) -> rusqlite::Result<Self> {
        let g = Guard::default();
        let refused = g.refused.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| match decide(&ctx) {
            Ok(()) => Authorization::Allow,
            Err(what) => {
                if let Ok(mut r) = refused.lock() {
                    *r = Some(what);
                }
                Authorization::Deny
            }
        }))?;
        let deadline = g.deadline_ns.clone();
        conn.progress_handler(
            10_000,
            Some(move || {
                let d = deadline.load(Ordering::Relaxed);
                d != 0 && crate::sys::monotonic_ns() > d
            }),
        )?;
        Ok(g)
    }

    /// Starts (or clears) the running statement's deadline.
    pub fn arm(&self, limit: Option<Duration>) {
        let d = limit.map_or(0, |l| {
            crate::sys::monotonic_ns().saturating_add(l.as_nanos().min(u64::MAX as u128) as u64)
        });
        self.deadline_ns.store(d, Ordering::Relaxed);
    }

    /// The error for a failed statement: what the authorizer refused, or that the time
    /// budget ran out, or SQLite's own message.
    pub fn explain(&self, msg: String, limits: &Limits) -> String {
        let refused = self.refused.lock().ok().and_then(|mut r| r.take());
        if let Some(what) = refused
            && msg.contains("not authorized")
        {
            return format!(
                "{what} is not allowed: Osprey's SQL reads tables and may write only temp tables"
            );
        }
        if msg.contains("interrupted")
            && let Some(t) = limits.time
            && self.deadline_ns.load(Ordering::Relaxed) != 0
            && crate::sys::monotonic_ns() > self.deadline_ns.load(Ordering::Relaxed)
        {
            return format!(
                "the query ran longer than its time budget of {} s (--sql_time_limit) and was stopped",
                t.as_secs()
            );
        }
        msg
    }
}

/// SQLite parses `VACUUM [INTO file]` without asking the authorizer: refused by its first
/// keyword (after comments and blanks).
pub fn is_vacuum(stmt: &str) -> bool {
    let mut s = stmt.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    s.get(..6).is_some_and(|w| w.eq_ignore_ascii_case("vacuum"))
        && !s[6..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Engine, TableEnv};

    fn engine() -> Engine {
        Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).unwrap()
    }

    #[test]
    fn writes_attach_pragmas_and_extensions_are_refused_with_a_reason() {
        let e = engine();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.db");
        let f = file.display();
        for (sql, what) in [
            (format!("ATTACH '{f}' AS x"), "ATTACH"),
            (format!("VACUUM INTO '{f}'"), "VACUUM"),
            ("  /* c */ vacuum".to_owned(), "VACUUM"),
            (
                "CREATE TABLE t (a)".to_owned(),
                "changing the schema outside temp (use CREATE TEMP …)",
            ),
            (
                "CREATE VIEW v AS SELECT 1".to_owned(),
                "changing the schema outside temp (use CREATE TEMP …)",
            ),
            (
                "PRAGMA journal_mode = WAL".to_owned(),
                "PRAGMA journal_mode",
            ),
            (
                "PRAGMA writable_schema = 1".to_owned(),
                "PRAGMA writable_schema",
            ),
            (
                "SELECT load_extension('/tmp/x.so')".to_owned(),
                "load_extension()",
            ),
        ] {
            let err = e.query(&sql).unwrap_err();
            assert!(
                err.starts_with(&format!("{what} is not allowed")),
                "{sql}: {err}"
            );
        }
        assert!(!file.exists(), "a refused statement made {f}");
        // Temp tables, reads and read-only pragmas work.
        let rs = e
            .query("CREATE TEMP TABLE t (a); INSERT INTO t VALUES (1), (2); UPDATE t SET a = a * 10; DELETE FROM t WHERE a = 10; SELECT a FROM t")
            .unwrap();
        assert_eq!(rs.rows, [[rusqlite::types::Value::Integer(20)]]);
        assert!(
            !e.query("PRAGMA table_info(processes)")
                .unwrap()
                .rows
                .is_empty()
        );
        assert!(e.query("DROP TABLE t").is_ok());
        assert!(is_vacuum("VACUUM") && !is_vacuum("vacuumed") && !is_vacuum("SELECT 1"));
    }

    #[test]
    fn an_unattended_query_that_runs_too_long_is_stopped_and_the_next_one_runs() {
        let e = engine().with_limits(Limits {
            time: Some(Duration::from_secs(1)),
            result_bytes: Some(1000),
        });
        let started = std::time::Instant::now();
        let err = e
            .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
            .unwrap_err();
        assert_eq!(
            err,
            "the query ran longer than its time budget of 1 s (--sql_time_limit) and was stopped"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(
            e.query("SELECT 1 AS one").unwrap().rows,
            [[rusqlite::types::Value::Integer(1)]]
        );
        // The result cap: 1000 bytes.
        let err = e
            .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) SELECT x, 'some text' FROM c")
            .unwrap_err();
        assert_eq!(
            err,
            "the result is larger than 1000 bytes (--sql_result_max_bytes); ask for fewer rows or columns"
        );
    }
}
