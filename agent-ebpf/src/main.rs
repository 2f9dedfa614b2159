//! Osprey's kernel programs.
//!
//! Shape of every probe: a thin `#[tracepoint]` entry calls a `try_*` function; anything that
//! goes wrong is counted in the per-CPU `DROPS` array, never swallowed. Struct offsets come from
//! the `OFFSETS` global that the agent fills from the running kernel's BTF before loading.
#![no_std]
#![no_main]
#![allow(
    clippy::needless_borrows_for_generic_args,
    reason = "map keys and values go by reference: a by-value record would be copied onto the 512-byte BPF stack"
)]

mod file;
mod socket;
mod uring;

use agent_common::{
    DropSlot, EventKind, KernelOffsets, RecordHeader,
    process::{
        ARGS_MAX, ENV_MAX, ExecArgs, ExecFailRecord, ExecRecord, ExitRecord, ForkRecord, PATH_MAX,
        TaskRecord, exec_flags,
    },
};
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_get_current_uid_gid, bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str_bytes, generated::bpf_probe_read_user,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
};

/// Filled in by the agent before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets::unresolved();
/// The agent's own tgid: its activity is not reported.
#[unsafe(no_mangle)]
static AGENT_TGID: u32 = 0;
/// Most argv bytes kept per exec (`--exec_args_max`, at most ARGS_MAX - 1).
#[unsafe(no_mangle)]
static ARGS_LIMIT: u32 = (ARGS_MAX - 1) as u32;

#[inline(always)]
fn args_limit() -> u32 {
    // SAFETY: as in `offsets`.
    unsafe { core::ptr::read_volatile(&ARGS_LIMIT) }
}

/// Most environment bytes kept per exec (`--exec_env_max`); 0 = not read at all.
#[unsafe(no_mangle)]
static ENV_LIMIT: u32 = 0;

#[inline(always)]
fn env_limit() -> u32 {
    // SAFETY: as in `offsets`.
    unsafe { core::ptr::read_volatile(&ENV_LIMIT) }
}

/// Bit `kind` set = that [`EventKind`] is enabled.
#[unsafe(no_mangle)]
static ENABLED_KINDS: u32 = 0;

/// 8 MiB by default; the agent resizes it from its flags before load.
#[map(name = "PROCESS_RING")]
static PROCESS_RING: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

#[map(name = "DROPS")]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DropSlot::COUNT, 0);

#[inline(always)]
pub(crate) fn offsets() -> KernelOffsets {
    // SAFETY: a plain read of a global the loader fills before the program runs; volatile so
    // the compiler does not fold the compile-time placeholder into the code.
    unsafe { core::ptr::read_volatile(&OFFSETS) }
}

#[inline(always)]
pub(crate) fn agent_tgid() -> u32 {
    // SAFETY: as in `offsets`.
    unsafe { core::ptr::read_volatile(&AGENT_TGID) }
}

#[inline(always)]
pub(crate) fn enabled(kind: EventKind) -> bool {
    // SAFETY: as in `offsets`.
    let bits = unsafe { core::ptr::read_volatile(&ENABLED_KINDS) };
    bits & (1 << (kind as u32)) != 0
}

#[inline(always)]
pub(crate) fn count_drop(slot: DropSlot) {
    if let Some(p) = DROPS.get_ptr_mut(slot as u32) {
        // SAFETY: the pointer comes from a successful per-CPU array lookup; tracepoint programs
        // run with migration disabled, so no other writer uses this CPU's slot concurrently.
        unsafe { *p += 1 };
    }
}

/// Reads a `T` at `base + off` in kernel memory. `Err` when the field is missing on this
/// kernel or the read faults.
#[inline(always)]
pub(crate) fn read_field<T>(base: *const u8, off: u32) -> Result<T, ()> {
    if off == KernelOffsets::MISSING || base.is_null() {
        return Err(());
    }
    // SAFETY: bpf_probe_read_kernel checks the address and returns an error on a fault.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize).cast::<T>()) }.map_err(|_| ())
}

#[inline(always)]
pub(crate) fn header(kind: EventKind, pid_tgid: u64) -> RecordHeader {
    RecordHeader {
        kind: kind as u32,
        // SAFETY: helper without preconditions.
        cpu: unsafe { bpf_get_smp_processor_id() },
        // SAFETY: helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
    }
}

/// Copies user memory [start, end) (argv or the environment of the new image) into `dst`,
/// a buffer of `MAX` bytes (a power of two), at most `limit` (< MAX) bytes. Returns the bytes
/// copied (Err: the read faulted) and whether the range was cut.
#[inline(always)]
fn copy_user<const MAX: usize>(
    dst: *mut u8,
    start: u64,
    end: u64,
    limit: u64,
) -> (Result<u32, ()>, bool) {
    let cut = end - start > limit;
    let len = if cut { limit } else { end - start };
    // The mask proves the bound to the verifier.
    let n = (len as u32) & (MAX as u32 - 1);
    // SAFETY: `dst` has MAX bytes and n < MAX; the helper checks the user address.
    let ret = unsafe { bpf_probe_read_user(dst.cast(), n, start as *const core::ffi::c_void) };
    (if ret == 0 { Ok(n) } else { Err(()) }, cut)
}

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    try_exec(&ctx);
    0
}

#[inline(always)]
fn try_exec(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == agent_tgid() || !enabled(EventKind::ProcessExec) {
        return;
    }
    let Some(mut entry) = PROCESS_RING.reserve::<ExecRecord>(0) else {
        count_drop(DropSlot::ExecRingFull);
        return;
    };
    let rec: *mut ExecRecord = entry.as_mut_ptr();
    let off = offsets();
    // SAFETY: helper without preconditions; the task pointer is only used with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let uid_gid = bpf_get_current_uid_gid();
    let mut failed = false;

    let parent: *const u8 = read_field(task, off.task_real_parent).unwrap_or(core::ptr::null());
    let ppid = read_field::<u32>(parent, off.task_tgid).unwrap_or_else(|()| {
        failed = true;
        0
    });
    let cred: *const u8 = read_field(task, off.task_cred).unwrap_or(core::ptr::null());
    let euid = read_field::<u32>(cred, off.cred_euid).unwrap_or(u32::MAX);
    let egid = read_field::<u32>(cred, off.cred_egid).unwrap_or(u32::MAX);
    let auid = read_field::<u32>(task, off.task_loginuid).unwrap_or(u32::MAX);
    let nsproxy: *const u8 = read_field(task, off.task_nsproxy).unwrap_or(core::ptr::null());
    let mnt_ns: *const u8 = read_field(nsproxy, off.nsproxy_mnt_ns).unwrap_or(core::ptr::null());
    let mnt_ns = read_field::<u32>(mnt_ns, off.mnt_ns_inum).unwrap_or(0);
    let start = read_field::<u64>(task, off.task_start_time).unwrap_or(0);
    let mut flags = 0u32;

    // SAFETY: `rec` points at a reserved ring-buffer slot of exactly size_of::<ExecRecord>();
    // every field written here is plain data, and the kernel helpers bound their writes by the
    // lengths passed (at most the array sizes).
    unsafe {
        (*rec).header = header(EventKind::ProcessExec, pid_tgid);
        (*rec).ppid = ppid;
        (*rec).uid = uid_gid as u32;
        (*rec).gid = (uid_gid >> 32) as u32;
        (*rec).euid = euid;
        (*rec).egid = egid;
        (*rec).auid = auid;
        (*rec).mnt_ns = mnt_ns;
        (*rec).cgroup_id = bpf_get_current_cgroup_id();
        (*rec).start_ktime_ns = start;

        // The new image's path, from the tracepoint's `__data_loc char[] filename`.
        (*rec).path_len = 0;
        if off.tp_exec_filename != KernelOffsets::MISSING {
            match ctx.read_at::<u32>(off.tp_exec_filename as usize) {
                Ok(loc) => {
                    let src = (ctx.as_ptr() as *const u8).wrapping_add((loc & 0xffff) as usize);
                    match bpf_probe_read_kernel_str_bytes(src, &mut (*rec).path) {
                        Ok(s) => {
                            (*rec).path_len = s.len() as u32;
                            if s.len() >= PATH_MAX - 1 {
                                flags |= exec_flags::PATH_TRUNCATED;
                            }
                        }
                        Err(_) => failed = true,
                    }
                }
                Err(_) => failed = true,
            }
        } else {
            failed = true;
        }

        // argv: the NUL-separated strings between mm->arg_start and mm->arg_end of the new image.
        (*rec).args_len = 0;
        let mm: *const u8 = read_field(task, off.task_mm).unwrap_or(core::ptr::null());
        match (
            read_field::<u64>(mm, off.mm_arg_start),
            read_field::<u64>(mm, off.mm_arg_end),
        ) {
            (Ok(start), Ok(end)) if end > start => {
                let limit = u64::from(args_limit()).min((ARGS_MAX - 1) as u64);
                let (n, cut) = copy_user::<ARGS_MAX>((*rec).args.as_mut_ptr(), start, end, limit);
                if cut {
                    flags |= exec_flags::ARGS_TRUNCATED;
                }
                match n {
                    Ok(n) => (*rec).args_len = n,
                    Err(()) => {
                        flags |= exec_flags::ARGS_READ_FAILED;
                        failed = true;
                    }
                }
            }
            _ => {
                flags |= exec_flags::ARGS_READ_FAILED;
                failed = true;
            }
        }

        // The environment, only when asked for: it can hold secrets.
        (*rec).env_len = 0;
        let env_limit = u64::from(env_limit()).min((ENV_MAX - 1) as u64);
        if env_limit > 0 {
            match (
                read_field::<u64>(mm, off.mm_env_start),
                read_field::<u64>(mm, off.mm_env_end),
            ) {
                (Ok(start), Ok(end)) if end > start => {
                    let (n, cut) =
                        copy_user::<ENV_MAX>((*rec).env.as_mut_ptr(), start, end, env_limit);
                    if cut {
                        flags |= exec_flags::ENV_TRUNCATED;
                    }
                    match n {
                        Ok(n) => (*rec).env_len = n,
                        Err(()) => {
                            flags |= exec_flags::ENV_READ_FAILED;
                            failed = true;
                        }
                    }
                }
                (Ok(_), Ok(_)) => {}
                _ => {
                    flags |= exec_flags::ENV_READ_FAILED;
                    failed = true;
                }
            }
        }

        // A fileless exec (memfd_create + execveat/fexecve, or a deleted file): the image
        // has no name on any file system, so `path` (from the tracepoint, `/dev/fd/N` for
        // fexecve) is replaced by the kernel's name of its dentry.
        let exe: *const u8 = read_field(mm, off.mm_exe_file).unwrap_or(core::ptr::null());
        let exe_inode: *const u8 = read_field(exe, off.file_inode).unwrap_or(core::ptr::null());
        if read_field::<u32>(exe_inode, off.inode_nlink) == Ok(0) {
            flags |= exec_flags::FILELESS;
            let dentry: *const u8 = read_field(exe, off.file_path.wrapping_add(off.path_dentry))
                .unwrap_or(core::ptr::null());
            let name: *const u8 = read_field(dentry, off.dentry_name).unwrap_or(core::ptr::null());
            if let Ok(s) = bpf_probe_read_kernel_str_bytes(name, &mut (*rec).path) {
                (*rec).path_len = s.len() as u32;
            }
        }

        // The working directory, walked in the kernel like file paths.
        let (n, cwd_flags) = file::task_cwd(task, (*rec).cwd.as_mut_ptr(), &off);
        (*rec).cwd_len = n;
        flags |= cwd_flags;
        if cwd_flags & exec_flags::CWD_UNRESOLVED != 0 {
            failed = true;
        }
        (*rec).flags = flags;
    }
    if failed {
        count_drop(DropSlot::ExecReadError);
    }
    entry.submit(0);
}

/// Exec attempts in flight, by thread: the path pointer, read again only if the exec fails.
#[map(name = "EXEC_PENDING")]
static EXEC_PENDING: HashMap<u64, ExecArgs> = HashMap::with_max_entries(16384, 0);

#[tracepoint(category = "syscalls", name = "sys_enter_execve")]
pub fn sys_enter_exec(ctx: TracePointContext) -> u32 {
    let _ = try_enter_exec(&ctx);
    0
}

#[inline(always)]
fn try_enter_exec(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == agent_tgid() || !enabled(EventKind::ProcessExec) {
        return Ok(());
    }
    let off = offsets();
    let args = off.tp_syscall_args as usize;
    // SAFETY: checked reads from the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(off.tp_syscall_nr as usize) }.map_err(|_| ())?;
    // execveat(dfd, path, …) has the path second; execve(path, …) first.
    let at = nr as u32 == exec_nr_at();
    // SAFETY: as above.
    let (uptr, dfd) = unsafe {
        if at {
            (
                ctx.read_at::<u64>(args + 8).map_err(|_| ())?,
                ctx.read_at::<u64>(args).map_err(|_| ())? as i32,
            )
        } else {
            (ctx.read_at::<u64>(args).map_err(|_| ())?, -100)
        }
    };
    let a = ExecArgs {
        // SAFETY: helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        uptr,
        dfd,
        _pad: 0,
    };
    if EXEC_PENDING.insert(&pid_tgid, &a, 0).is_err() {
        count_drop(DropSlot::ExecRingFull);
    }
    Ok(())
}

/// The execveat syscall number (filled in by the agent; it differs per architecture).
#[unsafe(no_mangle)]
static EXECVEAT_NR: u32 = 0;

#[inline(always)]
fn exec_nr_at() -> u32 {
    // SAFETY: as in `offsets`.
    unsafe { core::ptr::read_volatile(&EXECVEAT_NR) }
}

#[tracepoint(category = "syscalls", name = "sys_exit_execve")]
pub fn sys_exit_exec(ctx: TracePointContext) -> u32 {
    let _ = try_exit_exec(&ctx);
    0
}

#[inline(always)]
fn try_exit_exec(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: a successful lookup in this map; the value is copied out before the remove.
    let a = unsafe { *EXEC_PENDING.get_ptr(&pid_tgid).ok_or(())? };
    let _ = EXEC_PENDING.remove(&pid_tgid);
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off.tp_syscall_ret as usize) }.map_err(|_| ())?;
    if ret >= 0 {
        return Ok(()); // the sched_process_exec record has it
    }
    let Some(mut entry) = PROCESS_RING.reserve::<ExecFailRecord>(0) else {
        count_drop(DropSlot::ExecRingFull);
        return Ok(());
    };
    let rec: *mut ExecFailRecord = entry.as_mut_ptr();
    // SAFETY: helper without preconditions; the task pointer is only used with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let uid_gid = bpf_get_current_uid_gid();
    let parent: *const u8 = read_field(task, off.task_real_parent).unwrap_or(core::ptr::null());
    let cred: *const u8 = read_field(task, off.task_cred).unwrap_or(core::ptr::null());
    // SAFETY: `rec` is a reserved slot of exactly size_of::<ExecFailRecord>(); the helper
    // bounds the string read by the array size.
    unsafe {
        (*rec).header = header(EventKind::ProcessExecFailed, pid_tgid);
        (*rec).header.ktime_ns = a.ktime_ns;
        (*rec).ret = ret;
        (*rec).ppid = read_field::<u32>(parent, off.task_tgid).unwrap_or(0);
        (*rec).uid = uid_gid as u32;
        (*rec).gid = (uid_gid >> 32) as u32;
        (*rec).euid = read_field::<u32>(cred, off.cred_euid).unwrap_or(u32::MAX);
        (*rec).egid = read_field::<u32>(cred, off.cred_egid).unwrap_or(u32::MAX);
        (*rec).auid = read_field::<u32>(task, off.task_loginuid).unwrap_or(u32::MAX);
        (*rec).dfd = a.dfd;
        (*rec).cgroup_id = bpf_get_current_cgroup_id();
        (*rec).path_len = 0;
        // The caller's memory is unchanged by a failed exec.
        let n = aya_ebpf::helpers::generated::bpf_probe_read_user_str(
            (*rec).path.as_mut_ptr().cast(),
            PATH_MAX as u32,
            a.uptr as *const core::ffi::c_void,
        );
        if n > 0 {
            (*rec).path_len = ((n - 1) as u32) & (PATH_MAX as u32 - 1);
        }
    }
    entry.submit(0);
    Ok(())
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    try_exit();
    if enabled(EventKind::File) {
        file::forget_exiting_files();
    }
    0
}

#[inline(always)]
fn try_exit() {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // Threads other than the leader are not processes; their exits are not reported.
    if tgid != pid_tgid as u32 || tgid == agent_tgid() || !enabled(EventKind::ProcessExit) {
        return;
    }
    let Some(mut entry) = PROCESS_RING.reserve::<ExitRecord>(0) else {
        count_drop(DropSlot::ExitRingFull);
        return;
    };
    let off = offsets();
    // SAFETY: helper without preconditions; the pointer is only used with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let uid_gid = bpf_get_current_uid_gid();
    let mut failed = false;
    let exit_code = read_field::<u32>(task, off.task_exit_code).unwrap_or_else(|()| {
        failed = true;
        0
    });
    let parent: *const u8 = read_field(task, off.task_real_parent).unwrap_or(core::ptr::null());
    let ppid = read_field::<u32>(parent, off.task_tgid).unwrap_or(0);
    let start = read_field::<u64>(task, off.task_start_time).unwrap_or(0);
    entry.write(ExitRecord {
        header: header(EventKind::ProcessExit, pid_tgid),
        exit_code,
        ppid,
        start_ktime_ns: start,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
    });
    if failed {
        count_drop(DropSlot::ExitReadError);
    }
    entry.submit(0);
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`: a raw
/// tracepoint, because only the task pointers tell a new process from a new thread.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> u32 {
    try_fork(&ctx);
    0
}

#[inline(always)]
fn try_fork(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == agent_tgid() || !enabled(EventKind::ProcessFork) {
        return;
    }
    let off = offsets();
    let child: *const u8 = ctx.arg(1);
    let Ok(child_tgid) = read_field::<u32>(child, off.task_tgid) else {
        return;
    };
    let Ok(child_tid) = read_field::<u32>(child, off.task_pid) else {
        return;
    };
    // A new thread shares its creator's thread group: not a process.
    if child_tgid != child_tid || child_tgid == (pid_tgid >> 32) as u32 {
        return;
    }
    let Some(mut entry) = PROCESS_RING.reserve::<ForkRecord>(0) else {
        count_drop(DropSlot::ForkRingFull);
        return;
    };
    let uid_gid = bpf_get_current_uid_gid();
    entry.write(ForkRecord {
        header: header(EventKind::ProcessFork, pid_tgid),
        child_pid: child_tgid,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        _pad: 0,
    });
    entry.submit(0);
}

/// `iter/task`: one [`TaskRecord`] per process (thread-group leader) running when the agent
/// starts, written to the iterator's seq_file. The context is `struct bpf_iter__task
/// { struct bpf_iter_meta *meta; struct task_struct *task; }`; `meta->seq` is the first field.
#[unsafe(link_section = "iter/task")]
#[unsafe(no_mangle)]
pub fn dump_task(ctx: *mut core::ffi::c_void) -> i32 {
    try_dump_task(ctx);
    0
}

#[inline(always)]
fn try_dump_task(ctx: *mut core::ffi::c_void) {
    // SAFETY: direct loads of the two context fields and of `meta->seq`: the verifier types
    // them (meta and seq non-null, task possibly null: checked below).
    let (seq, task) = unsafe {
        let fields = ctx as *const *const u8;
        let meta = *fields;
        let seq = *(meta as *const *mut aya_ebpf::bindings::seq_file);
        // The task as a plain number (see `read_field`'s callers): some kernels refuse
        // arithmetic with a runtime offset on a typed `struct task_struct *`.
        let task = bpf_probe_read_kernel(fields.add(1) as *const u64).unwrap_or(0) as *const u8;
        (seq, task)
    };
    if task.is_null() {
        return;
    }
    let off = offsets();
    let (Ok(tgid), Ok(pid)) = (
        read_field::<u32>(task, off.task_tgid),
        read_field::<u32>(task, off.task_pid),
    ) else {
        return;
    };
    // Threads are not processes; the agent itself is not reported.
    if tgid != pid || tgid == agent_tgid() || tgid == 0 {
        return;
    }
    let parent: *const u8 = read_field(task, off.task_real_parent).unwrap_or(core::ptr::null());
    let cred: *const u8 = read_field(task, off.task_cred).unwrap_or(core::ptr::null());
    let nsproxy: *const u8 = read_field(task, off.task_nsproxy).unwrap_or(core::ptr::null());
    let mnt_ns: *const u8 = read_field(nsproxy, off.nsproxy_mnt_ns).unwrap_or(core::ptr::null());
    let rec = TaskRecord {
        tgid,
        ppid: read_field::<u32>(parent, off.task_tgid).unwrap_or(0),
        uid: read_field::<u32>(cred, off.cred_uid).unwrap_or(u32::MAX),
        gid: read_field::<u32>(cred, off.cred_gid).unwrap_or(u32::MAX),
        euid: read_field::<u32>(cred, off.cred_euid).unwrap_or(u32::MAX),
        egid: read_field::<u32>(cred, off.cred_egid).unwrap_or(u32::MAX),
        auid: read_field::<u32>(task, off.task_loginuid).unwrap_or(u32::MAX),
        mnt_ns: read_field::<u32>(mnt_ns, off.mnt_ns_inum).unwrap_or(0),
        start_ktime_ns: read_field::<u64>(task, off.task_start_time).unwrap_or(0),
    };
    // Kernel-side diagnostics (aya-log): skipped unless --ebpf_log_level is debug or trace.
    aya_log_ebpf::debug!(ctx, "snapshot: task {} parent {}", rec.tgid, rec.ppid);
    // SAFETY: `seq` is the iterator's seq_file (typed by the verifier); the data pointer and
    // length describe `rec` on this stack.
    unsafe {
        aya_ebpf::helpers::generated::bpf_seq_write(
            seq,
            (&raw const rec).cast(),
            size_of::<TaskRecord>() as u32,
        );
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// `bpf_probe_read_kernel` and friends are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
