//! The process source without eBPF (`--event_source=fallback`, or `auto` where the kernel
//! programs cannot load): the kernel's proc connector (`sys::proc_connector`) says which
//! process forked, exec'd or exited and when; everything else is read from `/proc/<pid>`
//! right away (path, command line, working directory, ids, parent, mount namespace, start
//! time). A process already gone by then (or one that exec'd again) cannot be read: its row
//! has what the kernel said and `partial` = 1. At start, the processes already running are
//! `snapshot` rows, as with eBPF. Messages the connector lost (its socket buffer overflowed)
//! are counted (`event_drops` reason `queue_overflow`).

use std::{path::Path, sync::Arc, time::Duration};

use crate::{
    events::{ProcessEvent, ProcessSyscall},
    pipeline::{Event, Queue},
    rt::{Shutdown, counters::PublisherCounters},
    sys::{
        Clock,
        proc_connector::{ProcConnector, ProcEvent},
        procfs::{read_link, read_text},
    },
};

const PARENTS_MAX: usize = 65536;

/// The hook name `osquery_events` shows for this source.
pub const HOOK: &str = "proc_connector";

/// What `/proc/<pid>` says of a process; None when it is gone.
fn read_process(pid: u32, clock: &Clock) -> Option<ProcessEvent> {
    let dir = format!("/proc/{pid}");
    let status = read_text(Path::new(&format!("{dir}/status")))?;
    let field = |key: &str, i: usize| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .nth(i)?
            .parse()
            .ok()
    };
    let argv = std::fs::read(format!("{dir}/cmdline"))
        .map(|b| ProcessEvent::argv_from_nul_separated(&b))
        .unwrap_or_default();
    let link = |name: &str| read_link(Path::new(&format!("{dir}/{name}"))).unwrap_or_default();
    let mnt_ns = link("ns/mnt")
        .strip_prefix("mnt:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let auid = read_text(Path::new(&format!("{dir}/loginuid")))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX);
    // Field 22 of stat: the start, in clock ticks since boot (after the `(comm)` field,
    // which may hold spaces).
    let start_ticks: u64 = read_text(Path::new(&format!("{dir}/stat")))
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(19)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    Some(ProcessEvent {
        pid,
        tid: pid,
        parent: field("PPid:", 0).unwrap_or(0),
        uid: field("Uid:", 0)?,
        euid: field("Uid:", 1)?,
        gid: field("Gid:", 0)?,
        egid: field("Gid:", 1)?,
        auid,
        path: link("exe"),
        argv,
        cwd: link("cwd"),
        mnt_ns,
        start_ns: if start_ticks == 0 {
            0
        } else {
            clock.wall_ns(start_ticks.saturating_mul(1_000_000_000) / ticks)
        },
        ..Default::default()
    })
}

/// The row of one connector event; None for a thread's fork or exit (not a process's).
pub fn event_of(ev: ProcEvent, clock: &Clock) -> Option<ProcessEvent> {
    let (ktime, syscall, pid) = match ev {
        ProcEvent::Fork {
            ktime_ns,
            child_pid,
            child_tgid,
            ..
        } => {
            if child_pid != child_tgid {
                return None;
            }
            (ktime_ns, ProcessSyscall::Fork, child_pid)
        }
        ProcEvent::Exec { ktime_ns, tgid, .. } => (ktime_ns, ProcessSyscall::Execve, tgid),
        ProcEvent::Exit {
            ktime_ns,
            pid,
            tgid,
            ..
        } => {
            if pid != tgid {
                return None;
            }
            (ktime_ns, ProcessSyscall::Exit, pid)
        }
    };
    let mut e = read_process(pid, clock).unwrap_or_else(|| ProcessEvent {
        pid,
        tid: pid,
        uid: u32::MAX,
        gid: u32::MAX,
        euid: u32::MAX,
        egid: u32::MAX,
        auid: u32::MAX,
        partial: true,
        ..Default::default()
    });
    match ev {
        ProcEvent::Fork { parent_tgid, .. } => {
            e.parent = parent_tgid;
            // The child runs its parent's image until it execs: the subscriber fills it in.
            e.path.clear();
            e.argv.clear();
            e.cwd.clear();
        }
        ProcEvent::Exit { status, .. } => {
            e.exit_code = Some(status);
            // The subscriber gives an exit its exec's path and command line.
            e.path.clear();
            e.argv.clear();
            e.cwd.clear();
        }
        ProcEvent::Exec { .. } => {}
    }
    e.time_ns = clock.wall_ns(ktime);
    e.uptime = ktime / 1_000_000_000;
    e.syscall = Some(syscall);
    Some(e)
}

/// The processes running now, as `snapshot` rows.
pub fn snapshot(clock: &Clock) -> Vec<ProcessEvent> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let now = crate::sys::monotonic_ns();
    pids.into_iter()
        .filter_map(|pid| read_process(pid, clock))
        .map(|mut e| {
            e.syscall = Some(ProcessSyscall::Snapshot);
            e.time_ns = clock.wall_ns(now);
            e.uptime = now / 1_000_000_000;
            e
        })
        .collect()
}

/// Queues the snapshot, then reads the connector until `shutdown`.
pub fn run(
    conn: ProcConnector,
    queue: Queue,
    counters: Arc<PublisherCounters>,
    shutdown: Shutdown,
) {
    let clock = Clock::now();
    let snap = snapshot(&clock);
    counters.events.add(snap.len() as u64);
    for e in snap {
        if !queue.push(Event::Process(e)) {
            return;
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    // pid -> parent, from fork events: a process gone before /proc was read keeps its
    // parent. Bounded; cleared (and re-learned) when full.
    let mut parents: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    while !shutdown.is_set() {
        let read = match conn.read(Duration::from_millis(200), &mut buf) {
            Ok(r) => r,
            Err(e) => {
                counters.decode_errors.add(1);
                log::debug!("proc connector: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if read.lost {
            counters.source_overflow.add(1);
        }
        counters.decode_errors.add(read.bad);
        for ev in read.events {
            counters.events.add(1);
            let Some(mut e) = event_of(ev, &clock) else {
                continue;
            };
            match e.syscall {
                Some(ProcessSyscall::Fork) => {
                    if parents.len() >= PARENTS_MAX {
                        parents.clear();
                    }
                    parents.insert(e.pid, e.parent);
                }
                Some(ProcessSyscall::Exit) => {
                    if let Some(p) = parents.remove(&e.pid)
                        && e.partial
                    {
                        e.parent = p;
                    }
                }
                _ => {
                    if e.partial
                        && let Some(p) = parents.get(&e.pid)
                    {
                        e.parent = *p;
                    }
                }
            }
            if !queue.push(Event::Process(e)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_reads_as_proc_says_and_a_gone_one_is_partial() {
        let clock = Clock::now();
        let me = std::process::id();
        let e = event_of(
            ProcEvent::Exec {
                ktime_ns: crate::sys::monotonic_ns(),
                pid: me,
                tgid: me,
            },
            &clock,
        )
        .unwrap();
        assert_eq!(e.syscall, Some(ProcessSyscall::Execve));
        assert_eq!(e.pid, me);
        assert_eq!(e.parent, std::os::unix::process::parent_id());
        assert_eq!(
            e.path,
            std::env::current_exe().unwrap().display().to_string()
        );
        assert_eq!(e.argv, std::env::args().collect::<Vec<_>>());
        assert_eq!(e.uid, rustix::process::getuid().as_raw());
        assert!(!e.partial);
        let now = crate::sys::now_ns();
        assert!(e.start_ns > 0 && e.start_ns <= now, "{}", e.start_ns);
        // A pid that is not there: what the kernel said, flagged.
        let gone = event_of(
            ProcEvent::Exit {
                ktime_ns: 5_000_000_000,
                pid: u32::MAX - 1,
                tgid: u32::MAX - 1,
                status: 256,
            },
            &clock,
        )
        .unwrap();
        assert!(gone.partial);
        assert_eq!(gone.exit_code, Some(256));
        assert_eq!(gone.uptime, 5);
        // A thread's exit is not a process's.
        assert!(
            event_of(
                ProcEvent::Exit {
                    ktime_ns: 1,
                    pid: me + 1,
                    tgid: me,
                    status: 0
                },
                &clock
            )
            .is_none()
        );
    }
}
