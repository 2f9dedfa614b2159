//! Constraint helpers shared by the state tables: `pid_with_namespace` roots and integer
//! constraint values.

use std::path::PathBuf;

use rusqlite::types::Value;

use crate::{sql::vtab::QueryContext, sys::procfs::NsRoot};

/// Integer value of a constraint value, the way SQLite's INTEGER affinity would see it.
pub fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
        Value::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// The roots a query asks for through `= ` constraints on the `pid_with_namespace` column
/// `column`; `/` when there is none. A value that is not a positive pid selects nothing.
pub fn ns_roots(ctx: &QueryContext, column: usize) -> Vec<NsRoot> {
    let Some(pids) = wanted_pids(ctx, column) else {
        return vec![NsRoot {
            pid: 0,
            root: PathBuf::from("/"),
        }];
    };
    pids.into_iter()
        .map(|pid| NsRoot {
            pid,
            root: PathBuf::from(format!("/proc/{pid}/root")),
        })
        .collect()
}

/// The pids a query asks for with `= N` on the pid column `column`; `None` means every
/// process.
pub fn wanted_pids(ctx: &QueryContext, column: usize) -> Option<Vec<i64>> {
    let asked = ctx.equals(column);
    if asked.is_empty() {
        return None;
    }
    // A value that is no integer matches no pid; SQLite re-checks the rest.
    let mut pids: Vec<i64> = asked
        .into_iter()
        .filter_map(value_i64)
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Some(pids)
}

/// Every pid under `proc_root`, in order.
pub fn all_pids(proc_root: &std::path::Path) -> Result<Vec<i64>, String> {
    let dir = std::fs::read_dir(proc_root)
        .map_err(|e| format!("cannot list {}: {e}", proc_root.display()))?;
    let mut pids: Vec<i64> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The pids `ctx` asks for on the pid column `column` (and false), or every process under
/// `proc_root` (and true).
pub fn pids_for(
    ctx: &QueryContext,
    column: usize,
    proc_root: &std::path::Path,
) -> Result<(Vec<i64>, bool), String> {
    match wanted_pids(ctx, column) {
        Some(p) => Ok((p, false)),
        None => Ok((all_pids(proc_root)?, true)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sql::vtab::{Constraint, Op};

    #[test]
    fn ns_roots_from_constraints() {
        let mut ctx = QueryContext::default();
        assert_eq!(
            ns_roots(&ctx, 3),
            vec![NsRoot {
                pid: 0,
                root: "/".into()
            }]
        );
        for v in [
            Value::Integer(42),
            Value::Text("42".into()),
            Value::Integer(-1),
        ] {
            ctx.constraints.push(Constraint {
                column: 3,
                op: Op::Eq,
                value: v,
            });
        }
        let roots = ns_roots(&ctx, 3);
        assert_eq!(
            roots,
            vec![NsRoot {
                pid: 42,
                root: "/proc/42/root".into()
            }]
        );
        assert_eq!(
            roots[0].join("/etc/passwd"),
            Path::new("/proc/42/root/etc/passwd")
        );
    }
}
