//! The socket publisher (kernel socket ring -> [`SocketEvent`]) and the `socket_events`
//! subscriber.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use agent_common::EventKind;
use agent_common::socket::{SockOp, SockRecord};
use aya::maps::{MapData, RingBuf};

use crate::{
    events::SocketEvent,
    pipeline::{Event, Queue, Subscriber},
    rt::supervise::Supervised,
    rt::{
        Shutdown,
        counters::{PublisherCounters, SubscriberCounters},
    },
    sys::{Clock, ebpf::decode::RawRecord},
};

mod table;
pub use table::SocketEventsTable;

pub const PUBLISHER: &str = "ebpf_socket";
pub const TABLE: &str = "socket_events";

const AF_UNIX: u16 = libc::AF_UNIX as u16;
const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

/// An address and port parsed from a sockaddr; unix sockets give their path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub family: u16,
    pub address: String,
    pub port: u16,
    pub unix_path: String,
}

/// Parses a raw `struct sockaddr` (never panics on short or odd input).
pub fn parse_sockaddr(b: &[u8]) -> Option<Parsed> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    let port = || {
        b.get(2..4)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .unwrap_or(0)
    };
    match family {
        AF_INET => {
            let a: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(Parsed {
                family,
                address: Ipv4Addr::from(a).to_string(),
                port: port(),
                unix_path: String::new(),
            })
        }
        AF_INET6 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(Parsed {
                family,
                address: Ipv6Addr::from(a).to_string(),
                port: port(),
                unix_path: String::new(),
            })
        }
        AF_UNIX => {
            let raw = b.get(2..).unwrap_or(&[]);
            let path = match raw.first() {
                // The abstract namespace: a leading NUL, then the name (not NUL-terminated).
                Some(0) => {
                    let name = &raw[1..];
                    let end = name.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
                    format!("@{}", String::from_utf8_lossy(&name[..end]))
                }
                _ => {
                    let end = raw.iter().position(|c| *c == 0).unwrap_or(raw.len());
                    String::from_utf8_lossy(&raw[..end]).into_owned()
                }
            };
            Some(Parsed {
                family,
                address: String::new(),
                port: 0,
                unix_path: path,
            })
        }
        _ => Some(Parsed {
            family,
            ..Default::default()
        }),
    }
}

fn ip(family: u16, raw: &[u8; 16]) -> String {
    match family {
        AF_INET => Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).to_string(),
        AF_INET6 => Ipv6Addr::from(*raw).to_string(),
        _ => String::new(),
    }
}

pub fn to_event(r: &SockRecord, clock: &Clock) -> Option<SocketEvent> {
    let op = SockOp::from_u8(r.op)?;
    let given = parse_sockaddr(&r.sockaddr[..r.sockaddr_len as usize]);
    let family = if r.family != 0 {
        r.family
    } else {
        given.as_ref().map_or(0, |g| g.family)
    };
    let mut e = SocketEvent {
        time_ns: clock.wall_ns(r.header.ktime_ns),
        uptime: r.header.ktime_ns / 1_000_000_000,
        action: op.name().into(),
        syscall: op.name().into(),
        pid: r.header.pid,
        tid: r.header.tid,
        uid: r.uid,
        fd: if op == SockOp::Accept && r.ret >= 0 {
            i32::try_from(r.ret).unwrap_or(-1)
        } else {
            r.fd
        },
        family,
        protocol: r.protocol,
        sock_type: r.sock_type,
        local_address: ip(family, &r.local_addr),
        remote_address: ip(family, &r.remote_addr),
        local_port: r.local_port,
        remote_port: r.remote_port,
        result: r.ret,
        ..Default::default()
    };
    // Kernel truth first: the ends the socket itself holds at syscall exit. The caller's
    // sockaddr (read from its memory at entry, which another of its threads can change) fills
    // in only what the socket does not have, and the row says so (`user_address`).
    // An IP end is the socket's only with its port: a refused connect leaves the address
    // and clears the port.
    let kernel_remote = r.remote_port != 0;
    let kernel_local = r.local_port != 0;
    if let Some(g) = given {
        let has = !g.address.is_empty() || g.port != 0;
        match op {
            SockOp::Connect | SockOp::Accept if !kernel_remote && has => {
                e.remote_address = g.address;
                e.remote_port = g.port;
                e.user_address = true;
            }
            // A bind that failed leaves the socket unbound: what was asked is all there is.
            SockOp::Bind if !kernel_local && has => {
                e.local_address = g.address;
                e.local_port = g.port;
                e.user_address = true;
            }
            _ => {}
        }
        // Unix paths are not read from the socket yet: always the caller's.
        if !g.unix_path.is_empty() && op != SockOp::Listen {
            e.socket = g.unix_path;
            e.user_address = true;
        }
    }
    Some(e)
}

pub fn run_publisher(
    ring: RingBuf<MapData>,
    queue: Queue,
    counters: Arc<PublisherCounters>,
    shutdown: Shutdown,
) {
    let clock = Clock::now();
    super::ring::run_ring_publisher(ring, queue, counters, shutdown, "socket", |raw| match raw {
        RawRecord::Socket(r) => to_event(&r, &clock).map(|e| vec![Event::Socket(e)]),
        _ => None,
    });
}

/// Fills `socket_events`, adding the process's executable.
#[derive(Debug)]
pub struct SocketEventsSubscriber {
    counters: Arc<SubscriberCounters>,
}

impl SocketEventsSubscriber {
    pub fn new(counters: Arc<SubscriberCounters>) -> Self {
        Self { counters }
    }
}

impl Subscriber for SocketEventsSubscriber {
    fn table(&self) -> &'static str {
        TABLE
    }
    fn publisher(&self) -> &'static str {
        PUBLISHER
    }
    fn counters(&self) -> Arc<SubscriberCounters> {
        self.counters.clone()
    }
    fn transform(&mut self, ev: &Event) -> Option<(u64, Vec<u8>)> {
        let Event::Socket(s) = ev else { return None };
        let mut e = s.clone();
        e.path = std::fs::read_link(format!("/proc/{}/exe", e.pid))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Some((e.time_ns, e.encode()))
    }
}

/// The socket source: connect, bind, listen and accept from the syscall tracepoints.
#[derive(Debug)]
pub struct SocketSource;

pub static SOURCE: SocketSource = SocketSource;

impl crate::sql::TableProvider for SocketSource {
    fn make_table(&self, env: &crate::sql::TableEnv) -> Arc<dyn crate::sql::vtab::Table> {
        Arc::new(SocketEventsTable::new(env.clone()))
    }
}

impl super::Source for SocketSource {
    fn publisher(&self) -> &'static str {
        PUBLISHER
    }
    fn table(&self) -> &'static str {
        TABLE
    }
    fn kinds(&self) -> &'static [EventKind] {
        &[EventKind::Socket]
    }
    fn drop_event_type(&self, _kind: EventKind) -> &'static str {
        "socket"
    }
    fn enabled(&self, ctx: super::Ctx<'_>) -> bool {
        !ctx.flags.disable_events() && ctx.flags.enable_socket_events()
    }
    fn start(&self, mut w: super::Wiring<'_>) -> anyhow::Result<Supervised> {
        let ring = w.kernel()?.take_sock_ring()?;
        let (q, c, s) = (w.queue, w.counters, w.supervisor.shutdown().clone());
        Ok(w.supervisor
            .spawn("pub-socket", move || run_publisher(ring, q, c, s))?)
    }
    fn subscriber(
        &self,
        _ctx: super::Ctx<'_>,
        counters: Arc<SubscriberCounters>,
    ) -> Box<dyn Subscriber> {
        Box::new(SocketEventsSubscriber::new(counters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            parse_sockaddr(&v4),
            Some(Parsed {
                family: AF_INET,
                address: "127.0.0.1".into(),
                port: 8080,
                unix_path: String::new()
            })
        );
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(parse_sockaddr(&v6).unwrap().address, "::1");
        let mut un = AF_UNIX.to_ne_bytes().to_vec();
        un.extend_from_slice(b"/run/x.sock\0garbage");
        assert_eq!(parse_sockaddr(&un).unwrap().unix_path, "/run/x.sock");
        let mut abs = AF_UNIX.to_ne_bytes().to_vec();
        abs.extend_from_slice(b"\0name\0\0");
        assert_eq!(parse_sockaddr(&abs).unwrap().unix_path, "@name");
        assert_eq!(parse_sockaddr(&[2]), None);
        assert_eq!(parse_sockaddr(&v4[..6]), None);
    }
}
