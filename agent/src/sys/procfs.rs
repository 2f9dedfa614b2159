//! Lenient readers for the host's own files (`/proc`, `/etc`, `/sys`), shared by the state
//! tables. Host files are input like any other: an odd line is skipped, a missing file is
//! "unknown", and nothing here panics.

use std::path::{Path, PathBuf};

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

/// Whether process `pid` exists (a zombie still does, until it is reaped).
pub fn process_exists(pid: u32) -> bool {
    pid > 0 && Path::new("/proc").join(pid.to_string()).exists()
}

/// A symbolic link's target as text; `None` when it cannot be read (gone, or not permitted).
pub fn read_link(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn join_is_under_the_root() {
        let r = NsRoot {
            pid: 42,
            root: "/proc/42/root".into(),
        };
        assert_eq!(r.join("/etc/passwd"), Path::new("/proc/42/root/etc/passwd"));
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

/// CPU time of the calling thread so far, (user, system) in milliseconds, from
/// `/proc/thread-self/stat`; zeros when it cannot be read.
pub fn thread_cpu_ms() -> (u64, u64) {
    let Some(text) = read_text(Path::new("/proc/thread-self/stat")) else {
        return (0, 0);
    };
    parse_stat_cpu_ms(&text, rustix::param::clock_ticks_per_second()).unwrap_or((0, 0))
}

/// (utime, stime) of a `stat` line in milliseconds: fields 14 and 15, counted after the
/// command name (which may hold spaces and parentheses).
pub fn parse_stat_cpu_ms(text: &str, ticks_per_sec: u64) -> Option<(u64, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let user: u64 = f.next()?.parse().ok()?;
    let system: u64 = f.next()?.parse().ok()?;
    let t = ticks_per_sec.max(1);
    Some((user * 1000 / t, system * 1000 / t))
}

/// Resident memory of this process in bytes (`/proc/self/statm`), 0 when unknown.
pub fn resident_bytes() -> u64 {
    statm_resident(Path::new("/proc/self/statm")).unwrap_or(0)
}

/// Resident memory of process `pid` in bytes (None when it is gone).
pub fn process_resident_bytes(pid: u32) -> Option<u64> {
    statm_resident(&PathBuf::from(format!("/proc/{pid}/statm")))
}

fn statm_resident(path: &Path) -> Option<u64> {
    read_text(path)
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * rustix::param::page_size() as u64)
}

/// CPU time of process `pid` so far (all its threads), (user, system) in milliseconds.
pub fn process_cpu_ms(pid: u32) -> Option<(u64, u64)> {
    let text = read_text(&PathBuf::from(format!("/proc/{pid}/stat")))?;
    parse_stat_cpu_ms(&text, rustix::param::clock_ticks_per_second())
}

#[cfg(test)]
mod cpu_tests {
    #[test]
    fn stat_cpu_fields_are_found_after_the_name() {
        let line = "12 (a b) c) S 1 12 12 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0";
        assert_eq!(super::parse_stat_cpu_ms(line, 100), Some((2500, 750)));
        assert_eq!(super::parse_stat_cpu_ms("garbage", 100), None);
    }
}
