//! Peer parity with inotify: the same operations in one folder, watched by `inotifywait -m -r`
//! and by Osprey; every change inotify reports must be a row, operation by operation.
//!
//! inotify's events map onto osquery's actions: IN_CREATE → CREATED, IN_MODIFY and
//! IN_CLOSE_WRITE → UPDATED, IN_ATTRIB → ATTRIBUTES_MODIFIED, IN_MOVED_FROM/TO →
//! MOVED_FROM/TO, IN_DELETE → DELETED. Runs on the host and in the QEMU guests (vm-test copies
//! inotifywait into the initramfs).

use std::{
    collections::BTreeSet,
    ffi::CString,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use tests::{Daemon, privileged, s};

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in test paths")
}

fn map(event: &str) -> Option<&'static str> {
    Some(match event {
        "CREATE" => "CREATED",
        "MODIFY" | "CLOSE_WRITE" => "UPDATED",
        "ATTRIB" => "ATTRIBUTES_MODIFIED",
        "MOVED_FROM" => "MOVED_FROM",
        "MOVED_TO" => "MOVED_TO",
        "DELETE" => "DELETED",
        _ => return None,
    })
}

#[test]
fn every_change_inotify_reports_is_a_row() {
    if !privileged() {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("osprey-parity-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let w = base.path().join("w");
    let out = base.path().join("out");
    std::fs::create_dir_all(&w).expect("mkdir");
    std::fs::create_dir_all(&out).expect("mkdir");
    let conf = base.path().join("osprey.conf");
    let text = serde_json::json!({
        "options": {"enable_file_events": true},
        "file_paths": {"parity": [format!("{}/%%", w.display())]},
    });
    std::fs::write(&conf, text.to_string()).expect("config");
    let d = Daemon::start(&[&format!("--config_path={}", conf.display())]);
    let log = base.path().join("inotify.log");
    let mut oracle = Command::new("inotifywait")
        .args(["-m", "-r", "-q", "--format", "%e %w%f", "-o"])
        .arg(&log)
        .args([
            "-e",
            "create",
            "-e",
            "modify",
            "-e",
            "close_write",
            "-e",
            "attrib",
            "-e",
            "moved_from",
            "-e",
            "moved_to",
            "-e",
            "delete",
        ])
        .arg(&w)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("inotifywait (Debian inotify-tools, installed by cargo xtask setup)");
    std::thread::sleep(tests::scaled(Duration::from_secs(1)));

    // (operation, the names it touches), done in this order.
    let p = |n: &str| w.join(n);
    let ops: Vec<(&str, Vec<String>)> = vec![
        ("create", vec!["a".into()]),
        ("append", vec!["a".into()]),
        ("chmod", vec!["a".into()]),
        ("chown", vec!["a".into()]),
        ("setxattr", vec!["a".into()]),
        ("touch", vec!["a".into()]),
        ("truncate", vec!["a".into()]),
        ("o_trunc", vec!["a".into()]),
        ("rename", vec!["a".into(), "b".into()]),
        ("link", vec!["c".into()]),
        ("symlink", vec!["s".into()]),
        ("mkdir", vec!["dir".into()]),
        ("nested", vec!["dir/n".into()]),
        ("rmdir", vec!["dir/n".into(), "dir".into()]),
        ("unlink", vec!["c".into()]),
        ("move_in", vec!["in".into()]),
        ("move_out", vec!["b".into()]),
    ];
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
    };
    // Per operation: its time window and inotify's lines for it.
    let mut windows: Vec<(u64, u64, String)> = Vec::new();
    let mut seen = 0usize;
    for (op, _) in &ops {
        let t0 = now_ns();
        match *op {
            "create" => std::fs::write(p("a"), b"one").expect("create"),
            "append" => {
                use std::io::Write as _;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(p("a"))
                    .expect("open");
                f.write_all(b"two").expect("append");
            }
            "chmod" => std::fs::set_permissions(p("a"), std::fs::Permissions::from_mode(0o600))
                .expect("chmod"),
            // SAFETY: valid path; chown to root (the test runs as root).
            "chown" => assert_eq!(unsafe { libc::chown(cstr(&p("a")).as_ptr(), 0, 0) }, 0),
            "setxattr" => {
                let key = CString::new("trusted.parity").expect("no NUL");
                // SAFETY: valid pointers and lengths.
                let rc = unsafe {
                    libc::setxattr(
                        cstr(&p("a")).as_ptr(),
                        key.as_ptr(),
                        b"v".as_ptr().cast(),
                        1,
                        0,
                    )
                };
                assert_eq!(rc, 0, "setxattr");
            }
            "touch" => assert!(
                Command::new("touch")
                    .arg(p("a"))
                    .status()
                    .expect("touch")
                    .success()
            ),
            // SAFETY: valid path.
            "truncate" => assert_eq!(unsafe { libc::truncate(cstr(&p("a")).as_ptr(), 1) }, 0),
            "o_trunc" => drop(std::fs::File::create(p("a")).expect("O_TRUNC")),
            "rename" => std::fs::rename(p("a"), p("b")).expect("rename"),
            "link" => std::fs::hard_link(p("b"), p("c")).expect("link"),
            "symlink" => std::os::unix::fs::symlink("b", p("s")).expect("symlink"),
            "mkdir" => std::fs::create_dir(p("dir")).expect("mkdir"),
            "nested" => std::fs::write(p("dir/n"), b"n").expect("nested"),
            "rmdir" => {
                std::fs::remove_file(p("dir/n")).expect("unlink nested");
                std::fs::remove_dir(p("dir")).expect("rmdir");
            }
            "unlink" => std::fs::remove_file(p("c")).expect("unlink"),
            "move_in" => {
                std::fs::write(out.join("in"), b"i").expect("write outside");
                std::fs::rename(out.join("in"), p("in")).expect("move in");
            }
            "move_out" => std::fs::rename(p("b"), out.join("b")).expect("move out"),
            other => unreachable!("{other}"),
        }
        let t1 = now_ns();
        // inotify's lines carry no time: wait until they are written, then take the new ones.
        std::thread::sleep(tests::scaled(Duration::from_millis(300)));
        let all = std::fs::read_to_string(&log).unwrap_or_default();
        windows.push((t0, t1, all[seen.min(all.len())..].to_owned()));
        seen = all.len();
    }
    let _ = oracle.kill();
    let _ = oracle.wait();

    let prefix = format!("{}/", w.display());
    let rows = d.wait_rows(
        &format!(
            "SELECT action, target_path, ntime FROM file_events WHERE target_path LIKE '{prefix}%'"
        ),
        ops.len(),
    );
    let mut compared = 0;
    for ((op, names), (t0, t1, lines)) in ops.iter().zip(&windows) {
        let mut inotify: BTreeSet<(String, String)> = BTreeSet::new();
        for line in lines.lines() {
            let Some((events, path)) = line.split_once(' ') else {
                continue;
            };
            let name = path.strip_prefix(&prefix).unwrap_or(path).to_owned();
            for e in events.split(',') {
                if let Some(a) = map(e) {
                    inotify.insert((a.to_owned(), name.clone()));
                }
            }
        }
        let osprey: BTreeSet<(String, String)> = rows
            .iter()
            .filter(|r| {
                let t: u64 = s(r, "ntime").parse().unwrap_or(0);
                (*t0..=*t1).contains(&t)
            })
            .map(|r| {
                let name = s(r, "target_path").strip_prefix(&prefix).unwrap_or("");
                (s(r, "action").to_owned(), name.to_owned())
            })
            .collect();
        let missing: Vec<&(String, String)> = inotify.difference(&osprey).collect();
        assert!(
            missing.is_empty(),
            "{op}: inotify reported {missing:?} and Osprey did not\ninotify: {inotify:?}\n\
             osprey: {osprey:?}"
        );
        assert!(!inotify.is_empty(), "{op}: inotifywait saw nothing");
        for n in names {
            assert!(
                inotify.iter().any(|(_, m)| m == n),
                "{op}: inotify lacks {n}"
            );
        }
        compared += inotify.len();
    }
    assert!(compared >= ops.len(), "{compared} changes compared");
    d.stop();
}
