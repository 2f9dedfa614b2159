//! `event_drops`: every loss, counted where it happened. One row per (publisher, event type,
//! reason, CPU) with its total since the database was created (`window_start` = 0 marks a
//! total), plus one row per second in which a counter moved. Join the per-second rows with
//! a time range to tell whether that range is complete:
//!
//! ```sql
//! SELECT sum(count) FROM event_drops WHERE window_start > 0 AND window_end >= 1700000000 AND window_start <= 1700000600;
//! ```

use crate::{
    sql::{
        TableEnv,
        tables::util::{int, secs_to_ns_range, text, uint},
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
    },
    stats::{DropWindow, Snapshot},
    storage::CF_DROPS,
};

const COLUMNS: &[Column] = &[
    col("publisher", Text),
    col("event_type", Text),
    col("reason", Text),
    col("cpu", Integer),
    col("count", BigInt),
    col("window_start", BigInt),
    col("window_end", BigInt),
];
const WINDOW_END: usize = 6;

#[derive(Debug)]
pub struct EventDrops {
    env: TableEnv,
}

impl EventDrops {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for EventDrops {
    fn name(&self) -> &'static str {
        "event_drops"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        if constrained.iter().any(|(c, _)| *c == WINDOW_END) {
            100.0
        } else {
            10_000.0
        }
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let Some(store) = &self.env.store else {
            return Ok(Box::new(std::iter::empty()));
        };
        let mut rows = Vec::new();
        let snap = Snapshot::load(store)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        for d in &snap.drops {
            rows.push(Ok(vec![
                text(d.publisher.clone()),
                text(d.event_type.clone()),
                text(d.reason.clone()),
                int(d.cpu),
                uint(d.count),
                int(0),
                uint(snap.updated_ns / 1_000_000_000),
            ]));
        }
        let (lo, hi) = ctx.int_range(WINDOW_END);
        let (from, to) = secs_to_ns_range(lo, hi);
        store
            .scan(CF_DROPS, from, to, |_, _, v| {
                if let Ok(w) = DropWindow::decode(v) {
                    rows.push(Ok(vec![
                        text(w.publisher),
                        text(w.event_type),
                        text(w.reason),
                        int(-1),
                        uint(w.count),
                        uint(w.start_ns / 1_000_000_000),
                        uint(w.end_ns.div_ceil(1_000_000_000)),
                    ]));
                }
                true
            })
            .map_err(|e| e.to_string())?;
        Ok(Box::new(rows.into_iter()))
    }
}
