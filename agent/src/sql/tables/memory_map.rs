//! `memory_map`: the physical memory map of `/proc/iomem` (`start-end : name` lines; nested
//! regions are indented), one row per region, `start` and `end` as `0x`-prefixed hex as the
//! kernel writes them. Addresses read as zero unless the agent runs as root (the kernel hides
//! them). osquery splits the line at its first space, which garbles the nested regions and
//! leaves a space after `end`; here every line is split at its ` : `.

use std::path::Path;

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("name", Text), col("start", Text), col("end", Text)];

#[derive(Debug)]
pub struct MemoryMap;

/// (name, start, end) of each region line.
pub fn parse(s: &str) -> Vec<(String, String, String)> {
    s.lines()
        .filter_map(|l| {
            let (range, name) = l.trim_start().split_once(" : ")?;
            let (start, end) = range.trim().split_once('-')?;
            let hex = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit());
            (hex(start) && hex(end))
                .then(|| (name.to_owned(), format!("0x{start}"), format!("0x{end}")))
        })
        .collect()
}

impl Table for MemoryMap {
    fn name(&self) -> &'static str {
        "memory_map"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(Path::new("/proc/iomem")).unwrap_or_default();
        let rows: Vec<_> = parse(&s)
            .into_iter()
            .map(|(n, a, b)| Ok(vec![text(n), text(a), text(b)]))
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn iomem_lines_parse() {
        let s = "00000000-00000fff : Reserved\n\
                 00100000-bfffffff : System RAM\n  \
                 01000000-022784c7 : Kernel code\n  \
                 000de000-000defff : AMZNC10C:00\n\
                 4000000000-7fffffffff : PCI Bus 0000:00\n\
                 garbage\nzz-10 : x\n";
        let r = |n: &str, a: &str, b: &str| (n.to_owned(), a.to_owned(), b.to_owned());
        assert_eq!(
            super::parse(s),
            [
                r("Reserved", "0x00000000", "0x00000fff"),
                r("System RAM", "0x00100000", "0xbfffffff"),
                r("Kernel code", "0x01000000", "0x022784c7"),
                r("AMZNC10C:00", "0x000de000", "0x000defff"),
                r("PCI Bus 0000:00", "0x4000000000", "0x7fffffffff"),
            ]
        );
    }

    /// Every line of this host's /proc/iomem is a row, in order; as root the addresses are
    /// the real ones (System RAM does not start at 0 everywhere but never ends at 0).
    #[test]
    fn this_host_agrees_with_proc_iomem() {
        let iomem = std::fs::read_to_string("/proc/iomem").unwrap();
        let want: Vec<Vec<String>> = iomem
            .lines()
            .map(|l| {
                let (range, name) = l.trim().split_once(" : ").unwrap();
                let (a, b) = range.split_once('-').unwrap();
                vec![name.to_owned(), format!("0x{a}"), format!("0x{b}")]
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(rows_of("SELECT name, start, \"end\" FROM memory_map"), want);
        let ram_end = rows_of("SELECT \"end\" FROM memory_map WHERE name = 'System RAM' LIMIT 1");
        assert_ne!(
            ram_end[0][0]
                .trim_start_matches("0x")
                .trim_start_matches('0'),
            ""
        );
    }
}
