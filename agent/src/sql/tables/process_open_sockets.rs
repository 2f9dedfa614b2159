//! `process_open_sockets`: the sockets each process holds open: its descriptors that name
//! `socket:[inode]`, matched with the socket tables of its network namespace
//! (`/proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}`, read once per namespace), osquery's columns.
//! `WHERE pid = N` reads only that process. Without a pid constraint, the sockets of the
//! namespaces seen that no process holds (a kernel's, or one of a process in another pid
//! namespace) are rows too, with `pid` and `fd` -1, as osquery shows them. Sockets of other
//! families (netlink, packet) are left out, as in osquery.

use std::{collections::HashMap, path::Path};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            ns::pids_for,
            process_namespaces::inode,
            util::{int, text, uint},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::{
        net::{Socket, sockets_of},
        procfs::read_link,
    },
};

const COLUMNS: &[Column] = &[
    col("pid", Integer),
    col("fd", BigInt),
    col("socket", BigInt),
    col("family", Integer),
    col("protocol", Integer),
    col("local_address", Text),
    col("remote_address", Text),
    col("local_port", Integer),
    col("remote_port", Integer),
    col("path", Text),
    col("state", Text),
    col("net_namespace", Text),
];
pub const PID: usize = 0;

#[derive(Debug)]
pub struct ProcessOpenSockets;

/// One open socket: (pid, fd, network namespace, the socket).
pub type Open = (i64, i64, String, Socket);

/// The open sockets of `pids`; with `orphans`, also the sockets of their namespaces that none
/// of them holds (pid and fd -1).
pub fn open_sockets(pids: &[i64], orphans: bool) -> Vec<Open> {
    // Socket tables by network namespace, read through the first process seen in each.
    let mut by_ns: HashMap<String, HashMap<u64, Socket>> = HashMap::new();
    let mut out = Vec::new();
    for &pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let mut held: Vec<(i64, u64)> = dir
            .filter_map(|e| {
                let fd: i64 = e.ok()?.file_name().to_str()?.parse().ok()?;
                let target = read_link(Path::new(&format!("/proc/{pid}/fd/{fd}")))?;
                let ino = target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()?;
                Some((fd, ino))
            })
            .collect();
        if held.is_empty() {
            continue;
        }
        held.sort_unstable();
        let Some(ns) = read_link(Path::new(&format!("/proc/{pid}/ns/net")))
            .and_then(|t| inode(&t).map(str::to_owned))
        else {
            continue;
        };
        let table = by_ns
            .entry(ns.clone())
            .or_insert_with(|| sockets_of(pid).into_iter().map(|s| (s.inode, s)).collect());
        for (fd, ino) in held {
            if let Some(s) = table.get(&ino) {
                out.push((pid, fd, ns.clone(), s.clone()));
            }
        }
    }
    if orphans {
        let held: std::collections::HashSet<(String, u64)> = out
            .iter()
            .map(|(_, _, ns, s)| (ns.clone(), s.inode))
            .collect();
        let mut rest: Vec<Open> = by_ns
            .into_iter()
            .flat_map(|(ns, t)| t.into_values().map(move |s| (-1, -1, ns.clone(), s)))
            .filter(|(_, _, ns, s)| !held.contains(&(ns.clone(), s.inode)))
            .collect();
        rest.sort_by(|a, b| (&a.2, a.3.inode).cmp(&(&b.2, b.3.inode)));
        out.extend(rest);
    }
    out
}

fn addr(e: Option<(std::net::IpAddr, u16)>) -> (Value, Value) {
    match e {
        Some((ip, port)) => (text(ip.to_string()), int(i64::from(port))),
        None => (text(""), int(0)),
    }
}

impl Table for ProcessOpenSockets {
    fn name(&self) -> &'static str {
        "process_open_sockets"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, all) = pids_for(ctx, PID, Path::new("/proc"))?;
        Ok(Box::new(open_sockets(&pids, all).into_iter().map(
            |(pid, fd, ns, s)| {
                let (la, lp) = addr(s.local);
                let (ra, rp) = addr(s.remote);
                Ok(vec![
                    int(pid),
                    int(fd),
                    uint(s.inode),
                    int(s.family),
                    int(s.protocol),
                    la,
                    ra,
                    lp,
                    rp,
                    text(s.path),
                    text(s.state),
                    text(ns),
                ])
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn a_connected_pair_shows_both_ends_with_their_state() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        let cport = client.local_addr().unwrap().port();
        let pid = std::process::id();
        let got = rows_of(&format!(
            "SELECT family, protocol, local_address, local_port, remote_address, remote_port, state \
             FROM process_open_sockets WHERE pid = {pid} AND protocol = 6 AND (local_port = {port} OR remote_port = {port}) \
             ORDER BY state, local_port"
        ));
        let row = |lp: u16, rp: u16, st: &str| -> Vec<String> {
            [
                "2",
                "6",
                "127.0.0.1",
                &lp.to_string(),
                "127.0.0.1",
                &rp.to_string(),
                st,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
        };
        let mut want = vec![
            row(port, cport, "ESTABLISHED"),
            row(cport, port, "ESTABLISHED"),
        ];
        want.sort_by_key(|r| r[3].parse::<u16>().unwrap());
        want.push(vec![
            "2".into(),
            "6".into(),
            "127.0.0.1".into(),
            port.to_string(),
            "0.0.0.0".into(),
            "0".into(),
            "LISTEN".into(),
        ]);
        assert_eq!(got, want);
        drop((client, server, listener));
    }
}
