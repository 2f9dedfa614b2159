//! md5, sha1 and sha256 of a file in one streaming pass, with osquery's `hashed` meaning:
//! 1 = hashed; 0 = not hashed on purpose (not a regular file, or larger than `--read_max`);
//! -1 = tried and failed (unreadable, vanished). osquery itself reports -1 for a file over
//! `read_max`, because its read fails; Osprey says 0 there, since nothing failed, and keeps the
//! reason in [`Skipped`]. A file that changes while it is read is hashed, but no key to cache
//! it under is returned, since its digest may mix two versions. Used by the file events'
//! enrichment (with the cache in `fim::hash`) and by the `hash` table.

use std::{
    io::{ErrorKind, Read},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::Path,
};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The three digests, lowercase hex, as osquery prints them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hashes {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

/// Why a file was not hashed (`hashed = 0`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Skipped {
    NotRegularFile,
    TooLarge { size: u64, read_max: u64 },
}

/// The outcome of hashing one path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Hashed {
    Done(Hashes),
    Skipped(Skipped),
    Failed(String),
}

impl Hashed {
    /// osquery's `hashed` column.
    pub fn code(&self) -> i64 {
        match self {
            Self::Done(_) => 1,
            Self::Skipped(_) => 0,
            Self::Failed(_) => -1,
        }
    }

    pub fn hashes(&self) -> Option<&Hashes> {
        match self {
            Self::Done(h) => Some(h),
            _ => None,
        }
    }
}

/// What identifies one version of a file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub mtime_ns: i128,
    pub size: u64,
}

impl FileKey {
    pub fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            size: m.size(),
        }
    }
}

/// Hashes `path` (following symlinks, as osquery does) without a cache.
pub fn hash_file(path: &Path, read_max: u64) -> Hashed {
    match hash_uncached(path, read_max) {
        Ok((h, _)) => h,
        Err(e) => Hashed::Failed(e),
    }
}

/// The hash and, when the file did not change while it was read, the key to cache it under.
pub fn hash_uncached(path: &Path, read_max: u64) -> Result<(Hashed, Option<FileKey>), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    // Never open what is not a regular file: opening a FIFO blocks until a writer comes, and
    // opening some devices has side effects. O_NONBLOCK covers a swap between stat and open.
    if !std::fs::metadata(path).map_err(err)?.is_file() {
        return Ok((Hashed::Skipped(Skipped::NotRegularFile), None));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(err)?;
    let before = file.metadata().map_err(err)?;
    if !before.is_file() {
        return Ok((Hashed::Skipped(Skipped::NotRegularFile), None));
    }
    if before.size() > read_max {
        return Ok((
            Hashed::Skipped(Skipped::TooLarge {
                size: before.size(),
                read_max,
            }),
            None,
        ));
    }
    let (mut md5, mut sha1, mut sha256) = (Md5::new(), Sha1::new(), Sha256::new());
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        };
        total += n as u64;
        // A file that grows past the limit while it is read is treated like one that was
        // already too large: the limit bounds the work, whatever the file does.
        if total > read_max {
            return Ok((
                Hashed::Skipped(Skipped::TooLarge {
                    size: total,
                    read_max,
                }),
                None,
            ));
        }
        md5.update(&buf[..n]);
        sha1.update(&buf[..n]);
        sha256.update(&buf[..n]);
    }
    let after = file.metadata().map_err(err)?;
    let key = FileKey::of(&before);
    let stable = FileKey::of(&after) == key && total == key.size;
    let hashes = Hashes {
        md5: hex(&md5.finalize()),
        sha1: hex(&sha1.finalize()),
        sha256: hex(&sha256.finalize()),
    };
    Ok((Hashed::Done(hashes), stable.then_some(key)))
}

/// sha1 of `bytes` in lowercase hex (osquery's `config_hash`).
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex(&Sha1::digest(bytes))
}

/// `bytes` in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}
