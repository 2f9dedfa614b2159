//! `systemd_units`: the units systemd's manager has loaded (`ListUnits` over the system
//! D-Bus at `--dbus_system_bus_address`, `sys::dbus`), as `systemctl list-units --all` lists
//! them, with `unit_file_state`, `fragment_path`, `source_path` and a service's `user` read
//! per unit only when the statement uses them; `WHERE id = '…'` fetches only those units.
//! No bus (no systemd, a container without one): no rows and one warning until it answers
//! again, never an error per query.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use crate::{
    sql::{
        TableEnv,
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::dbus::{self, Unit, Wanted},
};

const COLUMNS: &[Column] = &[
    col("id", Text),
    col("description", Text),
    col("load_state", Text),
    col("active_state", Text),
    col("sub_state", Text),
    col("unit_file_state", Text),
    col("following", Text),
    col("object_path", Text),
    col("job_id", BigInt),
    col("job_type", Text),
    col("job_path", Text),
    col("fragment_path", Text),
    col("user", Text),
    col("source_path", Text),
];

/// How long one listing may take, connection included.
const BUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the last listing failed (so a failure is logged once, and its end once).
static FAILING: AtomicBool = AtomicBool::new(false);

/// The units of the configured bus, or none (logged once per failure streak).
pub fn fetch(env: &TableEnv, wanted: Wanted, keep: &(dyn Fn(&str) -> bool + Sync)) -> Vec<Unit> {
    let flag = env.flags.get("dbus_system_bus_address");
    let address = if flag.is_empty() {
        dbus::default_system_bus()
    } else {
        flag.to_owned()
    };
    match dbus::units(&address, BUS_TIMEOUT, wanted, keep) {
        Ok(units) => {
            if FAILING.swap(false, Ordering::Relaxed) {
                log::info!("systemd: the manager answers again on {address}");
            }
            units
        }
        Err(e) => {
            if !FAILING.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "systemd: {e}; systemd_units and the systemd rows of startup_items are empty until it answers"
                );
            }
            Vec::new()
        }
    }
}

#[derive(Debug)]
pub struct SystemdUnits {
    env: TableEnv,
}

impl SystemdUnits {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for SystemdUnits {
    fn name(&self) -> &'static str {
        "systemd_units"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let ids = ctx.equal_texts(0);
        let wanted = Wanted {
            unit_properties: ctx.uses(5) || ctx.uses(11) || ctx.uses(13),
            user: ctx.uses(12),
        };
        let units = fetch(&self.env, wanted, &|id| {
            ids.is_empty() || ids.iter().any(|w| w == id)
        });
        Ok(Box::new(units.into_iter().map(|u| {
            Ok(vec![
                text(u.id),
                text(u.description),
                text(u.load_state),
                text(u.active_state),
                text(u.sub_state),
                text(u.unit_file_state),
                text(u.following),
                text(u.object_path),
                int(u.job_id),
                text(u.job_type),
                text(u.job_path),
                text(u.fragment_path),
                text(u.user),
                text(u.source_path),
            ])
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::{Engine, TableEnv};

    #[test]
    fn no_bus_is_no_rows_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut flags = crate::flags::Flags::default();
        flags
            .parse_args(
                &[format!(
                    "--dbus_system_bus_address=unix:path={}/none",
                    dir.path().display()
                )],
                crate::flags::Source::CommandLine,
            )
            .unwrap();
        let e = Engine::new(TableEnv::new(None, std::sync::Arc::new(flags))).unwrap();
        for _ in 0..3 {
            assert_eq!(
                e.query("SELECT count(*) FROM systemd_units").unwrap().rows[0][0],
                rusqlite::types::Value::Integer(0)
            );
        }
        assert!(super::FAILING.load(std::sync::atomic::Ordering::Relaxed));
    }
}
