//! Enrichment (metadata, hashes) under a file system that never answers: userspace only, so
//! it runs on the host and not in the QEMU guests (`xtask vm-test` runs the kernel-source
//! modules `process::`, `file::`, `socket::`), whose initramfs has no Python.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, Instant},
};

use tests::{Daemon, privileged, s};

fn config(path: &Path, watched: &Path) {
    let text = serde_json::json!({
        "options": {"enable_file_events": true},
        "file_paths": {"e2e": [format!("{}/%%", watched.display())]},
    });
    std::fs::write(path, text.to_string()).expect("write config");
}

/// A FUSE file system mounted inside a watched folder stops answering the daemon's stat of a
/// file (tests/fuse/hang.py, Debian's python3-fusepy): the chmod row on it is stored without
/// metadata and marked (`enriched` = 0), a file written on a healthy file system meanwhile is
/// stored with its metadata, and SIGTERM still stops the daemon cleanly.
#[test]
fn a_hung_file_system_delays_only_its_own_rows_and_sigterm_still_exits() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("w");
    let (mnt, plain) = (root.join("fuse"), root.join("plain"));
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&plain).unwrap();
    let cfg = dir.path().join("c.json");
    config(&cfg, &root);
    let d = Daemon::start(&[
        &format!("--config_path={}", cfg.display()),
        "--enrichment_timeout_ms=500",
    ]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fuse/hang.py");
    let mut fuse = std::process::Command::new("/usr/bin/python3")
        .args([script, &mnt.display().to_string(), &d.pid().to_string()])
        // Not the test's own stdout/stderr: cargo waits for every holder of those pipes.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the FUSE file system (python3-fusepy)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .contains(&mnt.display().to_string())
    {
        assert!(
            Instant::now() < deadline,
            "the FUSE file system never mounted"
        );
        assert!(fuse.try_wait().unwrap().is_none(), "hang.py exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let hung = mnt.join("f");
    std::fs::set_permissions(&hung, std::fs::Permissions::from_mode(0o600)).unwrap();
    let started = Instant::now();
    std::fs::write(plain.join("x"), "ok").unwrap();

    let sql = |p: &Path| {
        format!(
            "SELECT operation, enriched, mode, hashed FROM file_events WHERE target_path = '{}' \
             ORDER BY ntime",
            p.display()
        )
    };
    let rows = d.wait_rows(&sql(&plain.join("x")), 3);
    let plain_rows: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                s(r, "operation"),
                s(r, "enriched"),
                s(r, "mode")
            )
        })
        .collect();
    assert_eq!(
        plain_rows,
        ["open 1 0644", "write 1 0644", "close_write 1 0644"],
        "{}",
        d.log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the healthy file system's rows waited {:?}",
        started.elapsed()
    );
    let rows = d.wait_rows(&sql(&hung), 1);
    let hung_rows: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                s(r, "operation"),
                s(r, "enriched"),
                s(r, "mode")
            )
        })
        .collect();
    assert_eq!(hung_rows, ["chmod 0 "], "{}", d.log());
    assert!(
        d.log().contains("did not answer within 500ms"),
        "{}",
        d.log()
    );

    // The daemon still stops on SIGTERM while its file-system worker is stuck.
    let stopped = Instant::now();
    let log = d.stop();
    assert!(stopped.elapsed() < Duration::from_secs(20), "{log}");
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(&mnt)
        .status();
    let _ = fuse.kill();
    let _ = fuse.wait();
}
