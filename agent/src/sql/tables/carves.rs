//! `carves`: osquery's file carver. `SELECT * FROM carves WHERE path LIKE '/etc/%.conf' AND
//! carve = 1` starts a carve of the regular files that match (`=` paths, or `LIKE` patterns:
//! `%` any run of characters, `/` included, `_` one character), archived as tar and uploaded
//! in blocks by the remote API; its rows (status STARTING, `carve` 1) come back at once.
//! Without `carve = 1` the table lists the carves made so far, one row per path.

use std::path::{Path, PathBuf};

use rusqlite::types::Value;

use crate::sql::{
    Carve, TableEnv,
    tables::util::{int, text, uint},
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("time", BigInt),
    col("sha256", Text),
    col("size", BigInt),
    col("path", Text),
    col("status", Text),
    col("carve_guid", Text),
    col("request_id", Text),
    col("carve", Integer),
];
const PATH: usize = 3;
const CARVE: usize = 7;

/// Most files one carve takes (a pattern that matches more is an error).
const MAX_FILES: usize = 10_000;
/// Most bytes one carve takes.
const MAX_BYTES: u64 = 4 << 30;
/// Most directory entries a pattern's walk looks at.
const MAX_WALK: usize = 200_000;

#[derive(Debug)]
pub struct Carves {
    env: TableEnv,
}

impl Carves {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

/// SQLite's LIKE (ASCII case-insensitive, `%` any run, `_` one character).
pub fn like(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    // The classic two-pointer match with the last `%` to fall back to.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == '_' || p[i].eq_ignore_ascii_case(&s[j])) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '%' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '%' {
        i += 1;
    }
    i == p.len()
}

/// The regular files matching a `LIKE` pattern: a walk from the folder its literal part
/// names.
fn expand_like(pattern: &str, out: &mut Vec<String>) -> Result<(), String> {
    let literal = pattern.find(['%', '_']).map_or(pattern, |i| &pattern[..i]);
    let Some(slash) = literal.rfind('/').filter(|_| pattern.starts_with('/')) else {
        return Err(format!("carve path pattern {pattern:?} is not absolute"));
    };
    let root = PathBuf::from(if slash == 0 { "/" } else { &literal[..slash] });
    let mut stack = vec![root];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK {
                return Err(format!(
                    "carve path pattern {pattern:?} walks more than {MAX_WALK} entries"
                ));
            }
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            let s = p.to_string_lossy();
            if ft.is_dir() {
                // Only folders the pattern can still match below.
                if like(&format!("{}%", literal_prefix_of(pattern, &s)), &s) {
                    stack.push(p.clone());
                }
            } else if ft.is_file() && like(pattern, &s) {
                out.push(s.into_owned());
                if out.len() > MAX_FILES {
                    return Err(format!("a carve takes at most {MAX_FILES} files"));
                }
            }
        }
    }
    Ok(())
}

/// The part of `pattern` a folder `dir` must start with to hold matches: the literal prefix,
/// cut to the folder's length.
fn literal_prefix_of<'a>(pattern: &'a str, dir: &str) -> &'a str {
    let literal = pattern.find(['%', '_']).map_or(pattern, |i| &pattern[..i]);
    let n = literal.len().min(dir.len());
    literal.get(..n).unwrap_or(literal)
}

/// The files a `carve = 1` query names.
pub fn requested_paths(ctx: &QueryContext) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in ctx.constraints.iter().filter(|c| c.column == PATH) {
        let Value::Text(v) = &c.value else { continue };
        match c.op {
            Op::Eq if Path::new(v).is_file() => out.push(v.clone()),
            Op::Like => expand_like(v, &mut out)?,
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    // Files whose size says more than the carve limit (e.g. /proc/kcore) are refused whole.
    let total: u64 = out
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if total > MAX_BYTES {
        return Err(format!(
            "a carve takes at most {MAX_BYTES} bytes; these {} file(s) have {total}",
            out.len()
        ));
    }
    Ok(out)
}

fn rows_of(c: &Carve, carve: bool) -> Vec<Result<Vec<Value>, String>> {
    c.paths
        .iter()
        .map(|p| {
            Ok(vec![
                uint(c.time),
                text(c.sha256.clone()),
                uint(c.size),
                text(p.clone()),
                text(c.status.clone()),
                text(c.carve_guid.clone()),
                text(c.request_id.clone()),
                int(i64::from(carve)),
            ])
        })
        .collect()
}

impl Table for Carves {
    fn name(&self) -> &'static str {
        "carves"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let carve = ctx
            .equals(CARVE)
            .iter()
            .any(|v| matches!(v, Value::Integer(1)) || matches!(v, Value::Text(t) if t == "1"));
        if carve {
            let Some(carver) = &self.env.carver else {
                return Err("carving is off here: carves start from distributed queries of `osprey daemon` with --disable_carver=false and the TLS remote API".into());
            };
            let paths = requested_paths(ctx)?;
            if paths.is_empty() {
                return Err(
                    "carve = 1 needs a path (= or LIKE) that names at least one regular file"
                        .into(),
                );
            }
            let started = carver.start(paths)?;
            return Ok(Box::new(rows_of(&started, true).into_iter()));
        }
        let carves = match (&self.env.carver, &self.env.store) {
            (Some(c), _) => c.list(),
            (None, Some(store)) => crate::sql::stored_carves(store),
            (None, None) => Vec::new(),
        };
        let rows: Vec<_> = carves.iter().flat_map(|c| rows_of(c, false)).collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_sqlites() {
        assert!(like("/etc/%.conf", "/etc/a/b.conf"));
        assert!(like("/ETC/x_", "/etc/xy"));
        assert!(!like("/etc/x_", "/etc/x"));
        assert!(like("%", ""));
        assert!(!like("/etc/%.conf", "/etc/a.confx"));
    }

    #[test]
    fn a_pattern_takes_the_regular_files_it_matches() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        for f in ["a.log", "b.txt", "sub/c.log", "sub/deeper/d.log"] {
            std::fs::write(d.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink(d.join("a.log"), d.join("link.log")).unwrap();
        let mut out = Vec::new();
        expand_like(&format!("{}/%.log", d.display()), &mut out).unwrap();
        out.sort();
        let rel: Vec<String> = out
            .iter()
            .map(|p| p.strip_prefix(&d.display().to_string()).unwrap().to_owned())
            .collect();
        assert_eq!(rel, ["/a.log", "/sub/c.log", "/sub/deeper/d.log"]);
        let mut out = Vec::new();
        assert!(expand_like("relative/%", &mut out).is_err());
    }
}
