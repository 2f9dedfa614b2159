//! Tests over the registry as a whole: the schema of every table (the sources' included)
//! against `sql/tables/schema.expected`, and the event tables' push-down proofs (a
//! constrained scan visits only the store rows it needs, counted by
//! [`Store::rows_visited`]).

use std::sync::Arc;

use rusqlite::types::Value;

use crate::{
    events::{ProcessEvent, ProcessSyscall},
    flags::Flags,
    sql::{Engine, ResultSet, TableEnv, tables::schema::describe, vtab::Table},
    storage::{Store, event_key},
};

const EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/sql/tables/schema.expected"
);

#[test]
fn schema_matches_expectation() {
    let env = TableEnv::new(None, Arc::new(Flags::default())).with_tables(super::tables());
    let engine = Engine::new(env).expect("engine");
    let tables: Vec<_> = engine
        .table_names()
        .into_iter()
        .filter_map(|n| engine.table(n).cloned())
        .collect();
    let actual = describe(&tables);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(EXPECTED, &actual).expect("writing schema.expected");
        return;
    }
    let expected = std::fs::read_to_string(EXPECTED).unwrap_or_default();
    if expected != actual {
        let diff: Vec<String> = diff_lines(&expected, &actual);
        panic!(
            "table schemas differ from {EXPECTED}:\n{}\n\nIf the change is intended, run\n  \
             UPDATE_EXPECT=1 cargo test -p agent schema_matches_expectation\nand commit the \
             updated file.",
            diff.join("\n")
        );
    }
}

/// osquery's Linux tables and columns (`sql/tables/osquery_columns.txt`, from osquery's
/// specs): every table Osprey has under an osquery name has each of osquery's visible
/// columns, with osquery's type (UNSIGNED_BIGINT as BIGINT; DATETIME and BLOB as TEXT), and
/// shows it in `SELECT *`. Prints the tables that are complete; at least 80 must be.
#[test]
fn osquery_columns_match() {
    let spec = include_str!("../sql/tables/osquery_columns.txt");
    type Columns<'a> = Vec<(&'a str, &'a str, bool)>;
    let mut osquery: Vec<(&str, Columns<'_>)> = Vec::new();
    for line in spec
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(col) = line.strip_prefix("  ") {
            let f: Vec<&str> = col.split_whitespace().collect();
            let last = osquery.last_mut().expect("a table before its columns");
            last.1.push((f[0], f[1], f.get(2) == Some(&"HIDDEN")));
        } else {
            osquery.push((line, Vec::new()));
        }
    }
    assert!(osquery.len() > 150, "{} osquery tables", osquery.len());
    let env = TableEnv::new(None, Arc::new(Flags::default())).with_tables(super::tables());
    let engine = Engine::new(env).expect("engine");
    let mut complete = Vec::new();
    let mut wrong = Vec::new();
    for (name, cols) in &osquery {
        let Some(t) = engine.table(name) else {
            continue;
        };
        for (col, ty, hidden) in cols.iter().filter(|c| !c.2) {
            let _ = hidden;
            let want = match *ty {
                "UNSIGNED_BIGINT" => "BIGINT",
                "DATETIME" | "BLOB" => "TEXT",
                t => t,
            };
            match t.columns().iter().find(|c| c.name == *col) {
                None => wrong.push(format!("{name}.{col}: missing")),
                Some(c) if c.ty.sql_name() != want => wrong.push(format!(
                    "{name}.{col}: {} (osquery: {want})",
                    c.ty.sql_name()
                )),
                Some(c) if c.hidden => wrong.push(format!("{name}.{col}: hidden")),
                Some(_) => {}
            }
        }
        complete.push(*name);
    }
    assert!(
        wrong.is_empty(),
        "columns unlike osquery's:\n{}",
        wrong.join("\n")
    );
    println!(
        "{} of osquery's {} Linux tables, with all their columns: {}",
        complete.len(),
        osquery.len(),
        complete.join(", ")
    );
    assert!(complete.len() >= 80, "only {} tables", complete.len());
}

/// A short listing of lines only in one side (`-` expected, `+` actual), with the table
/// each is in; enough to see what changed without a diff tool.
fn diff_lines(expected: &str, actual: &str) -> Vec<String> {
    let tag = |text: &str| -> Vec<String> {
        let mut table = "";
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                if l.starts_with(' ') {
                    format!("{table}:{}", l.trim())
                } else {
                    table = l;
                    l.to_owned()
                }
            })
            .collect()
    };
    let (e, a) = (tag(expected), tag(actual));
    let mut out: Vec<String> = e
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        a.iter()
            .filter(|l| !e.contains(l))
            .map(|l| format!("+ {l}")),
    );
    if out.is_empty() {
        out.push("(same lines, different order)".to_owned());
    }
    out
}

#[test]
fn describe_format() {
    use crate::sql::vtab::{Column, ColumnType, QueryContext, Rows};
    struct T;
    impl Table for T {
        fn name(&self) -> &'static str {
            "t"
        }
        fn columns(&self) -> &'static [Column] {
            const C: &[Column] = &[
                crate::sql::vtab::col("a", ColumnType::Text),
                crate::sql::vtab::hidden("b", ColumnType::BigInt),
                Column {
                    name: "c",
                    ty: ColumnType::Double,
                    hidden: true,
                    required: true,
                },
            ];
            C
        }
        fn generate(&self, _: &QueryContext) -> Result<Rows, String> {
            Ok(Box::new(std::iter::empty()))
        }
    }
    let tables: Vec<Arc<dyn Table>> = vec![Arc::new(T)];
    assert_eq!(
        describe(&tables),
        "t\n  a TEXT\n  b BIGINT HIDDEN\n  c DOUBLE HIDDEN REQUIRED\n\n"
    );
    assert_eq!(
        diff_lines("t\n  a TEXT\n", "t\n  a INTEGER\n"),
        vec!["- t:a TEXT", "+ t:a INTEGER"]
    );
}

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
    let env =
        TableEnv::new(Some(store.clone()), Arc::new(Flags::default())).with_tables(super::tables());
    let engine = Engine::new(env).expect("engine");
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
