//! `--event_source=fallback`: no eBPF. File events from fanotify, process events from the
//! proc connector, through the same subscribers and tables; `osquery_events.hook` names
//! each fallback. Exact rows, selected by this test's folder and marker.

use std::{path::Path, process::Command, time::Duration};

use serde_json::{Map, Value};
use tests::{Daemon, privileged, s};

fn daemon(dir: &Path, watched: &Path) -> Daemon {
    let conf = dir.join("osprey.conf");
    std::fs::write(
        &conf,
        serde_json::json!({
            "options": {"enable_file_events": true},
            "file_paths": {"fb": [format!("{}/%%", watched.display())]},
            "exclude_paths": {"fb": [format!("{}/skip/%%", watched.display())]},
        })
        .to_string(),
    )
    .expect("config");
    Daemon::start(&[
        &format!("--config_path={}", conf.display()),
        "--event_source=fallback",
    ])
}

fn file_rows(d: &Daemon, base: &Path, n: usize) -> Vec<Map<String, Value>> {
    d.wait_rows(
        &format!(
            "SELECT action, operation, target_path, category, pid, process_uid, syscall, fd, md5, enriched, transaction_id FROM file_events WHERE target_path LIKE '{}/%' ORDER BY ntime, CAST(eid AS INTEGER)",
            base.display()
        ),
        n,
    )
}

#[test]
fn file_and_process_events_without_ebpf() {
    if !privileged() {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("osprey-fallback-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let w = base.path().join("w");
    let out = base.path().join("out");
    std::fs::create_dir_all(w.join("skip")).expect("mkdir");
    std::fs::create_dir_all(&out).expect("mkdir");
    let d = daemon(base.path(), &w);
    let hooks = d.wait_rows(
        "SELECT name, hook FROM osquery_events WHERE hook != '' ORDER BY name",
        2,
    );
    assert_eq!(
        hooks
            .iter()
            .map(|r| format!("{}={}", s(r, "name"), s(r, "hook")))
            .collect::<Vec<_>>(),
        ["ebpf_file=fanotify", "ebpf_process=proc_connector"]
    );
    // One shell makes the changes (its builtin echo writes with the shell's pid), a step at
    // a time: fanotify merges changes of one file that are still queued, and the pauses
    // let each be read before the next. The shell lives a moment after its last change, so
    // /proc still has it when its exec is read.
    let m = tests::marker("fallback");
    let script = format!(
        "set -e; cd '{w}'; echo kept > k; sleep 1; echo one > a; sleep 1; echo two >> a; sleep 1; mv a b; sleep 1; chmod 600 b; sleep 1; rm b; echo x > skip/s; echo y > '{out}/o'; sleep 1; mkdir dd; sleep 1; rmdir dd; sleep 1",
        w = w.display(),
        out = out.display()
    );
    let child = Command::new("sh")
        .args(["-c", &script, &m])
        .spawn()
        .expect("sh");
    let pid = child.id();
    let status = child.wait_with_output().expect("wait").status;
    assert!(status.success());
    let rows = file_rows(&d, base.path(), 14);
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                s(r, "action"),
                s(r, "operation"),
                s(r, "target_path")
                    .strip_prefix(&format!("{}/", w.display()))
                    .unwrap_or(s(r, "target_path")),
                // The pair's id is its own (renames elsewhere take ids too): 0 or "t".
                if s(r, "transaction_id") == "0" {
                    "0"
                } else {
                    "t"
                },
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "CREATED create k 0",
            "UPDATED write k 0",
            "UPDATED close_write k 0",
            "CREATED create a 0",
            "UPDATED write a 0",
            "UPDATED close_write a 0",
            "UPDATED write a 0",
            "UPDATED close_write a 0",
            "MOVED_FROM rename a t",
            "MOVED_TO rename b t",
            "ATTRIBUTES_MODIFIED attrib b 0",
            "DELETED unlink b 0",
            "CREATED mkdir dd 0",
            "DELETED rmdir dd 0",
        ],
        "{rows:?}"
    );
    assert_eq!(s(&rows[8], "transaction_id"), s(&rows[9], "transaction_id"));
    for (i, r) in rows.iter().enumerate() {
        // The echo rows are the shell's; mv, chmod, rm, mkdir and rmdir are its children.
        // A child may be gone before its change is read: its uid is then unknown (NULL).
        if i < 8 {
            assert_eq!(s(r, "pid"), pid.to_string(), "{r:?}");
            assert_eq!(s(r, "process_uid"), "0", "{r:?}");
        } else {
            assert_ne!(s(r, "pid"), pid.to_string(), "{r:?}");
            assert!(["0", ""].contains(&s(r, "process_uid")), "{r:?}");
        }
        assert_eq!(s(r, "category"), "fb");
        assert_eq!(s(r, "syscall"), "");
        assert_eq!(s(r, "fd"), "-1");
    }
    // What was written is hashed at ingest, as with eBPF (md5 of "kept\n"), unless the
    // reading timed out on a loaded machine (then the row says it is not enriched).
    for r in &rows[..3] {
        if s(r, "enriched") == "1" {
            assert_eq!(s(r, "md5"), "649c727626d5a242b871347db6558c50", "{r:?}");
        }
    }
    // The exec of that shell, read from /proc, and its exit.
    let procs = d.wait_rows(
        &format!(
            "SELECT syscall, path, cmdline, parent, uid, cwd, exit_code, partial FROM process_events WHERE pid = {pid} AND syscall IN ('execve', 'exit') ORDER BY ntime"
        ),
        2,
    );
    assert_eq!(procs.len(), 2, "{procs:?}");
    let exec = &procs[0];
    assert_eq!(s(exec, "syscall"), "execve");
    assert_eq!(s(exec, "path"), "/usr/bin/dash");
    assert_eq!(s(exec, "cmdline"), format!("sh -c {script} {m}"));
    assert_eq!(s(exec, "parent"), std::process::id().to_string());
    assert_eq!(s(exec, "uid"), "0");
    // The working directory is read from /proc when the exec is read: the shell may have
    // run its `cd` by then.
    let cwd = s(exec, "cwd");
    assert!(
        cwd == std::env::current_dir().unwrap().display().to_string()
            || cwd == w.display().to_string(),
        "{cwd}"
    );
    assert_eq!(s(exec, "partial"), "0");
    assert_eq!(s(&procs[1], "syscall"), "exit");
    assert_eq!(s(&procs[1], "exit_code"), "0");
    std::thread::sleep(Duration::from_millis(200));
    let log = d.stop();
    assert!(log.contains("ebpf_file: fallback source fanotify"), "{log}");
    assert!(
        log.contains("ebpf_socket: no fallback without eBPF") || !log.contains("ebpf_socket"),
        "{log}"
    );
}
