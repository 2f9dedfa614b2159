//! `osquery_events`: every publisher and subscriber with its counts, from the daemon's last
//! persisted snapshot. Osprey adds `dropped` (everything counted as lost for that row).

use crate::{
    sql::{
        TableEnv,
        tables::util::{int, text, uint},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    stats::Snapshot,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("publisher", Text),
    col("type", Text),
    col("subscriptions", Integer),
    col("events", Integer),
    col("refreshes", Integer),
    col("active", Integer),
    col("dropped", BigInt),
    col("hook", Text),
];

#[derive(Debug)]
pub struct OsqueryEvents {
    env: TableEnv,
}

impl OsqueryEvents {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsqueryEvents {
    fn name(&self) -> &'static str {
        "osquery_events"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let Some(store) = &self.env.store else {
            return Ok(Box::new(std::iter::empty()));
        };
        let snap = Snapshot::load(store)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        // A crashed daemon's last snapshot says `running`: ask whether it still is.
        let live = snap.is_live(crate::sys::now_ns());
        let mut rows = Vec::new();
        for p in &snap.publishers {
            let subs = snap
                .subscribers
                .iter()
                .filter(|s| s.publisher == p.name)
                .count();
            let dropped: u64 = snap
                .drops
                .iter()
                .filter(|d| d.publisher == p.name && d.reason != "expired")
                .map(|d| d.count)
                .sum();
            rows.push(Ok(vec![
                text(p.name.clone()),
                text(p.name.clone()),
                text("publisher"),
                int(subs as i64),
                uint(p.events),
                int(0),
                int(i64::from(p.active && live)),
                uint(dropped),
                text(p.hook.clone()),
            ]));
        }
        for s in &snap.subscribers {
            let dropped: u64 = snap
                .drops
                .iter()
                .filter(|d| d.publisher == s.name && d.reason != "expired")
                .map(|d| d.count)
                .sum();
            rows.push(Ok(vec![
                text(s.name.clone()),
                text(s.publisher.clone()),
                text("subscriber"),
                int(1),
                uint(s.events),
                int(0),
                int(i64::from(live)),
                uint(dropped),
                text(""),
            ]));
        }
        Ok(Box::new(rows.into_iter()))
    }
}
