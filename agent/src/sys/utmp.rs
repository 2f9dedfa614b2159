//! Login records: utmp(5) files (`/var/run/utmp`: who is logged in; `/var/log/wtmp`: logins
//! and logouts), 384-byte records of glibc's x86-64 and arm64 layout, read without trusting a
//! byte of them (a short or garbled record ends the list, never a panic).

use std::path::Path;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `ut_type` (7 USER_PROCESS, 8 DEAD_PROCESS, 2 BOOT_TIME, …).
    pub kind: i16,
    pub pid: i32,
    pub line: String,
    pub user: String,
    pub host: String,
    /// Seconds since the epoch.
    pub time: i64,
}

const SIZE: usize = 384;

/// osquery's name of a `ut_type`.
pub fn kind_name(kind: i16) -> &'static str {
    match kind {
        0 => "empty",
        1 => "runlevel",
        2 => "boottime",
        3 => "new_time",
        4 => "old_time",
        5 => "init",
        6 => "login",
        7 => "user",
        8 => "dead",
        9 => "accounting",
        _ => "unknown",
    }
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The records of utmp-format bytes.
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    bytes
        .chunks_exact(SIZE)
        .map(|r| {
            let i32_at = |o: usize| i32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
            Record {
                kind: i16::from_le_bytes([r[0], r[1]]),
                pid: i32_at(4),
                line: c_string(&r[8..40]),
                user: c_string(&r[44..76]),
                host: c_string(&r[76..332]),
                time: i64::from(i32_at(340)),
            }
        })
        .collect()
}

/// The records of the file at `path` (none when it cannot be read).
pub fn records(path: &Path) -> Vec<Record> {
    std::fs::read(path).map_or_else(|_| Vec::new(), |b| parse(&b))
}

#[cfg(test)]
pub fn record_bytes(kind: i16, pid: i32, line: &str, user: &str, host: &str, time: i32) -> Vec<u8> {
    let mut r = vec![0u8; SIZE];
    r[0..2].copy_from_slice(&kind.to_le_bytes());
    r[4..8].copy_from_slice(&pid.to_le_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r[340..344].copy_from_slice(&time.to_le_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_a_short_tail_is_ignored() {
        let mut b = record_bytes(7, 1234, "pts/0", "alice", "10.0.0.9", 1_700_000_000);
        b.extend(record_bytes(2, 0, "~", "reboot", "6.1.0", 1_699_999_000));
        b.extend([1, 2, 3]);
        let r = parse(&b);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Record {
                kind: 7,
                pid: 1234,
                line: "pts/0".into(),
                user: "alice".into(),
                host: "10.0.0.9".into(),
                time: 1_700_000_000
            }
        );
        assert_eq!(
            (kind_name(r[1].kind), r[1].user.as_str()),
            ("boottime", "reboot")
        );
    }
}
