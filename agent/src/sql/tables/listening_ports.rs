//! `listening_ports`: the sockets processes listen on: TCP in state `LISTEN`, UDP bound to a
//! port with no peer, and UNIX sockets that accept connections and have a path (`port` 0),
//! from the same reading as `process_open_sockets` (so without a pid constraint a socket no
//! process holds is listed with `pid` -1); osquery's columns.

use crate::sql::{
    tables::{
        ns::pids_for,
        process_open_sockets::open_sockets,
        util::{int, text, uint},
    },
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("pid", Integer),
    col("port", Integer),
    col("protocol", Integer),
    col("family", Integer),
    col("address", Text),
    col("fd", BigInt),
    col("socket", BigInt),
    col("path", Text),
    col("net_namespace", Text),
];
const PID: usize = 0;

#[derive(Debug)]
pub struct ListeningPorts;

impl Table for ListeningPorts {
    fn name(&self) -> &'static str {
        "listening_ports"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, all) = pids_for(ctx, PID, std::path::Path::new("/proc"))?;
        Ok(Box::new(open_sockets(&pids, all).into_iter().filter_map(
            |(pid, fd, ns, s)| {
                let listening = match s.protocol {
                    6 => s.state == "LISTEN",
                    17 => {
                        s.local.is_some_and(|(_, p)| p != 0) && s.remote.is_none_or(|(_, p)| p == 0)
                    }
                    _ => s.family == 1 && s.accepting && !s.path.is_empty(),
                };
                listening.then(|| {
                    let (address, port) = s
                        .local
                        .map_or((String::new(), 0), |(ip, p)| (ip.to_string(), i64::from(p)));
                    Ok(vec![
                        int(pid),
                        int(port),
                        int(s.protocol),
                        int(s.family),
                        text(address),
                        int(fd),
                        uint(s.inode),
                        text(s.path),
                        text(ns),
                    ])
                })
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn our_listeners_are_listed_and_what_ss_lists_is_there() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        let _unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (tp, up) = (
            tcp.local_addr().unwrap().port(),
            udp.local_addr().unwrap().port(),
        );
        let pid = std::process::id();
        let got = rows_of(&format!(
            "SELECT port, protocol, family, address, path FROM listening_ports WHERE pid = {pid} \
             AND (port IN ({tp}, {up}) OR path = '{}') ORDER BY family, protocol",
            path.display()
        ));
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                s(&["0", "0", "1", "", &path.display().to_string()]),
                s(&["", "6", "2", "127.0.0.1", ""])
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| if i == 0 { tp.to_string() } else { v })
                    .collect(),
                s(&["", "17", "10", "::1", ""])
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| if i == 0 { up.to_string() } else { v })
                    .collect(),
            ]
        );
        // Every TCP port ss sees listening is in the table (ss: "LISTEN 0 128 127.0.0.1:22 ...").
        let ss_ports: std::collections::BTreeSet<String> = tool("ss", &["-Hltn"])
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(3)?
                    .rsplit_once(':')
                    .map(|(_, p)| p.to_owned())
            })
            .collect();
        let ours: std::collections::BTreeSet<String> =
            rows_of("SELECT port FROM listening_ports WHERE protocol = 6")
                .into_iter()
                .map(|r| r[0].clone())
                .collect();
        assert!(ss_ports.is_subset(&ours), "ss {ss_ports:?}, table {ours:?}");
    }
}
