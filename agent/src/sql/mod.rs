//! SQL over live state and stored events: an in-memory SQLite connection whose tables are
//! virtual tables ([`vtab`]) backed by [`tables`].

pub mod bench;
pub mod tables;
pub mod vtab;

use std::sync::Arc;

use rusqlite::{Connection, types::Value};

use crate::{flags::Flags, storage::Store};

/// What tables can draw on.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The event store (a secondary instance when run by `osprey query`).
    pub store: Option<Arc<Store>>,
    pub flags: Arc<Flags>,
}

/// A connection with every table registered.
pub struct Engine {
    conn: Connection,
    tables: Vec<Arc<dyn vtab::Table>>,
    sources: Sources,
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
    pub fn new(sources: Sources) -> rusqlite::Result<Self> {
        let conn = Connection::open_in_memory()?;
        let tables = tables::all(&sources);
        for t in &tables {
            vtab::register(&conn, t.clone())?;
        }
        Ok(Self {
            conn,
            tables,
            sources,
        })
    }

    pub fn table_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.tables.iter().map(|t| t.name()).collect();
        v.sort_unstable();
        v
    }

    pub fn table(&self, name: &str) -> Option<&Arc<dyn vtab::Table>> {
        self.tables.iter().find(|t| t.name() == name)
    }

    /// Runs `sql` (one or more statements); returns the rows of the last one that has columns.
    pub fn query(&self, sql: &str) -> Result<ResultSet, String> {
        // Pick up what the daemon wrote since the last statement.
        if let Some(store) = &self.sources.store {
            store.catch_up().map_err(|e| e.to_string())?;
        }
        let mut last = ResultSet {
            columns: Vec::new(),
            rows: Vec::new(),
        };
        for stmt_sql in split_statements(sql) {
            let mut stmt = self.conn.prepare(stmt_sql).map_err(sql_error)?;
            let columns: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
            let n = columns.len();
            let mut rows = Vec::new();
            let mut q = stmt.raw_query();
            while let Some(r) = q.next().map_err(sql_error)? {
                let mut row = Vec::with_capacity(n);
                for i in 0..n {
                    row.push(r.get::<_, Value>(i).map_err(sql_error)?);
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

#[cfg(test)]
mod tests {
    //! Push-down proofs: a constrained scan visits only the store rows it needs, counted by
    //! [`Store::rows_visited`].

    use super::*;
    use crate::{
        events::{ProcessEvent, ProcessSyscall},
        storage::event_key,
    };

    const BASE: u64 = 1_700_000_000;
    const EVENTS: u64 = 10_000;

    /// 10,000 exec events, one per second from `BASE`, pid = 100,000 + i.
    fn filled_engine(dir: &std::path::Path) -> (Engine, Arc<Store>) {
        let store = Arc::new(Store::open_primary(dir).expect("open store"));
        for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1000) {
            let items: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let e = ProcessEvent {
                        time_ns: (BASE + i) * 1_000_000_000,
                        syscall: Some(ProcessSyscall::Execve),
                        pid: 100_000 + i as u32,
                        path: format!("/bin/p{i}"),
                        argv: vec![format!("p{i}"), "x".into()],
                        ..Default::default()
                    };
                    ("process_events", event_key(e.time_ns, i), e.encode())
                })
                .collect();
            store.write(&items, false).expect("write");
        }
        let engine = Engine::new(Sources {
            store: Some(store.clone()),
            flags: Arc::new(Flags::default()),
        })
        .expect("engine");
        (engine, store)
    }

    /// Rows visited by `sql`, and its result.
    fn visited(engine: &Engine, store: &Store, sql: &str) -> (u64, ResultSet) {
        let before = store.rows_visited();
        let rs = engine.query(sql).expect(sql);
        (store.rows_visited() - before, rs)
    }

    #[test]
    fn time_range_visits_only_rows_in_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, store) = filled_engine(dir.path());
        let (a, b) = (BASE + 5_000, BASE + 5_099);
        let (n, rs) = visited(
            &engine,
            &store,
            &format!("SELECT count(*) FROM process_events WHERE time BETWEEN {a} AND {b}"),
        );
        assert_eq!(rs.rows, vec![vec![Value::Integer(100)]]);
        assert_eq!(n, 100);

        // Open-ended and strict bounds.
        let (n, rs) = visited(
            &engine,
            &store,
            &format!(
                "SELECT count(*) FROM process_events WHERE time > {}",
                BASE + 9_989
            ),
        );
        assert_eq!((n, rs.rows), (10, vec![vec![Value::Integer(10)]]));
        let (n, rs) = visited(
            &engine,
            &store,
            &format!(
                "SELECT count(*) FROM process_events WHERE time < {}",
                BASE + 3
            ),
        );
        assert_eq!((n, rs.rows), (3, vec![vec![Value::Integer(3)]]));

        // Exact rows, in time order.
        let (n, rs) = visited(
            &engine,
            &store,
            &format!(
                "SELECT time, pid, path, cmdline FROM process_events \
                 WHERE time >= {} AND time <= {} ORDER BY time",
                BASE + 42,
                BASE + 44
            ),
        );
        assert_eq!(n, 3);
        let want: Vec<Vec<Value>> = (42..=44)
            .map(|i: u64| {
                vec![
                    Value::Integer((BASE + i) as i64),
                    Value::Integer(100_000 + i as i64),
                    Value::Text(format!("/bin/p{i}")),
                    Value::Text(format!("p{i} x")),
                ]
            })
            .collect();
        assert_eq!(rs.rows, want);

        // An empty range visits nothing.
        let (n, rs) = visited(
            &engine,
            &store,
            &format!("SELECT count(*) FROM process_events WHERE time BETWEEN {b} AND {a}"),
        );
        assert_eq!((n, rs.rows), (0, vec![vec![Value::Integer(0)]]));
    }

    #[test]
    fn limit_stops_after_one_chunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, store) = filled_engine(dir.path());
        let (n, rs) = visited(
            &engine,
            &store,
            "SELECT pid, time FROM process_events LIMIT 1",
        );
        assert_eq!(
            rs.rows,
            vec![vec![Value::Integer(100_000), Value::Integer(BASE as i64)]]
        );
        // One scan chunk (256 rows) is read, not the 10,000.
        assert_eq!(n, 256, "LIMIT 1 visited {n} rows");

        // Without a constraint the whole table is read. Each chunk after the first restarts
        // at the time of the previous chunk's last row (`Store::scan` starts at a time, not at
        // a time and seq), so that row is visited twice: one extra visit per chunk boundary.
        let (n, rs) = visited(&engine, &store, "SELECT count(*) FROM process_events");
        let chunk_boundaries = (EVENTS - 1) / 256;
        assert_eq!(
            (n, rs.rows),
            (
                EVENTS + chunk_boundaries,
                vec![vec![Value::Integer(EVENTS as i64)]]
            )
        );
    }
}
