//! Stored formats must stay readable: these files were written by format version 1 of
//! [`ProcessEvent`] and [`DropWindow`] and are checked in. A later format change (version 2)
//! must keep decoding them to exactly the values below; never regenerate the files.
//!
//! File layout: records one after another, each a little-endian u32 length and the encoded
//! value.

use crate::{
    events::{FileMeta, ProcessEvent, ProcessSyscall},
    stats::DropWindow,
};

const PROCESS_EVENT_V1: &[u8] = include_bytes!("fixtures/process_event_v1.bin");
const DROP_WINDOW_V1: &[u8] = include_bytes!("fixtures/drop_window_v1.bin");

fn records(mut buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (len, rest) = buf.split_at(4);
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        out.push(&rest[..len]);
        buf = &rest[len..];
    }
    out
}

fn process_events_v1() -> Vec<ProcessEvent> {
    vec![
        ProcessEvent {
            time_ns: 1_764_100_000_123_456_789,
            uptime: 3_600,
            syscall: Some(ProcessSyscall::Execve),
            pid: 4321,
            tid: 4321,
            parent: 1,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            auid: 1000,
            path: "/usr/bin/sudo".into(),
            argv: vec!["sudo".into(), "-n".into(), "true".into()],
            args_truncated: false,
            cwd: String::new(),
            env: Vec::new(),
            env_truncated: false,
            cgroup_id: 8_589_934_593,
            mnt_ns: 4_026_531_841,
            start_ns: 1_764_100_000_123_000_000,
            exit_code: None,
            file: Some(FileMeta {
                mode: 0o104755,
                uid: 0,
                gid: 0,
                atime: 1_764_000_000,
                mtime: 1_700_000_000,
                ctime: 1_700_000_001,
                btime: -1,
            }),
            result: 0,
            fileless: false,
            partial: false,
        },
        ProcessEvent {
            time_ns: 1_764_100_001_000_000_000,
            uptime: 3_601,
            syscall: Some(ProcessSyscall::Exit),
            pid: 4321,
            tid: 4321,
            parent: 1,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            auid: u32::MAX,
            path: "/usr/bin/sudo".into(),
            argv: vec!["sudo".into(), "-n".into(), "true".into()],
            args_truncated: false,
            cwd: String::new(),
            env: Vec::new(),
            env_truncated: false,
            cgroup_id: 8_589_934_593,
            mnt_ns: 4_026_531_841,
            start_ns: 1_764_100_000_123_000_000,
            exit_code: Some(0x0100),
            file: None,
            result: 0,
            fileless: false,
            partial: false,
        },
        ProcessEvent {
            time_ns: 1_764_100_002_000_000_000,
            uptime: 3_602,
            syscall: Some(ProcessSyscall::Fork),
            pid: u32::MAX,
            tid: 7,
            parent: 0,
            uid: 0,
            gid: 0,
            euid: 0,
            egid: 0,
            auid: 0,
            path: "/tmp/ünïcode dir/prog".into(),
            argv: vec![String::new(), "x".repeat(300)],
            args_truncated: true,
            cwd: String::new(),
            env: Vec::new(),
            env_truncated: false,
            cgroup_id: 0,
            mnt_ns: 0,
            start_ns: 0,
            exit_code: Some(u32::MAX - 1),
            file: None,
            result: 0,
            fileless: false,
            partial: false,
        },
        ProcessEvent::default(),
    ]
}

fn drop_windows_v1() -> Vec<DropWindow> {
    vec![
        DropWindow {
            start_ns: 1_764_100_000_000_000_000,
            end_ns: 1_764_100_001_000_000_000,
            publisher: "ebpf_process".into(),
            event_type: "exec".into(),
            reason: "ring_buffer_full".into(),
            count: 17,
        },
        DropWindow {
            start_ns: 0,
            end_ns: u64::MAX,
            publisher: "process_events".into(),
            event_type: "any".into(),
            reason: "write_error".into(),
            count: u64::MAX,
        },
    ]
}

#[test]
fn process_event_v1_fixture_still_decodes() {
    let recs = records(PROCESS_EVENT_V1);
    let want = process_events_v1();
    assert_eq!(recs.len(), want.len());
    for (i, (r, w)) in recs.iter().zip(&want).enumerate() {
        assert_eq!(r.first(), Some(&1), "record {i} is format version 1");
        assert_eq!(&ProcessEvent::decode(r).unwrap(), w, "record {i}");
    }
}

#[test]
fn drop_window_v1_fixture_still_decodes() {
    let recs = records(DROP_WINDOW_V1);
    let want = drop_windows_v1();
    assert_eq!(recs.len(), want.len());
    for (i, (r, w)) in recs.iter().zip(&want).enumerate() {
        assert_eq!(r.first(), Some(&1), "record {i} is format version 1");
        assert_eq!(&DropWindow::decode(r).unwrap(), w, "record {i}");
    }
}

/// While version 1 is the current format, the encoder must still produce the fixture's bytes
/// (so the fixture really is what version 1 writes).
#[test]
fn version_1_encoders_match_the_fixtures() {
    if ProcessEvent::FORMAT == 1 {
        let got: Vec<Vec<u8>> = process_events_v1()
            .iter()
            .map(ProcessEvent::encode)
            .collect();
        let want: Vec<Vec<u8>> = records(PROCESS_EVENT_V1)
            .iter()
            .map(|r| r.to_vec())
            .collect();
        assert_eq!(got, want);
    }
    if DropWindow::FORMAT == 1 {
        let got: Vec<Vec<u8>> = drop_windows_v1().iter().map(DropWindow::encode).collect();
        let want: Vec<Vec<u8>> = records(DROP_WINDOW_V1).iter().map(|r| r.to_vec()).collect();
        assert_eq!(got, want);
    }
}

// The fixture files were written once from `process_events_v1()` / `drop_windows_v1()` with
// the v1 encoders, each record as a little-endian u32 length followed by its bytes. They are
// never rewritten: a new format version gets new files next to them.
