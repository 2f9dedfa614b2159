//! The `fentry` strategy for file events: kernel-function hooks that see what the syscall
//! tracepoints cannot, file opens issued through io_uring.
//!
//! Syscall-issued operations stay with the tracepoint programs (they see arguments and the
//! exact result); the hook on `security_file_open` reports an open only when it runs for
//! io_uring: inside `io_uring_enter` (inline submission, marked by the two tracepoints
//! below) or on an io_uring worker thread (`PF_IO_WORKER`). Loaded only where the kernel
//! accepts fentry; the agent falls back to the tracepoint base elsewhere.
//!
//! Paths come from the same dentry walk as the tracepoint programs, from the opened file's
//! own `f_path`: resolved in the kernel, after the lookup, so there is no gap between the
//! check and the use. (`bpf_d_path` needs `&file->f_path` typed by the verifier, which takes a
//! compile-time field offset; Rust eBPF has no CO-RE relocations to make that portable.)

use agent_common::{
    DropSlot, EventKind,
    file::{FileOp, FileRecord, NR_IO_URING, WATCH_NONE, file_flags},
};
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid,
        bpf_probe_read_kernel,
    },
    macros::{fentry, map, tracepoint},
    maps::HashMap,
    programs::{FEntryContext, TracePointContext},
};

use crate::{
    agent_tgid, count_drop, enabled,
    file::{
        FILE_RING, HALF, O_ACCMODE, O_CREAT, O_TRUNC, REC_SCRATCH, SCRATCH, copy_path,
        report_reads, track_open, walk, watch_all,
    },
    header, offsets, read_field,
};

const PF_IO_WORKER: u32 = 0x10;

/// Threads inside `io_uring_enter` right now.
#[map(name = "IN_URING")]
static IN_URING: HashMap<u64, u8> = HashMap::with_max_entries(16384, 0);

#[tracepoint(category = "syscalls", name = "sys_enter_io_uring_enter")]
pub fn sys_enter_io_uring_enter(_ctx: TracePointContext) -> u32 {
    let _ = IN_URING.insert(&bpf_get_current_pid_tgid(), &1u8, 0);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_io_uring_enter")]
pub fn sys_exit_io_uring_enter(_ctx: TracePointContext) -> u32 {
    let _ = IN_URING.remove(&bpf_get_current_pid_tgid());
    0
}

#[fentry(function = "security_file_open")]
pub fn uring_file_open(ctx: FEntryContext) -> u32 {
    let _ = try_file_open(&ctx);
    0
}

#[inline(always)]
fn try_file_open(ctx: &FEntryContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == agent_tgid() || !enabled(EventKind::File) {
        return Ok(());
    }
    let off = offsets();
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    // SAFETY: a map lookup by value; only presence matters.
    let inline = unsafe { IN_URING.get(&pid_tgid) }.is_some();
    let worker = read_field::<u32>(task, off.task_flags).unwrap_or(0) & PF_IO_WORKER != 0;
    if !inline && !worker {
        return Ok(());
    }
    // The file pointer, read as a plain number: the verifier types a direct load as `struct
    // file *`, and some kernels refuse arithmetic with a runtime offset on typed pointers.
    // SAFETY: the context is the trampoline's array of u64 arguments; the helper checks.
    let file =
        unsafe { bpf_probe_read_kernel(ctx.as_ptr() as *const u64) }.map_err(|_| ())? as *const u8;
    let flags = read_field::<u32>(file, off.file_f_flags)?;
    let writes = flags & O_ACCMODE != 0 || flags & (O_CREAT | O_TRUNC) != 0;
    if !writes && !report_reads() {
        return Ok(());
    }
    let mnt: *const u8 = read_field(file, off.file_path.wrapping_add(off.path_mnt))?;
    let dentry: *const u8 = read_field(file, off.file_path.wrapping_add(off.path_dentry))?;
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(())?;
    let rec = REC_SCRATCH.get_ptr_mut(0).ok_or(())?;
    let mut rflags = 0u32;
    let (start, watch) = walk(scratch, dentry, mnt, &off, &mut rflags, true)?;
    let len = HALF - start;
    if watch == WATCH_NONE && !watch_all() {
        if rflags & file_flags::PATH_TOO_DEEP != 0 {
            count_drop(DropSlot::FileTooDeep);
        }
        return Ok(());
    }
    if watch != WATCH_NONE {
        rflags |= file_flags::PATH_IN_WATCH;
    }
    if rflags & (file_flags::PATH_UNRESOLVED | file_flags::PATH_TOO_DEEP) != 0 {
        count_drop(DropSlot::FileReadError);
    }
    let uid_gid = bpf_get_current_uid_gid();
    // SAFETY: both pointers come from successful per-CPU lookups; this program is the only
    // user of this CPU's slots while it runs.
    let rec = unsafe { &mut *rec };
    let (n, cut) = copy_path(rec.path.as_mut_ptr(), scratch, start, len);
    if cut {
        rflags |= file_flags::PATH_TRUNCATED;
    }
    let inode: *const u8 = read_field(file, off.file_inode).unwrap_or(core::ptr::null());
    rec.header = header(EventKind::File, pid_tgid);
    // The open passed every check; its fd is not known here.
    rec.ret = 0;
    rec.inode = read_field::<u64>(inode, off.inode_ino).unwrap_or(0);
    rec.file = file as u64;
    rec.op = FileOp::Open as u8;
    rec.nr = NR_IO_URING;
    rec.flags = flags;
    rec.mode = 0;
    rec.arg_uid = u32::MAX;
    rec.arg_gid = u32::MAX;
    rec.fd = -1;
    rec.uid = uid_gid as u32;
    rec.gid = (uid_gid >> 32) as u32;
    rec.rflags = rflags;
    rec.path_len = n;
    rec.base_len = n;
    rec.watch_id = watch;
    rec.path2_len = 0;
    rec.base2_len = 0;
    rec.watch2_id = WATCH_NONE;
    rec.p2_ptr = 0;
    rec.p2_dfd = 0;
    rec.f_mode = read_field::<u32>(file, off.file_mode).unwrap_or(0);
    if FILE_RING.output::<FileRecord>(rec, 0).is_err() {
        count_drop(DropSlot::FileRingFull);
        return Ok(());
    }
    track_open(file as u64, flags);
    Ok(())
}
