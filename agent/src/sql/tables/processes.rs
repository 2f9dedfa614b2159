//! `processes`: the running processes, read from `/proc`, with osquery's Linux columns.
//!
//! `WHERE pid = N` (and `pid IN (...)`, which SQLite hands over one value per scan) reads
//! only those `/proc/N` entries. A process that exits while it is being read is skipped: the
//! table describes what was running, and a vanished pid is not an error.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            ns::pids_for,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
    },
    sys::procfs::{read_link, read_text},
};

const COLUMNS: &[Column] = &[
    col("pid", BigInt),
    col("name", Text),
    col("path", Text),
    col("cmdline", Text),
    col("state", Text),
    col("cwd", Text),
    col("root", Text),
    col("uid", BigInt),
    col("gid", BigInt),
    col("euid", BigInt),
    col("egid", BigInt),
    col("suid", BigInt),
    col("sgid", BigInt),
    col("on_disk", Integer),
    col("wired_size", BigInt),
    col("resident_size", BigInt),
    col("total_size", BigInt),
    col("user_time", BigInt),
    col("system_time", BigInt),
    col("disk_bytes_read", BigInt),
    col("disk_bytes_written", BigInt),
    col("start_time", BigInt),
    col("parent", BigInt),
    col("pgroup", BigInt),
    col("threads", Integer),
    col("nice", Integer),
    col("cgroup_path", Text),
];

const PID: usize = 0;

/// The `processes` table over a proc filesystem (normally `/proc`).
#[derive(Debug)]
pub struct Processes {
    proc_root: PathBuf,
    /// `/proc/<pid>` entries read so far; proves that `pid = N` reads one entry.
    entries_read: Arc<AtomicU64>,
    /// Files and links read under those entries; proves unused columns cost nothing.
    files_read: Arc<AtomicU64>,
}

impl Processes {
    pub fn new() -> Self {
        Self::with_root("/proc")
    }

    /// A table over another proc tree (tests use a fake one).
    pub fn with_root(proc_root: impl Into<PathBuf>) -> Self {
        Self {
            proc_root: proc_root.into(),
            entries_read: Arc::new(AtomicU64::new(0)),
            files_read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many `/proc/<pid>` entries this table has read since it was made.
    pub fn entries_read(&self) -> u64 {
        self.entries_read.load(Ordering::Relaxed)
    }

    /// How many files and links under `/proc/<pid>` this table has read since it was made.
    pub fn files_read(&self) -> u64 {
        self.files_read.load(Ordering::Relaxed)
    }
}

impl Default for Processes {
    fn default() -> Self {
        Self::new()
    }
}

/// The fields of `/proc/<pid>/stat` the table uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: String,
    pub ppid: i64,
    pub pgrp: i64,
    pub utime: u64,
    pub stime: u64,
    pub nice: i64,
    pub threads: i64,
    /// Clock ticks after boot.
    pub starttime: u64,
}

/// Parses `/proc/<pid>/stat`. The command name sits in parentheses and may itself contain
/// spaces and `)`, so the fields are counted from the last `)`.
pub fn parse_stat(s: &str) -> Option<Stat> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_owned();
    // After ")": state(3) ppid(4) pgrp(5) session tty tpgid flags minflt cminflt majflt
    // cmajflt utime(14) stime(15) cutime cstime priority nice(19) num_threads(20)
    // itrealvalue starttime(22) ...
    let f: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|v| v.parse::<i64>().ok());
    let unum = |n: usize| field(n).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        state: field(3)?.to_owned(),
        ppid: num(4)?,
        pgrp: num(5)?,
        utime: unum(14)?,
        stime: unum(15)?,
        nice: num(19)?,
        threads: num(20)?,
        starttime: unum(22)?,
    })
}

/// `Uid:`/`Gid:` (real, effective, saved) and `VmRSS`/`VmSize` (bytes) from `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub uids: Option<[i64; 3]>,
    pub gids: Option<[i64; 3]>,
    pub rss_bytes: Option<i64>,
    pub vm_bytes: Option<i64>,
}

pub fn parse_status(s: &str) -> Status {
    let ids = |v: &str| -> Option<[i64; 3]> {
        let mut it = v.split_whitespace().map(|x| x.parse::<i64>().ok());
        Some([it.next()??, it.next()??, it.next()??])
    };
    let kb = |v: &str| -> Option<i64> {
        let n: i64 = v.split_whitespace().next()?.parse().ok()?;
        n.checked_mul(1024)
    };
    let mut st = Status::default();
    for line in s.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "Uid" => st.uids = ids(v),
            "Gid" => st.gids = ids(v),
            "VmRSS" => st.rss_bytes = kb(v),
            "VmSize" => st.vm_bytes = kb(v),
            _ => {}
        }
    }
    st
}

/// `read_bytes` and `write_bytes` from `/proc/<pid>/io`.
pub fn parse_io(s: &str) -> (Option<i64>, Option<i64>) {
    let mut out = (None, None);
    for line in s.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().parse::<i64>().ok();
        match k {
            "read_bytes" => out.0 = v,
            "write_bytes" => out.1 = v,
            _ => {}
        }
    }
    out
}

/// The cgroup v2 path (`0::/path`) or, on a v1-only host, the first hierarchy's path.
pub fn parse_cgroup(s: &str) -> String {
    let mut first = None;
    for line in s.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" {
            return path.to_owned();
        }
        first.get_or_insert(path);
    }
    first.unwrap_or("").to_owned()
}

/// argv from `/proc/<pid>/cmdline` joined by spaces, as osquery prints it.
pub fn parse_cmdline(b: &[u8]) -> String {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    b.split(|c| *c == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Host constants the rows need, read once per scan.
#[derive(Debug, Clone, Copy)]
struct Clock {
    ticks_per_sec: u64,
    /// Boot time, seconds since the epoch (`btime` in `/proc/stat`).
    boot_time: Option<i64>,
}

fn boot_time(proc_root: &Path) -> Option<i64> {
    let s = read_text(&proc_root.join("stat"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Which per-process files a scan needs, from the columns the statement reads: a query for
/// `pid, name` reads `stat` alone instead of eight files per process.
#[derive(Debug, Clone, Copy)]
struct Want {
    columns: Option<u64>,
}

impl Want {
    fn any(&self, columns: &[usize]) -> bool {
        columns.iter().any(|&c| {
            self.columns
                .is_none_or(|mask| mask & (1u64 << c.min(63)) != 0)
        })
    }
}

/// Reads the files of one `/proc/<pid>`, counting each read.
struct ProcDir<'a> {
    dir: PathBuf,
    files_read: &'a AtomicU64,
}

impl ProcDir<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.files_read.fetch_add(1, Ordering::Relaxed);
        read_text(&self.dir.join(name))
    }

    fn link(&self, name: &str) -> Option<String> {
        self.files_read.fetch_add(1, Ordering::Relaxed);
        read_link(&self.dir.join(name))
    }
}

// Column numbers, for deciding which files to read.
const PATH: usize = 2;
const CMDLINE: usize = 3;
const CWD: usize = 5;
const ROOT: usize = 6;
const STATUS_COLUMNS: [usize; 8] = [7, 8, 9, 10, 11, 12, 15, 16];
const ON_DISK: usize = 13;
const IO_COLUMNS: [usize; 2] = [19, 20];
const CGROUP_PATH: usize = 26;

/// One row for `/proc/<pid>`, or `None` when the process is gone (or never existed). Columns
/// the statement does not read are NULL and their files are not opened.
fn read_process(
    proc_root: &Path,
    pid: i64,
    clock: Clock,
    want: Want,
    files_read: &AtomicU64,
) -> Option<Vec<Value>> {
    let p = ProcDir {
        dir: proc_root.join(pid.to_string()),
        files_read,
    };
    // `stat` is the existence test: if it cannot be read the process has gone.
    let stat = parse_stat(&p.text("stat")?)?;
    let status = if want.any(&STATUS_COLUMNS) {
        p.text("status")
            .map(|s| parse_status(&s))
            .unwrap_or_default()
    } else {
        Status::default()
    };
    let cmdline = if want.any(&[CMDLINE]) {
        files_read.fetch_add(1, Ordering::Relaxed);
        // Bytes, not text: arguments are NUL-separated and need not be UTF-8.
        std::fs::read(p.dir.join("cmdline"))
            .map(|b| parse_cmdline(&b))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let exe = if want.any(&[PATH, ON_DISK]) {
        p.link("exe")
    } else {
        None
    };
    let (path, on_disk) = match exe {
        // Kernel threads and processes we may not inspect have no readable exe.
        None => (String::new(), -1),
        Some(e) => match e.strip_suffix(" (deleted)") {
            Some(gone) => (gone.to_owned(), 0),
            None => {
                let exists = Path::new(&e).exists();
                (e, i64::from(exists))
            }
        },
    };
    let (read_bytes, write_bytes) = if want.any(&IO_COLUMNS) {
        p.text("io").map(|s| parse_io(&s)).unwrap_or((None, None))
    } else {
        (None, None)
    };
    let cgroup = if want.any(&[CGROUP_PATH]) {
        p.text("cgroup")
            .map(|s| parse_cgroup(&s))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let cwd = if want.any(&[CWD]) {
        p.link("cwd")
    } else {
        None
    };
    let root = if want.any(&[ROOT]) {
        p.link("root")
    } else {
        None
    };
    let ms = |ticks: u64| {
        let ms = u128::from(ticks) * 1000 / u128::from(clock.ticks_per_sec.max(1));
        int(i64::try_from(ms).unwrap_or(i64::MAX))
    };
    let start_time = clock.boot_time.map_or(-1, |bt| {
        let after_boot = stat.starttime / clock.ticks_per_sec.max(1);
        bt.saturating_add(i64::try_from(after_boot).unwrap_or(i64::MAX))
    });
    let or_minus_one = |v: Option<i64>| int(v.unwrap_or(-1));
    let id = |ids: Option<[i64; 3]>, i: usize| int(ids.map_or(-1, |a| a[i]));
    let mut row = vec![
        int(pid),
        text(stat.comm),
        text(path),
        text(cmdline),
        text(stat.state),
        text(cwd.unwrap_or_default()),
        text(root.unwrap_or_default()),
        id(status.uids, 0),
        id(status.gids, 0),
        id(status.uids, 1),
        id(status.gids, 1),
        id(status.uids, 2),
        id(status.gids, 2),
        int(on_disk),
        // Linux has no notion of wired memory; osquery reports 0.
        int(0),
        or_minus_one(status.rss_bytes),
        or_minus_one(status.vm_bytes),
        ms(stat.utime),
        ms(stat.stime),
        or_minus_one(read_bytes),
        or_minus_one(write_bytes),
        int(start_time),
        int(stat.ppid),
        int(stat.pgrp),
        int(stat.threads),
        int(stat.nice),
        text(cgroup),
    ];
    // SQLite never reads these; NULL says plainly that they were not computed.
    for (i, v) in row.iter_mut().enumerate() {
        if !want.any(&[i]) {
            *v = Value::Null;
        }
    }
    Some(row)
}

impl Table for Processes {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        if constrained.iter().any(|(c, op)| *c == PID && *op == Op::Eq) {
            10.0
        } else {
            100_000.0
        }
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, _) = pids_for(ctx, PID, &self.proc_root)?;
        let clock = Clock {
            ticks_per_sec: rustix::param::clock_ticks_per_second(),
            boot_time: boot_time(&self.proc_root),
        };
        let root = self.proc_root.clone();
        let (entries, files) = (self.entries_read.clone(), self.files_read.clone());
        let want = Want {
            columns: ctx.columns_used,
        };
        // Lazy, so a LIMIT stops reading /proc early.
        Ok(Box::new(pids.into_iter().filter_map(move |pid| {
            entries.fetch_add(1, Ordering::Relaxed);
            read_process(&root, pid, clock, want, &files).map(Ok)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Engine, TableEnv, vtab};
    use crate::{flags::Flags, sql::vtab::Constraint};

    fn engine() -> Engine {
        Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine")
    }

    #[test]
    fn stat_with_odd_command_names() {
        let s = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 34 0 0 20 -5 3 0 \
                 98765 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let st = parse_stat(s).expect("parses");
        assert_eq!(
            st,
            Stat {
                comm: "a) b (c)".into(),
                state: "S".into(),
                ppid: 1,
                pgrp: 4242,
                utime: 12,
                stime: 34,
                nice: -5,
                threads: 3,
                starttime: 98765,
            }
        );
    }

    #[test]
    fn bad_stat_is_none_not_a_panic() {
        for s in [
            "",
            "(",
            ")",
            ")(",
            "1 (x",
            "1 (x) S",
            "1 (x) S a b c",
            "1 (é\u{0}) S 1 2 3 4 5 6 7 8 9 10 x y",
        ] {
            assert_eq!(parse_stat(s), None, "{s:?}");
        }
    }

    #[test]
    fn status_io_cgroup_cmdline() {
        let st = parse_status(
            "Name:\tbash\nUid:\t1000\t1001\t1002\t1003\nGid:\t5 6 7 8\nVmSize:\t  100 kB\n\
             VmRSS:\t 3 kB\nweird\nUid: x",
        );
        assert_eq!(
            st,
            Status {
                // The malformed second `Uid:` line wins and makes uids unknown, not wrong.
                uids: None,
                gids: Some([5, 6, 7]),
                rss_bytes: Some(3072),
                vm_bytes: Some(102_400),
            }
        );
        assert_eq!(
            parse_io("rchar: 5\nread_bytes: 4096\nwrite_bytes: 8192\n"),
            (Some(4096), Some(8192))
        );
        assert_eq!(parse_io("read_bytes: nope"), (None, None));
        assert_eq!(
            parse_cgroup("12:cpu:/v1\n0::/user.slice/a:b.scope\n"),
            "/user.slice/a:b.scope"
        );
        assert_eq!(parse_cgroup("3:memory:/m\n"), "/m");
        assert_eq!(parse_cgroup("garbage"), "");
        assert_eq!(parse_cmdline(b"ls\0-l\0/tmp\0"), "ls -l /tmp");
        assert_eq!(parse_cmdline(b""), "");
        assert_eq!(parse_cmdline(b"\xff\0"), "\u{fffd}");
    }

    /// A fake proc tree: pid 7 is whole, pid 8 has only a broken stat, pid 9 is listed but
    /// gone (no files), as when a process exits during the scan.
    fn fake_proc_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::write(p.join("stat"), "cpu 1 2 3\nbtime 1700000000\n").expect("write");
        let seven = p.join("7");
        std::fs::create_dir(&seven).expect("mkdir");
        std::fs::write(
            seven.join("stat"),
            "7 (fake) R 1 7 7 0 -1 0 0 0 0 0 250 50 0 0 20 0 2 0 1000 0 0",
        )
        .expect("write");
        std::fs::write(seven.join("status"), "Uid:\t1 2 3 4\nGid:\t5 6 7 8\n").expect("write");
        std::fs::write(seven.join("cmdline"), b"fake\0--flag\0").expect("write");
        std::fs::write(seven.join("io"), "read_bytes: 11\nwrite_bytes: 22\n").expect("write");
        std::fs::write(seven.join("cgroup"), "0::/test.scope\n").expect("write");
        std::fs::create_dir(p.join("8")).expect("mkdir");
        std::fs::write(p.join("8/stat"), "8 (broken").expect("write");
        std::fs::create_dir(p.join("9")).expect("mkdir");
        std::fs::create_dir(p.join("self")).expect("mkdir");
        dir
    }

    #[test]
    fn fake_proc_tree_skips_vanished_and_broken_entries() {
        let dir = fake_proc_tree();
        let p = dir.path();
        let t = Processes::with_root(p);
        let rows: Vec<_> = t
            .generate(&QueryContext::default())
            .expect("generate")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(t.entries_read(), 3);
        // pid 7: stat, status, cmdline, exe, io, cgroup, cwd, root; pids 8 and 9: stat.
        assert_eq!(t.files_read(), 10);
        assert_eq!(rows.len(), 1);
        let ticks = rustix::param::clock_ticks_per_second();
        let want = vec![
            int(7),
            text("fake"),
            text(""),
            text("fake --flag"),
            text("R"),
            text(""),
            text(""),
            int(1),
            int(5),
            int(2),
            int(6),
            int(3),
            int(7),
            int(-1),
            int(0),
            int(-1),
            int(-1),
            int(i64::try_from(250 * 1000 / ticks).expect("small")),
            int(i64::try_from(50 * 1000 / ticks).expect("small")),
            int(11),
            int(22),
            int(1_700_000_000 + i64::try_from(1000 / ticks).expect("small")),
            int(1),
            int(7),
            int(2),
            int(0),
            text("/test.scope"),
        ];
        assert_eq!(rows[0], want);
    }

    #[test]
    fn unused_columns_open_no_files() {
        let dir = fake_proc_tree();
        let t = Arc::new(Processes::with_root(dir.path()));
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        vtab::register(&conn, t.clone()).expect("register");
        let query = |sql: &str| -> (Vec<Vec<Value>>, u64) {
            let before = t.files_read();
            let mut stmt = conn.prepare(sql).expect("prepare");
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
                .expect("query")
                .collect::<Result<Vec<Vec<Value>>, _>>()
                .expect("rows");
            (rows, t.files_read() - before)
        };
        // `stat` alone, for each of the three entries.
        assert_eq!(
            query("SELECT pid, name, parent FROM processes"),
            (vec![vec![int(7), text("fake"), int(1)]], 3)
        );
        assert_eq!(
            query("SELECT cgroup_path FROM processes WHERE pid = 7"),
            (vec![vec![text("/test.scope")]], 2)
        );
        assert_eq!(
            query("SELECT euid, disk_bytes_read FROM processes WHERE pid = 7"),
            (vec![vec![int(2), int(11)]], 3)
        );
        // A column used only in WHERE still counts as used.
        assert_eq!(
            query("SELECT pid FROM processes WHERE cmdline LIKE '%--flag%'"),
            (vec![vec![int(7)]], 4)
        );
        assert_eq!(query("SELECT * FROM processes WHERE pid = 7").1, 8);
    }

    fn proc_field(pid: u32, name: &str) -> String {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .expect("field")
            .split_whitespace()
            .next()
            .expect("value")
            .to_owned()
    }

    #[test]
    fn own_row_matches_proc() {
        let me = std::process::id();
        let rs = engine()
            .query(&format!(
                "SELECT pid, parent, name, uid, gid, cmdline, threads, state, path, on_disk \
                 FROM processes WHERE pid = {me}"
            ))
            .expect("query");
        assert_eq!(rs.rows.len(), 1, "{rs:?}");
        let r = &rs.rows[0];
        let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).expect("stat");
        let stat = parse_stat(&stat).expect("own stat");
        let cmdline =
            parse_cmdline(&std::fs::read(format!("/proc/{me}/cmdline")).expect("cmdline"));
        let exe = std::fs::read_link(format!("/proc/{me}/exe")).expect("exe");
        assert_eq!(r[0], int(i64::from(me)));
        assert_eq!(r[1], int(i64::from(std::os::unix::process::parent_id())));
        assert_eq!(r[2], text(stat.comm));
        assert_eq!(
            r[3],
            int(proc_field(me, "Uid").parse::<i64>().expect("uid"))
        );
        assert_eq!(
            r[4],
            int(proc_field(me, "Gid").parse::<i64>().expect("gid"))
        );
        assert_eq!(r[5], text(cmdline));
        let Value::Integer(threads) = r[6] else {
            panic!("threads is {:?}", r[6])
        };
        assert!(threads >= 1, "{threads}");
        // The state is the thread-group leader's, libtest's main thread: it may wake up at
        // any moment, so only the set is certain here; `child_state_and_cmdline_exact` checks
        // exact states on a process that holds still.
        assert!(
            matches!(&r[7], Value::Text(s) if s == "R" || s == "S"),
            "{:?}",
            r[7]
        );
        assert_eq!(r[8], text(exe.to_string_lossy()));
        assert_eq!(r[9], int(1));
    }

    /// Polls `/proc/<pid>/stat` until the process is in `state`.
    fn wait_for_state(pid: u32, state: &str) {
        for _ in 0..200 {
            let st = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s));
            if st.is_some_and(|st| st.state == state) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("pid {pid} never reached state {state}");
    }

    #[test]
    fn child_state_and_cmdline_exact() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let engine = engine();
        let sql = format!(
            "SELECT pid, parent, name, cmdline, state, threads, uid, euid, on_disk \
             FROM processes WHERE pid = {pid}"
        );
        wait_for_state(pid, "S");
        let sleeping = engine.query(&sql).expect("query");
        let me = rustix::process::getuid().as_raw();
        let row = |state: &str| {
            vec![
                int(i64::from(pid)),
                int(i64::from(std::process::id())),
                text("sleep"),
                text("sleep 30"),
                text(state),
                int(1),
                int(me),
                int(me),
                int(1),
            ]
        };
        assert_eq!(sleeping.rows, vec![row("S")]);
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::STOP,
        )
        .expect("SIGSTOP");
        wait_for_state(pid, "T");
        let stopped = engine.query(&sql).expect("query");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(stopped.rows, vec![row("T")]);
        // Once reaped, the pid is gone: no row, no error.
        let gone = engine.query(&sql).expect("query");
        assert_eq!(gone.rows, Vec::<Vec<Value>>::new());
    }

    #[test]
    fn pid_constraint_reads_only_that_entry() {
        let me = i64::from(std::process::id());
        let parent = i64::from(std::os::unix::process::parent_id());
        let t = Arc::new(Processes::new());
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        vtab::register(&conn, t.clone()).expect("register");

        let n: i64 = conn
            .query_row("SELECT count(*) FROM processes WHERE pid = ?1", [me], |r| {
                r.get(0)
            })
            .expect("query");
        assert_eq!((n, t.entries_read()), (1, 1));

        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM processes WHERE pid IN (?1, ?2)",
                [me, parent],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!((n, t.entries_read()), (2, 3));

        // A pid that does not exist reads its one entry and returns nothing; a pid that
        // cannot exist reads nothing.
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM processes WHERE pid = 2147483647",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!((n, t.entries_read()), (0, 4));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM processes WHERE pid = -5", [], |r| {
                r.get(0)
            })
            .expect("query");
        assert_eq!((n, t.entries_read()), (0, 4));

        // Without a constraint every entry is read.
        let before = t.entries_read();
        let all: i64 = conn
            .query_row("SELECT count(*) FROM processes", [], |r| r.get(0))
            .expect("query");
        assert!(all >= 2, "{all}");
        assert!(t.entries_read() - before >= all as u64);
    }

    #[test]
    fn direct_generate_with_pid_reads_one_entry() {
        let me = i64::from(std::process::id());
        let t = Processes::new();
        let ctx = QueryContext {
            constraints: vec![Constraint {
                column: PID,
                op: Op::Eq,
                value: Value::Integer(me),
            }],
            ..Default::default()
        };
        let rows: Vec<_> = t.generate(&ctx).expect("generate").collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(t.entries_read(), 1);
        let text_pid = QueryContext {
            constraints: vec![Constraint {
                column: PID,
                op: Op::Eq,
                value: Value::Text("not a pid".into()),
            }],
            ..Default::default()
        };
        assert_eq!(t.generate(&text_pid).expect("generate").count(), 0);
        assert_eq!(t.entries_read(), 1);
    }
}
