//! systemd_units and startup_items against a real systemd, in a container booted with
//! systemd-nspawn (`tests::container`), reached on its system bus through
//! `--dbus_system_bus_address`; compared with `systemctl` run inside the container.

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use serde_json::{Map, Value};
use tests::{container::Container, s};

const UNIT: &str = "osprey-probe.service";

fn query(bus: &str, sql: &str) -> Vec<Map<String, Value>> {
    let out = tests::query_raw_at(
        Path::new("/nonexistent/osprey-systemd-test"),
        sql,
        &["--json", &format!("--dbus_system_bus_address={bus}")],
    );
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| r.as_object().expect("object").clone())
        .collect()
}

#[test]
fn units_of_a_real_systemd_match_systemctl_and_a_new_unit_has_its_row() {
    if !tests::privileged() {
        return;
    }
    let c = Container::boot();
    let bus = c.bus_address();
    // A unit of our own: written into the container, loaded and started by its systemd.
    std::fs::write(
        c.path(&format!("/etc/systemd/system/{UNIT}")),
        "[Unit]\nDescription=Osprey probe unit\n[Service]\nUser=nobody\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=multi-user.target\n",
    )
    .expect("write the unit");
    c.run(&["systemctl", "daemon-reload"]);
    c.run(&["systemctl", "start", UNIT]);

    let rows = query(
        &bus,
        &format!("SELECT * FROM systemd_units WHERE id = '{UNIT}'"),
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    let want = [
        ("id", UNIT),
        ("description", "Osprey probe unit"),
        ("load_state", "loaded"),
        ("active_state", "active"),
        ("sub_state", "running"),
        ("unit_file_state", "disabled"),
        ("following", ""),
        (
            "object_path",
            "/org/freedesktop/systemd1/unit/osprey_2dprobe_2eservice",
        ),
        ("job_id", "0"),
        ("job_type", ""),
        ("job_path", ""),
        ("fragment_path", "/etc/systemd/system/osprey-probe.service"),
        ("user", "nobody"),
        ("source_path", ""),
    ];
    for (col, v) in want {
        assert_eq!(s(r, col), v, "{col} of {r:?}");
    }
    // The same unit once enabled: unit_file_state follows.
    c.run(&["systemctl", "enable", UNIT]);
    let rows = query(
        &bus,
        &format!("SELECT unit_file_state FROM systemd_units WHERE id = '{UNIT}'"),
    );
    assert_eq!(s(&rows[0], "unit_file_state"), "enabled");

    // Every unit systemctl lists, with the same states (retried: a unit may change state
    // between the two listings).
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(30));
    loop {
        let want: BTreeSet<String> = c
            .run(&[
                "systemctl",
                "list-units",
                "--all",
                "--no-legend",
                "--plain",
                "--full",
            ])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4).then(|| f[..4].join(" "))
            })
            .collect();
        let got: BTreeSet<String> = query(
            &bus,
            "SELECT id, load_state, active_state, sub_state FROM systemd_units",
        )
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                s(r, "id"),
                s(r, "load_state"),
                s(r, "active_state"),
                s(r, "sub_state")
            )
        })
        .collect();
        if got == want {
            assert!(want.len() > 50, "{want:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only in systemctl: {:?}\nonly in systemd_units: {:?}",
            want.difference(&got).collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // startup_items shows the unit as systemd's startup entry.
    let rows = query(
        &bus,
        &format!("SELECT * FROM startup_items WHERE type = 'systemd unit' AND name = '{UNIT}'"),
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    for (col, v) in [
        ("path", "/etc/systemd/system/osprey-probe.service"),
        ("args", ""),
        ("source", ""),
        ("status", "active"),
        ("username", "nobody"),
    ] {
        assert_eq!(s(r, col), v, "{col} of {r:?}");
    }

    // Stopped: the row follows the manager.
    c.run(&["systemctl", "stop", UNIT]);
    let rows = query(
        &bus,
        &format!("SELECT active_state, sub_state FROM systemd_units WHERE id = '{UNIT}'"),
    );
    assert_eq!(
        (s(&rows[0], "active_state"), s(&rows[0], "sub_state")),
        ("inactive", "dead")
    );
}

#[test]
fn a_scheduled_query_in_the_daemon_reads_the_container_s_units() {
    if !tests::privileged() {
        return;
    }
    let c = Container::boot();
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("log");
    let conf = dir.path().join("osquery.conf");
    std::fs::write(
        &conf,
        r#"{"options": {"disable_events": true, "schedule_splay_percent": 0},
            "schedule": {"units": {"query": "SELECT id, active_state FROM systemd_units WHERE id = 'dbus.service'", "interval": 1}}}"#,
    )
    .expect("config");
    let d = tests::Daemon::start(&[
        &format!("--config_path={}", conf.display()),
        &format!("--logger_path={}", logs.display()),
        &format!("--dbus_system_bus_address={}", c.bus_address()),
    ]);
    let results = logs.join("osqueryd.results.log");
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(30));
    let line = loop {
        let text = std::fs::read_to_string(&results).unwrap_or_default();
        if let Some(l) = text.lines().next() {
            break serde_json::from_str::<Value>(l).expect("a JSON line");
        }
        assert!(Instant::now() < deadline, "no result line:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(line["name"], "units");
    assert_eq!(line["action"], "added");
    assert_eq!(
        line["columns"],
        serde_json::json!({"id": "dbus.service", "active_state": "active"})
    );
    let log = d.stop();
    assert!(!log.contains("systemd:"), "{log}");
}

#[test]
fn without_a_bus_the_tables_are_empty_with_one_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = format!("unix:path={}/no-bus", dir.path().display());
    let out = tests::query_raw_at(
        Path::new("/nonexistent/osprey-systemd-test"),
        "SELECT (SELECT count(*) FROM systemd_units) AS units, (SELECT count(*) FROM systemd_units) AS again, (SELECT count(*) FROM startup_items WHERE type = 'systemd unit') AS items",
        &["--json", &format!("--dbus_system_bus_address={bus}")],
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!([{"units": "0", "again": "0", "items": "0"}])
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("systemd: connecting to").count(), 1, "{err}");
}
