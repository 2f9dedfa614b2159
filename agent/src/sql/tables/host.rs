//! Lenient readers for the host's own files (`/proc`, `/etc`, `/sys`), shared by the state
//! tables. Host files are input like any other: an odd line is skipped, a missing file is
//! "unknown", and nothing here panics.

use std::path::{Path, PathBuf};

use rusqlite::types::Value;

use crate::sql::vtab::QueryContext;

/// The file's text, `None` when it cannot be read. Bytes that are not UTF-8 are replaced, not
/// refused: a stray byte in a GECOS field must not hide the whole table.
pub fn read_text(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The file's first line, trimmed; `None` when unreadable or empty.
pub fn read_trimmed(path: &Path) -> Option<String> {
    let s = read_text(path)?;
    let s = s.lines().next().unwrap_or("").trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A symbolic link's target as text; `None` when it cannot be read (gone, or not permitted).
pub fn read_link(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Integer value of a constraint value, the way SQLite's INTEGER affinity would see it.
pub fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
        Value::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// `KEY=value` lines as in os-release(5): quotes removed, comments and odd lines skipped.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            Some((k.to_owned(), unquote(v.trim())))
        })
        .collect()
}

/// Removes one level of shell-style quotes and backslash escapes.
fn unquote(v: &str) -> String {
    let inner = match v.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q && v.len() >= 2 => &v[1..v.len() - 1],
        _ => v,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Where a table reads host files from: the root of the process that `pid_with_namespace`
/// names (osquery's way to look inside a container), or `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsRoot {
    /// The `pid_with_namespace` value to report: the pid asked for, or 0.
    pub pid: i64,
    pub root: PathBuf,
}

impl NsRoot {
    /// `path` (absolute) under this root.
    pub fn join(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The mount namespace id (the number in `mnt:[N]`) of the process whose files are read.
    pub fn mount_namespace_id(&self) -> Option<String> {
        let link = if self.pid > 0 {
            format!("/proc/{}/ns/mnt", self.pid)
        } else {
            "/proc/self/ns/mnt".to_owned()
        };
        let target = read_link(Path::new(&link))?;
        let id = target.strip_prefix("mnt:[")?.strip_suffix(']')?;
        Some(id.to_owned())
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
    use super::*;
    use crate::sql::vtab::{Constraint, Op};

    #[test]
    fn env_file_parsing() {
        let text = "# comment\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION='12 (bookworm)'\n\
                    broken line\n=novalue\nBAD KEY=x\nESC=\"a\\\"b\"\nEMPTY=\nQ=\"\n";
        let got = parse_env_file(text);
        let want: Vec<(String, String)> = [
            ("NAME", "Debian GNU/Linux"),
            ("ID", "debian"),
            ("VERSION", "12 (bookworm)"),
            ("ESC", "a\"b"),
            ("EMPTY", ""),
            ("Q", "\""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

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
            let _ = parse_env_file(t);
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

    #[test]
    fn own_mount_namespace_id_is_a_number() {
        let root = NsRoot {
            pid: 0,
            root: "/".into(),
        };
        let id = root
            .mount_namespace_id()
            .expect("readable /proc/self/ns/mnt");
        assert!(id.parse::<u64>().is_ok(), "{id}");
    }
}
