//! Helpers for the end-to-end tests: start the real `osprey daemon`, query it with the real
//! `osprey query`, and stop it with SIGTERM.
//!
//! Privileged tests never skip silently: without root they fail with the reason, unless
//! `OSPREY_SKIP_PRIVILEGED=1` is set outside CI.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Map, Value};

pub mod container;
pub mod fleet;

/// `d` times `OSPREY_TEST_TIME_SCALE` (default 1): slack for the waits below on slow machines,
/// e.g. the emulated guests of `cargo xtask vm-test`.
pub fn scaled(d: Duration) -> Duration {
    let scale = std::env::var("OSPREY_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 1.0)
        .unwrap_or(1.0);
    d.mul_f64(scale)
}

/// target/<profile>/osprey, next to the test binary's deps folder.
pub fn osprey_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OSPREY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("osprey");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p agent` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// The sample Rust extension (`examples/rust-extension`), built beside `osprey`.
pub fn example_extension_bin() -> PathBuf {
    let bin = osprey_bin().with_file_name("osprey-example-extension");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p osprey-example-extension` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// True when the test may use eBPF. Panics when it may not and skipping is not allowed.
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    let in_ci = std::env::var_os("CI").is_some();
    if !in_ci && std::env::var("OSPREY_SKIP_PRIVILEGED").as_deref() == Ok("1") {
        eprintln!("SKIPPED: needs root to load eBPF (OSPREY_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!(
        "this test loads eBPF and needs root (run it as root; outside CI, OSPREY_SKIP_PRIVILEGED=1 skips it)"
    );
}

pub struct Daemon {
    pub child: Option<Child>,
    pub db: PathBuf,
    /// The folder of the log, and of the database unless the caller chose its place.
    _dir: tempfile::TempDir,
    log: PathBuf,
}

/// What is left of a daemon stopped with [`Daemon::kill9`] or [`Daemon::stop_keep`]: its
/// database, to read or to restart on. The folder is removed when this is dropped.
pub struct Stopped {
    pub db: PathBuf,
    dir: tempfile::TempDir,
    /// The stopped daemon's log.
    pub log: String,
}

impl Stopped {
    /// Starts a new daemon on the same database (and the same temporary folder).
    pub fn restart(self, extra: &[&str]) -> Daemon {
        // The killed daemon could not remove its pidfile; readiness is its reappearance.
        let _ = std::fs::remove_file(self.db.join("osprey.pid"));
        Daemon::spawn(self.dir, self.db, extra)
    }
}

impl Daemon {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        Self::spawn(dir, db, extra)
    }

    /// Starts a daemon on the database folder `db`, which the caller owns (e.g. a mount point).
    pub fn start_on(db: &Path, extra: &[&str]) -> Self {
        let _ = std::fs::remove_file(db.join("osprey.pid"));
        Self::spawn(tempfile::tempdir().expect("tempdir"), db.to_owned(), extra)
    }

    fn spawn(dir: tempfile::TempDir, db: PathBuf, extra: &[&str]) -> Self {
        // One log per start, so a restart keeps the first daemon's log.
        let mut n = 0;
        let log = loop {
            let p = dir.path().join(format!("daemon.{n}.log"));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let logf = std::fs::File::create(&log).expect("log file");
        // The guests emulate their CPU: give the file-system workers time (a test of the
        // timeout itself sets its own).
        let mut defaults = Vec::new();
        if !extra
            .iter()
            .any(|a| a.starts_with("--enrichment_timeout_ms"))
        {
            defaults.push(format!(
                "--enrichment_timeout_ms={}",
                scaled(Duration::from_secs(3)).as_millis()
            ));
        }
        // Scheduled queries of the default config and the daemon's status lines go to the
        // test's own folder, never to the machine's /var/log/osquery.
        if !extra.iter().any(|a| a.starts_with("--logger_path")) {
            defaults.push(format!(
                "--logger_path={}",
                dir.path().join("osquery-log").display()
            ));
        }
        // The extension manager's socket too (the machine's /var/osquery is not the test's).
        if !extra.iter().any(|a| a.starts_with("--extensions_socket")) {
            defaults.push(format!(
                "--extensions_socket={}",
                dir.path().join("osquery.em").display()
            ));
        }
        let child = Command::new(osprey_bin())
            .arg("daemon")
            .arg(format!("--database_path={}", db.display()))
            .args(&defaults)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup"))
            .stderr(logf)
            .spawn()
            .expect("spawn osprey daemon");
        let mut d = Self {
            child: Some(child),
            db,
            _dir: dir,
            log,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + scaled(Duration::from_secs(60));
        let pidfile = self.db.join("osprey.pid");
        loop {
            if pidfile.exists() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "osprey daemon exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready within {:?}:\n{}",
                scaled(Duration::from_secs(60)),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The extension manager's socket of this daemon (unless the test chose another).
    pub fn extensions_socket(&self) -> PathBuf {
        self._dir.path().join("osquery.em")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `osprey query --json` against this daemon's database.
    pub fn query_raw(&self, sql: &str, extra: &[&str]) -> Output {
        query_raw_at(&self.db, sql, extra)
    }

    pub fn query(&self, sql: &str) -> Vec<Map<String, Value>> {
        query_at(&self.db, sql)
    }

    /// Polls `sql` until it returns at least `n` rows (the writer batches for a few ms).
    pub fn wait_rows(&self, sql: &str, n: usize) -> Vec<Map<String, Value>> {
        let deadline = Instant::now() + scaled(Duration::from_secs(20));
        loop {
            let rows = self.query(sql);
            if rows.len() >= n || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then expect a clean exit 0.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill with a pid we own and a valid signal number.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().expect("wait");
        let log = self.log();
        assert!(status.success(), "daemon exited with {status}:\n{log}");
        log
    }
}

impl Daemon {
    /// SIGKILL, no shutdown at all (no final flush, no final counters); waits for the exit.
    pub fn kill9(mut self) -> Stopped {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill with a pid we own and a valid signal number.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "daemon exited on its own before the kill: {status}\n{}",
            self.log()
        );
        let log = self.log();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"));
        Stopped {
            db: self.db.clone(),
            dir,
            log,
        }
    }

    /// SIGTERM, expect a clean exit 0, and keep the database.
    pub fn stop_keep(mut self) -> Stopped {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill with a pid we own and a valid signal number.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().expect("wait");
        let log = self.log();
        assert!(status.success(), "daemon exited with {status}:\n{log}");
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"));
        Stopped {
            db: self.db.clone(),
            dir,
            log,
        }
    }

    /// True while the daemon process has not exited.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

/// A command started by a test and killed (by pid) when dropped, e.g. a load generator.
pub struct Background(Child);

impl Background {
    /// `sh -c script`, with stdout and stderr discarded.
    pub fn sh(script: &str) -> Self {
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        Self(child)
    }

    pub fn stop(self) {}
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `osprey query` against the database at `db`, with or without a daemon running on it.
pub fn query_raw_at(db: &Path, sql: &str, extra: &[&str]) -> Output {
    Command::new(osprey_bin())
        .arg("query")
        .arg(format!("--database_path={}", db.display()))
        .args(extra)
        .arg(sql)
        .output()
        .expect("run osprey query")
}

/// `osprey query --json` against the database at `db`; panics when the query fails.
pub fn query_at(db: &Path, sql: &str) -> Vec<Map<String, Value>> {
    let out = query_raw_at(db, sql, &["--json"]);
    assert!(
        out.status.success(),
        "query failed: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("query printed JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| r.as_object().expect("objects").clone())
        .collect()
}

/// A marker unique to this test run.
pub fn marker(tag: &str) -> String {
    format!(
        "osprey-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

/// The string value of a JSON row's column (osquery prints every value as text).
pub fn s<'a>(row: &'a Map<String, Value>, col: &str) -> &'a str {
    row.get(col)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no column {col} in {row:?}"))
}

/// The Python of the venv `cargo xtask setup` makes with the osquery SDK (`.tools/pyenv`).
/// Missing is a failure, never a skip.
pub fn osquery_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/pyenv/bin/python3");
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask setup` (it installs the osquery Python SDK)",
        p.display()
    );
    p
}
