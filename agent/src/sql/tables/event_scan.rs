//! The one scan that every event table shares: a time range of a column family, read in
//! chunks so that a `LIMIT` stops it early, each value decoded by the table.

use std::{collections::VecDeque, sync::Arc};

use rusqlite::types::Value;

use crate::{
    sql::{
        EventsCursor, TableEnv,
        tables::util::secs_to_ns_range,
        vtab::{Column, QueryContext, Row},
    },
    storage::Store,
};

/// The index of the column called `name`, found at compile time (`const TIME: usize =
/// column_index(COLUMNS, "time")`): inserting a column cannot silently move the push-down to
/// another one, and a missing name fails the build.
pub const fn column_index(columns: &[Column], name: &str) -> usize {
    let mut i = 0;
    while i < columns.len() {
        if str_eq(columns[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("no column of that name")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Rows read from RocksDB per refill: the most a `LIMIT` can over-read.
pub const CHUNK: usize = 256;

/// Decodes one stored value (with its seq) into a row; `Ok(None)` skips it.
pub type DecodeRow = Box<dyn Fn(u64, &[u8]) -> Result<Option<Row>, String> + Send>;

/// The ns range the constraints on the `time` column (seconds) allow.
pub fn time_range(ctx: &QueryContext, time_column: usize) -> (u64, u64) {
    let (lo, hi) = ctx.int_range(time_column);
    secs_to_ns_range(lo, hi)
}

pub struct EventScan {
    store: Arc<Store>,
    table: &'static str,
    next_from: Option<(u64, u64)>,
    to_ns: u64,
    decode: DecodeRow,
    buf: VecDeque<Row>,
    errors: Vec<String>,
    /// A scheduled query's place (`events_optimize`): rows at or below `skip_seq` are old.
    cursor: Option<Arc<EventsCursor>>,
    skip_seq: u64,
    finished: bool,
}

impl EventScan {
    pub fn new(
        store: Arc<Store>,
        table: &'static str,
        from_ns: u64,
        to_ns: u64,
        decode: impl Fn(u64, &[u8]) -> Result<Option<Row>, String> + Send + 'static,
    ) -> Self {
        Self {
            store,
            table,
            next_from: (from_ns <= to_ns).then_some((from_ns, 0)),
            to_ns,
            decode: Box::new(decode),
            buf: VecDeque::new(),
            errors: Vec::new(),
            cursor: None,
            skip_seq: 0,
            finished: false,
        }
    }

    /// Follows `cursor` (see [`EventsCursor`]): starts no earlier than it says and skips the
    /// rows the query has seen.
    fn with_cursor(mut self, cursor: Option<Arc<EventsCursor>>) -> Self {
        if let Some(c) = cursor
            && let Some((from, skip)) = c.scan_start()
        {
            if let Some((t, _)) = self.next_from.as_mut() {
                *t = (*t).max(from);
            }
            self.skip_seq = skip;
            self.cursor = Some(c);
        }
        self
    }

    fn refill(&mut self) {
        let Some((from_t, from_seq)) = self.next_from.take() else {
            return;
        };
        let mut last = None;
        let mut n = 0;
        let (buf, decode, table) = (&mut self.buf, &self.decode, self.table);
        let (cursor, skip) = (&self.cursor, self.skip_seq);
        let res = self.store.scan(table, from_t, self.to_ns, |t, s, v| {
            if t == from_t && s < from_seq {
                return true;
            }
            last = Some((t, s));
            n += 1;
            if let Some(c) = cursor {
                c.saw(t, s);
                if s <= skip {
                    return n < CHUNK;
                }
            }
            match decode(s, v) {
                Ok(Some(row)) => buf.push_back(row),
                Ok(None) => {}
                // A damaged row must not hide the others; it is logged and skipped.
                Err(err) => log::warn!("skipping undecodable {table} row {t}/{s}: {err}"),
            }
            n < CHUNK
        });
        if let Err(e) = res {
            self.errors.push(e.to_string());
            return;
        }
        if n >= CHUNK
            && let Some((t, s)) = last
        {
            self.next_from = s
                .checked_add(1)
                .map(|s| (t, s))
                .or_else(|| t.checked_add(1).map(|t| (t, 0)));
        }
    }
}

impl Iterator for EventScan {
    type Item = Result<Vec<Value>, String>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.errors.pop() {
                return Some(Err(e));
            }
            if let Some(r) = self.buf.pop_front() {
                return Some(Ok(r));
            }
            if self.next_from.is_none() {
                self.finished = true;
                return None;
            }
            self.refill();
        }
    }
}

impl Drop for EventScan {
    fn drop(&mut self) {
        // Dropped before its end (a LIMIT): the query's place must not move past rows it
        // has not read.
        if !self.finished
            && let Some(c) = &self.cursor
        {
            c.stopped_early();
        }
    }
}

/// What a constraint on the `time` column saves: a range seek instead of a full scan.
pub fn time_cost(constrained: &[(usize, crate::sql::vtab::Op)], time_column: usize) -> f64 {
    if constrained.iter().any(|(c, _)| *c == time_column) {
        1_000.0
    } else {
        1_000_000.0
    }
}

/// The rows of an event table for `ctx`: a time-range scan of its column family, each value
/// decoded by `decode` (which may also skip rows). Without a store (no daemon database), none.
/// With the scheduler's events cursor in `env`, only the rows a scheduled query has not seen.
pub fn scan_rows(
    env: &TableEnv,
    table: &'static str,
    ctx: &QueryContext,
    time_column: usize,
    decode: impl Fn(u64, &[u8]) -> Result<Option<Row>, String> + Send + 'static,
) -> crate::sql::vtab::Rows {
    let Some(store) = env.store.clone() else {
        return Box::new(std::iter::empty());
    };
    let (from_ns, to_ns) = time_range(ctx, time_column);
    Box::new(
        EventScan::new(store, table, from_ns, to_ns, decode).with_cursor(env.events_cursor.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::vtab::{ColumnType::*, col};

    #[test]
    fn columns_are_found_by_name() {
        const COLS: &[Column] = &[col("a", Text), col("time", BigInt), col("b", Text)];
        const TIME: usize = column_index(COLS, "time");
        assert_eq!(TIME, 1);
        assert_eq!(column_index(COLS, "b"), 2);
    }
}
