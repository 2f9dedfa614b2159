//! The config through the real daemon: `options` reach `osquery_flags` (seen from a separate
//! `osprey query` process) with their source, command line and flagfile still win, and SIGHUP
//! reloads: a bad rewrite is refused with a logged error naming the key and the last good
//! config stays; a good rewrite applies.
//!
//! The daemon runs with `disable_events` (from the config), so no eBPF is loaded and this test
//! needs no root: what it checks is configuration, not capture.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use tests::{Daemon, s};

const FLAGS_SQL: &str = "SELECT name, value, source FROM osquery_flags WHERE name IN \
    ('events_max', 'events_expiry', 'storage_batch_ms', 'disable_events', \
     'enable_file_events', 'audit_allow_fim_events', 'disable_endpointsecurity_fim', \
     'event_queue_size')";

/// name -> (value, source) as `osprey query` sees it.
fn flags(d: &Daemon) -> BTreeMap<String, (String, String)> {
    d.query(FLAGS_SQL)
        .iter()
        .map(|r| {
            (
                s(r, "name").to_owned(),
                (s(r, "value").to_owned(), s(r, "source").to_owned()),
            )
        })
        .collect()
}

fn pair(v: &str, src: &str) -> (String, String) {
    (v.to_owned(), src.to_owned())
}

fn write_config(path: &Path, events_max: &str) {
    let text = format!(
        r#"{{
  "options": {{
    "disable_events": true,
    "audit_allow_fim_events": true,
    "events_max": {events_max},
    "events_expiry": 55,
    "storage_batch_ms": 88
  }},
  "schedule": {{"q": {{"query": "SELECT 1;", "interval": 60}}}},
  "file_paths": {{"etc": ["/etc/%%"]}}
}}"#
    );
    std::fs::write(path, text).expect("write config");
}

fn sighup(d: &Daemon) {
    // SAFETY: kill with the pid of a child we started and a valid signal number.
    let rc = unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill -HUP {}", d.pid());
}

/// Waits until `cond` holds, or panics with the daemon's log.
fn wait_for(d: &Daemon, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn config_options_reach_osquery_flags_and_sighup_reloads_safely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("osquery.conf");
    let flagfile = dir.path().join("flags");
    write_config(&conf, "1234");
    std::fs::write(&flagfile, "--storage_batch_ms=77\n").expect("write flagfile");
    let mut d = Daemon::start(&[
        &format!("--config_path={}", conf.display()),
        &format!("--flagfile={}", flagfile.display()),
        "--events_expiry=99",
    ]);

    let want = BTreeMap::from([
        ("events_max".to_owned(), pair("1234", "config")),
        ("events_expiry".to_owned(), pair("99", "command line")),
        ("storage_batch_ms".to_owned(), pair("77", "flagfile")),
        ("disable_events".to_owned(), pair("true", "config")),
        // The alias set the one FIM switch; both rows show it.
        ("enable_file_events".to_owned(), pair("true", "config")),
        ("audit_allow_fim_events".to_owned(), pair("true", "config")),
        (
            "disable_endpointsecurity_fim".to_owned(),
            pair("false", "config"),
        ),
        ("event_queue_size".to_owned(), pair("65536", "default")),
    ]);
    assert_eq!(flags(&d), want);

    let fim = d.query("SELECT description FROM osquery_flags WHERE name = 'enable_file_events'");
    assert!(
        s(&fim[0], "description").ends_with(
            "[now: FIM off: disable_events=true (config); warning: enable_file_events=true \
             (config) has no effect while disable_events=true; warning: the config lists 1 \
             file_paths category, but FIM is off]"
        ),
        "{:?}",
        fim[0]
    );
    let log = d.log();
    assert!(
        log.contains(
            "FIM off: disable_events=true (config); warning: enable_file_events=true (config) \
             has no effect while disable_events=true"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "--audit_allow_fim_events is deprecated: it is an alias of --enable_file_events; \
             config set --enable_file_events=true"
        ),
        "{log}"
    );

    // A bad value: refused, logged with its key path, the last good config stays.
    write_config(&conf, "\"lots\"");
    sighup(&d);
    wait_for(&d, "the reload error", || {
        d.log().contains("config reload failed")
    });
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("config reload failed"))
        .expect("error line");
    assert!(
        line.ends_with(&format!(
            "config reload failed; keeping the last good config: {}: options.events_max: bad \
             value \"lots\" for --events_max: expected a non-negative integer",
            conf.display()
        )),
        "{line}"
    );
    assert_eq!(flags(&d)["events_max"], pair("1234", "config"));
    let child = d.child.as_mut().expect("child");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "daemon died on a bad config"
    );

    // A JSON syntax error: the line and column are named.
    std::fs::write(&conf, "{\n  \"options\": {\"events_max\": 5,}\n}\n").expect("write");
    sighup(&d);
    wait_for(&d, "the syntax error", || {
        d.log().contains(&format!(
            "keeping the last good config: {}:2:31: JSON syntax error: trailing comma",
            conf.display()
        ))
    });
    assert_eq!(flags(&d)["events_max"], pair("1234", "config"));

    // A good rewrite applies; the command line still wins over it.
    write_config(&conf, "4321");
    sighup(&d);
    wait_for(&d, "events_max = 4321 in osquery_flags", || {
        flags(&d)["events_max"] == pair("4321", "config")
    });
    let now = flags(&d);
    assert_eq!(now["events_expiry"], pair("99", "command line"));
    assert_eq!(now["storage_batch_ms"], pair("77", "flagfile"));
    let log = d.stop();
    assert!(log.contains("config reloaded from"), "{log}");
    assert!(
        log.contains("flags changed by the config: events_max"),
        "{log}"
    );
}

/// Through the real kernel: categories and excludes from the config decide the rows, and a
/// reload that adds a category applies to events after it.
#[test]
fn fim_categories_and_excludes_follow_the_config_across_a_reload() {
    if !tests::privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for sub in ["watched/skip", "watched/deep/er", "other"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    let conf = dir.path().join("osquery.conf");
    let write_conf = |extra: &str| {
        let r = root.display();
        std::fs::write(
            &conf,
            format!(
                r#"{{"options": {{"enable_file_events": true}},
                    "file_paths": {{"w": ["{r}/watched/%%"]{extra}}},
                    "exclude_paths": {{"w": ["{r}/watched/skip/%%"]}}}}"#
            ),
        )
        .expect("write config");
    };
    write_conf("");
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);
    assert!(
        d.log()
            .contains("FIM on: enable_file_events=true (config), 1 category"),
        "{}",
        d.log()
    );
    let categories = |d: &Daemon| -> BTreeMap<String, String> {
        d.query(&format!(
            "SELECT DISTINCT target_path, category FROM file_events WHERE target_path LIKE '{}/%'",
            root.display()
        ))
        .iter()
        .map(|r| (s(r, "target_path").to_owned(), s(r, "category").to_owned()))
        .collect()
    };
    let touch = |p: &str| std::fs::write(root.join(p), "x").expect("write");
    // Events are stored in the order they happen: once the last one is there, the earlier
    // ones are too, or were filtered.
    touch("watched/skip/excluded");
    touch("other/unwatched");
    touch("watched/deep/er/nested");
    touch("watched/last");
    let last = root.join("watched/last").display().to_string();
    wait_for(&d, "watched/last", || categories(&d).contains_key(&last));
    let r = root.display();
    assert_eq!(
        categories(&d),
        BTreeMap::from([
            (format!("{r}/watched/deep/er/nested"), "w".to_owned()),
            (format!("{r}/watched/last"), "w".to_owned()),
        ])
    );

    write_conf(&format!(r#", "o": ["{r}/other/%"]"#));
    sighup(&d);
    // Logged once the kernel filters follow the new config.
    wait_for(&d, "the reload in force", || {
        d.log().contains("config generation 2 in force")
    });
    touch("other/now_watched");
    touch("watched/last2");
    let last2 = root.join("watched/last2").display().to_string();
    wait_for(&d, "watched/last2", || categories(&d).contains_key(&last2));
    let got = categories(&d);
    assert_eq!(
        got.get(&format!("{r}/other/now_watched"))
            .map(String::as_str),
        Some("o"),
        "{got:?}"
    );
    assert!(
        !got.contains_key(&format!("{r}/other/unwatched")),
        "{got:?}"
    );
    let log = d.stop();
    assert!(
        log.contains("FIM on: enable_file_events=true (config), 2 categories"),
        "{log}"
    );
}
