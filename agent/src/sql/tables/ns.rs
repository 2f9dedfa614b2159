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
    let asked = ctx.equals(column);
    if asked.is_empty() {
        return vec![NsRoot {
            pid: 0,
            root: PathBuf::from("/"),
        }];
    }
    let mut pids: Vec<i64> = asked
        .into_iter()
        .filter_map(value_i64)
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .map(|pid| NsRoot {
            pid,
            root: PathBuf::from(format!("/proc/{pid}/root")),
        })
        .collect()
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

    /// Every parser of host files, fed truncated and byte-mutated versions of real-looking
    /// input: none may panic (the results are checked by each table's own tests).
    #[test]
    fn parsers_never_panic_on_mutated_input() {
        use crate::sql::tables::{
            groups::parse_group, kernel_info::split_cmdline, mounts::parse_mounts,
            os_version::version_parts, processes, system_info, users::parse_passwd,
        };
        let seeds: [&str; 6] = [
            "4242 (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 34 0 0 20 -5 3 0 98765 1 2",
            "Uid:\t1 2 3 4\nGid:\t5 6 7 8\nVmRSS:\t 3 kB\nread_bytes: 9\n0::/a:b\n",
            "root:x:0:0:root:/root:/bin/bash\nsudo:x:27:alice\n",
            "/dev/sda1 /mnt/a\\040b ext4 rw,relatime 0 0\n",
            "processor\t: 0\nphysical id\t: 0\ncore id\t: 1\nMemTotal: 12 kB\n",
            "NAME=\"Debian\"\nVERSION_ID=\"12.1\"\nBOOT_IMAGE=/v root=/dev/x ro\n",
        ];
        let specials = [
            b':', b'\n', b'(', b')', b'\\', 0, 0xff, b' ', b'=', b'"', b'-', b'9',
        ];
        let run = |t: &str| {
            let _ = processes::parse_stat(t);
            let _ = processes::parse_status(t);
            let _ = processes::parse_io(t);
            let _ = processes::parse_cgroup(t);
            let _ = processes::parse_cmdline(t.as_bytes());
            let _ = parse_passwd(t);
            let _ = parse_group(t);
            let _ = parse_mounts(t);
            let _ = system_info::parse_cpuinfo(t);
            let _ = system_info::parse_mem_total(t);
            let _ = crate::sys::procfs::parse_env_file(t);
            let _ = split_cmdline(t);
            let _ = version_parts(t);
        };
        let mut cases = 0;
        for seed in seeds {
            let b = seed.as_bytes();
            for i in 0..=b.len() {
                run(&String::from_utf8_lossy(&b[..i]));
                for &c in &specials {
                    let mut m = b.to_vec();
                    if let Some(x) = m.get_mut(i) {
                        *x = c;
                    } else {
                        m.push(c);
                    }
                    run(&String::from_utf8_lossy(&m));
                    cases += 1;
                }
            }
        }
        assert!(cases > 1000, "{cases}");
    }
}
