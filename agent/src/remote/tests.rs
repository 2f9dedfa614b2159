use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use super::{
    distributed::{DENYLIST_META, Limits, answer, denylist_crashed},
    logger::{Request, requests},
    *,
};
use crate::{
    flags::{Flags, Source},
    logger::{Kind, Line},
    storage::denylist::Denylist,
};

fn flags(args: &[&str]) -> Flags {
    let mut f = Flags::default();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    f.parse_args(&args, Source::CommandLine).unwrap();
    f
}

/// The flags Fleet's launcher passes (fleet-compat), every one of which must parse.
const FLEET: &[&str] = &[
    "--host_identifier=uuid",
    "--tls_hostname=fleet.example:8080",
    "--tls_server_certs=/opt/orbit/certs.pem",
    "--enroll_secret_path=/opt/orbit/secret.txt",
    "--enroll_tls_endpoint=/api/v1/osquery/enroll",
    "--config_plugin=tls",
    "--config_tls_endpoint=/api/v1/osquery/config",
    "--config_refresh=60",
    "--disable_distributed=false",
    "--distributed_plugin=tls",
    "--distributed_tls_max_attempts=10",
    "--distributed_tls_read_endpoint=/api/v1/osquery/distributed/read",
    "--distributed_tls_write_endpoint=/api/v1/osquery/distributed/write",
    "--logger_plugin=tls",
    "--logger_tls_endpoint=/api/v1/osquery/log",
    "--disable_carver=false",
    "--carver_disable_function=false",
    "--carver_start_endpoint=/api/v1/osquery/carve/begin",
    "--carver_continue_endpoint=/api/v1/osquery/carve/block",
    "--carver_block_size=2000000",
    // Passed when the launcher has extensions to load.
    "--extensions_autoload=/opt/orbit/extensions.load",
];

#[test]
fn fleets_launcher_flags_parse_and_need_nothing_more() {
    let f = flags(FLEET);
    assert!(wanted(&f));
    assert_eq!(check(&f), Ok(()));
    assert_eq!(f.u64("distributed_tls_max_attempts"), 10);
    assert_eq!(f.u64("carver_block_size"), 2_000_000);
    assert!(flags(&[]).bool("disable_distributed"));
    assert!(!wanted(&flags(&[])));
}

#[test]
fn what_is_turned_on_names_what_it_needs() {
    let f = flags(&["--config_plugin=tls", "--logger_plugin=filesystem,tls"]);
    assert!(wanted(&f));
    assert_eq!(
        check(&f),
        Err("missing --tls_hostname (for the TLS remote API), --enroll_tls_endpoint (for enrollment), --config_tls_endpoint (for --config_plugin=tls), --logger_tls_endpoint (for --logger_plugin=tls)".into())
    );
    let f = flags(&[
        "--disable_distributed=false",
        "--tls_hostname=h:1",
        "--disable_enrollment",
    ]);
    assert_eq!(
        check(&f),
        Err("missing --distributed_tls_read_endpoint (for distributed queries), --distributed_tls_write_endpoint (for distributed queries)".into())
    );
}

#[test]
fn rows_travel_with_string_values() {
    let row = json!({"a": 1, "b": 2.5, "c": "x", "d": null})
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(
        Value::Object(text_values(row)),
        json!({"a": "1", "b": "2.5", "c": "x", "d": ""})
    );
}

fn line(kind: Kind, text: &str) -> Line {
    Line {
        kind,
        text: text.to_owned(),
    }
}

#[test]
fn log_requests_are_runs_of_one_type_capped_in_lines() {
    let lines = vec![
        (1, line(Kind::Result, r#"{"n":1}"#)),
        (2, line(Kind::Snapshot, r#"{"n":2}"#)),
        (3, line(Kind::Result, r#"{"n":3}"#)),
        (4, line(Kind::Status(1), r#"{"s":1}"#)),
        (
            5,
            line(Kind::Result, &format!(r#"{{"long":"{}"}}"#, "x".repeat(40))),
        ),
        (6, line(Kind::Result, r#"{"n":6}"#)),
    ];
    let got = requests(&lines, 2, 32);
    assert_eq!(
        got,
        vec![
            Request {
                log_type: "result",
                data: vec![json!({"n":1}), json!({"n":2})],
                last: 2,
                too_long: 0
            },
            Request {
                log_type: "result",
                data: vec![json!({"n":3})],
                last: 3,
                too_long: 0
            },
            Request {
                log_type: "status",
                data: vec![json!({"s":1})],
                last: 4,
                too_long: 0
            },
            Request {
                log_type: "result",
                data: vec![json!({"n":6})],
                last: 6,
                too_long: 1
            },
        ]
    );
}

fn engine_and_store() -> (tempfile::TempDir, Engine, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_primary(&dir.path().join("db")).unwrap());
    let env = TableEnv::new(Some(store.clone()), Arc::new(Flags::default()));
    (dir, Engine::new(env).unwrap(), store)
}

#[test]
fn distributed_answers_rows_errors_discovery_and_the_denylist() {
    let (_dir, engine, store) = engine_and_store();
    let read = json!({
        "queries": {
            "ok": "SELECT 1 AS one, 'a' AS two",
            "bad": "SELECT * FROM no_such_table",
            "skipped": "SELECT 1",
            "slow": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        },
        "discovery": {"skipped": "SELECT 1 WHERE 0", "ok": "SELECT 1"},
    });
    let limits = Limits {
        timeout: Some(Duration::from_millis(300)),
        denylist_secs: 100,
    };
    let body = answer(
        &engine,
        None,
        &store,
        read.as_object().unwrap(),
        limits,
        1000,
        None,
    );
    assert_eq!(body["queries"]["ok"], json!([{"one": "1", "two": "a"}]));
    assert_eq!(body["statuses"], json!({"ok": 0, "bad": 1, "slow": 1}));
    assert_eq!(
        body["messages"]["bad"],
        json!("no such table: no_such_table")
    );
    assert_eq!(
        body["messages"]["slow"],
        json!("the query ran longer than 300ms and was stopped")
    );
    assert!(body["queries"].get("skipped").is_none());
    assert!(body["stats"]["ok"]["wall_time_ms"].is_u64());
    // Asked again within the denylist time: refused without running.
    let body = answer(
        &engine,
        None,
        &store,
        read.as_object().unwrap(),
        limits,
        1050,
        None,
    );
    assert_eq!(
        body["messages"]["slow"],
        json!(
            "denylisted for 50 more second(s): it timed out, was stopped by the watchdog, or was running when the agent stopped"
        )
    );
    assert_eq!(
        Denylist::load(&store, DENYLIST_META)
            .until
            .get(read["queries"]["slow"].as_str().unwrap()),
        Some(&1100)
    );
    // And after it: run again (and stopped again).
    let body = answer(
        &engine,
        None,
        &store,
        read.as_object().unwrap(),
        limits,
        1100,
        None,
    );
    assert_eq!(
        body["messages"]["slow"],
        json!("the query ran longer than 300ms and was stopped")
    );
}

#[test]
fn a_query_running_when_the_agent_died_is_denylisted_at_the_next_start() {
    let (_dir, _engine, store) = engine_and_store();
    store
        .put_meta(b"remote.distributed.running", b"SELECT crash()", true)
        .unwrap();
    denylist_crashed(&store, 60, 500);
    assert_eq!(
        Denylist::load(&store, DENYLIST_META)
            .until
            .into_iter()
            .collect::<Vec<_>>(),
        [("SELECT crash()".to_owned(), 560)]
    );
    assert_eq!(store.get_meta(b"remote.distributed.running").unwrap(), None);
}
