//! `osquery_info`: about the running agent. With a daemon, `pid` and `start_time` are the
//! daemon's (from its persisted snapshot); otherwise they describe this process.

use crate::{
    sql::{
        TableEnv,
        tables::util::{int, text, uint},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    stats::Snapshot,
};

const COLUMNS: &[Column] = &[
    col("pid", Integer),
    col("uuid", Text),
    col("instance_id", Text),
    col("version", Text),
    col("config_hash", Text),
    col("config_valid", Integer),
    col("extensions", Text),
    col("build_platform", Text),
    col("build_distro", Text),
    col("start_time", Integer),
    col("watcher", Integer),
    col("platform_mask", Integer),
    col("osprey_version", Text),
];

#[derive(Debug)]
pub struct OsqueryInfo {
    env: TableEnv,
}

impl OsqueryInfo {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsqueryInfo {
    fn name(&self) -> &'static str {
        "osquery_info"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let snap = match &self.env.store {
            Some(s) => Snapshot::load(s).map_err(|e| e.to_string())?,
            None => None,
        };
        let (pid, start) = match &snap {
            Some(s) if s.running => (i64::from(s.pid), s.started_ns / 1_000_000_000),
            _ => (
                i64::from(std::process::id()),
                crate::sys::now_ns() / 1_000_000_000,
            ),
        };
        // The config in force in the daemon (its sha1, and whether the last load worked).
        let (hash, valid) = self
            .env
            .store
            .as_deref()
            .and_then(crate::flags::persist::DaemonFlags::load)
            .map_or((String::new(), 1), |p| {
                (p.config_hash, i64::from(p.config_error.is_none()))
            });
        let uuid = std::fs::read_to_string("/sys/class/dmi/id/product_uuid")
            .or_else(|_| std::fs::read_to_string("/etc/machine-id"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let row = vec![
            int(pid),
            text(uuid),
            text(""),
            text(crate::sql::OSQUERY_COMPAT),
            text(hash),
            int(valid),
            text("active"),
            text(std::env::consts::OS),
            text(std::env::consts::ARCH),
            uint(start),
            int(-1),
            // osquery's mask: 9 = posix | linux.
            int(9),
            text(env!("CARGO_PKG_VERSION")),
        ];
        Ok(Box::new(std::iter::once(Ok(row))))
    }
}
