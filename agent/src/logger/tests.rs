use std::{
    os::unix::fs::PermissionsExt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use super::*;
use crate::storage::Store;

fn line(kind: Kind, text: &str) -> Line {
    Line {
        kind,
        text: text.to_owned(),
    }
}

#[test]
fn lines_round_trip_and_bad_bytes_are_errors() {
    for l in [
        line(Kind::Result, r#"{"a":1}"#),
        line(Kind::Snapshot, ""),
        line(Kind::Status(2), "é"),
    ] {
        assert_eq!(Line::decode(&l.encode()), Ok(l));
    }
    assert_eq!(Line::decode(b""), Err("shorter than its header"));
    assert_eq!(Line::decode(&[2, 1, 0]), Err("unknown format version"));
    assert_eq!(Line::decode(&[1, 9, 0]), Err("unknown line kind"));
    assert_eq!(Line::decode(&[1, 1, 0, 0xff]), Err("not UTF-8"));
}

/// A sink that records what it got and fails while `down` is set.
struct Recorder {
    got: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
}

impl Sink for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        let mut g = self.got.lock().unwrap();
        g.extend(lines.iter().map(|(_, l)| l.text.clone()));
        Ok(lines.last().map_or(0, |l| l.0))
    }
}

fn append(buf: &LogBuffer, texts: &[&str]) {
    let lines: Vec<Vec<u8>> = texts
        .iter()
        .map(|t| line(Kind::Result, t).encode())
        .collect();
    buf.append(&lines, None, Limits::default()).unwrap();
}

#[test]
fn a_sink_that_is_down_gets_every_line_in_order_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_primary(&dir.path().join("db")).unwrap());
    let buf = Arc::new(LogBuffer::open(store).unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let down = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(LoggerCounters::default());
    let mut fwd = Forwarder::new(
        buf.clone(),
        vec![Box::new(Recorder {
            got: got.clone(),
            down: down.clone(),
        })],
        counters.clone(),
    );
    append(&buf, &["1", "2"]);
    assert_eq!(fwd.pump().unwrap(), 2);
    down.store(true, Ordering::SeqCst);
    append(&buf, &["3"]);
    assert_eq!(fwd.pump().unwrap(), 0);
    append(&buf, &["4"]);
    assert_eq!(fwd.pump().unwrap(), 0);
    assert_eq!(buf.len().0, 2, "kept while the sink is down");
    down.store(false, Ordering::SeqCst);
    assert_eq!(fwd.pump().unwrap(), 2);
    assert_eq!(*got.lock().unwrap(), ["1", "2", "3", "4"]);
    assert_eq!(buf.len(), (0, 0), "released once delivered");
    assert_eq!(counters.send_errors.get(), 2);
    assert_eq!(counters.sent.get(), 4);
}

#[test]
fn the_filesystem_sink_writes_osquerys_files_with_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = sinks::Filesystem::new(dir.path().join("log"), 0o640, None);
    let lines = [
        line(Kind::Result, "r1"),
        line(Kind::Snapshot, "s1"),
        line(Kind::Status(1), "w1"),
        line(Kind::Result, "r2"),
        line(Kind::Status(0), "i1"),
    ];
    let numbered: Vec<(u64, Line)> = (1..).zip(lines).collect();
    assert_eq!(fs.send(&numbered).unwrap(), 5);
    let read = |n: &str| std::fs::read_to_string(dir.path().join("log").join(n)).unwrap();
    assert_eq!(read("osqueryd.results.log"), "r1\nr2\n");
    assert_eq!(read("osqueryd.snapshots.log"), "s1\n");
    // Not status JSON: written as it is.
    assert_eq!(read("osqueryd.INFO"), "w1\ni1\n");
    assert_eq!(read("osqueryd.WARNING"), "w1\n");
    assert!(!dir.path().join("log/osqueryd.ERROR").exists());
    let mode = std::fs::metadata(dir.path().join("log/osqueryd.results.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn unknown_plugins_are_reported_and_known_ones_kept() {
    let mut flags = Flags::default();
    flags
        .parse_args(
            &["--logger_plugin=filesystem, nope,stdout,filesystem,tls".to_owned()],
            crate::flags::Source::CommandLine,
        )
        .unwrap();
    let (sinks, warnings) = sinks_from_flags(
        &flags,
        &[],
        &Arc::new(LoggerCounters::default()),
        // The layer above knows tls, and cannot start it here.
        &mut |name| (name == "tls").then(|| Err("logger tls: no tls_hostname".to_owned())),
    );
    let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["filesystem", "stdout"]);
    assert_eq!(
        warnings,
        [
            "logger_plugin \"nope\" is not available in this build; its lines are not sent (known: filesystem, stdout, syslog, kafka_producer, tls)",
            "logger tls: no tls_hostname; its lines stay buffered",
        ]
    );
}

#[test]
fn the_filesystem_sink_rotates_at_the_size_and_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let rotate = sinks::Rotate {
        size: 6,
        max_files: 2,
    };
    let mut fs = sinks::Filesystem::new(dir.path().to_owned(), 0o600, Some(rotate));
    for (seq, text) in (1..).zip(["aaaa", "bb", "cccc", "dd", "eeee"]) {
        assert_eq!(fs.send(&[(seq, line(Kind::Result, text))]).unwrap(), seq);
    }
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap_or_default();
    // 5 bytes ("aaaa\n") < 6: "bb" joins it; at 8 bytes the file rotates before "cccc".
    assert_eq!(read("osqueryd.results.log"), "eeee\n");
    assert_eq!(read("osqueryd.results.log.1"), "cccc\ndd\n");
    assert_eq!(read("osqueryd.results.log.2"), "aaaa\nbb\n");
    assert!(!dir.path().join("osqueryd.results.log.3").exists());
}

#[test]
fn syslog_lines_reach_the_socket_with_priority_and_cee() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut s = sinks::Syslog::new(path, 19, true).unwrap();
    let acked = s
        .send(&[
            (7, line(Kind::Result, r#"{"name":"q"}"#)),
            (8, line(Kind::Status(2), "bad")),
        ])
        .unwrap();
    assert_eq!(acked, 8);
    let mut buf = [0u8; 512];
    let mut recv = || {
        let n = server.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let pid = std::process::id();
    // <facility * 8 + severity>: local3 (19) * 8 + info (6) = 158, + err (3) = 155.
    let first = recv();
    assert!(first.starts_with("<158>"), "{first}");
    assert!(
        first.ends_with(&format!(" osqueryd[{pid}]: @cee: {{\"name\":\"q\"}}")),
        "{first}"
    );
    let second = recv();
    assert!(
        second.starts_with("<155>") && second.ends_with(&format!("osqueryd[{pid}]: bad")),
        "{second}"
    );
    assert!(sinks::Syslog::new("/x".into(), 24, false).is_err());
}

#[test]
fn syslog_without_a_daemon_is_an_error_and_the_lines_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sinks::Syslog::new(dir.path().join("none.sock"), 19, false).unwrap();
    let e = s.send(&[(1, line(Kind::Result, "x"))]).unwrap_err();
    assert!(e.starts_with("connecting to "), "{e}");
}

#[test]
fn status_lines_go_to_the_status_files_as_glog_writes_them() {
    let json = r#"{"hostIdentifier":"h","calendarTime":"Tue Dec  1 16:17:22 2026 UTC","unixTime":1796141842,"severity":2,"filename":"agent/src/schedule/mod.rs","line":140,"message":"Error executing scheduled query q: no such table: t","version":"0.1.0"}"#;
    assert_eq!(
        sinks::glog_line(json),
        format!(
            "E1201 16:17:22.000000 {} mod.rs:140] Error executing scheduled query q: no such table: t",
            std::process::id()
        )
    );
    assert_eq!(sinks::glog_line("not json"), "not json");
    let dir = tempfile::tempdir().unwrap();
    let mut fs = sinks::Filesystem::new(dir.path().to_owned(), 0o640, None);
    fs.send(&[(1, line(Kind::Status(2), json))]).unwrap();
    for f in ["osqueryd.INFO", "osqueryd.WARNING", "osqueryd.ERROR"] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(text.starts_with("E1201 16:17:22.000000 "), "{f}: {text}");
    }
}
