//! The schedule through the real daemon: differential results of a process that starts and
//! exits, a snapshot query, a pack gated by a failing discovery query, decorators, osquery's
//! exact fields in `osqueryd.results.log`; no duplicate `added` after a restart or a SIGKILL;
//! a logger that cannot write for 10 s keeps every line and delivers them in order once it
//! can; beyond `buffered_log_max` the lines that do not fit are counted, exactly.
//!
//! The daemon runs with `disable_events` (no eBPF): this is the control plane, not capture.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{Daemon, s};

struct Setup {
    _dir: tempfile::TempDir,
    logs: PathBuf,
    /// `--config_path=…`
    conf: String,
    /// `--logger_path=…`, on the command line: the harness gives every other daemon a
    /// logger_path of its own.
    logp: String,
}

fn setup(child: u32) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("log");
    let conf = dir.path().join("osquery.conf");
    let text = format!(
        r#"{{
  "options": {{"disable_events": true, "logger_path": "{logs}", "logger_plugin": "filesystem",
               "host_identifier": "specified", "specified_identifier": "e2e-host",
               "schedule_splay_percent": 0}},
  "schedule": {{
    "kid": {{"query": "SELECT pid, name FROM processes WHERE pid = {child}", "interval": 1}},
    "snap": {{"query": "SELECT 'x' AS s", "interval": 1, "snapshot": true}}
  }},
  "packs": {{
    "gated": {{"discovery": ["SELECT 1 WHERE 0"],
               "queries": {{"g": {{"query": "SELECT 1 AS one", "interval": 1}}}}}}
  }},
  "decorators": {{"load": ["SELECT 'dec' AS tag"]}}
}}"#,
        logs = logs.display()
    );
    std::fs::write(&conf, text).expect("config");
    Setup {
        _dir: dir,
        conf: format!("--config_path={}", conf.display()),
        logp: format!("--logger_path={}", logs.display()),
        logs,
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Waits until `path` has at least `n` lines; returns them.
fn wait_lines(path: &Path, n: usize, d: &Daemon) -> Vec<Value> {
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(20));
    loop {
        let got = lines(path);
        if got.len() >= n || Instant::now() > deadline {
            assert!(
                got.len() >= n,
                "{} has {} line(s), wanted {n}: {got:?}\n{}",
                path.display(),
                got.len(),
                d.log()
            );
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (name, action, columns, counter, decorations) of a result line.
fn summary(v: &Value) -> (String, String, String, u64, String) {
    (
        v["name"].as_str().unwrap_or_default().to_owned(),
        v["action"].as_str().unwrap_or_default().to_owned(),
        v["columns"].to_string(),
        v["counter"].as_u64().unwrap_or(u64::MAX),
        v["decorations"].to_string(),
    )
}

#[test]
fn results_of_a_process_that_starts_and_exits_are_logged_once_across_restarts() {
    let mut child = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    // Until the child has called exec, its name is its parent's.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n"
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = setup(pid);
    let (conf, logp) = (&st.conf, &st.logp);
    let results = st.logs.join("osqueryd.results.log");
    let snapshots = st.logs.join("osqueryd.snapshots.log");

    let d = Daemon::start(&[conf, logp]);
    let got = wait_lines(&results, 1, &d);
    let cols = format!(r#"{{"name":"sleep","pid":"{pid}"}}"#);
    let dec = r#"{"tag":"dec"}"#.to_owned();
    assert_eq!(
        summary(&got[0]),
        ("kid".into(), "added".into(), cols.clone(), 0, dec.clone())
    );
    // osquery's fields, in its order.
    let keys: Vec<&str> = got[0]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "name",
            "hostIdentifier",
            "calendarTime",
            "unixTime",
            "epoch",
            "counter",
            "numerics",
            "decorations",
            "columns",
            "action"
        ]
    );
    assert_eq!(
        (
            got[0]["hostIdentifier"].as_str(),
            got[0]["epoch"].as_u64(),
            got[0]["numerics"].as_bool()
        ),
        (Some("e2e-host"), Some(0), Some(false))
    );
    // The daemon's own log lines are osquery status lines too: in osqueryd.INFO as glog
    // writes them.
    let info_path = st.logs.join("osqueryd.INFO");
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(20));
    let running = loop {
        let text = std::fs::read_to_string(&info_path).unwrap_or_default();
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("] osprey daemon ") && l.contains(" running: "))
        {
            break l.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no start line in {text:?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // I<mmdd> <hh:mm:ss>.000000 <pid> mod.rs:<line>] osprey daemon <pid> running: …
    let (head, msg) = running.split_once("] ").expect("glog layout");
    let fields: Vec<&str> = head.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{running}");
    assert!(
        fields[0].starts_with('I') && fields[0].len() == 5,
        "{running}"
    );
    assert_eq!(fields[2], d.pid().to_string(), "{running}");
    assert!(fields[3].starts_with("mod.rs:"), "{running}");
    assert!(
        msg.starts_with(&format!("osprey daemon {} running: ", d.pid())),
        "{running}"
    );
    let snap = wait_lines(&snapshots, 1, &d);
    assert_eq!(snap[0]["snapshot"].to_string(), r#"[{"s":"x"}]"#);
    assert_eq!(snap[0]["action"].as_str(), Some("snapshot"));

    // The process exits: one removed line, counter 1.
    child.kill().expect("kill");
    child.wait().expect("wait");
    let got = wait_lines(&results, 2, &d);
    assert_eq!(
        summary(&got[1]),
        ("kid".into(), "removed".into(), cols, 1, dec)
    );

    // The scheduler's statistics, seen from `osprey query`.
    let rows =
        d.query("SELECT name, interval, executions > 0 AS ran FROM osquery_schedule ORDER BY name");
    let sched: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                s(r, "name").into(),
                s(r, "interval").into(),
                s(r, "ran").into(),
            )
        })
        .collect();
    assert_eq!(
        sched,
        [
            ("kid".into(), "1".into(), "1".into()),
            ("pack_gated_g".into(), "1".into(), "0".into()),
            ("snap".into(), "1".into(), "1".into()),
        ]
    );
    let packs =
        d.query("SELECT name, active, discovery_executions > 0 AS checked FROM osquery_packs");
    assert_eq!(
        (
            s(&packs[0], "name"),
            s(&packs[0], "active"),
            s(&packs[0], "checked")
        ),
        ("gated", "0", "1")
    );

    // A clean restart, then a SIGKILL and a restart: the scheduler runs again (snapshots go
    // on) and no result is reported twice.
    let before = lines(&snapshots).len();
    let d = d.stop_keep().restart(&[conf, logp]);
    wait_lines(&snapshots, before + 2, &d);
    let before = lines(&snapshots).len();
    let d = d.kill9().restart(&[conf, logp]);
    wait_lines(&snapshots, before + 2, &d);
    let all = lines(&results);
    assert_eq!(all.len(), 2, "no duplicate after restarts: {all:?}");
    // Nothing from the gated pack anywhere.
    for f in [&results, &snapshots] {
        assert!(
            !std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains("pack_gated_g"),
            "{}",
            f.display()
        );
    }
    d.stop();
}

#[test]
fn a_logger_that_cannot_write_keeps_every_line_and_delivers_them_in_order() {
    let st = setup(u32::MAX);
    let (conf, logp) = (&st.conf, &st.logp);
    let snapshots = st.logs.join("osqueryd.snapshots.log");
    // A file where the log folder should be: every write fails.
    std::fs::write(&st.logs, "in the way").expect("blocker");
    let d = Daemon::start(&[conf, logp]);
    std::thread::sleep(tests::scaled(Duration::from_secs(10)));
    assert!(
        d.log().contains("logger filesystem: creating"),
        "the failure is logged:\n{}",
        d.log()
    );
    // While down: nothing counted as lost.
    let lost = d.query(
        "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE reason = 'log_buffer_full' AND window_start = 0",
    );
    assert_eq!(s(&lost[0], "n"), "0");
    let ran = d.query("SELECT executions FROM osquery_schedule WHERE name = 'snap'");
    let ran: usize = s(&ran[0], "executions").parse().expect("a number");
    assert!(ran >= 2, "the scheduler went on while the logger was down");
    // The sink comes back: every snapshot of the outage arrives, in time order.
    std::fs::remove_file(&st.logs).expect("unblock");
    let got = wait_lines(&snapshots, ran, &d);
    let times: Vec<u64> = got.iter().filter_map(|v| v["unixTime"].as_u64()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(times, sorted, "in order, each run once");
    // The recovery is logged right after the write the lines came with.
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(5));
    while !d.log().contains("logger filesystem: delivering again") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.log().contains("logger filesystem: delivering again"),
        "{}",
        d.log()
    );
    d.stop();
}

#[test]
fn lines_beyond_buffered_log_max_are_counted_exactly() {
    let st = setup(u32::MAX);
    let (conf, logp) = (&st.conf, &st.logp);
    std::fs::write(&st.logs, "in the way").expect("blocker");
    // Only the snapshot lines go into the buffer (no status lines).
    let d = Daemon::start(&[conf, logp, "--buffered_log_max=2", "--logger_min_status=3"]);
    let sql = "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE publisher = 'logger' \
               AND reason = 'log_buffer_full' AND window_start = 0";
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(20));
    while s(&d.query(sql)[0], "n").parse::<u64>().unwrap_or(0) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped = d.stop_keep();
    // Each snapshot run makes one line; two fit, the rest are counted.
    let runs: u64 = s(
        &tests::query_at(
            &stopped.db,
            "SELECT executions FROM osquery_schedule WHERE name = 'snap'",
        )[0],
        "executions",
    )
    .parse()
    .expect("a number");
    let lost: u64 = s(&tests::query_at(&stopped.db, sql)[0], "n")
        .parse()
        .expect("a number");
    assert!(runs >= 5, "{runs} runs\n{}", stopped.log);
    assert_eq!(lost, runs - 2, "{}", stopped.log);
    // Back up: the two buffered lines come first, from before the stop.
    let stop_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    std::fs::remove_file(&st.logs).expect("unblock");
    let d = stopped.restart(&[conf, logp, "--buffered_log_max=2", "--logger_min_status=3"]);
    let got = wait_lines(&st.logs.join("osqueryd.snapshots.log"), 3, &d);
    let times: Vec<u64> = got.iter().filter_map(|v| v["unixTime"].as_u64()).collect();
    assert!(
        times[0] < times[1] && times[1] <= stop_time,
        "{times:?} stop {stop_time}"
    );
    assert!(times[2] > stop_time, "{times:?} stop {stop_time}");
    d.stop();
}

#[test]
fn kafka_gets_every_line_exactly_once_across_a_broker_outage() {
    use rdkafka::{
        ClientConfig, Message, Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer},
        mocking::MockCluster,
    };
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("osquery", 1, 1).expect("topic");
    let st = setup(u32::MAX);
    let (conf, logp) = (&st.conf, &st.logp);
    // The scheduler stops after 8 s, so the number of lines is final while the daemon still
    // delivers.
    let d = Daemon::start(&[
        conf,
        logp,
        "--logger_plugin=kafka_producer",
        &format!("--logger_kafka_brokers={bootstrap}"),
        "--logger_kafka_topic=osquery",
        "--schedule_timeout=8",
        "--logger_min_status=3",
    ]);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "osprey-e2e")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("osquery", 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut got: Vec<Value> = Vec::new();
    let poll_until = |got: &mut Vec<Value>, n: usize, secs: u64| {
        let deadline = Instant::now() + tests::scaled(Duration::from_secs(secs));
        while got.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let text = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                got.push(serde_json::from_str(&text).expect("a JSON line"));
            }
        }
    };
    poll_until(&mut got, 2, 20);
    assert!(got.len() >= 2, "{}", d.log());
    // Three seconds without the broker: the scheduler goes on, the lines wait.
    cluster.broker_down(1).expect("down");
    std::thread::sleep(Duration::from_secs(3));
    cluster.broker_up(1).expect("up");
    // After the scheduler's timeout the count is final.
    std::thread::sleep(tests::scaled(Duration::from_secs(6)));
    let runs: usize = s(
        &d.query("SELECT executions FROM osquery_schedule WHERE name = 'snap'")[0],
        "executions",
    )
    .parse()
    .expect("a number");
    poll_until(&mut got, runs, 20);
    // A moment more: a duplicate would show up now.
    poll_until(&mut got, runs + 1, 1);
    let times: Vec<u64> = got.iter().filter_map(|v| v["unixTime"].as_u64()).collect();
    let mut distinct = times.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        got.len(),
        runs,
        "one message per run: {times:?}\n{}",
        d.log()
    );
    assert_eq!(times, distinct, "in order, none twice");
    assert!(runs >= 6, "{runs} runs");
    assert!(
        got.iter()
            .all(|v| v["name"] == "snap" && v["action"] == "snapshot")
    );
    d.stop();
}

#[test]
fn a_scheduled_query_over_process_events_reports_each_exec_once() {
    if !tests::privileged() {
        return;
    }
    let m = tests::marker("sched");
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("log");
    let conf = dir.path().join("osquery.conf");
    let me = std::process::id();
    std::fs::write(
        &conf,
        format!(
            r#"{{"options": {{"logger_path": "{}", "schedule_splay_percent": 0}},
                "schedule": {{"execs": {{"query": "SELECT path, cmdline FROM process_events WHERE syscall = 'execve' AND parent = {me} AND cmdline LIKE '%{m}%'", "interval": 1}},
                              "counts": {{"query": "SELECT count(*) AS n FROM process_events WHERE syscall = 'execve' AND parent = {me} AND cmdline LIKE '%{m}%'", "interval": 1}}}}}}"#,
            logs.display()
        ),
    )
    .expect("config");
    let d = Daemon::start(&[
        &format!("--config_path={}", conf.display()),
        &format!("--logger_path={}", logs.display()),
    ]);
    let results = logs.join("osqueryd.results.log");
    let run = |tag: &str| {
        let status = std::process::Command::new("/bin/true")
            .arg(format!("{m}-{tag}"))
            .status()
            .expect("/bin/true");
        assert!(status.success());
    };
    let execs = |all: &[Value]| -> Vec<Value> {
        all.iter()
            .filter(|v| v["name"] == "execs")
            .cloned()
            .collect()
    };
    let wait_execs = |n: usize| {
        let deadline = Instant::now() + tests::scaled(Duration::from_secs(20));
        while execs(&lines(&results)).len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    run("a");
    wait_execs(1);
    let first = execs(&lines(&results));
    // Several runs later, a second exec: reported alone, the first is not removed.
    std::thread::sleep(tests::scaled(Duration::from_secs(3)));
    run("b");
    wait_execs(2);
    std::thread::sleep(tests::scaled(Duration::from_secs(3)));
    let all = lines(&results);
    let got = execs(&all);
    assert_eq!(got.len(), 2, "nothing more: {got:?}");
    // Each run of `counts` sees only the execs it has not seen (osquery's events_optimize):
    // every run logs its count as added, and the counts add up to the two execs, once each.
    let counts: Vec<(String, u64)> = all
        .iter()
        .filter(|v| v["name"] == "counts")
        .map(|v| {
            (
                v["action"].as_str().unwrap_or_default().to_owned(),
                v["columns"]["n"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(99),
            )
        })
        .collect();
    assert!(counts.iter().all(|(a, _)| a == "added"), "{counts:?}");
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 2, "{counts:?}");
    assert!(counts.len() >= 4, "a line per run: {counts:?}");
    let summary: Vec<(String, String, u64)> = got
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap_or_default().to_owned(),
                v["columns"]["cmdline"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["counter"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("added".into(), format!("/bin/true {m}-a"), 0),
            ("added".into(), format!("/bin/true {m}-b"), 1),
        ],
        "{first:?}\n{}",
        d.log()
    );
    d.stop();
}

#[test]
fn a_sigkill_while_the_logger_is_down_loses_no_buffered_line() {
    let st = setup(u32::MAX);
    let (conf, logp) = (&st.conf, &st.logp);
    let snapshots = st.logs.join("osqueryd.snapshots.log");
    std::fs::write(&st.logs, "in the way").expect("blocker");
    let d = Daemon::start(&[conf, logp]);
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(20));
    // Empty until the first run's statistics are written.
    let runs = || -> u64 {
        d.query("SELECT executions FROM osquery_schedule WHERE name = 'snap'")
            .first()
            .and_then(|r| s(r, "executions").parse().ok())
            .unwrap_or(0)
    };
    while runs() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped = d.kill9();
    // Runs whose lines were in the buffer at the kill (their statistics are written after
    // the lines, so this is a lower bound).
    let before: u64 = s(
        &tests::query_at(
            &stopped.db,
            "SELECT executions FROM osquery_schedule WHERE name = 'snap'",
        )[0],
        "executions",
    )
    .parse()
    .expect("a number");
    assert!(before >= 4, "{before}\n{}", stopped.log);
    let restart = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    std::fs::remove_file(&st.logs).expect("unblock");
    let d = stopped.restart(&[conf, logp]);
    let got = wait_lines(&snapshots, before as usize + 1, &d);
    let old: Vec<u64> = got
        .iter()
        .filter_map(|v| v["unixTime"].as_u64())
        .filter(|t| *t <= restart)
        .collect();
    let mut distinct = old.clone();
    distinct.dedup();
    assert!(
        old.len() as u64 >= before,
        "{} of {before} lines from before the kill",
        old.len()
    );
    assert_eq!(old, distinct, "none twice");
    d.stop();
}
