//! `dns_resolvers`: the resolver configuration of `/etc/resolv.conf` as the C library reads it,
//! osquery's columns: a row per `nameserver` (its address), per search domain (`search`, or
//! the `domain` line when there is no `search`) and per `sortlist` entry (address and netmask
//! length); `id` counts within each type from 0; `options` is the resolver's option bits
//! (glibc's defaults `RES_INIT | RES_RECURSE | RES_DEFNAMES | RES_DNSRCH`, 705, with those of
//! the `options` line: `rotate`, `edns0`, `single-request`, `single-request-reopen`, `use-vc`,
//! `no-tld-query`, `trust-ad`). glibc keeps at most 3 name servers and 6 search domains, so
//! does this table.

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{etc_fields, int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("id", Integer),
    col("type", Text),
    col("address", Text),
    col("netmask", Text),
    col("options", BigInt),
];

#[derive(Debug)]
pub struct DnsResolvers;

/// The rows of resolv.conf text: (id, type, address, netmask, options).
pub fn parse(s: &str) -> Vec<(i64, &'static str, String, Option<String>, i64)> {
    let (mut servers, mut search, mut domain, mut sortlist) = (Vec::new(), None, None, Vec::new());
    let mut options: i64 = 0x1 | 0x40 | 0x80 | 0x200;
    for (f, _) in s
        .lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .filter_map(etc_fields)
    {
        match f[0] {
            "nameserver" if servers.len() < 3 => servers.extend(f.get(1).map(|a| (*a).to_owned())),
            "search" => {
                search = Some(
                    f[1..]
                        .iter()
                        .take(6)
                        .map(|d| (*d).to_owned())
                        .collect::<Vec<_>>(),
                )
            }
            "domain" => domain = f.get(1).map(|d| (*d).to_owned()),
            "sortlist" => sortlist = f[1..].iter().map(|e| (*e).to_owned()).collect(),
            "options" => {
                for o in &f[1..] {
                    options |= match *o {
                        "use-vc" => 0x8,
                        "rotate" => 0x4000,
                        "edns0" => 0x0010_0000,
                        "single-request" => 0x0020_0000,
                        "single-request-reopen" => 0x0040_0000,
                        "no-tld-query" => 0x0100_0000,
                        "trust-ad" => 0x8000_0000,
                        _ => 0,
                    };
                }
            }
            _ => {}
        }
    }
    let search = search
        .or_else(|| domain.map(|d| vec![d]))
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, a) in servers.into_iter().enumerate() {
        out.push((i as i64, "nameserver", a, None, options));
    }
    for (i, d) in search.into_iter().enumerate() {
        out.push((i as i64, "search", d, None, options));
    }
    for (i, e) in sortlist.into_iter().enumerate() {
        let (a, m) = match e.split_once('/') {
            Some((a, m)) => (a.to_owned(), Some(m.to_owned())),
            None => (e, None),
        };
        out.push((i as i64, "sortlist", a, m, options));
    }
    out
}

impl Table for DnsResolvers {
    fn name(&self) -> &'static str {
        "dns_resolvers"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/etc/resolv.conf")).unwrap_or_default();
        Ok(Box::new(parse(&s).into_iter().map(|(id, ty, a, m, o)| {
            Ok(vec![
                int(id),
                text(ty),
                text(a),
                m.map_or(Value::Null, text),
                int(o),
            ])
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn resolv_conf_reads_as_the_c_library_reads_it() {
        let rows = super::parse(
            "# c\ndomain corp.example\nnameserver 10.0.0.1\nnameserver ::1 ; trailing\nnameserver 10.0.0.3\nnameserver 10.0.0.4\nsortlist 130.155.160.0/255.255.240.0 130.155.0.0\noptions rotate edns0 ndots:2\n",
        );
        let o = 705 | 0x4000 | 0x0010_0000;
        assert_eq!(
            rows,
            [
                (0, "nameserver", "10.0.0.1".into(), None, o),
                (1, "nameserver", "::1".into(), None, o),
                (2, "nameserver", "10.0.0.3".into(), None, o),
                (0, "search", "corp.example".into(), None, o),
                (
                    0,
                    "sortlist",
                    "130.155.160.0".into(),
                    Some("255.255.240.0".into()),
                    o
                ),
                (1, "sortlist", "130.155.0.0".into(), None, o),
            ]
        );
        // This host's file: its name servers, in order.
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let want: Vec<Vec<String>> = conf
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .take(3)
            .map(|a| vec![a.split_whitespace().next().unwrap_or("").to_owned()])
            .collect();
        assert_eq!(
            rows_of("SELECT address FROM dns_resolvers WHERE type = 'nameserver' ORDER BY id"),
            want
        );
    }
}
