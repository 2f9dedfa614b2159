//! Socket records: connect, bind, listen and accept, captured at `sys_enter_*` (arguments, the
//! caller's sockaddr) and completed at `sys_exit_*` (result, addresses from the socket).

use crate::RecordHeader;

/// Bytes kept of a sockaddr (sockaddr_un is 110; sockaddr_in6 28).
pub const SOCKADDR_MAX: usize = 128;

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOp {
    Connect = 1,
    Bind = 2,
    Listen = 3,
    Accept = 4,
}

impl SockOp {
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Connect,
            2 => Self::Bind,
            3 => Self::Listen,
            4 => Self::Accept,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Bind => "bind",
            Self::Listen => "listen",
            Self::Accept => "accept",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockRecord {
    /// `ktime_ns` is the syscall's entry time.
    pub header: RecordHeader,
    pub ret: i64,
    /// The user sockaddr pointer (connect, bind: read at entry; accept: read at exit).
    pub addr_ptr: u64,
    /// accept: the user pointer to the peer address length the kernel fills in.
    pub len_ptr: u64,
    pub op: u8,
    pub _pad0: u8,
    /// From the socket: family, protocol and type; 0 when the fd was not a socket.
    pub family: u16,
    pub protocol: u16,
    pub sock_type: u16,
    /// The fd the call was made on (accept: the listening fd).
    pub fd: i32,
    /// Host byte order.
    pub local_port: u16,
    pub remote_port: u16,
    /// Bytes used in `sockaddr`.
    pub sockaddr_len: u32,
    pub uid: u32,
    /// Network byte order, IPv4 in the first 4 bytes.
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    /// The caller's sockaddr (connect/bind target, accept's peer).
    pub sockaddr: [u8; SOCKADDR_MAX],
}
const _: () = assert!(size_of::<SockRecord>() == 24 + 24 + 8 + 8 + 8 + 32 + SOCKADDR_MAX);
