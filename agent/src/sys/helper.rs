//! Helper processes that answer JSON requests, one per line on stdin, with one JSON line on
//! stdout: the file-system workers ([`super::fsguard`]) and the query worker
//! (`watchdog`). The caller owns the process: it waits for a reply as long as it
//! likes, measures the process ([`Helper::resident_bytes`], [`Helper::cpu_ms`]) and kills it.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    time::Duration,
};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::Value;

/// One helper process: requests go to its stdin, replies come from a reader thread.
pub struct Helper {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<Value>,
}

/// What waiting for a reply gave.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Value(Value),
    /// Nothing yet.
    Pending,
    /// The helper closed its stdout (it exited or crashed).
    Gone,
}

impl Helper {
    /// Starts `exe args…` with piped stdin and stdout (stderr is the caller's); `name` names
    /// its reader thread.
    pub fn start(exe: &Path, args: &[String], name: &str) -> std::io::Result<Self> {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("no pipes to the helper"));
        };
        let (tx, replies) = crossbeam_channel::bounded(1);
        let reader = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    let v = serde_json::from_str(&line).unwrap_or(Value::Null);
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(Self {
            child,
            stdin,
            replies,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one request line.
    pub fn send(&mut self, request: &Value) -> std::io::Result<()> {
        let mut line = request.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.flush()
    }

    /// The next reply, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Reply {
        match self.replies.recv_timeout(timeout) {
            Ok(v) => Reply::Value(v),
            Err(RecvTimeoutError::Timeout) => Reply::Pending,
            Err(RecvTimeoutError::Disconnected) => Reply::Gone,
        }
    }

    /// Resident memory of the helper now, in bytes (None once it is gone).
    pub fn resident_bytes(&self) -> Option<u64> {
        super::procfs::process_resident_bytes(self.pid())
    }

    /// CPU time the helper has used, user + system, in milliseconds (None once it is gone).
    pub fn cpu_ms(&self) -> Option<u64> {
        super::procfs::process_cpu_ms(self.pid()).map(|(u, s)| u + s)
    }

    /// Kills the helper; a thread reaps it whenever it can die (one stuck in an
    /// uninterruptible wait dies when that wait ends) and then calls `reaped` with its pid,
    /// so a pid is forgotten only once it can no longer be reused for another process.
    pub fn kill(mut self, reaped: impl FnOnce(u32) + Send + 'static) {
        let _ = self.child.kill();
        let pid = self.child.id();
        let mut child = self.child;
        let spawned = std::thread::Builder::new()
            .name("helper-reap".into())
            .spawn(move || {
                let _ = child.wait();
                reaped(pid);
            });
        if spawned.is_err() {
            log::warn!("cannot start a thread to reap helper {pid}");
        }
    }

    /// Kills the helper now unless it has already ended, reaps it, and says how it ended.
    pub fn end(self) -> String {
        self.reap(Duration::ZERO)
    }

    /// How the helper ended (for a status line): waits up to `grace` for it to exit (one that
    /// closed its stdout is usually exiting), then kills and reaps it.
    pub fn reap(mut self, grace: Duration) -> String {
        let until = std::time::Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return "killed".into();
                }
            }
        }
    }
}

/// In a helper: exits once the process that started it is gone (it then has another parent).
/// Not `PR_SET_PDEATHSIG`, which fires when the starting *thread* ends, and the daemon's
/// control-plane threads come and go.
pub fn exit_with_parent() -> std::io::Result<()> {
    let parent = std::os::unix::process::parent_id();
    std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(0);
                }
            }
        })?;
    Ok(())
}

/// The helper's side: answers each JSON line of stdin with `handler`'s JSON line on stdout,
/// until stdin closes. A line that is not JSON gets `handler(null)`.
pub fn serve(mut handler: impl FnMut(&Value) -> Value) -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let req: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let mut reply = handler(&req).to_string();
        reply.push('\n');
        out.write_all(reply.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_answers_is_measured_and_ends() {
        let script = r#"while read -r l; do [ "$l" = '"quit"' ] && exit 3; echo "$l"; done"#;
        let mut h = Helper::start(
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            "test-helper",
        )
        .unwrap();
        h.send(&7.into()).unwrap();
        assert_eq!(h.recv(Duration::from_secs(5)), Reply::Value(7.into()));
        assert_eq!(h.recv(Duration::from_millis(50)), Reply::Pending);
        assert!(h.resident_bytes().unwrap() > 0);
        assert!(h.cpu_ms().is_some());
        h.send(&"quit".into()).unwrap();
        assert_eq!(h.recv(Duration::from_secs(5)), Reply::Gone);
        assert_eq!(h.reap(Duration::from_secs(5)), "exit status: 3");
        // One that does not end is killed.
        let h = Helper::start(Path::new("/bin/sleep"), &["60".into()], "test-helper").unwrap();
        assert_eq!(h.reap(Duration::from_millis(50)), "killed");
    }
}
