//! `cargo xtask run [-- ARGS]`: starts `osprey daemon` with the embedded default configuration
//! and the default data folder (unless one is already running on it), runs `osprey ARGS`
//! (the shell when ARGS is empty), then stops the daemon it started.
//!
//! `cargo xtask run -- daemon [FLAGS]` runs the daemon in the foreground instead.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::root;

/// The default data folder, as in the flag registry's default for `--database_path`.
const DEFAULT_DB: &str = "/var/lib/osprey/osprey.db";

fn osprey() -> PathBuf {
    root().join("target/release/osprey")
}

fn database_path(args: &[String]) -> PathBuf {
    args.iter()
        .zip(args.iter().skip(1).map(Some).chain(std::iter::once(None)))
        .find_map(|(a, next)| {
            a.strip_prefix("--database_path=")
                .map(PathBuf::from)
                .or_else(|| {
                    (a == "--database_path")
                        .then(|| next.map(PathBuf::from))
                        .flatten()
                })
        })
        .or_else(|| std::env::var_os("OSPREY_DATABASE_PATH").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB))
}

/// A daemon is running on `db` if its pidfile names a live osprey process.
fn running_daemon(db: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(db.join("osprey.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "osprey").then_some(pid)
}

pub fn run(args: &[String]) -> Result<()> {
    let bin = osprey();
    let args: Vec<String> = if args.is_empty() {
        vec!["shell".into()]
    } else {
        args.to_vec()
    };
    if args[0] == "daemon" {
        let status = Command::new(&bin)
            .args(&args)
            .status()
            .context("starting osprey daemon")?;
        if !status.success() {
            bail!("osprey daemon exited with {status}");
        }
        return Ok(());
    }
    let db = database_path(&args);
    let mut started = None;
    if let Some(pid) = running_daemon(&db) {
        eprintln!(
            "xtask run: using the osprey daemon already running (pid {pid}) on {}",
            db.display()
        );
    } else {
        std::fs::create_dir_all(&db).with_context(|| format!("creating {}", db.display()))?;
        let log_path = db.with_extension("log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        eprintln!(
            "xtask run: starting osprey daemon on {} (log: {})",
            db.display(),
            log_path.display()
        );
        let mut child = Command::new(&bin)
            .arg("daemon")
            .arg(format!("--database_path={}", db.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting osprey daemon")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if running_daemon(&db) == Some(child.id()) {
                break;
            }
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("osprey daemon exited with {status} before it was ready:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "osprey daemon was not ready within 60 s; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        started = Some(child);
    }
    let mut cmd = Command::new(&bin);
    cmd.args(&args);
    if !args.iter().any(|a| a.starts_with("--database_path")) {
        cmd.arg(format!("--database_path={}", db.display()));
    }
    let status = cmd.status().context("running osprey");
    if let Some(mut child) = started {
        // SIGTERM, so the daemon flushes and exits 0.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    let status = status?;
    if !status.success() {
        bail!("osprey {} exited with {status}", args[0]);
    }
    Ok(())
}
