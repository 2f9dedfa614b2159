//! `file_events`: osquery's columns plus the exact operation, the syscall and its result, and
//! the acting process.

use rusqlite::types::Value;

use crate::{
    events::FileEvent,
    sql::{
        TableEnv,
        tables::event_scan::{column_index, scan_rows, time_cost},
        tables::util::{int, text, uint},
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col, hidden},
    },
};

pub const COLUMNS: &[Column] = &[
    col("target_path", Text),
    col("category", Text),
    col("action", Text),
    col("transaction_id", BigInt),
    col("inode", BigInt),
    col("uid", BigInt),
    col("gid", BigInt),
    col("mode", Text),
    col("size", BigInt),
    col("atime", BigInt),
    col("mtime", BigInt),
    col("ctime", BigInt),
    col("md5", Text),
    col("sha1", Text),
    col("sha256", Text),
    col("hashed", Integer),
    col("time", BigInt),
    hidden("eid", Text),
    // Osprey additions.
    col("operation", Text),
    col("other_path", Text),
    col("syscall", Text),
    col("result", BigInt),
    col("success", Integer),
    col("pid", BigInt),
    col("tid", BigInt),
    col("process_uid", BigInt),
    col("process_gid", BigInt),
    col("fd", BigInt),
    col("flags", BigInt),
    col("arg_mode", Text),
    col("arg_uid", BigInt),
    col("arg_gid", BigInt),
    col("uptime", BigInt),
    col("ntime", BigInt),
    col("enriched", Integer),
    col("user_path", Integer),
];

const TIME: usize = column_index(COLUMNS, "time");

#[derive(Debug)]
pub struct FileEventsTable {
    env: TableEnv,
}

impl FileEventsTable {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

pub fn row(e: &FileEvent, seq: u64) -> Vec<Value> {
    let null = Value::Null;
    let f = e.file;
    let opt = |v: u32| if v == u32::MAX { Value::Null } else { int(v) };
    vec![
        text(e.target_path.clone()),
        text(e.category.clone()),
        text(e.action.clone()),
        uint(e.transaction_id),
        uint(e.inode),
        f.map_or(null.clone(), |f| int(f.uid)),
        f.map_or(null.clone(), |f| int(f.gid)),
        f.map_or(null.clone(), |f| text(format!("{:04o}", f.mode & 0o7777))),
        f.map_or(null.clone(), |f| uint(f.size)),
        f.map_or(null.clone(), |f| int(f.atime)),
        f.map_or(null.clone(), |f| int(f.mtime)),
        f.map_or(null.clone(), |f| int(f.ctime)),
        text(e.md5.clone()),
        text(e.sha1.clone()),
        text(e.sha256.clone()),
        int(i64::from(e.hashed)),
        uint(e.time_ns / 1_000_000_000),
        text(seq.to_string()),
        text(e.operation.clone()),
        text(e.other_path.clone()),
        text(e.syscall.clone()),
        int(e.result),
        int(i64::from(e.success())),
        int(e.pid),
        int(e.tid),
        // Unknown (the fallback source, for a process gone before it was read): NULL.
        opt(e.process_uid),
        opt(e.process_gid),
        int(e.fd),
        int(e.flags),
        if e.arg_mode == u32::MAX {
            null.clone()
        } else {
            text(format!("{:04o}", e.arg_mode & 0o7777))
        },
        opt(e.arg_uid),
        opt(e.arg_gid),
        uint(e.uptime),
        uint(e.time_ns),
        int(i64::from(!e.enrichment_missing)),
        int(i64::from(e.user_path)),
    ]
}

impl Table for FileEventsTable {
    fn name(&self) -> &'static str {
        "file_events"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        time_cost(constrained, TIME)
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        Ok(scan_rows(&self.env, "file_events", ctx, TIME, |seq, v| {
            FileEvent::decode(v)
                .map(|e| Some(row(&e, seq)))
                .map_err(|e| e.to_string())
        }))
    }
}
