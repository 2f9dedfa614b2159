//! The fuzz targets' bodies for the agent's own decoders (`fuzz/fuzz_targets/`): bytes from the
//! kernel, the store, config and flag files, the remote API server and OSV records, through
//! the functions the agent reads them with. None may panic, whatever the bytes. A unit test
//! runs each over its seeds and a few thousand deterministic mutations of them on every test
//! run; `cargo xtask fuzz` runs libFuzzer on them (the seeds come from the `*_seeds`
//! functions, written into the corpus by the targets themselves at start-up).
//!
//! Nothing here touches the file system: config packs given as file paths are dropped before
//! parsing (they would read whatever file the bytes name), everything else is in memory.

use std::mem::offset_of;

use agent_common::{
    EventKind,
    file::{FdRecord, FileOp, FileRecord, file_flags},
    process::{ExecFailRecord, ExecRecord, ExitRecord, ForkRecord, TaskRecord, exec_flags},
    socket::{SockOp, SockRecord},
};
use debversion::Version;
use serde_json::Value;

use crate::{
    config,
    events::{FileEvent, ProcessEvent, Resolve, SocketEvent},
    flags::Flags,
    remote,
    sources::{file::FileDecoder, process, socket},
    sql::tables::vulnerabilities::{self, Installed},
    stats::DropWindow,
    sys::{
        Clock,
        ebpf::decode::{self, RawRecord},
    },
};

/// Splits `data` into records, each behind a u32 little-endian length; a length beyond the
/// end takes the rest.
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<4>()?;
        let n = (u32::from_le_bytes(*len) as usize).min(rest.len());
        let (record, tail) = rest.split_at(n);
        data = tail;
        Some(record)
    })
}

/// Ring-buffer records (framed as [`frames`] reads them) decoded and turned into events as
/// the publishers do, one file decoder for all of them so a write can follow its open; every
/// event must come back equal from its stored form. The whole input is also read as the task
/// iterator's output. Returns how many events were made.
pub fn ring_record(data: &[u8]) -> usize {
    let clock = Clock::now();
    let mut files = FileDecoder::default();
    let mut made = 0;
    for record in frames(data) {
        let Ok(raw) = decode::decode(record) else {
            continue;
        };
        match raw {
            RawRecord::File(r) => made += stored_again_files(files.file(&r)),
            RawRecord::Fd(r) => made += stored_again_files(files.fd(&r)),
            RawRecord::Socket(r) => {
                if let Some(e) = socket::to_event(&r, &clock) {
                    assert_eq!(SocketEvent::decode(&e.encode()).as_ref(), Ok(&e));
                    made += 1;
                }
            }
            other => {
                if let Some(e) = process::to_event(other, &clock) {
                    assert_eq!(ProcessEvent::decode(&e.encode()).as_ref(), Ok(&e));
                    made += 1;
                }
            }
        }
    }
    made + decode::task_records(data).len()
}

/// The rows of file records as they are stored: `resolve` is the subscriber's work order,
/// done before the row is written, and not part of it.
fn stored_again_files(events: Vec<FileEvent>) -> usize {
    for e in &events {
        let stored = FileEvent {
            resolve: Resolve::default(),
            ..e.clone()
        };
        assert_eq!(FileEvent::decode(&e.encode()).as_ref(), Ok(&stored));
    }
    events.len()
}

/// A stored value (a RocksDB row of `process_events`, `file_events`, `socket_events` or
/// `event_drops`) decoded as each of them; whatever decodes must encode to a value that
/// decodes equal. Returns how many of the four decoded it.
pub fn stored_value(data: &[u8]) -> usize {
    let mut decoded = 0;
    if let Ok(e) = ProcessEvent::decode(data) {
        assert_eq!(ProcessEvent::decode(&e.encode()).as_ref(), Ok(&e));
        decoded += 1;
    }
    if let Ok(e) = FileEvent::decode(data) {
        assert_eq!(FileEvent::decode(&e.encode()).as_ref(), Ok(&e));
        decoded += 1;
    }
    if let Ok(e) = SocketEvent::decode(data) {
        assert_eq!(SocketEvent::decode(&e.encode()).as_ref(), Ok(&e));
        decoded += 1;
    }
    if let Ok(w) = DropWindow::decode(data) {
        assert_eq!(DropWindow::decode(&w.encode()).as_ref(), Ok(&w));
        decoded += 1;
    }
    decoded
}

/// `text` without the packs that name files (a path or a glob), when it is JSON with any:
/// parsing them would read the files the bytes name.
fn without_pack_files(text: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    let packs = v.get_mut("packs")?.as_object_mut()?;
    let before = packs.len();
    packs.retain(|_, p| !p.is_string());
    (packs.len() != before).then(|| v.to_string())
}

/// An osquery config text (options, schedule, inline packs, decorators, file paths …) parsed
/// and validated as a config file is; a parsed config is also turned back into JSON.
pub fn config_json(data: &[u8]) -> bool {
    config_text(&String::from_utf8_lossy(data))
}

fn config_text(text: &str) -> bool {
    let text = without_pack_files(text).unwrap_or_else(|| text.to_owned());
    match config::parse(&text, "fuzz", None) {
        Ok(parsed) => {
            drop(parsed.config.to_json());
            true
        }
        Err(_) => false,
    }
}

/// A flagfile read as `--flagfile` reads it (names looked up, aliases followed, values
/// validated against their type, "did you mean" for unknown names).
pub fn flagfile(data: &[u8]) -> bool {
    Flags::default()
        .parse_flagfile_text(&String::from_utf8_lossy(data), "fuzz")
        .is_ok()
}

/// A reply body of the TLS remote API read as the agent reads every reply (a JSON object),
/// then as an enrollment reply (the node key), for its `error` member, and as a config reply
/// (the config text the `tls` plugin makes of it, parsed as a config).
pub fn tls_reply(data: &[u8]) -> bool {
    let Ok(reply) = remote::http::reply_object(200, data) else {
        return false;
    };
    drop(remote::enroll_reply(200, &reply));
    drop(remote::error_text(&reply));
    config_text(&remote::config::config_text(reply))
}

/// The version strings of an OSV record's Debian packages, with neighbours (a binNMU, a
/// pre-release, an epoch), as installed packages to match the record against; at most 32.
fn osv_packages(v: &Value) -> Vec<Installed> {
    let mut out = Vec::new();
    let strings = |a: &Value, key: &str| -> Vec<String> {
        a.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    for a in v
        .get("affected")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = a
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut versions = strings(a, "versions");
        for range in a
            .get("ranges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for ev in range
                .get("events")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for key in ["introduced", "fixed", "last_affected"] {
                    if let Some(s) = ev.get(key).and_then(Value::as_str) {
                        versions.push(s.to_owned());
                    }
                }
            }
        }
        for v in versions {
            for version in [
                v.clone(),
                format!("{v}+b1"),
                format!("{v}~rc1"),
                format!("1:{v}"),
            ] {
                if out.len() == 32 {
                    return out;
                }
                out.push(Installed {
                    name: format!("{name}-bin"),
                    source: name.to_owned(),
                    version: version.clone(),
                    source_version: version,
                });
            }
        }
    }
    out
}

/// An OSV record read as the `vulnerabilities` table reads its database, then matched
/// against packages at the versions it names and their neighbours (any Debian release, and
/// Debian 12), which compares them as dpkg does; the versions must also sort consistently.
/// Returns the rows matched.
pub fn osv_record(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let Ok(record) = vulnerabilities::parse_record(&text) else {
        return 0;
    };
    let packages = serde_json::from_str(&text)
        .map(|v| osv_packages(&v))
        .unwrap_or_default();
    let records = std::slice::from_ref(&record);
    let mut rows = 0;
    for major in [None, Some("12")] {
        rows += vulnerabilities::matches(&packages, records, major, "/var/lib/dpkg", "fuzz")
            .0
            .len();
    }
    let mut versions: Vec<Version> = packages
        .iter()
        .filter_map(|p| p.source_version.parse().ok())
        .collect();
    for a in &versions {
        for b in &versions {
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{a} against {b}");
        }
    }
    versions.sort();
    rows
}

/// Writes `value` at `at` (the field offsets of the seed records).
fn put(buf: &mut [u8], at: usize, value: impl AsRef<[u8]>) {
    let value = value.as_ref();
    buf[at..at + value.len()].copy_from_slice(value);
}

/// A record of type `$t` with its header (kind, time, pid 4242) and the given fields, as
/// the kernel programs write it.
macro_rules! record {
    ($t:ty, $kind:expr, { $($($field:ident).+ : $value:expr),* $(,)? }) => {{
        let mut v = vec![0u8; size_of::<$t>()];
        put(&mut v, offset_of!($t, header.kind), ($kind as u32).to_le_bytes());
        put(&mut v, offset_of!($t, header.ktime_ns), 5_000_000_000u64.to_le_bytes());
        put(&mut v, offset_of!($t, header.pid), 4242u32.to_le_bytes());
        put(&mut v, offset_of!($t, header.tid), 4242u32.to_le_bytes());
        $(put(&mut v, offset_of!($t, $($field).+), $value);)*
        v
    }};
}

fn framed(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

fn file_record(op: FileOp, path: &[u8], path2: &[u8], rflags: u32, flags: u32) -> Vec<u8> {
    record!(FileRecord, EventKind::File, {
        op: [op as u8],
        ret: 3i64.to_le_bytes(),
        inode: 42u64.to_le_bytes(),
        file: 0xffff_8880_0000_1000u64.to_le_bytes(),
        nr: 257u32.to_le_bytes(),
        flags: flags.to_le_bytes(),
        mode: 0o644u32.to_le_bytes(),
        uid: 1000u32.to_le_bytes(),
        gid: 1000u32.to_le_bytes(),
        rflags: rflags.to_le_bytes(),
        path_len: (path.len() as u32).to_le_bytes(),
        path2_len: (path2.len() as u32).to_le_bytes(),
        base_len: 4u32.to_le_bytes(),
        base2_len: 4u32.to_le_bytes(),
        path: path,
        path2: path2,
    })
}

fn fd_record(op: FileOp) -> Vec<u8> {
    record!(FdRecord, EventKind::FileFd, {
        op: u32::from(op as u8).to_le_bytes(),
        fd: 3i32.to_le_bytes(),
        file: 0xffff_8880_0000_1000u64.to_le_bytes(),
        inode: 42u64.to_le_bytes(),
        nr: 1u32.to_le_bytes(),
    })
}

fn exec_record(path: &[u8], args: &[u8], flags: u32) -> Vec<u8> {
    let (cwd, env) = (b"/root", b"PATH=/usr/bin:/bin\0HOME=/root\0");
    record!(ExecRecord, EventKind::ProcessExec, {
        ppid: 1u32.to_le_bytes(),
        uid: 1000u32.to_le_bytes(),
        euid: 1000u32.to_le_bytes(),
        auid: 1000u32.to_le_bytes(),
        mnt_ns: 4_026_531_841u32.to_le_bytes(),
        flags: flags.to_le_bytes(),
        cgroup_id: 7u64.to_le_bytes(),
        start_ktime_ns: 4_900_000_000u64.to_le_bytes(),
        path_len: (path.len() as u32).to_le_bytes(),
        args_len: (args.len() as u32).to_le_bytes(),
        cwd_len: (cwd.len() as u32).to_le_bytes(),
        env_len: (env.len() as u32).to_le_bytes(),
        path: path,
        args: args,
        cwd: cwd,
        env: env,
    })
}

fn sock_record(op: SockOp, family: u16, sockaddr: &[u8], remote: ([u8; 16], u16)) -> Vec<u8> {
    record!(SockRecord, EventKind::Socket, {
        op: [op as u8],
        family: family.to_le_bytes(),
        protocol: 6u16.to_le_bytes(),
        sock_type: 1u16.to_le_bytes(),
        fd: 3i32.to_le_bytes(),
        local_port: 40_000u16.to_le_bytes(),
        remote_port: remote.1.to_le_bytes(),
        remote_addr: remote.0,
        sockaddr_len: (sockaddr.len() as u32).to_le_bytes(),
        uid: 1000u32.to_le_bytes(),
        sockaddr: sockaddr,
    })
}

/// Well-formed ring inputs: an open, write and close of one file; a rename, a chmod and a
/// symlink; execs (one of a memfd), an exit, a fork and a failed exec; connects over IPv4
/// and IPv6 and a bind of a Unix socket; task iterator records.
pub fn ring_seeds() -> Vec<Vec<u8>> {
    use file_flags::{PATH_FROM_USER, PATH_IN_WATCH, PATH2_FROM_USER};
    let creat = (libc::O_CREAT | libc::O_WRONLY) as u32;
    let mut v4 = [0u8; 16];
    v4[..4].copy_from_slice(&[127, 0, 0, 1]);
    let v6 = std::net::Ipv6Addr::LOCALHOST.octets();
    let mut sin = vec![2, 0, 0x1f, 0x90, 127, 0, 0, 1];
    sin.resize(16, 0);
    let mut sin6 = vec![10, 0, 0x01, 0xbb, 0, 0, 0, 0];
    sin6.extend_from_slice(&v6);
    sin6.extend_from_slice(&[0; 4]);
    let mut sun = vec![1, 0];
    sun.extend_from_slice(b"/run/osprey.sock\0");
    let task = TaskRecord {
        tgid: 1,
        uid: 0,
        start_ktime_ns: 1_000_000,
        ..TaskRecord::default()
    };
    let task = [
        task.tgid,
        task.ppid,
        task.uid,
        task.gid,
        task.euid,
        task.egid,
        task.auid,
        task.mnt_ns,
    ]
    .iter()
    .flat_map(|f| f.to_le_bytes())
    .chain(task.start_ktime_ns.to_le_bytes())
    .collect::<Vec<u8>>();
    debug_assert_eq!(task.len(), size_of::<TaskRecord>());
    vec![
        framed(&[
            file_record(FileOp::Open, b"/tmp/fuzz/a", b"", 0, creat),
            fd_record(FileOp::Write),
            fd_record(FileOp::CloseWrite),
        ]),
        framed(&[file_record(
            FileOp::Rename,
            b"/tmp/a",
            b"/tmp/../tmp/b",
            PATH_FROM_USER | PATH2_FROM_USER,
            0,
        )]),
        framed(&[
            file_record(FileOp::Chmod, b"/etc/passwd", b"", PATH_IN_WATCH, 0),
            file_record(FileOp::Symlink, b"/tmp/link", b"target", 0, 0),
        ]),
        framed(&[exec_record(b"/usr/bin/ls", b"ls\0-la\0/tmp\0", 0)]),
        framed(&[exec_record(b"memfd:x", b"x\0", exec_flags::FILELESS)]),
        framed(&[record!(ExitRecord, EventKind::ProcessExit, {
            exit_code: 256u32.to_le_bytes(),
            ppid: 1u32.to_le_bytes(),
            start_ktime_ns: 4_900_000_000u64.to_le_bytes(),
        })]),
        framed(&[record!(ForkRecord, EventKind::ProcessFork, {
            child_pid: 4243u32.to_le_bytes(),
            uid: 1000u32.to_le_bytes(),
        })]),
        framed(&[record!(ExecFailRecord, EventKind::ProcessExecFailed, {
            ret: (-2i64).to_le_bytes(),
            ppid: 1u32.to_le_bytes(),
            path_len: 12u32.to_le_bytes(),
            path: b"/nonexistent",
        })]),
        framed(&[
            sock_record(SockOp::Connect, 2, &sin, (v4, 8080)),
            sock_record(SockOp::Connect, 10, &sin6, (v6, 0)),
            sock_record(SockOp::Bind, 1, &sun, ([0; 16], 0)),
        ]),
        [task.clone(), task].concat(),
    ]
}

/// Stored values: the events of the ring seeds as they are stored, empty events, and a loss
/// window.
pub fn stored_seeds() -> Vec<Vec<u8>> {
    let clock = Clock::now();
    let mut files = FileDecoder::default();
    let mut out = vec![
        ProcessEvent::default().encode(),
        FileEvent::default().encode(),
        SocketEvent::default().encode(),
        DropWindow {
            start_ns: 1,
            end_ns: 2,
            publisher: "ebpf_process".into(),
            event_type: "exec".into(),
            reason: "ring_full".into(),
            count: 3,
        }
        .encode(),
    ];
    for seed in ring_seeds() {
        for record in frames(&seed) {
            match decode::decode(record) {
                Ok(RawRecord::File(r)) => out.extend(files.file(&r).iter().map(FileEvent::encode)),
                Ok(RawRecord::Fd(r)) => out.extend(files.fd(&r).iter().map(FileEvent::encode)),
                Ok(RawRecord::Socket(r)) => {
                    out.extend(socket::to_event(&r, &clock).map(|e| e.encode()))
                }
                Ok(other) => out.extend(process::to_event(other, &clock).map(|e| e.encode())),
                Err(_) => {}
            }
        }
    }
    out
}

/// Config texts: the embedded default and one with every section, packs inline.
pub fn config_seeds() -> Vec<Vec<u8>> {
    let full = r#"{
  "options": {"events_max": 50000, "host_identifier": "hostname", "disable_events": false},
  "schedule": {
    "procs": {"query": "SELECT pid, name FROM processes", "interval": 60, "snapshot": true},
    "users": {"query": "SELECT * FROM users", "interval": 3600, "removed": false, "shard": 50}
  },
  "packs": {
    "inline": {
      "platform": "linux", "version": "5.0.0", "discovery": ["SELECT 1"],
      "queries": {"ports": {"query": "SELECT * FROM listening_ports", "interval": 300}}
    },
    "from_file": "/etc/osquery/packs/*.conf"
  },
  "decorators": {"load": ["SELECT uuid AS host_uuid FROM system_info"],
                 "always": ["SELECT user AS username FROM logged_in_users LIMIT 1"],
                 "interval": {"3600": ["SELECT total_seconds FROM uptime"]}},
  "file_paths": {"etc": ["/etc/%%"], "tmp": ["/tmp/%"]},
  "file_accesses": ["etc"],
  "exclude_paths": {"etc": ["/etc/mtab"]},
  "events": {"disable_subscribers": ["user_events"]}
}"#;
    vec![config::DEFAULT_CONFIG.into(), full.into()]
}

/// Flagfiles: the packaged one and one with every spelling (`--a=b`, `--bool`, `--nobool`,
/// comments, an alias).
pub fn flagfile_seeds() -> Vec<Vec<u8>> {
    let every = "# comment\n\n--events_max=1000\n--disable_events\n--noverbose\n\
                 --logger_plugin=filesystem\n--database_path=/var/osquery/osquery.db\n\
                 --config_plugin=tls\n--tls_hostname=fleet.example:8080\n";
    vec![
        include_bytes!("../../deploy/osprey.flags").to_vec(),
        every.into(),
    ]
}

/// Replies of the remote API: enrollment, config, distributed read, log, and refusals.
pub fn tls_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"node_key":"c8e9f0a1b2","node_invalid":false}"#,
        r#"{"schedule":{"q":{"query":"SELECT 1","interval":60}},"options":{"events_max":100},"node_invalid":false}"#,
        r#"{"queries":{"id1":"SELECT * FROM osquery_info"},"discovery":{"id1":"SELECT 1"},"accelerate":60}"#,
        r#"{}"#,
        r#"{"node_invalid":true,"error":"invalid node key"}"#,
        r#"{"error":{"code":500}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// OSV records as the Debian security tracker exports them: fixed ranges, a last affected
/// version, listed versions, epochs and tildes.
pub fn osv_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"id":"DSA-5000-1","summary":"openssl security update","aliases":["CVE-2021-3711"],
"affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}],
"ecosystem_specific":{"urgency":"high"}}]}"#,
        r#"{"id":"CVE-2023-1234","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
"affected":[{"package":{"ecosystem":"Debian","name":"bash"},"versions":["5.2.15-2","1:5.2.15-2+b1"],
"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"5.0-1"},{"last_affected":"5.2.15-2+b2"}]},
{"type":"GIT","events":[{"introduced":"abc"}]}]},
{"package":{"ecosystem":"Debian:11","name":"bash"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"4.0"}]}]}]}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// The fuzz targets of this module (`fuzz/fuzz_targets/<name>.rs`) with their seeds.
/// A function that returns a target's seeds.
pub type Seeds = fn() -> Vec<Vec<u8>>;

pub const TARGETS: &[(&str, Seeds)] = &[
    ("ring_record", ring_seeds),
    ("stored_value", stored_seeds),
    ("config_json", config_seeds),
    ("flagfile", flagfile_seeds),
    ("tls_reply", tls_seeds),
    ("osv_record", osv_seeds),
];

/// Called by each target at start-up (libFuzzer's initialize hook runs before the corpus is
/// read): when `OSPREY_FUZZ_SEEDS` names a folder (`cargo xtask fuzz` sets it to the
/// target's corpus), writes `target`'s seeds there as `seed-N`. The xtask cannot write them
/// itself: it would have to build the agent, kernel programs included, before `setup`.
pub fn write_seeds(target: &str) {
    let Some(dir) = std::env::var_os("OSPREY_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let seeds = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, seeds)| seeds())
        .unwrap_or_default();
    for (i, seed) in seeds.iter().enumerate() {
        let p = dir.join(format!("seed-{i}"));
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&p, seed)) {
            eprintln!("writing the seed {}: {e}", p.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64): the same mutations every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Bytes libFuzzer also tries: boundaries of the integer types and JSON's punctuation.
    const INTERESTING: &[u32] = &[0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, u32::MAX, 4096];
    const TOKENS: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b"\"", b":", b",", b"null", b"\\u0000",
    ];

    /// One to four edits of `seed`: a byte set, inserted or removed; a 32-bit field near the
    /// start (record headers, lengths) set to an edge value; a JSON token inserted; a cut.
    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..=(rng.next() % 4) {
            let at = (rng.next() as usize) % v.len().max(1);
            match rng.next() % 7 {
                0 if !v.is_empty() => v[at] = rng.next() as u8,
                1 => v.insert(at.min(v.len()), rng.next() as u8),
                2 if !v.is_empty() => drop(v.remove(at)),
                3 => {
                    let field = ((rng.next() as usize) % 64) * 4;
                    let value = INTERESTING[(rng.next() as usize) % INTERESTING.len()];
                    if field + 4 <= v.len() {
                        v[field..field + 4].copy_from_slice(&value.to_le_bytes());
                    }
                }
                4 => {
                    let t = TOKENS[(rng.next() as usize) % TOKENS.len()];
                    let at = at.min(v.len());
                    v.splice(at..at, t.iter().copied());
                }
                5 => v.truncate(at),
                _ => {}
            }
        }
        v
    }

    fn never_panics<T>(seeds: &[Vec<u8>], rounds: usize, entry: fn(&[u8]) -> T) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..rounds {
            let v = mutate(&mut rng, &seeds[round % seeds.len()]);
            entry(&v);
        }
    }

    #[test]
    fn every_seed_is_well_formed() {
        for s in &ring_seeds()[..9] {
            assert!(ring_record(s) > 0, "{:?}", &s[..64]);
        }
        assert_eq!(ring_record(&ring_seeds()[9]), 2);
        let stored = stored_seeds();
        assert!(stored.len() > 10, "{}", stored.len());
        for s in &stored {
            assert!(stored_value(s) >= 1, "{s:?}");
        }
        for s in config_seeds() {
            assert!(config_json(&s), "{}", String::from_utf8_lossy(&s));
        }
        for s in flagfile_seeds() {
            assert!(flagfile(&s), "{}", String::from_utf8_lossy(&s));
        }
        for s in tls_seeds() {
            assert!(
                remote::http::reply_object(200, &s).is_ok(),
                "{}",
                String::from_utf8_lossy(&s)
            );
        }
        for s in osv_seeds() {
            assert!(osv_record(&s) > 0, "{}", String::from_utf8_lossy(&s));
        }
    }

    #[test]
    fn mutated_ring_records_never_panic() {
        never_panics(&ring_seeds(), 3000, ring_record);
    }

    #[test]
    fn mutated_stored_values_never_panic() {
        never_panics(&stored_seeds(), 5000, stored_value);
    }

    #[test]
    fn mutated_configs_and_flagfiles_never_panic() {
        never_panics(&config_seeds(), 3000, config_json);
        never_panics(&flagfile_seeds(), 3000, flagfile);
    }

    #[test]
    fn mutated_tls_replies_never_panic() {
        never_panics(&tls_seeds(), 3000, tls_reply);
    }

    #[test]
    fn mutated_osv_records_never_panic() {
        never_panics(&osv_seeds(), 3000, osv_record);
    }

    #[test]
    fn file_packs_are_not_read() {
        let text = r#"{"packs":{"a":"/dev/zero","b":"/etc/*.conf","c":{"queries":{}}}}"#;
        let kept = without_pack_files(text).unwrap();
        assert_eq!(kept, r#"{"packs":{"c":{"queries":{}}}}"#);
        assert!(config_json(text.as_bytes()));
    }
}
