//! File-system calls that may never return (a hung FUSE or network mount), kept off the
//! storing path: each runs in a worker and the caller waits at most a timeout. A mount that
//! timed out is skipped (answered "no answer" at once) for a while, so a hung file system
//! delays only its own rows, by one timeout.
//!
//! The daemon's workers are helper processes (`osprey fs-worker`), not threads: a FUSE
//! request that its server has taken but never answers waits uninterruptibly, and a thread
//! stuck there would keep the whole daemon from exiting on SIGTERM. A stuck helper is killed
//! and replaced; it lingers on its own until its file system answers. Tests use threads.
//!
//! Requests and replies are JSON values, one per line; what they mean is the handler's
//! business (`fim::fsops`), so this module stays free of the layers above it.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::helper::{Helper, Reply};

/// How long a mount that timed out is skipped.
pub const HUNG_FOR: Duration = Duration::from_secs(30);
/// Most workers, stuck ones included.
pub const MAX_WORKERS: usize = 16;

/// Answers one request (runs in the worker).
pub type Handler = fn(&Value) -> Value;

/// Where requests run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Worker threads calling the handler (tests; a stuck thread cannot be ended).
    Threads(Handler),
    /// Helper processes: `exe args…` serving requests on stdin/stdout with [`serve`].
    Process { exe: PathBuf, args: Vec<String> },
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct FsGuard {
    inner: Arc<Inner>,
}

struct Inner {
    timeout: Duration,
    backend: Backend,
    jobs: Sender<Job>,
    queue: Receiver<Job>,
    workers: AtomicUsize,
    timeouts: AtomicU64,
    /// Idle helper processes.
    idle: Mutex<Vec<Helper>>,
    /// Pids of every helper started (the agent's own file activity, like its own pid).
    helper_pids: Mutex<Vec<u32>>,
    /// Mount points that timed out, and until when they are skipped.
    hung: Mutex<Vec<(PathBuf, Instant)>>,
    mounts: Mutex<(Option<Instant>, Vec<PathBuf>)>,
}

impl std::fmt::Debug for FsGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsGuard")
            .field("timeout", &self.inner.timeout)
            .field("timeouts", &self.timeouts())
            .finish_non_exhaustive()
    }
}

impl FsGuard {
    /// Each call waits at most `timeout`; `workers` threads to start with (thread backend).
    pub fn new(backend: Backend, workers: usize, timeout: Duration) -> Self {
        let (jobs, queue) = crossbeam_channel::unbounded();
        let threads = matches!(backend, Backend::Threads(_));
        let g = Self {
            inner: Arc::new(Inner {
                timeout,
                backend,
                jobs,
                queue,
                workers: AtomicUsize::new(0),
                timeouts: AtomicU64::new(0),
                idle: Mutex::default(),
                helper_pids: Mutex::default(),
                hung: Mutex::default(),
                mounts: Mutex::default(),
            }),
        };
        if threads {
            for _ in 0..workers.max(1) {
                g.spawn_thread();
            }
        }
        g
    }

    /// Helper processes running this executable's `fs-worker` subcommand.
    pub fn helpers(timeout: Duration) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        Ok(Self::new(
            Backend::Process {
                exe,
                args: vec!["fs-worker".into()],
            },
            0,
            timeout,
        ))
    }

    fn spawn_thread(&self) {
        let n = self.inner.workers.fetch_add(1, Ordering::SeqCst);
        if n >= MAX_WORKERS {
            self.inner.workers.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let queue = self.inner.queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fs-{n}"))
            .spawn(move || {
                for job in queue.iter() {
                    job();
                }
            });
        if let Err(e) = spawned {
            self.inner.workers.fetch_sub(1, Ordering::SeqCst);
            log::warn!("cannot start a file-system worker: {e}");
        }
    }

    /// Whether `pid` is one of this guard's helper processes: their file activity is the
    /// agent's own, and not reported (as the kernel filters the daemon's own pid).
    pub fn is_helper(&self, pid: u32) -> bool {
        lock(&self.inner.helper_pids).contains(&pid)
    }

    /// Calls that did not answer in time, or were skipped because their mount hangs.
    pub fn timeouts(&self) -> u64 {
        self.inner.timeouts.load(Ordering::Relaxed)
    }

    /// Sends `request`, which touches the file system at `path`, to a worker. None when it
    /// did not answer within the timeout, `path`'s mount timed out recently, or no worker
    /// could be had.
    pub fn call(&self, path: &Path, request: Value) -> Option<Value> {
        let mount = self.mount_of(path);
        if self.is_hung(&mount) {
            self.inner.timeouts.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let answer = match &self.inner.backend {
            Backend::Threads(handler) => self.call_thread(*handler, request),
            Backend::Process { .. } => self.call_helper(&request),
        };
        match answer {
            Answer::Reply(v) => Some(v),
            Answer::Unavailable => None,
            Answer::TimedOut => {
                self.inner.timeouts.fetch_add(1, Ordering::Relaxed);
                // The table may predate the mount: look again before blaming one.
                lock(&self.inner.mounts).0 = None;
                let mount = self.mount_of(path);
                log::warn!(
                    "the file system at {} did not answer within {:?}: its rows are stored \
                     without metadata for {:?}",
                    mount.display(),
                    self.inner.timeout,
                    HUNG_FOR
                );
                lock(&self.inner.hung).push((mount, Instant::now() + HUNG_FOR));
                None
            }
        }
    }

    fn call_thread(&self, handler: Handler, request: Value) -> Answer {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(handler(&request));
        });
        if self.inner.jobs.send(job).is_err() {
            return Answer::Unavailable;
        }
        match rx.recv_timeout(self.inner.timeout) {
            Ok(v) => Answer::Reply(v),
            Err(_) => {
                // The worker is probably stuck: keep the pool's capacity.
                self.spawn_thread();
                Answer::TimedOut
            }
        }
    }

    fn call_helper(&self, request: &Value) -> Answer {
        let helper = lock(&self.inner.idle).pop();
        let mut helper = match helper {
            Some(h) => h,
            None => match self.start_helper() {
                Some(h) => h,
                None => return Answer::Unavailable,
            },
        };
        if helper.send(request).is_err() {
            self.discard(helper);
            return Answer::Unavailable;
        }
        match helper.recv(self.inner.timeout) {
            Reply::Value(v) => {
                lock(&self.inner.idle).push(helper);
                Answer::Reply(v)
            }
            Reply::Pending => {
                self.discard(helper);
                Answer::TimedOut
            }
            Reply::Gone => {
                self.discard(helper);
                Answer::Unavailable
            }
        }
    }

    fn start_helper(&self) -> Option<Helper> {
        let Backend::Process { exe, args } = &self.inner.backend else {
            return None;
        };
        match Helper::start(exe, args, "fs-helper-reply") {
            Ok(h) => {
                lock(&self.inner.helper_pids).push(h.pid());
                Some(h)
            }
            Err(e) => {
                log::warn!("cannot start a file-system helper ({}): {e}", exe.display());
                None
            }
        }
    }

    fn is_hung(&self, mount: &Path) -> bool {
        let mut hung = lock(&self.inner.hung);
        let now = Instant::now();
        hung.retain(|(_, until)| *until > now);
        hung.iter().any(|(m, _)| m == mount)
    }

    /// The mount point `path` is under (from /proc/self/mounts, read at most once a second:
    /// procfs answers even when a mounted file system does not).
    fn mount_of(&self, path: &Path) -> PathBuf {
        let mut m = lock(&self.inner.mounts);
        if m.0.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            let text = super::procfs::read_text(Path::new("/proc/self/mounts")).unwrap_or_default();
            m.1 = parse_mount_points(&text);
            m.0 = Some(Instant::now());
        }
        longest_mount(&m.1, path)
    }
}

enum Answer {
    Reply(Value),
    TimedOut,
    Unavailable,
}

impl FsGuard {
    /// Kills a helper that is stuck or broken; its pid is forgotten once it is reaped (a
    /// helper stuck in an uninterruptible FUSE wait dies when its file system answers), so
    /// a reused pid is never taken for a helper.
    fn discard(&self, h: Helper) {
        let inner = self.inner.clone();
        h.kill(move |pid| lock(&inner.helper_pids).retain(|p| *p != pid));
    }
}

/// The helper's side: answers each JSON line of stdin with `handler`'s JSON line on stdout,
/// until stdin closes. A line that is not JSON gets `null`.
pub fn serve(handler: Handler) -> std::io::Result<()> {
    super::helper::serve(handler)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The mount points of a mounts(5) text (octal escapes such as `\040` decoded).
pub fn parse_mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| PathBuf::from(super::mountinfo::unescape(p)))
        .collect()
}

/// The longest of `mounts` that contains `path` (component-wise), or `/`.
pub fn longest_mount(mounts: &[PathBuf], path: &Path) -> PathBuf {
    mounts
        .iter()
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.components().count())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_parse_and_the_longest_wins() {
        let text =
            "/dev/sda1 / ext4 rw 0 0\nfuse /tmp/a\\040b fuse rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n";
        let m = parse_mount_points(text);
        assert_eq!(m, [PathBuf::from("/"), "/tmp/a b".into(), "/tmp".into()]);
        assert_eq!(
            longest_mount(&m, Path::new("/tmp/a b/c")),
            Path::new("/tmp/a b")
        );
        assert_eq!(longest_mount(&m, Path::new("/tmp/a bc")), Path::new("/tmp"));
        assert_eq!(longest_mount(&m, Path::new("/etc/x")), Path::new("/"));
    }

    /// Echoes, except for `"hang"`, which never answers.
    fn handler(v: &Value) -> Value {
        if v == "hang" {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        v.clone()
    }

    #[test]
    fn a_call_that_never_answers_times_out_and_its_mount_is_skipped() {
        let g = FsGuard::new(Backend::Threads(handler), 1, Duration::from_millis(100));
        assert_eq!(g.call(Path::new("/x"), 7.into()), Some(7.into()));
        let started = Instant::now();
        assert_eq!(g.call(Path::new("/x"), "hang".into()), None);
        assert!(started.elapsed() >= Duration::from_millis(100));
        // The mount is skipped at once now, and counted.
        let started = Instant::now();
        assert_eq!(g.call(Path::new("/y"), 2.into()), None);
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(g.timeouts(), 2);
    }

    #[test]
    fn helper_processes_answer_and_a_stuck_one_is_replaced() {
        // `sh` as the helper: a line-echoing loop, and "hang" makes it sleep.
        let script =
            r#"while read -r l; do [ "$l" = '"hang"' ] && exec sleep 3600; echo "$l"; done"#;
        let g = FsGuard::new(
            Backend::Process {
                exe: "/bin/sh".into(),
                args: vec!["-c".into(), script.into()],
            },
            0,
            Duration::from_millis(500),
        );
        assert_eq!(g.call(Path::new("/x"), 5.into()), Some(5.into()));
        let first = lock(&g.inner.helper_pids).clone();
        assert_eq!(first.len(), 1);
        assert!(g.is_helper(first[0]) && !g.is_helper(std::process::id()));
        assert_eq!(g.call(Path::new("/x"), "hang".into()), None);
        assert_eq!(g.timeouts(), 1);
        // A new helper serves the next call once the mount is no longer skipped.
        lock(&g.inner.hung).clear();
        assert_eq!(g.call(Path::new("/x"), 6.into()), Some(6.into()));
    }
}
