//! `osquery_flags`: every flag in the registry with its effective value. Osprey adds
//! `source` (where the value came from).

use crate::{
    flags::FLAGS,
    sql::{
        Sources,
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
    sources: Sources,
}

impl OsqueryFlags {
    pub fn new(sources: Sources) -> Self {
        Self { sources }
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
        let flags = self.sources.flags.clone();
        let rows: Vec<_> = FLAGS
            .iter()
            .map(|d| {
                Ok(vec![
                    text(d.name),
                    text(d.ty.name()),
                    text(d.description),
                    text(d.default),
                    text(flags.get(d.name)),
                    int(i64::from(d.shell_only)),
                    text(flags.source(d.name).to_string()),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}
