//! The kernel's process events connector (netlink `NETLINK_CONNECTOR`, `CN_IDX_PROC`): fork,
//! exec and exit of every process, the process source's fallback where eBPF is not allowed
//! (root only). The kernel says only which pid did what and when; the rest is read from
//! `/proc` by the caller. Messages are parsed by offsets (never by casting): a short or odd
//! message is an error value, never a panic. Running out of socket buffer (`ENOBUFS`) loses
//! messages: [`Read::lost`] says so.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;

const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One process event; `ktime_ns` is the kernel's monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    Fork {
        ktime_ns: u64,
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        ktime_ns: u64,
        pid: u32,
        tgid: u32,
    },
    Exit {
        ktime_ns: u64,
        pid: u32,
        tgid: u32,
        /// The wait status (as `exit_code` of `process_events`).
        status: u32,
    },
}

/// What one read gave.
#[derive(Debug, Default)]
pub struct Read {
    pub events: Vec<ProcEvent>,
    /// Messages that could not be parsed.
    pub bad: u64,
    /// The socket's buffer overflowed: an unknown number of events were lost.
    pub lost: bool,
}

#[derive(Debug)]
pub struct ProcConnector {
    fd: OwnedFd,
}

fn errno(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl ProcConnector {
    /// Subscribes to the process events (needs CAP_NET_ADMIN).
    pub fn new() -> io::Result<Self> {
        // SAFETY: socket takes three integers and returns a new fd or -1.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(errno("netlink connector socket"));
        }
        // SAFETY: fd was just returned by socket and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // A large receive buffer: a fork storm should not overflow it (best effort).
        let size: libc::c_int = 8 << 20;
        // SAFETY: a valid fd and a pointer to an int of the stated size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = CN_IDX_PROC;
        // SAFETY: addr is a valid sockaddr_nl of the stated length.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(errno("bind to the process events connector"));
        }
        let msg = listen_message();
        // SAFETY: msg is valid for msg.len() bytes of reads.
        let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(errno("subscribing to process events"));
        }
        Ok(Self { fd })
    }

    /// Waits up to `timeout`, then reads every message that is there.
    pub fn read(&self, timeout: Duration, buf: &mut [u8]) -> io::Result<Read> {
        let mut out = Read::default();
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return Ok(out);
        }
        loop {
            // SAFETY: buf is valid for buf.len() bytes of writes.
            let got =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(out),
                    Some(libc::ENOBUFS) => {
                        out.lost = true;
                        continue;
                    }
                    Some(libc::EINTR) => continue,
                    _ => return Err(e),
                }
            }
            match parse(&buf[..got as usize]) {
                Ok(Some(ev)) => out.events.push(ev),
                Ok(None) => {}
                Err(_) => out.bad += 1,
            }
        }
    }
}

/// nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN.
fn listen_message() -> Vec<u8> {
    let len = NLMSG_HDR + CN_MSG + 4;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// One datagram: nlmsghdr, cn_msg (idx, val, seq, ack, len, flags), then `proc_event`
/// (what u32, cpu u32, timestamp_ns u64, the event's fields). Ok(None): another kind of
/// event (uid, comm, ...) or the kernel's acknowledgement.
pub fn parse(b: &[u8]) -> Result<Option<ProcEvent>, String> {
    let nl_len = u32_at(b, 0).ok_or("short netlink header")? as usize;
    if nl_len < NLMSG_HDR + CN_MSG || nl_len > b.len() {
        return Err(format!("netlink length {nl_len} of {}", b.len()));
    }
    let cn = &b[NLMSG_HDR..nl_len];
    if u32_at(cn, 0) != Some(CN_IDX_PROC) || u32_at(cn, 4) != Some(CN_VAL_PROC) {
        return Err("not a process event".into());
    }
    let ev = &cn[CN_MSG..];
    let Some(what) = u32_at(ev, 0) else {
        return Ok(None); // the acknowledgement of the subscription
    };
    let ktime_ns = u64_at(ev, 8).ok_or("no timestamp")?;
    let field = |i: usize| u32_at(ev, 16 + 4 * i).ok_or_else(|| format!("event {what:#x} cut"));
    Ok(match what {
        PROC_EVENT_FORK => Some(ProcEvent::Fork {
            ktime_ns,
            parent_tgid: field(1)?,
            child_pid: field(2)?,
            child_tgid: field(3)?,
        }),
        PROC_EVENT_EXEC => Some(ProcEvent::Exec {
            ktime_ns,
            pid: field(0)?,
            tgid: field(1)?,
        }),
        PROC_EVENT_EXIT => Some(ProcEvent::Exit {
            ktime_ns,
            pid: field(0)?,
            tgid: field(1)?,
            status: field(2)?,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, fields: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&123_456_789u64.to_ne_bytes());
        for f in fields {
            ev.extend_from_slice(&f.to_ne_bytes());
        }
        let mut m = listen_message();
        m.truncate(NLMSG_HDR + CN_MSG);
        m.extend_from_slice(&ev);
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn events_parse_and_bad_bytes_are_errors() {
        assert_eq!(
            parse(&message(PROC_EVENT_EXEC, &[42, 42])).unwrap(),
            Some(ProcEvent::Exec {
                ktime_ns: 123_456_789,
                pid: 42,
                tgid: 42
            })
        );
        assert_eq!(
            parse(&message(PROC_EVENT_FORK, &[1, 1, 43, 43])).unwrap(),
            Some(ProcEvent::Fork {
                ktime_ns: 123_456_789,
                parent_tgid: 1,
                child_pid: 43,
                child_tgid: 43
            })
        );
        assert_eq!(
            parse(&message(PROC_EVENT_EXIT, &[43, 43, 256, 9, 1, 1])).unwrap(),
            Some(ProcEvent::Exit {
                ktime_ns: 123_456_789,
                pid: 43,
                tgid: 43,
                status: 256
            })
        );
        assert_eq!(parse(&message(0x200, &[1, 1])).unwrap(), None);
        let m = message(PROC_EVENT_EXIT, &[43, 43, 256, 9, 1, 1]);
        for cut in 0..m.len() {
            let _ = parse(&m[..cut]);
            let mut x = m.clone();
            x[cut] ^= 0xff;
            let _ = parse(&x);
        }
        assert!(parse(&m[..8]).is_err());
    }
}
