//! The file publisher (kernel file ring -> [`FileEvent`]s, with osquery's actions) and the
//! `file_events` subscriber (category, file metadata, creation check).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, LazyLock},
};

use agent_common::EventKind;
use agent_common::file::{FdRecord, FileOp, FileRecord, file_flags};
use aya::maps::{MapData, RingBuf};

use crate::{
    events::{FileEvent, FileStat, Resolve},
    fim::{FimState, hash::HashCache},
    pipeline::{Event, Queue, Subscriber},
    rt::supervise::Supervised,
    rt::{
        Shutdown, Watch,
        counters::{PublisherCounters, SubscriberCounters},
    },
    sys::{
        Clock,
        ebpf::{Kernel, LoadOptions, decode::RawRecord},
        fsguard::FsGuard,
    },
};

mod fallback;
mod table;
pub mod watch;
pub use table::FileEventsTable;
use watch::WatchDirs;

pub const PUBLISHER: &str = "ebpf_file";
pub const TABLE: &str = "file_events";

const AT_REMOVEDIR: u32 = libc::AT_REMOVEDIR as u32;
const O_CREAT: u32 = libc::O_CREAT as u32;
const O_TRUNC: u32 = libc::O_TRUNC as u32;
/// `FMODE_CREATED` in `file->f_mode`: set when this open created the file (bit 20 since
/// Linux 4.19; checked on every kernel the VM tests boot).
const FMODE_CREATED: u32 = 1 << 20;

/// Syscall number -> name, for the `syscall` column.
fn syscall_names() -> HashMap<u32, &'static str> {
    let mut names: HashMap<u32, &'static str> = crate::sys::ebpf::files::syscalls()
        .into_iter()
        .filter_map(|(name, (nr, _))| u32::try_from(nr).ok().map(|nr| (nr, name)))
        .collect();
    names.insert(agent_common::file::NR_IO_URING, "io_uring");
    names
}

fn text(buf: &[u8], len: u32) -> String {
    String::from_utf8_lossy(&buf[..(len as usize).min(buf.len())]).into_owned()
}

/// Normalises `.` and `..` lexically (the kernel resolved the directory part; the user's
/// relative tail may still hold them).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether the caller's part of a path is one plain name (no `/`, not `.` or `..`): in a
/// folder the kernel resolved, such a name is exact.
fn plain_name(user: &[u8]) -> bool {
    let name = user.strip_prefix(b"/").unwrap_or(user);
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

/// Turns kernel records into events. Keeps the path of every fd opened for writing, so the
/// first write and the close after it can name their file.
#[derive(Debug)]
pub struct FileDecoder {
    clock: Clock,
    dirs: Arc<WatchDirs>,
    names: HashMap<u32, &'static str>,
    /// `struct file *` -> (path, inode) of files opened for writing.
    files: HashMap<u64, (String, u64)>,
    next_transaction: u64,
    /// Counted where they happen, reported in `event_drops`.
    counters: Arc<PublisherCounters>,
}

const FILES_MAX: usize = 65536;

impl Default for FileDecoder {
    fn default() -> Self {
        Self::new(Clock::now(), Arc::default(), Arc::default())
    }
}

impl FileDecoder {
    pub fn new(clock: Clock, counters: Arc<PublisherCounters>, dirs: Arc<WatchDirs>) -> Self {
        Self {
            clock,
            dirs,
            names: syscall_names(),
            files: HashMap::new(),
            next_transaction: 1,
            counters,
        }
    }

    fn base(&self, pid: u32, tid: u32, ktime: u64) -> FileEvent {
        FileEvent {
            time_ns: self.clock.wall_ns(ktime),
            uptime: ktime / 1_000_000_000,
            pid,
            tid,
            arg_mode: u32::MAX,
            arg_uid: u32::MAX,
            arg_gid: u32::MAX,
            fd: -1,
            ..Default::default()
        }
    }

    /// A record's path as the row names it, and whether the agent must still resolve it
    /// (the caller's string beyond one plain name in a folder the kernel resolved).
    ///
    /// A plain name in a folder the kernel resolved outside every watched folder is outside
    /// too (unless the call follows a final symlink): `None`, with no file-system access.
    fn record_path(
        &self,
        buf: &[u8],
        len: u32,
        (watch, base_len): (u32, u32),
        (in_watch, from_user, follow): (bool, bool, bool),
    ) -> Option<(String, bool)> {
        let raw = &buf[..(len as usize).min(buf.len())];
        let user = &raw[(base_len as usize).min(raw.len())..];
        let rel = String::from_utf8_lossy(raw);
        let full = if in_watch {
            self.dirs.join(watch, &rel)
        } else {
            rel.into_owned()
        };
        if from_user && !in_watch && base_len > 0 && !follow && plain_name(user) {
            return None;
        }
        let resolve = from_user && !(in_watch && plain_name(user));
        Some(if resolve {
            (full, true)
        } else {
            (normalize(&full), false)
        })
    }

    pub fn file(&mut self, r: &FileRecord) -> Vec<FileEvent> {
        let Some(op) = FileOp::from_u8(r.op) else {
            return Vec::new();
        };
        let mut e = self.base(r.header.pid, r.header.tid, r.header.ktime_ns);
        let f = r.rflags;
        let follow = match op {
            FileOp::Open => r.flags & libc::O_NOFOLLOW as u32 == 0,
            FileOp::Chmod
            | FileOp::Chown
            | FileOp::SetXattr
            | FileOp::RemoveXattr
            | FileOp::Utimes => {
                r.flags & libc::AT_SYMLINK_NOFOLLOW as u32 == 0
                    && !self.names.get(&r.nr).is_some_and(|n| n.starts_with('l'))
            }
            FileOp::Truncate => true,
            _ => false,
        };
        let first = self.record_path(
            &r.path,
            r.path_len,
            (r.watch_id, r.base_len),
            (
                f & file_flags::PATH_IN_WATCH != 0,
                f & file_flags::PATH_FROM_USER != 0,
                follow,
            ),
        );
        // A rename's or link's second path is resolved like the first; a symlink's target
        // and an xattr name are kept as given.
        let path2_resolved = f & (file_flags::PATH2_IN_WATCH | file_flags::PATH2_FROM_USER) != 0;
        let second = if path2_resolved {
            self.record_path(
                &r.path2,
                r.path2_len,
                (r.watch2_id, r.base2_len),
                (
                    f & file_flags::PATH2_IN_WATCH != 0,
                    f & file_flags::PATH2_FROM_USER != 0,
                    false,
                ),
            )
        } else {
            Some((text(&r.path2, r.path2_len), false))
        };
        // Known to be outside: a rename keeps the side that may be watched (its row), a
        // link its new name; anything else is dropped here.
        let known_outside = first.is_none();
        let (first, second) = match (first, second) {
            (Some(a), Some(b)) => (a, b),
            (None, Some(b)) if op == FileOp::Rename => {
                ((normalize(&text(&r.path, r.path_len)), false), b)
            }
            (Some(a), None) if op == FileOp::Rename || op == FileOp::Link => {
                (a, (normalize(&text(&r.path2, r.path2_len)), false))
            }
            _ => return Vec::new(),
        };
        e.target_path = first.0;
        e.resolve.target = first.1;
        e.other_path = second.0;
        e.resolve.other = second.1;
        e.user_path = f & file_flags::PATH_FROM_USER != 0;
        e.resolve.follow = follow;
        e.result = r.ret;
        e.syscall = self
            .names
            .get(&r.nr)
            .copied()
            .unwrap_or("unknown")
            .to_owned();
        e.process_uid = r.uid;
        e.process_gid = r.gid;
        e.flags = r.flags;
        e.fd = r.fd;
        e.inode = r.inode;
        let (action, operation) = match op {
            FileOp::Open => {
                e.arg_mode = if r.flags & O_CREAT != 0 {
                    r.mode
                } else {
                    u32::MAX
                };
                e.fd = i32::try_from(r.ret).unwrap_or(-1);
                if r.file != 0 {
                    if self.files.len() >= FILES_MAX {
                        // Their next write or close is not reported: counted, not silent.
                        self.counters.tracking_evicted.add(self.files.len() as u64);
                        self.files.clear();
                    }
                    self.files.insert(r.file, (e.target_path.clone(), r.inode));
                }
                if r.ret >= 0 && r.f_mode & FMODE_CREATED != 0 {
                    ("CREATED", "open")
                } else if r.ret >= 0 && r.flags & O_TRUNC != 0 {
                    ("UPDATED", "open")
                } else {
                    ("OPENED", "open")
                }
            }
            FileOp::Truncate => ("UPDATED", "truncate"),
            FileOp::Unlink if r.flags & AT_REMOVEDIR != 0 => ("DELETED", "rmdir"),
            FileOp::Unlink => ("DELETED", "unlink"),
            FileOp::Rmdir => ("DELETED", "rmdir"),
            FileOp::Mkdir => {
                e.arg_mode = r.mode;
                ("CREATED", "mkdir")
            }
            FileOp::Rename => {
                let txn = self.next_transaction;
                self.next_transaction += 1;
                let mut from = e.clone();
                from.action = "MOVED_FROM".into();
                from.operation = "rename".into();
                from.transaction_id = txn;
                let mut to = e;
                to.action = "MOVED_TO".into();
                to.operation = "rename".into();
                to.other_path = from.target_path.clone();
                to.target_path = from.other_path.clone();
                to.resolve = Resolve {
                    target: from.resolve.other,
                    other: from.resolve.target,
                    follow: false,
                };
                to.transaction_id = txn;
                // The side known to be outside gets no row.
                return if known_outside {
                    vec![to]
                } else {
                    vec![from, to]
                };
            }
            FileOp::Link => ("CREATED", "link"),
            FileOp::Symlink => ("CREATED", "symlink"),
            FileOp::Chmod => {
                e.arg_mode = r.mode;
                ("ATTRIBUTES_MODIFIED", "chmod")
            }
            FileOp::Chown => {
                e.arg_uid = r.arg_uid;
                e.arg_gid = r.arg_gid;
                ("ATTRIBUTES_MODIFIED", "chown")
            }
            FileOp::SetXattr => ("ATTRIBUTES_MODIFIED", "setxattr"),
            FileOp::Utimes => ("ATTRIBUTES_MODIFIED", "utimes"),
            FileOp::RemoveXattr => ("ATTRIBUTES_MODIFIED", "removexattr"),
            FileOp::Write | FileOp::CloseWrite | FileOp::Read | FileOp::MapWrite => {
                return Vec::new();
            }
        };
        e.action = action.into();
        e.operation = operation.into();
        vec![e]
    }

    pub fn fd(&mut self, r: &FdRecord) -> Vec<FileEvent> {
        let op = FileOp::from_u8(r.op as u8);
        let known = if op == Some(FileOp::CloseWrite) {
            self.files.remove(&r.file)
        } else {
            self.files.get(&r.file).cloned()
        };
        let Some((path, inode)) = known else {
            // Opened before the agent started, or its open record was lost (counted there).
            return Vec::new();
        };
        if r.inode != 0 && inode != 0 && r.inode != inode {
            // The address now belongs to another file (the tracked one's process exited
            // without closing it): reporting this write on the old path would be wrong.
            self.files.remove(&r.file);
            self.counters.tracking_stale.add(1);
            return Vec::new();
        }
        let mut e = self.base(r.header.pid, r.header.tid, r.header.ktime_ns);
        e.target_path = path;
        e.inode = inode;
        e.fd = r.fd;
        let (action, operation) = match op {
            Some(FileOp::CloseWrite) => ("UPDATED", "close_write"),
            Some(FileOp::Read) => ("ACCESSED", "read"),
            Some(FileOp::MapWrite) => ("UPDATED", "mmap"),
            _ => ("UPDATED", "write"),
        };
        e.action = action.into();
        e.operation = operation.into();
        e.syscall = self
            .names
            .get(&r.nr)
            .copied()
            .unwrap_or(operation)
            .to_owned();
        vec![e]
    }
}

/// Reads the file ring buffer until `shutdown`, then drains what is left.
pub fn run_publisher(
    ring: RingBuf<MapData>,
    queue: Queue,
    counters: Arc<PublisherCounters>,
    dirs: Arc<WatchDirs>,
    shutdown: Shutdown,
) {
    let mut decoder = FileDecoder::new(Clock::now(), counters.clone(), dirs);
    super::ring::run_ring_publisher(ring, queue, counters, shutdown, "file", |raw| {
        let events = match raw {
            RawRecord::File(r) => decoder.file(&r),
            RawRecord::Fd(r) => decoder.fd(&r),
            _ => return None,
        };
        Some(events.into_iter().map(Event::File).collect())
    });
}

/// Fills `file_events`: keeps rows whose path is in a watched category, adds the category
/// and the target's metadata, and decides whether an open created its file.
/// How long a resolved spelling is reused, and how many are kept.
const RESOLVED_FOR: std::time::Duration = std::time::Duration::from_millis(100);
const RESOLVED_MAX: usize = 1024;

type ResolvedCache =
    HashMap<(String, bool, u32), (std::time::Instant, crate::fim::fsops::Resolved)>;

#[derive(Debug)]
pub struct FileEventsSubscriber {
    counters: Arc<SubscriberCounters>,
    fim: Watch<FimState>,
    fs: FsGuard,
    dirs: Arc<WatchDirs>,
    resolved: ResolvedCache,
    hashes: HashCache,
    read_max: u64,
}

/// Where a caller's path string led.
#[derive(Debug, PartialEq, Eq)]
enum Placed {
    /// Into a watched folder: the path as configured.
    Watched(String),
    /// Outside every watched folder.
    Outside,
    /// Not resolvable (a folder on the way is gone; `timed_out`: its file system did not
    /// answer): the lexical form is kept.
    Unresolved { lexical: String, timed_out: bool },
}

impl FileEventsSubscriber {
    pub fn new(
        counters: Arc<SubscriberCounters>,
        fim: Watch<FimState>,
        fs: FsGuard,
        dirs: Arc<WatchDirs>,
        read_max: u64,
        hash_cache_max: usize,
    ) -> Self {
        Self {
            counters,
            fim,
            fs,
            dirs,
            resolved: HashMap::new(),
            hashes: HashCache::new(hash_cache_max),
            read_max,
        }
    }

    fn place(&mut self, path: &str, e: &FileEvent, follow: bool) -> Placed {
        let lexical = normalize(path);
        // The same spelling again from the same thread within RESOLVED_FOR (a flood of
        // changes to one file) is not sent to a worker again. A resolution is already made
        // after the call, so this widens its window by at most that long. (The thread is in
        // the key: its `/proc/self`, its root and its mount namespace are part of what a
        // spelling means.)
        let key = (path.to_owned(), follow, e.tid);
        let now = std::time::Instant::now();
        let cached = self
            .resolved
            .get(&key)
            .filter(|(at, _)| now.duration_since(*at) < RESOLVED_FOR)
            .map(|(_, r)| r.clone());
        let answer = match cached {
            Some(r) => Some(Some(r)),
            None => {
                let a = crate::fim::fsops::resolve(&self.fs, Path::new(path), e.pid, e.tid, follow);
                if let Some(Some(r)) = &a {
                    if self.resolved.len() >= RESOLVED_MAX {
                        self.resolved.clear();
                    }
                    self.resolved.insert(key, (now, r.clone()));
                }
                a
            }
        };
        match answer {
            Some(Some(r)) => match self.dirs.place(&r) {
                Some(p) => Placed::Watched(p),
                None => Placed::Outside,
            },
            Some(None) => Placed::Unresolved {
                lexical,
                timed_out: false,
            },
            None => Placed::Unresolved {
                lexical,
                timed_out: true,
            },
        }
    }

    /// Resolves what the kernel could not (see [`Resolve`]); false: the row is outside every
    /// watched folder.
    fn resolve(&mut self, e: &mut FileEvent) -> bool {
        if e.resolve.other {
            e.other_path = match self.place(&e.other_path, e, false) {
                Placed::Watched(p) => p,
                Placed::Outside | Placed::Unresolved { .. } => normalize(&e.other_path),
            };
        }
        if e.resolve.target {
            match self.place(&e.target_path, e, e.resolve.follow) {
                Placed::Watched(p) => e.target_path = p,
                Placed::Outside => return false,
                Placed::Unresolved { lexical, timed_out } => {
                    e.target_path = lexical;
                    e.enrichment_missing |= timed_out;
                }
            }
        }
        e.resolve = Resolve::default();
        true
    }
}

impl Subscriber for FileEventsSubscriber {
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
        let Event::File(f) = ev else { return None };
        if self.fs.is_helper(f.pid) {
            return None; // the agent's own metadata and hash reads
        }
        let mut e = f.clone();
        if !self.resolve(&mut e) {
            return None;
        }
        let live = self.fim.current();
        let category = live.matcher.category(&e.target_path)?.to_owned();
        let is_access = e.action == "ACCESSED"
            || (e.operation == "open"
                && e.flags & libc::O_ACCMODE as u32 == 0
                && e.flags & (O_CREAT | O_TRUNC) == 0);
        if is_access && !live.matcher.wants_accesses(&category) {
            return None;
        }
        e.category = category;
        // Metadata and hashes touch the file system, which may never answer (a hung FUSE or
        // network mount): they run on the guard's workers, and a row whose file system did
        // not answer in time is stored without them, marked.
        let path = PathBuf::from(&e.target_path);
        let st = crate::fim::fsops::stat(&self.fs, &path, false).map(|st| {
            st.map(|s| {
                let f = FileStat {
                    mode: s.mode,
                    uid: s.uid,
                    gid: s.gid,
                    size: s.size,
                    atime: s.atime,
                    mtime: s.mtime,
                    ctime: s.ctime,
                };
                (f, s.ino)
            })
        });
        let Some(st) = st else {
            e.enrichment_missing = true;
            e.hashed = -1;
            return Some((e.time_ns, e.encode()));
        };
        if let Some((s, ino)) = st {
            e.file = Some(s);
            if e.inode == 0 {
                e.inode = ino;
            }
        }
        // osquery hashes what was created or changed in watched categories, never for
        // file_accesses; everything else says "not hashed".
        if e.success() && (e.action == "CREATED" || e.action == "UPDATED") {
            match crate::fim::fsops::hash_cached(&mut self.hashes, &self.fs, &path, self.read_max) {
                Some(h) => {
                    e.hashed = h.code() as i8;
                    if let Some(d) = h.hashes() {
                        e.md5 = d.md5.clone();
                        e.sha1 = d.sha1.clone();
                        e.sha256 = d.sha256.clone();
                    }
                }
                None => {
                    e.enrichment_missing = true;
                    e.hashed = -1;
                }
            }
        }
        Some((e.time_ns, e.encode()))
    }
}

/// The file source: FIM from the syscall tracepoints (and fentry where the kernel allows),
/// filtered in the kernel by the watched prefixes of the config in force.
#[derive(Debug)]
pub struct FileSource {
    /// The watched folders the kernel matches, shared with the publisher and subscriber.
    dirs: LazyLock<Arc<WatchDirs>>,
    /// The publisher's counters, for what the once-a-second sweep removes.
    counters: std::sync::OnceLock<Arc<PublisherCounters>>,
}

pub static SOURCE: FileSource = FileSource {
    dirs: LazyLock::new(Arc::default),
    counters: std::sync::OnceLock::new(),
};

impl FileSource {
    /// The kernel entries for the config in force (each prefix's nearest existing folder,
    /// stat'ed by the guard's workers: a hung mount does not stall a reload).
    fn plan(&self, ctx: super::Ctx<'_>) -> (Vec<String>, Vec<(agent_common::file::DirKey, u32)>) {
        let prefixes = ctx.fim.current().kernel_prefixes();
        let dirs = self.dirs.plan(&prefixes, |p| {
            crate::fim::fsops::stat(ctx.fs, p, true)
                .map(|st| st.map(|s| (s.key.dev, s.ino, s.mode & libc::S_IFMT == libc::S_IFDIR)))
        });
        (prefixes, dirs)
    }
}

impl crate::sql::TableProvider for FileSource {
    fn make_table(&self, env: &crate::sql::TableEnv) -> Arc<dyn crate::sql::vtab::Table> {
        Arc::new(FileEventsTable::new(env.clone()))
    }
}

impl super::Source for FileSource {
    fn publisher(&self) -> &'static str {
        PUBLISHER
    }
    fn table(&self) -> &'static str {
        TABLE
    }
    fn kinds(&self) -> &'static [EventKind] {
        &[EventKind::File, EventKind::FileFd]
    }
    fn drop_event_type(&self, _kind: EventKind) -> &'static str {
        "file"
    }
    /// FIM's one switch (enable_file_events, its aliases, disable_events) and something to
    /// watch.
    fn enabled(&self, ctx: super::Ctx<'_>) -> bool {
        let fim = ctx.fim.current();
        !ctx.flags.disable_events() && fim.on && !fim.matcher.is_empty()
    }
    fn configure(&self, ctx: super::Ctx<'_>, opts: &mut LoadOptions) -> anyhow::Result<()> {
        let fim = ctx.fim.current();
        (opts.watched_prefixes, opts.watched_dirs) = self.plan(ctx);
        opts.report_reads = fim.report_reads;
        Ok(())
    }
    fn start(&self, mut w: super::Wiring<'_>) -> anyhow::Result<Supervised> {
        let ring = w.kernel()?.take_file_ring()?;
        let (q, c, s) = (w.queue, w.counters, w.supervisor.shutdown().clone());
        let _ = self.counters.set(c.clone());
        let dirs = Arc::clone(&self.dirs);
        Ok(w.supervisor
            .spawn("pub-file", move || run_publisher(ring, q, c, dirs, s))?)
    }
    fn fallback(&self) -> Option<&'static str> {
        Some(fallback::HOOK)
    }
    fn start_fallback(
        &self,
        ctx: super::Ctx<'_>,
        w: super::Wiring<'_>,
    ) -> anyhow::Result<Supervised> {
        let fan = crate::sys::fanotify::Fanotify::new()
            .map_err(|e| anyhow::anyhow!("the fanotify file source: {e}"))?;
        let (q, c, s) = (w.queue, w.counters, w.supervisor.shutdown().clone());
        let _ = self.counters.set(c.clone());
        let fim = ctx.fim.clone();
        Ok(w.supervisor.spawn("pub-file-fanotify", move || {
            fallback::run(fan, q, c, fim, s)
        })?)
    }
    fn subscriber(
        &self,
        ctx: super::Ctx<'_>,
        counters: Arc<SubscriberCounters>,
    ) -> Box<dyn Subscriber> {
        Box::new(FileEventsSubscriber::new(
            counters,
            ctx.fim.clone(),
            ctx.fs.clone(),
            Arc::clone(&self.dirs),
            ctx.flags.read_max(),
            ctx.flags.hash_cache_max() as usize,
        ))
    }
    /// New folders go in before old ones go out, so nothing still watched is uncovered in
    /// between. Also run every second: a watched folder replaced by another (renamed away,
    /// created later) is followed by identity.
    fn reconfigure(&self, kernel: &mut Kernel, ctx: super::Ctx<'_>) -> anyhow::Result<()> {
        let (prefixes, dirs) = self.plan(ctx);
        kernel.set_watched(&prefixes, &dirs)?;
        // Files tracked for processes that exited without closing them: forgotten, counted.
        let gone = kernel.sweep_fd_state(crate::sys::procfs::process_exists)?;
        if let Some(c) = self.counters.get() {
            c.tracking_stale.add(gone);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("/tmp/x/./a"), "/tmp/x/a");
        assert_eq!(normalize("/tmp/x/../y"), "/tmp/y");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn open_actions_follow_the_kernel() {
        let mut d = FileDecoder::default();
        let mut bytes = vec![0u8; size_of::<FileRecord>()];
        bytes[0] = EventKind::File as u8;
        let Ok(RawRecord::File(mut r)) = crate::sys::ebpf::decode::decode(&bytes) else {
            panic!("a zeroed file record decodes")
        };
        r.op = FileOp::Open as u8;
        r.ret = 3;
        r.path[..6].copy_from_slice(b"/tmp/a");
        r.path_len = 6;
        r.flags = O_CREAT | O_TRUNC | 1;
        r.f_mode = FMODE_CREATED;
        assert_eq!(d.file(&r)[0].action, "CREATED");
        r.f_mode = 0;
        assert_eq!(d.file(&r)[0].action, "UPDATED");
        r.flags = 1;
        assert_eq!(d.file(&r)[0].action, "OPENED");
        r.ret = -13;
        r.f_mode = FMODE_CREATED;
        assert_eq!(d.file(&r)[0].action, "OPENED");
    }

    /// A write through a `struct file` address that a dead process's tracked file used to
    /// have, now another file: not reported on the old path, and counted.
    #[test]
    fn a_reused_file_address_is_stale_not_misattributed() {
        let counters = Arc::new(PublisherCounters::default());
        let mut d = FileDecoder::new(Clock::now(), counters.clone(), Arc::default());
        let mut bytes = vec![0u8; size_of::<FileRecord>()];
        bytes[0] = EventKind::File as u8;
        let Ok(RawRecord::File(mut r)) = crate::sys::ebpf::decode::decode(&bytes) else {
            panic!("a zeroed file record decodes")
        };
        r.op = FileOp::Open as u8;
        r.ret = 3;
        r.path[..8].copy_from_slice(b"/watch/a");
        r.path_len = 8;
        r.flags = 1;
        r.file = 0xffff_8880_0000_1000;
        r.inode = 42;
        d.file(&r);
        let mut fd = vec![0u8; size_of::<FdRecord>()];
        fd[0] = EventKind::FileFd as u8;
        let Ok(RawRecord::Fd(mut w)) = crate::sys::ebpf::decode::decode(&fd) else {
            panic!("a zeroed fd record decodes")
        };
        w.op = u32::from(FileOp::Write as u8);
        w.file = r.file;
        w.inode = 42;
        let same = d.fd(&w);
        assert_eq!(
            (
                same.len(),
                same[0].target_path.as_str(),
                same[0].action.as_str()
            ),
            (1, "/watch/a", "UPDATED")
        );
        // The same address, another inode: nothing reported, one stale write counted, and the
        // entry is forgotten.
        w.inode = 43;
        assert!(d.fd(&w).is_empty());
        assert_eq!(counters.tracking_stale.get(), 1);
        w.inode = 42;
        assert!(d.fd(&w).is_empty());
        assert_eq!(counters.tracking_stale.get(), 1);
    }
}
