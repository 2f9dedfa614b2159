//! `cpu_time`: per CPU, the time spent in each state since boot (`/proc/stat`'s `cpuN` lines,
//! in USER_HZ ticks as the kernel gives them), osquery's columns; `core` is N.

use crate::{
    sql::{
        tables::util::{int, uint},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("core", Integer),
    col("user", BigInt),
    col("nice", BigInt),
    col("system", BigInt),
    col("idle", BigInt),
    col("iowait", BigInt),
    col("irq", BigInt),
    col("softirq", BigInt),
    col("steal", BigInt),
    col("guest", BigInt),
    col("guest_nice", BigInt),
];

#[derive(Debug)]
pub struct CpuTime;

/// (core, ten counters; missing ones 0) of each `cpuN` line of `/proc/stat` text.
pub fn parse(s: &str) -> Vec<(i64, [u64; 10])> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let core: i64 = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            let mut v = [0u64; 10];
            for (slot, x) in v.iter_mut().zip(f) {
                *slot = x.parse().unwrap_or(0);
            }
            Some((core, v))
        })
        .collect()
}

impl Table for CpuTime {
    fn name(&self) -> &'static str {
        "cpu_time"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/proc/stat")).unwrap_or_default();
        Ok(Box::new(parse(&s).into_iter().map(|(core, v)| {
            let mut row = vec![int(core)];
            row.extend(v.iter().map(|n| uint(*n)));
            Ok(row)
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn one_row_per_online_cpu_with_the_kernels_counters() {
        let p = super::parse(
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 9 8 7\nintr 5\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], (0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        assert_eq!(p[1], (1, [9, 8, 7, 0, 0, 0, 0, 0, 0, 0]));
        let online = tool("getconf", &["_NPROCESSORS_ONLN"]).trim().to_owned();
        let got = rows_of("SELECT count(*), min(core), max(core) FROM cpu_time");
        let n: i64 = online.parse().unwrap();
        assert_eq!(got, [vec![online, "0".to_owned(), (n - 1).to_string()]]);
    }
}
