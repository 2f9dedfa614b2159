//! `interface_ipv6`: per interface, its IPv6 settings from `/proc/sys/net/ipv6/conf/<if>`
//! (`hop_limit`, `forwarding`, `accept_redirects`, `accept_ra`), osquery's columns; the
//! `all` and `default` pseudo-interfaces are left out.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_trimmed,
};

const COLUMNS: &[Column] = &[
    col("interface", Text),
    col("hop_limit", Integer),
    col("forwarding_enabled", Integer),
    col("redirect_accept", Integer),
    col("rtadv_accept", Integer),
];
const CONF: &str = "/proc/sys/net/ipv6/conf";

#[derive(Debug)]
pub struct InterfaceIpv6;

impl Table for InterfaceIpv6 {
    fn name(&self) -> &'static str {
        "interface_ipv6"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        // No IPv6 in this kernel: no rows.
        let Ok(rd) = std::fs::read_dir(CONF) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "all" && n != "default")
            .collect();
        names.sort();
        Ok(Box::new(names.into_iter().map(|n| {
            let get = |f: &str| {
                read_trimmed(&Path::new(CONF).join(&n).join(f))
                    .and_then(|v| v.parse::<i64>().ok())
                    .map_or(Value::Null, int)
            };
            Ok(vec![
                text(n.clone()),
                get("hop_limit"),
                get("forwarding"),
                get("accept_redirects"),
                get("accept_ra"),
            ])
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn each_interfaces_settings_are_what_sysctl_says() {
        let got = rows_of(
            "SELECT interface, hop_limit, forwarding_enabled, redirect_accept, rtadv_accept FROM interface_ipv6",
        );
        assert!(got.iter().any(|r| r[0] == "lo"), "{got:?}");
        for r in &got {
            let want: Vec<String> = std::iter::once(r[0].clone())
                .chain(
                    ["hop_limit", "forwarding", "accept_redirects", "accept_ra"]
                        .iter()
                        .map(|k| {
                            tool("sysctl", &["-n", &format!("net.ipv6.conf.{}.{k}", r[0])])
                                .trim()
                                .to_owned()
                        }),
                )
                .collect();
            assert_eq!(*r, want);
        }
    }
}
