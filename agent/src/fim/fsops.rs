//! The file-system steps of enrichment (metadata, hashes) as requests to a
//! [`FsGuard`] worker: typed calls for the callers, and the worker's [`handle`] that answers
//! them. One place owns the request and reply shapes.

use std::{os::unix::fs::MetadataExt as _, path::Path};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::hash::{FileKey, HashCache, Hashed, hash_uncached};
use crate::sys::fsguard::FsGuard;

/// What enrichment needs of a file's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    pub btime: i64,
    pub ino: u64,
    pub is_file: bool,
    pub key: FileKey,
}

impl Stat {
    pub fn of(m: &std::fs::Metadata) -> Self {
        Self {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            atime: m.atime(),
            mtime: m.mtime(),
            ctime: m.ctime(),
            btime: m
                .created()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64),
            ino: m.ino(),
            is_file: m.is_file(),
            key: FileKey::of(m),
        }
    }
}

/// `path`'s metadata (`follow`: through symlinks, as stat(2); else lstat(2)). Outer None: the
/// file system did not answer in time; inner None: no such file (or not readable).
pub fn stat(fs: &FsGuard, path: &Path, follow: bool) -> Option<Option<Stat>> {
    let reply = fs.call(
        path,
        json!({"op": "stat", "path": path.to_string_lossy(), "follow": follow}),
    )?;
    Some(serde_json::from_value(reply).ok())
}

/// md5/sha1/sha256 of `path` without a cache, and the version it hashed. None: no answer in
/// time.
pub fn hash(
    fs: &FsGuard,
    path: &Path,
    read_max: u64,
) -> Option<Result<(Hashed, Option<FileKey>), String>> {
    let reply = fs.call(
        path,
        json!({"op": "hash", "path": path.to_string_lossy(), "read_max": read_max}),
    )?;
    Some(serde_json::from_value(reply).unwrap_or_else(|e| Err(format!("bad reply: {e}"))))
}

/// [`HashCache::hash`] with every file-system step run by an `fs` worker (metadata, then the
/// read if the cache misses): None when the file system did not answer in time.
pub fn hash_cached(
    cache: &mut HashCache,
    fs: &FsGuard,
    path: &Path,
    read_max: u64,
) -> Option<Hashed> {
    cache.hash_with(
        read_max,
        || {
            Some(match stat(fs, path, true)? {
                Some(st) => Ok((st.is_file, st.size, st.key)),
                None => Err(format!("{}: not found", path.display())),
            })
        },
        || hash(fs, path, read_max),
    )
}

/// The worker's side (`osprey fs-worker`, or a test's thread): one reply per request; a
/// request it does not understand gets `null`.
pub fn handle(req: &Value) -> Value {
    let path = req.get("path").and_then(Value::as_str).map(Path::new);
    match (req.get("op").and_then(Value::as_str), path) {
        (Some("stat"), Some(p)) => {
            let follow = req.get("follow").and_then(Value::as_bool).unwrap_or(true);
            let m = if follow {
                std::fs::metadata(p)
            } else {
                std::fs::symlink_metadata(p)
            };
            m.ok()
                .and_then(|m| serde_json::to_value(Stat::of(&m)).ok())
                .unwrap_or(Value::Null)
        }
        (Some("hash"), Some(p)) => {
            let read_max = req.get("read_max").and_then(Value::as_u64).unwrap_or(0);
            serde_json::to_value(hash_uncached(p, read_max)).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::hash::Skipped;
    use super::*;
    use crate::sys::fsguard::Backend;

    #[test]
    fn stat_and_hash_round_trip_through_a_worker() {
        let fs = FsGuard::new(Backend::Threads(handle), 1, Duration::from_secs(10));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, "abc").unwrap();
        let st = stat(&fs, &f, true).unwrap().unwrap();
        assert_eq!((st.size, st.is_file), (3, true));
        assert_eq!(st.key, FileKey::of(&std::fs::metadata(&f).unwrap()));
        assert_eq!(stat(&fs, &dir.path().join("none"), false), Some(None));
        let (h, key) = hash(&fs, &f, 100).unwrap().unwrap();
        assert_eq!(
            h.hashes().map(|h| h.sha256.as_str()),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(key, Some(st.key));
        // Through the cache: the second time is a hit, checked against the metadata.
        let mut cache = HashCache::new(10);
        let first = hash_cached(&mut cache, &fs, &f, 100).unwrap();
        assert_eq!(hash_cached(&mut cache, &fs, &f, 100).unwrap(), first);
        assert_eq!(cache.stats(), (1, 1));
        assert_eq!(
            hash_cached(&mut cache, &fs, &f, 2).unwrap(),
            Hashed::Skipped(Skipped::TooLarge {
                size: 3,
                read_max: 2
            })
        );
        assert_eq!(handle(&json!({"op": "nope"})), Value::Null);
        assert_eq!(handle(&Value::Null), Value::Null);
    }
}
