//! `socket_events`: osquery's columns (Linux `status` included) plus the exact result, the
//! thread, the uid and the socket type.

use rusqlite::types::Value;

use crate::{
    events::SocketEvent,
    sql::{
        TableEnv,
        tables::event_scan::{column_index, scan_rows, time_cost},
        tables::util::{int, text, uint},
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col, hidden},
    },
};

pub const COLUMNS: &[Column] = &[
    col("action", Text),
    col("pid", BigInt),
    col("path", Text),
    col("fd", Text),
    col("auid", BigInt),
    col("family", Integer),
    hidden("protocol", Integer),
    col("local_address", Text),
    col("remote_address", Text),
    col("local_port", Integer),
    col("remote_port", Integer),
    hidden("socket", Text),
    col("time", BigInt),
    col("uptime", BigInt),
    hidden("eid", Text),
    hidden("success", Integer),
    col("status", Text),
    // Osprey additions.
    col("result", BigInt),
    col("syscall", Text),
    col("tid", BigInt),
    col("uid", BigInt),
    col("type", Integer),
    col("ntime", BigInt),
    col("user_address", Integer),
];

const TIME: usize = column_index(COLUMNS, "time");

#[derive(Debug)]
pub struct SocketEventsTable {
    env: TableEnv,
}

impl SocketEventsTable {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

pub fn row(e: &SocketEvent, seq: u64) -> Vec<Value> {
    vec![
        text(e.action.clone()),
        int(e.pid),
        text(e.path.clone()),
        text(e.fd.to_string()),
        // The audit login uid is not captured for sockets yet.
        int(-1),
        int(i64::from(e.family)),
        int(i64::from(e.protocol)),
        text(e.local_address.clone()),
        text(e.remote_address.clone()),
        int(i64::from(e.local_port)),
        int(i64::from(e.remote_port)),
        text(e.socket.clone()),
        uint(e.time_ns / 1_000_000_000),
        uint(e.uptime),
        text(seq.to_string()),
        int(i64::from(e.result >= 0)),
        text(e.status()),
        int(e.result),
        text(e.syscall.clone()),
        int(e.tid),
        int(e.uid),
        int(i64::from(e.sock_type)),
        uint(e.time_ns),
        int(i64::from(e.user_address)),
    ]
}

impl Table for SocketEventsTable {
    fn name(&self) -> &'static str {
        "socket_events"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        time_cost(constrained, TIME)
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        Ok(scan_rows(
            &self.env,
            "socket_events",
            ctx,
            TIME,
            |seq, v| {
                SocketEvent::decode(v)
                    .map(|e| Some(row(&e, seq)))
                    .map_err(|e| e.to_string())
            },
        ))
    }
}
