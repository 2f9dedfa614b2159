//! `uptime`: time since boot, from CLOCK_BOOTTIME (which, like `/proc/uptime`, includes time
//! spent suspended).

use crate::sql::{
    tables::util::uint,
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("days", Integer),
    col("hours", Integer),
    col("minutes", Integer),
    col("seconds", Integer),
    col("total_seconds", BigInt),
];

#[derive(Debug)]
pub struct Uptime;

/// (days, hours, minutes, seconds) of `total` seconds.
pub fn split(total: u64) -> (u64, u64, u64, u64) {
    (
        total / 86_400,
        (total % 86_400) / 3600,
        (total % 3600) / 60,
        total % 60,
    )
}

impl Table for Uptime {
    fn name(&self) -> &'static str {
        "uptime"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let total = crate::sys::uptime_secs();
        let (d, h, m, s) = split(total);
        // Each part is below 2^63 (days <= total / 86400), so `uint` never saturates here.
        let row = vec![uint(d), uint(h), uint(m), uint(s), uint(total)];
        Ok(Box::new(std::iter::once(Ok(row))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::types::Value;

    use super::*;
    use crate::{
        flags::Flags,
        sql::{Engine, TableEnv},
    };

    #[test]
    fn split_parts() {
        assert_eq!(split(0), (0, 0, 0, 0));
        assert_eq!(split(59), (0, 0, 0, 59));
        assert_eq!(split(90_061), (1, 1, 1, 1));
        assert_eq!(split(86_399), (0, 23, 59, 59));
    }

    #[test]
    fn total_seconds_matches_proc_uptime() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query("SELECT days, hours, minutes, seconds, total_seconds FROM uptime")
            .expect("query");
        let proc_uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .expect("/proc/uptime")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a number");
        assert_eq!(rs.rows.len(), 1);
        let Value::Integer(total) = rs.rows[0][4] else {
            panic!("total_seconds is {:?}", rs.rows[0][4]);
        };
        assert!(
            (total as f64 - proc_uptime).abs() <= 5.0,
            "uptime {total} vs /proc/uptime {proc_uptime}"
        );
        let (d, h, m, s) = split(total as u64);
        assert_eq!(
            rs.rows[0][..4].to_vec(),
            vec![uint(d), uint(h), uint(m), uint(s)]
        );
    }
}
