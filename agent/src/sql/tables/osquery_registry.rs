//! `osquery_registry`: the plugins of each registry, as osquery lists them. Fleet's discovery
//! queries ask it whether a table exists (`registry = 'table' AND name = '…' AND active`).
//! Registries: `table` (every table of this engine), `config`, `logger` and `distributed`
//! (active: the ones the daemon's effective flags use), then the plugins osquery extensions
//! registered (owner_uuid: the extension's id).

use crate::sql::{
    TableEnv,
    tables::util::{int, text},
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("registry", Text),
    col("name", Text),
    col("owner_uuid", Integer),
    col("internal", Integer),
    col("active", Integer),
];

/// The config, logger and distributed plugins this build has.
const CONFIG: &[&str] = &["filesystem", "tls"];
const LOGGER: &[&str] = &["filesystem", "stdout", "syslog", "kafka_producer", "tls"];
const DISTRIBUTED: &[&str] = &["tls"];

#[derive(Debug)]
pub struct OsqueryRegistry {
    env: TableEnv,
}

impl OsqueryRegistry {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for OsqueryRegistry {
    fn name(&self) -> &'static str {
        "osquery_registry"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let (flags, _) = (self.env.flags_view)(self.env.store.as_deref(), &self.env.flags);
        let mut names: Vec<&'static str> = super::all(&self.env)
            .iter()
            .map(|t| t.name())
            .chain(
                self.env
                    .providers
                    .iter()
                    .map(|p| p.make_table(&self.env).name()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut rows = Vec::new();
        let mut push = |registry: &str, name: &str, active: bool| {
            rows.push(Ok(vec![
                text(registry),
                text(name),
                int(0),
                int(0),
                int(i64::from(active)),
            ]));
        };
        for n in names {
            push("table", n, true);
        }
        for c in CONFIG {
            push("config", c, flags.get("config_plugin") == *c);
        }
        for l in LOGGER {
            let on = flags
                .get("logger_plugin")
                .split(',')
                .any(|p| p.trim() == *l);
            push("logger", l, on);
        }
        for d in DISTRIBUTED {
            let on = !flags.bool("disable_distributed") && flags.get("distributed_plugin") == *d;
            push("distributed", d, on);
        }
        // Extensions' plugins: owned by their extension, not internal, active.
        for (registry, name, uuid) in self.env.dynamic.iter().flat_map(|d| d.plugins()) {
            rows.push(Ok(vec![
                text(&registry),
                text(&name),
                int(uuid),
                int(0),
                int(1),
            ]));
        }
        Ok(Box::new(rows.into_iter()))
    }
}
