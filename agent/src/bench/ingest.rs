//! Ingest measurement for `cargo xtask bench` and `osprey bench-ingest`: decoded
//! [`ProcessEvent`]s go through the real queue, the real `process_events` subscriber and the
//! real [`pipeline::run_writer`] into a fresh store, with the WAL on.
//!
//! Measured: sustained events per second until every event is in RocksDB (and the WAL synced),
//! bytes per stored event in the SST files after a flush and a full compaction, and the
//! process's peak RSS (`VmHWM`).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use thiserror::Error;

use crate::{
    events::{FileMeta, ProcessEvent, ProcessSyscall},
    pipeline::{self, Event, WhenFull, WriterConfig},
    sources::process,
    stats::{PublisherCounters, SubscriberCounters},
    storage::{StorageError, Store},
};

#[derive(Debug, Error)]
pub enum BenchError {
    #[error("{0} is not empty: the ingest benchmark needs a fresh folder")]
    NotEmpty(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot start the benchmark's publisher thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

/// The numbers of one run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IngestBench {
    pub events: u64,
    /// Rows the subscriber counted as written.
    pub stored: u64,
    pub write_errors: u64,
    pub sync: bool,
    pub batch_events: usize,
    pub seconds: f64,
    pub events_per_sec: f64,
    /// CPU time (user + system, all threads) of the run, and stored events per CPU second:
    /// a figure that depends less on what else the machine is doing than `events_per_sec`.
    pub cpu_seconds: f64,
    pub events_per_cpu_sec: f64,
    /// SST bytes of `process_events` after flush + compaction.
    pub sst_bytes: u64,
    pub bytes_per_event: f64,
    /// Peak resident set size of this process (VmHWM), bytes.
    pub peak_rss_bytes: u64,
}

const PATHS: &[&str] = &[
    "/usr/bin/bash",
    "/usr/bin/git",
    "/usr/lib/systemd/systemd-journald",
    "/usr/bin/python3.11",
    "/usr/local/bin/node",
    "/usr/bin/ls",
    "/usr/sbin/sshd",
    "/usr/bin/curl",
];
const ARGS: &[&str] = &[
    "--color=auto",
    "-la",
    "/home/builder/src/osprey/agent/src/storage/mod.rs",
    "status",
    "--porcelain=v2",
    "-c",
    "import sys; print(sys.version)",
    "https://example.invalid/api/v1/health?probe=1",
    "/var/log/syslog",
    "--no-pager",
];

/// A plausible event: exec for even `i`, the exit of that exec for odd `i`.
fn event(i: u64, base_ns: u64) -> ProcessEvent {
    let pid = 10_000 + (i / 2 % 4_000_000) as u32;
    let n = (i / 2) as usize;
    let exec = i.is_multiple_of(2);
    let path = PATHS[n % PATHS.len()];
    let argc = 1 + n % 4;
    let mut argv = Vec::with_capacity(argc);
    argv.push(path.rsplit('/').next().unwrap_or(path).to_owned());
    for k in 1..argc {
        argv.push(ARGS[(n * 7 + k * 3) % ARGS.len()].to_owned());
    }
    ProcessEvent {
        time_ns: base_ns + i * 1_000,
        uptime: 86_400 + i / 1_000_000,
        syscall: Some(if exec {
            ProcessSyscall::Execve
        } else {
            ProcessSyscall::Exit
        }),
        pid,
        tid: pid,
        parent: 1_000 + (n % 97) as u32,
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
        auid: 1000,
        path: if exec { path.to_owned() } else { String::new() },
        argv: if exec { argv } else { Vec::new() },
        args_truncated: false,
        cwd: String::new(),
        env: Vec::new(),
        env_truncated: false,
        cgroup_id: 4242 + (n % 13) as u64,
        mnt_ns: 4_026_531_841,
        start_ns: base_ns + (i - i % 2) * 1_000,
        exit_code: if exec { None } else { Some(0) },
        file: exec.then_some(FileMeta {
            mode: 0o100755,
            uid: 0,
            gid: 0,
            atime: 1_700_000_000,
            mtime: 1_690_000_000,
            ctime: 1_690_000_000,
            btime: 0,
        }),
        result: 0,
        fileless: false,
        partial: false,
    }
}

/// Peak RSS from `/proc/self/status` (`VmHWM`, kB), in bytes; 0 if unreadable.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`; 0 if unreadable.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) end with ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Feeds `events` events through the writer into a fresh store at `dir`.
pub fn ingest_bench(dir: &Path, events: u64, sync: bool) -> Result<IngestBench, BenchError> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BenchError::NotEmpty(dir.display().to_string()));
    }
    let store = Arc::new(Store::open_primary(dir)?);
    let pub_counters = Arc::new(PublisherCounters::default());
    let sub_counters = Arc::new(SubscriberCounters::default());
    let (queue, rx) = pipeline::queue(65_536, 1 << 24, WhenFull::Block, pub_counters.clone());
    let cfg = WriterConfig {
        batch_events: 4096,
        batch_time: Duration::from_millis(50),
        sync,
    };
    let base_ns = crate::sys::now_ns();
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let producer = std::thread::Builder::new()
        .name("bench-pub".into())
        .spawn(move || {
            for i in 0..events {
                pub_counters.events.add(1);
                if !queue.push(Event::Process(event(i, base_ns))) {
                    break;
                }
            }
        })
        .map_err(BenchError::Thread)?;
    let subs: Vec<Box<dyn pipeline::Subscriber>> = vec![Box::new(
        process::ProcessEventsSubscriber::new(sub_counters.clone()),
    )];
    pipeline::run_writer(store.clone(), rx, subs, cfg);
    let _ = producer.join();
    store.flush_wal()?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;

    let sst_bytes = store.compact_fully(process::TABLE)?;
    let stored = sub_counters.events.get();
    Ok(IngestBench {
        events,
        stored,
        write_errors: sub_counters.write_errors.get(),
        sync,
        batch_events: cfg.batch_events,
        seconds,
        events_per_sec: if seconds > 0.0 {
            stored as f64 / seconds
        } else {
            0.0
        },
        cpu_seconds: cpu,
        events_per_cpu_sec: if cpu > 0.0 { stored as f64 / cpu } else { 0.0 },
        sst_bytes,
        bytes_per_event: if stored > 0 {
            sst_bytes as f64 / stored as f64
        } else {
            0.0
        },
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Arguments of `osprey bench-ingest --events N --dir DIR [--sync]`.
pub fn parse_args(args: &[String]) -> Result<(u64, PathBuf, bool), BenchError> {
    let usage =
        || BenchError::Usage("usage: osprey bench-ingest --events N --dir DIR [--sync]".into());
    let (mut events, mut dir, mut sync) = (None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(usage)
        };
        match name {
            "--events" => events = Some(value()?.parse::<u64>().map_err(|_| usage())?),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--sync" if inline.is_none() => sync = true,
            _ => return Err(usage()),
        }
    }
    match (events, dir) {
        (Some(e), Some(d)) => Ok((e, d, sync)),
        _ => Err(usage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_run_stores_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let r = ingest_bench(&db, 10_000, false).unwrap();
        assert_eq!(r.events, 10_000);
        assert_eq!(r.stored, 10_000);
        assert_eq!(r.write_errors, 0);
        assert!(r.sst_bytes > 0);
        assert!(r.peak_rss_bytes > 0);
        let s = Store::open_secondary(&db).unwrap();
        let mut rows = 0u64;
        s.scan(process::TABLE, 0, u64::MAX, |_, _, v| {
            assert!(ProcessEvent::decode(v).is_ok());
            rows += 1;
            true
        })
        .unwrap();
        assert_eq!(rows, 10_000);
        // A second run into the same folder is refused.
        drop(s);
        assert!(matches!(
            ingest_bench(&db, 1, false),
            Err(BenchError::NotEmpty(_))
        ));
    }

    #[test]
    fn args() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let (e, d, s) = a(&["--events", "5", "--dir=/tmp/x", "--sync"]).unwrap();
        assert_eq!((e, d, s), (5, PathBuf::from("/tmp/x"), true));
        let (e, _, s) = a(&["--events=7", "--dir", "/d"]).unwrap();
        assert_eq!((e, s), (7, false));
        assert!(a(&["--events", "x", "--dir", "/d"]).is_err());
        assert!(a(&["--dir", "/d"]).is_err());
        assert!(a(&["--events", "1", "--dir", "/d", "--bogus"]).is_err());
    }
}
