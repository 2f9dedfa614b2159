//! `ulimit_info`: the agent's resource limits (getrlimit(2)), a row per resource with
//! osquery's columns; `unlimited` for no limit.

use crate::sql::{
    tables::util::text,
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("type", Text),
    col("soft_limit", Text),
    col("hard_limit", Text),
];

#[derive(Debug)]
pub struct UlimitInfo;

fn shown(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

impl Table for UlimitInfo {
    fn name(&self) -> &'static str {
        "ulimit_info"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(crate::sys::rlimits().into_iter().map(
            |(name, soft, hard)| Ok(vec![text(name), text(shown(soft)), text(shown(hard))]),
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn limits_are_what_prlimit_reports() {
        let pid = std::process::id().to_string();
        let mut want: Vec<Vec<String>> = tool(
            "prlimit",
            &[
                "--pid",
                &pid,
                "--raw",
                "--noheadings",
                "--output",
                "RESOURCE,SOFT,HARD",
            ],
        )
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            vec![f[0].to_ascii_lowercase(), f[1].to_owned(), f[2].to_owned()]
        })
        .collect();
        want.sort();
        assert_eq!(want.len(), 16);
        assert_eq!(
            rows_of("SELECT type, soft_limit, hard_limit FROM ulimit_info ORDER BY type"),
            want
        );
    }
}
