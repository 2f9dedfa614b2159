//! Network state of this host: interface addresses (getifaddrs through `nix`), per-interface
//! details under `/sys/class/net`, and the routing tables in `/proc/net/route` and
//! `/proc/net/ipv6_route`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use super::procfs::{read_text, read_trimmed};

/// One address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddress {
    pub interface: String,
    pub address: IpAddr,
    pub mask: Option<IpAddr>,
    pub broadcast: Option<IpAddr>,
    pub point_to_point: Option<IpAddr>,
}

fn ip_of(s: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Every IPv4 and IPv6 address of every interface (none when the call fails).
pub fn addresses() -> Vec<IfAddress> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|a| {
        let address = a.address.as_ref().and_then(ip_of)?;
        let p2p = a
            .flags
            .contains(nix::net::if_::InterfaceFlags::IFF_POINTOPOINT);
        let other = a.destination.as_ref().and_then(ip_of);
        Some(IfAddress {
            interface: a.interface_name.clone(),
            address,
            mask: a.netmask.as_ref().and_then(ip_of),
            broadcast: if p2p {
                None
            } else {
                a.broadcast.as_ref().and_then(ip_of)
            },
            point_to_point: if p2p { other } else { None },
        })
    })
    .collect()
}

/// One interface from `/sys/class/net/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub mac: String,
    pub kind: i64,
    pub mtu: i64,
    pub flags: i64,
    /// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped,
    /// tx_dropped, collisions.
    pub stats: [i64; 9],
    /// Mbit/s; -1 when the driver does not say.
    pub speed: i64,
    pub pci_slot: String,
}

const STATS: [&str; 9] = [
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "collisions",
];

fn num(p: &Path) -> Option<i64> {
    let t = read_trimmed(p)?;
    match t.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Every interface under `root` (`/sys/class/net`), sorted by name.
pub fn links(root: &Path) -> Vec<Link> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<Link> = dir
        .flatten()
        .map(|e| {
            let p = e.path();
            let mut l = Link {
                name: e.file_name().to_string_lossy().into_owned(),
                mac: read_trimmed(&p.join("address")).unwrap_or_default(),
                kind: num(&p.join("type")).unwrap_or(-1),
                mtu: num(&p.join("mtu")).unwrap_or(0),
                flags: num(&p.join("flags")).unwrap_or(0),
                speed: num(&p.join("speed")).filter(|s| *s >= 0).unwrap_or(-1),
                ..Link::default()
            };
            for (i, s) in STATS.iter().enumerate() {
                l.stats[i] = num(&p.join("statistics").join(s)).unwrap_or(0);
            }
            // A PCI device's address is the name of the folder `device` points to.
            if let Ok(dev) = std::fs::read_link(p.join("device"))
                && dev.to_string_lossy().contains("/pci")
            {
                l.pci_slot = dev
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
            }
            l
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub destination: IpAddr,
    pub netmask: u32,
    pub gateway: IpAddr,
    pub flags: i64,
    pub interface: String,
    pub mtu: i64,
    pub metric: i64,
}

/// `RTF_GATEWAY`: the route goes through a gateway.
pub const RTF_GATEWAY: i64 = 0x2;
/// `RTF_LOCAL`: an address of this host (IPv6's local table shows in `ipv6_route`).
pub const RTF_LOCAL: i64 = 0x8000_0000;

/// The IPv4 routes of `/proc/net/route` text (addresses in host order hex, as the kernel
/// writes them).
pub fn parse_route(s: &str) -> Vec<Route> {
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 11 {
                return None;
            }
            // The kernel prints the network-order word as a native integer.
            let hex4 = |h: &str| {
                u32::from_str_radix(h, 16)
                    .ok()
                    .map(|v| Ipv4Addr::from(v.to_le_bytes()))
            };
            let mask = hex4(f[7])?;
            Some(Route {
                destination: IpAddr::V4(hex4(f[1])?),
                netmask: u32::from(mask).count_ones(),
                gateway: IpAddr::V4(hex4(f[2])?),
                flags: i64::from_str_radix(f[3], 16).ok()?,
                interface: f[0].to_owned(),
                mtu: f[8].parse().ok()?,
                metric: f[6].parse().ok()?,
            })
        })
        .collect()
}

/// The IPv6 routes of `/proc/net/ipv6_route` text.
pub fn parse_ipv6_route(s: &str) -> Vec<Route> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let hex6 = |h: &str| u128::from_str_radix(h, 16).ok().map(Ipv6Addr::from);
            Some(Route {
                destination: IpAddr::V6(hex6(f[0])?),
                netmask: u32::from_str_radix(f[1], 16).ok()?,
                gateway: IpAddr::V6(hex6(f[4])?),
                flags: i64::from_str_radix(f[8], 16).ok()?,
                interface: f[9].to_owned(),
                mtu: 0,
                metric: i64::from_str_radix(f[5], 16).ok()?,
            })
        })
        .collect()
}

/// The main routing tables, IPv4 then IPv6.
pub fn routes() -> Vec<Route> {
    let mut v = read_text(Path::new("/proc/net/route"))
        .map(|s| parse_route(&s))
        .unwrap_or_default();
    v.extend(
        read_text(Path::new("/proc/net/ipv6_route"))
            .map(|s| parse_ipv6_route(&s))
            .unwrap_or_default(),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_route_tables_parse() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000200C0\t00000000\t0001\t0\t0\t5\t00FFFFFF\t1500\t0\t0\nshort\n";
        let r = parse_route(v4);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].destination.to_string(), "0.0.0.0");
        assert_eq!(r[0].gateway.to_string(), "192.0.2.1");
        assert_eq!(r[0].netmask, 0);
        assert_eq!(r[0].flags & RTF_GATEWAY, RTF_GATEWAY);
        assert_eq!(r[1].destination.to_string(), "192.0.2.0");
        assert_eq!((r[1].netmask, r[1].metric, r[1].mtu), (24, 5, 1500));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\nfe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n";
        let r = parse_ipv6_route(v6);
        assert_eq!(r[0].destination.to_string(), "::");
        assert_eq!(r[0].gateway.to_string(), "fd00::1");
        assert_eq!((r[0].netmask, r[0].metric), (0, 1024));
        assert_eq!(r[1].destination.to_string(), "fe80::");
        assert_eq!(r[1].netmask, 64);
    }
}

/// One socket of a network namespace, from `/proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub inode: u64,
    /// AF_INET 2, AF_INET6 10, AF_UNIX 1.
    pub family: i64,
    /// IPPROTO_TCP 6, IPPROTO_UDP 17; 0 for UNIX sockets.
    pub protocol: i64,
    pub local: Option<(IpAddr, u16)>,
    pub remote: Option<(IpAddr, u16)>,
    /// The TCP state's name (`LISTEN`, `ESTABLISHED`, …); empty for UDP and UNIX sockets.
    pub state: &'static str,
    /// A UNIX socket's path (empty when it has none).
    pub path: String,
    /// A UNIX socket that accepts connections (`__SO_ACCEPTCON`).
    pub accepting: bool,
}

const TCP_STATES: [&str; 12] = [
    "",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

/// `0100007F:0016` (IPv4) or 32 hex digits and a port (IPv6): the kernel's byte order, a
/// 32-bit word at a time in host (little-endian) order.
fn hex_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.swap_bytes().to_be_bytes())
        .collect();
    let ip = match bytes.len() {
        4 => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes);
            IpAddr::from(b)
        }
        _ => return None,
    };
    Some((ip, port))
}

/// The sockets of a `/proc/net/{tcp,udp}{,6}` file (`family`, `protocol` as above).
pub fn parse_inet_sockets(s: &str, family: i64, protocol: i64) -> Vec<Socket> {
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = usize::from_str_radix(f.get(3)?, 16).ok()?;
            Some(Socket {
                inode: f.get(9)?.parse().ok()?,
                family,
                protocol,
                local: hex_endpoint(f.get(1)?),
                remote: hex_endpoint(f.get(2)?),
                state: if protocol == 6 {
                    TCP_STATES.get(state).copied().unwrap_or("")
                } else {
                    ""
                },
                path: String::new(),
                accepting: false,
            })
        })
        .collect()
}

/// The sockets of a `/proc/net/unix` file.
pub fn parse_unix_sockets(s: &str) -> Vec<Socket> {
    s.lines()
        .skip(1)
        .filter_map(|l| {
            // Num RefCount Protocol Flags Type St Inode [Path]
            let f: Vec<&str> = l
                .splitn(8, char::is_whitespace)
                .filter(|x| !x.is_empty())
                .collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            Some(Socket {
                inode: f.get(6)?.parse().ok()?,
                family: 1,
                protocol: 0,
                local: None,
                remote: None,
                state: "",
                path: f.get(7).map_or("", |p| p.trim()).to_owned(),
                accepting: flags & 0x0001_0000 != 0,
            })
        })
        .collect()
}

/// Every socket of the network namespace that process `pid` is in.
pub fn sockets_of(pid: i64) -> Vec<Socket> {
    let read = |f: &str| read_text(Path::new(&format!("/proc/{pid}/net/{f}")));
    let mut out = Vec::new();
    for (file, family, protocol) in [
        ("tcp", 2, 6),
        ("tcp6", 10, 6),
        ("udp", 2, 17),
        ("udp6", 10, 17),
    ] {
        if let Some(s) = read(file) {
            out.extend(parse_inet_sockets(&s, family, protocol));
        }
    }
    if let Some(s) = read("unix") {
        out.extend(parse_unix_sockets(&s));
    }
    out
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    #[test]
    fn the_kernels_socket_lines_read_as_addresses_and_states() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0 100 0 0 10 0\n";
        let s = parse_inet_sockets(tcp, 2, 6);
        assert_eq!(s[0].local, Some(("127.0.0.1".parse().unwrap(), 8080)));
        assert_eq!(s[0].remote, Some(("0.0.0.0".parse().unwrap(), 0)));
        assert_eq!((s[0].state, s[0].inode), ("LISTEN", 12345));
        let tcp6 = "header\n 0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 01 0 0 0 0 0 777\n";
        let s = parse_inet_sockets(tcp6, 10, 6);
        assert_eq!(s[0].local, Some(("::1".parse().unwrap(), 22)));
        assert_eq!(s[0].state, "ESTABLISHED");
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/a b.sock\n0000000000000000: 00000002 00000000 00000000 0001 03 4243\n";
        let u = parse_unix_sockets(unix);
        assert_eq!(
            (u[0].inode, u[0].path.as_str(), u[0].accepting),
            (4242, "/run/a b.sock", true)
        );
        assert_eq!(
            (u[1].inode, u[1].path.as_str(), u[1].accepting),
            (4243, "", false)
        );
        for cut in 0..tcp.len() {
            let _ = parse_inet_sockets(&tcp[..cut], 2, 6);
        }
    }
}
