//! Every table, one file each. Adding a table = a file here + a line in [`all`] (and an
//! updated `schema.expected`, see [`schema`]).

// Architecture invariant: no table contains `unsafe`; SQL's unsafe code is in `sql/vtab.rs`.
#![forbid(unsafe_code)]

mod event_drops;
pub mod event_scan;
mod groups;
mod kernel_info;
mod mounts;
mod ns;
mod os_version;
mod osquery_events;
mod osquery_flags;
mod osquery_info;
pub mod processes;
pub mod schema;
mod system_info;
mod time;
mod uptime;
mod users;

use std::sync::Arc;

use super::{TableEnv, vtab::Table};

/// The tables `sql` owns (live state and the agent's own); the event tables come from
/// [`TableEnv::providers`].
pub fn all(env: &TableEnv) -> Vec<Arc<dyn Table>> {
    vec![
        Arc::new(osquery_events::OsqueryEvents::new(env.clone())),
        Arc::new(event_drops::EventDrops::new(env.clone())),
        Arc::new(osquery_flags::OsqueryFlags::new(env.clone())),
        Arc::new(osquery_info::OsqueryInfo::new(env.clone())),
        Arc::new(time::Time),
        Arc::new(processes::Processes::new()),
        Arc::new(os_version::OsVersion),
        Arc::new(kernel_info::KernelInfo),
        Arc::new(system_info::SystemInfo),
        Arc::new(uptime::Uptime),
        Arc::new(users::Users),
        Arc::new(groups::Groups),
        Arc::new(mounts::Mounts),
    ]
}

/// Helpers shared by the tables.
pub mod util {
    use rusqlite::types::Value;

    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn int(i: impl Into<i64>) -> Value {
        Value::Integer(i.into())
    }

    pub fn uint(u: u64) -> Value {
        Value::Integer(i64::try_from(u).unwrap_or(i64::MAX))
    }

    /// Seconds -> ns range bounds, saturating.
    pub fn secs_to_ns_range(lo: i64, hi: i64) -> (u64, u64) {
        let lo_ns = if lo <= 0 {
            0
        } else {
            (lo as u64).saturating_mul(1_000_000_000)
        };
        let hi_ns = if hi < 0 {
            0
        } else {
            (hi as u64)
                .saturating_add(1)
                .saturating_mul(1_000_000_000)
                .saturating_sub(1)
        };
        (lo_ns, hi_ns)
    }
}
