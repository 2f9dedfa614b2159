//! The extension manager as osquery's own SDK sees it: osquery-python (PyPI `osquery`,
//! unchanged) connects to the daemon's `--extensions_socket` and calls every manager method.

use std::{
    collections::BTreeMap, os::unix::fs::PermissionsExt as _, process::Command, time::Instant,
};

use serde_json::{Value, json};
use tests::{Daemon, osquery_python, scaled};

#[test]
fn osquery_pythons_manager_client_gets_exact_answers() {
    let daemon = Daemon::start(&["--events_expiry=7200"]);
    let sock = wait_socket(&daemon);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", sock.display());

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/manager_client.py");
    let out = Command::new(osquery_python())
        .arg(&script)
        .arg(&sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok = |uuid: i64| json!({"code": 0, "message": "OK", "uuid": uuid});
    assert_eq!(got["ping"], ok(0));
    assert_eq!(
        got["query"],
        json!({"status": ok(0), "response": [{"one": "1", "two": "x", "three": ""}]})
    );
    assert_eq!(
        got["bad_query"],
        json!({"status": {"code": 1, "message": "no such table: no_such_table", "uuid": 0},
               "response": []})
    );
    assert_eq!(
        got["columns"],
        json!({"status": ok(0), "response": [{"pid": "BIGINT"}, {"name": "TEXT"}]})
    );
    assert_eq!(
        got["option"],
        json!({
            "disable_extensions": {"value": "false", "default": "false", "type": "bool"},
            "events_expiry": {"value": "7200", "default": "3600", "type": "uint64"},
        })
    );
    assert_eq!(got["register"], ok(1));
    assert_eq!(got["register_again"], ok(2));
    assert_eq!(
        got["register_core"],
        json!({"code": 1, "message": "table \"processes\" is a core table", "uuid": 0})
    );
    assert_eq!(got["extensions"], json!({"2": "sdk_probe"}));
    let cols = &got["call_columns"];
    assert_eq!(cols["status"], ok(0));
    let rows = cols["response"].as_array().unwrap();
    assert!(
        rows.contains(&json!({"id": "column", "name": "hour", "type": "INTEGER", "op": "0"})),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r["id"] == "column"), "{rows:?}");
    assert_eq!(
        got["deregister_replaced"],
        json!({"code": 1, "message": "no extension 1", "uuid": 1})
    );
    assert_eq!(got["deregister"], ok(2));
    assert_eq!(got["extensions_after"], json!({}));

    daemon.stop();
    assert!(!sock.exists(), "the socket is removed at exit");
}

/// One statement through the manager, as the SDK returns it.
fn query(sock: &std::path::Path, sql: &str) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/query.py");
    let out = Command::new(osquery_python())
        .arg(&script)
        .arg(sock)
        .arg(sql)
        .output()
        .expect("run query.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("query.py prints JSON")
}

#[test]
fn a_python_extensions_table_is_queried_with_its_constraints_and_vanishes_with_it() {
    let daemon = Daemon::start(&["--extensions_interval=1"]);
    let sock = wait_socket(&daemon);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/probe_extension.py");
    let mut ext = Command::new(osquery_python())
        .arg(&script)
        .arg("--socket")
        .arg(&sock)
        .args(["--timeout", "5", "--interval", "1"])
        .spawn()
        .expect("start the extension");
    // Registered, and listening on <socket>.<uuid>: the table answers.
    let until = Instant::now() + scaled(std::time::Duration::from_secs(20));
    let rows = loop {
        let r = query(&sock, "SELECT n, word FROM probe_table ORDER BY n");
        if r["status"]["code"] == 0 {
            break r["response"].clone();
        }
        assert!(Instant::now() < until, "{r}\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(
        rows,
        json!([{"n": "1", "word": "one"}, {"n": "2", "word": "two"}])
    );
    // The manager and the extension in osquery_extensions, its table in osquery_registry.
    let r = query(
        &sock,
        "SELECT uuid, name, version, sdk_version, path, type FROM osquery_extensions ORDER BY uuid",
    );
    let s = sock.display().to_string();
    assert_eq!(
        r["response"],
        json!([
            {"uuid": "0", "name": "core", "version": "5.12.1", "sdk_version": "0.0.0",
             "path": s, "type": "core"},
            {"uuid": "1", "name": "probe", "version": "1.0.0", "sdk_version": "3.0.7",
             "path": format!("{s}.1"), "type": "extension"},
        ]),
        "{r}"
    );
    let r = query(
        &sock,
        "SELECT registry, name, owner_uuid, internal, active FROM osquery_registry \
         WHERE owner_uuid != 0",
    );
    assert_eq!(
        r["response"],
        json!([{"registry": "table", "name": "probe_table", "owner_uuid": "1",
                "internal": "0", "active": "1"}]),
        "{r}"
    );
    // Constraints reach the extension in osquery's context format; SQLite filters again.
    let r = query(
        &sock,
        "SELECT n, ctx FROM probe_table WHERE word = 'two' AND n > 1",
    );
    assert_eq!(r["status"]["code"], 0, "{r}");
    let rows = r["response"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!(rows[0]["n"], "2");
    let ctx: Value = serde_json::from_str(rows[0]["ctx"].as_str().unwrap()).unwrap();
    assert_eq!(
        ctx,
        json!({
            "colsUsed": ["n", "word", "ctx"],
            "constraints": [
                {"name": "n", "list": [{"op": 4, "expr": "1"}], "affinity": "INTEGER"},
                {"name": "word", "list": [{"op": 2, "expr": "two"}], "affinity": "TEXT"},
            ],
        })
    );
    // `osprey query` sees it too, through the daemon's manager (as `osqueryi --connect`).
    let out = Command::new(tests::osprey_bin())
        .arg("query")
        .arg(format!("--database_path={}", daemon.db.display()))
        .arg(format!("--extensions_socket={}", sock.display()))
        .arg("--json")
        .arg("SELECT n, word FROM probe_table WHERE word = 'two'")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, json!([{"n": "2", "word": "two"}]), "{got}");
    // Killed: within two ping intervals it is deregistered, and its table is gone.
    ext.kill().unwrap();
    ext.wait().unwrap();
    let until = Instant::now() + scaled(std::time::Duration::from_secs(5));
    loop {
        // Until the next ping, a query fails on the dead extension's socket (an error that
        // names it); then the table no longer exists.
        let r = query(&sock, "SELECT n FROM probe_table");
        let message = r["status"]["message"].as_str().unwrap_or("").to_owned();
        if message == "no such table: probe_table" {
            break;
        }
        if r["status"]["code"] == 1 {
            assert!(message.starts_with("probe_table: extension 1 at "), "{r}");
        }
        assert!(Instant::now() < until, "{r}\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let log = daemon.stop();
    assert!(log.contains("deregistered"), "{log}");
}

#[test]
fn a_peer_that_lies_about_sizes_loses_its_connection_and_nothing_else() {
    use std::io::{Read as _, Write as _};
    let daemon = Daemon::start(&[]);
    let sock = wait_socket(&daemon);
    // A strict header, then a method name of 2 GiB; then a list of 2^31 - 1 maps.
    let mut frames = Vec::new();
    let mut huge_name = vec![0x80, 0x01, 0x00, 0x01];
    huge_name.extend_from_slice(&i32::MAX.to_be_bytes());
    frames.push(huge_name);
    let mut huge_list = vec![0x80, 0x01, 0x00, 0x01, 0, 0, 0, 5];
    huge_list.extend_from_slice(b"query");
    huge_list.extend_from_slice(&1i32.to_be_bytes());
    huge_list.extend_from_slice(&[15, 0, 1, 13]); // field 1: a list of maps
    huge_list.extend_from_slice(&i32::MAX.to_be_bytes());
    frames.push(huge_list);
    frames.push(b"GET / HTTP/1.1\r\n\r\n".to_vec());
    for (n, frame) in frames.iter().enumerate() {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(scaled(std::time::Duration::from_secs(10))))
            .unwrap();
        s.write_all(frame).unwrap();
        // The manager closes it (the end of the stream, perhaps after an error reply)
        // instead of waiting for 2 GiB; a read that times out fails the test.
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)
            .unwrap_or_else(|e| panic!("frame {n}: the connection stayed open: {e}"));
        assert!(reply.len() < 1024, "frame {n}: {reply:?}");
    }
    let r = query(&sock, "SELECT 1 AS x");
    assert_eq!(r["response"], json!([{"x": "1"}]), "{r}");
    // Counted where losses are: event_drops, once the reporter has written its counters.
    let until = Instant::now() + scaled(std::time::Duration::from_secs(30));
    loop {
        let r = query(
            &sock,
            "SELECT count FROM event_drops WHERE publisher = 'extensions' AND event_type = 'thrift' AND reason = 'bad_frame' AND window_start = 0",
        );
        if r["response"] == json!([{"count": "3"}]) {
            break;
        }
        assert!(Instant::now() < until, "{r}\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let log = daemon.stop();
    assert!(log.contains("connection closed (3 so far)"), "{log}");
}

/// The stress test of the registry: 50 extensions register at once while 4 clients query
/// core and extension tables for 30 s (each query with a token of its own it must get back),
/// then half of the extensions are killed and must be gone within two ping intervals.
#[test]
fn fifty_extensions_and_four_clients_neither_deadlock_nor_cross_replies() {
    const N: usize = 50;
    let daemon = Daemon::start(&["--extensions_interval=1"]);
    let sock = wait_socket(&daemon);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/probe_extension.py");
    let mut exts: Vec<std::process::Child> = (0..N)
        .map(|i| {
            Command::new(osquery_python())
                .arg(&script)
                .arg("--socket")
                .arg(&sock)
                .args(["--timeout", "30", "--interval", "1"])
                .env("PROBE_SUFFIX", i.to_string())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start an extension")
        })
        .collect();
    let count = |sql: &str| -> Value { query(&sock, sql)["response"][0]["n"].clone() };
    // 50 Python interpreters starting at once on a small machine: give them time.
    let until = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = count("SELECT count(*) AS n FROM osquery_extensions WHERE type = 'extension'");
        if n == json!(N.to_string()) {
            break;
        }
        assert!(
            Instant::now() < until,
            "{n} of {N} registered: {}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Every extension table answers (its extension listens) before the clients start.
    for i in 0..N {
        let until = Instant::now() + std::time::Duration::from_secs(20);
        while query(&sock, &format!("SELECT n FROM probe_table_{i}"))["status"]["code"] != 0 {
            assert!(Instant::now() < until, "probe_table_{i}: {}", daemon.log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let client =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/stress_client.py");
    let clients: Vec<std::process::Child> = (0..4)
        .map(|c| {
            let tables: Vec<String> = ["processes".to_owned(), "time".to_owned()]
                .into_iter()
                .chain(
                    (0..N)
                        .filter(|i| i % 4 == c)
                        .map(|i| format!("probe_table_{i}")),
                )
                .collect();
            Command::new(osquery_python())
                .arg(&client)
                .arg(&sock)
                .arg("30")
                .arg(format!("c{c}"))
                .arg(tables.join(","))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start a client")
        })
        .collect();
    let mut total = 0;
    for c in clients {
        let out = c.wait_with_output().expect("a client's result");
        assert!(out.status.success(), "a client failed: {}", daemon.log());
        let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            (r["mismatched"].clone(), r["failed"].clone()),
            (json!(0), json!(0)),
            "{r}"
        );
        assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
        total += r["ok"].as_u64().unwrap();
    }
    eprintln!("stress: {total} queries answered, each with its own token");
    // Half are killed: after two failed pings in a row (two intervals, plus the time the pings
    // take) they are gone.
    for e in exts.iter_mut().step_by(2) {
        e.kill().unwrap();
        e.wait().unwrap();
    }
    let killed = Instant::now();
    while count("SELECT count(*) AS n FROM osquery_extensions WHERE type = 'extension'")
        != json!((N / 2).to_string())
    {
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(4),
            "dead extensions still listed after {:?}",
            killed.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = query(&sock, "SELECT n FROM probe_table_0");
    assert_eq!(
        r["status"]["message"], "no such table: probe_table_0",
        "{r}"
    );
    assert_eq!(
        query(&sock, "SELECT count(*) AS n FROM probe_table_1")["response"],
        json!([{"n": "2"}])
    );
    for mut e in exts {
        let _ = e.kill();
        let _ = e.wait();
    }
    daemon.stop();
}

fn storage_client(sock: &std::path::Path, name: &str, mode: &str) -> Command {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/storage_client.py");
    let mut c = Command::new(osquery_python());
    c.arg(script).arg(sock).arg(name).arg(mode);
    c
}

fn wait_log(daemon: &Daemon, needle: &str) {
    let until = Instant::now() + scaled(std::time::Duration::from_secs(20));
    while !daemon.log().contains(needle) {
        assert!(
            Instant::now() < until,
            "no {needle:?} in the log: {}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn wait_socket(daemon: &Daemon) -> std::path::PathBuf {
    let sock = daemon.extensions_socket();
    let until = Instant::now() + scaled(std::time::Duration::from_secs(10));
    while !sock.exists() {
        assert!(Instant::now() < until, "no socket: {}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    sock
}

#[test]
fn extension_storage_is_versioned_atomic_under_sigkill_and_uninstalled_without_a_trace() {
    use std::io::BufRead as _;
    // No pings: these clients register without serving a socket of their own.
    let flags = ["--extensions_interval=3600"];
    let daemon = Daemon::start(&flags);
    let sock = wait_socket(&daemon);
    let out = storage_client(&sock, "store_probe", "versions")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok = |rows: Value| json!({"code": 0, "message": "OK", "rows": rows});
    let kv = json!([{"key": "k1", "value": "v1"}]);
    assert_eq!(got["put"], ok(json!([])));
    assert_eq!(got["get"], ok(kv.clone()));
    assert_eq!(got["missing"], ok(json!([])));
    assert_eq!(
        got["other_version"],
        json!({"code": 1, "rows": [], "message": "extension store_probe has stored data in \
               schema version 1, but version 2 was asked for; migrate or uninstall it first"})
    );
    assert_eq!(got["migrate"], ok(kv.clone()));
    assert_eq!(got["after_migrate"], ok(kv.clone()));
    assert_eq!(got["old_version"]["code"], 1, "{got}");
    assert_eq!(got["scan"], ok(kv));
    assert_eq!(
        got["unknown"]["message"],
        "storage: unknown op \"frobnicate\" (get, put, delete, scan, batch, uninstall)"
    );

    // Batches, with the daemon killed (SIGKILL) while they are being written.
    let mut writer = storage_client(&sock, "store_batch", "batches")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut acked = 0;
    while acked < 5 {
        let line = lines.next().expect("the writer stopped early").unwrap();
        acked = line.trim_start_matches("acked ").parse::<u32>().unwrap() + 1;
    }
    let stopped = daemon.kill9();
    let _ = writer.kill();
    let _ = writer.wait();
    let acked = acked + lines.map_while(Result::ok).count() as u32;
    let daemon = stopped.restart(&flags);
    let sock = wait_socket(&daemon);
    let out = storage_client(&sock, "store_batch", "count")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: BTreeMap<String, u64> = serde_json::from_slice(&out.stdout).unwrap();
    for (prefix, n) in &counts {
        assert!(
            *n == 0 || *n == 2000,
            "batch {prefix} is partly there: {n} keys"
        );
    }
    for b in 0..acked {
        assert_eq!(counts[&format!("b{b}/")], 2000, "acked batch {b}");
    }

    // Uninstall through the running daemon: no key left.
    let osprey = |args: &[String]| {
        Command::new(tests::osprey_bin())
            .args(args)
            .output()
            .unwrap()
    };
    let out = osprey(&[
        "extension".into(),
        "uninstall".into(),
        "store_batch".into(),
        format!("--extensions_socket={}", sock.display()),
        format!("--database_path={}", daemon.db.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "extension store_batch: stored data removed"
    );
    let out = storage_client(&sock, "store_batch", "count")
        .output()
        .unwrap();
    let counts: BTreeMap<String, u64> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
    // And with the daemon stopped, in the store itself.
    let stopped = daemon.stop_keep();
    let db = stopped.db.clone();
    let out = osprey(&[
        "extension".into(),
        "uninstall".into(),
        "store_probe".into(),
        format!("--database_path={}", db.display()),
        "--extensions_socket=/nonexistent/osquery.em".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "extension store_probe: stored data removed"
    );
    let out = osprey(&[
        "extension".into(),
        "uninstall".into(),
        "store_probe".into(),
        format!("--database_path={}", db.display()),
        "--extensions_socket=/nonexistent/osquery.em".into(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "extension store_probe: had no stored data"
    );
    drop(stopped);
}

#[test]
fn autoloaded_extensions_start_restart_and_are_required_and_unsafe_ones_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let probe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extensions/probe_extension.py");
    let script = format!(
        "#!/bin/sh\nexec {} {} \"$@\"\n",
        osquery_python().display(),
        probe.display()
    );
    let good = dir.path().join("probe.ext");
    let bad = dir.path().join("writable.ext");
    for (p, mode) in [(&good, 0o755), (&bad, 0o775)] {
        std::fs::write(p, &script).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let list = dir.path().join("extensions.load");
    std::fs::write(
        &list,
        format!("# test\n{}\n{}\n", good.display(), bad.display()),
    )
    .unwrap();
    let daemon = Daemon::start(&[
        &format!("--extensions_autoload={}", list.display()),
        "--extensions_require=probe",
        "--extensions_timeout=30",
        "--extensions_interval=1",
    ]);
    let sock = wait_socket(&daemon);
    wait_log(&daemon, "extensions_require: probe registered");
    let listed = |sock: &std::path::Path| {
        query(
            sock,
            "SELECT name FROM osquery_extensions WHERE type = 'extension'",
        )["response"]
            .clone()
    };
    assert_eq!(
        listed(&sock),
        json!([{"name": "probe"}]),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(
        log.contains(&format!(
            "{} refused: mode 775: writable by group or others",
            bad.display()
        )),
        "{log}"
    );
    wait_log(&daemon, "extensions_require: probe registered");
    // Killed, it is started again (after 1 s) and registers anew.
    let pid: i32 = log
        .lines()
        .find_map(|l| l.split_once(&format!("extension {} started (pid ", good.display())))
        .and_then(|(_, rest)| rest.trim_end_matches(')').parse().ok())
        .expect("the start line names the pid");
    // SAFETY: kill with a pid this test's daemon started and a valid signal number.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_log(&daemon, "extension \"probe\" registered as 2");
    assert!(
        daemon
            .log()
            .contains("exited (signal: 9 (SIGKILL)); starting it again in 1 s")
    );
    let log = daemon.stop();
    assert!(log.contains("stopped cleanly"), "{log}");

    // A required extension that never registers: start-up fails, naming it.
    let db = dir.path().join("db2");
    let mut child = Command::new(tests::osprey_bin())
        .arg("daemon")
        .arg(format!("--database_path={}", db.display()))
        .arg(format!(
            "--extensions_socket={}",
            dir.path().join("em2").display()
        ))
        .arg(format!(
            "--logger_path={}",
            dir.path().join("log2").display()
        ))
        .args([
            "--extensions_require=nosuch,probe",
            "--extensions_timeout=2",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + scaled(std::time::Duration::from_secs(30));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "the daemon did not give up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains(
            "extensions_require: nosuch, probe did not register within 2 s (--extensions_timeout)"
        ),
        "{err}"
    );
}

/// `osprey query --json SQL` against the daemon, through its manager.
fn osprey_query(daemon: &Daemon, sock: &std::path::Path, sql: &str) -> Result<Value, String> {
    let out = Command::new(tests::osprey_bin())
        .arg("query")
        .arg(format!("--database_path={}", daemon.db.display()))
        .arg(format!("--extensions_socket={}", sock.display()))
        .arg("--json")
        .arg(sql)
        .output()
        .expect("run osprey query");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("osprey query --json prints JSON"))
}

/// The lines of `path` that a sample logger wrote for `kind` and scheduled query `name`.
fn logged(path: &std::path::Path, kind: &str, name: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(k, _)| *k == kind)
        .filter_map(|(_, j)| serde_json::from_str::<Value>(j).ok())
        .filter(|v| v["name"] == name)
        .collect()
}

/// The samples of `examples/`, as CI builds them: the Rust extension (on the workspace's SDK
/// crate) and the Python one (on the unchanged PyPI SDK) register, serve tables whose
/// constraints narrow what they generate, take the daemon's result and snapshot lines as
/// logger plugins, and vanish when killed.
#[test]
fn the_rust_and_python_samples_serve_tables_take_log_lines_and_vanish_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("osquery.conf");
    std::fs::write(
        &conf,
        r#"{"schedule": {
            "sample_diff": {"query": "SELECT 'tick' AS word;", "interval": 1},
            "sample_snap": {"query": "SELECT 'snap' AS word;", "interval": 1, "snapshot": true}
        }}"#,
    )
    .unwrap();
    let daemon = Daemon::start(&[
        "--extensions_interval=1",
        &format!("--config_path={}", conf.display()),
        "--logger_plugin=filesystem,rust_example_logger,python_example_logger",
    ]);
    let sock = wait_socket(&daemon);
    let (rust_log, py_log) = (dir.path().join("rust.log"), dir.path().join("py.log"));
    let start = |cmd: &mut Command, log: &std::path::Path| {
        cmd.arg("--socket")
            .arg(&sock)
            .args(["--timeout", "10", "--interval", "1"])
            .env("OSPREY_EXAMPLE_LOG", log)
            .spawn()
            .expect("start a sample extension")
    };
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut rust = start(&mut Command::new(tests::example_extension_bin()), &rust_log);
    let mut py = start(
        Command::new(osquery_python()).arg(examples.join("python-extension/example_extension.py")),
        &py_log,
    );
    let until = Instant::now() + scaled(std::time::Duration::from_secs(30));
    let wait_rows = |sql: &str| loop {
        match osprey_query(&daemon, &sock, sql) {
            Ok(v) => break v,
            Err(e) => assert!(Instant::now() < until, "{sql}: {e}\n{}", daemon.log()),
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // Constraints reach each table: `generated` is what the extension made for the call.
    assert_eq!(
        wait_rows("SELECT n, square, generated FROM rust_numbers WHERE n = 7"),
        json!([{"n": "7", "square": "49", "generated": "1"}])
    );
    assert_eq!(
        wait_rows("SELECT n, generated FROM rust_numbers WHERE n > 997 AND n <= 1000 ORDER BY n"),
        json!([{"n": "998", "generated": "3"}, {"n": "999", "generated": "3"}, {"n": "1000", "generated": "3"}])
    );
    assert_eq!(
        wait_rows("SELECT count(*) AS c, max(generated) AS g FROM rust_numbers"),
        json!([{"c": "1000", "g": "1000"}])
    );
    assert_eq!(
        wait_rows("SELECT word, length, generated FROM python_words WHERE word = 'kestrel'"),
        json!([{"word": "kestrel", "length": "7", "generated": "1"}])
    );
    assert_eq!(
        wait_rows("SELECT name, version, type FROM osquery_extensions ORDER BY name"),
        json!([
            {"name": "core", "version": "5.12.1", "type": "core"},
            {"name": "python_example", "version": "1.0.0", "type": "extension"},
            {"name": "rust_example", "version": "0.1.0", "type": "extension"},
        ])
    );
    assert_eq!(
        wait_rows(
            "SELECT registry, name, internal FROM osquery_registry WHERE name IN ('rust_numbers', 'rust_example_logger', 'python_words', 'python_example_logger') ORDER BY registry, name"
        ),
        json!([
            {"registry": "logger", "name": "python_example_logger", "internal": "0"},
            {"registry": "logger", "name": "rust_example_logger", "internal": "0"},
            {"registry": "table", "name": "python_words", "internal": "0"},
            {"registry": "table", "name": "rust_numbers", "internal": "0"},
        ])
    );
    // Each logger plugin gets the differential query's one added row once, and snapshots.
    for log in [&rust_log, &py_log] {
        loop {
            let added = logged(log, "Result", "sample_diff");
            let snaps = logged(log, "Snapshot", "sample_snap");
            if !added.is_empty() && !snaps.is_empty() {
                assert_eq!(added.len(), 1, "{added:?}");
                assert_eq!(added[0]["action"], "added");
                assert_eq!(added[0]["columns"], json!({"word": "tick"}));
                assert_eq!(snaps[0]["snapshot"], json!([{"word": "snap"}]));
                break;
            }
            assert!(
                Instant::now() < until + scaled(std::time::Duration::from_secs(30)),
                "{}: {:?}\n{}",
                log.display(),
                std::fs::read_to_string(log),
                daemon.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    // Killed: both are deregistered within two ping intervals, their tables gone.
    for child in [&mut rust, &mut py] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let gone = Instant::now() + scaled(std::time::Duration::from_secs(6));
    loop {
        let r = osprey_query(&daemon, &sock, "SELECT name FROM osquery_extensions");
        if r == Ok(json!([{"name": "core"}])) {
            break;
        }
        assert!(Instant::now() < gone, "{r:?}\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let e = osprey_query(&daemon, &sock, "SELECT n FROM rust_numbers").unwrap_err();
    assert!(e.contains("no such table: rust_numbers"), "{e}");
    daemon.stop();
}

/// `--config_plugin` naming an extension's config plugin: the daemon starts with an empty
/// config while no extension has it, applies the extension's config as soon as it registers
/// (not at the next refresh), and that config's scheduled query reads the extension's own
/// table, its added row going to the extension's logger plugin exactly once.
#[test]
fn an_extensions_config_plugin_is_the_config_as_soon_as_it_registers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&[
        "--extensions_interval=1",
        "--config_plugin=python_example_config",
        "--config_refresh=3600",
        "--logger_plugin=python_example_logger",
    ]);
    let sock = wait_socket(&daemon);
    let log = daemon.log();
    assert!(
        log.contains("no extension has registered config plugin \"python_example_config\"")
            && log.contains("starting with an empty config"),
        "{log}"
    );
    let py_log = dir.path().join("py.log");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut py = Command::new(osquery_python())
        .arg(examples.join("python-extension/example_extension.py"))
        .arg("--socket")
        .arg(&sock)
        .args(["--timeout", "10", "--interval", "1"])
        .env("OSPREY_EXAMPLE_LOG", &py_log)
        .spawn()
        .unwrap();
    wait_log(
        &daemon,
        "config: extension config plugin python_example_config",
    );
    let until = Instant::now() + scaled(std::time::Duration::from_secs(30));
    loop {
        let added = logged(&py_log, "Result", "python_example_merlin");
        if !added.is_empty() {
            // A few more ticks: the differential query adds nothing more.
            std::thread::sleep(std::time::Duration::from_secs(3));
            let added = logged(&py_log, "Result", "python_example_merlin");
            assert_eq!(added.len(), 1, "{added:?}");
            assert_eq!(added[0]["action"], "added");
            assert_eq!(
                added[0]["columns"],
                json!({"word": "merlin", "length": "6"})
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "{:?}\n{}",
            std::fs::read_to_string(&py_log),
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let r = osprey_query(
        &daemon,
        &sock,
        "SELECT name, query FROM osquery_schedule WHERE name = 'python_example_merlin'",
    )
    .unwrap();
    assert_eq!(
        r,
        json!([{"name": "python_example_merlin", "query": "SELECT word, length FROM python_words WHERE word = 'merlin';"}])
    );
    py.kill().unwrap();
    py.wait().unwrap();
    daemon.stop();
}

/// `--distributed_plugin` naming an extension's distributed plugin: the Rust sample hands
/// out the queries of a file once; the daemon runs them (an extension table among them) and
/// writes the answers back to the plugin, each query with its status, exactly once.
#[test]
fn an_extensions_distributed_plugin_hands_out_live_queries_and_gets_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&[
        "--extensions_interval=1",
        "--disable_distributed=false",
        "--distributed_plugin=rust_example_distributed",
        "--distributed_interval=1",
    ]);
    let sock = wait_socket(&daemon);
    let (queries, log) = (dir.path().join("queries.json"), dir.path().join("rust.log"));
    let mut rust = Command::new(tests::example_extension_bin())
        .arg("--socket")
        .arg(&sock)
        .args(["--timeout", "10", "--interval", "1"])
        .env("OSPREY_EXAMPLE_LOG", &log)
        .env("OSPREY_EXAMPLE_QUERIES", &queries)
        .spawn()
        .unwrap();
    let until = Instant::now() + scaled(std::time::Duration::from_secs(30));
    while osprey_query(&daemon, &sock, "SELECT n FROM rust_numbers WHERE n = 1").is_err() {
        assert!(Instant::now() < until, "{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Written whole, then renamed: the plugin never reads half a file.
    let tmp = dir.path().join("queries.tmp");
    std::fs::write(
        &tmp,
        r#"{"queries": {"q_ext": "SELECT n, square FROM rust_numbers WHERE n = 12", "q_bad": "SELECT * FROM no_such_table"}}"#,
    )
    .unwrap();
    std::fs::rename(&tmp, &queries).unwrap();
    let answers = |log: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("Distributed\t"))
            .map(|j| serde_json::from_str(j).unwrap())
            .collect()
    };
    loop {
        if !answers(&log).is_empty() {
            break;
        }
        assert!(
            Instant::now() < until,
            "{:?}\n{}",
            std::fs::read_to_string(&log),
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Polls go on every second; the file was handed out once, so one answer only.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let got = answers(&log);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0]["queries"]["q_ext"],
        json!([{"n": "12", "square": "144"}])
    );
    assert_eq!(got[0]["queries"]["q_bad"], json!([]));
    assert_eq!(got[0]["statuses"], json!({"q_bad": 1, "q_ext": 0}));
    assert_eq!(
        got[0]["messages"],
        json!({"q_bad": "no such table: no_such_table"})
    );
    assert!(!queries.exists());
    rust.kill().unwrap();
    rust.wait().unwrap();
    daemon.stop();
}
