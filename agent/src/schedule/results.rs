//! Differential results with osquery's semantics: the rows a scheduled query returned last
//! time, its epoch and counter, kept per query name; each run compares multisets of rows.
//!
//! - First run (no state), or a new `epoch`: every row is `added`, the counter is 0.
//! - The SQL changed: the rows are compared with the previous ones, the counter restarts at 0.
//! - Otherwise: compared; when something changed the counter goes up by one, and when
//!   nothing did no line is logged and the state is not rewritten.
//! - Snapshot queries log every row each time, with counter 0.
//! - A query that read an event table (osquery's `events_optimize`) sees only events it has
//!   not seen: every row it returns is `added`, nothing is compared or removed, and the
//!   counter goes up for each run that returned rows ([`events`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One result row: columns in name order, values as SQLite gave them (text or number).
pub type Row = Map<String, Value>;

/// What a query's last run left.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub sql: String,
    pub epoch: u64,
    pub counter: u64,
    pub rows: Vec<Row>,
    /// For queries over event tables: the newest (time_ns, seq) seen.
    #[serde(default)]
    pub events_after: Option<(u64, u64)>,
    /// For queries over event tables: whether a run has logged rows since the last reset
    /// (osquery sets the counter only then, so the first run with rows has counter 0).
    #[serde(default)]
    pub counted: bool,
}

/// Encoding in the `query_results` column family: a format byte, then JSON.
const FORMAT: u8 = 1;

impl State {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![FORMAT];
        // Serialising plain maps, strings and numbers cannot fail.
        v.extend(serde_json::to_vec(self).unwrap_or_default());
        v
    }

    /// Never panics; a value this build cannot read is an error (the query then starts
    /// fresh, as on its first run).
    pub fn decode(v: &[u8]) -> Result<Self, String> {
        let (&f, rest) = v.split_first().ok_or("empty value")?;
        if f != FORMAT {
            return Err(format!("unknown format {f}"));
        }
        serde_json::from_slice(rest).map_err(|e| e.to_string())
    }
}

/// The rows to log for one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    pub added: Vec<Row>,
    pub removed: Vec<Row>,
}

/// Rows of `current` not in `previous` (added, in `current`'s order) and rows of `previous`
/// not in `current` (removed, in `previous`'s order), counting duplicates.
pub fn diff(previous: &[Row], current: &[Row]) -> Diff {
    let mut unmatched: Vec<Option<&Row>> = previous.iter().map(Some).collect();
    let mut added = Vec::new();
    for row in current {
        match unmatched.iter_mut().find(|p| p.is_some_and(|p| p == row)) {
            Some(slot) => *slot = None,
            None => added.push(row.clone()),
        }
    }
    let removed = unmatched.into_iter().flatten().cloned().collect();
    Diff { added, removed }
}

/// The outcome of one run: the rows to log, the counter to log them with, and the state
/// to store (None: unchanged).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub diff: Diff,
    pub counter: u64,
    pub store: Option<State>,
}

/// Applies osquery's rules (module docs) to a differential query's run.
pub fn differential(previous: Option<&State>, sql: &str, epoch: u64, rows: Vec<Row>) -> Outcome {
    let fresh = State {
        sql: sql.to_owned(),
        epoch,
        counter: 0,
        rows: Vec::new(),
        events_after: None,
        counted: false,
    };
    match previous {
        Some(p) if p.epoch == epoch => {
            let d = diff(&p.rows, &rows);
            let new_sql = p.sql != sql;
            if d.added.is_empty() && d.removed.is_empty() && !new_sql {
                return Outcome {
                    diff: d,
                    counter: p.counter,
                    store: None,
                };
            }
            let counter = if new_sql { 0 } else { p.counter + 1 };
            Outcome {
                diff: d,
                counter,
                store: Some(State {
                    counter,
                    rows,
                    ..fresh
                }),
            }
        }
        _ => Outcome {
            diff: Diff {
                added: rows.clone(),
                removed: Vec::new(),
            },
            counter: 0,
            store: Some(State { rows, ..fresh }),
        },
    }
}

/// osquery's rules for a run over event tables: the rows are new events, all `added`;
/// `mark` is where the next run starts.
pub fn events(
    previous: Option<&State>,
    sql: &str,
    epoch: u64,
    rows: Vec<Row>,
    mark: Option<(u64, u64)>,
) -> Outcome {
    let reset = match previous {
        Some(p) => p.epoch != epoch || p.sql != sql,
        None => true,
    };
    let (counter, counted) = match previous {
        Some(p) if !reset && !rows.is_empty() => (if p.counted { p.counter + 1 } else { 0 }, true),
        Some(p) if !reset => (p.counter, p.counted),
        _ => (0, !rows.is_empty()),
    };
    // A new epoch starts over from the beginning of the retained events, as a first run.
    let after = if previous.is_some_and(|p| p.epoch != epoch) {
        None
    } else {
        mark
    };
    Outcome {
        diff: Diff {
            added: rows,
            removed: Vec::new(),
        },
        counter,
        store: Some(State {
            sql: sql.to_owned(),
            epoch,
            counter,
            rows: Vec::new(),
            events_after: after,
            counted,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect()
    }

    #[test]
    fn multisets_are_compared_with_duplicates() {
        let a = row(&[("pid", "1")]);
        let b = row(&[("pid", "2")]);
        let c = row(&[("pid", "3")]);
        let d = diff(&[a.clone(), a.clone(), b.clone()], &[a.clone(), c.clone()]);
        assert_eq!(d.added, [c]);
        assert_eq!(d.removed, [a, b]);
    }

    #[test]
    fn counter_and_epoch_follow_osquery() {
        let a = row(&[("pid", "1")]);
        let b = row(&[("pid", "2")]);
        // First run: everything added, counter 0.
        let o = differential(None, "q", 0, vec![a.clone()]);
        assert_eq!((o.diff.added.len(), o.counter), (1, 0));
        let s1 = o.store.unwrap();
        // The same rows: nothing to log, nothing to store.
        let o = differential(Some(&s1), "q", 0, vec![a.clone()]);
        assert_eq!(o.diff, Diff::default());
        assert_eq!(o.store, None);
        // A change: counter 1.
        let o = differential(Some(&s1), "q", 0, vec![b.clone()]);
        assert_eq!(o.diff.added, std::slice::from_ref(&b));
        assert_eq!(o.diff.removed, std::slice::from_ref(&a));
        assert_eq!(o.counter, 1);
        let s2 = o.store.unwrap();
        assert_eq!(s2.counter, 1);
        // New SQL: compared, counter restarts.
        let o = differential(Some(&s2), "q2", 0, vec![b.clone()]);
        assert_eq!((o.diff.clone(), o.counter), (Diff::default(), 0));
        assert_eq!(o.store.unwrap().sql, "q2");
        // New epoch: fresh, everything added again.
        let o = differential(Some(&s2), "q", 7, vec![b.clone()]);
        assert_eq!(
            (o.diff.added.len(), o.diff.removed.len(), o.counter),
            (1, 0, 0)
        );
        assert_eq!(o.store.unwrap().epoch, 7);
    }

    #[test]
    fn event_runs_add_every_row_and_count_runs_with_rows() {
        let a = row(&[("pid", "1")]);
        let o = events(None, "q", 0, vec![a.clone()], Some((10, 3)));
        assert_eq!(
            (o.diff.added.len(), o.diff.removed.len(), o.counter),
            (1, 0, 0)
        );
        let s = o.store.unwrap();
        assert_eq!(s.events_after, Some((10, 3)));
        let o = events(Some(&s), "q", 0, vec![], Some((10, 3)));
        assert_eq!((o.diff.added.len(), o.counter), (0, 0));
        let o = events(Some(&s), "q", 0, vec![a.clone()], Some((20, 9)));
        assert_eq!(o.counter, 1);
        let o = events(Some(&s), "q", 1, vec![a.clone()], Some((20, 9)));
        assert_eq!((o.counter, o.store.unwrap().events_after), (0, None));
        // Runs without rows first: the first run with rows still has counter 0.
        let empty = events(None, "q", 0, vec![], Some((1, 1))).store.unwrap();
        let empty = events(Some(&empty), "q", 0, vec![], Some((1, 1)))
            .store
            .unwrap();
        let o = events(Some(&empty), "q", 0, vec![a.clone()], Some((2, 2)));
        assert_eq!(o.counter, 0);
        assert_eq!(
            events(o.store.as_ref(), "q", 0, vec![a], Some((3, 3))).counter,
            1
        );
    }

    #[test]
    fn states_round_trip_and_bad_bytes_are_errors() {
        let s = State {
            sql: "SELECT 1".into(),
            epoch: 3,
            counter: 9,
            rows: vec![row(&[("a", "b")])],
            events_after: Some((5, 6)),
            counted: true,
        };
        // A state written before `events_after` existed still reads.
        let old = b"\x01{\"sql\":\"q\",\"epoch\":0,\"counter\":2,\"rows\":[]}";
        assert_eq!(State::decode(old).unwrap().events_after, None);
        assert_eq!(State::decode(&s.encode()).unwrap(), s);
        assert!(State::decode(b"").is_err());
        assert!(State::decode(b"\x02{}").is_err());
        assert!(State::decode(b"\x01{").is_err());
    }
}
