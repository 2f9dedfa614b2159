//! `etc_protocols`: `/etc/protocols`, a row per protocol: name, number, its alias, the
//! line's comment.

use crate::{
    sql::{
        tables::util::{etc_fields, int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("number", Integer),
    col("alias", Text),
    col("comment", Text),
];

#[derive(Debug)]
pub struct EtcProtocols;

/// (name, number, alias, comment) of each line of a protocols file.
pub fn parse(s: &str) -> Vec<(String, i64, String, String)> {
    s.lines()
        .filter_map(etc_fields)
        .filter_map(|(f, c)| {
            Some((
                f[0].to_owned(),
                f.get(1)?.parse().ok()?,
                f[2..].join(" "),
                c.unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

impl Table for EtcProtocols {
    fn name(&self) -> &'static str {
        "etc_protocols"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/etc/protocols")).unwrap_or_default();
        Ok(Box::new(parse(&s).into_iter().map(|(n, num, a, c)| {
            Ok(vec![text(n), int(num), text(a), text(c)])
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn lines_parse_and_the_table_matches_getent() {
        assert_eq!(
            super::parse("ip\t0\tIP\t\t# internet protocol, pseudo protocol number\nx y\n"),
            [(
                "ip".into(),
                0,
                "IP".into(),
                "internet protocol, pseudo protocol number".into()
            )]
        );
        let want: Vec<Vec<String>> = tool("getent", &["protocols"])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                vec![f[0].to_owned(), f[1].to_owned(), f[2..].join(" ")]
            })
            .collect();
        let got = rows_of("SELECT name, number, alias FROM etc_protocols");
        assert!(got.len() > 50, "{}", got.len());
        assert_eq!(got, want);
    }
}
