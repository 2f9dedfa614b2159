//! Socket events from syscall tracepoints: connect, bind, listen, accept and accept4.
//!
//! `sys_enter_sock` parks the call (and, for connect/bind, copies the caller's sockaddr);
//! `sys_exit_sock` adds the result and the addresses the socket itself holds (local port after
//! a connect, both ends of an accepted connection) and sends the record.

use core::ffi::c_void;

use agent_common::{
    DropSlot, EventKind, KernelOffsets,
    file::MAX_SYSCALL_NR,
    socket::{SOCKADDR_MAX, SockOp, SockRecord},
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user},
    },
    macros::{map, tracepoint},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};

use crate::{agent_tgid, count_drop, enabled, header, offsets, read_field};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

#[map(name = "SOCK_RING")]
static SOCK_RING: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

#[map(name = "SOCK_OPS")]
static SOCK_OPS: Array<u8> = Array::with_max_entries(MAX_SYSCALL_NR, 0);

#[map(name = "SOCK_PENDING")]
static SOCK_PENDING: LruHashMap<u64, SockRecord> = LruHashMap::with_max_entries(4096, 0);

#[map(name = "SOCK_SCRATCH")]
static SCRATCH: PerCpuArray<SockRecord> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn arg(ctx: &TracePointContext, off: &KernelOffsets, i: u32) -> u64 {
    let at = off.tp_syscall_args.wrapping_add(8 * (i & 7));
    // SAFETY: checked read from the tracepoint record.
    unsafe { ctx.read_at::<u64>(at as usize) }.unwrap_or(0)
}

#[inline(always)]
fn copy_sockaddr(rec: &mut SockRecord, ptr: u64, len: u64) {
    if ptr == 0 {
        rec.sockaddr_len = 0;
        return;
    }
    let n = if len > SOCKADDR_MAX as u64 {
        SOCKADDR_MAX as u64
    } else {
        len
    } as u32;
    let n = n & (SOCKADDR_MAX as u32 * 2 - 1);
    let n = if n > SOCKADDR_MAX as u32 {
        SOCKADDR_MAX as u32
    } else {
        n
    };
    // SAFETY: at most SOCKADDR_MAX bytes into rec.sockaddr; the helper checks the user address.
    let rc = unsafe {
        bpf_probe_read_user(
            rec.sockaddr.as_mut_ptr().cast::<c_void>(),
            n,
            ptr as *const c_void,
        )
    };
    rec.sockaddr_len = if rc == 0 { n } else { 0 };
}

#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_sock(ctx: TracePointContext) -> u32 {
    let _ = try_enter(&ctx);
    0
}

#[inline(always)]
fn try_enter(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == agent_tgid() || !enabled(EventKind::Socket) {
        return Ok(());
    }
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(off.tp_syscall_nr as usize) }.map_err(|_| ())?;
    let op = *SOCK_OPS.get(nr as u32).ok_or(())?;
    if op == 0 {
        return Ok(());
    }
    let rec = SCRATCH.get_ptr_mut(0).ok_or(())?;
    // SAFETY: this CPU's scratch slot from a successful lookup, used only by this program run.
    let rec = unsafe { &mut *rec };
    rec.header = header(EventKind::Socket, pid_tgid);
    rec.op = op;
    rec.fd = arg(ctx, &off, 0) as i32;
    rec.addr_ptr = arg(ctx, &off, 1);
    rec.len_ptr = if op == SockOp::Accept as u8 {
        arg(ctx, &off, 2)
    } else {
        0
    };
    rec.ret = 0;
    rec.uid = bpf_get_current_uid_gid() as u32;
    if op == SockOp::Connect as u8 || op == SockOp::Bind as u8 {
        copy_sockaddr(rec, rec.addr_ptr, arg(ctx, &off, 2));
    } else {
        rec.sockaddr_len = 0;
    }
    if SOCK_PENDING.insert(&pid_tgid, &*rec, 0).is_err() {
        count_drop(DropSlot::SockPendingFull);
    }
    Ok(())
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_sock(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

/// The `struct sock *` behind an fd of the current task.
#[inline(always)]
fn fd_sock(fd: i32, off: &KernelOffsets) -> Result<*const u8, ()> {
    if fd < 0 {
        return Err(());
    }
    // SAFETY: helper without preconditions; used only with probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let files: *const u8 = read_field(task, off.task_files)?;
    let fdt: *const u8 = read_field(files, off.files_fdt)?;
    let max: u32 = read_field(fdt, off.fdtable_max_fds)?;
    if fd as u32 >= max {
        return Err(());
    }
    let arr: *const u8 = read_field(fdt, off.fdtable_fd)?;
    let file: *const u8 = read_field(arr, (fd as u32).wrapping_mul(8))?;
    let socket: *const u8 = read_field(file, off.file_private)?;
    let sk: *const u8 = read_field(socket, off.socket_sk)?;
    if sk.is_null() { Err(()) } else { Ok(sk) }
}

#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Result<(), ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let parked = SOCK_PENDING.get_ptr(&pid_tgid).ok_or(())?;
    let off = offsets();
    // SAFETY: checked read from the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off.tp_syscall_ret as usize) }.unwrap_or(-1);
    let Some(mut entry) = SOCK_RING.reserve::<SockRecord>(0) else {
        count_drop(DropSlot::SockRingFull);
        let _ = SOCK_PENDING.remove(&pid_tgid);
        return Ok(());
    };
    let out: *mut SockRecord = entry.as_mut_ptr();
    // SAFETY: copies one SockRecord from the map value into the reserved slot of the same
    // size; every later write stays inside that slot.
    unsafe {
        bpf_probe_read_kernel(
            out.cast::<c_void>(),
            size_of::<SockRecord>() as u32,
            parked.cast::<c_void>(),
        );
        let out = &mut *out;
        out.ret = ret;
        let is_accept = out.op == SockOp::Accept as u8;
        // After accept the new connection is the fd returned; otherwise the fd passed in.
        let fd = if is_accept && ret >= 0 {
            ret as i32
        } else {
            out.fd
        };
        out.family = 0;
        out.protocol = 0;
        out.sock_type = 0;
        out.local_port = 0;
        out.remote_port = 0;
        out.local_addr = [0; 16];
        out.remote_addr = [0; 16];
        if let Ok(sk) = fd_sock(fd, &off) {
            let family = read_field::<u16>(sk, off.sk_family).unwrap_or(0);
            out.family = family;
            out.protocol = read_field::<u16>(sk, off.sk_protocol).unwrap_or(0);
            out.sock_type = read_field::<u16>(sk, off.sk_type).unwrap_or(0);
            out.local_port = read_field::<u16>(sk, off.sk_num).unwrap_or(0);
            out.remote_port = u16::from_be(read_field::<u16>(sk, off.sk_dport).unwrap_or(0));
            if family == AF_INET {
                let l = read_field::<[u8; 4]>(sk, off.sk_rcv_saddr).unwrap_or([0; 4]);
                let r = read_field::<[u8; 4]>(sk, off.sk_daddr).unwrap_or([0; 4]);
                out.local_addr[..4].copy_from_slice(&l);
                out.remote_addr[..4].copy_from_slice(&r);
            } else if family == AF_INET6 {
                out.local_addr = read_field::<[u8; 16]>(sk, off.sk_v6_rcv_saddr).unwrap_or([0; 16]);
                out.remote_addr = read_field::<[u8; 16]>(sk, off.sk_v6_daddr).unwrap_or([0; 16]);
            }
        }
        let (peer, len_ptr) = (out.addr_ptr, out.len_ptr);
        if is_accept && ret >= 0 && peer != 0 && len_ptr != 0 {
            // The peer's sockaddr as the kernel wrote it for the caller (unix peers too), as
            // long as the kernel said it is.
            let mut len = 0u32;
            let rc =
                bpf_probe_read_user((&raw mut len).cast::<c_void>(), 4, len_ptr as *const c_void);
            copy_sockaddr(out, peer, if rc == 0 { u64::from(len) } else { 0 });
        }
    }
    entry.submit(0);
    let _ = SOCK_PENDING.remove(&pid_tgid);
    Ok(())
}
