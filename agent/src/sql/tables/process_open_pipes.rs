//! `process_open_pipes`: the pipes processes hold open (`/proc/<pid>/fd/<n>` naming
//! `pipe:[inode]`, type `anonymous`, or a FIFO on a file system, type `named`), each with the
//! descriptors other processes (or the same one) hold at the other end. `mode` is how the
//! descriptor was opened (`r`, `w`, `rw`: the permission bits of the `/proc` link). A pipe
//! held by one descriptor only is a row without a partner. As in osquery, a descriptor's
//! partners are the descriptors of the same pipe opened the other way (or any, when it is
//! `rw`). `WHERE pid = N` returns only N's descriptors (every process is still read, to find
//! the partners).

use std::{
    collections::BTreeMap,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::Path,
};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            ns::{all_pids, wanted_pids},
            util::{int, text, uint},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_link,
};

const COLUMNS: &[Column] = &[
    col("pid", BigInt),
    col("fd", BigInt),
    col("mode", Text),
    col("inode", BigInt),
    col("type", Text),
    col("partner_pid", BigInt),
    col("partner_fd", BigInt),
    col("partner_mode", Text),
];
const PID: usize = 0;

#[derive(Debug)]
pub struct ProcessOpenPipes;

/// One descriptor naming a pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipe {
    pub pid: i64,
    pub fd: i64,
    pub mode: String,
    pub inode: u64,
    pub named: bool,
}

/// `r`, `w`, `rw` (or empty) from the permission bits of a `/proc/<pid>/fd/<n>` link.
pub fn mode_of(bits: u32) -> String {
    let mut m = String::new();
    if bits & 0o444 != 0 {
        m.push('r');
    }
    if bits & 0o222 != 0 {
        m.push('w');
    }
    m
}

/// Each descriptor of `pipes` (in order) with its partner: None when the pipe has no other
/// descriptor; otherwise one entry per descriptor of the same pipe opened the other way
/// (any other descriptor when this one is `rw`). Indices into `pipes`.
pub fn partners(pipes: &[Pipe]) -> Vec<(usize, Option<usize>)> {
    let mut by_inode: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, p) in pipes.iter().enumerate() {
        by_inode.entry(p.inode).or_default().push(i);
    }
    let mut out = Vec::new();
    for (i, p) in pipes.iter().enumerate() {
        let group = by_inode.get(&p.inode).map(Vec::as_slice).unwrap_or(&[]);
        if group.len() == 1 {
            out.push((i, None));
            continue;
        }
        for &j in group {
            let q = &pipes[j];
            if j != i && (p.mode != q.mode || p.mode == "rw") {
                out.push((i, Some(j)));
            }
        }
    }
    out
}

/// The pipe descriptor `fd` of `pid` is, if it is one.
fn pipe_of(pid: i64, fd: i64) -> Option<Pipe> {
    let link = format!("/proc/{pid}/fd/{fd}");
    let path = Path::new(&link);
    let target = read_link(path)?;
    if target.starts_with("socket:") || target.starts_with("anon_inode:") {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if !meta.file_type().is_fifo() {
        return None;
    }
    let bits = std::fs::symlink_metadata(path).ok()?.mode();
    Some(Pipe {
        pid,
        fd,
        mode: mode_of(bits),
        inode: meta.ino(),
        named: !target.starts_with("pipe:"),
    })
}

fn pipes_of(pid: i64) -> Vec<Pipe> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<i64> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds.into_iter().filter_map(|fd| pipe_of(pid, fd)).collect()
}

impl Table for ProcessOpenPipes {
    fn name(&self) -> &'static str {
        "process_open_pipes"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let wanted = wanted_pids(ctx, PID);
        let pipes: Vec<Pipe> = all_pids(Path::new("/proc"))?
            .into_iter()
            .flat_map(pipes_of)
            .collect();
        let rows: Vec<_> = partners(&pipes)
            .into_iter()
            .filter(|(i, _)| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.binary_search(&pipes[*i].pid).is_ok())
            })
            .map(|(i, partner)| {
                let p = &pipes[i];
                let mut row = vec![
                    int(p.pid),
                    int(p.fd),
                    text(p.mode.clone()),
                    uint(p.inode),
                    text(if p.named { "named" } else { "anonymous" }),
                ];
                match partner.map(|j| &pipes[j]) {
                    Some(q) => row.extend([int(q.pid), int(q.fd), text(q.mode.clone())]),
                    None => row.extend([Value::Null, Value::Null, Value::Null]),
                }
                Ok(row)
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::{fd::AsRawFd, unix::fs::MetadataExt};

    use super::*;
    use crate::sql::tables::util::{rows_of, tool};

    fn p(pid: i64, fd: i64, mode: &str, inode: u64) -> Pipe {
        Pipe {
            pid,
            fd,
            mode: mode.into(),
            inode,
            named: false,
        }
    }

    #[test]
    fn partners_are_the_other_ends() {
        assert_eq!(mode_of(0o120500), "r");
        assert_eq!(mode_of(0o120300), "w");
        assert_eq!(mode_of(0o120700), "rw");
        let pipes = [
            p(10, 3, "r", 7),  // 0: reader of 7
            p(10, 4, "w", 7),  // 1: writer of 7, same process
            p(11, 1, "w", 7),  // 2: a child's inherited writer
            p(11, 5, "r", 9),  // 3: alone on 9
            p(12, 0, "rw", 8), // 4: a FIFO opened read-write
            p(13, 6, "rw", 8), // 5
        ];
        assert_eq!(
            partners(&pipes),
            [
                (0, Some(1)),
                (0, Some(2)),
                (1, Some(0)),
                (2, Some(0)),
                (3, None),
                (4, Some(5)),
                (5, Some(4)),
            ]
        );
    }

    #[test]
    fn our_own_pipe_and_fifo() {
        let (r, w) = std::io::pipe().unwrap();
        let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
        let inode = std::fs::metadata(format!("/proc/self/fd/{rfd}"))
            .unwrap()
            .ino();
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        tool("mkfifo", &[fifo.to_str().unwrap()]);
        // Read-write: opening does not wait for the other end.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let fifo_inode = std::fs::metadata(&fifo).unwrap().ino();
        let pid = std::process::id();
        let got = rows_of(&format!(
            "SELECT pid, fd, mode, inode, type, partner_pid, partner_fd, partner_mode \
             FROM process_open_pipes WHERE pid = {pid} AND inode IN ({inode}, {fifo_inode}) \
             ORDER BY type, fd"
        ));
        let (pid, rfd, wfd, ffd) = (
            pid.to_string(),
            rfd.to_string(),
            wfd.to_string(),
            f.as_raw_fd().to_string(),
        );
        let (inode, fifo_inode) = (inode.to_string(), fifo_inode.to_string());
        let row = |v: [&str; 8]| v.map(str::to_owned).to_vec();
        let mut want = vec![
            row([&pid, &rfd, "r", &inode, "anonymous", &pid, &wfd, "w"]),
            row([&pid, &wfd, "w", &inode, "anonymous", &pid, &rfd, "r"]),
            row([&pid, &ffd, "rw", &fifo_inode, "named", "", "", ""]),
        ];
        want[..2].sort_by_key(|r| r[1].parse::<i64>().unwrap());
        assert_eq!(got, want);
        drop((r, w, f));
    }
}
