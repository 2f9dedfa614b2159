//! `crontab`: the jobs of `/etc/crontab`, the files of `/etc/cron.d` and the users' crontabs in
//! `/var/spool/cron/crontabs`, line-parsed as osquery does: `@event command`, or five time
//! fields and the command (in the system files the command starts with the user, as written);
//! comments, blank lines and variable settings (`NAME=value`) are skipped.

use std::path::{Path, PathBuf};

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("event", Text),
    col("minute", Text),
    col("hour", Text),
    col("day_of_month", Text),
    col("month", Text),
    col("day_of_week", Text),
    col("command", Text),
    col("path", Text),
];

#[derive(Debug)]
pub struct Crontab;

/// (event, minute, hour, day of month, month, day of week, command) of each job line.
pub fn parse(s: &str) -> Vec<[String; 7]> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let first = l.split_whitespace().next()?;
            if first.contains('=') {
                return None;
            }
            if first.starts_with('@') {
                let command = l[first.len()..].trim().to_owned();
                return Some([
                    first.to_owned(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    command,
                ]);
            }
            let mut rest = l;
            let mut fields = Vec::with_capacity(5);
            for _ in 0..5 {
                rest = rest.trim_start();
                let end = rest.find(char::is_whitespace)?;
                fields.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
            let command = rest.trim().to_owned();
            (!command.is_empty()).then(|| {
                [
                    String::new(),
                    fields[0].clone(),
                    fields[1].clone(),
                    fields[2].clone(),
                    fields[3].clone(),
                    fields[4].clone(),
                    command,
                ]
            })
        })
        .collect()
}

fn files() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/etc/crontab")];
    for dir in ["/etc/cron.d", "/var/spool/cron/crontabs"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                // cron ignores names with a dot (backups, dpkg leftovers) in these folders.
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.contains('.'))
                })
                .collect();
            v.sort();
            out.extend(v);
        }
    }
    out
}

impl Table for Crontab {
    fn name(&self) -> &'static str {
        "crontab"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let mut rows = Vec::new();
        for f in files() {
            let Some(s) = read_text(Path::new(&f)) else {
                continue;
            };
            for job in parse(&s) {
                let mut row: Vec<_> = job.into_iter().map(text).collect();
                row.push(text(f.display().to_string()));
                rows.push(Ok(row));
            }
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_events_and_settings_parse_as_osquery_reads_them() {
        let got = super::parse(
            "SHELL=/bin/sh\n# m h dom mon dow user command\n17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n@reboot /usr/bin/start me\n30 3 * * 0 root test -e /run/x && /sbin/y\nbroken 1\n",
        );
        let j = |v: [&str; 7]| v.map(str::to_owned);
        assert_eq!(
            got,
            [
                j([
                    "",
                    "17",
                    "*",
                    "*",
                    "*",
                    "*",
                    "root    cd / && run-parts --report /etc/cron.hourly"
                ]),
                j(["@reboot", "", "", "", "", "", "/usr/bin/start me"]),
                j([
                    "",
                    "30",
                    "3",
                    "*",
                    "*",
                    "0",
                    "root test -e /run/x && /sbin/y"
                ]),
            ]
        );
    }
}
