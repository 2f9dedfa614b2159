//! Raw ring-buffer bytes -> typed kernel records. The only place that reinterprets bytes
//! from the kernel; every record's length is checked first.

use agent_common::{
    EventKind, RecordHeader,
    file::{FdRecord, FileRecord},
    process::{ExecFailRecord, ExecRecord, ExitRecord, ForkRecord, TaskRecord},
    socket::SockRecord,
};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {got} bytes is shorter than its {kind} layout ({want} bytes)")]
    Short {
        kind: &'static str,
        got: usize,
        want: usize,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

pub enum RawRecord {
    Exec(Box<ExecRecord>),
    Exit(ExitRecord),
    File(Box<FileRecord>),
    Fd(FdRecord),
    Socket(Box<SockRecord>),
    Fork(ForkRecord),
    ExecFailed(Box<ExecFailRecord>),
}

impl std::fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exec(r) => write!(f, "Exec(pid {})", r.header.pid),
            Self::Exit(r) => write!(f, "Exit({r:?})"),
            Self::File(r) => write!(f, "File(pid {}, op {})", r.header.pid, r.op),
            Self::Fd(r) => write!(f, "Fd({r:?})"),
            Self::Socket(r) => write!(f, "Socket(pid {}, op {})", r.header.pid, r.op),
            Self::Fork(r) => write!(f, "Fork({r:?})"),
            Self::ExecFailed(r) => write!(f, "ExecFailed(pid {}, {})", r.header.pid, r.ret),
        }
    }
}

/// The records the task iterator wrote, back to back; a cut tail is ignored.
pub fn task_records(bytes: &[u8]) -> Vec<TaskRecord> {
    bytes
        .chunks_exact(size_of::<TaskRecord>())
        .filter_map(|c| read::<TaskRecord>(c, "task").ok())
        .collect()
}

/// Copies a `T` out of `bytes`, which must hold at least `size_of::<T>()` bytes.
fn read<T: aya::Pod>(bytes: &[u8], kind: &'static str) -> Result<T, RecordError> {
    let want = size_of::<T>();
    if bytes.len() < want {
        return Err(RecordError::Short {
            kind,
            got: bytes.len(),
            want,
        });
    }
    // SAFETY: the length is checked above; `T: Pod` is plain data for which every bit
    // pattern is valid; read_unaligned makes no alignment assumption about ring memory.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

pub fn decode(bytes: &[u8]) -> Result<RawRecord, RecordError> {
    let header: RecordHeader = read(bytes, "header")?;
    match EventKind::from_u32(header.kind) {
        Some(EventKind::ProcessExec) => {
            let mut rec: Box<ExecRecord> = Box::new(read(bytes, "exec")?);
            // Lengths come from the kernel; clamp them so later slicing cannot go out of range.
            rec.path_len = rec.path_len.min(rec.path.len() as u32);
            rec.args_len = rec.args_len.min(rec.args.len() as u32);
            Ok(RawRecord::Exec(rec))
        }
        Some(EventKind::ProcessExit) => Ok(RawRecord::Exit(read(bytes, "exit")?)),
        Some(EventKind::File) => {
            let mut rec: Box<FileRecord> = Box::new(read(bytes, "file")?);
            rec.path_len = rec.path_len.min(rec.path.len() as u32);
            rec.path2_len = rec.path2_len.min(rec.path2.len() as u32);
            Ok(RawRecord::File(rec))
        }
        Some(EventKind::FileFd) => Ok(RawRecord::Fd(read(bytes, "fd")?)),
        Some(EventKind::ProcessFork) => Ok(RawRecord::Fork(read(bytes, "fork")?)),
        Some(EventKind::ProcessExecFailed) => {
            let mut rec: Box<ExecFailRecord> = Box::new(read(bytes, "exec failure")?);
            rec.path_len = rec.path_len.min(rec.path.len() as u32);
            Ok(RawRecord::ExecFailed(rec))
        }
        Some(EventKind::Socket) => {
            let mut rec: Box<SockRecord> = Box::new(read(bytes, "socket")?);
            rec.sockaddr_len = rec.sockaddr_len.min(rec.sockaddr.len() as u32);
            Ok(RawRecord::Socket(rec))
        }
        None => Err(RecordError::UnknownKind(header.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(decode(&[0u8; 10]), Err(RecordError::Short { .. })));
        let mut b = vec![0u8; 64];
        b[0] = 99;
        assert_eq!(decode(&b).unwrap_err(), RecordError::UnknownKind(99));
        b[0] = EventKind::ProcessExec as u8;
        assert!(matches!(
            decode(&b),
            Err(RecordError::Short { kind: "exec", .. })
        ));
    }

    #[test]
    fn exit_record_decodes() {
        let mut b = vec![0u8; size_of::<ExitRecord>()];
        b[0] = EventKind::ProcessExit as u8;
        b[16..20].copy_from_slice(&77u32.to_le_bytes()); // pid
        b[24..28].copy_from_slice(&(3u32 << 8).to_le_bytes()); // exit_code
        let RawRecord::Exit(e) = decode(&b).unwrap() else {
            panic!("not an exit")
        };
        assert_eq!(e.header.pid, 77);
        assert_eq!(e.exit_code, 3 << 8);
    }
}
