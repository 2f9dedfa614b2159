//! Private data: the event store is its owner's only (folder 0700, files 0600), the logs
//! are 0640, the pidfile is never written through a symlink, and `osprey query` run by
//! another user gets a clear permission error, not data.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    process::Command,
};

use tests::{Daemon, privileged};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

#[test]
fn the_store_is_private_the_logs_are_0640_and_another_user_is_refused() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let conf = dir.path().join("osprey.conf");
    std::fs::write(
        &conf,
        r#"{"options": {"disable_events": true, "schedule_splay_percent": 0},
            "schedule": {"one": {"query": "SELECT 1 AS one", "interval": 1}}}"#,
    )
    .expect("config");
    // A folder made before, open to all: tightened.
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("mkdir");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let d = Daemon::start_on(
        &db,
        &[
            &format!("--config_path={}", conf.display()),
            &format!("--logger_path={}", logs.display()),
        ],
    );
    let results = logs.join("osqueryd.results.log");
    let deadline = std::time::Instant::now() + tests::scaled(std::time::Duration::from_secs(20));
    while !results.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(mode(&db), 0o700, "the store's folder");
    let mut files = Vec::new();
    walk(&db, &mut files);
    assert!(files.len() > 5, "{files:?}");
    for f in &files {
        let want = if f.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(f), want, "{}", f.display());
    }
    assert_eq!(mode(&results), 0o640, "{}", results.display());

    // Another user: a clear error and exit 1, no rows. The binary is copied where that user
    // can run it (the checkout may be in a folder only root can enter).
    let bin_dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let bin = bin_dir.path().join("osprey");
    std::fs::copy(tests::osprey_bin(), &bin).expect("copy osprey");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .arg("query")
        .arg(format!("--database_path={}", db.display()))
        .arg("SELECT count(*) FROM process_events")
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "permission denied: the event database at {} is readable by its owner only",
            db.display()
        )),
        "{err}"
    );
    d.stop();
}

#[test]
fn a_symlink_planted_at_the_pidfile_is_refused_and_its_target_untouched() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me\n").expect("write");
    let link = dir.path().join("osprey.pid");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = Command::new(tests::osprey_bin())
        .arg("daemon")
        .arg(format!(
            "--database_path={}",
            dir.path().join("db").display()
        ))
        .arg(format!("--pidfile={}", link.display()))
        .arg("--disable_events=true")
        .arg("--disable_extensions=true")
        .output()
        .expect("osprey daemon");
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("writing the pidfile {}", link.display())),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
}

#[test]
fn a_captured_environment_is_stored_but_never_logged() {
    if !privileged() {
        return;
    }
    let m = tests::marker("envsecret");
    let d = Daemon::start(&["--exec_env_max=4096"]);
    let status = Command::new("/bin/true")
        .arg(&m)
        .env("OSPREY_TEST_SECRET", format!("hunter2-{m}"))
        .status()
        .expect("/bin/true");
    assert!(status.success());
    let rows = d.wait_rows(
        &format!(
            "SELECT env FROM process_events WHERE syscall = 'execve' AND cmdline = '/bin/true {m}'"
        ),
        1,
    );
    assert_eq!(rows.len(), 1);
    assert!(
        tests::s(&rows[0], "env").contains(&format!("OSPREY_TEST_SECRET=hunter2-{m}")),
        "{rows:?}"
    );
    let log = d.stop();
    assert!(!log.contains(&format!("hunter2-{m}")), "{log}");
}

/// `CapEff` of every thread of `pid`.
fn thread_caps(pid: u32) -> Vec<(String, u64)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task folder")
        .flatten()
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("status")).ok()?;
            let eff = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())?;
            Some((t.file_name().to_string_lossy().into_owned(), eff))
        })
        .collect()
}

#[test]
fn once_attached_every_thread_keeps_only_what_the_daemon_needs_and_events_still_flow() {
    if !privileged() {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("osprey-caps-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let w = base.path().join("w");
    std::fs::create_dir_all(&w).expect("mkdir");
    let conf = base.path().join("osprey.conf");
    std::fs::write(
        &conf,
        serde_json::json!({
            "options": {"enable_file_events": true},
            "file_paths": {"caps": [format!("{}/%%", w.display())]},
        })
        .to_string(),
    )
    .expect("config");
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);
    // BPF 39, PERFMON 38, DAC_READ_SEARCH 2, SYS_PTRACE 19, SYS_RESOURCE 24.
    // Of those, what this machine's root has (a sandbox may lack some, e.g. SYS_RESOURCE).
    let allowed: u64 = [2u32, 19, 24, 38, 39].iter().map(|b| 1u64 << b).sum();
    let mine = thread_caps(std::process::id())
        .into_iter()
        .map(|(_, e)| e)
        .fold(0, |a, e| a | e);
    let want = allowed & mine;
    assert_ne!(want & (1 << 39), 0, "the test runs without CAP_BPF");
    let threads = thread_caps(d.pid());
    assert!(threads.len() > 3, "{threads:?}");
    for (tid, eff) in &threads {
        assert_eq!(*eff, want, "thread {tid}: CapEff {eff:#x}");
    }
    assert!(d.log().contains("threads keep only "), "{}", d.log());
    // Still capturing: an exec and a write in the watched folder are rows.
    let m = tests::marker("caps");
    let f = w.join("after-drop");
    let status = Command::new("sh")
        .args(["-c", &format!("echo x > '{}'", f.display()), &m])
        .status()
        .expect("sh");
    assert!(status.success());
    let rows = d.wait_rows(
        &format!(
            "SELECT action FROM file_events WHERE target_path = '{}' AND action = 'CREATED'",
            f.display()
        ),
        1,
    );
    assert_eq!(rows.len(), 1, "{}", d.log());
    let procs = d.wait_rows(
        &format!(
            "SELECT pid FROM process_events WHERE syscall = 'execve' AND cmdline LIKE 'sh -c %{m}'"
        ),
        1,
    );
    assert_eq!(procs.len(), 1);
    d.stop();
}
