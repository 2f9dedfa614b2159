//! `etc_services`: `/etc/services`, a row per service: name, port, protocol, aliases
//! (space-separated), the line's comment.

use crate::{
    sql::{
        tables::util::{etc_fields, int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("port", Integer),
    col("protocol", Text),
    col("aliases", Text),
    col("comment", Text),
];

#[derive(Debug)]
pub struct EtcServices;

/// (name, port, protocol, aliases, comment) of each line of a services file; a line whose
/// second field is not `port/protocol` is skipped.
pub fn parse(s: &str) -> Vec<(String, i64, String, String, String)> {
    s.lines()
        .filter_map(etc_fields)
        .filter_map(|(f, c)| {
            let (port, proto) = f.get(1)?.split_once('/')?;
            Some((
                f[0].to_owned(),
                port.parse().ok()?,
                proto.to_owned(),
                f[2..].join(" "),
                c.unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

impl Table for EtcServices {
    fn name(&self) -> &'static str {
        "etc_services"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/etc/services")).unwrap_or_default();
        Ok(Box::new(parse(&s).into_iter().map(|(n, p, pr, a, c)| {
            Ok(vec![text(n), int(p), text(pr), text(a), text(c)])
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn lines_parse_and_the_table_matches_getent() {
        assert_eq!(
            super::parse(
                "# x\nssh 22/tcp # SSH Remote Login Protocol\nhttp 80/tcp www # WorldWideWeb\nbroken 80\n"
            ),
            [
                (
                    "ssh".into(),
                    22,
                    "tcp".into(),
                    String::new(),
                    "SSH Remote Login Protocol".into()
                ),
                (
                    "http".into(),
                    80,
                    "tcp".into(),
                    "www".into(),
                    "WorldWideWeb".into()
                ),
            ]
        );
        // getent: "name port/protocol aliases..." per service.
        let want: Vec<Vec<String>> = tool("getent", &["services"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (port, proto) = f.get(1)?.split_once('/')?;
                Some(vec![
                    f[0].to_owned(),
                    port.to_owned(),
                    proto.to_owned(),
                    f[2..].join(" "),
                ])
            })
            .collect();
        let got = rows_of("SELECT name, port, protocol, aliases FROM etc_services");
        assert!(got.len() > 100, "{}", got.len());
        assert_eq!(got, want);
    }
}
