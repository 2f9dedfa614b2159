//! The TLS remote API against the project's test server (`tests/fleet/server.py`, Fleet's
//! agent routes): the daemon starts with exactly the flags Fleet's launcher passes.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde_json::{Value, json};
use tests::{
    Daemon,
    fleet::{Certs, FleetServer},
    privileged, s,
};

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Fleet's default agent options and a pack, as Fleet's config reply carries them.
fn fleet_config(queries: Value) -> Value {
    json!({
        "options": {
            "pack_delimiter": "/",
            "logger_tls_period": 1,
            "distributed_interval": 1,
        },
        "decorators": {
            "load": [
                "SELECT uuid AS host_uuid FROM system_info;",
                "SELECT hostname AS hostname FROM system_info;",
            ],
        },
        "packs": {"Global": {"queries": queries}},
    })
}

/// Every result line the server received, in arrival order.
fn result_lines(logs: &[Value]) -> Vec<Value> {
    logs.iter()
        .filter(|b| b["log_type"] == "result")
        .flat_map(|b| b["data"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn named<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["name"] == name).collect()
}

fn start_server(dir: &Path, mtls: bool) -> (Certs, FleetServer) {
    let certs = Certs::make(&dir.join("pki"), "fleet");
    let server = FleetServer::start(&dir.join("state"), &certs, mtls);
    (certs, server)
}

#[test]
fn enrolls_pulls_its_config_ships_logs_and_answers_distributed_queries() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (certs, server) = start_server(dir.path(), true);
    server.set(
        "config.json",
        &fleet_config(json!({
            "probe": {"query": "SELECT 42 AS answer", "interval": 1, "snapshot": true},
        })),
    );
    let mut flags = server.launcher_flags(&certs);
    flags.push(format!("--tls_client_cert={}", certs.client_cert.display()));
    flags.push(format!("--tls_client_key={}", certs.client_key.display()));
    flags.push("--watchdog_delay=0".into());
    flags.push("--watchdog_memory_limit=150".into());
    let d = Daemon::start(&args(&flags));

    // Enrollment: the secret, the machine's UUID, Linux's platform type and host details
    // whose values are all strings.
    let uuid = s(&d.query("SELECT uuid FROM system_info")[0], "uuid").to_owned();
    let enrolls = server.wait("enroll.jsonl", 30, |v| !v.is_empty());
    assert_eq!(enrolls.len(), 1, "{}", d.log());
    let e = &enrolls[0];
    assert_eq!(e["enroll_secret"], "osprey-test-secret");
    assert_eq!(e["host_identifier"], uuid.as_str());
    assert_eq!(e["platform_type"], "9");
    for t in ["os_version", "osquery_info", "system_info"] {
        let o = e["host_details"][t]
            .as_object()
            .expect("an object per table");
        assert!(!o.is_empty(), "{t} is empty");
        assert!(
            o.values().all(Value::is_string),
            "{t} has non-string values: {o:?}"
        );
    }
    assert_eq!(e["host_details"]["system_info"]["uuid"], uuid.as_str());
    assert_eq!(e["host_details"]["osquery_info"]["version"], "5.12.1");

    // The pack from the fetched config, named with Fleet's delimiter, decorated.
    let logs = server.wait("log.jsonl", 30, |v| {
        !named(&result_lines(v), "pack/Global/probe").is_empty()
    });
    let lines = result_lines(&logs);
    let probe = named(&lines, "pack/Global/probe");
    assert!(!probe.is_empty(), "no probe line\n{}", d.log());
    assert_eq!(probe[0]["snapshot"], json!([{"answer": "42"}]));
    assert_eq!(probe[0]["hostIdentifier"], uuid.as_str());
    assert_eq!(probe[0]["decorations"]["host_uuid"], uuid.as_str());
    // Status lines too.
    let status: Vec<Value> = logs
        .iter()
        .filter(|b| b["log_type"] == "status")
        .flat_map(|b| b["data"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        status.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("running: database"))),
        "{status:?}"
    );

    // A distributed read: one good query, one bad one, one whose discovery says no.
    server.set(
        "queries.json",
        &json!({
            "queries": {
                "fleet_distributed_query_1": "SELECT 1 AS one, 'x' AS two",
                "fleet_distributed_query_2": "SELECT * FROM no_such_table",
                "fleet_detail_query_skipped": "SELECT 1",
                // Fleet computes a host's online status from these.
                "fleet_detail_query_osquery_flags": "SELECT name, value FROM osquery_flags WHERE name IN ('distributed_interval', 'config_refresh', 'config_tls_refresh', 'logger_tls_period') ORDER BY name",
                // Discovery through osquery_registry, as Fleet asks for optional tables.
                "fleet_detail_query_root_mount": "SELECT path FROM mounts WHERE path = '/'",
                "fleet_detail_query_software_homebrew": "SELECT name, version FROM homebrew_packages",
                // osquery's SQL functions.
                "fleet_label_query_9": "SELECT split('10.1.2.3/24', '/', 0) AS ip, inet_aton(split('10.1.2.3/24', '/', 0)) AS n, in_cidr_block('10.0.0.0/8', '10.1.2.3') AS inside",
            },
            "discovery": {
                "fleet_detail_query_skipped": "SELECT 1 WHERE 0",
                "fleet_detail_query_root_mount": "SELECT 1 FROM osquery_registry WHERE active = true AND registry = 'table' AND name = 'mounts'",
                "fleet_detail_query_software_homebrew": "SELECT 1 FROM osquery_registry WHERE active = true AND registry = 'table' AND name = 'homebrew_packages'",
            },
        }),
    );
    let writes = server.wait("write.jsonl", 30, |v| !v.is_empty());
    assert_eq!(writes.len(), 1, "{}", d.log());
    let w = &writes[0];
    assert_eq!(
        w["queries"],
        json!({
            "fleet_distributed_query_1": [{"one": "1", "two": "x"}],
            "fleet_distributed_query_2": [],
            "fleet_detail_query_osquery_flags": [
                {"name": "config_refresh", "value": "60"},
                {"name": "config_tls_refresh", "value": "60"},
                {"name": "distributed_interval", "value": "1"},
                {"name": "logger_tls_period", "value": "1"},
            ],
            "fleet_detail_query_root_mount": [{"path": "/"}],
            "fleet_label_query_9": [{"ip": "10.1.2.3", "n": "167838211", "inside": "1"}],
        })
    );
    assert_eq!(
        w["statuses"],
        json!({
            "fleet_distributed_query_1": 0,
            "fleet_distributed_query_2": 1,
            "fleet_detail_query_osquery_flags": 0,
            "fleet_detail_query_root_mount": 0,
            "fleet_label_query_9": 0,
        })
    );
    assert_eq!(
        w["messages"],
        json!({"fleet_distributed_query_2": "no such table: no_such_table"})
    );

    // A runaway live query: the watchdog stops its worker, the query gets an error status,
    // and asked again it is refused (denylisted); the daemon answers the next one.
    let runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT length(group_concat(hex(zeroblob(50)))) AS n FROM c";
    server.set(
        "queries.json",
        &json!({"queries": {"fleet_distributed_query_3": runaway}}),
    );
    let writes = server.wait("write.jsonl", 60, |v| v.len() >= 2);
    let w = &writes[1];
    assert_eq!(
        w["statuses"],
        json!({"fleet_distributed_query_3": 1}),
        "{w}"
    );
    let m = w["messages"]["fleet_distributed_query_3"]
        .as_str()
        .unwrap_or_default();
    assert!(
        m.starts_with("the query worker (pid ")
            && m.contains(") was stopped by the watchdog (memory: ")
            && m.ends_with(" MB resident, over the limit of 150 MB)"),
        "{m}"
    );
    server.set(
        "queries.json",
        &json!({"queries": {"fleet_distributed_query_3": runaway, "fleet_distributed_query_4": "SELECT 4 AS four"}}),
    );
    let writes = server.wait("write.jsonl", 60, |v| v.len() >= 3);
    let w = &writes[2];
    assert_eq!(
        w["statuses"],
        json!({"fleet_distributed_query_3": 1, "fleet_distributed_query_4": 0}),
        "{w}"
    );
    assert_eq!(
        w["queries"]["fleet_distributed_query_4"],
        json!([{"four": "4"}])
    );
    assert!(
        w["messages"]["fleet_distributed_query_3"]
            .as_str()
            .is_some_and(|m| m.starts_with("denylisted for 86")),
        "{w}"
    );

    // Every request after enrollment names its key twice, as osquery 5.12 does.
    let reqs = server.received("requests.jsonl");
    assert!(reqs.len() >= 4);
    for r in &reqs {
        assert_eq!(r["content_type"], "application/json");
        assert!(
            r["user_agent"]
                .as_str()
                .is_some_and(|u| u.starts_with("osquery/5.12.1 osprey/")),
            "{r}"
        );
        if r["path"] != "/api/v1/osquery/enroll" {
            let key = r["body"]["node_key"].as_str().expect("node_key");
            assert_eq!(r["authorization"], format!("NodeKey {key}"));
        }
    }
    // Secrets never reach a log: neither the enroll secret nor the node key is in the
    // daemon's log or in what it shipped as status and result lines.
    let node_key = reqs
        .iter()
        .find_map(|r| r["body"]["node_key"].as_str().map(str::to_owned))
        .expect("a node key");
    let log = d.stop();
    // (Each upload names its node key, as the protocol wants: only the lines count.)
    let lines: Vec<Value> = server
        .received("log.jsonl")
        .iter()
        .flat_map(|b| b["data"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!lines.is_empty());
    let shipped = serde_json::to_string(&lines).expect("json");
    for secret in ["osprey-test-secret", node_key.as_str()] {
        assert!(
            !log.contains(secret),
            "{secret} in the daemon's log:\n{log}"
        );
        assert!(!shipped.contains(secret), "{secret} in the shipped logs");
    }
}

#[test]
fn node_invalid_enrolls_again_and_a_restart_keeps_the_key() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (certs, server) = start_server(dir.path(), false);
    server.set(
        "config.json",
        &fleet_config(json!({
            "probe": {"query": "SELECT 42 AS answer", "interval": 1, "snapshot": true},
        })),
    );
    let mut flags = server.launcher_flags(&certs);
    // Gzipped log uploads, as `logger_tls_compress` asks.
    flags.push("--logger_tls_compress=true".into());
    let db = dir.path().join("db");
    let probes = |v: &[Value]| named(&result_lines(v), "pack/Global/probe").len();
    let d = Daemon::start_on(&db, &args(&flags));
    server.wait("log.jsonl", 30, |v| probes(v) >= 1);
    assert_eq!(server.received("enroll.jsonl").len(), 1, "{}", d.log());

    server.switch("invalidate", true);
    let enrolls = server.wait("enroll.jsonl", 30, |v| v.len() >= 2);
    assert_eq!(enrolls.len(), 2, "{}", d.log());
    let before = probes(&server.received("log.jsonl"));
    let after = server.wait("log.jsonl", 30, |v| probes(v) > before);
    assert!(
        probes(&after) > before,
        "no log after enrolling again\n{}",
        d.log()
    );
    let keys: Vec<String> = server
        .received("requests.jsonl")
        .iter()
        .filter_map(|r| r["body"]["node_key"].as_str().map(str::to_owned))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), 2, "one key before, one after: {keys:?}");
    let encodings: std::collections::BTreeSet<String> = server
        .received("requests.jsonl")
        .iter()
        .filter(|r| r["path"] == "/api/v1/osquery/log")
        .map(|r| r["content_encoding"].to_string())
        .collect();
    assert_eq!(
        encodings.into_iter().collect::<Vec<_>>(),
        ["\"gzip\""],
        "every log upload gzipped"
    );
    d.stop();

    // The key is kept in the store: a restart does not enroll.
    let before = probes(&server.received("log.jsonl"));
    let d = Daemon::start_on(&db, &args(&flags));
    server.wait("log.jsonl", 30, |v| probes(v) > before);
    assert_eq!(server.received("enroll.jsonl").len(), 2, "{}", d.log());
    d.stop();
}

#[test]
fn a_ten_second_outage_loses_no_log_line() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (certs, server) = start_server(dir.path(), false);
    // Its result changes every second: each change is one `added` line with the next
    // counter, so the counters received must be 0, 1, 2 … without a gap or a repeat.
    server.set(
        "config.json",
        &fleet_config(json!({
            "tick": {"query": "SELECT strftime('%s', 'now') AS t", "interval": 1},
        })),
    );
    let d = Daemon::start(&args(&server.launcher_flags(&certs)));
    let added = |v: &[Value]| -> Vec<u64> {
        result_lines(v)
            .iter()
            .filter(|l| l["name"] == "pack/Global/tick" && l["action"] == "added")
            .filter_map(|l| l["counter"].as_u64())
            .collect()
    };
    server.wait("log.jsonl", 30, |v| added(v).len() >= 2);
    server.switch("down", true);
    std::thread::sleep(Duration::from_secs(10));
    let during = server.received("log.jsonl").len();
    server.switch("down", false);
    let seen = added(&server.received("log.jsonl"));
    let target = seen.iter().max().copied().unwrap_or(0) + 12;
    let logs = server.wait("log.jsonl", 60, |v| added(v).iter().any(|c| *c >= target));
    let got = added(&logs);
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for c in &got {
        *count.entry(*c).or_default() += 1;
    }
    let max = *count.keys().last().expect("lines");
    assert!(max >= target, "{got:?}\n{}", d.log());
    let want: BTreeMap<u64, usize> = (0..=max).map(|c| (c, 1)).collect();
    assert_eq!(count, want, "every counter exactly once\n{}", d.log());
    assert!(during > 0);
    d.stop();
}

#[test]
fn a_server_certificate_that_does_not_verify_gets_no_request() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_certs, server) = start_server(dir.path(), false);
    // Another CA than the one that signed the server's certificate.
    let other = Certs::make(&dir.path().join("other"), "other");
    let d = Daemon::start(&args(&server.launcher_flags(&other)));
    std::thread::sleep(tests::scaled(Duration::from_secs(5)));
    assert_eq!(server.received("requests.jsonl"), Vec::<Value>::new());
    let log = d.stop();
    assert!(
        log.contains("invalid peer certificate: UnknownIssuer"),
        "the error names the cause:\n{log}"
    );
}

#[test]
fn a_carve_is_uploaded_in_blocks_and_reassembles_byte_identical() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (certs, server) = start_server(dir.path(), false);
    server.set(
        "config.json",
        &json!({"options": {"distributed_interval": 1}}),
    );
    let files = dir.path().join("evidence");
    std::fs::create_dir_all(files.join("sub")).expect("mkdir");
    let a: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(files.join("a.bin"), &a).expect("write");
    std::fs::write(files.join("sub/b.txt"), b"second file\n").expect("write");
    let huge = dir.path().join("huge.img");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(5 << 30))
        .expect("sparse file");
    let mut flags = server.launcher_flags(&certs);
    flags.push("--carver_block_size=1024".into());
    let d = Daemon::start(&args(&flags));
    let id = "fleet_distributed_query_carve";
    server.set(
        "queries.json",
        &json!({"queries": {
            id: format!(
                "SELECT path, status, carve FROM carves WHERE path LIKE '{}/%' AND carve = 1 ORDER BY path",
                files.display()
            ),
            // A (sparse) file of 5 GiB: refused, nothing uploaded.
            "fleet_distributed_query_huge": format!(
                "SELECT * FROM carves WHERE path = '{}' AND carve = 1",
                huge.display()
            ),
        }}),
    );
    let writes = server.wait("write.jsonl", 30, |v| !v.is_empty());
    assert_eq!(writes.len(), 1, "{}", d.log());
    assert_eq!(writes[0]["statuses"][id], 0, "{}", writes[0]);
    assert_eq!(writes[0]["statuses"]["fleet_distributed_query_huge"], 1);
    assert_eq!(
        writes[0]["messages"]["fleet_distributed_query_huge"],
        "carves: a carve takes at most 4294967296 bytes; these 1 file(s) have 5368709120"
    );
    // The carves table follows the upload to its end.
    let deadline = std::time::Instant::now() + tests::scaled(Duration::from_secs(30));
    let mut rows = Vec::new();
    while std::time::Instant::now() < deadline {
        rows = d.query("SELECT carve_guid, request_id, status, size, sha256 FROM carves");
        if rows.len() == 2 && rows.iter().all(|r| s(r, "status") == "SUCCESS") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        rows.len() == 2 && rows.iter().all(|r| s(r, "status") == "SUCCESS"),
        "{rows:?}\n{}",
        d.log()
    );
    let guid = s(&rows[0], "carve_guid").to_owned();
    assert_eq!(s(&rows[0], "request_id"), id);
    let size: u64 = s(&rows[0], "size").parse().expect("size");
    // The begin request, and the blocks reassembled by the server.
    let begins: Vec<Value> = server
        .received("requests.jsonl")
        .into_iter()
        .filter(|r| r["path"] == "/api/v1/osquery/carve/begin")
        .collect();
    assert_eq!(begins.len(), 1);
    let b = &begins[0]["body"];
    assert_eq!(b["carve_id"], guid.as_str());
    assert_eq!(b["request_id"], id);
    assert_eq!(b["carve_size"], size);
    assert_eq!(b["block_size"], 1024);
    assert_eq!(b["block_count"], size.div_ceil(1024));
    let session = std::fs::read_dir(&server.state)
        .expect("state")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find_map(|n| {
            n.strip_prefix("carve-")?
                .strip_suffix(".bin")
                .map(str::to_owned)
        })
        .expect("an uploaded carve");
    let bin = server.state.join(format!("carve-{session}.bin"));
    let bytes = std::fs::read(&bin).expect("carve");
    assert_eq!(bytes.len() as u64, size);
    let sum = std::process::Command::new("sha256sum")
        .arg(&bin)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(sum.split_whitespace().next(), Some(s(&rows[0], "sha256")));
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut got = BTreeMap::new();
    for e in archive.entries().expect("tar") {
        let mut e = e.expect("entry");
        let name = e.path().expect("name").display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("data");
        got.insert(name, data);
    }
    let rel = |p: &str| {
        files
            .join(p)
            .display()
            .to_string()
            .trim_start_matches('/')
            .to_owned()
    };
    let want = BTreeMap::from([
        (rel("a.bin"), a),
        (rel("sub/b.txt"), b"second file\n".to_vec()),
    ]);
    assert_eq!(got, want);
    d.stop();
}

/// Fleet's Linux detail queries, written from the tables and columns Fleet reads
/// (docs/fleet.md): every one answers with status 0, and with rows where this machine has
/// something to report (it has no RPM database, browser profiles or JetBrains IDEs).
#[test]
fn fleets_linux_detail_queries_all_answer() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (certs, server) = start_server(dir.path(), false);
    server.set(
        "config.json",
        &json!({
            "options": {"distributed_interval": 1},
            "schedule": {"probe": {"query": "SELECT 1", "interval": 3600}},
        }),
    );
    let d = Daemon::start(&args(&server.launcher_flags(&certs)));
    let answer = [
        (
            "os_version",
            "SELECT name, version, major, minor, patch, build, platform, platform_like, codename, arch FROM os_version LIMIT 1",
        ),
        ("osquery_info", "SELECT * FROM osquery_info LIMIT 1"),
        (
            "system_info",
            "SELECT uuid, hostname, computer_name, hardware_vendor, hardware_model, hardware_serial, cpu_brand, cpu_physical_cores, cpu_logical_cores, physical_memory FROM system_info LIMIT 1",
        ),
        (
            "uptime",
            "SELECT total_seconds AS uptime FROM uptime LIMIT 1",
        ),
        (
            "osquery_flags",
            "SELECT name, value FROM osquery_flags WHERE name IN ('distributed_interval', 'config_tls_refresh', 'config_refresh', 'logger_tls_period')",
        ),
        (
            "disk_space_unix",
            "SELECT (blocks_available * 100 / blocks) AS percent_disk_space_available, round((blocks_available * blocks_size * 10e-10), 2) AS gigs_disk_space_available, round((blocks * blocks_size * 10e-10), 2) AS gigs_total_disk_space FROM mounts WHERE path = '/' LIMIT 1",
        ),
        (
            "os_unix_like",
            "SELECT os.name, os.version, k.version AS kernel_version FROM os_version os CROSS JOIN kernel_info k",
        ),
        (
            "users",
            "WITH cached_groups AS (SELECT * FROM groups) SELECT uid, username, type, groupname, shell, directory FROM (SELECT uid, username, 'person' AS type, gid, shell, directory FROM users) LEFT JOIN cached_groups USING (gid)",
        ),
        (
            "scheduled_query_stats",
            "SELECT *, (SELECT value FROM osquery_flags WHERE name = 'pack_delimiter') AS delimiter FROM osquery_schedule",
        ),
        (
            "osquery_registry",
            "SELECT name FROM osquery_registry WHERE registry = 'table' AND active = 1",
        ),
        (
            "network_interface_unix",
            "SELECT ia.address, id.mac FROM interface_addresses ia JOIN interface_details id ON id.interface = ia.interface JOIN routes r ON r.interface = ia.interface WHERE (r.destination = '0.0.0.0' OR r.destination = '::') AND r.netmask = 0 AND r.type = 'gateway' ORDER BY r.metric ASC, inet_aton(ia.address) IS NOT NULL DESC LIMIT 1",
        ),
        (
            "software_linux_deb",
            "SELECT name AS name, version AS version, 'Package (deb)' AS type, source FROM deb_packages WHERE status LIKE '% ok installed'",
        ),
        (
            "disk_encryption_linux",
            "SELECT de.encrypted, m.path FROM disk_encryption de JOIN mounts m ON m.device_alias = de.name",
        ),
        (
            "software_linux_rpm",
            "SELECT name, version, release, vendor, arch FROM rpm_packages",
        ),
        (
            "software_python",
            "SELECT name, version, path FROM python_packages",
        ),
        (
            "software_npm",
            "SELECT name, version, path FROM npm_packages",
        ),
        (
            "software_chrome",
            "WITH cached_users AS (SELECT * FROM users) SELECT name AS name, version AS version, identifier AS extension_id, browser_type AS browser, 'chrome_extensions' AS source, '' AS vendor, '' AS installed_path FROM cached_users CROSS JOIN chrome_extensions USING (uid)",
        ),
        (
            "software_firefox",
            "SELECT name AS name, version AS version, 'Browser plugin (Firefox)' AS type, 'firefox_addons' AS source, '' AS vendor, path AS installed_path FROM users CROSS JOIN firefox_addons USING (uid)",
        ),
        (
            "software_jetbrains",
            "SELECT name AS name, version AS version, 'IDE extension (JetBrains)' AS type, 'jetbrains_plugins' AS source, vendor AS vendor, path AS installed_path, product_type FROM users CROSS JOIN jetbrains_plugins USING (uid)",
        ),
    ];
    // No RPM database here, and no account with a browser profile or a JetBrains IDE:
    // answered, with no rows.
    let empty = [
        "software_linux_rpm",
        "software_chrome",
        "software_firefox",
        "software_jetbrains",
    ];
    let mut queries = serde_json::Map::new();
    for (name, sql) in answer {
        queries.insert(format!("fleet_detail_query_{name}"), json!(sql));
    }
    server.set("queries.json", &json!({"queries": queries}));
    let writes = server.wait("write.jsonl", 30, |v| !v.is_empty());
    assert_eq!(writes.len(), 1, "{}", d.log());
    let w = &writes[0];
    for (name, _) in answer {
        let id = format!("fleet_detail_query_{name}");
        assert_eq!(w["statuses"][&id], 0, "{id}: {}", w["messages"][&id]);
        let rows = w["queries"][&id].as_array().expect("rows");
        assert_eq!(rows.is_empty(), empty.contains(&name), "{id}: {rows:?}");
    }
    d.stop();
}

/// Fleet changes `distributed_interval` in its agent options: the next config refresh
/// applies it, to the wait already begun, without a restart.
#[test]
fn a_new_distributed_interval_from_the_config_applies_without_restart() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (certs, server) = start_server(dir.path(), false);
    server.set(
        "config.json",
        &json!({"options": {"distributed_interval": 3600}}),
    );
    let mut flags = server.launcher_flags(&certs);
    flags.push("--config_refresh=1".into());
    let d = Daemon::start(&args(&flags));
    // The first read happens at start; the next one would be an hour later.
    server.wait("requests.jsonl", 30, |v| {
        v.iter()
            .any(|r| r["path"] == "/api/v1/osquery/distributed/read")
    });
    server.set(
        "queries.json",
        &json!({"queries": {"q": "SELECT 7 AS seven"}}),
    );
    server.set(
        "config.json",
        &json!({"options": {"distributed_interval": 1}}),
    );
    let writes = server.wait("write.jsonl", 30, |v| !v.is_empty());
    assert_eq!(writes.len(), 1, "{}", d.log());
    assert_eq!(writes[0]["queries"]["q"], json!([{"seven": "7"}]));
    d.stop();
}
