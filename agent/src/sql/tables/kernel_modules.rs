//! `kernel_modules`: the loaded kernel modules (`/proc/modules`), osquery's columns: `used_by`
//! the modules using it (comma-separated, `-` for none), `status` (`Live`, `Loading`,
//! `Unloading`), `address`. A kernel without module support has no rows.

use crate::{
    sql::{
        tables::util::{text, uint},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("size", BigInt),
    col("used_by", Text),
    col("status", Text),
    col("address", Text),
];

#[derive(Debug)]
pub struct KernelModules;

/// (name, size, used by, status, address) of each `/proc/modules` line.
pub fn parse(s: &str) -> Vec<(String, u64, String, String, String)> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let used = f.get(3)?.trim_end_matches(',');
            Some((
                (*f.first()?).to_owned(),
                f.get(1)?.parse().ok()?,
                if used.is_empty() {
                    "-".to_owned()
                } else {
                    used.to_owned()
                },
                (*f.get(4)?).to_owned(),
                (*f.get(5)?).to_owned(),
            ))
        })
        .collect()
}

impl Table for KernelModules {
    fn name(&self) -> &'static str {
        "kernel_modules"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(std::path::Path::new("/proc/modules")).unwrap_or_default();
        Ok(Box::new(parse(&s).into_iter().map(
            |(n, size, used, st, addr)| {
                Ok(vec![text(n), uint(size), text(used), text(st), text(addr)])
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_lines_parse_and_this_kernel_agrees_with_proc() {
        assert_eq!(
            super::parse(
                "nf_tables 372736 0 - Live 0xffffffffc0a00000\nx_tables 65536 3 xt_conntrack,nft_compat,ip_tables, Live 0xffffffffc0100000 (E)\nshort 1\n"
            ),
            [
                (
                    "nf_tables".into(),
                    372_736,
                    "-".into(),
                    "Live".into(),
                    "0xffffffffc0a00000".into()
                ),
                (
                    "x_tables".into(),
                    65536,
                    "xt_conntrack,nft_compat,ip_tables".into(),
                    "Live".into(),
                    "0xffffffffc0100000".into()
                ),
            ]
        );
        // As many rows as /proc/modules has lines (none on a kernel without modules).
        let lines = std::fs::read_to_string("/proc/modules").map_or(0, |s| s.lines().count());
        let got = crate::sql::tables::util::rows_of("SELECT count(*) FROM kernel_modules");
        assert_eq!(got, [vec![lines.to_string()]]);
    }
}
