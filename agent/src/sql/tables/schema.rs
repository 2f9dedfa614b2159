//! Every table's schema as text, checked against `schema.expected` beside this file, so a
//! column renamed, retyped, hidden or dropped by accident fails a test instead of silently
//! breaking osquery queries. After an intended change:
//! `UPDATE_EXPECT=1 cargo test -p agent schema_matches_expectation` rewrites the file; review
//! its diff like code.

use std::sync::Arc;

use crate::sql::vtab::Table;

/// One block per table, sorted by name: the table name, then one line per column with its
/// type and `HIDDEN`/`REQUIRED` marks.
pub fn describe(tables: &[Arc<dyn Table>]) -> String {
    let mut sorted: Vec<&Arc<dyn Table>> = tables.iter().collect();
    sorted.sort_by_key(|t| t.name());
    let mut out = String::new();
    for t in sorted {
        out.push_str(t.name());
        out.push('\n');
        for c in t.columns() {
            out.push_str(&format!("  {} {}", c.name, c.ty.sql_name()));
            if c.hidden {
                out.push_str(" HIDDEN");
            }
            if c.required {
                out.push_str(" REQUIRED");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{flags::Flags, sql::Sources};

    const EXPECTED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/sql/tables/schema.expected"
    );

    #[test]
    fn schema_matches_expectation() {
        let tables = crate::sql::tables::all(&Sources {
            store: None,
            flags: Arc::new(Flags::default()),
        });
        let actual = describe(&tables);
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(EXPECTED, &actual).expect("writing schema.expected");
            return;
        }
        let expected = std::fs::read_to_string(EXPECTED).unwrap_or_default();
        if expected != actual {
            let diff: Vec<String> = diff_lines(&expected, &actual);
            panic!(
                "table schemas differ from {EXPECTED}:\n{}\n\nIf the change is intended, run\n  \
                 UPDATE_EXPECT=1 cargo test -p agent schema_matches_expectation\nand commit the \
                 updated file.",
                diff.join("\n")
            );
        }
    }

    /// A short listing of lines only in one side (`-` expected, `+` actual), with the table
    /// each is in; enough to see what changed without a diff tool.
    fn diff_lines(expected: &str, actual: &str) -> Vec<String> {
        let tag = |text: &str| -> Vec<String> {
            let mut table = "";
            text.lines()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    if l.starts_with(' ') {
                        format!("{table}:{}", l.trim())
                    } else {
                        table = l;
                        l.to_owned()
                    }
                })
                .collect()
        };
        let (e, a) = (tag(expected), tag(actual));
        let mut out: Vec<String> = e
            .iter()
            .filter(|l| !a.contains(l))
            .map(|l| format!("- {l}"))
            .collect();
        out.extend(
            a.iter()
                .filter(|l| !e.contains(l))
                .map(|l| format!("+ {l}")),
        );
        if out.is_empty() {
            out.push("(same lines, different order)".to_owned());
        }
        out
    }

    #[test]
    fn describe_format() {
        use crate::sql::vtab::{Column, ColumnType, QueryContext, Rows};
        struct T;
        impl Table for T {
            fn name(&self) -> &'static str {
                "t"
            }
            fn columns(&self) -> &'static [Column] {
                const C: &[Column] = &[
                    crate::sql::vtab::col("a", ColumnType::Text),
                    crate::sql::vtab::hidden("b", ColumnType::BigInt),
                    Column {
                        name: "c",
                        ty: ColumnType::Double,
                        hidden: true,
                        required: true,
                    },
                ];
                C
            }
            fn generate(&self, _: &QueryContext) -> Result<Rows, String> {
                Ok(Box::new(std::iter::empty()))
            }
        }
        let tables: Vec<Arc<dyn Table>> = vec![Arc::new(T)];
        assert_eq!(
            describe(&tables),
            "t\n  a TEXT\n  b BIGINT HIDDEN\n  c DOUBLE HIDDEN REQUIRED\n\n"
        );
        assert_eq!(
            diff_lines("t\n  a TEXT\n", "t\n  a INTEGER\n"),
            vec!["- t:a TEXT", "+ t:a INTEGER"]
        );
    }
}
