//! The watchdog through the real daemon: scheduled queries run in a query worker process; a
//! runaway query (a recursive CTE that never ends, one that grows a string without bound) is
//! killed for CPU or memory and denylisted, while the daemon goes on capturing and storing:
//! an exec made while the runaway query runs is stored and readable before the kill.

use std::time::{Duration, Instant};

use tests::{Daemon, s};

/// The daemon's log once it contains `what` (panics after a while).
fn wait_log(d: &Daemon, what: &str) -> String {
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(60));
    loop {
        let log = d.log();
        if log.contains(what) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {what:?} in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The line of `log` that contains `what`.
fn line_of<'a>(log: &'a str, what: &str) -> &'a str {
    log.lines().find(|l| l.contains(what)).unwrap_or_default()
}

#[test]
fn runaway_queries_are_killed_and_denylisted_while_capture_goes_on() {
    if !tests::privileged() {
        return;
    }
    let m = tests::marker("watchdog");
    let me = std::process::id();
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("log");
    let conf = dir.path().join("osquery.conf");
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)";
    std::fs::write(
        &conf,
        format!(
            r#"{{"options": {{"schedule_splay_percent": 0}},
                "schedule": {{
                  "a_cpu": {{"query": "{forever} SELECT count(*) AS n FROM c", "interval": 2}},
                  "b_memory": {{"query": "{forever} SELECT length(group_concat(hex(zeroblob(50)))) AS n FROM c", "interval": 2}},
                  "c_fine": {{"query": "SELECT 1 AS one", "interval": 1, "snapshot": true}}
                }}}}"#
        ),
    )
    .expect("config");
    let mut d = Daemon::start(&[
        &format!("--config_path={}", conf.display()),
        &format!("--logger_path={}", logs.display()),
        "--watchdog_delay=0",
        "--watchdog_memory_limit=150",
        "--watchdog_latency_limit=5",
    ]);
    let log = wait_log(&d, "query worker started (pid");
    assert!(
        log.contains(
            "watchdog: scheduled and distributed queries run in query workers; limits 150 MB resident, 10% CPU for more than 5 s, enforced after 0 s"
        ),
        "{log}"
    );
    let worker_pids = |log: &str| -> Vec<u32> {
        log.lines()
            .filter_map(|l| l.split("query worker started (pid ").nth(1))
            .filter_map(|r| r.trim_end_matches(')').parse().ok())
            .collect()
    };
    let first = worker_pids(&log)[0];
    assert!(first != 0 && first != d.pid(), "{log}");

    // a_cpu runs now (every 2 s, first in name order) and for 6 s: an exec meanwhile is
    // stored and readable before the watchdog acts.
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("/bin/true")
        .arg(&m)
        .status()
        .expect("/bin/true");
    assert!(status.success());
    let execs = d.wait_rows(
        &format!(
            "SELECT path, cmdline, parent FROM process_events WHERE syscall = 'execve' AND parent = {me} AND path = '/bin/true' AND cmdline LIKE '%{m}%'"
        ),
        1,
    );
    let log = d.log();
    assert!(
        !log.contains("stopped by the watchdog"),
        "the exec was stored only after the kill:\n{log}"
    );
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(s(&execs[0], "path"), "/bin/true");
    assert_eq!(s(&execs[0], "cmdline"), format!("/bin/true {m}"));
    assert_eq!(s(&execs[0], "parent"), me.to_string());

    // CPU: killed and denylisted.
    let log = wait_log(&d, "while running scheduled query a_cpu");
    let cpu = line_of(&log, "while running scheduled query a_cpu");
    assert!(
        cpu.contains(&format!("the query worker (pid {first}) was stopped by the watchdog (CPU: "))
            && cpu.contains("% of a core for 6 s, over the limit of 10% for more than 5 s)")
            && cpu.ends_with(
                "while running scheduled query a_cpu; a_cpu is denylisted for 86400 s; capture and storage went on"
            ),
        "{cpu}"
    );
    // Memory: the next query, in a new worker.
    let log = wait_log(&d, "while running scheduled query b_memory");
    let mem = line_of(&log, "while running scheduled query b_memory");
    assert!(
        mem.contains("was stopped by the watchdog (memory: ")
            && mem.contains("MB resident, over the limit of 150 MB)")
            && mem.ends_with("b_memory is denylisted for 86400 s; capture and storage went on"),
        "{mem}"
    );
    // The killed worker's secondary-instance folder is gone with it.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("osprey-secondary-{first}-"))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // b_memory ran in the worker started after the kill.
    let second = worker_pids(&log)[1];
    assert_ne!(second, first);
    assert!(
        mem.contains(&format!("the query worker (pid {second}) was stopped")),
        "{mem}"
    );

    // The others go on; the denylisted ones are skipped (osquery_schedule.denylisted).
    let results = logs.join("osqueryd.snapshots.log");
    let fine_runs = || {
        std::fs::read_to_string(&results)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"c_fine\""))
            .count()
    };
    let before = fine_runs();
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(30));
    while fine_runs() < before + 3 {
        assert!(
            Instant::now() < deadline,
            "c_fine stopped running:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let sched = d.query("SELECT name, denylisted, executions FROM osquery_schedule ORDER BY name");
    let got: Vec<(String, String, String)> = sched
        .iter()
        .map(|r| {
            (
                s(r, "name").to_owned(),
                s(r, "denylisted").to_owned(),
                s(r, "executions").to_owned(),
            )
        })
        .collect();
    assert_eq!(got[0], ("a_cpu".into(), "1".into(), "1".into()), "{got:?}");
    assert_eq!(
        got[1],
        ("b_memory".into(), "1".into(), "1".into()),
        "{got:?}"
    );
    assert_eq!(got[2].0, "c_fine");
    assert_eq!(got[2].1, "0");
    assert!(d.alive(), "the daemon itself never stopped");
    let log = d.stop();
    assert_eq!(
        log.matches("stopped by the watchdog").count(),
        2,
        "each runaway query ran once:\n{log}"
    );
}

/// Whether process `pid` is still there (a zombie counts as gone).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().chars().next()))
        .flatten()
        .is_some_and(|state| state != 'Z')
}

/// The denylist survives a restart; `"denylist": false` exempts a query from it (it is still
/// stopped); a worker never outlives a daemon killed by SIGKILL.
#[test]
fn the_denylist_survives_a_restart_and_a_worker_never_outlives_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("osquery.conf");
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)";
    std::fs::write(
        &conf,
        format!(
            r#"{{"options": {{"schedule_splay_percent": 0, "disable_events": true}},
                "schedule": {{
                  "a_cpu": {{"query": "{forever} SELECT count(*) AS n FROM c", "interval": 2}},
                  "b_exempt": {{"query": "{forever} SELECT count(*) AS n FROM c", "interval": 2,
                                "denylist": false}}
                }}}}"#
        ),
    )
    .expect("config");
    let args = [
        format!("--config_path={}", conf.display()),
        "--watchdog_delay=0".into(),
        "--watchdog_latency_limit=1".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start(&args);
    let log = wait_log(&d, "while running scheduled query b_exempt");
    assert!(
        line_of(&log, "while running scheduled query a_cpu")
            .ends_with("a_cpu is denylisted for 86400 s; capture and storage went on"),
        "{log}"
    );
    assert!(
        line_of(&log, "while running scheduled query b_exempt").ends_with(
            "b_exempt is not denylisted (\"denylist\": false); capture and storage went on"
        ),
        "{log}"
    );
    let stopped = d.stop_keep();

    // Restarted: a_cpu stays denylisted, b_exempt runs again; SIGKILL the daemon while it
    // runs, and its worker ends too.
    let d = stopped.restart(&args);
    let log = wait_log(&d, "query worker started (pid ");
    let pid: u32 = line_of(&log, "query worker started (pid ")
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.trim_end_matches(')').parse().ok())
        .expect("a worker pid");
    std::thread::sleep(Duration::from_millis(300));
    assert!(running(pid), "the worker runs b_exempt:\n{log}");
    let rows = d.query("SELECT name, denylisted, executions FROM osquery_schedule ORDER BY name");
    assert_eq!(s(&rows[0], "name"), "a_cpu");
    assert_eq!(s(&rows[0], "denylisted"), "1", "{rows:?}");
    assert_eq!(s(&rows[0], "executions"), "0", "{rows:?}");
    assert_eq!(s(&rows[1], "name"), "b_exempt");
    assert_eq!(s(&rows[1], "denylisted"), "0", "{rows:?}");
    let stopped = d.kill9();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "the worker {pid} outlived its daemon:\n{}",
            stopped.log
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!stopped.log.contains("a_cpu; a_cpu"), "{}", stopped.log);
}
