//! Every table, one file each. Adding a table = a file here + a line in [`all`] (and an
//! updated `schema.expected`, see [`schema`]).

// Architecture invariant: no table contains `unsafe`; SQL's unsafe code is in `sql/vtab.rs`.
#![forbid(unsafe_code)]

mod event_drops;
pub mod event_scan;
mod file_events;
mod groups;
mod host;
pub use host::read_link;
mod kernel_info;
mod mounts;
mod os_version;
mod osquery_events;
mod osquery_flags;
mod osquery_info;
mod process_events;
pub mod processes;
pub mod schema;
mod socket_events;
mod system_info;
mod time;
mod uptime;
mod users;

use std::sync::Arc;

pub use process_events::ProcessEventsTable;

use super::{Sources, vtab::Table};

pub fn all(sources: &Sources) -> Vec<Arc<dyn Table>> {
    vec![
        Arc::new(ProcessEventsTable::new(sources.clone())),
        Arc::new(file_events::FileEventsTable::new(sources.clone())),
        Arc::new(socket_events::SocketEventsTable::new(sources.clone())),
        Arc::new(osquery_events::OsqueryEvents::new(sources.clone())),
        Arc::new(event_drops::EventDrops::new(sources.clone())),
        Arc::new(osquery_flags::OsqueryFlags::new(sources.clone())),
        Arc::new(osquery_info::OsqueryInfo::new(sources.clone())),
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
pub(crate) mod util {
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
