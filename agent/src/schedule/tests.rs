use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::{
    config::live::build,
    flags::{Flags, Source},
    logger::{Kind, Line},
    storage::Store,
};

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    buffer: Arc<LogBuffer>,
    counters: Arc<LoggerCounters>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_primary(&dir.path().join("db")).unwrap());
        let buffer = Arc::new(LogBuffer::open(store.clone()).unwrap());
        Self {
            dir,
            store,
            buffer,
            counters: Arc::new(LoggerCounters::default()),
        }
    }

    fn live(&self, config: &str, generation: u64) -> Live {
        let path = self.dir.path().join("osquery.conf");
        std::fs::write(&path, config).unwrap();
        let mut base = Flags::default();
        base.parse_args(
            &[
                "--host_identifier=specified".to_owned(),
                "--specified_identifier=test-host".to_owned(),
                "--schedule_splay_percent=0".to_owned(),
            ],
            Source::CommandLine,
        )
        .unwrap();
        let (mut live, _) = build(&base, Some(&path), None).unwrap();
        live.generation = generation;
        live
    }

    fn scheduler(&self, live: &Live, now: u64) -> Scheduler {
        let env = TableEnv::new(Some(self.store.clone()), Arc::new(live.flags.clone()));
        Scheduler::new(env, self.buffer.clone(), self.counters.clone(), live, now).unwrap()
    }

    /// Every buffered line, then empties the buffer.
    fn take(&self) -> Vec<Line> {
        let got: Vec<Line> = self
            .buffer
            .read(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, v)| Line::decode(&v).unwrap())
            .collect();
        if let Some(last) = self.buffer.read(0, usize::MAX).unwrap().last() {
            self.buffer.release(last.0).unwrap();
        }
        got
    }
}

/// (name, action, columns, counter) of result lines in the event format.
fn events(lines: &[Line]) -> Vec<(String, String, String, u64)> {
    lines
        .iter()
        .filter(|l| l.kind == Kind::Result)
        .map(|l| {
            let v: Value = serde_json::from_str(&l.text).unwrap();
            (
                v["name"].as_str().unwrap().to_owned(),
                v["action"].as_str().unwrap().to_owned(),
                v["columns"].to_string(),
                v["counter"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn ev(name: &str, action: &str, columns: &str, counter: u64) -> (String, String, String, u64) {
    (name.into(), action.into(), columns.into(), counter)
}

/// 2026-12-01 00:00:00 UTC, a multiple of every interval in these tests.
const T0: u64 = 1_796_083_200;

#[test]
fn differential_results_with_counters_across_a_reload_and_a_restart() {
    let f = Fixture::new();
    let conf = |sql: &str| {
        format!(
            r#"{{"schedule": {{"nums": {{"query": "{sql}", "interval": 10}}}},
                "decorators": {{"load": ["SELECT 'test-host' AS host"]}}}}"#
        )
    };
    let live = f.live(&conf("SELECT 1 AS n UNION ALL SELECT 2"), 1);
    let mut s = f.scheduler(&live, T0);
    assert_eq!(s.tick(T0 + 5), 0, "not due before its interval");
    assert_eq!(s.tick(T0 + 10), 1);
    let lines = f.take();
    assert_eq!(
        events(&lines),
        [
            ev("nums", "added", r#"{"n":"1"}"#, 0),
            ev("nums", "added", r#"{"n":"2"}"#, 0)
        ]
    );
    // The exact line, field order included.
    assert_eq!(
        lines[0].text,
        format!(
            r#"{{"name":"nums","hostIdentifier":"test-host","calendarTime":"{}","unixTime":{},"epoch":0,"counter":0,"numerics":false,"decorations":{{"host":"test-host"}},"columns":{{"n":"1"}},"action":"added"}}"#,
            format::calendar_time(T0 + 10),
            T0 + 10
        )
    );
    // Nothing changed: nothing logged.
    assert_eq!(s.tick(T0 + 20), 1);
    assert_eq!(f.take(), []);
    // New SQL under the same name: compared with the last rows, counter restarts.
    let live = f.live(&conf("SELECT 2 AS n UNION ALL SELECT 3"), 2);
    s.update(&live, T0 + 21);
    s.tick(T0 + 30);
    assert_eq!(
        events(&f.take()),
        [
            ev("nums", "removed", r#"{"n":"1"}"#, 0),
            ev("nums", "added", r#"{"n":"3"}"#, 0)
        ]
    );
    // A restart (a new scheduler on the same store) reports nothing again.
    drop(s);
    let mut s = f.scheduler(&live, T0 + 31);
    s.tick(T0 + 40);
    assert_eq!(f.take(), []);
    // New SQL again after the restart: compared with what the first scheduler stored.
    let live = f.live(&conf("SELECT 3 AS n"), 3);
    s.update(&live, T0 + 41);
    s.tick(T0 + 50);
    assert_eq!(
        events(&f.take()),
        [ev("nums", "removed", r#"{"n":"2"}"#, 0)]
    );
    let st = s.stats();
    assert_eq!(
        (st.queries[0].name.as_str(), st.queries[0].executions),
        ("nums", 2),
        "two runs since the restart"
    );
}

#[test]
fn snapshots_batches_numerics_packs_and_failures() {
    let f = Fixture::new();
    let live = f.live(
        r#"{"options": {"logger_numerics": true},
            "schedule": {"snap": {"query": "SELECT 7 AS n, 'x' AS s", "interval": 10, "snapshot": true},
                         "bad": {"query": "SELECT * FROM no_such_table", "interval": 10}},
            "packs": {"gated": {"discovery": ["SELECT 1 WHERE 0"],
                                "queries": {"g": {"query": "SELECT 1 AS one", "interval": 10}}},
                      "open": {"discovery": ["SELECT 1"],
                               "queries": {"o": {"query": "SELECT 1 AS one", "interval": 10}}}}}"#,
        1,
    );
    let mut s = f.scheduler(&live, T0);
    assert_eq!(s.tick(T0 + 10), 3, "snap, bad and the open pack's query");
    let lines = f.take();
    let kinds: Vec<Kind> = lines.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [Kind::Snapshot, Kind::Status(2), Kind::Result]);
    let snap: Value = serde_json::from_str(&lines[0].text).unwrap();
    assert_eq!(snap["snapshot"].to_string(), r#"[{"n":7,"s":"x"}]"#);
    assert_eq!(
        (
            snap["action"].as_str(),
            snap["name"].as_str(),
            snap["numerics"].as_bool()
        ),
        (Some("snapshot"), Some("snap"), Some(true))
    );
    let status: Value = serde_json::from_str(&lines[1].text).unwrap();
    assert_eq!(
        status["message"].as_str(),
        Some("Error executing scheduled query bad: no such table: no_such_table")
    );
    assert_eq!(
        (
            status["severity"].as_u64(),
            status["hostIdentifier"].as_str()
        ),
        (Some(2), Some("test-host"))
    );
    assert_eq!(
        events(&lines),
        [ev("pack_open_o", "added", r#"{"one":1}"#, 0)]
    );
    assert_eq!(f.counters.query_errors.get(), 1);
    let packs: Vec<(String, bool)> = s
        .stats()
        .packs
        .into_iter()
        .map(|p| (p.name, p.active))
        .collect();
    assert_eq!(packs, [("gated".into(), false), ("open".into(), true)]);
    // A snapshot logs every time.
    s.tick(T0 + 20);
    assert_eq!(
        f.take().iter().filter(|l| l.kind == Kind::Snapshot).count(),
        1
    );
}

#[test]
fn the_batch_format_carries_removed_then_added() {
    let f = Fixture::new();
    let conf = |sql: &str| {
        format!(
            r#"{{"options": {{"logger_event_type": false}},
                "schedule": {{"q": {{"query": "{sql}", "interval": 10}}}}}}"#
        )
    };
    let mut s = f.scheduler(&f.live(&conf("SELECT 1 AS n"), 1), T0);
    s.tick(T0 + 10);
    let live = f.live(&conf("SELECT 2 AS n"), 2);
    s.update(&live, T0 + 11);
    f.take();
    s.tick(T0 + 20);
    let lines = f.take();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(&lines[0].text).unwrap();
    assert_eq!(
        v["diffResults"].to_string(),
        r#"{"removed":[{"n":"1"}],"added":[{"n":"2"}]}"#
    );
    assert_eq!(v["action"], Value::Null);
    assert!(lines[0].text.starts_with(r#"{"diffResults":"#));
}

#[test]
fn calendar_time_is_asctime_in_utc() {
    assert_eq!(format::calendar_time(0), "Thu Jan  1 00:00:00 1970 UTC");
    assert_eq!(
        format::calendar_time(1_796_140_725),
        "Tue Dec  1 15:58:45 2026 UTC"
    );
    assert_eq!(
        format::calendar_time(1_412_098_650),
        "Tue Sep 30 17:37:30 2014 UTC"
    );
}

#[test]
fn rows_of_processes_that_start_and_exit_count_up() {
    let f = Fixture::new();
    let mut a = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let mut b = std::process::Command::new("sleep")
        .arg("31")
        .spawn()
        .unwrap();
    let (pa, pb) = (a.id(), b.id());
    // Until a child has called exec, its command line is its parent's (or empty).
    for pid in [pa, pb] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .starts_with("sleep")
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let live = f.live(
        &format!(
            r#"{{"schedule": {{"kids": {{"query": "SELECT pid, cmdline FROM processes WHERE pid IN ({pa}, {pb}) ORDER BY pid", "interval": 10}}}}}}"#
        ),
        1,
    );
    let mut s = f.scheduler(&live, T0);
    s.tick(T0 + 10);
    let row = |pid: u32, secs: u32| format!(r#"{{"cmdline":"sleep {secs}","pid":"{pid}"}}"#);
    assert_eq!(
        events(&f.take()),
        [
            ev("kids", "added", &row(pa, 30), 0),
            ev("kids", "added", &row(pb, 31), 0)
        ]
    );
    a.kill().unwrap();
    a.wait().unwrap();
    s.tick(T0 + 20);
    assert_eq!(events(&f.take()), [ev("kids", "removed", &row(pa, 30), 1)]);
    s.tick(T0 + 30);
    assert_eq!(f.take(), []);
    b.kill().unwrap();
    b.wait().unwrap();
    s.tick(T0 + 40);
    assert_eq!(events(&f.take()), [ev("kids", "removed", &row(pb, 31), 2)]);
}

#[test]
fn snapshot_events_top_level_decorations_and_every_decorator_kind() {
    let f = Fixture::new();
    let live = f.live(
        r#"{"options": {"logger_snapshot_event_type": true, "decorations_top_level": true},
            "schedule": {"s": {"query": "SELECT 1 AS a UNION ALL SELECT 2", "interval": 10, "snapshot": true}},
            "decorators": {"load": ["SELECT 'l' AS load_d"],
                           "always": ["SELECT 'w' AS always_d"],
                           "interval": {"60": ["SELECT 'i' AS interval_d"]}}}"#,
        1,
    );
    let mut s = f.scheduler(&live, T0);
    s.tick(T0 + 10);
    let lines = f.take();
    assert_eq!(lines.len(), 2, "one line per row");
    let v: Value = serde_json::from_str(&lines[1].text).unwrap();
    assert_eq!(v["action"], "snapshot");
    assert_eq!(v["columns"].to_string(), r#"{"a":"2"}"#);
    // Top level, not under "decorations".
    assert_eq!(
        (
            v["load_d"].as_str(),
            v["always_d"].as_str(),
            v["interval_d"].as_str()
        ),
        (Some("l"), Some("w"), Some("i"))
    );
    assert_eq!(v["decorations"], Value::Null);
}

#[test]
fn packs_that_share_a_discovery_query_run_it_once_and_versions_gate_queries() {
    let f = Fixture::new();
    let live = f.live(
        r#"{"packs": {"a": {"discovery": ["SELECT 1"], "queries": {"q": {"query": "SELECT 1 AS x", "interval": 10}}},
                      "b": {"discovery": ["SELECT 1"], "queries": {"q": {"query": "SELECT 2 AS x", "interval": 10}}},
                      "future": {"version": "99.0.0", "queries": {"q": {"query": "SELECT 3 AS x", "interval": 10}}}},
            "schedule": {"old": {"query": "SELECT 4 AS x", "interval": 10, "version": "2.0.0"},
                         "new": {"query": "SELECT 5 AS x", "interval": 10, "version": "9.9.9"}}}"#,
        1,
    );
    let mut s = f.scheduler(&live, T0);
    assert_eq!(s.tick(T0 + 10), 3, "pack a, pack b and `old`");
    let st = s.stats();
    let packs: Vec<(String, u64, u64, bool)> = st
        .packs
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.discovery_executions,
                p.discovery_cache_hits,
                p.active,
            )
        })
        .collect();
    assert_eq!(
        packs,
        [
            ("a".into(), 1, 0, true),
            ("b".into(), 0, 1, true),
            ("future".into(), 0, 0, false)
        ]
    );
    let names: Vec<String> = st.queries.into_iter().map(|q| q.name).collect();
    assert_eq!(names, ["old", "pack_a_q", "pack_b_q"]);
}

#[test]
fn a_denylisted_query_is_skipped_until_its_time_is_up_and_shown_so() {
    let f = Fixture::new();
    let live = f.live(
        r#"{"schedule": {"bad": {"query": "SELECT 1 AS n", "interval": 10},
                          "good": {"query": "SELECT 2 AS n", "interval": 10}}}"#,
        1,
    );
    // As the watchdog leaves it: `bad` refused until T0 + 25.
    Denylist::load(&f.store, DENYLIST_META).add(&f.store, "bad", T0 + 25);
    let mut s = f.scheduler(&live, T0);
    let shown = |s: &Scheduler| -> Vec<(String, bool, u64)> {
        s.stats()
            .queries
            .iter()
            .map(|q| (q.name.clone(), q.denylisted, q.executions))
            .collect()
    };
    assert_eq!(
        shown(&s),
        [("bad".into(), true, 0), ("good".into(), false, 0)],
        "listed as denylisted before its first tick"
    );
    assert_eq!(s.tick(T0 + 10), 1);
    assert_eq!(s.tick(T0 + 20), 1);
    assert_eq!(events(&f.take()), [ev("good", "added", r#"{"n":"2"}"#, 0)]);
    // Its time is up: it runs, and is no longer shown as denylisted.
    assert_eq!(s.tick(T0 + 30), 2);
    assert_eq!(
        shown(&s),
        [("bad".into(), false, 1), ("good".into(), false, 3)]
    );
    assert_eq!(events(&f.take()), [ev("bad", "added", r#"{"n":"1"}"#, 0)]);
}
