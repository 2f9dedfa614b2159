//! `mounts`: mounted filesystems from `/proc/self/mounts`, with statfs(2) sizes, in osquery's
//! columns. A filesystem that statfs cannot reach keeps its row, with NULL sizes.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{text, uint},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("device", Text),
    col("device_alias", Text),
    col("path", Text),
    col("type", Text),
    col("blocks_size", BigInt),
    col("blocks", BigInt),
    col("blocks_free", BigInt),
    col("blocks_available", BigInt),
    col("inodes", BigInt),
    col("inodes_free", BigInt),
    col("flags", Text),
];

#[derive(Debug)]
pub struct Mounts;

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub device: String,
    pub path: String,
    pub fstype: String,
    pub options: String,
}

use crate::sys::mountinfo::unescape;

/// Entries of a mounts file (fstab format); lines with fewer than four fields are skipped.
pub fn parse_mounts(s: &str) -> Vec<MountEntry> {
    s.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            Some(MountEntry {
                device: unescape(f.next()?),
                path: unescape(f.next()?),
                fstype: unescape(f.next()?),
                options: unescape(f.next()?),
            })
        })
        .collect()
}

const DEVICE_ALIAS: usize = 1;
const PATH: usize = 2;
/// blocks_size ..= inodes_free: the columns that need statfs(2).
const SIZE_COLUMNS: std::ops::RangeInclusive<usize> = 4..=9;

/// The work a query needs: which mount points (`path = ...`; `None` = all), and whether to
/// call statfs and resolve device aliases at all. statfs on a dead network mount can block,
/// so `SELECT path, type FROM mounts` must not call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub paths: Option<Vec<String>>,
    pub sizes: bool,
    pub alias: bool,
}

pub fn plan(ctx: &QueryContext) -> Plan {
    let asked = ctx.equals(PATH);
    let paths = (!asked.is_empty()).then(|| {
        asked
            .into_iter()
            .filter_map(|v| match v {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    });
    Plan {
        paths,
        sizes: SIZE_COLUMNS.clone().any(|c| ctx.uses(c)),
        alias: ctx.uses(DEVICE_ALIAS),
    }
}

fn row(m: MountEntry, plan: &Plan) -> Vec<Value> {
    // osquery resolves device paths such as /dev/disk/by-uuid/... to the real node.
    let alias = if plan.alias && m.device.starts_with('/') {
        std::fs::canonicalize(&m.device)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| m.device.clone())
    } else {
        m.device.clone()
    };
    let stat = if plan.sizes {
        rustix::fs::statfs(Path::new(&m.path)).ok()
    } else {
        None
    };
    let sizes = match stat {
        Some(st) => {
            let bsize = u64::try_from(st.f_bsize).unwrap_or(0);
            [
                uint(bsize),
                uint(st.f_blocks),
                uint(st.f_bfree),
                uint(st.f_bavail),
                uint(st.f_files),
                uint(st.f_ffree),
            ]
        }
        // Unreachable, or not asked for (then SQLite never reads these).
        None => std::array::from_fn(|_| Value::Null),
    };
    let mut r = vec![text(m.device), text(alias), text(m.path), text(m.fstype)];
    r.extend(sizes);
    r.push(text(m.options));
    r
}

impl Table for Mounts {
    fn name(&self) -> &'static str {
        "mounts"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let s = read_text(Path::new("/proc/self/mounts"))
            .ok_or_else(|| "cannot read /proc/self/mounts".to_owned())?;
        let plan = plan(ctx);
        let entries = parse_mounts(&s).into_iter().filter({
            let paths = plan.paths.clone();
            move |m| paths.as_ref().is_none_or(|p| p.contains(&m.path))
        });
        // Lazy: statfs runs only for the rows SQLite pulls.
        Ok(Box::new(entries.map(move |m| Ok(row(m, &plan)))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        flags::Flags,
        sql::{Engine, TableEnv},
    };

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape(r"a\134b\011c\012"), "a\\b\tc\n");
        assert_eq!(unescape(r"trail\04"), r"trail\04");
        assert_eq!(unescape(r"\999x"), r"\999x");
        assert_eq!(unescape(r"\+12"), r"\+12");
        assert_eq!(unescape(r"\400"), r"\400");
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape(r"\377"), "\u{fffd}");
    }

    #[test]
    fn mount_lines() {
        let got = parse_mounts(
            "/dev/sda1 / ext4 rw,relatime 0 0\nshort line\n\n\
             server:/x /mnt/a\\040b nfs4 ro 0 0\n",
        );
        assert_eq!(
            got,
            vec![
                MountEntry {
                    device: "/dev/sda1".into(),
                    path: "/".into(),
                    fstype: "ext4".into(),
                    options: "rw,relatime".into(),
                },
                MountEntry {
                    device: "server:/x".into(),
                    path: "/mnt/a b".into(),
                    fstype: "nfs4".into(),
                    options: "ro".into(),
                },
            ]
        );
    }

    #[test]
    fn unreachable_mount_keeps_its_row() {
        let all = plan(&QueryContext::default());
        assert_eq!(
            all,
            Plan {
                paths: None,
                sizes: true,
                alias: true
            }
        );
        let r = row(
            MountEntry {
                device: "none".into(),
                path: "/nonexistent/osprey-test".into(),
                fstype: "tmpfs".into(),
                options: "rw".into(),
            },
            &all,
        );
        assert_eq!(
            r[..4].to_vec(),
            vec![
                text("none"),
                text("none"),
                text("/nonexistent/osprey-test"),
                text("tmpfs")
            ]
        );
        assert!(r[4..10].iter().all(|v| *v == Value::Null), "{r:?}");
        assert_eq!(r[10], text("rw"));
    }

    #[test]
    fn plan_follows_the_statement() {
        use crate::sql::vtab::Constraint;
        let ctx = |used: u64, paths: &[&str]| QueryContext {
            constraints: paths
                .iter()
                .map(|p| Constraint {
                    column: PATH,
                    op: crate::sql::vtab::Op::Eq,
                    value: text(*p),
                })
                .collect(),
            columns_used: Some(used),
        };
        // path, type: no statfs, no alias resolution.
        assert_eq!(
            plan(&ctx(0b1100, &[])),
            Plan {
                paths: None,
                sizes: false,
                alias: false
            }
        );
        // blocks_free where path = '/'.
        assert_eq!(
            plan(&ctx(1 << 6 | 1 << 2, &["/"])),
            Plan {
                paths: Some(vec!["/".to_owned()]),
                sizes: true,
                alias: false
            }
        );
    }

    #[test]
    fn root_is_listed_with_its_type() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query("SELECT type, flags FROM mounts WHERE path = '/'")
            .expect("query");
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
        let want: Vec<Vec<Value>> = mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.get(1) == Some(&"/")).then(|| vec![text(f[2]), text(f[3])])
            })
            .collect();
        assert!(!want.is_empty(), "no / in /proc/self/mounts");
        assert_eq!(rs.rows, want);
        let root = rustix::fs::statfs("/").expect("statfs /");
        let sizes = engine
            .query("SELECT blocks_size, blocks FROM mounts WHERE path = '/'")
            .expect("query");
        assert_eq!(
            sizes.rows.last().cloned(),
            Some(vec![
                uint(u64::try_from(root.f_bsize).expect("bsize")),
                uint(root.f_blocks)
            ])
        );
    }
}
