//! File events from syscall tracepoints.
//!
//! "Watched" is decided by identity, never by spelling: the walk up a kernel object's dentry
//! ancestry (crossing mounts) looks each directory up by (device, inode) in `WATCHED_DIRS`,
//! and the first hit names the watched folder; the path sent is the part below it. So `..`,
//! doubled slashes, symlinked parents, bind mounts, `/proc/<pid>/cwd` and other mount
//! namespaces all land on the same folder.
//!
//! - Opens: the entry keeps the flags ([`OpenArgs`]); the exit walks the opened `struct file`.
//! - fd-based changes (fchmod, ftruncate, …): the entry walks the fd's file.
//! - Path-based changes (unlink, rename, mkdir, chmod, …) have no kernel object at a
//!   tracepoint: the entry walks the dirfd or the cwd and appends the caller's string
//!   ([`file_flags::PATH_FROM_USER`]). A plain name in a watched folder is exact; anything the
//!   kernel cannot decide (an absolute string, a name with `/`, a name a chmod may follow) is
//!   sent when the call succeeds and the agent resolves it.
//! - `sys_enter_fd` (write*/close, the copy syscalls, shared writable mmap): the first write
//!   through a tracked file, and its close.

use core::ffi::c_void;

use agent_common::{
    DropSlot, EventKind, KernelOffsets,
    file::{
        DirKey, FILE_PATH_MAX, FILTER_KEY_MAX, FdRecord, FdState, FileOp, FileRecord, FileSpec,
        MAX_PATH_DEPTH, MAX_SYSCALL_NR, OpenArgs, PathKey, WATCH_NONE, file_flags,
    },
    process::exec_flags,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user_str},
    },
    macros::{map, tracepoint},
    maps::{Array, HashMap, LpmTrie, PerCpuArray, RingBuf, lpm_trie::Key},
    programs::TracePointContext,
};

use crate::{agent_tgid, count_drop, enabled, header, offsets, read_field};

/// Where the directory walk ends (exclusive); components are written backwards from here.
pub(crate) const HALF: usize = 4096;
/// User strings are read to `HALF + 1`, after a '/' at `HALF`.
const USER_MAX: usize = 512;
const BUF: usize = HALF + 1 + USER_MAX + FILE_PATH_MAX + 64;
const AT_FDCWD: i32 = -100;
pub(crate) const O_ACCMODE: u32 = 3;
pub(crate) const O_CREAT: u32 = 0o100;
pub(crate) const O_TRUNC: u32 = 0o1000;
const PROT_WRITE: u64 = 2;
const MAP_SHARED: u64 = 1;

#[repr(C)]
pub struct Scratch {
    pub(crate) buf: [u8; BUF],
    key: Key<PathKey>,
    dkey: DirKey,
    walk: WalkState,
    pass: Pass,
}

/// Values that differ between the ways into a directory walk and are needed after it. They
/// cross the walk through map memory, which the verifier treats as unknown: the states at the
/// walk are then the same whichever way led there, and each program verifies one walk instead
/// of one per way in (the cost that dominates loading on slow machines).
#[repr(C)]
pub struct Pass {
    mode: u64,
    fd: u64,
    dfd: u64,
    uptr: u64,
    end: u64,
    user: u64,
    open: OpenArgs,
}

/// The directory walk's loop-carried values live in map memory, not registers: the verifier
/// treats what it loads from a map as unknown, so the states at the loop head are the same
/// whichever branch (mount crossing or not) the last iteration took, and pruning keeps
/// verification linear in the depth instead of exponential.
#[repr(C)]
pub struct WalkState {
    dentry: u64,
    mnt: u64,
    mnt_root: u64,
    pos: u64,
    done: u64,
    /// See [`bounded_index`].
    index: u64,
    /// The id of the watched folder the walk stopped at, or [`WATCH_NONE`].
    matched: u64,
    /// A detour through the folders above a mount's root in its own file system (a bind
    /// mount of a subfolder): 0 none, 1 under way, 2 done for the current mount.
    detour: u64,
    /// Where the path string stood when the detour began (restored if it found nothing).
    detour_pos: u64,
}

/// `BUF` rounded up to a power of two, minus one: masks every index into the scratch buffer.
const INDEX_MASK: usize = (BUF.next_power_of_two()) - 1;

/// `v`, stored to and reloaded from map memory, then masked. Old verifiers (5.10) forget the
/// bounds of values the compiler spilled to the stack and refuse map-pointer arithmetic with
/// them; a masked value loaded from a map is bounded on every kernel, and the compiler cannot
/// drop the mask because it cannot see the value.
#[inline(always)]
fn bounded_index(scratch: *mut Scratch, v: usize) -> usize {
    // SAFETY: `scratch` is this CPU's scratch slot (a successful per-CPU lookup).
    unsafe {
        let slot = &raw mut (*scratch).walk.index;
        core::ptr::write_volatile(slot, v as u64);
        (core::ptr::read_volatile(slot) as usize) & INDEX_MASK
    }
}

#[map(name = "FILE_RING")]
pub(crate) static FILE_RING: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

#[map(name = "FILE_SPECS")]
static FILE_SPECS: Array<FileSpec> = Array::with_max_entries(MAX_SYSCALL_NR, 0);

#[map(name = "WATCHED_PATHS")]
static WATCHED_PATHS: LpmTrie<PathKey, u8> = LpmTrie::with_max_entries(4096, 0);

/// Watched folders by identity; see the module docs.
#[map(name = "WATCHED_DIRS")]
static WATCHED_DIRS: HashMap<DirKey, u32> = HashMap::with_max_entries(4096, 0);

/// Plain hash maps: when full, an insert fails and is counted (an LRU would evict silently).
#[map(name = "FD_STATE")]
pub(crate) static FD_STATE: HashMap<u64, FdState> = HashMap::with_max_entries(65536, 0);

#[map(name = "FILE_PENDING")]
pub(crate) static FILE_PENDING: HashMap<u64, FileRecord> = HashMap::with_max_entries(4096, 0);

#[map(name = "OPEN_PENDING")]
static OPEN_PENDING: HashMap<u64, OpenArgs> = HashMap::with_max_entries(16384, 0);

#[map(name = "FILE_SCRATCH")]
pub(crate) static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "FILE_REC_SCRATCH")]
pub(crate) static REC_SCRATCH: PerCpuArray<FileRecord> = PerCpuArray::with_max_entries(1, 0);

/// 1 = every path is watched (no prefix filter).
#[unsafe(no_mangle)]
static WATCH_ALL: u32 = 0;

/// 1 = read-only opens are reported too (file_accesses).
#[unsafe(no_mangle)]
static REPORT_READS: u32 = 0;

#[inline(always)]
pub(crate) fn report_reads() -> bool {
    // SAFETY: as in `watch_all`.
    unsafe { core::ptr::read_volatile(&REPORT_READS) != 0 }
}

#[inline(always)]
pub(crate) fn watch_all() -> bool {
    // SAFETY: plain read of a loader-filled global; volatile keeps the placeholder unfolded.
    unsafe { core::ptr::read_volatile(&WATCH_ALL) != 0 }
}

#[inline(always)]
fn arg(ctx: &TracePointContext, off: &KernelOffsets, i: i8) -> u64 {
    if i < 0 {
        return 0;
    }
    let at = off.tp_syscall_args.wrapping_add(8 * ((i as u32) & 7));
    // SAFETY: reads from the tracepoint record through bpf_probe_read_kernel, which checks.
    unsafe { ctx.read_at::<u64>(at as usize) }.unwrap_or(0)
}

/// Writes the path of (dentry, vfsmount) so that it ends at `HALF` (exclusive) and returns
/// where it starts. An empty result (the root) returns `HALF`. With `check`, each directory on
/// the way is looked up in `WATCHED_DIRS`; the walk stops at the first watched one, the path
/// written is then the part below it, and its id is returned (else [`WATCH_NONE`]).
#[inline(always)]
pub(crate) fn walk(
    scratch: *mut Scratch,
    dentry: *const u8,
    vfsmnt: *const u8,
    off: &KernelOffsets,
    rflags: &mut u32,
    check: bool,
) -> Result<(usize, u32), ()> {
    let mnt_root: *const u8 = read_field(vfsmnt, off.vfsmount_root)?;
    // SAFETY: `scratch` is this CPU's scratch value (a successful per-CPU lookup), used by
    // this program only while it runs. Volatile accesses keep the loop state in memory.
    unsafe {
        let ws = &raw mut (*scratch).walk;
        let buf = (*scratch).buf.as_mut_ptr();
        core::ptr::write_volatile(&raw mut (*ws).dentry, dentry as u64);
        core::ptr::write_volatile(
            &raw mut (*ws).mnt,
            vfsmnt.wrapping_sub(off.mount_mnt as usize) as u64,
        );
        core::ptr::write_volatile(&raw mut (*ws).mnt_root, mnt_root as u64);
        core::ptr::write_volatile(&raw mut (*ws).pos, HALF as u64);
        core::ptr::write_volatile(&raw mut (*ws).done, 0);
        core::ptr::write_volatile(&raw mut (*ws).matched, u64::from(WATCH_NONE));
        core::ptr::write_volatile(&raw mut (*ws).detour, 0);
        core::ptr::write_volatile(&raw mut (*ws).detour_pos, HALF as u64);
        // Every way out of an iteration goes through the loop head (a failed read sets `done`
        // and continues): with a single exit, the states after the walk prune to one.
        macro_rules! read_or_stop {
            ($base:expr, $off:expr) => {
                match read_field($base, $off) {
                    Ok(v) => v,
                    Err(()) => {
                        core::ptr::write_volatile(&raw mut (*ws).done, 3);
                        continue;
                    }
                }
            };
        }
        for _ in 0..MAX_PATH_DEPTH {
            if core::ptr::read_volatile(&raw const (*ws).done) != 0 {
                break;
            }
            let dentry = core::ptr::read_volatile(&raw const (*ws).dentry) as *const u8;
            let mnt = core::ptr::read_volatile(&raw const (*ws).mnt) as *const u8;
            let root = core::ptr::read_volatile(&raw const (*ws).mnt_root) as *const u8;
            if check {
                let inode: u64 = read_or_stop!(dentry, off.dentry_inode);
                // A negative dentry (no inode) is never a watched folder.
                if inode != 0 {
                    let inode = inode as *const u8;
                    let ino: u64 = read_or_stop!(inode, off.inode_ino);
                    let sb: *const u8 = read_or_stop!(inode, off.inode_sb);
                    let dev: u32 = read_or_stop!(sb, off.sb_dev);
                    let dkey = &raw mut (*scratch).dkey;
                    (*dkey).ino = ino;
                    (*dkey).dev = dev;
                    (*dkey)._pad = 0;
                    if let Some(id) = WATCHED_DIRS.get(&*dkey) {
                        core::ptr::write_volatile(&raw mut (*ws).matched, u64::from(*id));
                        core::ptr::write_volatile(&raw mut (*ws).done, 4);
                        continue;
                    }
                }
            }
            let detour = core::ptr::read_volatile(&raw const (*ws).detour);
            if dentry == root && check && detour == 0 {
                // The root of a mount may be a folder below its file system's root (a bind
                // mount of a subfolder): the folders above it in that file system are
                // checked first, so a bind mount of `D/sub` is still inside D. Their names
                // go into the path as usual; if none of them is watched, the walk comes back
                // here (detour 2) and crosses to the mount point.
                let up: *const u8 = read_or_stop!(dentry, off.dentry_parent);
                if up != dentry {
                    core::ptr::write_volatile(&raw mut (*ws).detour, 1);
                    core::ptr::write_volatile(
                        &raw mut (*ws).detour_pos,
                        core::ptr::read_volatile(&raw const (*ws).pos),
                    );
                }
            }
            if dentry == root && core::ptr::read_volatile(&raw const (*ws).detour) != 1 {
                core::ptr::write_volatile(&raw mut (*ws).detour, 0);
                let parent: *const u8 = read_or_stop!(mnt, off.mount_parent);
                if parent == mnt {
                    core::ptr::write_volatile(&raw mut (*ws).done, 1);
                    continue;
                }
                let point: *const u8 = read_or_stop!(mnt, off.mount_mountpoint);
                let proot: *const u8 = read_or_stop!(
                    parent.wrapping_add(off.mount_mnt as usize),
                    off.vfsmount_root
                );
                core::ptr::write_volatile(&raw mut (*ws).dentry, point as u64);
                core::ptr::write_volatile(&raw mut (*ws).mnt, parent as u64);
                core::ptr::write_volatile(&raw mut (*ws).mnt_root, proot as u64);
                continue;
            }
            let parent: *const u8 = read_or_stop!(dentry, off.dentry_parent);
            if parent == dentry {
                if detour == 1 {
                    // The detour reached its file system's root without a watched folder:
                    // back to the mount's root, and across to its mount point.
                    core::ptr::write_volatile(&raw mut (*ws).detour, 2);
                    core::ptr::write_volatile(
                        &raw mut (*ws).pos,
                        core::ptr::read_volatile(&raw const (*ws).detour_pos),
                    );
                    core::ptr::write_volatile(&raw mut (*ws).dentry, root as u64);
                    continue;
                }
                core::ptr::write_volatile(&raw mut (*ws).done, 1);
                continue;
            }
            let name: *const u8 = read_or_stop!(dentry, off.dentry_name);
            let len: u32 = read_or_stop!(dentry, off.dentry_name_len);
            let len = (len & 0xff) as u64;
            let pos = core::ptr::read_volatile(&raw const (*ws).pos);
            if pos < len + 1 || pos > HALF as u64 {
                core::ptr::write_volatile(&raw mut (*ws).done, 2);
                continue;
            }
            let start = ((pos - len) as usize) & (HALF - 1);
            // `start` < HALF and `len` <= 255, so the write stays inside `buf`
            // (BUF > HALF + 255); the helper faults cleanly on a bad source address.
            bpf_probe_read_kernel(
                buf.add(start).cast::<c_void>(),
                len as u32,
                name.cast::<c_void>(),
            );
            let slash = ((pos - len - 1) as usize) & (HALF - 1);
            *buf.add(slash) = b'/';
            core::ptr::write_volatile(&raw mut (*ws).pos, pos - len - 1);
            core::ptr::write_volatile(&raw mut (*ws).dentry, parent as u64);
        }
        match core::ptr::read_volatile(&raw const (*ws).done) {
            1 | 4 => {}
            3 => *rflags |= file_flags::PATH_UNRESOLVED,
            _ => *rflags |= file_flags::PATH_TOO_DEEP,
        }
        let pos = core::ptr::read_volatile(&raw const (*ws).pos) as usize;
        let matched = core::ptr::read_volatile(&raw const (*ws).matched) as u32;
        Ok((if pos > HALF { HALF } else { pos }, matched))
    }
}

/// The `struct file *` behind an fd of the current task.
#[inline(always)]
fn fd_file(task: *const u8, fd: i32, off: &KernelOffsets) -> Result<*const u8, ()> {
    if fd < 0 {
        return Err(());
    }
    let files: *const u8 = read_field(task, off.task_files)?;
    let fdt: *const u8 = read_field(files, off.files_fdt)?;
    let max: u32 = read_field(fdt, off.fdtable_max_fds)?;
    if fd as u32 >= max {
        return Err(());
    }
    let arr: *const u8 = read_field(fdt, off.fdtable_fd)?;
    let file: *const u8 = read_field(arr, (fd as u32).wrapping_mul(8))?;
    if file.is_null() { Err(()) } else { Ok(file) }
}

/// (vfsmount, dentry) of an open fd of the current task.
#[inline(always)]
fn fd_path(task: *const u8, fd: i32, off: &KernelOffsets) -> Result<(*const u8, *const u8), ()> {
    let file = fd_file(task, fd, off)?;
    let mnt: *const u8 = read_field(file, off.file_path.wrapping_add(off.path_mnt))?;
    let dentry: *const u8 = read_field(file, off.file_path.wrapping_add(off.path_dentry))?;
    Ok((mnt, dentry))
}

/// A resolved path in the scratch buffer: buf[start..start + len]. `watch` is the watched
/// folder it lies in (then the path is relative to it) or [`WATCH_NONE`] (then absolute);
/// `base_len` bytes come from kernel objects, the rest is the caller's string (`user`).
#[derive(Clone, Copy)]
pub(crate) struct Resolved {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) watch: u32,
    pub(crate) base_len: usize,
    pub(crate) user: bool,
}

/// Resolves a path into `buf`: the file behind `fd` when `fd >= 0`, else the user string at
/// `uptr` (an absolute one as it is; a relative one appended to the walk of `dfd` or the cwd;
/// an empty one, as with AT_EMPTY_PATH, is `dfd` itself). There is exactly one directory walk
/// in here, so each program that calls this once verifies one walk.
#[inline(always)]
#[allow(
    clippy::too_many_arguments,
    reason = "plain values the verifier tracks in registers; a struct would go through the stack"
)]
fn resolve(
    scratch: *mut Scratch,
    buf: *mut u8,
    task: *const u8,
    fd: i32,
    dfd: i32,
    uptr: u64,
    off: &KernelOffsets,
    rflags: &mut u32,
) -> Result<Resolved, ()> {
    let (mnt, dentry, end, user) = if fd >= 0 {
        let (mnt, dentry) = fd_path(task, fd, off)?;
        (mnt, dentry, HALF, false)
    } else {
        // SAFETY: reads at most USER_MAX bytes to buf[HALF + 1..], inside BUF.
        let n = unsafe {
            bpf_probe_read_user_str(
                buf.add(HALF + 1).cast::<c_void>(),
                USER_MAX as u32,
                uptr as *const c_void,
            )
        };
        if n <= 0 {
            return Err(());
        }
        let ulen = ((n - 1) as usize) & (USER_MAX - 1);
        // SAFETY: index inside BUF.
        if unsafe { *buf.add(HALF + 1) } == b'/' {
            return Ok(Resolved {
                start: HALF + 1,
                len: ulen,
                watch: WATCH_NONE,
                base_len: 0,
                user: true,
            });
        }
        let (mnt, dentry) = if dfd == AT_FDCWD {
            pwd(task, off)?
        } else {
            fd_path(task, dfd, off)?
        };
        if ulen == 0 {
            (mnt, dentry, HALF, false)
        } else {
            // SAFETY: index inside BUF.
            unsafe { *buf.add(HALF) = b'/' };
            (mnt, dentry, HALF + 1 + ulen, true)
        }
    };
    // SAFETY: fields of this CPU's scratch value.
    let (end_slot, user_slot) =
        unsafe { (&raw mut (*scratch).pass.end, &raw mut (*scratch).pass.user) };
    // SAFETY: as above.
    unsafe {
        core::ptr::write_volatile(end_slot, end as u64);
        core::ptr::write_volatile(user_slot, u64::from(user));
    }
    let (mut start, watch) = walk(scratch, dentry, mnt, off, rflags, true)?;
    // SAFETY: as above.
    let (end, user) = unsafe {
        (
            core::ptr::read_volatile(end_slot) as usize,
            core::ptr::read_volatile(user_slot) != 0,
        )
    };
    if watch == WATCH_NONE && !user && start == HALF {
        // The object is the root directory itself.
        start = HALF - 1;
        // SAFETY: index inside BUF.
        unsafe { *buf.add(start) = b'/' };
    }
    Ok(Resolved {
        start,
        len: end - start,
        watch,
        base_len: HALF - start,
        user,
    })
}

/// Writes the working directory of `task` (`fs->pwd`) into `dst` (CWD_MAX bytes); returns
/// (bytes, [`exec_flags`] bits for an unresolved or cut path).
#[inline(always)]
pub(crate) fn task_cwd(task: *const u8, dst: *mut u8, off: &KernelOffsets) -> (u32, u32) {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return (0, exec_flags::CWD_UNRESOLVED);
    };
    let Ok((mnt, dentry)) = pwd(task, off) else {
        return (0, exec_flags::CWD_UNRESOLVED);
    };
    let mut rflags = 0u32;
    let Ok((mut start, _)) = walk(scratch, dentry, mnt, off, &mut rflags, false) else {
        return (0, exec_flags::CWD_UNRESOLVED);
    };
    if start == HALF {
        start = HALF - 1;
        // SAFETY: this CPU's scratch slot (a successful per-CPU lookup); index inside BUF.
        unsafe { *(*scratch).buf.as_mut_ptr().add(start) = b'/' };
    }
    let mut flags = 0;
    if rflags & (file_flags::PATH_UNRESOLVED | file_flags::PATH_TOO_DEEP) != 0 {
        flags |= exec_flags::CWD_UNRESOLVED;
    }
    let (n, cut) = copy_path(dst, scratch, start, HALF - start);
    if cut {
        flags |= exec_flags::CWD_TRUNCATED;
    }
    (n, flags)
}

/// (vfsmount, dentry) of the task's working directory.
#[inline(always)]
fn pwd(task: *const u8, off: &KernelOffsets) -> Result<(*const u8, *const u8), ()> {
    let fs: *const u8 = read_field(task, off.task_fs)?;
    let mnt: *const u8 = read_field(fs, off.fs_pwd.wrapping_add(off.path_mnt))?;
    let dentry: *const u8 = read_field(fs, off.fs_pwd.wrapping_add(off.path_dentry))?;
    Ok((mnt, dentry))
}

/// Remembers a file just opened in a watched path, by its `struct file`: opened for writing,
/// its first write and its close after a write are reported; read-only (file_accesses only),
/// its first read. Values: see `try_fd`.
#[inline(always)]
pub(crate) fn track_open(file: u64, flags: u32) {
    let state = if flags & O_ACCMODE != 0 || flags & (O_CREAT | O_TRUNC) != 0 {
        0u32
    } else if report_reads() {
        2u32
    } else {
        return;
    };
    // The opener (the agent forgets entries whose last user is gone) and the inode (an
    // address reused by another file does not match): see `FdState`.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let inode = read_field::<u64>(file as *const u8, offsets().file_inode).unwrap_or(0);
    if FD_STATE
        .insert(&file, &FdState { state, tgid, inode }, 0)
        .is_err()
    {
        count_drop(DropSlot::FileTrackingFull);
    }
}

/// The most fds of an exiting process that [`forget_exiting_files`] looks at (the agent's
/// sweep handles the rest).
const EXIT_FDS: u32 = 256;

/// At `sched_process_exit`, before the kernel closes the exiting task's files without a
/// syscall: when this task is the last user of its fd table, the tracked files only it holds
/// end here (their `struct file` may be reused by any open right after). Counted.
#[inline(always)]
pub(crate) fn forget_exiting_files() {
    let off = offsets();
    // SAFETY: helper without preconditions; the pointer is only used with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let Ok(files) = read_field::<*const u8>(task, off.task_files) else {
        return;
    };
    // A thread still running (or a CLONE_FILES child) shares the table: not the end yet.
    if files.is_null() || read_field::<u32>(files, off.files_count) != Ok(1) {
        return;
    }
    let Ok(fdt) = read_field::<*const u8>(files, off.files_fdt) else {
        return;
    };
    let Ok(max) = read_field::<u32>(fdt, off.fdtable_max_fds) else {
        return;
    };
    let Ok(arr) = read_field::<*const u8>(fdt, off.fdtable_fd) else {
        return;
    };
    for i in 0..EXIT_FDS {
        if i >= max {
            break;
        }
        let Ok(file) = read_field::<u64>(arr, i.wrapping_mul(8)) else {
            continue;
        };
        if file == 0 || FD_STATE.get_ptr(&file).is_none() {
            continue;
        }
        // Another fd table (a child's) holds it too: its last close ends the tracking.
        let refs = read_field::<u64>(file as *const u8, off.file_refcnt)
            .map(|r| r.wrapping_add(u64::from(off.file_refcnt_bias)))
            .unwrap_or(1);
        if refs <= 1 && FD_STATE.remove(&file).is_ok() {
            count_drop(DropSlot::FileTrackingStale);
        }
    }
}

/// Is the absolute path string at buf[start..start+len] under a watched prefix as spelled?
/// Only a hint for calls that fail (a failed call changes nothing, and its path is resolved
/// by the agent like every caller's string).
#[inline(always)]
fn spelled_watched(scratch: *mut Scratch, start: usize, len: usize) -> bool {
    if start > HALF + 1 {
        return false;
    }
    let n = if len > FILTER_KEY_MAX {
        FILTER_KEY_MAX
    } else {
        len
    };
    let start = bounded_index(scratch, start);
    // SAFETY: `scratch` is this CPU's scratch value; the helper checks the source range.
    unsafe {
        let key = &mut (*scratch).key;
        key.prefix_len = (n as u32) * 8;
        bpf_probe_read_kernel(
            key.data.data.as_mut_ptr().cast::<c_void>(),
            FILTER_KEY_MAX as u32,
            (*scratch).buf.as_ptr().add(start).cast::<c_void>(),
        );
        WATCHED_PATHS.get(&*key).is_some()
    }
}

/// Copies buf[start..start+len] into `dst` (FILE_PATH_MAX bytes); returns (len, truncated).
#[inline(always)]
pub(crate) fn copy_path(
    dst: *mut u8,
    scratch: *mut Scratch,
    start: usize,
    len: usize,
) -> (u32, bool) {
    if start > HALF + 1 {
        return (0, true);
    }
    let start = bounded_index(scratch, start);
    // SAFETY: this CPU's scratch slot.
    let buf = unsafe { (*scratch).buf.as_ptr() };
    let truncated = len > FILE_PATH_MAX - 1;
    let n = if truncated { FILE_PATH_MAX - 1 } else { len };
    // Masked after a round trip through map memory, so that the verifier sees the bound
    // whatever the compiler made of the comparison above.
    let n = bounded_index(scratch, n) & (FILE_PATH_MAX - 1);
    // SAFETY: `dst` has FILE_PATH_MAX bytes, n < FILE_PATH_MAX; start + n < BUF.
    unsafe {
        bpf_probe_read_kernel(
            dst.cast::<c_void>(),
            n as u32,
            buf.add(start).cast::<c_void>(),
        );
    }
    (n as u32, truncated)
}

#[tracepoint(category = "syscalls", name = "sys_enter_openat")]
pub fn sys_enter_file(ctx: TracePointContext) -> u32 {
    let _ = try_enter::<false>(&ctx);
    0
}

/// The same for the syscalls with a second path to resolve (rename, link): a separate
/// program, so the one-path program verifies a single directory walk.
#[tracepoint(category = "syscalls", name = "sys_enter_renameat2")]
pub fn sys_enter_file2(ctx: TracePointContext) -> u32 {
    let _ = try_enter::<true>(&ctx);
    0
}

/// What the entry decided: send whatever the result (a path in a watched folder, or a
/// failed call whose spelling is watched), send only if the call succeeds (the agent resolves
/// the caller's string), or drop.
const SEND_ALWAYS: u32 = file_flags::WATCHED;
const SEND_ON_SUCCESS: u32 = 2048;

/// The send decision for one resolved path (see [`SEND_ALWAYS`]).
#[inline(always)]
fn decide(scratch: *mut Scratch, r: &Resolved) -> u32 {
    if r.watch != WATCH_NONE || watch_all() {
        return SEND_ALWAYS;
    }
    if !r.user {
        return 0; // a kernel object outside every watched folder
    }
    if r.base_len == 0 {
        // An absolute string: the kernel cannot tell where it leads.
        return if spelled_watched(scratch, r.start, r.len) {
            SEND_ALWAYS
        } else {
            SEND_ON_SUCCESS
        };
    }
    // A relative string in an unwatched folder: the agent drops a plain name without
    // touching the file system, and resolves the rest. (A scan of the string here, before
    // or after the walk, makes the programs too complex for the verifiers of 5.10 to 6.18.)
    SEND_ON_SUCCESS
}

/// Copies a resolved path into a record's `path` (second: `path2`) with its flags.
#[inline(always)]
fn store_path(scratch: *mut Scratch, rec: *mut FileRecord, r: &Resolved, second: bool) -> u32 {
    let mut f = 0;
    // SAFETY: `rec` is a per-CPU or parked record from a successful map lookup.
    unsafe {
        let dst = if second {
            (*rec).path2.as_mut_ptr()
        } else {
            (*rec).path.as_mut_ptr()
        };
        let (n, cut) = copy_path(dst, scratch, r.start, r.len);
        let base = if r.base_len > n as usize {
            n
        } else {
            r.base_len as u32
        };
        if second {
            (*rec).path2_len = n;
            (*rec).base2_len = base;
            (*rec).watch2_id = r.watch;
        } else {
            (*rec).path_len = n;
            (*rec).base_len = base;
            (*rec).watch_id = r.watch;
        }
        if cut {
            f |= if second {
                file_flags::PATH2_TRUNCATED
            } else {
                file_flags::PATH_TRUNCATED
            };
        }
    }
    if r.watch != WATCH_NONE {
        f |= if second {
            file_flags::PATH2_IN_WATCH
        } else {
            file_flags::PATH_IN_WATCH
        };
    }
    if r.user {
        f |= if second {
            file_flags::PATH2_FROM_USER
        } else {
            file_flags::PATH_FROM_USER
        };
    }
    f
}

#[inline(always)]
fn try_enter<const TWO_PATHS: bool>(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == agent_tgid() || !enabled(EventKind::File) {
        return Ok(());
    }
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(off.tp_syscall_nr as usize) }.map_err(|_| ())?;
    let spec = *FILE_SPECS.get(nr as u32).ok_or(())?;
    if spec.op == 0 {
        return Ok(());
    }
    let flags = if spec.flags >= 0 {
        arg(ctx, &off, spec.flags) as u32
    } else if spec.how >= 0 {
        let how = arg(ctx, &off, spec.how);
        // SAFETY: bpf_probe_read_user checks the user address.
        unsafe { aya_ebpf::helpers::bpf_probe_read_user(how as *const u64) }.unwrap_or(0) as u32
    } else {
        spec.fixed_flags
    };
    let dfd = if spec.dfd >= 0 {
        arg(ctx, &off, spec.dfd) as i32
    } else {
        AT_FDCWD
    };
    if spec.op == FileOp::Open as u8 {
        // Decided at the exit, by the file the open returns. Read-only opens are only wanted
        // for file_accesses.
        if flags & O_ACCMODE == 0 && flags & (O_CREAT | O_TRUNC) == 0 && !report_reads() {
            return Ok(());
        }
        let args = OpenArgs {
            // SAFETY: helper without preconditions.
            ktime_ns: unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() },
            uptr: if spec.path >= 0 {
                arg(ctx, &off, spec.path)
            } else {
                0
            },
            dfd,
            flags,
            mode: arg(ctx, &off, spec.mode) as u32,
            nr: nr as u32,
        };
        if OPEN_PENDING.insert(&pid_tgid, &args, 0).is_err() {
            count_drop(DropSlot::FilePendingFull);
        }
        return Ok(());
    }
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(())?;
    let rec = REC_SCRATCH.get_ptr_mut(0).ok_or(())?;
    // SAFETY: both pointers come from successful per-CPU lookups; this program is the only
    // user of this CPU's slots while it runs.
    let buf = unsafe { (*scratch).buf.as_mut_ptr() };
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let mut rflags = 0u32;

    let uptr = if spec.path >= 0 {
        arg(ctx, &off, spec.path)
    } else {
        0
    };
    // utimensat(fd, NULL, …) changes the fd's file itself.
    let fd = if spec.fd >= 0 {
        arg(ctx, &off, spec.fd) as i32
    } else if spec.path >= 0 && uptr == 0 {
        dfd
    } else {
        -1
    };
    let mut decision = 0u32;
    match resolve(scratch, buf, task, fd, dfd, uptr, &off, &mut rflags) {
        Ok(r) => {
            rflags |= store_path(scratch, rec, &r, false);
            decision = decide(scratch, &r);
        }
        Err(()) => {
            // SAFETY: this CPU's record slot.
            unsafe {
                (*rec).path_len = 0;
                (*rec).base_len = 0;
                (*rec).watch_id = WATCH_NONE;
            }
            rflags |= file_flags::PATH_UNRESOLVED;
        }
    }
    // SAFETY: this CPU's record slot (a successful per-CPU lookup).
    let rec = unsafe { &mut *rec };
    rec.path2_len = 0;
    rec.base2_len = 0;
    rec.watch2_id = WATCH_NONE;
    if spec.path2 >= 0 {
        let p2 = arg(ctx, &off, spec.path2);
        if spec.path2_raw != 0 {
            // SAFETY: reads at most FILE_PATH_MAX bytes into rec.path2.
            let n = unsafe {
                bpf_probe_read_user_str(
                    rec.path2.as_mut_ptr().cast::<c_void>(),
                    FILE_PATH_MAX as u32,
                    p2 as *const c_void,
                )
            };
            if n > 0 {
                rec.path2_len = ((n - 1) as u32) & (FILE_PATH_MAX as u32 - 1);
            }
        } else if TWO_PATHS {
            // The second path is resolved at exit (see `try_exit`), where no other walk runs:
            // two walks in one program are more than the verifier will explore. So every
            // rename and link by name is parked until its exit.
            let dfd2 = if spec.dfd2 >= 0 {
                arg(ctx, &off, spec.dfd2) as i32
            } else {
                AT_FDCWD
            };
            rec.p2_ptr = p2;
            rec.p2_dfd = dfd2;
            rflags |= file_flags::RESOLVE_PATH2;
        }
    }
    if decision == 0 && rflags & file_flags::RESOLVE_PATH2 == 0 {
        if rflags & file_flags::PATH_UNRESOLVED != 0 && watch_all() {
            count_drop(DropSlot::FileReadError);
        }
        return Ok(());
    }
    // A record sent with an incomplete path (flagged).
    if rflags & (file_flags::PATH_UNRESOLVED | file_flags::PATH_TOO_DEEP) != 0 && decision != 0 {
        count_drop(DropSlot::FileReadError);
    }
    rflags |= decision;

    let uid_gid = bpf_get_current_uid_gid();
    rec.header = header(EventKind::File, pid_tgid);
    rec.ret = 0;
    rec.inode = 0;
    rec.file = 0;
    rec.f_mode = 0;
    rec.op = spec.op;
    rec.nr = nr as u32;
    rec.flags = flags;
    rec.mode = arg(ctx, &off, spec.mode) as u32;
    rec.arg_uid = if spec.uid >= 0 {
        arg(ctx, &off, spec.uid) as u32
    } else {
        u32::MAX
    };
    rec.arg_gid = if spec.gid >= 0 {
        arg(ctx, &off, spec.gid) as u32
    } else {
        u32::MAX
    };
    rec.fd = fd;
    rec.uid = uid_gid as u32;
    rec.gid = (uid_gid >> 32) as u32;
    rec.rflags = rflags;
    if FILE_PENDING.insert(&pid_tgid, &*rec, 0).is_err() {
        count_drop(DropSlot::FilePendingFull);
    }
    Ok(())
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub fn sys_exit_file(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

/// Which parked state an exit completes.
const EXIT_OPEN: u32 = 1;
const EXIT_PATH2: u32 = 2;
const EXIT_PLAIN: u32 = 3;

#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Result<(), ()> {
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(())?;
    let rec = REC_SCRATCH.get_ptr_mut(0).ok_or(())?;
    // What to resolve here (one walk at most, whichever state this is): the opened file, a
    // failed open's string, or a rename's or link's second path. The choice goes through
    // `Pass`, and everything after the walk is read again (see [`Pass`]).
    exit_choose(ctx, scratch)?;
    // SAFETY: fields of this CPU's scratch value.
    let (mode, fd, dfd, uptr) = unsafe {
        let p = &raw const (*scratch).pass;
        (
            core::ptr::read_volatile(&raw const (*p).mode) as u32,
            core::ptr::read_volatile(&raw const (*p).fd) as i32,
            core::ptr::read_volatile(&raw const (*p).dfd) as i32,
            core::ptr::read_volatile(&raw const (*p).uptr),
        )
    };
    let off = offsets();
    let mut rflags = 0u32;
    let mut decision = 0u32;
    let mut extra = 0u32;
    if mode != EXIT_PLAIN {
        // SAFETY: this CPU's scratch slot.
        let buf = unsafe { (*scratch).buf.as_mut_ptr() };
        // SAFETY: helper without preconditions; used only with probe reads.
        let task = unsafe { bpf_get_current_task() } as *const u8;
        if let Ok(r) = resolve(scratch, buf, task, fd, dfd, uptr, &off, &mut rflags) {
            // A second path goes to the per-CPU record first, then into the parked one.
            extra = store_path(scratch, rec, &r, mode == EXIT_PATH2);
            decision = decide(scratch, &r);
        } else if mode == EXIT_OPEN {
            return Ok(());
        }
    }
    // SAFETY: as above.
    let mode = unsafe { core::ptr::read_volatile(&raw const (*scratch).pass.mode) } as u32;
    if mode == EXIT_OPEN {
        exit_open(ctx, scratch, rec, rflags | extra, decision)
    } else {
        exit_parked(ctx, rec, mode, rflags | extra, decision)
    }
}

/// Which state this exit completes, into `Pass` (mode, and the fd, dirfd and string to
/// resolve); an open's arguments go to `Pass::open`. Err: nothing to do.
#[inline(always)]
fn exit_choose(ctx: &TracePointContext, scratch: *mut Scratch) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off.tp_syscall_ret as usize) }.unwrap_or(-1);
    let (mode, fd, dfd, uptr) = if let Some(a) = OPEN_PENDING.get_ptr(&pid_tgid) {
        // SAFETY: a successful lookup in this map.
        let a = unsafe { *a };
        let _ = OPEN_PENDING.remove(&pid_tgid);
        // SAFETY: a field of this CPU's scratch value.
        unsafe { core::ptr::write_volatile(&raw mut (*scratch).pass.open, a) };
        if ret >= 0 {
            (EXIT_OPEN, ret as i32, AT_FDCWD, 0)
        } else if a.uptr != 0 {
            (EXIT_OPEN, -1, a.dfd, a.uptr)
        } else {
            return Err(());
        }
    } else {
        let parked = FILE_PENDING.get_ptr(&pid_tgid).ok_or(())?;
        // SAFETY: `parked` comes from a successful lookup in this map.
        let (pf, p2, dfd2) = unsafe { ((*parked).rflags, (*parked).p2_ptr, (*parked).p2_dfd) };
        if pf & file_flags::RESOLVE_PATH2 != 0 {
            (EXIT_PATH2, -1, dfd2, p2)
        } else {
            (EXIT_PLAIN, -1, AT_FDCWD, 0)
        }
    };
    // SAFETY: fields of this CPU's scratch value.
    unsafe {
        let p = &raw mut (*scratch).pass;
        core::ptr::write_volatile(&raw mut (*p).mode, u64::from(mode));
        core::ptr::write_volatile(&raw mut (*p).fd, fd as u64);
        core::ptr::write_volatile(&raw mut (*p).dfd, dfd as u64);
        core::ptr::write_volatile(&raw mut (*p).uptr, uptr);
    }
    Ok(())
}

/// The exit of an open: sent when its file is in a watched folder, or when a failed open's
/// spelling is (it changed nothing).
#[inline(always)]
fn exit_open(
    ctx: &TracePointContext,
    scratch: *mut Scratch,
    rec: *mut FileRecord,
    rflags: u32,
    decision: u32,
) -> Result<(), ()> {
    if decision != SEND_ALWAYS {
        if rflags & file_flags::PATH_TOO_DEEP != 0 {
            count_drop(DropSlot::FileTooDeep);
        }
        return Ok(());
    }
    if rflags & (file_flags::PATH_UNRESOLVED | file_flags::PATH_TOO_DEEP) != 0 {
        count_drop(DropSlot::FileReadError);
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off.tp_syscall_ret as usize) }.unwrap_or(-1);
    // SAFETY: a field of this CPU's scratch value.
    let a = unsafe { core::ptr::read_volatile(&raw const (*scratch).pass.open) };
    let uid_gid = bpf_get_current_uid_gid();
    // SAFETY: this CPU's record slot (a successful per-CPU lookup).
    let rec = unsafe { &mut *rec };
    rec.header = header(EventKind::File, pid_tgid);
    rec.header.ktime_ns = a.ktime_ns;
    rec.ret = ret;
    rec.inode = 0;
    rec.file = 0;
    rec.f_mode = 0;
    rec.op = FileOp::Open as u8;
    rec.nr = a.nr;
    rec.flags = a.flags;
    rec.mode = a.mode;
    rec.arg_uid = u32::MAX;
    rec.arg_gid = u32::MAX;
    rec.fd = -1;
    rec.uid = uid_gid as u32;
    rec.gid = (uid_gid >> 32) as u32;
    rec.rflags = rflags;
    rec.path2_len = 0;
    rec.base2_len = 0;
    rec.watch2_id = WATCH_NONE;
    rec.p2_ptr = 0;
    rec.p2_dfd = 0;
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    if ret >= 0
        && let Ok(file) = fd_file(task, ret as i32, &off)
    {
        let inode: *const u8 = read_field(file, off.file_inode).unwrap_or(core::ptr::null());
        rec.inode = read_field::<u64>(inode, off.inode_ino).unwrap_or(0);
        rec.file = file as u64;
        rec.f_mode = read_field::<u32>(file, off.file_mode).unwrap_or(0);
        track_open(file as u64, a.flags);
    }
    if FILE_RING.output::<FileRecord>(rec, 0).is_err() {
        count_drop(DropSlot::FileRingFull);
    }
    Ok(())
}

/// The exit of a parked path call: its second path (resolved into the per-CPU `rec`) joins
/// the parked record, which is sent if the entry's or the exit's decision says so.
#[inline(always)]
fn exit_parked(
    ctx: &TracePointContext,
    rec: *mut FileRecord,
    mode: u32,
    rflags: u32,
    decision: u32,
) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off.tp_syscall_ret as usize) }.unwrap_or(-1);
    let parked = FILE_PENDING.get_ptr_mut(&pid_tgid).ok_or(())?;
    // SAFETY: `parked` comes from a successful lookup in this map, `rec` from a per-CPU one.
    let parked_flags = unsafe { (*parked).rflags };
    if mode == EXIT_PATH2 {
        // SAFETY: as above; the helper bounds the copy to the field's size.
        unsafe {
            bpf_probe_read_kernel(
                (*parked).path2.as_mut_ptr().cast::<c_void>(),
                FILE_PATH_MAX as u32,
                (*rec).path2.as_ptr().cast::<c_void>(),
            );
            (*parked).path2_len = (*rec).path2_len;
            (*parked).base2_len = (*rec).base2_len;
            (*parked).watch2_id = (*rec).watch2_id;
            (*parked).rflags = (parked_flags | rflags) & !file_flags::RESOLVE_PATH2;
        }
    }
    let decided = parked_flags | decision;
    let send = decided & SEND_ALWAYS != 0 || (decided & SEND_ON_SUCCESS != 0 && ret == 0);
    if !send {
        let _ = FILE_PENDING.remove(&pid_tgid);
        return Ok(());
    }
    let Some(mut entry) = FILE_RING.reserve::<FileRecord>(0) else {
        count_drop(DropSlot::FileRingFull);
        let _ = FILE_PENDING.remove(&pid_tgid);
        return Ok(());
    };
    let out: *mut FileRecord = entry.as_mut_ptr();
    // SAFETY: copies one FileRecord from the map value into the reserved slot of the same
    // size; the kernel helper bounds the copy.
    unsafe {
        bpf_probe_read_kernel(
            out.cast::<c_void>(),
            size_of::<FileRecord>() as u32,
            parked.cast::<c_void>(),
        );
        (*out).ret = ret;
    }
    entry.submit(0);
    let _ = FILE_PENDING.remove(&pid_tgid);
    Ok(())
}

#[tracepoint(category = "syscalls", name = "sys_enter_write")]
pub fn sys_enter_fd(ctx: TracePointContext) -> u32 {
    let _ = try_fd(&ctx);
    0
}

#[inline(always)]
fn try_fd(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(off.tp_syscall_nr as usize) }.map_err(|_| ())?;
    let spec = FILE_SPECS.get(nr as u32).ok_or(())?;
    let (op, fd_arg) = (spec.op, spec.fd);
    if op == FileOp::MapWrite as u8 {
        // Only a shared, writable mapping writes to the file.
        let prot = arg(ctx, &off, 2);
        let mflags = arg(ctx, &off, 3);
        if prot & PROT_WRITE == 0 || mflags & MAP_SHARED == 0 {
            return Ok(());
        }
    }
    let fd = arg(ctx, &off, if fd_arg >= 0 { fd_arg } else { 0 }) as u32;
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let file = fd_file(task, fd as i32, &off)? as u64;
    let key = file;
    let state = FD_STATE.get_ptr_mut(&key).ok_or(())?;
    // SAFETY: `state` comes from a successful lookup in this map.
    let tracked_inode = unsafe { (*state).inode };
    let inode_now = read_field::<u64>(file as *const u8, off.file_inode).unwrap_or(0);
    if tracked_inode != inode_now {
        // The address belongs to another file now: the tracked one ended unseen.
        let _ = FD_STATE.remove(&key);
        count_drop(DropSlot::FileTrackingStale);
        return Ok(());
    }
    // SAFETY: as above. The last user: the sweep forgets entries whose last user is gone.
    unsafe { (*state).tgid = (pid_tgid >> 32) as u32 };
    // dup2/dup3 (`dfd` names the source fd) close the target only if it is another file.
    if spec.dfd >= 0
        && let Ok(src) = fd_file(task, arg(ctx, &off, spec.dfd) as i32, &off)
        && src as u64 == file
    {
        return Ok(());
    }
    // FD_STATE values: 0 opened for writing, 1 written since, 2 opened read-only (only with
    // file_accesses), 3 read since.
    // SAFETY: `state` comes from a successful lookup in this map.
    let st = unsafe { (*state).state };
    let emit = if op == FileOp::Write as u8 || op == FileOp::MapWrite as u8 {
        if st != 0 {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { (*state).state = 1 };
        true
    } else if op == FileOp::Read as u8 {
        if st != 2 {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { (*state).state = 3 };
        true
    } else if op == FileOp::CloseWrite as u8 {
        // An unwritten file stays tracked while other references remain (a shell's `> file`
        // opens, dup2s to 1, closes the original, then writes); the close of the last
        // reference forgets it (and is reported), so a later file reusing the address is not
        // mistaken for it.
        let refs = read_field::<u64>(file as *const u8, off.file_refcnt)
            .map(|r| r.wrapping_add(u64::from(off.file_refcnt_bias)))
            .unwrap_or(1);
        if st == 1 || refs <= 1 {
            let _ = FD_STATE.remove(&key);
        }
        // As inotify's IN_CLOSE_WRITE (and osquery's UPDATED for it): the last close of a
        // file opened for writing is reported even when nothing was written (`touch`).
        st == 1 || (st == 0 && refs <= 1)
    } else {
        false
    };
    if !emit {
        return Ok(());
    }
    let inode: *const u8 =
        read_field(file as *const u8, off.file_inode).unwrap_or(core::ptr::null());
    let rec = FdRecord {
        header: header(EventKind::FileFd, pid_tgid),
        op: u32::from(op),
        fd: fd as i32,
        nr: nr as u32,
        _pad: 0,
        file,
        inode: read_field::<u64>(inode, off.inode_ino).unwrap_or(0),
    };
    if FILE_RING.output::<FdRecord>(&rec, 0).is_err() {
        count_drop(DropSlot::FileRingFull);
    }
    Ok(())
}
