//! A real systemd in a container: the Debian tree `cargo xtask setup` bootstraps
//! (`.tools/nspawn/bookworm`), booted with `systemd-nspawn --register=no --keep-unit -b` on a
//! throw-away overlay (`--volatile=overlay`: the tree is never changed), from cgroups of its
//! own (one per mounted hierarchy, holding only the launching process), so the container's
//! systemd never adopts or moves another process of the machine. Stopped by its pid.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The tree `cargo xtask setup` makes; missing is a failure, never a skip.
pub fn tree() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/nspawn/bookworm");
    assert!(
        p.join("usr/lib/systemd/systemd").exists(),
        "{} is missing: run `cargo xtask setup` (it bootstraps the container tree)",
        p.display()
    );
    p
}

pub struct Container {
    nspawn: Child,
    /// The container's PID 1 (its systemd), as the host sees it.
    pub pid1: u32,
    /// Its start time (so a reused pid is never taken for it).
    pid1_start: Option<u64>,
    cgroups: Vec<PathBuf>,
}

/// The cgroup hierarchies a process can be moved in: the unified one, and on a hybrid host
/// also the named `systemd` one.
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.procs").exists() {
        return vec![root.to_owned()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|h| root.join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

impl Container {
    pub fn boot() -> Self {
        Self::boot_with(&[])
    }

    /// Boots with more `systemd-nspawn` options (capabilities, system calls, binds).
    pub fn boot_with(options: &[&str]) -> Self {
        let tree = tree();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("osprey-test-{}-{n}", std::process::id());
        let cgroups: Vec<PathBuf> = hierarchies().into_iter().map(|h| h.join(&name)).collect();
        assert!(
            !cgroups.is_empty(),
            "no cgroup hierarchy to launch the container from"
        );
        for c in &cgroups {
            std::fs::create_dir_all(c).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
        }
        // The shell moves itself (only itself) into the new cgroups, then becomes nspawn.
        let mut script = String::new();
        for c in &cgroups {
            script.push_str(&format!("echo $$ > '{}/cgroup.procs' && ", c.display()));
        }
        script.push_str(
            "tree=$1; shift; exec systemd-nspawn --register=no --keep-unit --volatile=overlay -q -D \"$tree\" \"$@\" -b",
        );
        let nspawn = Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(&tree)
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-nspawn (cargo xtask setup installs systemd-container)");
        let mut c = Container {
            pid1: 0,
            pid1_start: None,
            nspawn,
            cgroups,
        };
        let deadline = Instant::now() + crate::scaled(Duration::from_secs(90));
        loop {
            assert!(
                Instant::now() < deadline,
                "the container's systemd did not come up within 90 s"
            );
            if let Ok(Some(st)) = c.nspawn.try_wait() {
                panic!("systemd-nspawn exited: {st}");
            }
            if c.pid1 == 0 {
                c.pid1 = child_of(c.nspawn.id()).unwrap_or(0);
                c.pid1_start = start_of(c.pid1);
            }
            if c.pid1 != 0 && c.bus_socket().exists() {
                let state = c.exec(&["systemctl", "is-system-running"]);
                let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
                if state == "running" || state == "degraded" {
                    return c;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The container's system bus socket, as the host reaches it.
    pub fn bus_socket(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/run/dbus/system_bus_socket",
            self.pid1
        ))
    }

    pub fn bus_address(&self) -> String {
        format!("unix:path={}", self.bus_socket().display())
    }

    /// A path inside the container, as the host reaches it.
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.pid1))
    }

    /// Runs a command inside the container (all its namespaces).
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.pid1.to_string(),
                "-m",
                "-u",
                "-i",
                "-n",
                "-p",
                "--",
            ])
            .args(args)
            .output()
            .expect("run nsenter")
    }

    /// Like [`Container::exec`], and the command must succeed; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} in the container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A process's start time (field 22 of its stat), None when it is gone.
fn start_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The first child of `pid` (nspawn's one child is the container's init).
fn child_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM makes nspawn power the container off; SIGKILL if it takes too long.
        // SAFETY: kill with a pid we own and a valid signal number.
        unsafe { libc::kill(self.nspawn.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !matches!(self.nspawn.try_wait(), Ok(Some(_))) {
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
        // A killed nspawn leaves its container running: end it by its init (SIGKILL to a
        // PID namespace's init from outside ends every process in it).
        if self.pid1 != 0 && start_of(self.pid1).is_some() && start_of(self.pid1) == self.pid1_start
        {
            // SAFETY: kill with the pid of the container's init, which this test started.
            unsafe { libc::kill(self.pid1 as i32, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{}", self.pid1)).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The cgroups are empty once the container is gone; child cgroups first.
        for c in &self.cgroups {
            remove_cgroup(c);
        }
    }
}

fn remove_cgroup(c: &Path) {
    if let Ok(rd) = std::fs::read_dir(c) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(c);
}
