//! The extension manager as osquery's own SDK sees it: osquery-python (PyPI `osquery`,
//! unchanged) connects to the daemon's `--extensions_socket` and calls every manager method.

use std::{os::unix::fs::PermissionsExt as _, process::Command, time::Instant};

use serde_json::{Value, json};
use tests::{Daemon, osquery_python, scaled};

#[test]
fn osquery_pythons_manager_client_gets_exact_answers() {
    let daemon = Daemon::start(&["--events_expiry=7200"]);
    let sock = daemon.extensions_socket();
    let until = Instant::now() + scaled(std::time::Duration::from_secs(10));
    while !sock.exists() {
        assert!(
            Instant::now() < until,
            "no socket at {}: {}",
            sock.display(),
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    assert_eq!(
        got["register_again"],
        json!({"code": 1, "message": "an extension named \"sdk_probe\" is already registered",
               "uuid": 0})
    );
    assert_eq!(
        got["register_core"],
        json!({"code": 1, "message": "table \"processes\" is a core table", "uuid": 0})
    );
    assert_eq!(got["extensions"], json!({"1": "sdk_probe"}));
    let cols = &got["call_columns"];
    assert_eq!(cols["status"], ok(0));
    let rows = cols["response"].as_array().unwrap();
    assert!(
        rows.contains(&json!({"id": "column", "name": "hour", "type": "INTEGER", "op": "0"})),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r["id"] == "column"), "{rows:?}");
    assert_eq!(got["deregister"], ok(1));
    assert_eq!(got["extensions_after"], json!({}));

    daemon.stop();
    assert!(!sock.exists(), "the socket is removed at exit");
}
