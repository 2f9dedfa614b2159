//! `--extensions_autoload`: the executables a file lists (one path a line; blank lines and
//! `#` comments skipped) are started with `--socket --timeout --interval`, as osquery starts
//! them, and started again when they exit (after 1, 2, 4 … up to 60 s). Each must be a
//! regular file owned by root, executable, and not writable by group or others; anything
//! else is refused with a status line and never run.

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::rt::Shutdown;

/// Why `path` may not be autoloaded, if it may not.
pub fn refusal(path: &Path) -> Option<String> {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(e.to_string()),
    };
    if !m.is_file() {
        return Some("not a regular file".to_owned());
    }
    if m.uid() != 0 {
        return Some(format!("owned by uid {}, not root", m.uid()));
    }
    let mode = m.permissions().mode();
    if mode & 0o022 != 0 {
        return Some(format!(
            "mode {:o}: writable by group or others",
            mode & 0o7777
        ));
    }
    if mode & 0o100 == 0 {
        return Some(format!("mode {:o}: not executable", mode & 0o7777));
    }
    None
}

/// The paths of an autoload file's text.
pub fn parse(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect()
}

struct Running {
    path: PathBuf,
    child: Option<Child>,
    /// When to start it (again), and how long to wait after its next exit.
    start_at: Instant,
    backoff: Duration,
}

/// Starts and restarts the autoloaded extensions until shutdown, then stops them (SIGTERM,
/// then SIGKILL after 2 s).
pub async fn run(
    list: PathBuf,
    socket: PathBuf,
    timeout_s: u64,
    interval_s: u64,
    shutdown: Shutdown,
) {
    let Some(text) = crate::sys::procfs::read_text(&list) else {
        return; // no file: nothing to autoload (osquery's default path usually has none)
    };
    let mut all: Vec<Running> = Vec::new();
    for path in parse(&text) {
        match refusal(&path) {
            Some(why) => log::error!(
                "extensions_autoload {}: {} refused: {why}",
                list.display(),
                path.display()
            ),
            None => all.push(Running {
                path,
                child: None,
                start_at: Instant::now(),
                backoff: Duration::from_secs(1),
            }),
        }
    }
    if all.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while !shutdown.is_set() {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.wait() => break,
        }
        for r in &mut all {
            if let Some(c) = &mut r.child {
                match c.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => {
                        log::warn!(
                            "extension {} exited ({status}); starting it again in {} s",
                            r.path.display(),
                            r.backoff.as_secs()
                        );
                        r.child = None;
                        r.start_at = Instant::now() + r.backoff;
                        r.backoff = (r.backoff * 2).min(Duration::from_secs(60));
                    }
                    Err(e) => log::warn!("extension {}: {e}", r.path.display()),
                }
            }
            if r.child.is_none() && Instant::now() >= r.start_at {
                match Command::new(&r.path)
                    .arg("--socket")
                    .arg(&socket)
                    .args(["--timeout", &timeout_s.to_string()])
                    .args(["--interval", &interval_s.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                {
                    Ok(c) => {
                        log::info!("extension {} started (pid {})", r.path.display(), c.id());
                        r.child = Some(c);
                    }
                    Err(e) => {
                        log::error!("extension {}: cannot start: {e}", r.path.display());
                        r.start_at = Instant::now() + r.backoff;
                        r.backoff = (r.backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }
    }
    for r in &mut all {
        if let Some(c) = &mut r.child {
            crate::sys::terminate(c, Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_blanks() {
        assert_eq!(
            parse("# extensions\n/opt/a.ext\n\n  /opt/b.ext  \n#/opt/c.ext\n"),
            [PathBuf::from("/opt/a.ext"), PathBuf::from("/opt/b.ext")]
        );
    }

    #[test]
    fn only_root_owned_executables_no_one_else_may_write_are_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ext");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        let set =
            |mode| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        set(0o644);
        let root = rustix::process::geteuid().is_root();
        let want_mode = |m: &str| {
            let r = refusal(&p).unwrap();
            if root {
                assert!(r.contains(m), "{r}");
            } else {
                assert!(r.contains("not root"), "{r}");
            }
        };
        want_mode("not executable");
        set(0o775);
        want_mode("writable by group or others");
        set(0o757);
        want_mode("writable by group or others");
        set(0o755);
        assert_eq!(refusal(&p).is_none(), root);
        assert!(refusal(dir.path()).unwrap().contains("not a regular file"));
        assert!(refusal(&dir.path().join("none")).is_some());
    }
}
