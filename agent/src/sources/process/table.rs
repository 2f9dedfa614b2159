//! `process_events`: osquery's columns plus what the kernel sources add (tid, cgroup id,
//! mount namespace, exit status, exact times).

use rusqlite::types::Value;

use crate::{
    events::{ProcessEvent, ProcessSyscall},
    sql::{
        TableEnv,
        tables::event_scan::{column_index, scan_rows, time_cost},
        tables::util::{int, text, uint},
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col, hidden},
    },
};

pub const COLUMNS: &[Column] = &[
    col("pid", BigInt),
    col("path", Text),
    col("mode", Text),
    col("cmdline", Text),
    hidden("cmdline_size", BigInt),
    hidden("env", Text),
    hidden("env_count", BigInt),
    hidden("env_size", BigInt),
    col("cwd", Text),
    col("auid", BigInt),
    col("uid", BigInt),
    col("euid", BigInt),
    col("gid", BigInt),
    col("egid", BigInt),
    col("owner_uid", BigInt),
    col("owner_gid", BigInt),
    col("atime", BigInt),
    col("mtime", BigInt),
    col("ctime", BigInt),
    col("btime", BigInt),
    hidden("overflows", Text),
    col("parent", BigInt),
    col("time", BigInt),
    col("uptime", BigInt),
    hidden("eid", Text),
    col("fsuid", BigInt),
    col("suid", BigInt),
    col("fsgid", BigInt),
    col("sgid", BigInt),
    col("syscall", Text),
    // Osprey additions.
    col("tid", BigInt),
    col("cgroup_id", BigInt),
    col("mnt_ns", BigInt),
    col("exit_code", BigInt),
    col("exit_signal", BigInt),
    col("duration", BigInt),
    col("ntime", BigInt),
    col("result", BigInt),
    col("fileless", Integer),
    col("partial", Integer),
];

const TIME: usize = column_index(COLUMNS, "time");
const PID: usize = column_index(COLUMNS, "pid");

#[derive(Debug)]
pub struct ProcessEventsTable {
    env: TableEnv,
}

impl ProcessEventsTable {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

pub fn row(e: &ProcessEvent, seq: u64) -> Vec<Value> {
    let null = Value::Null;
    let opt_id = |v: u32| if v == u32::MAX { int(-1) } else { int(v) };
    let f = e.file;
    let (exit_code, exit_signal) = match e.exit_code {
        Some(status) => (int((status >> 8) & 0xff), int(status & 0x7f)),
        None => (null.clone(), null.clone()),
    };
    let duration = match (e.syscall, e.start_ns) {
        (Some(ProcessSyscall::Exit), s) if s > 0 && e.time_ns >= s => uint(e.time_ns - s),
        _ => null.clone(),
    };
    let cmdline = e.cmdline();
    let env = e.env.join(" ");
    let overflows: Vec<&str> = [(e.args_truncated, "cmdline"), (e.env_truncated, "env")]
        .into_iter()
        .filter_map(|(cut, name)| cut.then_some(name))
        .collect();
    vec![
        int(e.pid),
        text(e.path.clone()),
        f.map_or(null.clone(), |f| text(format!("{:07o}", f.mode))),
        text(cmdline.clone()),
        uint(cmdline.len() as u64),
        text(env),
        uint(e.env.len() as u64),
        uint(e.env.iter().map(|v| v.len() + 1).sum::<usize>() as u64),
        text(e.cwd.clone()),
        uint(u64::from(e.auid)),
        opt_id(e.uid),
        opt_id(e.euid),
        opt_id(e.gid),
        opt_id(e.egid),
        f.map_or(null.clone(), |f| int(f.uid)),
        f.map_or(null.clone(), |f| int(f.gid)),
        f.map_or(null.clone(), |f| int(f.atime)),
        f.map_or(null.clone(), |f| int(f.mtime)),
        f.map_or(null.clone(), |f| int(f.ctime)),
        f.map_or(null.clone(), |f| int(f.btime)),
        text(overflows.join(",")),
        int(e.parent),
        uint(e.time_ns / 1_000_000_000),
        uint(e.uptime),
        text(seq.to_string()),
        null.clone(),
        null.clone(),
        null.clone(),
        null.clone(),
        text(e.syscall.map_or("", ProcessSyscall::name)),
        int(e.tid),
        uint(e.cgroup_id),
        int(e.mnt_ns),
        exit_code,
        exit_signal,
        duration,
        uint(e.time_ns),
        int(e.result),
        int(i64::from(e.fileless)),
        int(i64::from(e.partial)),
    ]
}

impl Table for ProcessEventsTable {
    fn name(&self) -> &'static str {
        "process_events"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        time_cost(constrained, TIME)
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        // `pid = N` is checked while decoding, before a row is built.
        let pids: Vec<i64> = ctx
            .equals(PID)
            .into_iter()
            .filter_map(|v| {
                if let Value::Integer(i) = v {
                    Some(*i)
                } else {
                    None
                }
            })
            .collect();
        Ok(scan_rows(
            &self.env,
            "process_events",
            ctx,
            TIME,
            move |seq, v| {
                let e = ProcessEvent::decode(v).map_err(|e| e.to_string())?;
                Ok((pids.is_empty() || pids.contains(&i64::from(e.pid))).then(|| row(&e, seq)))
            },
        ))
    }
}
