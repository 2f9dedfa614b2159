//! Socket events end to end: connect, bind, listen and accept on IPv4 and IPv6 loopback and on
//! a unix socket, plus a refused connect, all made by this test process; rows are selected by
//! this process's pid and the ports and paths it used.

use std::{
    io::ErrorKind,
    net::{TcpListener, TcpStream},
    os::unix::net::{UnixListener, UnixStream},
};

use serde_json::{Map, Value};
use tests::{Daemon, privileged, s};

#[allow(
    clippy::too_many_arguments,
    reason = "one expected row, field by field"
)]
fn row(
    action: &str,
    fd: String,
    family: &str,
    local: (&str, u16),
    remote: (&str, u16),
    status: &str,
    result: String,
    user: u8,
) -> String {
    format!(
        "{action} fd={fd} family={family} local={}:{} remote={}:{} {status} {result} user={user}",
        local.0, local.1, remote.0, remote.1
    )
}

fn render(r: &Map<String, Value>) -> String {
    format!(
        "{} fd={} family={} local={}:{} remote={}:{} {} {} user={}",
        s(r, "action"),
        s(r, "fd"),
        s(r, "family"),
        s(r, "local_address"),
        s(r, "local_port"),
        s(r, "remote_address"),
        s(r, "remote_port"),
        s(r, "status"),
        s(r, "result"),
        s(r, "user_address")
    )
}

#[test]
fn loopback_and_unix_sockets_exactly() {
    if !privileged() {
        return;
    }
    let d = Daemon::start(&["--enable_socket_events"]);
    let me = std::process::id();
    use std::os::fd::AsRawFd;

    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p4 = l4.local_addr().unwrap().port();
    let c4 = TcpStream::connect(("127.0.0.1", p4)).unwrap();
    let cp4 = c4.local_addr().unwrap().port();
    let (a4, _) = l4.accept().unwrap();

    let l6 = TcpListener::bind("[::1]:0").unwrap();
    let p6 = l6.local_addr().unwrap().port();
    let c6 = TcpStream::connect(("::1", p6)).unwrap();
    let cp6 = c6.local_addr().unwrap().port();
    let (a6, _) = l6.accept().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let lu = UnixListener::bind(&sock).unwrap();
    let cu = UnixStream::connect(&sock).unwrap();
    let (au, _) = lu.accept().unwrap();

    // A closed port: bind one, note it, drop it, connect.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let cport = closed.local_addr().unwrap().port();
    let closed_fd = closed.as_raw_fd();
    drop(closed);
    let err = TcpStream::connect(("127.0.0.1", cport)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    let sql = format!(
        "SELECT action, fd, family, local_address, local_port, remote_address, remote_port, status, result, user_address, socket, path, pid \
         FROM socket_events WHERE pid = {me} AND (local_port IN ({p4}, {cp4}, {p6}, {cp6}, {cport}) \
         OR remote_port IN ({p4}, {p6}, {cport}) OR action = 'bind' OR family = 1) ORDER BY ntime"
    );
    let rows: Vec<Map<String, Value>> = d
        .wait_rows(&sql, 17)
        .into_iter()
        .filter(|r| {
            s(r, "family") != "1"
                || s(r, "socket").starts_with(&dir.path().display().to_string())
                || s(r, "action") == "listen"
                || s(r, "action") == "accept"
        })
        .collect();
    let fd = |f: i32| f.to_string();
    let want = vec![
        // Kernel truth: a bind to port 0 shows the port the kernel chose (the socket's own
        // local end at exit). The refused connect's socket has no remote end any more, so
        // its remote end is the caller's sockaddr, flagged user_address = 1; so are unix
        // paths (the socket's path is not read from the kernel yet).
        row(
            "bind",
            fd(l4.as_raw_fd()),
            "2",
            ("127.0.0.1", p4),
            ("0.0.0.0", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "listen",
            fd(l4.as_raw_fd()),
            "2",
            ("127.0.0.1", p4),
            ("0.0.0.0", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "connect",
            fd(c4.as_raw_fd()),
            "2",
            ("127.0.0.1", cp4),
            ("127.0.0.1", p4),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "accept",
            fd(a4.as_raw_fd()),
            "2",
            ("127.0.0.1", p4),
            ("127.0.0.1", cp4),
            "succeeded",
            fd(a4.as_raw_fd()),
            0,
        ),
        row(
            "bind",
            fd(l6.as_raw_fd()),
            "10",
            ("::1", p6),
            ("::", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "listen",
            fd(l6.as_raw_fd()),
            "10",
            ("::1", p6),
            ("::", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "connect",
            fd(c6.as_raw_fd()),
            "10",
            ("::1", cp6),
            ("::1", p6),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "accept",
            fd(a6.as_raw_fd()),
            "10",
            ("::1", p6),
            ("::1", cp6),
            "succeeded",
            fd(a6.as_raw_fd()),
            0,
        ),
        row(
            "bind",
            fd(lu.as_raw_fd()),
            "1",
            ("", 0),
            ("", 0),
            "succeeded",
            "0".into(),
            1,
        ),
        row(
            "listen",
            fd(lu.as_raw_fd()),
            "1",
            ("", 0),
            ("", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "connect",
            fd(cu.as_raw_fd()),
            "1",
            ("", 0),
            ("", 0),
            "succeeded",
            "0".into(),
            1,
        ),
        row(
            "accept",
            fd(au.as_raw_fd()),
            "1",
            ("", 0),
            ("", 0),
            "succeeded",
            fd(au.as_raw_fd()),
            0,
        ),
        row(
            "bind",
            fd(closed_fd),
            "2",
            ("127.0.0.1", cport),
            ("0.0.0.0", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "listen",
            fd(closed_fd),
            "2",
            ("127.0.0.1", cport),
            ("0.0.0.0", 0),
            "succeeded",
            "0".into(),
            0,
        ),
        row(
            "connect",
            fd(closed_fd),
            "2",
            ("0.0.0.0", 0),
            ("127.0.0.1", cport),
            "failed",
            "-111".into(),
            1,
        ),
    ];
    let got: Vec<String> = rows.iter().map(render).collect();
    assert_eq!(got, want, "{}", d.log());
    let unix_paths: Vec<&str> = rows
        .iter()
        .filter(|r| s(r, "family") == "1")
        .map(|r| s(r, "socket"))
        .collect();
    let p = sock.display().to_string();
    assert_eq!(unix_paths, vec![p.as_str(), "", p.as_str(), ""]);
    let exe = std::env::current_exe().unwrap().display().to_string();
    assert!(
        rows.iter().all(|r| s(r, "path") == exe),
        "path is the test binary"
    );
    d.stop();
}
