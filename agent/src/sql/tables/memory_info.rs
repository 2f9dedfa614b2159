//! `memory_info`: main memory in bytes from `/proc/meminfo` (its kB are KiB), osquery's
//! columns; a field the kernel does not report is NULL.

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::uint,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

/// Column and the meminfo field it comes from.
const FIELDS: &[(&str, &str)] = &[
    ("memory_total", "MemTotal"),
    ("memory_free", "MemFree"),
    ("memory_available", "MemAvailable"),
    ("buffers", "Buffers"),
    ("cached", "Cached"),
    ("swap_cached", "SwapCached"),
    ("active", "Active"),
    ("inactive", "Inactive"),
    ("swap_total", "SwapTotal"),
    ("swap_free", "SwapFree"),
];

const COLUMNS: &[Column] = &[
    col("memory_total", BigInt),
    col("memory_free", BigInt),
    col("memory_available", BigInt),
    col("buffers", BigInt),
    col("cached", BigInt),
    col("swap_cached", BigInt),
    col("active", BigInt),
    col("inactive", BigInt),
    col("swap_total", BigInt),
    col("swap_free", BigInt),
];

#[derive(Debug)]
pub struct MemoryInfo;

/// The row of `/proc/meminfo` text: each field of [`FIELDS`] in bytes, or NULL.
pub fn row(s: &str) -> Vec<Value> {
    FIELDS
        .iter()
        .map(|(_, field)| {
            s.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == *field).then_some(v)
                })
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(Value::Null, |kib| uint(kib.saturating_mul(1024)))
        })
        .collect()
}

impl Table for MemoryInfo {
    fn name(&self) -> &'static str {
        "memory_info"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/proc/meminfo")).unwrap_or_default();
        Ok(Box::new(std::iter::once(Ok(row(&s)))))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn bytes_from_meminfo_and_the_total_is_what_free_says() {
        let r = super::row("MemTotal:  2048 kB\nMemFree: 1024 kB\nSwapTotal: 0 kB\n");
        assert_eq!(r[0], rusqlite::types::Value::Integer(2048 * 1024));
        assert_eq!(r[1], rusqlite::types::Value::Integer(1024 * 1024));
        assert_eq!(r[2], rusqlite::types::Value::Null);
        assert_eq!(r[8], rusqlite::types::Value::Integer(0));
        // free -b: "Mem:  total used free shared buff/cache available" and "Swap: total ...".
        let free = tool("free", &["-b"]);
        let field = |prefix: &str| -> String {
            free.lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_owned()
        };
        let got = rows_of("SELECT memory_total, swap_total FROM memory_info");
        assert_eq!(got, [vec![field("Mem:"), field("Swap:")]]);
    }
}
