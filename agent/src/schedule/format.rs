//! osquery's result and status log lines.
//!
//! - Event format (`logger_event_type`, the default): one line per row, removed rows first:
//!   `name, hostIdentifier, calendarTime, unixTime, epoch, counter, numerics, decorations,
//!   columns, action`.
//! - Batch format: `diffResults {removed, added}` followed by the same fields.
//! - Snapshots: `snapshot: [rows], action: "snapshot"` followed by the same fields, or one
//!   line per row with `action: "snapshot"` when `logger_snapshot_event_type` is set.
//! - `decorations` is left out when empty, and its keys go to the top level with
//!   `decorations_top_level`.
//! - Values are strings unless `logger_numerics` is set (then numbers stay numbers).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::results::{Diff, Row};

/// The fields every line of one run shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub name: String,
    pub host_identifier: String,
    pub unix_time: u64,
    pub epoch: u64,
    pub counter: u64,
    pub numerics: bool,
    pub decorations: BTreeMap<String, String>,
    pub decorations_top_level: bool,
}

/// `Tue Dec  1 15:58:45 2026 UTC`: asctime's layout, in UTC.
pub fn calendar_time(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = crate::sys::civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {y} UTC",
        DAYS[(days % 7) as usize],
        MONTHS[(m as usize).saturating_sub(1) % 12],
        d,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn cells(row: &Row, numerics: bool) -> Value {
    let mut out = Map::new();
    for (k, v) in row {
        let v = match v {
            Value::Number(n) if !numerics => Value::String(n.to_string()),
            other => other.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn common(h: &Header, into: &mut Map<String, Value>) {
    into.insert("name".into(), json!(h.name));
    into.insert("hostIdentifier".into(), json!(h.host_identifier));
    into.insert("calendarTime".into(), json!(calendar_time(h.unix_time)));
    into.insert("unixTime".into(), json!(h.unix_time));
    into.insert("epoch".into(), json!(h.epoch));
    into.insert("counter".into(), json!(h.counter));
    into.insert("numerics".into(), json!(h.numerics));
    add_decorations(&h.decorations, h.decorations_top_level, into);
}

fn add_decorations(d: &BTreeMap<String, String>, top_level: bool, into: &mut Map<String, Value>) {
    if d.is_empty() {
        return;
    }
    if top_level {
        for (k, v) in d {
            into.insert(k.clone(), json!(v));
        }
    } else {
        let d: Map<String, Value> = d.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        into.insert("decorations".into(), Value::Object(d));
    }
}

fn event(h: &Header, row: &Row, action: &str) -> String {
    let mut o = Map::new();
    common(h, &mut o);
    o.insert("columns".into(), cells(row, h.numerics));
    o.insert("action".into(), json!(action));
    Value::Object(o).to_string()
}

/// The lines of a differential run (none when nothing changed).
pub fn differential(h: &Header, d: &Diff, event_format: bool) -> Vec<String> {
    if d.added.is_empty() && d.removed.is_empty() {
        return Vec::new();
    }
    if event_format {
        let removed = d.removed.iter().map(|r| event(h, r, "removed"));
        let added = d.added.iter().map(|r| event(h, r, "added"));
        return removed.chain(added).collect();
    }
    let mut o = Map::new();
    let list = |rows: &[Row]| Value::Array(rows.iter().map(|r| cells(r, h.numerics)).collect());
    o.insert(
        "diffResults".into(),
        json!({"removed": list(&d.removed), "added": list(&d.added)}),
    );
    common(h, &mut o);
    vec![Value::Object(o).to_string()]
}

/// The lines of a snapshot run.
pub fn snapshot(h: &Header, rows: &[Row], event_format: bool) -> Vec<String> {
    if event_format {
        return rows.iter().map(|r| event(h, r, "snapshot")).collect();
    }
    let mut o = Map::new();
    o.insert(
        "snapshot".into(),
        Value::Array(rows.iter().map(|r| cells(r, h.numerics)).collect()),
    );
    o.insert("action".into(), json!("snapshot"));
    common(h, &mut o);
    vec![Value::Object(o).to_string()]
}

/// A status line: `hostIdentifier, calendarTime, unixTime, severity, filename, line,
/// message, version`, then the decorations (as in result lines).
pub fn status(
    host_identifier: &str,
    unix_time: u64,
    severity: u8,
    location: (&str, u32),
    message: &str,
    decorations: &BTreeMap<String, String>,
    decorations_top_level: bool,
) -> String {
    let mut o = Map::new();
    o.insert("hostIdentifier".into(), json!(host_identifier));
    o.insert("calendarTime".into(), json!(calendar_time(unix_time)));
    o.insert("unixTime".into(), json!(unix_time));
    o.insert("severity".into(), json!(severity));
    o.insert("filename".into(), json!(location.0));
    o.insert("line".into(), json!(location.1));
    o.insert("message".into(), json!(message));
    o.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    add_decorations(decorations, decorations_top_level, &mut o);
    Value::Object(o).to_string()
}
