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
        let (y, mo, d) = crate::sys::civil_from_days(days);
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
    use crate::sys::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }
}
