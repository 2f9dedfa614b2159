//! Config parsing and validation: the embedded default, round trips, and an error for every
//! kind of mistake, each naming its key path or line.

use super::*;

fn ok(text: &str) -> Parsed {
    parse(text, "t.conf", None).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    parse(text, "t.conf", None).unwrap_err().to_string()
}

/// Parses `config.to_json()` again; equal apart from where it came from.
fn round_trip(config: &Config) -> Config {
    let text = serde_json::to_string_pretty(&config.to_json()).unwrap();
    let mut back = parse(&text, &config.origin, None)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config;
    back.hash = config.hash.clone();
    for (_, p) in &mut back.packs {
        p.file = None;
    }
    back
}

#[test]
fn embedded_default_is_valid_and_round_trips() {
    let parsed = load(None).unwrap();
    assert_eq!(parsed.warnings, Vec::<String>::new());
    let c = &parsed.config;
    assert_eq!(c.origin, EMBEDDED_ORIGIN);
    assert_eq!(
        c.hash,
        crate::fim::hash::sha1_hex(DEFAULT_CONFIG.as_bytes())
    );
    assert_eq!(c.options, [("config_refresh".to_owned(), "0".to_owned())]);
    let names: Vec<(&str, u64)> = c
        .schedule
        .iter()
        .map(|(n, q)| (n.as_str(), q.interval))
        .collect();
    assert_eq!(
        names,
        [
            ("process_events", 60),
            ("event_drops", 300),
            ("osquery_info", 3600)
        ]
    );
    assert!(c.file_paths.is_empty(), "FIM is off by default");
    assert_eq!(round_trip(c), *c);
    // Its options apply cleanly.
    let mut flags = crate::flags::Flags::default();
    assert!(flags.apply_config_options(&c.options).unwrap().is_empty());
}

const FULL: &str = r#"{
  "options": {"events_max": 100, "verbose": true, "storage_sync": "none"},
  "schedule": {
    "q1": {"query": "SELECT 1;", "interval": "30", "removed": false, "snapshot": true,
           "platform": "linux", "version": "5.0.0", "shard": 50, "description": "one",
           "blacklist": false}
  },
  "packs": {
    "inline": {"platform": "linux", "shard": 10, "discovery": ["SELECT 1;"],
               "queries": {"q2": {"query": "SELECT 2;", "interval": 10}}}
  },
  "decorators": {"load": ["SELECT 3;"], "always": ["SELECT 4;"],
                 "interval": {"3600": ["SELECT 5;"]}},
  "file_paths": {"homes": ["/root/.ssh/%%", "/home/%/.ssh/%%"], "etc": ["/etc/%%"]},
  "exclude_paths": {"homes": ["/home/skip/.ssh/%%"]},
  "file_accesses": ["homes"],
  "file_paths_query": {"etc": ["SELECT path FROM file WHERE directory = '/etc';"]}
}"#;

#[test]
fn every_key_is_typed() {
    let p = ok(FULL);
    let c = &p.config;
    assert_eq!(
        c.options,
        [
            ("events_max".to_owned(), "100".to_owned()),
            ("verbose".to_owned(), "true".to_owned()),
            ("storage_sync".to_owned(), "none".to_owned()),
        ]
    );
    assert_eq!(
        c.schedule,
        [(
            "q1".to_owned(),
            Query {
                query: "SELECT 1;".into(),
                interval: 30,
                interval_given: true,
                removed: false,
                snapshot: true,
                platform: Some("linux".into()),
                version: Some("5.0.0".into()),
                shard: Some(50),
                description: Some("one".into()),
                denylist: false,
            }
        )]
    );
    let (name, pack) = &c.packs[0];
    assert_eq!(name, "inline");
    assert_eq!(
        (pack.platform.as_deref(), pack.shard, pack.discovery.len()),
        (Some("linux"), Some(10), 1)
    );
    assert_eq!(pack.queries[0].1.interval, 10);
    assert!(pack.queries[0].1.removed, "osquery's default");
    assert_eq!(
        c.decorators,
        Decorators {
            load: vec!["SELECT 3;".into()],
            always: vec!["SELECT 4;".into()],
            interval: vec![(3600, vec!["SELECT 5;".into()])],
        }
    );
    assert_eq!(c.file_paths[0].1, ["/root/.ssh/%%", "/home/%/.ssh/%%"]);
    assert_eq!(c.file_accesses, ["homes"]);
    assert_eq!(p.warnings, Vec::<String>::new());
    assert_eq!(
        c.file_paths_query,
        [(
            "etc".to_owned(),
            vec!["SELECT path FROM file WHERE directory = '/etc';".to_owned()]
        )]
    );
    // Parsing does not run the queries; loading (config::live::build) does.
    assert!(c.queried_paths.is_empty());
    assert_eq!(round_trip(c), *c);
    let m = c.fim_matcher();
    assert_eq!(m.category("/home/al/.ssh/id"), Some("homes"));
    assert_eq!(m.category("/home/skip/.ssh/id"), None);
    assert!(m.wants_accesses("homes"));
}

#[test]
fn errors_name_the_key_path() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"schedule": {"my_query": {"query": "SELECT 1", "interval": "x"}}}"#,
            r#"t.conf: schedule.my_query.interval: expected a positive integer, got "x""#,
        ),
        (
            r#"{"schedule": {"q": {"query": "SELECT 1", "interval": 0}}}"#,
            "t.conf: schedule.q.interval: expected a positive integer, got 0",
        ),
        (
            r#"{"schedule": {"q": {"query": "SELECT 1", "interval": -5}}}"#,
            "t.conf: schedule.q.interval: expected a positive integer, got -5",
        ),
        (
            r#"{"schedule": {"q": {"query": "SELECT 1", "interval": 604801}}}"#,
            "t.conf: schedule.q.interval: 604801 is more than the maximum 604800",
        ),
        (
            r#"{"schedule": {"q": {"interval": 10}}}"#,
            r#"t.conf: schedule.q: missing "query""#,
        ),
        (
            r#"{"schedule": {"q": {"query": "  "}}}"#,
            "t.conf: schedule.q.query: empty query",
        ),
        (
            r#"{"schedule": {"q": {"query": "SELECT 1", "snapshot": "yes"}}}"#,
            r#"t.conf: schedule.q.snapshot: expected true or false, got "yes""#,
        ),
        (
            r#"{"schedule": ["SELECT 1"]}"#,
            "t.conf: schedule: expected an object, got an array",
        ),
        (
            r#"{"options": {"events_max": [1]}}"#,
            "t.conf: options.events_max: expected a string, number or boolean, got an array",
        ),
        (
            r#"{"packs": {"p": {"queries": {"q": {"query": "SELECT 1", "interval": true}}}}}"#,
            "t.conf: packs.p.queries.q.interval: expected a positive integer, got true",
        ),
        (
            r#"{"packs": {"p": 3}}"#,
            "t.conf: packs.p: expected a pack object or a pack file path, got 3",
        ),
        (
            r#"{"packs": {"p": "rel/pack.conf"}}"#,
            r#"t.conf: packs.p: relative pack path "rel/pack.conf" needs a config file to be relative to"#,
        ),
        (
            r#"{"decorators": {"interval": {"hourly": ["SELECT 1"]}}}"#,
            r#"t.conf: decorators.interval.hourly: expected a positive number of seconds as the key, got "hourly""#,
        ),
        (
            r#"{"file_paths": {"etc": "/etc/%%"}}"#,
            r#"t.conf: file_paths.etc: expected an array of strings, got "/etc/%%""#,
        ),
        (
            r#"{"file_paths": {"etc": ["/etc/%%", 5]}}"#,
            "t.conf: file_paths.etc[1]: expected a string, got 5",
        ),
        (
            r#"{"file_paths": {"etc": ["etc/%%"]}}"#,
            r#"t.conf: file_paths.etc[0]: "etc/%%" is not an absolute path (osquery resolves it against its working directory; Osprey refuses it)"#,
        ),
        (
            r#"{"file_accesses": "etc"}"#,
            r#"t.conf: file_accesses: expected an array of strings, got "etc""#,
        ),
        (
            r#"{"exclude_paths": {"etc": [null]}}"#,
            "t.conf: exclude_paths.etc[0]: expected a string, got null",
        ),
        (
            "[1, 2]",
            "t.conf: (top level): expected a JSON object, got an array",
        ),
        (
            r#"{"schedule": {"a": {"query": "SELECT 1", "interval": "x"}, "b": {}}, "file_accesses": 1}"#,
            "t.conf: schedule.a.interval: expected a positive integer, got \"x\"; \
             schedule.b: missing \"query\"; \
             file_accesses: expected an array of strings, got 1",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), *want, "{text}");
    }
}

#[test]
fn syntax_errors_name_line_and_column() {
    assert_eq!(
        err("{\n  \"schedule\": {\n    \"q\": {\"query\": \"SELECT 1\" \"interval\": 5}\n  }\n}"),
        "t.conf:3:31: JSON syntax error: expected `,` or `}`"
    );
    assert_eq!(
        err(""),
        "t.conf:1:0: JSON syntax error: EOF while parsing a value"
    );
    assert_eq!(
        err("{\"options\": {}}\nx"),
        "t.conf:2:1: JSON syntax error: trailing characters"
    );
}

#[test]
fn warnings_for_what_osquery_ignores() {
    let p = ok(r#"{
        "yara": {}, "my_extension_key": 1,
        "schedule": {"q": {"query": "SELECT 1", "interval": 60, "color": "red"}},
        "decorators": {"interval": {"90": ["SELECT 1"]}, "sometimes": []},
        "file_paths": {"etc": ["/etc/%.conf", "", "/Users/%%/x"]},
        "exclude_paths": {"nope": ["/tmp/%.log"]},
        "file_accesses": ["ghost"]
    }"#);
    assert_eq!(
        p.warnings,
        [
            "yara: an osquery key Osprey does not implement; ignored",
            "my_extension_key: unknown top-level key; ignored (as osquery does)",
            "schedule.q.color: unknown query key; ignored",
            "decorators.interval.90: osquery runs interval decorators on minute boundaries; use a multiple of 60",
            "decorators.sometimes: unknown decorator kind; ignored",
            "file_paths.etc[0]: \"/etc/%.conf\": osquery does not filter names on Linux; every entry of /etc/ is watched",
            "file_paths.etc[1]: empty pattern; ignored (as osquery does)",
            "file_paths.etc[2]: \"/Users/%%/x\": a recursive wildcard only works at the end; \"/x\" after it is ignored (as osquery does)",
            "exclude_paths.nope: not a file_paths category; its entries still exclude paths from every category (as osquery does on Linux)",
            "exclude_paths.nope[0]: \"/tmp/%.log\": in exclude_paths only a whole level `%` or `%%` is a wildcard (osquery compares `%` inside a name literally), so this entry matches only names containing a literal `*`",
            "file_accesses[0]: \"ghost\" is not a file_paths category; it has no effect",
        ]
    );
    assert_eq!(p.config.file_paths[0].1, ["/etc/%.conf", "/Users/%%/x"]);
}

#[test]
fn pack_files_resolve_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("packs")).unwrap();
    std::fs::write(
        dir.path().join("packs/net.conf"),
        r#"{"queries": {"listening": {"query": "SELECT 1;", "interval": 120}}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("packs/bad.conf"), "{\"queries\": }").unwrap();
    let conf = dir.path().join("osquery.conf");
    std::fs::write(&conf, r#"{"packs": {"net": "packs/net.conf"}}"#).unwrap();
    let p = load(Some(&conf)).unwrap();
    let (name, pack) = &p.config.packs[0];
    assert_eq!(name, "net");
    assert_eq!(
        pack.file.as_deref(),
        Some(dir.path().join("packs/net.conf").as_path())
    );
    assert_eq!(pack.queries[0].0, "listening");
    assert_eq!(pack.queries[0].1.interval, 120);

    std::fs::write(
        &conf,
        r#"{"packs": {"bad": "packs/bad.conf", "gone": "packs/gone.conf"}}"#,
    )
    .unwrap();
    let e = load(Some(&conf)).unwrap_err().to_string();
    let d = dir.path().display();
    assert_eq!(
        e,
        format!(
            "{d}/osquery.conf: packs.bad: {d}/packs/bad.conf:1:13: JSON syntax error: expected value; \
             packs.gone: cannot read pack {d}/packs/gone.conf: No such file or directory (os error 2)"
        )
    );
}

#[test]
fn a_glob_of_pack_files_names_each_pack_by_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("packs")).unwrap();
    for (f, q) in [
        ("net.conf", "SELECT 1"),
        ("disk.conf", "SELECT 2"),
        ("notes.txt", "x"),
    ] {
        std::fs::write(
            dir.path().join("packs").join(f),
            format!(r#"{{"queries": {{"q": {{"query": "{q}"}}}}}}"#),
        )
        .unwrap();
    }
    let conf = dir.path().join("osquery.conf");
    std::fs::write(&conf, r#"{"packs": {"*": "packs/*.conf"}}"#).unwrap();
    let p = load(Some(&conf)).unwrap();
    let names: Vec<&str> = p.config.packs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["disk", "net"]);
    assert_eq!(p.config.packs[1].1.queries[0].1.query, "SELECT 1");
    std::fs::write(&conf, r#"{"packs": {"*": "packs/*.json"}}"#).unwrap();
    let p = load(Some(&conf)).unwrap();
    assert!(p.config.packs.is_empty());
    assert_eq!(
        p.warnings,
        ["packs.*: no pack file matches \"packs/*.json\""]
    );
}

#[test]
fn unreadable_config_is_an_error_naming_the_path() {
    assert_eq!(
        load(Some(Path::new("/nonexistent/osprey.conf")))
            .unwrap_err()
            .to_string(),
        "cannot read config /nonexistent/osprey.conf: No such file or directory (os error 2)"
    );
}

#[test]
fn null_sections_are_absent_and_never_panic() {
    let p = ok(r#"{"options": null, "schedule": null, "packs": null, "file_paths": null}"#);
    assert_eq!(p.config.schedule.len(), 0);
    // Odd but valid JSON of every shape: never a panic, always an answer.
    for text in [
        "{}",
        "null",
        "\"x\"",
        r#"{"schedule": {"q": null}}"#,
        r#"{"packs": {"p": {"queries": [1]}}}"#,
        r#"{"decorators": []}"#,
        r#"{"file_paths": {"a": [["nested"]]}}"#,
        r#"{"options": {"": ""}}"#,
    ] {
        let _ = parse(text, "t", None);
    }
}

#[test]
fn mangled_configs_never_panic() {
    // Every single-byte deletion and a few substitutions of a config that uses every key.
    let bytes = FULL.as_bytes();
    let mut errors = 0;
    for i in 0..bytes.len() {
        for replacement in [None, Some(b'"'), Some(b'%'), Some(b'{'), Some(b'1')] {
            let mut b = bytes.to_vec();
            match replacement {
                None => {
                    b.remove(i);
                }
                Some(r) => b[i] = r,
            }
            let text = String::from_utf8_lossy(&b);
            if let Ok(p) = parse(&text, "t", None) {
                // Whatever parses must also build a matcher and answer.
                let m = p.config.fim_matcher();
                let _ = m.category("/home/a/.ssh/x");
                let _ = m.kernel_prefixes();
            } else {
                errors += 1;
            }
        }
    }
    // Most mutations break the JSON; the loop must have exercised the error paths.
    assert!(errors > bytes.len(), "{errors}");
}
