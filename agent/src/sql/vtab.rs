//! The one generic SQLite virtual-table adapter. All `unsafe` for SQL lives here; a table
//! only implements the safe [`Table`] trait.
//!
//! Planning: every usable constraint (=, <, <=, >, >=, LIKE, GLOB, !=) is passed to the table
//! as a [`Constraint`] in [`QueryContext`]. SQLite still re-checks each one (`omit` stays
//! false), so a table may use a constraint to narrow its work, or ignore it, and the result is
//! correct either way. Rows are pulled one at a time, so a `LIMIT` stops the scan early.

use std::{borrow::Cow, ffi::CString, os::raw::c_int, sync::Arc};

use rusqlite::{
    Connection, ffi,
    types::Value,
    vtab::{
        Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection,
        VTabCursor,
    },
};

/// SQLite type of a column, with osquery's type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    BigInt,
    Double,
}

impl ColumnType {
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Text => "TEXT",
            Self::Integer => "INTEGER",
            Self::BigInt => "BIGINT",
            Self::Double => "DOUBLE",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// Not shown by `SELECT *` (osquery's "hidden").
    pub hidden: bool,
    /// Must be constrained with `=` (osquery's "required"), e.g. `extended_attributes.path`.
    pub required: bool,
}

pub const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        hidden: false,
        required: false,
    }
}

pub const fn hidden(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        hidden: true,
        required: false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
    Ne,
    Like,
    Glob,
}

impl Op {
    fn from_sqlite(op: IndexConstraintOp) -> Option<Self> {
        use IndexConstraintOp::*;
        Some(match op {
            SQLITE_INDEX_CONSTRAINT_EQ | SQLITE_INDEX_CONSTRAINT_IS => Self::Eq,
            SQLITE_INDEX_CONSTRAINT_GT => Self::Gt,
            SQLITE_INDEX_CONSTRAINT_GE => Self::Ge,
            SQLITE_INDEX_CONSTRAINT_LT => Self::Lt,
            SQLITE_INDEX_CONSTRAINT_LE => Self::Le,
            SQLITE_INDEX_CONSTRAINT_NE | SQLITE_INDEX_CONSTRAINT_ISNOT => Self::Ne,
            SQLITE_INDEX_CONSTRAINT_LIKE => Self::Like,
            SQLITE_INDEX_CONSTRAINT_GLOB => Self::Glob,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Option<Self> {
        [
            Self::Eq,
            Self::Gt,
            Self::Ge,
            Self::Lt,
            Self::Le,
            Self::Ne,
            Self::Like,
            Self::Glob,
        ]
        .into_iter()
        .find(|o| o.code() == c)
    }
}

#[derive(Clone, Debug)]
pub struct Constraint {
    pub column: usize,
    pub op: Op,
    pub value: Value,
}

/// What the query asks of a table.
#[derive(Clone, Debug, Default)]
pub struct QueryContext {
    pub constraints: Vec<Constraint>,
    /// The columns the statement reads (SQLite's `colUsed`: bit i = column i, bit 63 = any
    /// column from 63 on); `None` = unknown, treat every column as used. A table may leave an
    /// unused column NULL and skip the work of computing it.
    pub columns_used: Option<u64>,
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Real(f) => Some(*f as i64),
        Value::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

impl QueryContext {
    /// Whether the statement reads `column` (true when unknown).
    pub fn uses(&self, column: usize) -> bool {
        self.columns_used
            .is_none_or(|mask| mask & (1u64 << column.min(63)) != 0)
    }

    /// The inclusive integer range that the constraints on `column` allow.
    pub fn int_range(&self, column: usize) -> (i64, i64) {
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        for c in self.constraints.iter().filter(|c| c.column == column) {
            let Some(v) = as_i64(&c.value) else { continue };
            match c.op {
                Op::Eq => {
                    lo = lo.max(v);
                    hi = hi.min(v);
                }
                Op::Gt => lo = lo.max(v.saturating_add(1)),
                Op::Ge => lo = lo.max(v),
                Op::Lt => hi = hi.min(v.saturating_sub(1)),
                Op::Le => hi = hi.min(v),
                _ => {}
            }
        }
        (lo, hi)
    }

    /// The values `column` must equal, if an `=` constraint names it.
    /// The text values `column` is asked to equal (a folder, a path…).
    pub fn equal_texts(&self, column: usize) -> Vec<String> {
        self.equals(column)
            .into_iter()
            .filter_map(|v| match v {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn equals(&self, column: usize) -> Vec<&Value> {
        self.constraints
            .iter()
            .filter(|c| c.column == column && c.op == Op::Eq)
            .map(|c| &c.value)
            .collect()
    }
}

pub type Row = Vec<Value>;
pub type Rows = Box<dyn Iterator<Item = Result<Row, String>> + Send>;

/// A table, safe to implement.
pub trait Table: Send + Sync {
    fn name(&self) -> &'static str;
    fn columns(&self) -> &'static [Column];
    /// The rows for `ctx`; SQLite filters them again, so extra rows are allowed.
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String>;
    /// Relative cost of a scan under these constraint columns; lower is preferred.
    fn cost(&self, constrained_columns: &[(usize, Op)]) -> f64 {
        let _ = constrained_columns;
        1_000_000.0
    }
}

/// `CREATE TABLE` text for a table's columns.
pub fn schema_sql(t: &dyn Table) -> String {
    let cols: Vec<String> = t
        .columns()
        .iter()
        .map(|c| {
            format!(
                "\"{}\" {}{}",
                c.name,
                c.ty.sql_name(),
                if c.hidden { " HIDDEN" } else { "" }
            )
        })
        .collect();
    format!("CREATE TABLE {}({})", t.name(), cols.join(", "))
}

#[repr(C)]
struct TableVTab {
    /// Must come first: SQLite sees this struct as a `sqlite3_vtab`.
    base: ffi::sqlite3_vtab,
    table: Arc<dyn Table>,
}

// SAFETY: TableVTab is #[repr(C)] with `sqlite3_vtab` as its first field, as rusqlite's
// `VTab` contract requires; its methods do not touch `base`.
unsafe impl<'vtab> VTab<'vtab> for TableVTab {
    type Aux = Arc<dyn Table>;
    type Cursor = TableCursor;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Self::Aux>,
        _module: &[u8],
        _database: &[u8],
        _table: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, std::ffi::CStr>, Self)> {
        let table = aux.cloned().ok_or_else(|| {
            rusqlite::Error::ModuleError("table registered without its implementation".into())
        })?;
        let sql = CString::new(schema_sql(table.as_ref()))
            .map_err(|e| rusqlite::Error::ModuleError(e.to_string()))?;
        db.config(VTabConfig::DirectOnly)?;
        Ok((
            Cow::Owned(sql),
            Self {
                base: ffi::sqlite3_vtab::default(),
                table,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let columns = self.table.columns();
        let mut plan = String::new();
        let mut used = Vec::new();
        let mut n = 0;
        // A table compares text bytewise; a constraint under another collation (`= 'X'
        // COLLATE NOCASE`) is left to SQLite alone, or the table could drop rows it accepts.
        let bytewise: Vec<bool> = (0..info.constraints().count())
            .map(|i| {
                info.collation(i)
                    .map_or(true, |c| c.eq_ignore_ascii_case("BINARY"))
            })
            .collect();
        for (i, (c, mut usage)) in info.constraints_and_usages().enumerate() {
            if !c.is_usable() || !bytewise.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(op) = Op::from_sqlite(c.operator()) else {
                continue;
            };
            let Ok(column) = usize::try_from(c.column()) else {
                continue;
            };
            if column >= columns.len() {
                continue;
            }
            n += 1;
            usage.set_argv_index(n);
            usage.set_omit(false);
            plan.push_str(&format!("{column}:{};", op.code()));
            used.push((column, op));
        }
        // A required column without `=` cannot be generated.
        for (i, c) in columns.iter().enumerate() {
            if c.required && !used.iter().any(|(col, op)| *col == i && *op == Op::Eq) {
                return Ok(false);
            }
        }
        // The columns the statement reads travel with the plan, as `u<mask>`.
        plan.push_str(&format!("u{};", info.col_used()));
        info.set_idx_str(&plan);
        info.set_estimated_cost(self.table.cost(&used));
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<TableCursor> {
        Ok(TableCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            table: self.table.clone(),
            rows: None,
            row: None,
            rowid: 0,
        })
    }
}

#[repr(C)]
struct TableCursor {
    /// Must come first: SQLite sees this struct as a `sqlite3_vtab_cursor`.
    base: ffi::sqlite3_vtab_cursor,
    table: Arc<dyn Table>,
    rows: Option<Rows>,
    row: Option<Row>,
    rowid: i64,
}

impl TableCursor {
    fn advance(&mut self) -> rusqlite::Result<()> {
        self.row = match self.rows.as_mut().and_then(Iterator::next) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                return Err(rusqlite::Error::ModuleError(format!(
                    "{}: {e}",
                    self.table.name()
                )));
            }
        };
        self.rowid += 1;
        Ok(())
    }
}

// SAFETY: TableCursor is #[repr(C)] with `sqlite3_vtab_cursor` first, as required.
unsafe impl VTabCursor for TableCursor {
    fn filter(
        &mut self,
        _idx_num: c_int,
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let mut ctx = QueryContext::default();
        let mut i = 0;
        for part in idx_str.unwrap_or("").split(';').filter(|p| !p.is_empty()) {
            if let Some(mask) = part.strip_prefix('u') {
                let mask = mask
                    .parse::<u64>()
                    .map_err(|_| rusqlite::Error::ModuleError(format!("bad plan {part:?}")))?;
                ctx.columns_used = Some(mask);
                continue;
            }
            let (column, op) = part
                .split_once(':')
                .and_then(|(c, o)| {
                    Some((
                        c.parse::<usize>().ok()?,
                        Op::from_code(o.parse::<u8>().ok()?)?,
                    ))
                })
                .ok_or_else(|| rusqlite::Error::ModuleError(format!("bad plan {part:?}")))?;
            let value: Value = args.get(i)?;
            i += 1;
            ctx.constraints.push(Constraint { column, op, value });
        }
        self.rows =
            Some(self.table.generate(&ctx).map_err(|e| {
                rusqlite::Error::ModuleError(format!("{}: {e}", self.table.name()))
            })?);
        self.rowid = 0;
        self.advance()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.advance()
    }

    fn eof(&self) -> bool {
        self.row.is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let v = usize::try_from(i)
            .ok()
            .and_then(|i| self.row.as_ref().and_then(|r| r.get(i)))
            .cloned()
            .unwrap_or(Value::Null);
        ctx.set_result(&v)
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.rowid)
    }
}

/// Makes `table` queryable on `conn` under its name.
pub fn register(conn: &Connection, table: Arc<dyn Table>) -> rusqlite::Result<()> {
    const MODULE: Module<'static, TableVTab> = Module::eponymous_only_module();
    let name = table.name();
    conn.create_module(name, &MODULE, Some(table))
}

/// True when `sql` ends a complete SQL statement (SQLite's own tokenizer decides, so a `;`
/// inside a string literal does not count).
pub fn is_complete_statement(sql: &str) -> bool {
    let Ok(c) = CString::new(sql) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; sqlite3_complete
    // only reads it.
    unsafe { ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A table that records what each scan asked for.
    struct Recorder {
        seen: Mutex<Vec<QueryContext>>,
    }

    impl Table for Recorder {
        fn name(&self) -> &'static str {
            "rec"
        }
        fn columns(&self) -> &'static [Column] {
            const C: &[Column] = &[
                col("a", ColumnType::Integer),
                col("b", ColumnType::Text),
                hidden("c", ColumnType::Integer),
            ];
            C
        }
        fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
            self.seen.lock().expect("lock").push(ctx.clone());
            let rows = (1..=3).map(|i| {
                Ok(vec![
                    Value::Integer(i),
                    Value::Text(format!("r{i}")),
                    Value::Integer(i * 10),
                ])
            });
            Ok(Box::new(rows.collect::<Vec<_>>().into_iter()))
        }
    }

    fn run(sql: &str) -> (Vec<Vec<Value>>, Vec<QueryContext>) {
        let t = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
        });
        let conn = Connection::open_in_memory().expect("sqlite");
        register(&conn, t.clone()).expect("register");
        let mut stmt = conn.prepare(sql).expect("prepare");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .expect("query")
            .collect::<Result<Vec<Vec<Value>>, _>>()
            .expect("rows");
        let seen = t.seen.lock().expect("lock").clone();
        (rows, seen)
    }

    #[test]
    fn constraints_and_used_columns_reach_the_table() {
        let (rows, seen) = run("SELECT b FROM rec WHERE c >= 20 AND a < 3");
        assert_eq!(rows, vec![vec![Value::Text("r2".into())]]);
        assert_eq!(seen.len(), 1);
        let got: Vec<(usize, Op, Value)> = seen[0]
            .constraints
            .iter()
            .map(|c| (c.column, c.op, c.value.clone()))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&(2, Op::Ge, Value::Integer(20))), "{got:?}");
        assert!(got.contains(&(0, Op::Lt, Value::Integer(3))), "{got:?}");
        assert_eq!(seen[0].columns_used, Some(0b111));
        assert_eq!(seen[0].int_range(2), (20, i64::MAX));
        assert_eq!(seen[0].int_range(0), (i64::MIN, 2));
    }

    #[test]
    fn constraints_under_another_collation_stay_with_sqlite() {
        let (rows, seen) = run("SELECT a FROM rec WHERE b = 'R2' COLLATE NOCASE");
        assert_eq!(rows, vec![vec![Value::Integer(2)]]);
        assert!(seen[0].constraints.is_empty(), "{:?}", seen[0].constraints);
        let (rows, seen) = run("SELECT a FROM rec WHERE b = 'r2'");
        assert_eq!(rows, vec![vec![Value::Integer(2)]]);
        assert_eq!(seen[0].equals(1), vec![&Value::Text("r2".into())]);
    }

    #[test]
    fn used_columns_follow_the_statement() {
        let (_, seen) = run("SELECT b FROM rec");
        assert_eq!(seen[0].columns_used, Some(0b010));
        assert!(seen[0].uses(1) && !seen[0].uses(0) && !seen[0].uses(2));
        let (rows, seen) = run("SELECT count(*) FROM rec");
        assert_eq!(rows, vec![vec![Value::Integer(3)]]);
        assert_eq!(seen[0].columns_used, Some(0));
        // `SELECT *` leaves hidden columns out.
        let (_, seen) = run("SELECT * FROM rec");
        assert_eq!(seen[0].columns_used, Some(0b011));
        // Unknown (a direct `generate` call): everything counts as used.
        let ctx = QueryContext::default();
        assert!(ctx.uses(0) && ctx.uses(200));
        let high = QueryContext {
            columns_used: Some(1 << 63),
            ..Default::default()
        };
        assert!(high.uses(63) && high.uses(100) && !high.uses(62));
    }
}
