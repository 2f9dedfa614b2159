//! The process publisher (kernel ring buffer -> [`ProcessEvent`]) and the `process_events`
//! subscriber.

use std::{collections::HashMap, sync::Arc};

use agent_common::EventKind;
use aya::maps::{MapData, RingBuf};

use crate::{
    events::{FileMeta, ProcessEvent, ProcessSyscall},
    fim::fsops::{self, Stat},
    pipeline::{Event, Queue, Subscriber},
    rt::supervise::Supervised,
    rt::{
        Shutdown,
        counters::{PublisherCounters, SubscriberCounters},
    },
    sys::{
        Clock,
        ebpf::{LoadOptions, decode::RawRecord},
        fsguard::FsGuard,
        procfs::read_link,
    },
};

mod fallback;
mod table;
pub use table::ProcessEventsTable;

pub const PUBLISHER: &str = "ebpf_process";
pub const TABLE: &str = "process_events";

/// What every process event takes from its record header: time, syscall, pid and tid.
fn from_header(
    h: &agent_common::RecordHeader,
    syscall: ProcessSyscall,
    clock: &Clock,
) -> ProcessEvent {
    ProcessEvent {
        time_ns: clock.wall_ns(h.ktime_ns),
        uptime: h.ktime_ns / 1_000_000_000,
        syscall: Some(syscall),
        pid: h.pid,
        tid: h.tid,
        ..Default::default()
    }
}

/// The process event of an exec, fork or exit record; None for records of other kinds.
pub fn to_event(raw: RawRecord, clock: &Clock) -> Option<ProcessEvent> {
    Some(match raw {
        RawRecord::File(_) | RawRecord::Fd(_) | RawRecord::Socket(_) => return None,
        RawRecord::ExecFailed(r) => ProcessEvent {
            parent: r.ppid,
            uid: r.uid,
            gid: r.gid,
            euid: r.euid,
            egid: r.egid,
            auid: r.auid,
            path: String::from_utf8_lossy(&r.path[..r.path_len as usize]).into_owned(),
            cgroup_id: r.cgroup_id,
            result: r.ret,
            ..from_header(&r.header, ProcessSyscall::Execve, clock)
        },
        RawRecord::Fork(r) => ProcessEvent {
            time_ns: clock.wall_ns(r.header.ktime_ns),
            uptime: r.header.ktime_ns / 1_000_000_000,
            syscall: Some(ProcessSyscall::Fork),
            pid: r.child_pid,
            tid: r.child_pid,
            parent: r.header.pid,
            uid: r.uid,
            gid: r.gid,
            euid: u32::MAX,
            egid: u32::MAX,
            auid: u32::MAX,
            ..Default::default()
        },
        RawRecord::Exec(r) => {
            let fileless = r.flags & agent_common::process::exec_flags::FILELESS != 0;
            let name = String::from_utf8_lossy(&r.path[..r.path_len as usize]).into_owned();
            // As /proc/<pid>/exe names an image without a file.
            let path = if fileless {
                format!("/{name} (deleted)")
            } else {
                name
            };
            let argv = ProcessEvent::argv_from_nul_separated(&r.args[..r.args_len as usize]);
            let env_len = (r.env_len as usize).min(r.env.len());
            let cwd_len = (r.cwd_len as usize).min(r.cwd.len());
            ProcessEvent {
                time_ns: clock.wall_ns(r.header.ktime_ns),
                uptime: r.header.ktime_ns / 1_000_000_000,
                syscall: Some(ProcessSyscall::Execve),
                pid: r.header.pid,
                tid: r.header.tid,
                parent: r.ppid,
                uid: r.uid,
                gid: r.gid,
                euid: r.euid,
                egid: r.egid,
                auid: r.auid,
                path,
                argv,
                args_truncated: r.flags & agent_common::process::exec_flags::ARGS_TRUNCATED != 0,
                cwd: String::from_utf8_lossy(&r.cwd[..cwd_len]).into_owned(),
                env: ProcessEvent::argv_from_nul_separated(&r.env[..env_len]),
                env_truncated: r.flags & agent_common::process::exec_flags::ENV_TRUNCATED != 0,
                cgroup_id: r.cgroup_id,
                mnt_ns: r.mnt_ns,
                start_ns: clock.wall_ns(r.start_ktime_ns),
                exit_code: None,
                file: None,
                result: 0,
                fileless,
                partial: false,
            }
        }
        RawRecord::Exit(r) => ProcessEvent {
            parent: r.ppid,
            uid: r.uid,
            gid: r.gid,
            euid: u32::MAX,
            egid: u32::MAX,
            auid: u32::MAX,
            start_ns: clock.wall_ns(r.start_ktime_ns),
            exit_code: Some(r.exit_code),
            ..from_header(&r.header, ProcessSyscall::Exit, clock)
        },
    })
}

/// The processes that were running at start-up (task iterator records), as `snapshot` rows
/// completed from /proc (path, argv, cwd); a process gone since keeps its kernel fields.
pub fn snapshot_events(
    tasks: &[agent_common::process::TaskRecord],
    clock: &Clock,
    now_mono_ns: u64,
) -> Vec<ProcessEvent> {
    tasks
        .iter()
        .map(|t| {
            let proc_dir = std::path::PathBuf::from(format!("/proc/{}", t.tgid));
            let link = |name: &str| read_link(&proc_dir.join(name)).unwrap_or_default();
            let argv = std::fs::read(proc_dir.join("cmdline"))
                .map(|b| ProcessEvent::argv_from_nul_separated(&b))
                .unwrap_or_default();
            ProcessEvent {
                time_ns: clock.wall_ns(now_mono_ns),
                uptime: now_mono_ns / 1_000_000_000,
                syscall: Some(ProcessSyscall::Snapshot),
                pid: t.tgid,
                tid: t.tgid,
                parent: t.ppid,
                uid: t.uid,
                gid: t.gid,
                euid: t.euid,
                egid: t.egid,
                auid: t.auid,
                path: link("exe"),
                argv,
                cwd: link("cwd"),
                mnt_ns: t.mnt_ns,
                start_ns: clock.wall_ns(t.start_ktime_ns),
                ..Default::default()
            }
        })
        .collect()
}

/// Queues the start-up snapshot, then reads the process ring buffer until `shutdown` and
/// drains what is left.
pub fn run_publisher(
    ring: RingBuf<MapData>,
    queue: Queue,
    counters: Arc<PublisherCounters>,
    shutdown: Shutdown,
    snapshot: Vec<ProcessEvent>,
) {
    let clock = Clock::now();
    counters.events.add(snapshot.len() as u64);
    for e in snapshot {
        if !queue.push(Event::Process(e)) {
            break;
        }
    }
    super::ring::run_ring_publisher(ring, queue, counters, shutdown, "process", |raw| {
        to_event(raw, &clock).map(|e| vec![Event::Process(e)])
    });
}

/// Fills `process_events`. Adds the executable's file metadata, and gives exit events the
/// path and command line of the exec they end.
#[derive(Debug)]
pub struct ProcessEventsSubscriber {
    counters: Arc<SubscriberCounters>,
    /// Executable metadata is read through it (a hung file system must not stop storing).
    fs: Option<FsGuard>,
    /// pid -> (path, argv) of its last exec; bounded.
    images: HashMap<u32, (String, Vec<String>)>,
    /// path -> (when it was read, its metadata): an exec storm of one binary reads it once a
    /// second, not once per exec.
    metas: HashMap<String, (u64, Option<FileMeta>)>,
}

const IMAGES_MAX: usize = 65536;
const METAS_MAX: usize = 4096;
const META_TTL_NS: u64 = 1_000_000_000;

impl ProcessEventsSubscriber {
    pub fn new(counters: Arc<SubscriberCounters>) -> Self {
        Self {
            counters,
            fs: None,
            images: HashMap::new(),
            metas: HashMap::new(),
        }
    }
}

/// The executable metadata `process_events` keeps, from what enrichment read.
fn file_meta(s: Stat) -> FileMeta {
    FileMeta {
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        atime: s.atime,
        mtime: s.mtime,
        ctime: s.ctime,
        btime: s.btime,
    }
}

impl ProcessEventsSubscriber {
    /// Reads executable metadata through `fs`.
    pub fn with_fs(mut self, fs: FsGuard) -> Self {
        self.fs = Some(fs);
        self
    }

    fn meta(&self, path: &str) -> Option<FileMeta> {
        match &self.fs {
            Some(fs) => fsops::stat(fs, std::path::Path::new(path), true)
                .flatten()
                .map(file_meta),
            None => std::fs::metadata(path)
                .ok()
                .map(|m| file_meta(Stat::of(&m))),
        }
    }
}

impl Subscriber for ProcessEventsSubscriber {
    fn table(&self) -> &'static str {
        TABLE
    }
    fn publisher(&self) -> &'static str {
        PUBLISHER
    }
    fn counters(&self) -> Arc<SubscriberCounters> {
        self.counters.clone()
    }
    fn transform(&mut self, ev: &Event) -> Option<(u64, Vec<u8>)> {
        let Event::Process(p) = ev else { return None };
        let mut p = p.clone();
        match p.syscall {
            Some(ProcessSyscall::Execve | ProcessSyscall::Snapshot) => {
                p.file = match self.metas.get(&p.path) {
                    Some((at, meta)) if p.time_ns.saturating_sub(*at) < META_TTL_NS => *meta,
                    _ => {
                        let meta = self.meta(&p.path);
                        if self.metas.len() >= METAS_MAX {
                            self.metas.clear();
                        }
                        self.metas.insert(p.path.clone(), (p.time_ns, meta));
                        meta
                    }
                };
                if self.images.len() >= IMAGES_MAX {
                    self.images.clear();
                }
                self.images.insert(p.pid, (p.path.clone(), p.argv.clone()));
            }
            Some(ProcessSyscall::Fork) => {
                // A child runs its parent's image until it execs.
                if let Some(image) = self.images.get(&p.parent).cloned() {
                    p.path = image.0.clone();
                    p.argv = image.1.clone();
                    if self.images.len() >= IMAGES_MAX {
                        self.images.clear();
                    }
                    self.images.insert(p.pid, image);
                }
            }
            Some(ProcessSyscall::Exit) => {
                if let Some((path, argv)) = self.images.remove(&p.pid) {
                    p.path = path;
                    p.argv = argv;
                }
            }
            _ => {}
        }
        Some((p.time_ns, p.encode()))
    }
}

/// The process source: exec, fork and exit from the sched tracepoints, plus the start-up
/// snapshot from the task iterator.
#[derive(Debug)]
pub struct ProcessSource;

pub static SOURCE: ProcessSource = ProcessSource;

impl crate::sql::TableProvider for ProcessSource {
    fn make_table(&self, env: &crate::sql::TableEnv) -> Arc<dyn crate::sql::vtab::Table> {
        Arc::new(ProcessEventsTable::new(env.clone()))
    }
}

impl super::Source for ProcessSource {
    fn publisher(&self) -> &'static str {
        PUBLISHER
    }
    fn table(&self) -> &'static str {
        TABLE
    }
    fn kinds(&self) -> &'static [EventKind] {
        &[
            EventKind::ProcessExec,
            EventKind::ProcessExit,
            EventKind::ProcessFork,
            EventKind::ProcessExecFailed,
        ]
    }
    fn drop_event_type(&self, kind: EventKind) -> &'static str {
        match kind {
            EventKind::ProcessExit => "exit",
            EventKind::ProcessFork => "fork",
            _ => "exec",
        }
    }
    fn enabled(&self, ctx: super::Ctx<'_>) -> bool {
        !ctx.flags.disable_events() && ctx.flags.enable_process_events()
    }
    fn configure(&self, ctx: super::Ctx<'_>, opts: &mut LoadOptions) -> anyhow::Result<()> {
        let limit = |flag: &str, max: usize| {
            u32::try_from(ctx.flags.u64(flag))
                .unwrap_or(u32::MAX)
                .min(max as u32 - 1)
        };
        opts.exec_args_max = limit("exec_args_max", agent_common::process::ARGS_MAX);
        opts.exec_env_max = limit("exec_env_max", agent_common::process::ENV_MAX);
        Ok(())
    }
    fn start(&self, mut w: super::Wiring<'_>) -> anyhow::Result<Supervised> {
        // After the exec program is attached: every process is in the snapshot, in an exec
        // record, or both.
        let tasks = w.kernel()?.task_snapshot()?;
        let snapshot = snapshot_events(&tasks, &Clock::now(), crate::sys::monotonic_ns());
        log::info!(
            "{} processes were running at start-up (task iterator)",
            snapshot.len()
        );
        let ring = w.kernel()?.take_process_ring()?;
        let (q, c, s) = (w.queue, w.counters, w.supervisor.shutdown().clone());
        Ok(w.supervisor.spawn("pub-process", move || {
            run_publisher(ring, q, c, s, snapshot)
        })?)
    }
    fn fallback(&self) -> Option<&'static str> {
        Some(fallback::HOOK)
    }
    fn start_fallback(
        &self,
        _ctx: super::Ctx<'_>,
        w: super::Wiring<'_>,
    ) -> anyhow::Result<Supervised> {
        // Subscribed before the snapshot is read: every process is in one or both.
        let conn = crate::sys::proc_connector::ProcConnector::new()
            .map_err(|e| anyhow::anyhow!("the proc connector process source: {e}"))?;
        let (q, c, s) = (w.queue, w.counters, w.supervisor.shutdown().clone());
        Ok(w.supervisor
            .spawn("pub-process-cn", move || fallback::run(conn, q, c, s))?)
    }
    fn subscriber(
        &self,
        ctx: super::Ctx<'_>,
        counters: Arc<SubscriberCounters>,
    ) -> Box<dyn Subscriber> {
        Box::new(ProcessEventsSubscriber::new(counters).with_fs(ctx.fs.clone()))
    }
}
