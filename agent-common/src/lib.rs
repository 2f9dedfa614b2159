//! Plain-data types shared by the kernel programs (`agent-ebpf`) and the agent.
//!
//! Everything here is `#[repr(C)]`, has a compile-time size assertion, and is read by the agent
//! straight out of ring buffers and maps. Ids are `#[repr(u32)]`/consts that are never reused:
//! a retired id stays reserved so that old stored records keep their meaning.
#![no_std]

pub mod file;
pub mod offsets;
#[cfg(feature = "user")]
mod pod;
pub mod process;
pub mod socket;

pub use offsets::KernelOffsets;

/// Names of the maps the programs define; userspace looks maps up by these names.
pub mod maps {
    /// Ring buffer carrying process records (exec, exit).
    pub const PROCESS_RING: &str = "PROCESS_RING";
    /// Per-CPU array of loss counters, indexed by [`crate::DropSlot`].
    pub const DROPS: &str = "DROPS";
    /// Ring buffer carrying file records.
    pub const FILE_RING: &str = "FILE_RING";
    /// Array of [`crate::file::FileSpec`] indexed by syscall number.
    pub const FILE_SPECS: &str = "FILE_SPECS";
    /// LPM trie of watched path prefixes.
    pub const WATCHED_PATHS: &str = "WATCHED_PATHS";
    /// Ring buffer carrying socket records.
    pub const SOCK_RING: &str = "SOCK_RING";
    /// Array of [`crate::socket::SockOp`] (as u8) indexed by syscall number.
    pub const SOCK_OPS: &str = "SOCK_OPS";
    /// Files opened for writing in watched paths: `struct file *` -> written?
    pub const FD_STATE: &str = "FD_STATE";
    /// Hash of watched folders by identity: [`crate::file::DirKey`] -> folder id.
    pub const WATCHED_DIRS: &str = "WATCHED_DIRS";
}

/// Names of the read-only globals userspace fills in before loading.
pub mod globals {
    /// [`crate::KernelOffsets`], resolved from the running kernel's BTF and tracefs.
    pub const OFFSETS: &str = "OFFSETS";
    /// The agent's own process id (tgid); its activity is never reported.
    pub const AGENT_TGID: &str = "AGENT_TGID";
    /// Bit set of enabled [`crate::EventKind`]s (bit = kind as u32).
    pub const ENABLED_KINDS: &str = "ENABLED_KINDS";
    /// 1 = report file operations on every path (no prefix filter).
    pub const WATCH_ALL: &str = "WATCH_ALL";
    /// Most argv bytes kept per exec.
    pub const ARGS_LIMIT: &str = "ARGS_LIMIT";
    /// Most environment bytes kept per exec; 0 = the environment is not read.
    pub const ENV_LIMIT: &str = "ENV_LIMIT";
    /// 1 = also report read-only opens (osquery's file_accesses).
    pub const REPORT_READS: &str = "REPORT_READS";
    /// The execveat syscall number of the build target.
    pub const EXECVEAT_NR: &str = "EXECVEAT_NR";
}

/// What a record is. Stored inside every record header; values are never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    ProcessExec = 1,
    ProcessExit = 2,
    File = 3,
    FileFd = 4,
    Socket = 5,
    ProcessFork = 6,
    /// A failed execve/execveat ([`process::ExecFailRecord`]); enabled with `ProcessExec`.
    ProcessExecFailed = 7,
}

impl EventKind {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::ProcessExec),
            2 => Some(Self::ProcessExit),
            3 => Some(Self::File),
            4 => Some(Self::FileFd),
            5 => Some(Self::Socket),
            6 => Some(Self::ProcessFork),
            7 => Some(Self::ProcessExecFailed),
            _ => None,
        }
    }
}

/// Slots of the per-CPU `DROPS` array. A slot counts records the kernel side could not deliver.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropSlot {
    /// `bpf_ringbuf_reserve` failed for an exec record: the ring buffer was full.
    ExecRingFull = 0,
    /// `bpf_ringbuf_reserve` failed for an exit record.
    ExitRingFull = 1,
    /// An exec record was sent, but a kernel read (path, argv, task fields) failed.
    ExecReadError = 2,
    /// An exit record was sent, but a kernel read failed.
    ExitReadError = 3,
    /// A file record was lost: the ring buffer was full.
    FileRingFull = 4,
    /// A file record was sent with a path that could not be (fully) resolved.
    FileReadError = 5,
    /// A file syscall's entry could not be kept until its exit (pending map full).
    FilePendingFull = 6,
    /// A socket record was lost: the ring buffer was full.
    SockRingFull = 7,
    /// A socket syscall's entry could not be kept until its exit.
    SockPendingFull = 8,
    /// A fork record was lost: the ring buffer was full.
    ForkRingFull = 9,
    /// A file opened for writing in a watched folder could not be tracked (the fd-state map
    /// was full): its first write and its close are not reported.
    FileTrackingFull = 10,
    /// A file's ancestry was deeper than the walk goes before a watched folder or the root
    /// was reached: whether it was watched is unknown.
    FileTooDeep = 11,
    /// A tracked open file's entry ended without a close (its last holder exited, or its
    /// address now belongs to another file).
    FileTrackingStale = 12,
}

impl DropSlot {
    /// Number of slots; the size of the `DROPS` array.
    pub const COUNT: u32 = 13;
    pub const ALL: [DropSlot; 13] = [
        Self::ExecRingFull,
        Self::ExitRingFull,
        Self::ExecReadError,
        Self::ExitReadError,
        Self::FileRingFull,
        Self::FileReadError,
        Self::FilePendingFull,
        Self::SockRingFull,
        Self::SockPendingFull,
        Self::ForkRingFull,
        Self::FileTrackingFull,
        Self::FileTooDeep,
        Self::FileTrackingStale,
    ];

    /// The event kind this slot counts for.
    pub const fn kind(self) -> EventKind {
        match self {
            Self::ExecRingFull | Self::ExecReadError => EventKind::ProcessExec,
            Self::ExitRingFull | Self::ExitReadError => EventKind::ProcessExit,
            Self::FileRingFull
            | Self::FileReadError
            | Self::FilePendingFull
            | Self::FileTrackingFull
            | Self::FileTooDeep
            | Self::FileTrackingStale => EventKind::File,
            Self::SockRingFull | Self::SockPendingFull => EventKind::Socket,
            Self::ForkRingFull => EventKind::ProcessFork,
        }
    }

    /// Short reason, as shown in the drops table.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::ExecRingFull
            | Self::ExitRingFull
            | Self::FileRingFull
            | Self::SockRingFull
            | Self::ForkRingFull => "ring_buffer_full",
            Self::ExecReadError | Self::ExitReadError | Self::FileReadError => "kernel_read_error",
            Self::FilePendingFull | Self::SockPendingFull => "pending_map_full",
            Self::FileTrackingFull => "tracking_map_full",
            Self::FileTooDeep => "path_too_deep",
            Self::FileTrackingStale => "tracking_stale",
        }
    }
}

/// Common header at the start of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RecordHeader {
    /// An [`EventKind`] as u32.
    pub kind: u32,
    /// CPU the record was produced on.
    pub cpu: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ktime_ns: u64,
    /// Thread group id (what userspace calls the pid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
}
const _: () = assert!(size_of::<RecordHeader>() == 24);
