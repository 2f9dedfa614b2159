//! `load_average`: the system's load averages over 1, 5 and 15 minutes (`/proc/loadavg`), as
//! osquery shows them (`period` `1m`, `5m`, `15m`; `average` as text).

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("period", Text), col("average", Text)];

#[derive(Debug)]
pub struct LoadAverage;

/// The three averages of `/proc/loadavg` text with their periods.
pub fn parse(s: &str) -> Vec<(&'static str, String)> {
    ["1m", "5m", "15m"]
        .into_iter()
        .zip(s.split_whitespace())
        .map(|(p, v)| (p, v.to_owned()))
        .collect()
}

impl Table for LoadAverage {
    fn name(&self) -> &'static str {
        "load_average"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/proc/loadavg")).unwrap_or_default();
        Ok(Box::new(
            parse(&s)
                .into_iter()
                .map(|(p, v)| Ok(vec![text(p), text(v)])),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn three_periods_with_the_kernels_numbers() {
        assert_eq!(
            super::parse("0.52 0.58 0.59 2/345 6789\n"),
            [
                ("1m", "0.52".to_owned()),
                ("5m", "0.58".to_owned()),
                ("15m", "0.59".to_owned())
            ]
        );
        let got = rows_of("SELECT period, average FROM load_average");
        let periods: Vec<&str> = got.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(periods, ["1m", "5m", "15m"]);
        for r in &got {
            assert!(r[1].parse::<f64>().is_ok_and(|v| v >= 0.0), "{r:?}");
        }
    }
}
