//! `time`: the current time (UTC), as osquery's table.

use crate::sql::{
    tables::util::{int, text},
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("weekday", Text),
    col("year", Integer),
    col("month", Integer),
    col("day", Integer),
    col("hour", Integer),
    col("minutes", Integer),
    col("seconds", Integer),
    col("timezone", Text),
    col("local_timezone", Text),
    col("unix_time", Integer),
    col("timestamp", Text),
    col("datetime", Text),
    col("iso_8601", Text),
];

#[derive(Debug)]
pub struct Time;

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Table for Time {
    fn name(&self) -> &'static str {
        "time"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let now = (crate::sys::now_ns() / 1_000_000_000) as i64;
        let days = now.div_euclid(86_400);
        let secs = now.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        let (h, mi, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        const WEEKDAYS: [&str; 7] = [
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
        ];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
        let iso = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        let row = vec![
            text(weekday),
            int(y),
            int(i64::from(mo)),
            int(i64::from(d)),
            int(h),
            int(mi),
            int(s),
            text("UTC"),
            text("UTC"),
            int(now),
            text(format!(
                "{} {} {d:02} {h:02}:{mi:02}:{s:02} {y} UTC",
                &weekday[..3],
                MONTHS[(mo - 1) as usize]
            )),
            text(iso.clone()),
            text(iso),
        ];
        Ok(Box::new(std::iter::once(Ok(row))))
    }
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }
}
