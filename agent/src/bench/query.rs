//! The query micro-benchmark behind `osprey bench-query` (and `cargo xtask bench`): the same
//! process events stored two ways, in Osprey's store (RocksDB, key = time, no index) read
//! through the `process_events` virtual table, and in a plain on-disk SQLite table with an
//! index on `time`, as a user would build one. It measures a time-range query returning 1% of
//! the rows and a full scan, each the median of 5 runs after one warm-up run.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use rusqlite::{Connection, types::Value};
use serde::Serialize;

use crate::{
    events::{ProcessEvent, ProcessSyscall},
    flags::Flags,
    sql::{Engine, TableEnv, vtab::QueryContext},
    storage::{Store, event_key},
};

/// First event's time, seconds since the epoch; events follow one per second.
pub const BASE_SECS: u64 = 1_700_000_000;
const RUNS: usize = 5;
const BATCH: u64 = 10_000;

/// The figures, for humans (JSON) and for `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryBench {
    pub events: u64,
    /// Rows the range query returns (1% of `events`, at least 1).
    pub range_rows: u64,
    /// Store rows the range query visited (equal to `range_rows` when push-down works).
    pub osprey_range_rows_visited: u64,
    pub osprey_range_ms: f64,
    pub sqlite_range_ms: f64,
    /// osprey / sqlite latency: below 1 means Osprey is faster.
    pub range_latency_ratio: f64,
    pub osprey_scan_rows_per_sec: f64,
    pub sqlite_scan_rows_per_sec: f64,
    /// osprey / sqlite throughput: above 1 means Osprey is faster.
    pub scan_throughput_ratio: f64,
    /// Time to load the events. Osprey: encode + write. SQLite: reading the rows back through
    /// the virtual table, inserting them in one transaction, building the index.
    pub osprey_load_secs: f64,
    pub sqlite_load_secs: f64,
}

/// A synthetic exec event, varied enough that compression and decoding do real work.
fn event(i: u64) -> ProcessEvent {
    const BINARIES: [&str; 4] = [
        "/usr/bin/bash",
        "/usr/bin/curl",
        "/usr/sbin/sshd",
        "/bin/ls",
    ];
    let path = BINARIES[(i % 4) as usize];
    let pid = 1000 + (i % 60_000) as u32;
    ProcessEvent {
        time_ns: (BASE_SECS + i) * 1_000_000_000,
        uptime: 100 + i,
        syscall: Some(ProcessSyscall::Execve),
        pid,
        tid: pid,
        parent: 1 + (i % 500) as u32,
        uid: (i % 3) as u32 * 1000,
        gid: (i % 3) as u32 * 1000,
        euid: 0,
        egid: 0,
        auid: u32::MAX,
        path: path.to_owned(),
        argv: vec![
            path.to_owned(),
            format!("--arg={i}"),
            "/tmp/work".to_owned(),
        ],
        cgroup_id: 4242,
        mnt_ns: 4_026_531_841,
        start_ns: (BASE_SECS + i) * 1_000_000_000,
        ..Default::default()
    }
}

/// Median of `RUNS` timed runs of `f`, after one untimed warm-up run.
fn median(mut f: impl FnMut() -> Result<(), String>) -> Result<Duration, String> {
    f()?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    Ok(times[RUNS / 2])
}

/// Runs `sql` on a plain SQLite connection and collects every value, as [`Engine::query`]
/// does, so both sides pay for the same result materialisation.
fn sqlite_rows(conn: &Connection, sql: &str) -> Result<Vec<Vec<Value>>, String> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| e.to_string())?;
    let n = stmt.column_count();
    let mut q = stmt.raw_query();
    let mut rows = Vec::new();
    while let Some(r) = q.next().map_err(|e| e.to_string())? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(r.get::<_, Value>(i).map_err(|e| e.to_string())?);
        }
        rows.push(row);
    }
    Ok(rows)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// Writes `events` process events into a fresh store and a plain SQLite file under `dir`
/// (in a new sub-folder, removed afterwards), then measures both.
pub fn query_bench(dir: &Path, events: u64) -> Result<QueryBench, String> {
    if events == 0 {
        return Err("--events must be at least 1".to_owned());
    }
    let work = dir.join(format!(
        "osprey-query-bench-{}-{}",
        std::process::id(),
        crate::sys::now_ns()
    ));
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let result = run(&work, events);
    // Only our own fresh sub-folder is removed.
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run(work: &Path, events: u64) -> Result<QueryBench, String> {
    // Osprey's side: encode and write in batches, as the daemon's writer does.
    let load = Instant::now();
    let store = Arc::new(Store::open_primary(&work.join("osprey.db")).map_err(|e| e.to_string())?);
    let mut i = 0;
    while i < events {
        let end = (i + BATCH).min(events);
        let items: Vec<_> = (i..end)
            .map(|n| {
                let e = event(n);
                ("process_events", event_key(e.time_ns, n), e.encode())
            })
            .collect();
        store.write(&items, false).map_err(|e| e.to_string())?;
        i = end;
    }
    store.flush_wal().map_err(|e| e.to_string())?;
    let osprey_load_secs = load.elapsed().as_secs_f64();
    let engine = Engine::new(
        TableEnv::new(Some(store.clone()), Arc::new(Flags::default()))
            .with_tables(crate::sources::tables()),
    )
    .map_err(|e| e.to_string())?;

    // SQLite's side: the very rows the virtual table produces, every column (hidden ones
    // too), with the column names and types of the virtual table.
    let table = engine
        .table("process_events")
        .ok_or("no process_events table")?
        .clone();
    let cols = table.columns();
    let visible: Vec<&str> = cols.iter().filter(|c| !c.hidden).map(|c| c.name).collect();
    let load = Instant::now();
    let mut conn = Connection::open(work.join("plain.sqlite")).map_err(|e| e.to_string())?;
    let defs: Vec<String> = cols
        .iter()
        .map(|c| format!("\"{}\" {}", c.name, c.ty.sql_name()))
        .collect();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         CREATE TABLE process_events({});",
        defs.join(", ")
    ))
    .map_err(|e| e.to_string())?;
    {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        {
            let marks = vec!["?"; cols.len()].join(", ");
            let mut ins = tx
                .prepare(&format!("INSERT INTO process_events VALUES ({marks})"))
                .map_err(|e| e.to_string())?;
            for row in table.generate(&QueryContext::default())? {
                ins.execute(rusqlite::params_from_iter(row?))
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
    }
    conn.execute_batch("CREATE INDEX process_events_time ON process_events(time); ANALYZE;")
        .map_err(|e| e.to_string())?;
    let sqlite_load_secs = load.elapsed().as_secs_f64();

    // 1% of the rows, from the middle of the time span.
    let range_rows = (events / 100).max(1);
    let lo = BASE_SECS + (events - range_rows) / 2;
    let hi = lo + range_rows - 1;
    let select = visible.join(", ");
    let range_sql = format!("SELECT {select} FROM process_events WHERE time BETWEEN {lo} AND {hi}");
    let scan_sql = "SELECT count(*), sum(pid) FROM process_events";

    // Both sides must agree before their speed means anything.
    let ours = engine.query(&range_sql)?;
    let theirs = sqlite_rows(&conn, &range_sql)?;
    if ours.rows.len() as u64 != range_rows || ours.rows != theirs {
        return Err(format!(
            "range results differ: osprey {} rows, sqlite {} rows, expected {range_rows}",
            ours.rows.len(),
            theirs.len()
        ));
    }
    let before = store.rows_visited();
    engine.query(&range_sql)?;
    let osprey_range_rows_visited = store.rows_visited() - before;
    let scan_ours = engine.query(scan_sql)?.rows;
    let scan_theirs = sqlite_rows(&conn, scan_sql)?;
    if scan_ours != scan_theirs {
        return Err(format!(
            "scan results differ: {scan_ours:?} vs {scan_theirs:?}"
        ));
    }

    let osprey_range = median(|| engine.query(&range_sql).map(drop))?;
    let sqlite_range = median(|| sqlite_rows(&conn, &range_sql).map(drop))?;
    let osprey_scan = median(|| engine.query(scan_sql).map(drop))?;
    let sqlite_scan = median(|| sqlite_rows(&conn, scan_sql).map(drop))?;
    let per_sec = |d: Duration| events as f64 / d.as_secs_f64().max(1e-9);
    let (o_scan, s_scan) = (per_sec(osprey_scan), per_sec(sqlite_scan));
    Ok(QueryBench {
        events,
        range_rows,
        osprey_range_rows_visited,
        osprey_range_ms: ms(osprey_range),
        sqlite_range_ms: ms(sqlite_range),
        range_latency_ratio: ratio(ms(osprey_range), ms(sqlite_range)),
        osprey_scan_rows_per_sec: o_scan,
        sqlite_scan_rows_per_sec: s_scan,
        scan_throughput_ratio: ratio(o_scan, s_scan),
        osprey_load_secs,
        sqlite_load_secs,
    })
}

/// `--events N --dir DIR` (or `--events=N --dir=DIR`) for `osprey bench-query`.
pub fn parse_args(args: &[String]) -> Result<(u64, PathBuf), String> {
    const USAGE: &str = "usage: osprey bench-query --events N --dir DIR";
    let (mut events, mut dir) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value; {USAGE}"))
        };
        match name {
            "--events" => {
                let v = value()?;
                events = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("--events takes a number, not {v:?}"))?,
                );
            }
            "--dir" => dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    match (events, dir) {
        (Some(e), Some(d)) => Ok((e, d)),
        _ => Err(USAGE.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_shape_with_20k_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = query_bench(dir.path(), 20_000).expect("bench runs");
        assert_eq!(b.events, 20_000);
        assert_eq!(b.range_rows, 200);
        assert_eq!(b.osprey_range_rows_visited, 200);
        for (name, v) in [
            ("osprey_range_ms", b.osprey_range_ms),
            ("sqlite_range_ms", b.sqlite_range_ms),
            ("range_latency_ratio", b.range_latency_ratio),
            ("osprey_scan_rows_per_sec", b.osprey_scan_rows_per_sec),
            ("sqlite_scan_rows_per_sec", b.sqlite_scan_rows_per_sec),
            ("scan_throughput_ratio", b.scan_throughput_ratio),
            ("osprey_load_secs", b.osprey_load_secs),
            ("sqlite_load_secs", b.sqlite_load_secs),
        ] {
            assert!(v.is_finite() && v > 0.0, "{name} = {v}");
        }
        // The work folder is gone; only what the caller had stays.
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("readdir").count(),
            0,
            "bench left files behind"
        );
        let json = serde_json::to_value(&b).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "events",
                "range_rows",
                "osprey_range_rows_visited",
                "osprey_range_ms",
                "sqlite_range_ms",
                "range_latency_ratio",
                "osprey_scan_rows_per_sec",
                "sqlite_scan_rows_per_sec",
                "scan_throughput_ratio",
                "osprey_load_secs",
                "sqlite_load_secs"
            ]
        );
    }

    #[test]
    fn tiny_event_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = query_bench(dir.path(), 1).expect("bench runs");
        assert_eq!((b.range_rows, b.osprey_range_rows_visited), (1, 1));
        assert_eq!(
            query_bench(dir.path(), 0),
            Err("--events must be at least 1".to_owned())
        );
    }

    #[test]
    fn args() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&s(&["--events", "5", "--dir", "/tmp/x"])),
            Ok((5, PathBuf::from("/tmp/x")))
        );
        assert_eq!(
            parse_args(&s(&["--dir=/d", "--events=7"])),
            Ok((7, PathBuf::from("/d")))
        );
        assert_eq!(
            parse_args(&s(&["--events", "many", "--dir", "/d"])),
            Err("--events takes a number, not \"many\"".to_owned())
        );
        assert!(parse_args(&s(&["--events"])).is_err());
        assert!(parse_args(&s(&["--dir", "/d"])).is_err());
        assert!(parse_args(&s(&["--bogus", "1"])).is_err());
    }
}
