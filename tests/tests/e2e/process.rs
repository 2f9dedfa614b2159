//! Process events from sched_process_exec/exit, end to end.

use std::process::Command;

use tests::{Daemon, marker, privileged, s};

#[test]
fn exec_and_exit_of_a_child_are_stored_exactly() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&[]);
    let m = marker("exec");
    let status = Command::new("/bin/sh")
        .args(["-c", "exit 3", &m])
        .status()
        .expect("run sh");
    assert_eq!(status.code(), Some(3));
    let status = Command::new("/bin/true")
        .arg(&m)
        .status()
        .expect("run /bin/true");
    assert!(status.success());
    let me = std::process::id().to_string();
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();

    // The `osprey query` processes are our children too and carry the marker in their argv.
    let sql = format!(
        "SELECT pid, path, cmdline, uid, euid, parent, syscall, exit_code, tid, cwd, env, env_count FROM process_events \
         WHERE cmdline LIKE '%{m}%' AND parent = {me} AND path IN ('/bin/sh', '/bin/true') ORDER BY ntime"
    );
    let rows = d.wait_rows(&sql, 4);
    assert_eq!(
        rows.len(),
        4,
        "two execs and two exits, got {rows:#?}\n{}",
        d.log()
    );

    let (sh_exec, sh_exit) = (&rows[0], &rows[1]);
    assert_eq!(s(sh_exec, "syscall"), "execve");
    assert_eq!(s(sh_exec, "path"), "/bin/sh");
    assert_eq!(s(sh_exec, "cmdline"), format!("/bin/sh -c exit 3 {m}"));
    assert_eq!(s(sh_exec, "parent"), me);
    assert_eq!(s(sh_exec, "uid"), uid);
    assert_eq!(s(sh_exec, "euid"), uid);
    assert_eq!(s(sh_exec, "pid"), s(sh_exec, "tid"));
    assert_eq!(s(sh_exec, "exit_code"), "");
    // The cwd is resolved in the kernel; the environment is off by default.
    let cwd = std::env::current_dir().unwrap().display().to_string();
    assert_eq!(s(sh_exec, "cwd"), cwd);
    assert_eq!(s(sh_exec, "env"), "");
    assert_eq!(s(sh_exec, "env_count"), "0");
    assert_eq!(s(sh_exit, "syscall"), "exit");
    assert_eq!(s(sh_exit, "pid"), s(sh_exec, "pid"));
    assert_eq!(s(sh_exit, "exit_code"), "3");
    assert_eq!(
        s(sh_exit, "path"),
        "/bin/sh",
        "exit rows carry the exec's path"
    );

    let (true_exec, true_exit) = (&rows[2], &rows[3]);
    assert_eq!(s(true_exec, "path"), "/bin/true");
    assert_eq!(s(true_exec, "cmdline"), format!("/bin/true {m}"));
    assert_eq!(s(true_exec, "parent"), me);
    assert_eq!(s(true_exec, "uid"), uid);
    assert_eq!(s(true_exit, "exit_code"), "0");

    // Each child was forked (Rust spawns with clone/vfork) by this process: one fork row each,
    // before its exec, with the child's pid and this process as parent.
    for exec in [sh_exec, true_exec] {
        let pid = s(exec, "pid");
        let forks = d.query(&format!(
            "SELECT pid, parent, syscall, ntime FROM process_events WHERE syscall = 'fork' AND pid = {pid}"
        ));
        assert_eq!(forks.len(), 1, "one fork row for {pid}: {forks:?}");
        assert_eq!(s(&forks[0], "parent"), me);
    }

    // The same through a time-range query: the rows fall inside [now - 60 s, now].
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ranged = d.query(&format!(
        "SELECT pid FROM process_events WHERE time >= {} AND time <= {now} AND cmdline LIKE '%{m}%' AND parent = {me} AND path IN ('/bin/sh', '/bin/true')",
        now - 60
    ));
    assert_eq!(ranged.len(), 4);

    let log = d.stop();
    assert!(log.contains("stopped cleanly"), "{log}");
}

#[test]
fn counters_show_the_publisher_and_no_loss() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&[]);
    let m = marker("count");
    for _ in 0..20 {
        assert!(
            Command::new("/bin/true")
                .arg(&m)
                .status()
                .unwrap()
                .success()
        );
    }
    // The `osprey query` processes carry the marker too: count only /bin/true.
    let rows = d.wait_rows(
        &format!(
            "SELECT pid FROM process_events WHERE cmdline LIKE '%{m}%' AND syscall = 'execve' AND path = '/bin/true'"
        ),
        20,
    );
    assert_eq!(rows.len(), 20, "{rows:#?}");
    // The snapshot is written once a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let ev = d.query(
        "SELECT name, type, events, active, dropped FROM osquery_events \
         WHERE name IN ('ebpf_process', 'process_events') ORDER BY type, name",
    );
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(s(&ev[0], "name"), "ebpf_process");
    assert_eq!(s(&ev[0], "type"), "publisher");
    assert_eq!(s(&ev[0], "active"), "1");
    assert_eq!(s(&ev[0], "dropped"), "0");
    assert!(s(&ev[0], "events").parse::<u64>().unwrap() >= 40);
    assert_eq!(s(&ev[1], "name"), "process_events");
    // Retention (`expired`) is not loss.
    let drops = d.query("SELECT sum(count) AS n FROM event_drops WHERE reason != 'expired'");
    assert_eq!(s(&drops[0], "n"), "0");
    d.stop();
}

#[test]
fn argv_is_cut_at_exec_args_max_and_flagged() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&["--exec_args_max=24"]);
    let m = marker("argv");
    let long = format!("{m}-{}", "x".repeat(100));
    assert!(
        Command::new("/bin/true")
            .arg(&long)
            .status()
            .unwrap()
            .success()
    );
    let me = std::process::id();
    // The cut argv ends inside the marker, so match on its start.
    let rows = d.wait_rows(
        &format!(
            "SELECT cmdline, overflows FROM process_events WHERE syscall = 'execve' AND parent = {me} \
             AND path = '/bin/true' AND cmdline LIKE '/bin/true osprey-argv-%'"
        ),
        1,
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    // 24 bytes of "/bin/true\0<arg>": the NUL becomes the space.
    assert_eq!(s(&rows[0], "cmdline"), format!("/bin/true {}", &long[..14]));
    assert_eq!(s(&rows[0], "overflows"), "cmdline");
    d.stop();
}

#[test]
fn cwd_and_opt_in_environment_of_an_exec() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&["--exec_env_max=4095"]);
    let m = marker("env");
    let dir = tempfile::Builder::new()
        .prefix("osprey-cwd-")
        .tempdir_in("/tmp")
        .unwrap();
    let status = Command::new("/bin/true")
        .arg(&m)
        .current_dir(dir.path())
        .env_clear()
        .env("OSPREY_E2E", &m)
        .env("SECOND", "two words")
        .status()
        .unwrap();
    assert!(status.success());
    let me = std::process::id();
    let rows = d.wait_rows(
        &format!(
            "SELECT cwd, env, env_count, env_size, overflows FROM process_events \
             WHERE syscall = 'execve' AND parent = {me} AND cmdline = '/bin/true {m}'"
        ),
        1,
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(s(&rows[0], "cwd"), dir.path().display().to_string());
    assert_eq!(
        s(&rows[0], "env"),
        format!("OSPREY_E2E={m} SECOND=two words")
    );
    assert_eq!(s(&rows[0], "env_count"), "2");
    let size = format!("OSPREY_E2E={m}").len() + 1 + "SECOND=two words".len() + 1;
    assert_eq!(s(&rows[0], "env_size"), size.to_string());
    assert_eq!(s(&rows[0], "overflows"), "");
    d.stop();
}

/// A process started before the daemon is known from the task iterator: a `snapshot` row
/// with its parent, image and cwd, and its exit row carries the same image.
#[test]
fn processes_running_before_start_come_from_the_task_iterator() {
    if !privileged() {
        return;
    }
    let m = marker("snap");
    let mut child = Command::new("/bin/sh")
        .args(["-c", "read x", &m])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The child may not have exec'd yet: wait until its argv is the shell's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .ends_with(format!("{m}\0").as_bytes())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "child {pid} never exec'd"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap()
        .display()
        .to_string();
    let d = Daemon::start(&[]);
    drop(child.stdin.take()); // EOF: `read` fails and the shell exits with 1
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let me = std::process::id();
    let rows = d.wait_rows(
        &format!(
            "SELECT syscall, pid, parent, path, cmdline, cwd, uid, exit_code FROM process_events \
             WHERE pid = {pid} AND syscall IN ('snapshot', 'exit') ORDER BY ntime"
        ),
        2,
    );
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} [{}] {} {} {}",
                s(r, "syscall"),
                s(r, "pid"),
                s(r, "parent"),
                s(r, "path"),
                s(r, "cmdline"),
                s(r, "cwd"),
                s(r, "uid"),
                s(r, "exit_code")
            )
        })
        .collect();
    let cwd = std::env::current_dir().unwrap().display().to_string();
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(
        got,
        vec![
            format!("snapshot {pid} {me} {exe} [/bin/sh -c read x {m}] {cwd} {uid} "),
            format!("exit {pid} {me} {exe} [/bin/sh -c read x {m}]  {uid} 1"),
        ],
        "{}",
        d.log()
    );
    d.stop();
}

/// Kernel-side diagnostics (aya-log) reach the daemon's log only with `--ebpf_log_level`: the
/// task iterator logs one debug line per process it reports, so a process started before the
/// daemon has exactly one line naming it and its parent (this test).
#[test]
fn kernel_log_lines_follow_ebpf_log_level() {
    if !privileged() {
        return;
    }
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let (pid, me) = (child.id(), std::process::id());
    let line = format!("ebpf DEBUG: snapshot: task {pid} parent {me}");
    let count = |log: &str, needle: &str| log.lines().filter(|l| l.ends_with(needle)).count();

    let log = Daemon::start(&["--ebpf_log_level=debug"]).stop();
    assert_eq!(count(&log, &line), 1, "{log}");

    // Off by default, and at a level above the programs' debug statements.
    for extra in [&[][..], &["--ebpf_log_level=info"][..]] {
        let log = Daemon::start(extra).stop();
        assert_eq!(count(&log, &line), 0, "{extra:?}: {log}");
        assert!(!log.contains("ebpf DEBUG"), "{extra:?}: {log}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A failed exec is a row with its result; a fileless exec (a memfd run through fexecve)
/// shows the memfd's name, as /proc/<pid>/exe does, and is flagged.
#[test]
fn failed_and_fileless_execs_are_rows() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&[]);
    let m = marker("exec-fail");
    let missing = format!("/nonexistent-{m}/prog");
    let err = Command::new(&missing).spawn().expect_err("no such program");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));

    // A copy of /bin/true that exists only in memory.
    let name = std::ffi::CString::new(m.clone()).expect("no NUL");
    // SAFETY: a valid NUL-terminated name; flags 0.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    let image = std::fs::read("/bin/true").expect("read /bin/true");
    // SAFETY: valid fd and buffer.
    let n = unsafe { libc::write(fd, image.as_ptr().cast(), image.len()) };
    assert_eq!(n as usize, image.len());
    let argv0 = std::ffi::CString::new("true").expect("no NUL");
    let argv1 = std::ffi::CString::new(m.clone()).expect("no NUL");
    let argv = [argv0.as_ptr(), argv1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: the child only calls fexecve and _exit (async-signal-safe); everything it
    // uses was built before the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            libc::fexecve(fd, argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 0, "the memfd image ran");
    // SAFETY: our fd.
    unsafe { libc::close(fd) };

    let me = std::process::id().to_string();
    let sql = format!(
        "SELECT path, cmdline, result, fileless, syscall, parent FROM process_events \
         WHERE syscall = 'execve' AND path LIKE '%{m}%' ORDER BY ntime"
    );
    let rows = d.wait_rows(&sql, 2);
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} [{}] result={} fileless={} parent_is_me={}",
                s(r, "path"),
                s(r, "cmdline"),
                s(r, "result"),
                s(r, "fileless"),
                s(r, "parent") == me
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            format!("{missing} [] result=-2 fileless=0 parent_is_me=true"),
            format!("/memfd:{m} (deleted) [true {m}] result=0 fileless=1 parent_is_me=true"),
        ],
        "{}",
        d.log()
    );
    d.stop();
}
