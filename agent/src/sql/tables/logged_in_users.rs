//! `logged_in_users`: the sessions `/var/run/utmp` lists (`sys::utmp`), osquery's columns;
//! `type` is osquery's name of the record type (`user` for a login session, `login`, `init`,
//! `boottime`, …).

use std::path::Path;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::utmp::{kind_name, records},
};

const COLUMNS: &[Column] = &[
    col("type", Text),
    col("user", Text),
    col("tty", Text),
    col("host", Text),
    col("time", BigInt),
    col("pid", Integer),
];

#[derive(Debug)]
pub struct LoggedInUsers;

impl Table for LoggedInUsers {
    fn name(&self) -> &'static str {
        "logged_in_users"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(
            records(Path::new("/var/run/utmp"))
                .into_iter()
                .filter(|r| r.kind != 0)
                .map(|r| {
                    Ok(vec![
                        text(kind_name(r.kind)),
                        text(r.user),
                        text(r.line),
                        text(r.host),
                        int(r.time),
                        int(r.pid),
                    ])
                }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn sessions_are_what_who_lists() {
        // who lists the user sessions of utmp, one line each.
        let who = tool("who", &[]);
        let mut want: Vec<Vec<String>> = who
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                vec![f[0].to_owned(), f[1].to_owned()]
            })
            .collect();
        want.sort();
        assert_eq!(
            rows_of("SELECT user, tty FROM logged_in_users WHERE type = 'user' ORDER BY user, tty"),
            want
        );
        // last reads wtmp: an empty one has no rows here either.
        let wtmp = std::fs::read("/var/log/wtmp").map_or(0, |b| b.len() / 384);
        let got = rows_of("SELECT count(*) FROM last");
        assert!(got[0][0].parse::<usize>().unwrap() <= wtmp);
    }
}
