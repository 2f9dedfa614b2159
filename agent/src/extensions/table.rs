//! The tables extensions register, as SQL tables: their columns from the registration's
//! routes, their rows from a `call("table", name, {"action": "generate", "context": …})` into
//! the extension, with osquery's context JSON (the statement's constraints and used columns).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use osprey_sdk::context;
use rusqlite::types::Value;

use super::Registry;
use crate::sql::vtab::{Column, ColumnType, Op, QueryContext, Rows, Table};

/// Who answers a table's `generate`: the daemon's registry (straight to the extension) or,
/// for `osprey query` and `shell`, the daemon's manager (which forwards it).
pub trait Generate: Send + Sync {
    fn generate(
        &self,
        name: &str,
        request: std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<std::collections::BTreeMap<String, String>>, String>;
}

impl Generate for Registry {
    fn generate(
        &self,
        name: &str,
        request: std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<std::collections::BTreeMap<String, String>>, String> {
        self.call_table(name, request)
    }
}

/// A table of an extension; rows come from whichever extension owns the name when asked.
pub struct ExtensionTable {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub source: Arc<dyn Generate>,
}

/// The column type a route names (osquery's type names); unknown types are text.
fn column_type(name: &str) -> ColumnType {
    match name.to_ascii_uppercase().as_str() {
        "INTEGER" => ColumnType::Integer,
        "BIGINT" | "UNSIGNED_BIGINT" | "UNSIGNED BIGINT" => ColumnType::BigInt,
        "DOUBLE" => ColumnType::Double,
        _ => ColumnType::Text,
    }
}

/// Names and column lists live as long as the process (the SQL layer wants `'static`), so
/// each distinct one is kept once: an extension registering again costs nothing more.
fn intern_name(s: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut g = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = g.iter().find(|n| **n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
    g.push(n);
    n
}

/// The columns of a table's routes (`{"id": "column", "name", "type"}` rows; others are
/// skipped), interned by their text.
pub fn columns_of(routes: &[std::collections::BTreeMap<String, String>]) -> &'static [Column] {
    static LISTS: Mutex<Option<HashMap<String, &'static [Column]>>> = Mutex::new(None);
    let cols: Vec<(&'static str, ColumnType)> = routes
        .iter()
        .filter(|r| r.get("id").is_none_or(|id| id == "column"))
        .filter_map(|r| {
            let name = r.get("name")?;
            (!name.is_empty()).then(|| {
                let ty = r.get("type").map_or(ColumnType::Text, |t| column_type(t));
                (intern_name(name), ty)
            })
        })
        .collect();
    let key = cols
        .iter()
        .map(|(n, t)| format!("{n}:{}", t.sql_name()))
        .collect::<Vec<_>>()
        .join(",");
    let mut g = LISTS.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(c) = map.get(&key) {
        return c;
    }
    let list: &'static [Column] = Box::leak(
        cols.into_iter()
            .map(|(name, ty)| crate::sql::vtab::col(name, ty))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    map.insert(key, list);
    list
}

pub fn table_name(name: &str) -> &'static str {
    intern_name(name)
}

/// The operator a context names for `op`.
fn context_op(op: Op) -> context::Op {
    match op {
        Op::Eq => context::Op::Eq,
        Op::Gt => context::Op::Gt,
        Op::Le => context::Op::Le,
        Op::Lt => context::Op::Lt,
        Op::Ge => context::Op::Ge,
        Op::Like => context::Op::Like,
        Op::Glob => context::Op::Glob,
        Op::Ne => context::Op::Ne,
    }
}

/// osquery's context JSON for `ctx` on `columns`.
pub fn context_json(columns: &[Column], ctx: &QueryContext) -> String {
    let column = |i: usize| columns.get(i);
    // Grouped in column order, as osquery writes them.
    let mut constraints: Vec<_> = ctx.constraints.iter().collect();
    constraints.sort_by_key(|k| k.column);
    context::Context {
        constraints: constraints
            .into_iter()
            .filter_map(|k| {
                Some(context::Constraint {
                    column: column(k.column)?.name.to_owned(),
                    op: context_op(k.op),
                    expr: crate::sql::text_of(&k.value),
                })
            })
            .collect(),
        columns_used: columns
            .iter()
            .enumerate()
            .filter(|(i, _)| ctx.uses(*i))
            .map(|(_, c)| c.name.to_owned())
            .collect(),
        affinity: columns
            .iter()
            .map(|c| (c.name.to_owned(), c.ty.sql_name().to_owned()))
            .collect(),
    }
    .to_json()
}

/// A returned row in column order: values typed by their column, missing ones NULL.
pub fn typed_row(
    columns: &[Column],
    row: &std::collections::BTreeMap<String, String>,
) -> Vec<Value> {
    columns
        .iter()
        .map(|c| match row.get(c.name) {
            None => Value::Null,
            Some(v) => match c.ty {
                ColumnType::Integer | ColumnType::BigInt => v
                    .trim()
                    .parse::<i64>()
                    .map_or_else(|_| Value::Text(v.clone()), Value::Integer),
                ColumnType::Double => v
                    .trim()
                    .parse::<f64>()
                    .map_or_else(|_| Value::Text(v.clone()), Value::Real),
                ColumnType::Text => Value::Text(v.clone()),
            },
        })
        .collect()
}

impl Table for ExtensionTable {
    fn name(&self) -> &'static str {
        self.name
    }

    fn columns(&self) -> &'static [Column] {
        self.columns
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let request = std::collections::BTreeMap::from([
            ("action".to_owned(), "generate".to_owned()),
            ("context".to_owned(), context_json(self.columns, ctx)),
        ]);
        let rows = self.source.generate(self.name, request)?;
        let columns = self.columns;
        Ok(Box::new(
            rows.into_iter()
                .map(move |r| Ok(typed_row(columns, &r)))
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }
}
