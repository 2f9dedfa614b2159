//! Result printers: pretty (osqueryi's boxed table), JSON, CSV (osquery's `|` separator) and
//! line mode.

use rusqlite::types::Value;

use crate::sql::ResultSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pretty,
    Json,
    Csv,
    Line,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pretty" => Self::Pretty,
            "json" => Self::Json,
            "csv" => Self::Csv,
            "line" => Self::Line,
            _ => return None,
        })
    }
}

/// osquery prints every value as text; NULL is the empty string.
pub fn cell(v: &Value) -> String {
    crate::sql::text_of(v)
}

pub fn render(rs: &ResultSet, mode: Mode, header: bool) -> String {
    match mode {
        Mode::Json => json(rs),
        Mode::Csv => csv(rs, header),
        Mode::Line => line(rs),
        Mode::Pretty => pretty(rs, header),
    }
}

fn json(rs: &ResultSet) -> String {
    let rows: Vec<serde_json::Value> = rs
        .rows
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            for (c, v) in rs.columns.iter().zip(r) {
                m.insert(c.clone(), serde_json::Value::String(cell(v)));
            }
            serde_json::Value::Object(m)
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

fn csv(rs: &ResultSet, header: bool) -> String {
    let mut out = String::new();
    if header {
        out.push_str(&rs.columns.join("|"));
        out.push('\n');
    }
    for r in &rs.rows {
        let cells: Vec<String> = r.iter().map(cell).collect();
        out.push_str(&cells.join("|"));
        out.push('\n');
    }
    out
}

fn line(rs: &ResultSet) -> String {
    let width = rs
        .columns
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, r) in rs.rows.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (c, v) in rs.columns.iter().zip(r) {
            out.push_str(&format!("{c:>width$} = {}\n", cell(v)));
        }
    }
    out
}

fn pretty(rs: &ResultSet, header: bool) -> String {
    if rs.columns.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rs
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = rs
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(if header { c.chars().count() } else { 0 }))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let sep: String = {
        let parts: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        format!("+{}+\n", parts.join("+"))
    };
    let fmt_row = |vals: &[String]| -> String {
        let parts: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!(" {v}{} ", " ".repeat(w - v.chars().count())))
            .collect();
        format!("|{}|\n", parts.join("|"))
    };
    let mut out = sep.clone();
    if header {
        out.push_str(&fmt_row(&rs.columns));
        out.push_str(&sep);
    }
    for r in &cells {
        out.push_str(&fmt_row(r));
    }
    if !cells.is_empty() || header {
        out.push_str(&sep);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs() -> ResultSet {
        ResultSet {
            columns: vec!["pid".into(), "path".into()],
            rows: vec![
                vec![Value::Integer(1), Value::Text("/sbin/init".into())],
                vec![Value::Integer(22), Value::Null],
            ],
        }
    }

    #[test]
    fn modes() {
        assert_eq!(
            render(&rs(), Mode::Csv, true),
            "pid|path\n1|/sbin/init\n22|\n"
        );
        assert_eq!(
            render(&rs(), Mode::Line, true),
            " pid = 1\npath = /sbin/init\n\n pid = 22\npath = \n"
        );
        assert_eq!(
            render(&rs(), Mode::Json, true),
            "[\n  {\n    \"pid\": \"1\",\n    \"path\": \"/sbin/init\"\n  },\n  {\n    \"pid\": \"22\",\n    \"path\": \"\"\n  }\n]\n"
        );
        assert_eq!(
            render(&rs(), Mode::Pretty, true),
            "+-----+------------+\n| pid | path       |\n+-----+------------+\n| 1   | /sbin/init |\n| 22  |            |\n+-----+------------+\n"
        );
    }
}
