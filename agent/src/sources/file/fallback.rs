//! The file source without eBPF (`--event_source=fallback`, or `auto` where the kernel
//! programs cannot load): fanotify filesystem marks (`sys::fanotify`) on the file systems of
//! the watched folders (each prefix's nearest existing folder, re-planned every second and
//! on every config change, so folders that appear later are covered), feeding the same
//! subscriber, categories, excludes and hashes as the kernel source.
//!
//! What fanotify cannot say is left empty and flagged: `syscall` is empty and `result` 0
//! (the change happened; the call is not known), `fd` -1; the actor's uid and gid are read
//! from `/proc/<pid>` when the record is read, and a process that is already gone leaves them
//! unknown (NULL) with `enriched` = 0. A rename's MOVED_FROM and MOVED_TO rows (one record
//! each, the second right after the first, by the same process) share a `transaction_id`. A queue overflow of the kernel's
//! fanotify group is counted (`event_drops` reason `queue_overflow`).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    events::FileEvent,
    fim::FimState,
    pipeline::{Event, Queue},
    rt::{Shutdown, Watch, counters::PublisherCounters},
    sys::{Clock, fanotify::Fanotify, procfs::read_text},
};

/// The hook name `osquery_events` shows for this source.
pub const HOOK: &str = "fanotify";

/// The rows one fanotify record stands for, in the order the changes happen (fanotify
/// merges changes of one entry by one process that are still queued into one record).
pub fn actions(mask: u64) -> Vec<(&'static str, &'static str)> {
    let dir = mask & libc::FAN_ONDIR != 0;
    let mut out = Vec::new();
    let bits: [(u64, &str, &str); 7] = [
        (
            libc::FAN_CREATE,
            "CREATED",
            if dir { "mkdir" } else { "create" },
        ),
        (libc::FAN_MOVED_FROM, "MOVED_FROM", "rename"),
        (libc::FAN_MOVED_TO, "MOVED_TO", "rename"),
        (libc::FAN_MODIFY, "UPDATED", "write"),
        (libc::FAN_ATTRIB, "ATTRIBUTES_MODIFIED", "attrib"),
        (libc::FAN_CLOSE_WRITE, "UPDATED", "close_write"),
        (
            libc::FAN_DELETE,
            "DELETED",
            if dir { "rmdir" } else { "unlink" },
        ),
    ];
    for (bit, action, op) in bits {
        if mask & bit != 0 {
            out.push((action, op));
        }
    }
    out
}

/// Whether `path` is a watched prefix's folder or below it.
fn under(path: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| {
        let dir = p.trim_end_matches('/');
        path == dir || dir.is_empty() || path.starts_with(&format!("{dir}/"))
    })
}

/// The nearest folder of `prefix` that exists (the prefix itself, or an ancestor).
fn nearest_existing(prefix: &str) -> PathBuf {
    let mut p = PathBuf::from(prefix);
    while !p.is_dir() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

/// (uid, gid) of a live process, from `/proc/<pid>/status`.
fn ids(pid: i32) -> Option<(u32, u32)> {
    let s = read_text(Path::new(&format!("/proc/{pid}/status")))?;
    let first = |key: &str| -> Option<u32> {
        s.lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((first("Uid:")?, first("Gid:")?))
}

/// The marks in place and the prefixes they cover.
struct Marks {
    fan: Fanotify,
    marked: HashSet<PathBuf>,
    prefixes: Vec<String>,
    generation: u64,
    failed: HashSet<PathBuf>,
}

impl Marks {
    fn plan(&mut self, fim: &FimState) {
        self.prefixes = fim.kernel_prefixes();
        for p in &self.prefixes {
            let at = nearest_existing(p);
            if self.marked.contains(&at) {
                continue;
            }
            match self.fan.mark_filesystem(&at) {
                Ok(_) => {
                    self.failed.remove(&at);
                    self.marked.insert(at);
                }
                Err(e) => {
                    if self.failed.insert(at) {
                        log::warn!("file events (fanotify): {e}; changes there are not seen");
                    }
                }
            }
        }
    }
}

/// Reads fanotify until `shutdown`, turning each watched change into file events.
pub fn run(
    fan: Fanotify,
    queue: Queue,
    counters: Arc<PublisherCounters>,
    fim: Watch<FimState>,
    shutdown: Shutdown,
) {
    let clock = Clock::now();
    let mut marks = Marks {
        fan,
        marked: HashSet::new(),
        prefixes: Vec::new(),
        generation: fim.generation(),
        failed: HashSet::new(),
    };
    marks.plan(&fim.current());
    let mut planned = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    // The last MOVED_FROM (pid, transaction), for its MOVED_TO.
    let mut moving: Option<(u32, u64)> = None;
    let mut next_transaction = 1u64;
    while !shutdown.is_set() {
        if fim.generation() != marks.generation || planned.elapsed() >= Duration::from_secs(1) {
            marks.generation = fim.generation();
            marks.plan(&fim.current());
            planned = Instant::now();
        }
        let records = match marks.fan.read(Duration::from_millis(200), &mut buf) {
            Ok(r) => r,
            Err(e) => {
                counters.decode_errors.add(1);
                log::debug!("fanotify read: {e}");
                continue;
            }
        };
        for r in records {
            counters.events.add(1);
            if r.overflow() {
                counters.source_overflow.add(1);
                continue;
            }
            let folder = match marks.fan.folder(&r.dir) {
                Ok(f) => f,
                Err(e) => {
                    // The folder is gone (or was never resolvable): nothing to name the row
                    // by.
                    counters.decode_errors.add(1);
                    log::debug!("fanotify: a record's folder: {e}");
                    continue;
                }
            };
            let name = String::from_utf8_lossy(&r.name);
            let path = if name.is_empty() || name == "." {
                folder.display().to_string()
            } else {
                folder.join(&*name).display().to_string()
            };
            let pid = u32::try_from(r.pid).unwrap_or(0);
            // Paired before filtering, so a rename out of (or into) the watched folders
            // never leaves a half pair behind.
            let mut transaction_id = 0;
            if r.mask & libc::FAN_MOVED_FROM != 0 {
                transaction_id = next_transaction;
                next_transaction += 1;
                moving = Some((pid, transaction_id));
            } else if r.mask & libc::FAN_MOVED_TO != 0 {
                transaction_id = match moving.take() {
                    Some((p, t)) if p == pid => t,
                    _ => 0,
                };
            }
            if !under(&path, &marks.prefixes) {
                continue;
            }
            let who = ids(r.pid);
            let now = clock.now_wall_ns();
            for (action, operation) in actions(r.mask) {
                let e = FileEvent {
                    transaction_id,
                    time_ns: now,
                    uptime: crate::sys::uptime_secs(),
                    action: action.into(),
                    operation: operation.into(),
                    target_path: path.clone(),
                    pid,
                    tid: pid,
                    process_uid: who.map_or(u32::MAX, |w| w.0),
                    process_gid: who.map_or(u32::MAX, |w| w.1),
                    arg_mode: u32::MAX,
                    arg_uid: u32::MAX,
                    arg_gid: u32::MAX,
                    fd: -1,
                    enrichment_missing: who.is_none(),
                    ..Default::default()
                };
                if !queue.push(Event::File(e)) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_records_become_rows_in_the_order_of_the_changes() {
        assert_eq!(
            actions(libc::FAN_CREATE | libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE),
            [
                ("CREATED", "create"),
                ("UPDATED", "write"),
                ("UPDATED", "close_write")
            ]
        );
        assert_eq!(
            actions(libc::FAN_DELETE | libc::FAN_ONDIR),
            [("DELETED", "rmdir")]
        );
        assert_eq!(
            actions(libc::FAN_ATTRIB),
            [("ATTRIBUTES_MODIFIED", "attrib")]
        );
        assert!(under("/tmp/x/a", &["/tmp/x/".into()]));
        assert!(under("/tmp/x", &["/tmp/x/".into()]));
        assert!(!under("/tmp/xy", &["/tmp/x/".into()]));
    }
}
