//! File events from syscall tracepoints.
//!
//! - `sys_enter_file` (attached to every path-based file syscall's `sys_enter_*`): looks up how
//!   the syscall's arguments map ([`FileSpec`], by syscall number), resolves each path to an
//!   absolute one in the kernel (relative paths against the dirfd or the cwd, fd targets from
//!   the fd's `f_path`), checks it against the watched-prefix LPM trie, and parks a
//!   [`FileRecord`] for this thread only when it is watched.
//! - `sys_exit_file`: completes a parked record with the result and sends it.
//! - `sys_enter_fd` (write*/close): the first write through a tracked fd, and its close.
//!
//! Activity outside watched prefixes costs one path read, at most one directory walk, and one
//! trie lookup on entry, and one failed hash lookup on exit.

use core::ffi::c_void;

use agent_common::{
    DropSlot, EventKind, KernelOffsets,
    file::{
        FILE_PATH_MAX, FILTER_KEY_MAX, FdRecord, FileOp, FileRecord, FileSpec, MAX_PATH_DEPTH,
        MAX_SYSCALL_NR, PathKey, file_flags,
    },
    process::exec_flags,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user_str},
    },
    macros::{map, tracepoint},
    maps::{Array, LpmTrie, LruHashMap, PerCpuArray, RingBuf, lpm_trie::Key},
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

#[repr(C)]
pub struct Scratch {
    pub(crate) buf: [u8; BUF],
    key: Key<PathKey>,
    walk: WalkState,
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

#[map(name = "FD_STATE")]
pub(crate) static FD_STATE: LruHashMap<u64, u8> = LruHashMap::with_max_entries(65536, 0);

#[map(name = "FILE_PENDING")]
pub(crate) static FILE_PENDING: LruHashMap<u64, FileRecord> = LruHashMap::with_max_entries(4096, 0);

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
fn watch_all() -> bool {
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
/// where it starts. An empty result (the root) returns `HALF`.
#[inline(always)]
pub(crate) fn walk(
    scratch: *mut Scratch,
    dentry: *const u8,
    vfsmnt: *const u8,
    off: &KernelOffsets,
    rflags: &mut u32,
) -> Result<usize, ()> {
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
            if dentry == root {
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
            1 => {}
            3 => *rflags |= file_flags::PATH_UNRESOLVED,
            _ => *rflags |= file_flags::PATH_TOO_DEEP,
        }
        let pos = core::ptr::read_volatile(&raw const (*ws).pos) as usize;
        Ok(if pos > HALF { HALF } else { pos })
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

/// Resolves a path into `buf` and returns (start, len): the file behind `fd` when `fd >= 0`,
/// else the user string at `uptr` (relative paths against `dfd` or the cwd). There is exactly
/// one directory walk in here, so each program that calls this once verifies one walk.
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
) -> Result<(usize, usize), ()> {
    let (mnt, dentry, end) = if fd >= 0 {
        let (mnt, dentry) = fd_path(task, fd, off)?;
        (mnt, dentry, HALF)
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
            return Ok((HALF + 1, ulen));
        }
        // SAFETY: index inside BUF.
        unsafe { *buf.add(HALF) = b'/' };
        let (mnt, dentry) = if dfd == AT_FDCWD {
            pwd(task, off)?
        } else {
            fd_path(task, dfd, off)?
        };
        (mnt, dentry, HALF + 1 + ulen)
    };
    let mut start = walk(scratch, dentry, mnt, off, rflags)?;
    if fd >= 0 && start == HALF {
        // The fd is the root directory itself.
        start = HALF - 1;
        // SAFETY: index inside BUF.
        unsafe { *buf.add(start) = b'/' };
    }
    Ok((start, end - start))
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
    let Ok(mut start) = walk(scratch, dentry, mnt, off, &mut rflags) else {
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
        0u8
    } else if report_reads() {
        2u8
    } else {
        return;
    };
    let _ = FD_STATE.insert(&file, &state, 0);
}

/// Is the path at buf[start..start+len] under a watched prefix?
#[inline(always)]
pub(crate) fn watched(scratch: *mut Scratch, start: usize, len: usize) -> bool {
    if watch_all() {
        return true;
    }
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
    // Read-only opens are only wanted for file_accesses: skip them before any path work.
    if spec.op == FileOp::Open as u8 && spec.flags >= 0 && !report_reads() {
        let flags = arg(ctx, &off, spec.flags) as u32;
        if flags & O_ACCMODE == 0 && flags & (O_CREAT | O_TRUNC) == 0 {
            return Ok(());
        }
    }
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(())?;
    let rec = REC_SCRATCH.get_ptr_mut(0).ok_or(())?;
    // SAFETY: both pointers come from successful per-CPU lookups; this program is the only
    // user of this CPU's slots while it runs.
    let (buf, rec) = unsafe { ((*scratch).buf.as_mut_ptr(), &mut *rec) };
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let mut rflags = 0u32;

    let fd = if spec.fd >= 0 {
        arg(ctx, &off, spec.fd) as i32
    } else {
        -1
    };
    let dfd = if spec.dfd >= 0 {
        arg(ctx, &off, spec.dfd) as i32
    } else {
        AT_FDCWD
    };
    let first = resolve(
        scratch,
        buf,
        task,
        fd,
        dfd,
        arg(ctx, &off, spec.path),
        &off,
        &mut rflags,
    );
    let mut is_watched = false;
    match first {
        Ok((start, len)) => {
            is_watched = watched(scratch, start, len);
            let (n, cut) = copy_path(rec.path.as_mut_ptr(), scratch, start, len);
            rec.path_len = n;
            if cut {
                rflags |= file_flags::PATH_TRUNCATED;
            }
        }
        Err(()) => {
            rec.path_len = 0;
            rflags |= file_flags::PATH_UNRESOLVED;
        }
    }

    rec.path2_len = 0;
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
            // two walks in one program are more than the verifier will explore. Renames and
            // links are rare, so they are always parked; the exit decides whether either
            // path is watched.
            rec.p2_ptr = p2;
            rec.p2_dfd = if spec.dfd2 >= 0 {
                arg(ctx, &off, spec.dfd2) as i32
            } else {
                AT_FDCWD
            };
            if is_watched {
                rflags |= file_flags::WATCHED;
            }
            rflags |= file_flags::RESOLVE_PATH2;
            is_watched = true;
        }
    }
    if !is_watched {
        if rflags & file_flags::PATH_UNRESOLVED != 0 && watch_all() {
            count_drop(DropSlot::FileReadError);
        }
        return Ok(());
    }
    // A watched record whose path is incomplete (it is still sent, flagged). Renames and links
    // are parked before their second path is known: only count those whose first is watched.
    if rflags & (file_flags::PATH_UNRESOLVED | file_flags::PATH_TOO_DEEP) != 0
        && (!TWO_PATHS || rflags & file_flags::WATCHED != 0)
    {
        count_drop(DropSlot::FileReadError);
    }

    let uid_gid = bpf_get_current_uid_gid();
    rec.header = header(EventKind::File, pid_tgid);
    rec.ret = 0;
    rec.inode = 0;
    rec.op = spec.op;
    rec.nr = nr as u32;
    rec.flags = if spec.flags >= 0 {
        arg(ctx, &off, spec.flags) as u32
    } else if spec.how >= 0 {
        let how = arg(ctx, &off, spec.how);
        // SAFETY: bpf_probe_read_user checks the user address.
        unsafe { aya_ebpf::helpers::bpf_probe_read_user(how as *const u64) }.unwrap_or(0) as u32
    } else {
        spec.fixed_flags
    };
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
    rec.fd = if spec.fd >= 0 {
        arg(ctx, &off, spec.fd) as i32
    } else {
        -1
    };
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

#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let parked = FILE_PENDING.get_ptr_mut(&pid_tgid).ok_or(())?;
    let off = offsets();
    // SAFETY: `parked` comes from a successful lookup in this map.
    let parked_flags = unsafe { (*parked).rflags };
    // SAFETY: checked read from the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off.tp_syscall_ret as usize) }.unwrap_or(-1);
    if parked_flags & file_flags::RESOLVE_PATH2 != 0 {
        // Decide whether a rename/link is watched before taking ring space, so an unwatched
        // one can never be counted as a drop. The resolved path goes into the parked record.
        let mut rflags = parked_flags;
        let mut watched2 = false;
        if let Some(scratch) = SCRATCH.get_ptr_mut(0) {
            // SAFETY: this CPU's scratch slot and the parked record, both from successful map
            // lookups; helpers bound every copy.
            unsafe {
                let buf = (*scratch).buf.as_mut_ptr();
                let task = bpf_get_current_task() as *const u8;
                let (p2, dfd2) = ((*parked).p2_ptr, (*parked).p2_dfd);
                if let Ok((start, len)) =
                    resolve(scratch, buf, task, -1, dfd2, p2, &off, &mut rflags)
                {
                    watched2 = watched(scratch, start, len);
                    let (n, cut) = copy_path((*parked).path2.as_mut_ptr(), scratch, start, len);
                    (*parked).path2_len = n;
                    if cut {
                        rflags |= file_flags::PATH2_TRUNCATED;
                    }
                }
                (*parked).rflags = rflags & !file_flags::RESOLVE_PATH2;
            }
        }
        if !watched2 && parked_flags & file_flags::WATCHED == 0 {
            let _ = FILE_PENDING.remove(&pid_tgid);
            return Ok(());
        }
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
        (*out).file = 0;
        (*out).f_mode = 0;
        if (*out).op == FileOp::Open as u8 && ret >= 0 {
            let flags = (*out).flags;
            // SAFETY: helper without preconditions; used only with probe reads.
            let task = bpf_get_current_task() as *const u8;
            if let Ok(file) = fd_file(task, ret as i32, &off) {
                let inode: *const u8 =
                    read_field(file, off.file_inode).unwrap_or(core::ptr::null());
                (*out).inode = read_field::<u64>(inode, off.inode_ino).unwrap_or(0);
                (*out).file = file as u64;
                (*out).f_mode = read_field::<u32>(file, off.file_mode).unwrap_or(0);
                track_open(file as u64, flags);
            }
        }
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
    let fd = arg(ctx, &off, 0) as u32;
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let file = fd_file(task, fd as i32, &off)? as u64;
    let key = file;
    let state = FD_STATE.get_ptr_mut(&key).ok_or(())?;
    // SAFETY: checked read from the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(off.tp_syscall_nr as usize) }.map_err(|_| ())?;
    let op = FILE_SPECS.get(nr as u32).ok_or(())?.op;
    // FD_STATE values: 0 opened for writing, 1 written since, 2 opened read-only (only with
    // file_accesses), 3 read since.
    // SAFETY: `state` comes from a successful lookup in this map.
    let st = unsafe { *state };
    let emit = if op == FileOp::Write as u8 {
        if st != 0 {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { *state = 1 };
        true
    } else if op == FileOp::Read as u8 {
        if st != 2 {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { *state = 3 };
        true
    } else if op == FileOp::CloseWrite as u8 {
        // An unwritten file stays tracked while other references remain (a shell's `> file`
        // opens, dup2s to 1, closes the original, then writes); the close of the last
        // reference forgets it, so a later file reusing the address is not mistaken for it.
        let refs = read_field::<u64>(file as *const u8, off.file_refcnt)
            .map(|r| r.wrapping_add(u64::from(off.file_refcnt_bias)))
            .unwrap_or(1);
        if st == 1 || refs <= 1 {
            let _ = FD_STATE.remove(&key);
        }
        st == 1
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
        file,
        inode: read_field::<u64>(inode, off.inode_ino).unwrap_or(0),
    };
    if FILE_RING.output::<FdRecord>(&rec, 0).is_err() {
        count_drop(DropSlot::FileRingFull);
    }
    Ok(())
}
