//! `md_personalities`: the software RAID levels the kernel supports, from the
//! `Personalities :` line of `/proc/mdstat` (`[raid1] [raid6] …`, names without brackets).
//! No rows without the md driver (no `/proc/mdstat`).

use std::path::Path;

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[col("name", Text)];

#[derive(Debug)]
pub struct MdPersonalities;

/// The personalities of `/proc/mdstat` text.
pub fn parse(s: &str) -> Vec<String> {
    let Some(rest) = s
        .lines()
        .next()
        .and_then(|l| l.split_once("Personalities :"))
        .map(|(_, r)| r)
    else {
        return Vec::new();
    };
    rest.split_whitespace()
        .filter_map(|p| p.strip_prefix('[')?.strip_suffix(']'))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Table for MdPersonalities {
    fn name(&self) -> &'static str {
        "md_personalities"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(Path::new("/proc/mdstat")).unwrap_or_default();
        Ok(Box::new(
            parse(&s)
                .into_iter()
                .map(|n| Ok(vec![text(n)]))
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn the_personalities_line_parses() {
        let s = "Personalities : [raid1] [linear] [multipath] [raid0] [raid6] [raid5] [raid4] [raid10] \n\
                 md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks [2/2] [UU]\n\nunused devices: <none>\n";
        assert_eq!(
            super::parse(s),
            [
                "raid1",
                "linear",
                "multipath",
                "raid0",
                "raid6",
                "raid5",
                "raid4",
                "raid10"
            ]
        );
        assert_eq!(
            super::parse("Personalities : \nunused devices: <none>\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            super::parse("md0 : active raid1 [x]\n"),
            Vec::<String>::new()
        );
        assert_eq!(super::parse(""), Vec::<String>::new());
    }

    /// The rows are the bracketed words of this host's mdstat (no file here: no rows).
    #[test]
    fn this_host_agrees_with_mdstat() {
        let want: Vec<Vec<String>> = std::fs::read_to_string("/proc/mdstat")
            .map(|s| {
                s.lines()
                    .next()
                    .unwrap_or("")
                    .split(['[', ']'])
                    .skip(1)
                    .step_by(2)
                    .map(|w| vec![w.to_owned()])
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(rows_of("SELECT name FROM md_personalities"), want);
    }
}
