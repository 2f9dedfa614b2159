//! Process records: exec and exit.

use crate::RecordHeader;

/// Bytes kept of the executable path.
pub const PATH_MAX: usize = 512;
/// Bytes kept of the NUL-separated argv. A power of two: the programs mask lengths with it.
pub const ARGS_MAX: usize = 4096;
/// Bytes kept of the working directory: as much as of a file path (it is copied the same way).
pub const CWD_MAX: usize = crate::file::FILE_PATH_MAX;
/// Bytes kept of the NUL-separated environment (when `--exec_env_max` turns it on).
pub const ENV_MAX: usize = 4096;

/// Flag bits in [`ExecRecord::flags`].
pub mod exec_flags {
    /// argv was longer than [`super::ARGS_MAX`] - 1 bytes and was cut.
    pub const ARGS_TRUNCATED: u32 = 1;
    /// The path was longer than [`super::PATH_MAX`] - 1 bytes and was cut.
    pub const PATH_TRUNCATED: u32 = 2;
    /// Reading argv from the new image failed.
    pub const ARGS_READ_FAILED: u32 = 4;
    /// The environment was longer than the configured limit and was cut.
    pub const ENV_TRUNCATED: u32 = 8;
    /// Reading the environment from the new image failed.
    pub const ENV_READ_FAILED: u32 = 16;
    /// The working directory could not be (fully) resolved.
    pub const CWD_UNRESOLVED: u32 = 32;
    /// The working directory was longer than [`super::CWD_MAX`] - 1 bytes and was cut.
    pub const CWD_TRUNCATED: u32 = 64;
    /// The executable has no name on any file system (a memfd, or a file deleted since):
    /// `path` then holds the kernel's name of its dentry (`memfd:<name>` for a memfd).
    pub const FILELESS: u32 = 128;
}

/// A failed execve/execveat: what the caller asked to run, and the error. argv is not read
/// (no new image exists; the caller's array may be anything).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecFailRecord {
    pub header: RecordHeader,
    /// The syscall's return value (-errno).
    pub ret: i64,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub auid: u32,
    pub path_len: u32,
    /// The dirfd of an execveat (AT_FDCWD = -100 for execve).
    pub dfd: i32,
    pub cgroup_id: u64,
    pub path: [u8; PATH_MAX],
}
const _: () = assert!(size_of::<ExecFailRecord>() == 24 + 8 + 32 + 8 + PATH_MAX);

/// What an exec's entry keeps for its exit (read again only if it fails).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecArgs {
    pub ktime_ns: u64,
    pub uptr: u64,
    pub dfd: i32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ExecArgs>() == 24);

/// `sched_process_exec`: a successful execve/execveat.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecRecord {
    pub header: RecordHeader,
    /// Parent's tgid (`real_parent->tgid`), or 0 when unknown.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Audit login uid; u32::MAX (-1) when unset or unknown.
    pub auid: u32,
    /// Mount namespace inode number, 0 when unknown.
    pub mnt_ns: u32,
    /// [`exec_flags`] bits.
    pub flags: u32,
    pub cgroup_id: u64,
    /// Process start (CLOCK_MONOTONIC ns), 0 when unknown.
    pub start_ktime_ns: u64,
    /// Bytes used in `path`, without the NUL.
    pub path_len: u32,
    /// Bytes used in `args` (NUL-separated argv).
    pub args_len: u32,
    /// Bytes used in `cwd`.
    pub cwd_len: u32,
    /// Bytes used in `env` (NUL-separated `KEY=value` strings); 0 when not captured.
    pub env_len: u32,
    pub path: [u8; PATH_MAX],
    pub args: [u8; ARGS_MAX],
    /// The working directory, resolved in the kernel from `task->fs->pwd`.
    pub cwd: [u8; CWD_MAX],
    pub env: [u8; ENV_MAX],
}
const _: () = assert!(
    size_of::<ExecRecord>() == 24 + 32 + 16 + 8 + 8 + PATH_MAX + ARGS_MAX + CWD_MAX + ENV_MAX
);

/// `sched_process_exit` of a thread-group leader.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitRecord {
    pub header: RecordHeader,
    /// The raw wait status: exit code in bits 8..16, terminating signal in bits 0..7.
    pub exit_code: u32,
    pub ppid: u32,
    /// Process start (CLOCK_MONOTONIC ns), 0 when unknown.
    pub start_ktime_ns: u64,
    pub uid: u32,
    pub gid: u32,
}
const _: () = assert!(size_of::<ExitRecord>() == 24 + 8 + 8 + 8);

/// `sched_process_fork` of a new process (not a new thread).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkRecord {
    /// pid/tid are the parent's (the caller).
    pub header: RecordHeader,
    /// The new process's tgid.
    pub child_pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ForkRecord>() == 24 + 16);

/// One process that was running when the agent started, written by the `iter/task` program
/// (not a ring-buffer record: it is read from the iterator's file).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskRecord {
    pub tgid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Audit login uid; u32::MAX when unset.
    pub auid: u32,
    /// Mount namespace inode number, 0 when unknown.
    pub mnt_ns: u32,
    /// Process start (CLOCK_MONOTONIC ns), 0 when unknown.
    pub start_ktime_ns: u64,
}
const _: () = assert!(size_of::<TaskRecord>() == 40);
