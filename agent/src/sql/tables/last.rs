//! `last`: the login history of `/var/log/wtmp` (`sys::utmp`): logins, logouts, boots and
//! run-level changes as last(1) shows them, osquery's columns (`type` the record type,
//! `type_name` osquery's name of it).

use std::path::Path;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::utmp::{kind_name, records},
};

const COLUMNS: &[Column] = &[
    col("username", Text),
    col("tty", Text),
    col("pid", Integer),
    col("type", Integer),
    col("type_name", Text),
    col("time", Integer),
    col("host", Text),
];

#[derive(Debug)]
pub struct Last;

impl Table for Last {
    fn name(&self) -> &'static str {
        "last"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        // Logins, logouts, boots and shutdowns, as last(1) shows them.
        Ok(Box::new(
            records(Path::new("/var/log/wtmp"))
                .into_iter()
                .filter(|r| matches!(r.kind, 1 | 2 | 7 | 8))
                .map(|r| {
                    Ok(vec![
                        text(r.user),
                        text(r.line),
                        int(r.pid),
                        int(i64::from(r.kind)),
                        text(kind_name(r.kind)),
                        int(r.time),
                        text(r.host),
                    ])
                }),
        ))
    }
}
