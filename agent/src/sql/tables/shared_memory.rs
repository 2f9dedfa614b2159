//! `shared_memory`: the System V shared memory segments of the agent's IPC namespace
//! (`/proc/sysvipc/shm`, the kernel's text form of what `shmctl(SHM_STAT)` returns), osquery's
//! columns: owner and creator uids, last and creating pids, attach/detach/change times,
//! `permissions` as 4 octal digits of the mode (the first holds `SHM_DEST` and `SHM_LOCKED`),
//! `size` in bytes, `attached`, `status` `dest` for a segment marked for removal, `locked`.
//! A kernel without System V IPC has no rows.

use std::{collections::HashMap, path::Path};

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("shmid", Integer),
    col("owner_uid", BigInt),
    col("creator_uid", BigInt),
    col("pid", BigInt),
    col("creator_pid", BigInt),
    col("atime", BigInt),
    col("dtime", BigInt),
    col("ctime", BigInt),
    col("permissions", Text),
    col("size", BigInt),
    col("attached", Integer),
    col("status", Text),
    col("locked", Integer),
];

const SHM_DEST: u32 = 0o1000;
const SHM_LOCKED: u32 = 0o2000;

#[derive(Debug)]
pub struct SharedMemory;

/// One segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub shmid: i64,
    pub uid: i64,
    pub cuid: i64,
    pub lpid: i64,
    pub cpid: i64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub mode: u32,
    pub size: i64,
    pub nattch: i64,
}

impl Segment {
    /// osquery's four octal digits of the mode.
    pub fn permissions(&self) -> String {
        format!("{:04o}", self.mode & 0o7777)
    }
}

/// The segments of `/proc/sysvipc/shm` text (fields found by the header's names).
pub fn parse(s: &str) -> Vec<Segment> {
    let mut lines = s.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let at: HashMap<&str, usize> = header
        .split_whitespace()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let num = |k: &str| -> Option<i64> { f.get(*at.get(k)?)?.parse().ok() };
            Some(Segment {
                shmid: num("shmid")?,
                uid: num("uid")?,
                cuid: num("cuid")?,
                lpid: num("lpid")?,
                cpid: num("cpid")?,
                atime: num("atime")?,
                dtime: num("dtime")?,
                ctime: num("ctime")?,
                mode: u32::from_str_radix(f.get(*at.get("perms")?)?, 8).ok()?,
                size: num("size")?,
                nattch: num("nattch")?,
            })
        })
        .collect()
}

impl Table for SharedMemory {
    fn name(&self) -> &'static str {
        "shared_memory"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(Path::new("/proc/sysvipc/shm")).unwrap_or_default();
        let rows: Vec<_> = parse(&s)
            .into_iter()
            .map(|g| {
                Ok(vec![
                    int(g.shmid),
                    int(g.uid),
                    int(g.cuid),
                    int(g.lpid),
                    int(g.cpid),
                    int(g.atime),
                    int(g.dtime),
                    int(g.ctime),
                    text(g.permissions()),
                    int(g.size),
                    int(g.nattch),
                    text(if g.mode & SHM_DEST != 0 { "dest" } else { "" }),
                    int(i64::from(g.mode & SHM_LOCKED != 0)),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn sysvipc_lines_parse() {
        let s = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                 2065958706          3   640                  4096  4180     0      0  1000  1000     0     0          0          0 1796193475                     0                     0\n\
                          0         32  3600               1048576   812   990      2     0     0     0     0 1796190000 1796190100 1796180000                  4096                     0\n\
                 short line\n";
        let got = parse(s);
        assert_eq!(
            got[0],
            Segment {
                shmid: 3,
                uid: 1000,
                cuid: 0,
                lpid: 0,
                cpid: 4180,
                atime: 0,
                dtime: 0,
                ctime: 1_796_193_475,
                mode: 0o640,
                size: 4096,
                nattch: 0,
            }
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].permissions(), "0640");
        // Marked for removal and locked.
        assert_eq!(got[1].permissions(), "3600");
        assert_eq!(got[1].mode & SHM_DEST, SHM_DEST);
        assert_eq!(got[1].mode & SHM_LOCKED, SHM_LOCKED);
        assert_eq!(parse(""), []);
    }

    /// A segment of our own (made and removed with ipcmk/ipcrm) as `ipcs -m -i` shows it.
    #[test]
    fn our_segment_matches_ipcs() {
        let out = tool("ipcmk", &["-M", "12288", "-p", "0604"]);
        let id: i64 = out.split_whitespace().last().unwrap().parse().unwrap();
        let ipcs = tool("ipcs", &["-m", "-i", &id.to_string()]);
        let got = rows_of(&format!(
            "SELECT owner_uid, creator_uid, permissions, size, pid, creator_pid, attached, status, locked \
             FROM shared_memory WHERE shmid = {id}"
        ));
        tool("ipcrm", &["-m", &id.to_string()]);
        let field = |k: &str| {
            ipcs.split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {k} in {ipcs}"))
                .to_owned()
        };
        assert_eq!(
            got,
            [vec![
                field("uid"),
                field("cuid"),
                field("mode"),
                field("bytes"),
                field("lpid"),
                field("cpid"),
                field("nattch"),
                String::new(),
                "0".to_owned(),
            ]]
        );
        assert_eq!(field("mode"), "0604");
        assert_eq!(field("bytes"), "12288");
        assert!(rows_of(&format!("SELECT 1 FROM shared_memory WHERE shmid = {id}")).is_empty());
    }
}
