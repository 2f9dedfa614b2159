//! `osquery_flags`: every flag in the registry with its effective value, then osquery's
//! deprecated names (aliases) with the value they read as. Osprey adds `source` (where the
//! value came from); the `enable_file_events` description ends with the FIM status line.

use crate::{
    flags::persist,
    sql::{
        TableEnv,
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("type", Text),
    col("description", Text),
    col("default_value", Text),
    col("value", Text),
    col("shell_only", Integer),
    col("source", Text),
];

#[derive(Debug)]
pub struct OsqueryFlags {
    env: TableEnv,
}

impl OsqueryFlags {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsqueryFlags {
    fn name(&self) -> &'static str {
        "osquery_flags"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        // With a daemon running on this database, its effective flags (config options
        // included) rather than this process's; alias rows and the FIM status line come from
        // the flag registry (flags::persist).
        let (flags, fim_status) = (self.env.flags_view)(self.env.store.as_deref(), &self.env.flags);
        let rows: Vec<_> = persist::rows(&flags, &fim_status)
            .into_iter()
            .map(|r| {
                Ok(vec![
                    text(r.name),
                    text(r.ty),
                    text(r.description),
                    text(r.default_value),
                    text(r.value),
                    int(i64::from(r.shell_only)),
                    text(r.source),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}
