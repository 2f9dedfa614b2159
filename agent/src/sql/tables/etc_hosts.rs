//! `etc_hosts`: `/etc/hosts`, a row per line: the address and its names (space-separated).

use crate::{
    sql::{
        tables::util::{etc_fields, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("address", Text), col("hostnames", Text)];

#[derive(Debug)]
pub struct EtcHosts;

/// (address, hostnames) of each line of a hosts file.
pub fn parse(s: &str) -> Vec<(String, String)> {
    s.lines()
        .filter_map(etc_fields)
        .filter_map(|(f, _)| Some((f.first()?.to_string(), f.get(1..)?.join(" "))))
        .collect()
}

impl Table for EtcHosts {
    fn name(&self) -> &'static str {
        "etc_hosts"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/etc/hosts")).unwrap_or_default();
        Ok(Box::new(
            parse(&s)
                .into_iter()
                .map(|(a, h)| Ok(vec![text(a), text(h)])),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn lines_parse_and_the_table_matches_getent() {
        assert_eq!(
            super::parse(
                "# c\n\n127.0.0.1 localhost lh # loop\n::1\tip6-localhost ip6-loopback\nbad\n"
            ),
            [
                ("127.0.0.1".into(), "localhost lh".into()),
                ("::1".into(), "ip6-localhost ip6-loopback".into()),
                ("bad".into(), String::new()),
            ]
        );
        // getent lists the entries of /etc/hosts with names, one line each.
        let want: Vec<Vec<String>> = tool("getent", &["hosts"])
            .lines()
            .map(|l| {
                let mut f = l.split_whitespace();
                let a = f.next().unwrap_or("").to_owned();
                vec![a, f.collect::<Vec<_>>().join(" ")]
            })
            .collect();
        let got = rows_of("SELECT address, hostnames FROM etc_hosts WHERE hostnames != ''");
        assert!(!got.is_empty());
        assert_eq!(got, want);
    }
}
