//! The socket syscalls Osprey watches and their [`SockOp`]s, by syscall number from `libc`.

use agent_common::{file::MAX_SYSCALL_NR, maps, socket::SockOp};
use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf,
    maps::{Array, MapData},
};

/// (tracepoint suffix, syscall number, operation).
pub const SYSCALLS: &[(&str, i64, SockOp)] = &[
    ("connect", libc::SYS_connect, SockOp::Connect),
    ("bind", libc::SYS_bind, SockOp::Bind),
    ("listen", libc::SYS_listen, SockOp::Listen),
    ("accept", libc::SYS_accept, SockOp::Accept),
    ("accept4", libc::SYS_accept4, SockOp::Accept),
];

pub fn fill_ops(ebpf: &mut Ebpf) -> Result<()> {
    let mut arr: Array<&mut MapData, u8> = Array::try_from(
        ebpf.map_mut(maps::SOCK_OPS)
            .ok_or_else(|| anyhow!("no {} map", maps::SOCK_OPS))?,
    )?;
    for (name, nr, op) in SYSCALLS {
        let nr = u32::try_from(*nr)
            .ok()
            .filter(|n| *n < MAX_SYSCALL_NR)
            .with_context(|| format!("syscall {name} number {nr} is beyond the table"))?;
        arr.set(nr, *op as u8, 0)
            .with_context(|| format!("writing the op of {name}"))?;
    }
    Ok(())
}
