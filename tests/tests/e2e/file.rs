//! File events end to end: a `%%` watch on a test folder, every operation the kernel source
//! covers performed inside and outside it, then the exact rows. The test folder is unique to
//! this test run, and rows are selected by its path, so other activity on the machine is
//! never counted.

use std::{
    ffi::CString,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::{Map, Value};
use tests::{Daemon, privileged, s};

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in test paths")
}

fn config(path: &Path, watched: &Path, excluded: &Path, extra_watch: Option<&Path>) {
    let mut paths = vec![format!("{}/%%", watched.display())];
    if let Some(e) = extra_watch {
        paths.push(format!("{}/%%", e.display()));
    }
    let text = serde_json::json!({
        "options": {"enable_file_events": true},
        "file_paths": {"e2e": paths},
        "exclude_paths": {"e2e": [format!("{}/%%", excluded.display())]},
    });
    std::fs::write(path, text.to_string()).expect("write config");
}

/// A fresh folder `<tmp>/w` and a config watching it (`w/%%`): (the temp dir, w, config).
fn watched_folder(prefix: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let base = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir");
    let root = base.path().join("w");
    std::fs::create_dir_all(&root).expect("mkdir");
    let conf = base.path().join("osprey.conf");
    config(&conf, &root, &root.join("never"), None);
    (base, root, conf)
}

fn rows_under(d: &Daemon, root: &Path, want: usize) -> Vec<Map<String, Value>> {
    let sql = format!(
        "SELECT target_path, category, action, operation, other_path, syscall, result, success, \
         pid, process_uid, inode, mode, arg_mode, arg_uid, arg_gid, hashed, sha256 FROM file_events \
         WHERE target_path LIKE '{}%' ORDER BY ntime, CAST(eid AS INTEGER)",
        root.display()
    );
    d.wait_rows(&sql, want)
}

fn summary(rows: &[Map<String, Value>], root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    rows.iter()
        .map(|r| {
            let rel = |p: &str| p.strip_prefix(&root).unwrap_or(p).to_owned();
            format!(
                "{} {} {} {}{}",
                s(r, "action"),
                s(r, "operation"),
                rel(s(r, "target_path")),
                if s(r, "other_path").is_empty() {
                    String::new()
                } else {
                    format!("<{}> ", rel(s(r, "other_path")))
                },
                s(r, "result"),
            )
        })
        .collect()
}

#[test]
fn every_file_operation_inside_the_watch_and_nothing_outside() {
    if !privileged() {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("osprey-fim-")
        .tempdir_in("/tmp")
        .unwrap();
    let root = base.path().to_path_buf();
    let watched = root.join("watched");
    let outside = root.join("outside");
    let excluded = watched.join("skip");
    std::fs::create_dir_all(&outside).unwrap();
    let conf = root.join("osprey.conf");
    // `watched` does not exist yet when the config names it: it is covered anyway.
    config(&conf, &watched, &excluded, None);
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);

    let me = std::process::id().to_string();
    std::fs::create_dir(&watched).unwrap(); // mkdir
    std::fs::create_dir(&excluded).unwrap(); // mkdir of the excluded folder itself: excluded
    let a = watched.join("a");
    std::fs::write(&a, b"hello").unwrap(); // open(O_CREAT|O_TRUNC) + write + close
    std::fs::rename(&a, watched.join("b")).unwrap(); // rename
    let b = watched.join("b");
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).unwrap(); // chmod
    // SAFETY: valid NUL-terminated path; chown to the current owner (root) is allowed.
    assert_eq!(unsafe { libc::chown(cstr(&b).as_ptr(), 0, 0) }, 0); // chown
    // trusted.*: tmpfs before 6.6 (the 5.10 and 6.1 guests) has no user.* xattrs.
    let key = CString::new("trusted.osprey").unwrap();
    // SAFETY: valid pointers and lengths for the duration of the call.
    let rc = unsafe { libc::setxattr(cstr(&b).as_ptr(), key.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    std::fs::hard_link(&b, watched.join("c")).unwrap(); // link
    std::os::unix::fs::symlink("b", watched.join("d")).unwrap(); // symlink
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::truncate(cstr(&b).as_ptr(), 1) }, 0); // truncate
    std::fs::remove_file(watched.join("c")).unwrap(); // unlink
    let _ = std::fs::remove_file(watched.join("missing")); // failed unlink: ENOENT
    std::fs::write(excluded.join("x"), b"x").unwrap(); // excluded path
    std::fs::create_dir(watched.join("sub")).unwrap();
    std::fs::remove_dir(watched.join("sub")).unwrap(); // rmdir
    // Outside the watch: nothing may appear.
    std::fs::write(outside.join("o"), b"o").unwrap();
    std::fs::rename(outside.join("o"), outside.join("p")).unwrap();
    std::fs::remove_file(outside.join("p")).unwrap();
    // Relative to the cwd of a child process (resolved in the kernel).
    let status = std::process::Command::new("/bin/sh")
        .current_dir(&watched)
        .args(["-c", "mkdir rel && rmdir rel"])
        .status()
        .unwrap();
    assert!(status.success());

    let expected = [
        "CREATED mkdir /watched 0",
        "CREATED open /watched/a 3",
        "UPDATED write /watched/a 0",
        "UPDATED close_write /watched/a 0",
        "MOVED_FROM rename /watched/a </watched/b> 0",
        "MOVED_TO rename /watched/b </watched/a> 0",
        "ATTRIBUTES_MODIFIED chmod /watched/b 0",
        "ATTRIBUTES_MODIFIED chown /watched/b 0",
        "ATTRIBUTES_MODIFIED setxattr /watched/b <trusted.osprey> 0",
        "CREATED link /watched/c </watched/b> 0",
        "CREATED symlink /watched/d <b> 0",
        "UPDATED truncate /watched/b 0",
        "DELETED unlink /watched/c 0",
        "DELETED unlink /watched/missing -2",
        "CREATED mkdir /watched/sub 0",
        "DELETED rmdir /watched/sub 0",
        "CREATED mkdir /watched/rel 0",
        "DELETED rmdir /watched/rel 0",
    ];
    let rows = rows_under(&d, &root, expected.len());
    let got = summary(&rows, &root);
    // The write's fd number depends on the runtime; compare everything else exactly.
    let got_norm: Vec<String> = got
        .iter()
        .map(|g| {
            if g.starts_with("CREATED open ") {
                g.rsplit_once(' ').map(|(a, _)| format!("{a} 3")).unwrap()
            } else {
                g.clone()
            }
        })
        .collect();
    assert_eq!(got_norm, expected, "rows:\n{got:#?}\n{}", d.log());
    for r in &rows {
        assert_eq!(s(r, "category"), "e2e");
        assert_eq!(s(r, "process_uid"), "0");
        if s(r, "target_path").contains("/rel") {
            assert_ne!(s(r, "pid"), me, "the mkdir rel ran in a child");
        } else {
            assert_eq!(s(r, "pid"), me, "{r:?}");
        }
    }
    let by = |action: &str, op: &str| {
        rows.iter()
            .find(|r| s(r, "action") == action && s(r, "operation") == op)
            .unwrap()
    };
    assert_eq!(s(by("ATTRIBUTES_MODIFIED", "chmod"), "arg_mode"), "0600");
    assert_eq!(s(by("ATTRIBUTES_MODIFIED", "chown"), "arg_uid"), "0");
    assert_eq!(s(by("DELETED", "unlink"), "success"), "1");
    let created = by("CREATED", "open");
    let inode = std::fs::metadata(&b).unwrap().ito_inode();
    assert_eq!(
        s(created, "inode"),
        inode.to_string(),
        "the open's inode is the file's (same after rename)"
    );
    // Hashes: the truncate left "h" in the file.
    let trunc = by("UPDATED", "truncate");
    assert_eq!(s(trunc, "hashed"), "1");
    assert_eq!(
        s(trunc, "sha256"),
        "aaa9402664f1a41f40ebbc52c9993eb66aeb366602958fdfaa283b71e64db123"
    );
    d.stop();
}

trait InodeExt {
    fn ito_inode(&self) -> u64;
}

impl InodeExt for std::fs::Metadata {
    fn ito_inode(&self) -> u64 {
        std::os::unix::fs::MetadataExt::ino(self)
    }
}

/// file_accesses: a read-only open is OPENED and its first read ACCESSED (once per open), in
/// the categories that ask for it; the same reads elsewhere produce nothing.
#[test]
fn file_accesses_report_the_open_and_the_first_read() {
    if !privileged() {
        return;
    }
    use std::io::Read as _;
    let base = tempfile::Builder::new()
        .prefix("osprey-fim-acc-")
        .tempdir_in("/tmp")
        .unwrap();
    let root = base.path().to_path_buf();
    let (acc, plain) = (root.join("acc"), root.join("plain"));
    std::fs::create_dir_all(&acc).unwrap();
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(acc.join("f"), b"0123456789").unwrap();
    std::fs::write(plain.join("g"), b"0123456789").unwrap();
    let conf = root.join("osprey.conf");
    let text = serde_json::json!({
        "options": {"enable_file_events": true},
        "file_paths": {
            "acc": [format!("{}/%%", acc.display())],
            "plain": [format!("{}/%%", plain.display())],
        },
        "file_accesses": ["acc"],
    });
    std::fs::write(&conf, text.to_string()).unwrap();
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);

    let mut byte = [0u8; 1];
    for p in [acc.join("f"), plain.join("g")] {
        let mut f = std::fs::File::open(&p).unwrap();
        f.read_exact(&mut byte).unwrap();
        f.read_exact(&mut byte).unwrap(); // a second read: not reported again
    }
    // The last event of the test: once it is stored, everything before it is too.
    std::fs::write(acc.join("end"), b"").unwrap();
    let sql = format!(
        "SELECT action, operation, syscall, target_path, category, pid, inode FROM file_events \
         WHERE target_path LIKE '{}/%' ORDER BY ntime, CAST(eid AS INTEGER)",
        root.display()
    );
    let rows = d.wait_rows(&sql, 4);
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                s(r, "action"),
                s(r, "operation"),
                s(r, "syscall"),
                s(r, "target_path")
                    .strip_prefix(&root.display().to_string())
                    .unwrap_or(""),
                s(r, "category"),
                s(r, "pid"),
            )
        })
        .collect();
    let me = std::process::id();
    assert_eq!(
        got,
        vec![
            format!("OPENED open openat /acc/f acc {me}"),
            format!("ACCESSED read read /acc/f acc {me}"),
            // Created empty: its close is still IN_CLOSE_WRITE's UPDATED.
            format!("CREATED open openat /acc/end acc {me}"),
            format!("UPDATED close_write close /acc/end acc {me}"),
        ],
        "{}",
        d.log()
    );
    let ino = std::fs::metadata(acc.join("f")).unwrap().ito_inode();
    assert_eq!(s(&rows[1], "inode"), ino.to_string());
    d.stop();
}

#[test]
fn reload_changes_the_coverage_without_restart() {
    if !privileged() {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("osprey-fim-reload-")
        .tempdir_in("/tmp")
        .unwrap();
    let root: PathBuf = base.path().to_path_buf();
    let one = root.join("one");
    let two = root.join("two");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let conf = root.join("osprey.conf");
    config(&conf, &one, &one.join("never"), None);
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);
    std::fs::write(one.join("x1"), b"1").unwrap();
    std::fs::write(two.join("y1"), b"1").unwrap();
    assert_eq!(
        rows_under(&d, &root, 1)
            .iter()
            .filter(|r| s(r, "operation") == "open")
            .count(),
        1
    );

    // Watch `two` as well, then SIGHUP.
    config(&conf, &one, &one.join("never"), Some(&two));
    // SAFETY: kill with the pid of a child we started and a valid signal number.
    assert_eq!(unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Logged once the kernel filters follow the new config.
    while !d.log().contains("config generation 2 in force") {
        assert!(Instant::now() < deadline, "no reload logged:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(two.join("y2"), b"2").unwrap();
    let rows = d.wait_rows(
        &format!("SELECT target_path FROM file_events WHERE operation = 'open' AND target_path LIKE '{}%' ORDER BY ntime", root.display()),
        2,
    );
    let paths: Vec<String> = rows
        .iter()
        .map(|r| s(r, "target_path").to_owned())
        .collect();
    assert_eq!(
        paths,
        vec![
            one.join("x1").display().to_string(),
            two.join("y2").display().to_string()
        ],
        "{}",
        d.log()
    );
    d.stop();
}

/// Overfills a one-page ring buffer with file events: every operation is either stored or
/// counted as dropped, none vanishes.
#[test]
fn flood_received_plus_dropped_equals_generated() {
    if !privileged() {
        return;
    }
    let (_base, root, conf) = watched_folder("osprey-flood-");
    // The file exists before the daemon starts, so the only records for it are the chmods
    // (a one-page ring holds one file record at a time: the creation's open, write and close
    // would race the first chmods for it).
    let target = root.join("f");
    std::fs::write(&target, b"").unwrap();
    // One page of ring buffer and no process events: only this test's file records use it.
    let d = Daemon::start(&[
        &format!("--config_path={}", conf.display()),
        "--ring_buffer_bytes=4096",
        "--enable_process_events=false",
    ]);
    const N: usize = 20_000;
    for _ in 0..N {
        // One chmod = one record.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Let the pipeline drain and the counters be persisted (once a second).
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(45));
    let (mut stored, mut dropped) = (0u64, 0u64);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1500));
        stored = d
            .query(&format!(
                "SELECT count(*) AS n FROM file_events WHERE operation = 'chmod' AND target_path = '{}'",
                target.display()
            ))[0]
            .get("n")
            .and_then(Value::as_str)
            .unwrap()
            .parse()
            .unwrap();
        dropped = d.query(
            "SELECT coalesce(sum(count), 0) AS n FROM event_drops WHERE publisher = 'ebpf_file' \
                 AND window_start = 0 AND reason NOT IN ('kernel_read_error', 'expired')",
        )[0]
        .get("n")
        .and_then(Value::as_str)
        .unwrap()
        .parse()
        .unwrap();
        if stored + dropped >= N as u64 {
            break;
        }
    }
    assert!(
        dropped > 0,
        "a one-page ring should overflow under {N} records (stored {stored})"
    );
    // Every chmod is stored or counted. The ring also carries other processes' path-based
    // changes that the kernel cannot place (absolute or relative names, resolved by the
    // agent), so a few drops may be theirs: at most 0.5% more than this test made.
    assert!(
        stored + dropped >= N as u64 && stored + dropped <= N as u64 + N as u64 / 200,
        "stored {stored} + dropped {dropped}, made {N}\n{}",
        d.log()
    );
    d.stop();
}

/// Opens issued through io_uring never pass the openat tracepoints. With `ebpf_hooks=auto` on
/// a kernel that accepts fentry, the `security_file_open` hook reports them (syscall
/// `io_uring`), inline and from io_uring's worker threads; with the tracepoint base they are
/// the documented blind spot, so exactly none may appear.
#[test]
fn io_uring_opens_are_seen_where_the_strategy_allows() {
    if !privileged() {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("osprey-fim-uring-")
        .tempdir_in("/tmp")
        .unwrap();
    let root = base.path().to_path_buf();
    let watched = root.join("w");
    std::fs::create_dir_all(&watched).unwrap();
    let conf = root.join("osprey.conf");
    config(&conf, &watched, &watched.join("never"), None);
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);
    let hook = d.query("SELECT hook FROM osquery_events WHERE name = 'ebpf_file'");
    assert_eq!(hook.len(), 1, "{hook:?}");
    let hook = s(&hook[0], "hook").to_owned();
    let forced = std::env::var("OSPREY_EBPF_HOOKS").as_deref() == Ok("tracepoint");
    if forced {
        assert_eq!(hook, "tracepoint");
    }
    // `cargo xtask vm-test` boots stock kernels that accept fentry: `auto` must use it there.
    if std::env::var("OSPREY_VM_STRATEGY").as_deref() == Ok("auto") {
        assert_eq!(hook, "tracepoint+fentry");
    }

    let mut ring = io_uring::IoUring::new(8).expect("io_uring_setup");
    let mut fds = Vec::new();
    for (i, (name, async_)) in [("inline", false), ("worker", true)].iter().enumerate() {
        let path = cstr(&watched.join(name));
        let mut op =
            io_uring::opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), path.as_ptr())
                .flags(libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC)
                .mode(0o644)
                .build()
                .user_data(i as u64);
        if *async_ {
            op = op.flags(io_uring::squeue::Flags::ASYNC);
        }
        // SAFETY: `path` outlives the submission: we wait for the completion right here.
        unsafe { ring.submission().push(&op).expect("queue the open") };
        ring.submit_and_wait(1).expect("io_uring_enter");
        let cqe = ring.completion().next().expect("a completion");
        assert!(cqe.result() >= 0, "io_uring open failed: {}", cqe.result());
        fds.push(cqe.result());
    }
    for fd in fds {
        // SAFETY: an fd this test opened and still owns.
        unsafe { libc::close(fd) };
    }
    // The last event of the test, through the syscall path.
    std::fs::write(watched.join("end"), b"").unwrap();

    let sql = format!(
        "SELECT action, operation, syscall, target_path, pid, inode FROM file_events \
         WHERE target_path LIKE '{}/%' ORDER BY ntime, CAST(eid AS INTEGER)",
        root.display()
    );
    let mut want = Vec::new();
    if hook == "tracepoint+fentry" {
        want.push("CREATED open io_uring /w/inline".to_owned());
        want.push("CREATED open io_uring /w/worker".to_owned());
        // Closed through the syscall, unwritten: reported as inotify's IN_CLOSE_WRITE is.
        want.push("UPDATED close_write close /w/inline".to_owned());
        want.push("UPDATED close_write close /w/worker".to_owned());
    } else {
        assert_eq!(hook, "tracepoint", "unknown strategy");
    }
    want.push("CREATED open openat /w/end".to_owned());
    want.push("UPDATED close_write close /w/end".to_owned());
    let rows = d.wait_rows(&sql, want.len());
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                s(r, "action"),
                s(r, "operation"),
                s(r, "syscall"),
                s(r, "target_path")
                    .strip_prefix(&root.display().to_string())
                    .unwrap_or("")
            )
        })
        .collect();
    assert_eq!(got, want, "strategy {hook}\n{}", d.log());
    if hook == "tracepoint+fentry" {
        // The inline open ran in this process, with the file's real inode.
        assert_eq!(s(&rows[0], "pid"), std::process::id().to_string());
        let ino = std::fs::metadata(watched.join("inline"))
            .unwrap()
            .ito_inode();
        assert_eq!(s(&rows[0], "inode"), ino.to_string());
    }
    d.stop();
}

/// A process that dies with a watched file open for writing never calls close: the kernel
/// program at its exit ends the tracking entry before the kernel frees the file (whose address
/// the next open anywhere may get), and counts it as `tracking_stale` on the CPU it ran on
/// (the agent's once-a-second sweep, cpu -1, has nothing left to do).
#[test]
fn a_dead_writers_tracking_entry_ends_at_its_exit_and_is_counted() {
    if !privileged() {
        return;
    }
    let (_base, root, conf) = watched_folder("osprey-sweep-");
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);
    let status = std::process::Command::new("/bin/sh")
        .current_dir(&root)
        .args(["-c", "exec 3>held; kill -9 $$"])
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // The open first: without it there is nothing to end.
    let rows = rows_under(&d, &root, 1);
    let opened = |rows: &[Map<String, Value>]| -> Vec<String> {
        summary(rows, &root)
            .into_iter()
            .map(|g| g.rsplit_once(' ').map(|(a, _)| a.to_owned()).unwrap_or(g))
            .collect()
    };
    assert_eq!(
        opened(&rows),
        ["CREATED open /held"],
        "the open\n{}",
        d.log()
    );
    let sql = "SELECT coalesce(sum(CASE WHEN cpu >= 0 THEN count END), 0) || ' ' || \
               coalesce(sum(CASE WHEN cpu < 0 THEN count END), 0) AS n FROM event_drops \
               WHERE publisher = 'ebpf_file' AND reason = 'tracking_stale' AND window_start = 0";
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(30));
    while Instant::now() < deadline && s(&d.query(sql)[0], "n") == "0 0" {
        std::thread::sleep(Duration::from_millis(500));
    }
    // A second look: nothing else may count it again.
    std::thread::sleep(tests::scaled(Duration::from_secs(2)));
    let n = s(&d.query(sql)[0], "n").to_owned();
    let drops = d.query(
        "SELECT publisher, reason, cpu, count FROM event_drops WHERE window_start = 0 AND count > 0",
    );
    assert_eq!(n, "1 0", "kernel, sweep; drops {drops:?}\n{}", d.log());
    assert_eq!(
        opened(&rows_under(&d, &root, 1)),
        ["CREATED open /held"],
        "the open only: no close was made\n{}",
        d.log()
    );
    d.stop();
}
