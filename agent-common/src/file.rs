//! File records: path-based syscalls (open, unlink, rename, chmod, …) captured at
//! `sys_enter_*` (arguments, resolved absolute paths) and completed at `sys_exit_*` (result),
//! plus small fd records for the first write after an open and the close after a write.

use crate::RecordHeader;

/// Bytes kept of each path. Longer paths are cut and flagged ([`file_flags::PATH_TRUNCATED`]).
pub const FILE_PATH_MAX: usize = 1024;
/// Bytes of a path the in-kernel prefix filter compares (the LPM trie's key size).
pub const FILTER_KEY_MAX: usize = 256;
/// Directory levels walked when resolving a relative path or an fd in the kernel.
pub const MAX_PATH_DEPTH: u32 = 40;
/// Size of the per-syscall spec table ([`FileSpec`] indexed by syscall number).
pub const MAX_SYSCALL_NR: u32 = 512;

/// The exact operation. Values are stored and never reused.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOp {
    Open = 1,
    Truncate = 2,
    Unlink = 3,
    Rmdir = 4,
    Mkdir = 5,
    Rename = 6,
    Link = 7,
    Symlink = 8,
    Chmod = 9,
    Chown = 10,
    SetXattr = 11,
    RemoveXattr = 12,
    /// The first write through an fd opened for writing in a watched path.
    Write = 13,
    /// Closing an fd that was written to.
    CloseWrite = 14,
    /// The first read through an fd opened read-only in a watched path (file_accesses only).
    Read = 15,
    /// A shared writable mmap of a tracked file: its first write, as far as the kernel can
    /// see (stores through the mapping are not syscalls).
    MapWrite = 16,
    /// utimensat, utimes, utime, futimesat: access/modification times set.
    Utimes = 17,
}

impl FileOp {
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Open,
            2 => Self::Truncate,
            3 => Self::Unlink,
            4 => Self::Rmdir,
            5 => Self::Mkdir,
            6 => Self::Rename,
            7 => Self::Link,
            8 => Self::Symlink,
            9 => Self::Chmod,
            10 => Self::Chown,
            11 => Self::SetXattr,
            12 => Self::RemoveXattr,
            13 => Self::Write,
            14 => Self::CloseWrite,
            15 => Self::Read,
            16 => Self::MapWrite,
            17 => Self::Utimes,
            _ => return None,
        })
    }
}

/// [`FileRecord::nr`] of an operation seen by a kernel-function hook rather than a syscall
/// tracepoint: issued through io_uring (shown as syscall `io_uring`).
pub const NR_IO_URING: u32 = 0xffff_0001;

/// How a syscall's arguments map onto a [`FileRecord`]. Userspace fills one per syscall
/// number (they differ per architecture); an argument index of -1 means "not present".
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// A [`FileOp`] as u8; 0 = not a file syscall we handle.
    pub op: u8,
    /// Index of the dirfd argument for the first path; -1 = relative to the cwd.
    pub dfd: i8,
    /// Index of the first path argument; -1 = the path comes from `fd`.
    pub path: i8,
    /// Index of an fd argument whose file is the target (fchmod, ftruncate, …); -1 = none.
    pub fd: i8,
    pub dfd2: i8,
    /// Index of the second path (rename/link new path, symlink target, xattr name).
    pub path2: i8,
    /// 1 = copy the second string as is (symlink target, xattr name), never resolve it.
    pub path2_raw: u8,
    pub flags: i8,
    pub mode: i8,
    pub uid: i8,
    pub gid: i8,
    /// Index of a `struct open_how *` (openat2) whose first u64 is the flags.
    pub how: i8,
    /// Flags implied by the syscall itself (creat: O_CREAT|O_WRONLY|O_TRUNC).
    pub fixed_flags: u32,
}
const _: () = assert!(size_of::<FileSpec>() == 16);

impl FileSpec {
    pub const NONE: Self = Self {
        op: 0,
        dfd: -1,
        path: -1,
        fd: -1,
        dfd2: -1,
        path2: -1,
        path2_raw: 0,
        flags: -1,
        mode: -1,
        uid: -1,
        gid: -1,
        how: -1,
        fixed_flags: 0,
    };
}

/// Flag bits in [`FileRecord::rflags`].
pub mod file_flags {
    pub const PATH_TRUNCATED: u32 = 1;
    pub const PATH2_TRUNCATED: u32 = 2;
    /// The first path could not be resolved (bad fd, fault); `path` holds what was read.
    pub const PATH_UNRESOLVED: u32 = 4;
    /// More directory levels than the walk allows; the path lacks its leading part.
    pub const PATH_TOO_DEEP: u32 = 8;
    /// Internal: the first path is watched (two-path syscalls decide at exit).
    pub const WATCHED: u32 = 16;
    /// Internal: resolve the second path at exit from `p2_ptr`/`p2_dfd`.
    pub const RESOLVE_PATH2: u32 = 32;
    /// `path` is relative to the watched folder `watch_id` (found by the identity of a kernel
    /// object, whatever spelling the caller used); without it, `path` is absolute.
    pub const PATH_IN_WATCH: u32 = 64;
    /// The same for `path2` and `watch2_id`.
    pub const PATH2_IN_WATCH: u32 = 128;
    /// `path[base_len..]` is the caller's string, not a kernel object: the agent resolves it
    /// (it may hold `..`, symlinks, `/proc/self`) before deciding whether it is watched.
    pub const PATH_FROM_USER: u32 = 256;
    /// The same for `path2[base2_len..]`.
    pub const PATH2_FROM_USER: u32 = 512;
}

/// `watch_id` of a path found under no watched folder.
pub const WATCH_NONE: u32 = u32::MAX;

/// A watched folder's identity: the device (the kernel's `sb->s_dev` encoding, major << 20 |
/// minor) and inode number of the directory. The key of the `WATCHED_DIRS` map, whose value
/// is the folder's id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DirKey {
    pub ino: u64,
    pub dev: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<DirKey>() == 16);

impl DirKey {
    /// From a userspace `st_dev` (glibc's encoding) and inode number.
    pub const fn from_stat(st_dev: u64, ino: u64) -> Self {
        let major = ((st_dev >> 32) & 0xffff_f000) | ((st_dev >> 8) & 0x0000_0fff);
        let minor = ((st_dev >> 12) & 0xffff_ff00) | (st_dev & 0x0000_00ff);
        Self {
            ino,
            dev: ((major as u32) << 20) | (minor as u32 & 0xf_ffff),
            _pad: 0,
        }
    }
}

/// A path-based file syscall with its result.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileRecord {
    /// `ktime_ns` is the syscall's entry time.
    pub header: RecordHeader,
    /// Syscall return value (fd, 0, or -errno).
    pub ret: i64,
    /// Inode of the opened file (open only; 0 otherwise).
    pub inode: u64,
    /// The `struct file *` an open returned (an identity, never dereferenced by userspace):
    /// fd records carry the same value, so a write through a dup'ed fd still names its file.
    pub file: u64,
    pub op: u8,
    pub _pad0: [u8; 3],
    /// The syscall number.
    pub nr: u32,
    pub flags: u32,
    pub mode: u32,
    pub arg_uid: u32,
    pub arg_gid: u32,
    /// The fd argument for fd-based calls, else -1.
    pub fd: i32,
    /// Caller's uid/gid.
    pub uid: u32,
    pub gid: u32,
    pub rflags: u32,
    pub path_len: u32,
    pub path2_len: u32,
    /// The user pointer and dirfd of a second path still to resolve (rename, link).
    pub p2_ptr: u64,
    pub p2_dfd: i32,
    /// `file->f_mode` of an opened file (open only): tells whether this open created it.
    pub f_mode: u32,
    /// The watched folder `path` is relative to ([`file_flags::PATH_IN_WATCH`]), else
    /// [`WATCH_NONE`].
    pub watch_id: u32,
    pub watch2_id: u32,
    /// Bytes of `path` resolved from kernel objects; the rest is the caller's string
    /// ([`file_flags::PATH_FROM_USER`]).
    pub base_len: u32,
    pub base2_len: u32,
    pub path: [u8; FILE_PATH_MAX],
    pub path2: [u8; FILE_PATH_MAX],
}
const _: () = assert!(size_of::<FileRecord>() == 24 + 16 + 16 + 40 + 16 + 16 + 2 * FILE_PATH_MAX);

/// What an open's entry keeps for its exit, where the opened `struct file` decides whether
/// it is watched (the flags the kernel clears from `f_flags`, the mode, the entry time).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OpenArgs {
    pub ktime_ns: u64,
    /// The user's path string and dirfd, read only if the open fails.
    pub uptr: u64,
    pub dfd: i32,
    pub flags: u32,
    pub mode: u32,
    pub nr: u32,
}
const _: () = assert!(size_of::<OpenArgs>() == 32);

/// First write after an open, or close after a write, on a tracked fd.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FdRecord {
    pub header: RecordHeader,
    /// [`FileOp::Write`], [`FileOp::MapWrite`], [`FileOp::Read`] or [`FileOp::CloseWrite`].
    pub op: u32,
    pub fd: i32,
    /// The `struct file *` written to (see [`FileRecord::file`]).
    pub file: u64,
    /// Its inode number now: a tracked entry whose inode differs is stale (the address was
    /// reused by another file after a process exited without closing).
    pub inode: u64,
    /// The syscall number (write, pwrite64, copy_file_range, sendfile, splice, mmap, …).
    pub nr: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<FdRecord>() == 56);

/// A `FD_STATE` value: where a tracked open file is (0 opened for writing, 1 written since,
/// 2 opened read-only with file_accesses, 3 read since), the tgid that used it last, and its
/// `struct inode` (a `struct file` address reused by another file no longer matches).
///
/// Entries end at the last close; when the last process holding the file exits without
/// closing it, the kernel program at `sched_process_exit` removes it before the kernel
/// frees the file. What that misses (fds beyond the walk's bound) the agent's once-a-second
/// sweep removes when the last user is gone. Each such removal is counted (`tracking_stale`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdState {
    pub state: u32,
    pub tgid: u32,
    pub inode: u64,
}
const _: () = assert!(size_of::<FdState>() == 16);

/// The LPM-trie key of the in-kernel path filter.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PathKey {
    pub data: [u8; FILTER_KEY_MAX],
}
