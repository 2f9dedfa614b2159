//! Typed events, as the pipeline passes them from publishers to subscribers and as they are
//! stored. Each stored type has a versioned binary encoding ([`crate::storage::codec`]).

use crate::storage::codec::{DecodeError, Reader, Writer};

#[cfg(test)]
mod fixtures;

/// How a process event came about (osquery's `syscall` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ProcessSyscall {
    Execve = 1,
    Exit = 2,
    Fork = 3,
    /// Running when the agent started (from the task iterator), not an event as such.
    Snapshot = 4,
}

impl ProcessSyscall {
    pub fn name(self) -> &'static str {
        match self {
            Self::Execve => "execve",
            Self::Exit => "exit",
            Self::Fork => "fork",
            Self::Snapshot => "snapshot",
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Execve),
            2 => Some(Self::Exit),
            3 => Some(Self::Fork),
            4 => Some(Self::Snapshot),
            _ => None,
        }
    }
}

/// One row of `process_events`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProcessEvent {
    /// Wall-clock time of the event, ns since the Unix epoch.
    pub time_ns: u64,
    /// Seconds since boot at the event.
    pub uptime: u64,
    pub syscall: Option<ProcessSyscall>,
    pub pid: u32,
    pub tid: u32,
    pub parent: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Audit login uid; u32::MAX when unset.
    pub auid: u32,
    pub path: String,
    /// argv, one entry per argument.
    pub argv: Vec<String>,
    /// argv was cut at the configured limit.
    pub args_truncated: bool,
    /// Working directory at exec (empty when unknown or not an exec).
    pub cwd: String,
    /// Environment at exec, `KEY=value` each; empty unless `--exec_env_max` turns it on.
    pub env: Vec<String>,
    /// The environment was cut at the configured limit.
    pub env_truncated: bool,
    pub cgroup_id: u64,
    pub mnt_ns: u32,
    /// Process start, wall-clock ns since the epoch (0 = unknown).
    pub start_ns: u64,
    /// Raw wait status for exits.
    pub exit_code: Option<u32>,
    /// Metadata of the executable at ingest (`mode`, owners, times); None when stat failed.
    pub file: Option<FileMeta>,
    /// An exec's result: 0, or -errno for a failed attempt (`path` is then what the caller
    /// asked to run).
    pub result: i64,
    /// The executable had no name on any file system (a memfd, or deleted).
    pub fileless: bool,
    /// A source without eBPF could not read the process before it was gone: what `/proc`
    /// would have told (path, command line, ids) is missing, not empty.
    pub partial: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    pub btime: i64,
}

impl ProcessEvent {
    /// The current format version written by [`Self::encode`].
    /// Version 2 added cwd and env at the end, version 3 result and fileless, version 4
    /// partial; versions 1 to 3 still decode.
    pub const FORMAT: u8 = 4;

    /// osquery's `cmdline`: argv joined by spaces.
    pub fn cmdline(&self) -> String {
        self.argv.join(" ")
    }

    /// Splits a NUL-separated argv buffer.
    pub fn argv_from_nul_separated(buf: &[u8]) -> Vec<String> {
        let buf = buf.strip_suffix(&[0]).unwrap_or(buf);
        if buf.is_empty() {
            return Vec::new();
        }
        buf.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(Self::FORMAT);
        w.u64(self.time_ns)
            .u64(self.uptime)
            .u64(self.syscall.map_or(0, |s| s as u64))
            .u64(self.pid.into())
            .u64(self.tid.into())
            .u64(self.parent.into())
            .u64(self.uid.into())
            .u64(self.gid.into())
            .u64(self.euid.into())
            .u64(self.egid.into())
            .u64(self.auid.into())
            .str(&self.path)
            .u64(self.argv.len() as u64);
        for a in &self.argv {
            w.str(a);
        }
        w.u64(self.args_truncated.into())
            .u64(self.cgroup_id)
            .u64(self.mnt_ns.into())
            .u64(self.start_ns)
            .u64(self.exit_code.map_or(0, |c| u64::from(c) + 1));
        match &self.file {
            None => {
                w.u64(0);
            }
            Some(f) => {
                w.u64(1)
                    .u64(f.mode.into())
                    .u64(f.uid.into())
                    .u64(f.gid.into())
                    .i64(f.atime)
                    .i64(f.mtime)
                    .i64(f.ctime)
                    .i64(f.btime);
            }
        }
        w.str(&self.cwd).u64(self.env.len() as u64);
        for v in &self.env {
            w.str(v);
        }
        w.u64(self.env_truncated.into())
            .i64(self.result)
            .u64(self.fileless.into())
            .u64(self.partial.into());
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let (version, mut r) = Reader::new(buf)?;
        if !(1..=Self::FORMAT).contains(&version) {
            return Err(DecodeError::UnknownVersion(version));
        }
        let mut e = ProcessEvent {
            time_ns: r.u64()?,
            uptime: r.u64()?,
            syscall: ProcessSyscall::from_u8(r.u64()? as u8),
            pid: r.u32()?,
            tid: r.u32()?,
            parent: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            euid: r.u32()?,
            egid: r.u32()?,
            auid: r.u32()?,
            path: r.string()?,
            ..Default::default()
        };
        let argc = r.u64()?;
        for _ in 0..argc.min(1 << 16) {
            e.argv.push(r.string()?);
        }
        e.args_truncated = r.u64()? != 0;
        e.cgroup_id = r.u64()?;
        e.mnt_ns = r.u32()?;
        e.start_ns = r.u64()?;
        e.exit_code = match r.u64()? {
            0 => None,
            c => Some(u32::try_from(c - 1).unwrap_or(u32::MAX)),
        };
        if r.u64()? == 1 {
            e.file = Some(FileMeta {
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                atime: r.i64()?,
                mtime: r.i64()?,
                ctime: r.i64()?,
                btime: r.i64()?,
            });
        }
        if version >= 2 {
            e.cwd = r.string()?;
            let n = r.u64()?;
            for _ in 0..n.min(1 << 16) {
                e.env.push(r.string()?);
            }
            e.env_truncated = r.u64()? != 0;
        }
        if version >= 3 {
            e.result = r.i64()?;
            e.fileless = r.u64()? != 0;
        }
        if version >= 4 {
            e.partial = r.u64()? != 0;
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProcessEvent {
        ProcessEvent {
            time_ns: 1_700_000_000_123_456_789,
            uptime: 42,
            syscall: Some(ProcessSyscall::Execve),
            pid: 1234,
            tid: 1234,
            parent: 1,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            auid: u32::MAX,
            path: "/bin/true".into(),
            argv: vec!["/bin/true".into(), "marker 1".into()],
            args_truncated: false,
            cwd: "/tmp/wörk dir".into(),
            env: vec!["A=1".into(), "B=two words".into()],
            env_truncated: true,
            cgroup_id: 99,
            mnt_ns: 4026531841,
            start_ns: 1_700_000_000_000_000_000,
            exit_code: Some(0),
            file: Some(FileMeta {
                mode: 0o100755,
                uid: 0,
                gid: 0,
                atime: 1,
                mtime: -2,
                ctime: 3,
                btime: 0,
            }),
            result: -13,
            fileless: true,
            partial: true,
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(ProcessEvent::decode(&e.encode()).unwrap(), e);
        // Version 3 (without partial) and 2 (without result and fileless) still decode.
        let buf = e.encode();
        let mut v3 = buf[..buf.len() - 1].to_vec();
        v3[0] = 3;
        assert_eq!(
            ProcessEvent::decode(&v3).unwrap(),
            ProcessEvent {
                partial: false,
                ..e.clone()
            }
        );
        let mut v2 = buf[..buf.len() - 3].to_vec();
        v2[0] = 2;
        assert_eq!(
            ProcessEvent::decode(&v2).unwrap(),
            ProcessEvent {
                result: 0,
                fileless: false,
                partial: false,
                ..e.clone()
            }
        );
        assert_eq!(e.cmdline(), "/bin/true marker 1");
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = sample().encode();
        for cut in 0..buf.len() {
            assert!(ProcessEvent::decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn argv_split() {
        assert_eq!(
            ProcessEvent::argv_from_nul_separated(b"a\0bb\0"),
            vec!["a", "bb"]
        );
        assert_eq!(
            ProcessEvent::argv_from_nul_separated(b""),
            Vec::<String>::new()
        );
        assert_eq!(
            ProcessEvent::argv_from_nul_separated(b"x\0\0y"),
            vec!["x", "", "y"]
        );
    }
}

/// One row of `file_events` (a rename gives two: MOVED_FROM and MOVED_TO).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FileEvent {
    pub time_ns: u64,
    pub uptime: u64,
    /// osquery's action: CREATED, UPDATED, DELETED, MOVED_FROM, MOVED_TO, ATTRIBUTES_MODIFIED,
    /// OPENED, ACCESSED.
    pub action: String,
    /// The exact operation (`open`, `write`, `close_write`, `unlink`, `rename`, …).
    pub operation: String,
    pub target_path: String,
    /// The other path of a rename/link, the target of a symlink, the name of an xattr.
    pub other_path: String,
    pub category: String,
    /// Links the MOVED_FROM/MOVED_TO rows of one rename (0 otherwise).
    pub transaction_id: u64,
    /// The syscall's return value (fd, 0, or -errno); `success` is `result >= 0`.
    pub result: i64,
    pub syscall: String,
    pub pid: u32,
    pub tid: u32,
    /// The acting process's uid/gid.
    pub process_uid: u32,
    pub process_gid: u32,
    pub flags: u32,
    /// The mode/uid/gid arguments of chmod/chown/open/mkdir (u32::MAX = none).
    pub arg_mode: u32,
    pub arg_uid: u32,
    pub arg_gid: u32,
    pub fd: i32,
    /// Target file metadata at ingest (None when it no longer exists).
    pub inode: u64,
    pub file: Option<FileStat>,
    /// md5, sha1, sha256 (empty when not hashed) and osquery's `hashed` (1, 0, -1).
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub hashed: i8,
    /// Its file system did not answer in time at ingest: metadata and hashes are missing, not
    /// absent (`enriched` = 0 in `file_events`).
    pub enrichment_missing: bool,
    /// The path's last part is the caller's string, resolved by the agent after the call, not
    /// read from a kernel object (`user_path` = 1 in `file_events`).
    pub user_path: bool,
    /// Not stored: what the subscriber still has to resolve (see [`Resolve`]).
    pub resolve: Resolve,
}

/// A path of a [`FileEvent`] that the agent resolves before the row is kept: the caller's
/// string (with `..`, symlinks, `/proc/self`) joined to what the kernel resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Resolve {
    pub target: bool,
    pub other: bool,
    /// The call follows a final symlink (chmod, chown, truncate, setxattr).
    pub follow: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileStat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

impl FileEvent {
    /// Version 3 added `enrichment_missing` at the end, version 4 `user_path`; versions 2 and
    /// 3 still decode.
    pub const FORMAT: u8 = 4;

    pub fn success(&self) -> bool {
        self.result >= 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(Self::FORMAT);
        w.u64(self.time_ns)
            .u64(self.uptime)
            .str(&self.action)
            .str(&self.operation)
            .str(&self.target_path)
            .str(&self.other_path)
            .str(&self.category)
            .u64(self.transaction_id)
            .i64(self.result)
            .str(&self.syscall)
            .u64(self.pid.into())
            .u64(self.tid.into())
            .u64(self.process_uid.into())
            .u64(self.process_gid.into())
            .u64(self.flags.into())
            .u64(self.arg_mode.into())
            .u64(self.arg_uid.into())
            .u64(self.arg_gid.into())
            .i64(self.fd.into())
            .u64(self.inode);
        match &self.file {
            None => {
                w.u64(0);
            }
            Some(f) => {
                w.u64(1)
                    .u64(f.mode.into())
                    .u64(f.uid.into())
                    .u64(f.gid.into())
                    .u64(f.size)
                    .i64(f.atime)
                    .i64(f.mtime)
                    .i64(f.ctime);
            }
        }
        w.str(&self.md5)
            .str(&self.sha1)
            .str(&self.sha256)
            .i64(self.hashed.into())
            .u64(self.enrichment_missing.into())
            .u64(self.user_path.into());
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let (version, mut r) = Reader::new(buf)?;
        if !(2..=Self::FORMAT).contains(&version) {
            return Err(DecodeError::UnknownVersion(version));
        }
        let mut e = FileEvent {
            time_ns: r.u64()?,
            uptime: r.u64()?,
            action: r.string()?,
            operation: r.string()?,
            target_path: r.string()?,
            other_path: r.string()?,
            category: r.string()?,
            transaction_id: r.u64()?,
            result: r.i64()?,
            syscall: r.string()?,
            pid: r.u32()?,
            tid: r.u32()?,
            process_uid: r.u32()?,
            process_gid: r.u32()?,
            flags: r.u32()?,
            arg_mode: r.u32()?,
            arg_uid: r.u32()?,
            arg_gid: r.u32()?,
            fd: i32::try_from(r.i64()?).unwrap_or(-1),
            inode: r.u64()?,
            ..Default::default()
        };
        if r.u64()? == 1 {
            e.file = Some(FileStat {
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                size: r.u64()?,
                atime: r.i64()?,
                mtime: r.i64()?,
                ctime: r.i64()?,
            });
        }
        e.md5 = r.string()?;
        e.sha1 = r.string()?;
        e.sha256 = r.string()?;
        e.hashed = i8::try_from(r.i64()?).unwrap_or(-1);
        if version >= 3 {
            e.enrichment_missing = r.u64()? != 0;
        }
        if version >= 4 {
            e.user_path = r.u64()? != 0;
        }
        Ok(e)
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn file_event_round_trip_and_truncation() {
        let e = FileEvent {
            time_ns: 5,
            uptime: 1,
            action: "MOVED_TO".into(),
            operation: "rename".into(),
            target_path: "/tmp/x/b".into(),
            other_path: "/tmp/x/a".into(),
            category: "tmp".into(),
            transaction_id: 77,
            result: -2,
            syscall: "renameat2".into(),
            pid: 10,
            tid: 11,
            process_uid: 1000,
            process_gid: 1000,
            flags: 0,
            arg_mode: u32::MAX,
            arg_uid: u32::MAX,
            arg_gid: u32::MAX,
            fd: -1,
            inode: 42,
            file: Some(FileStat {
                mode: 0o100644,
                uid: 1,
                gid: 2,
                size: 3,
                atime: 4,
                mtime: 5,
                ctime: 6,
            }),
            md5: String::new(),
            sha1: String::new(),
            sha256: String::new(),
            hashed: 0,
            enrichment_missing: true,
            user_path: true,
            resolve: Resolve::default(),
        };
        let buf = e.encode();
        assert_eq!(FileEvent::decode(&buf).unwrap(), e);
        for cut in 0..buf.len() {
            assert!(FileEvent::decode(&buf[..cut]).is_err());
        }
        // Versions 3 and 2 (without the trailing flags) still decode.
        let mut v3 = buf[..buf.len() - 1].to_vec();
        v3[0] = 3;
        assert_eq!(
            FileEvent::decode(&v3).unwrap(),
            FileEvent {
                user_path: false,
                ..e.clone()
            }
        );
        let mut v2 = buf[..buf.len() - 2].to_vec();
        v2[0] = 2;
        assert_eq!(
            FileEvent::decode(&v2).unwrap(),
            FileEvent {
                enrichment_missing: false,
                user_path: false,
                ..e
            }
        );
    }
}

/// One row of `socket_events`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SocketEvent {
    pub time_ns: u64,
    pub uptime: u64,
    /// connect, bind, listen, accept.
    pub action: String,
    pub syscall: String,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    /// The acting process's executable, when it could be read at ingest.
    pub path: String,
    pub fd: i32,
    pub family: u16,
    pub protocol: u16,
    pub sock_type: u16,
    pub local_address: String,
    pub remote_address: String,
    pub local_port: u16,
    pub remote_port: u16,
    /// A unix socket's path (`@name` for the abstract namespace).
    pub socket: String,
    pub result: i64,
    /// The address shown (connect/accept: remote, bind: local, or the unix path) was read from
    /// the caller's memory, because the socket itself had none: another thread of the caller
    /// could have changed it. False when it comes from the kernel's `struct sock`.
    pub user_address: bool,
}

impl SocketEvent {
    /// Version 3 added `user_address` at the end; version 2 values still decode (as false:
    /// unknown, they preferred the caller's address).
    pub const FORMAT: u8 = 3;

    /// osquery's Linux `status`.
    pub fn status(&self) -> &'static str {
        match self.result {
            r if r >= 0 => "succeeded",
            -115 => "in_progress",
            -11 if self.action == "accept" => "no_client",
            _ => "failed",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(Self::FORMAT);
        w.u64(self.time_ns)
            .u64(self.uptime)
            .str(&self.action)
            .str(&self.syscall)
            .u64(self.pid.into())
            .u64(self.tid.into())
            .u64(self.uid.into())
            .str(&self.path)
            .i64(self.fd.into())
            .u64(self.family.into())
            .u64(self.protocol.into())
            .u64(self.sock_type.into())
            .str(&self.local_address)
            .str(&self.remote_address)
            .u64(self.local_port.into())
            .u64(self.remote_port.into())
            .str(&self.socket)
            .i64(self.result)
            .u64(self.user_address.into());
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let (version, mut r) = Reader::new(buf)?;
        if version != 2 && version != Self::FORMAT {
            return Err(DecodeError::UnknownVersion(version));
        }
        let u16_of = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        let mut e = Self {
            time_ns: r.u64()?,
            uptime: r.u64()?,
            action: r.string()?,
            syscall: r.string()?,
            pid: r.u32()?,
            tid: r.u32()?,
            uid: r.u32()?,
            path: r.string()?,
            fd: i32::try_from(r.i64()?).unwrap_or(-1),
            family: u16_of(r.u64()?),
            protocol: u16_of(r.u64()?),
            sock_type: u16_of(r.u64()?),
            local_address: r.string()?,
            remote_address: r.string()?,
            local_port: u16_of(r.u64()?),
            remote_port: u16_of(r.u64()?),
            socket: r.string()?,
            result: r.i64()?,
            user_address: false,
        };
        if version >= 3 {
            e.user_address = r.u64()? != 0;
        }
        Ok(e)
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    #[test]
    fn socket_event_round_trip_and_truncation() {
        let e = SocketEvent {
            time_ns: 9,
            uptime: 1,
            action: "connect".into(),
            syscall: "connect".into(),
            pid: 3,
            tid: 4,
            uid: 0,
            path: "/usr/bin/curl".into(),
            fd: 5,
            family: 10,
            protocol: 6,
            sock_type: 1,
            local_address: "::1".into(),
            remote_address: "::1".into(),
            local_port: 40000,
            remote_port: 8080,
            socket: String::new(),
            result: -111,
            user_address: true,
        };
        let buf = e.encode();
        assert_eq!(SocketEvent::decode(&buf).unwrap(), e);
        assert_eq!(e.status(), "failed");
        for cut in 0..buf.len() {
            assert!(SocketEvent::decode(&buf[..cut]).is_err());
        }
        // Version 2 (no user_address at the end) still decodes, as false.
        let mut v2 = buf[..buf.len() - 1].to_vec();
        v2[0] = 2;
        let old = SocketEvent::decode(&v2).unwrap();
        assert_eq!(
            old,
            SocketEvent {
                user_address: false,
                ..e
            }
        );
    }
}
