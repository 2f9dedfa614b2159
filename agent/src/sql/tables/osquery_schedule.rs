//! `osquery_schedule` and `osquery_packs`: the scheduler's statistics, as the daemon last
//! persisted them (`stats::ScheduleStats`). Times are milliseconds (wall) and milliseconds of
//! CPU (user, system), memory is the daemon's resident bytes after the run.

use crate::{
    sql::{
        TableEnv,
        tables::util::{int, text, uint},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    stats::ScheduleStats,
};

const SCHEDULE: &[Column] = &[
    col("name", Text),
    col("query", Text),
    col("interval", Integer),
    col("executions", BigInt),
    col("last_executed", BigInt),
    col("denylisted", Integer),
    col("output_size", BigInt),
    col("wall_time", BigInt),
    col("wall_time_ms", BigInt),
    col("last_wall_time_ms", BigInt),
    col("user_time", BigInt),
    col("last_user_time", BigInt),
    col("system_time", BigInt),
    col("last_system_time", BigInt),
    col("average_memory", BigInt),
    col("last_memory", BigInt),
];

const PACKS: &[Column] = &[
    col("name", Text),
    col("platform", Text),
    col("version", Text),
    col("shard", Integer),
    col("discovery_cache_hits", Integer),
    col("discovery_executions", Integer),
    col("active", Integer),
];

fn stats(env: &TableEnv) -> ScheduleStats {
    env.store
        .as_deref()
        .and_then(ScheduleStats::load)
        .unwrap_or_default()
}

#[derive(Debug)]
pub struct OsquerySchedule {
    env: TableEnv,
}

impl OsquerySchedule {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsquerySchedule {
    fn name(&self) -> &'static str {
        "osquery_schedule"
    }
    fn columns(&self) -> &'static [Column] {
        SCHEDULE
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let rows: Vec<_> = stats(&self.env)
            .queries
            .into_iter()
            .map(|q| {
                Ok(vec![
                    text(q.name),
                    text(q.query),
                    uint(q.interval),
                    uint(q.executions),
                    uint(q.last_executed),
                    int(i64::from(q.denylisted)),
                    uint(q.output_size),
                    // osquery's `wall_time` is seconds.
                    uint(q.wall_time_ms / 1000),
                    uint(q.wall_time_ms),
                    uint(q.last_wall_time_ms),
                    uint(q.user_time),
                    uint(q.last_user_time),
                    uint(q.system_time),
                    uint(q.last_system_time),
                    uint(q.average_memory),
                    uint(q.last_memory),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[derive(Debug)]
pub struct OsqueryPacks {
    env: TableEnv,
}

impl OsqueryPacks {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsqueryPacks {
    fn name(&self) -> &'static str {
        "osquery_packs"
    }
    fn columns(&self) -> &'static [Column] {
        PACKS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let rows: Vec<_> = stats(&self.env)
            .packs
            .into_iter()
            .map(|p| {
                Ok(vec![
                    text(p.name),
                    text(p.platform),
                    text(p.version),
                    uint(p.shard),
                    uint(p.discovery_cache_hits),
                    uint(p.discovery_executions),
                    int(i64::from(p.active)),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}
