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
