//! `osquery_extensions`: the extension manager itself (`core`, uuid 0, on
//! `--extensions_socket`) and every extension registered with it, in osquery's columns.
//! Empty when the manager is off (`--disable_extensions`).

use crate::sql::{
    OSQUERY_COMPAT, TableEnv,
    tables::util::{int, text},
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("uuid", BigInt),
    col("name", Text),
    col("version", Text),
    col("sdk_version", Text),
    col("path", Text),
    col("type", Text),
];

#[derive(Debug)]
pub struct OsqueryExtensions {
    env: TableEnv,
}

impl OsqueryExtensions {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsqueryExtensions {
    fn name(&self) -> &'static str {
        "osquery_extensions"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let Some(d) = &self.env.dynamic else {
            return Ok(Box::new(std::iter::empty()));
        };
        let mut rows = vec![Ok(vec![
            int(0),
            text("core"),
            text(OSQUERY_COMPAT),
            text("0.0.0"),
            text(self.env.flags.get("extensions_socket")),
            text("core"),
        ])];
        for e in d.extensions() {
            rows.push(Ok(vec![
                int(e.uuid),
                text(e.name),
                text(e.version),
                text(e.sdk_version),
                text(e.path),
                text("extension"),
            ]));
        }
        Ok(Box::new(rows.into_iter()))
    }
}
