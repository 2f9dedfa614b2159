//! A cache of file hashes keyed by what identifies one version of a file's content:
//! (device, inode, mtime, size). The hashing itself is `sys::hash` (re-exported here).
//!
//! The cache is only trusted after re-checking the file's metadata: every lookup stats the path
//! first, and a hit needs the same (device, inode, mtime in ns, size). A file that changes while
//! it is read is hashed but not cached, since its digest may mix two versions.

use std::{collections::HashMap, os::unix::fs::MetadataExt, path::Path};

pub use crate::sys::hash::{FileKey, Hashed, Hashes, Skipped, hash_file, hash_uncached, sha1_hex};

/// A bounded cache of [`Hashes`] by [`FileKey`], least recently used evicted first.
#[derive(Debug, Default)]
pub struct HashCache {
    max: usize,
    entries: HashMap<FileKey, (Hashes, u64)>,
    clock: u64,
    hits: u64,
    misses: u64,
}

impl HashCache {
    /// `max` = `--hash_cache_max`; 0 disables caching.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// Hashes `path`, from the cache when its current metadata matches a cached version.
    pub fn hash(&mut self, path: &Path, read_max: u64) -> Hashed {
        let hashed = self.hash_with(
            read_max,
            || {
                Some(
                    std::fs::metadata(path)
                        .map(|m| (m.is_file(), m.size(), FileKey::of(&m)))
                        .map_err(|e| format!("{}: {e}", path.display())),
                )
            },
            || Some(hash_uncached(path, read_max)),
        );
        // Direct calls always answer.
        hashed.unwrap_or_else(|| Hashed::Failed(format!("{}: no answer", path.display())))
    }

    /// The one hashing path, with its two file-system steps given: `stat` (is it a regular
    /// file, its size, its version) and `read` (the digests and the version read). Either
    /// returning None (no answer in time, see `fsops::hash_cached`) makes this None. The
    /// cache is consulted only with the metadata the file has now.
    pub fn hash_with(
        &mut self,
        read_max: u64,
        stat: impl FnOnce() -> Option<Result<(bool, u64, FileKey), String>>,
        read: impl FnOnce() -> Option<Result<(Hashed, Option<FileKey>), String>>,
    ) -> Option<Hashed> {
        let (is_file, size, key) = match stat()? {
            Ok(s) => s,
            Err(e) => return Some(Hashed::Failed(e)),
        };
        if !is_file {
            return Some(Hashed::Skipped(Skipped::NotRegularFile));
        }
        if size > read_max {
            return Some(Hashed::Skipped(Skipped::TooLarge { size, read_max }));
        }
        if let Some(h) = self.cached(&key) {
            return Some(Hashed::Done(h));
        }
        Some(match read()? {
            Ok((Hashed::Done(h), Some(k))) => {
                self.insert(k, h.clone());
                Hashed::Done(h)
            }
            Ok((other, _)) => other,
            Err(e) => Hashed::Failed(e),
        })
    }

    /// The cached digests of the version `key`, if any (a hit or a miss is counted).
    pub fn cached(&mut self, key: &FileKey) -> Option<Hashes> {
        self.clock += 1;
        match self.entries.get_mut(key) {
            Some((h, used)) => {
                *used = self.clock;
                self.hits += 1;
                Some(h.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn insert(&mut self, key: FileKey, h: Hashes) {
        if self.max == 0 {
            return;
        }
        if self.entries.len() >= self.max
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (h, self.clock));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: (&str, &str, &str) = (
        "d41d8cd98f00b204e9800998ecf8427e",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    const ABC: (&str, &str, &str) = (
        "900150983cd24fb0d6963f7d28e17f72",
        "a9993e364706816aba3e25717850c26c9cd0d89d",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    const FOX: (&str, &str, &str) = (
        "9e107d9d372bb6826bd81d3542a419d6",
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592",
    );

    fn digests(h: &Hashed) -> (&str, &str, &str) {
        let h = h.hashes().unwrap_or_else(|| panic!("not hashed: {h:?}"));
        (&h.md5, &h.sha1, &h.sha256)
    }

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            (&b""[..], EMPTY),
            (b"abc", ABC),
            (b"The quick brown fox jumps over the lazy dog", FOX),
        ] {
            let p = dir.path().join("f");
            std::fs::write(&p, content).unwrap();
            let h = hash_file(&p, 1 << 20);
            assert_eq!(h.code(), 1);
            assert_eq!(digests(&h), want);
        }
    }

    #[test]
    fn streams_files_larger_than_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        // 1,000,000 × 'a': the classic long test vector, 15 buffers and a bit.
        std::fs::write(&p, vec![b'a'; 1_000_000]).unwrap();
        let h = hash_file(&p, 1 << 30);
        assert_eq!(
            digests(&h),
            (
                "7707d6ae4e027c70eea2a935c2296f21",
                "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
            )
        );
    }

    #[test]
    fn hashed_codes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abcd").unwrap();
        assert_eq!(
            hash_file(&p, 3),
            Hashed::Skipped(Skipped::TooLarge {
                size: 4,
                read_max: 3
            })
        );
        assert_eq!(hash_file(&p, 4).code(), 1);
        assert_eq!(
            hash_file(dir.path(), 1 << 20),
            Hashed::Skipped(Skipped::NotRegularFile)
        );
        let missing = hash_file(&dir.path().join("nope"), 1 << 20);
        assert_eq!(missing.code(), -1);
        let mut cache = HashCache::new(4);
        assert_eq!(cache.hash(&dir.path().join("nope"), 1 << 20).code(), -1);
        assert_eq!(cache.hash(dir.path(), 1 << 20).code(), 0);
        assert_eq!(cache.hash(&p, 3).code(), 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_fifo_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from(0o600),
            0,
        )
        .unwrap();
        // Opening it for reading would block this test forever.
        assert_eq!(
            hash_file(&fifo, 1 << 20),
            Hashed::Skipped(Skipped::NotRegularFile)
        );
        assert_eq!(HashCache::new(4).hash(&fifo, 1 << 20).code(), 0);
    }

    #[test]
    fn cache_hits_only_while_metadata_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let mut cache = HashCache::new(10);
        assert_eq!(digests(&cache.hash(&p, 100)), ABC);
        assert_eq!(digests(&cache.hash(&p, 100)), ABC);
        assert_eq!(cache.stats(), (1, 1));
        // New content and size: a miss, never the stale digest.
        std::fs::write(&p, b"The quick brown fox jumps over the lazy dog").unwrap();
        assert_eq!(digests(&cache.hash(&p, 100)), FOX);
        assert_eq!(cache.stats(), (1, 2));
        // Same size, different content, mtime moved explicitly (coarse clocks may not move).
        std::fs::write(&p, b"abd").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
        drop(f);
        let h = cache.hash(&p, 100);
        assert_eq!(h.hashes().unwrap().md5, "4911e516e5aa21d327512e0c8b197616");
        assert_eq!(cache.stats(), (1, 3));
    }

    #[test]
    fn cache_is_bounded_and_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, format!("content {i}")).unwrap();
                p
            })
            .collect();
        let mut cache = HashCache::new(2);
        cache.hash(&paths[0], 100);
        cache.hash(&paths[1], 100);
        cache.hash(&paths[0], 100); // 0 is now more recent than 1
        cache.hash(&paths[2], 100); // evicts 1
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats(), (1, 3));
        cache.hash(&paths[0], 100);
        assert_eq!(cache.stats(), (2, 3));
        cache.hash(&paths[1], 100);
        assert_eq!(cache.stats(), (2, 4));

        let mut off = HashCache::new(0);
        off.hash(&paths[0], 100);
        off.hash(&paths[0], 100);
        assert_eq!((off.len(), off.stats()), (0, (0, 2)));
    }
}
