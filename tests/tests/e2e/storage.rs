//! Storage under stress: SIGKILL during ingest, and a full disk. The real daemon on the real
//! kernel; every check filters by this test's markers or reads only this test's database.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use agent::{events::ProcessEvent, storage::Store};
use tests::{Background, Daemon, marker, privileged, query_at, s};

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

fn count(d: &Daemon, sql: &str) -> u64 {
    count_at(&d.db, sql)
}

fn count_at(db: &Path, sql: &str) -> u64 {
    let rows = query_at(db, sql);
    s(&rows[0], "n").parse().expect("a count")
}

fn wait_count(d: &Daemon, sql: &str, n: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let c = count(d, sql);
        if c >= n || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A stored row, read straight from RocksDB.
struct Row {
    time_ns: u64,
    seq: u64,
    event: ProcessEvent,
}

/// Every row of `process_events`, in key order; panics on a row that does not decode.
fn raw_rows(db: &Path) -> Vec<Row> {
    let store = Store::open_secondary(db).expect("open the database");
    let mut rows = Vec::new();
    store
        .scan("process_events", 0, u64::MAX, |time_ns, seq, v| {
            let event = ProcessEvent::decode(v)
                .unwrap_or_else(|e| panic!("row ({time_ns}, {seq}) does not decode: {e}"));
            rows.push(Row {
                time_ns,
                seq,
                event,
            });
            true
        })
        .expect("scan");
    rows
}

const NO_RETENTION: [&str; 2] = ["--events_max=0", "--events_expiry=0"];

#[test]
fn sigkill_during_ingest_loses_no_written_event_and_never_reuses_a_seq() {
    if !privileged() {
        return;
    }
    let flags: Vec<&str> = [&NO_RETENTION[..], &["--storage_sync=batch"]].concat();
    let d = Daemon::start(&flags);
    let m1 = marker("crash-before");
    let load = Background::sh(&format!("while :; do /bin/true {m1}; done"));
    let marked = format!(
        "SELECT count(*) AS n FROM process_events WHERE path = '/bin/true' AND syscall = 'execve' AND cmdline = '/bin/true {m1}'"
    );
    let seen = wait_count(&d, &marked, 300, Duration::from_secs(60));
    assert!(seen >= 300, "the load produced {seen} rows\n{}", d.log());
    // Let a counters snapshot include a good share of the load, then read the last one and kill
    // right away, with the load still running.
    std::thread::sleep(Duration::from_millis(1200));
    let ev = d.query("SELECT events FROM osquery_events WHERE name = 'process_events'");
    let written: u64 = s(&ev[0], "events").parse().expect("events");
    let killed = d.kill9();
    // The daemon is dead: every row it stored has an earlier time.
    let t_kill = now_ns();
    load.stop();
    assert!(written >= 300, "snapshot before the kill: {written}");

    let t_restart = now_ns();
    let d = killed.restart(&flags);
    let m2 = marker("crash-after");
    for _ in 0..20 {
        let st = Command::new("/bin/true").arg(&m2).status().expect("run");
        assert!(st.success());
    }
    let after_sql = format!(
        "SELECT count(*) AS n FROM process_events WHERE path = '/bin/true' AND syscall = 'execve' AND cmdline = '/bin/true {m2}'"
    );
    assert_eq!(
        wait_count(&d, &after_sql, 20, Duration::from_secs(20)),
        20,
        "{}",
        d.log()
    );
    let kept = d.stop_keep();
    assert!(kept.log.contains("stopped cleanly"), "{}", kept.log);
    let db = kept.db.clone();

    // Every row decodes (raw_rows panics otherwise), and SQL sees every row.
    let rows = raw_rows(&db);
    assert_eq!(
        count_at(&db, "SELECT count(*) AS n FROM process_events"),
        rows.len() as u64
    );
    let all = query_at(&db, "SELECT * FROM process_events");
    assert_eq!(all.len(), rows.len());

    // No seq is used twice, and every row written after the restart has a higher seq than
    // every row written before the kill. No row falls between the two daemons.
    let seqs: HashSet<u64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), rows.len(), "a seq was used twice");
    let before: Vec<&Row> = rows.iter().filter(|r| r.time_ns <= t_kill).collect();
    let after: Vec<&Row> = rows.iter().filter(|r| r.time_ns >= t_restart).collect();
    assert_eq!(
        before.len() + after.len(),
        rows.len(),
        "rows between kill and restart"
    );
    let max_before = before.iter().map(|r| r.seq).max().expect("rows before");
    let min_after = after.iter().map(|r| r.seq).min().expect("rows after");
    assert!(
        min_after > max_before,
        "seq after restart {min_after} <= {max_before}"
    );

    eprintln!(
        "sigkill: {written} counted as written before the kill, {} rows before it, {} after",
        before.len(),
        after.len(),
    );
    // storage_sync=batch: everything counted as written before the kill survived it.
    assert!(
        written <= before.len() as u64,
        "{written} rows counted as written, {} found after the crash",
        before.len()
    );
    let m1_rows = before
        .iter()
        .filter(|r| r.event.argv.last() == Some(&m1))
        .count();
    assert!(m1_rows >= 300, "{m1_rows}");
    let m2_execs = after
        .iter()
        .filter(|r| r.event.argv.last() == Some(&m2) && r.event.path == "/bin/true")
        .count();
    // 20 execs and 20 exits (exit rows carry the exec's argv).
    assert_eq!(m2_execs, 40);
}

/// A tmpfs mounted for the test; unmounted when dropped, also when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs failed: {st}");
        Self(at.to_owned())
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount failed: {st}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a process still inside): detach it now, freed when the last user leaves.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn full_disk_is_counted_and_reported_and_the_daemon_recovers() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("db");
    // Declared before the daemon: dropped (unmounted) after it.
    let tmpfs = Tmpfs::mount(&mnt, "4m");
    let flags: Vec<&str> = [&NO_RETENTION[..], &["--storage_sync=batch"]].concat();
    let mut d = Daemon::start_on(&mnt, &flags);
    let m = marker("full");
    // Long command lines fill the 4 MiB quickly.
    let pad = "x".repeat(3000);
    let load = Background::sh(&format!("while :; do /bin/true {m} {pad}; done"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !d.log().contains("(counted in write_errors)") {
        assert!(
            Instant::now() < deadline,
            "writes never failed on a 4 MiB tmpfs:\n{}",
            d.log()
        );
        assert!(d.alive(), "daemon died on a full disk:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Keep the load on a little longer: the daemon keeps running and counting.
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.alive(), "daemon died on a full disk:\n{}", d.log());
    load.stop();

    // Queries still work on a full disk (the secondary's files live elsewhere).
    let stored_full = count(
        &d,
        &format!("SELECT count(*) AS n FROM process_events WHERE cmdline LIKE '/bin/true {m}%'"),
    );
    assert!(stored_full > 0, "nothing stored before the disk filled");
    let log = d.log();
    assert!(
        log.contains("the disk is almost full"),
        "the write errors are not the reserve's:\n{log}"
    );
    // The counters are still saved (they may use part of the reserve), so the loss is visible
    // while the disk is full.
    let write_errors_sql = "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE window_start = 0 AND publisher = 'process_events' AND reason = 'write_error'";
    let full_errors = wait_count(&d, write_errors_sql, 1, Duration::from_secs(10));
    assert!(
        full_errors > 0,
        "event_drops shows no write_error on a full disk\n{log}"
    );
    let windows = count(
        &d,
        "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE window_start > 0 AND publisher = 'process_events' AND reason = 'write_error'",
    );
    assert!(windows > 0, "no per-second write_error window");
    eprintln!("full disk: {stored_full} rows stored, {full_errors} write errors");

    // Room again: the writer stores new events by itself.
    tmpfs.resize("256m");
    let m2 = marker("room");
    let after_sql = format!(
        "SELECT count(*) AS n FROM process_events WHERE path = '/bin/true' AND syscall = 'execve' AND cmdline = '/bin/true {m2}'"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = Command::new("/bin/true").arg(&m2).status().expect("run");
        assert!(st.success());
        if count(&d, &after_sql) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no event stored after space came back:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let write_errors = count(&d, write_errors_sql);
    assert!(
        write_errors >= full_errors,
        "{write_errors} < {full_errors}"
    );
    let ev = d.query("SELECT dropped FROM osquery_events WHERE name = 'process_events'");
    assert!(s(&ev[0], "dropped").parse::<u64>().expect("dropped") >= write_errors);
    assert!(d.alive());
    let log = d.stop();
    assert!(log.contains("stopped cleanly"), "{log}");
}

#[test]
fn retention_keeps_events_max_rows_and_reports_them_as_expired_not_lost() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&["--events_max=50", "--events_expiry=0"]);
    let m = marker("retention");
    for _ in 0..150 {
        let st = Command::new("/bin/true").arg(&m).status().expect("run");
        assert!(st.success());
    }
    let expired_sql = "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE window_start = 0 AND publisher = 'process_events' AND reason = 'expired'";
    // 300 marked rows (exec and exit) and more from the machine; at most 50 are kept. The
    // thread runs every 5 s and the counters are saved every second.
    let marked_sql = format!(
        "SELECT count(*) AS n FROM process_events WHERE path = '/bin/true' AND cmdline = '/bin/true {m}'"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (expired, marked) = loop {
        let (e, k) = (count(&d, expired_sql), count(&d, &marked_sql));
        if (e >= 250 && k <= 50) || Instant::now() > deadline {
            break (e, k);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(expired >= 250, "expired {expired}\n{}", d.log());
    assert!(marked <= 50, "{marked} marked rows kept");
    // Retention is not loss: no per-second window (time ranges stay "complete"), nothing in
    // the loss columns.
    assert_eq!(
        count(
            &d,
            "SELECT count(*) AS n FROM event_drops WHERE window_start > 0 AND reason = 'expired'"
        ),
        0
    );
    assert_eq!(
        count(
            &d,
            "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE reason NOT IN ('expired')"
        ),
        0
    );
    let log = d.stop();
    assert!(log.contains("stopped cleanly"), "{log}");
}

/// Blind time is data: a SIGKILL leaves `osquery_events.active` false (the dead daemon's last
/// snapshot says running), the restart records one `agent_down` window from the killed
/// daemon's last heartbeat to the moment capture resumed, and loss totals survive restarts
/// (the `agent_down` total counts every blind interval since the database was created).
#[test]
fn sigkill_and_restart_leave_agent_down_windows_and_totals_survive() {
    if !privileged() {
        return;
    }
    let active = |db: &Path| {
        let rows = query_at(
            db,
            "SELECT active FROM osquery_events WHERE name = 'ebpf_process'",
        );
        s(&rows[0], "active").to_owned()
    };
    let down_rows = |db: &Path| {
        query_at(
            db,
            "SELECT window_start, window_end, count FROM event_drops \
             WHERE reason = 'agent_down' AND publisher = 'osprey' AND window_start > 0 \
             ORDER BY window_end",
        )
        .iter()
        .map(|r| {
            let n = |k: &str| s(r, k).parse::<u64>().expect("a number");
            (n("window_start"), n("window_end"), n("count"))
        })
        .collect::<Vec<_>>()
    };
    let down_total = |db: &Path| {
        count_at(
            db,
            "SELECT coalesce(sum(count), 0) AS n FROM event_drops \
             WHERE reason = 'agent_down' AND window_start = 0",
        )
    };

    // A new database: nothing was missed before the first start.
    let d = Daemon::start(&[]);
    assert_eq!(active(&d.db), "1");
    assert_eq!(down_rows(&d.db), []);
    // Two heartbeats, so the last one is at most a second before the kill.
    std::thread::sleep(Duration::from_millis(2_200));
    let killed_at = now_ns() / 1_000_000_000;
    let killed = d.kill9();
    assert_eq!(active(&killed.db), "0", "a killed daemon is not active");

    std::thread::sleep(Duration::from_secs(3));
    let restart_at = now_ns().div_ceil(1_000_000_000);
    let d = killed.restart(&[]);
    let up_at = now_ns().div_ceil(1_000_000_000);
    let rows = down_rows(&d.db);
    assert_eq!(rows.len(), 1, "{rows:?}\n{}", d.log());
    let (start, end, n) = rows[0];
    assert_eq!(n, 1);
    // From the last heartbeat (at most ~1 s before the kill) to the restart.
    assert!(
        start <= killed_at && start + 2 >= killed_at,
        "start {start}, kill {killed_at}"
    );
    assert!(
        end >= restart_at && end <= up_at,
        "end {end}, restart {restart_at}..{up_at}"
    );
    assert_eq!(down_total(&d.db), 1);
    assert!(d.log().contains("did not stop cleanly"), "{}", d.log());

    // A clean stop is a blind interval too; the totals keep counting across restarts.
    let stopped = d.stop_keep();
    let d = stopped.restart(&[]);
    assert_eq!(down_rows(&d.db).len(), 2);
    assert_eq!(down_total(&d.db), 2);
    assert_eq!(active(&d.db), "1");
    d.stop();
}
