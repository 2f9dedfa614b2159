//! `arp_cache`: the kernel's IPv4 neighbour table (`/proc/net/arp`), osquery's columns:
//! `permanent` is 1 for a static entry (`ATF_PERM`).

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("address", Text),
    col("mac", Text),
    col("interface", Text),
    col("permanent", Text),
];

#[derive(Debug)]
pub struct ArpCache;

/// (address, mac, interface, permanent) of each `/proc/net/arp` entry.
pub fn parse(s: &str) -> Vec<[String; 4]> {
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(2)?.trim_start_matches("0x"), 16).ok()?;
            Some([
                (*f.first()?).to_owned(),
                (*f.get(3)?).to_owned(),
                (*f.get(5)?).to_owned(),
                if flags & 0x04 != 0 { "1" } else { "0" }.to_owned(),
            ])
        })
        .collect()
}

impl Table for ArpCache {
    fn name(&self) -> &'static str {
        "arp_cache"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/proc/net/arp")).unwrap_or_default();
        Ok(Box::new(
            parse(&s)
                .into_iter()
                .map(|r| Ok(r.into_iter().map(text).collect())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn entries_are_the_neighbours_ip_lists() {
        assert_eq!(
            super::parse(
                "IP address HW type Flags HW address Mask Device\n10.0.0.1 0x1 0x6 aa:bb:cc:dd:ee:ff * eth0\n"
            ),
            [["10.0.0.1", "aa:bb:cc:dd:ee:ff", "eth0", "1"].map(str::to_owned)]
        );
        // `ip -4 neigh`: "ADDR dev IF lladdr MAC STATE" for entries with an address.
        let mut want: Vec<Vec<String>> = tool("ip", &["-4", "neigh", "show"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let mac = f
                    .iter()
                    .position(|x| *x == "lladdr")
                    .and_then(|i| f.get(i + 1))?;
                Some(vec![f[0].to_owned(), (*mac).to_owned(), f[2].to_owned()])
            })
            .collect();
        want.sort();
        let got = rows_of(
            "SELECT address, mac, interface FROM arp_cache WHERE mac != '00:00:00:00:00:00' ORDER BY address, interface",
        );
        assert_eq!(got, want);
    }
}
