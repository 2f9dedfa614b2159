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

/// Where a caller's path string led, as the agent resolves it after the call: the real
/// folder it names (symlinks, `..` and `/proc/self` followed as the caller would have), the
/// last component, and the identity of that folder and each of its ancestors, deepest first,
/// as (bytes of `dir` naming it, st_dev, inode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub dir: String,
    pub name: String,
    pub chain: Vec<(usize, u64, u64)>,
}

/// Symlinks followed before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// [`Resolved`] for `path` as the thread `tid` of process `pid` meant it; `follow`: the call
/// follows a final symlink. None when a folder on the way does not exist (any more).
pub fn resolve_uncached(path: &Path, pid: u32, tid: u32, follow: bool) -> Option<Resolved> {
    use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
    let mut todo: Vec<Vec<u8>> = split(path.as_os_str().as_bytes());
    todo.reverse();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    let mut name: Option<Vec<u8>> = None;
    // A caller in another mount namespace or under another root (a container, a chroot)
    // meant its own `/`: every look-up goes through its root.
    let mut root = callers_root(pid);
    let os = |p: &[u8], root: &[u8]| {
        let mut full = root.to_vec();
        full.extend_from_slice(p);
        std::ffi::OsString::from_vec(full)
    };
    while let Some(c) = todo.pop() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        // The caller's /proc/self is not the resolver's.
        if cur.len() == 1 && cur[0] == b"proc" && (c == b"self" || c == b"thread-self") {
            // The caller's own entries, by its pid as this side numbers it; their links
            // name paths as this side sees them.
            root.clear();
        }
        if cur.len() == 1 && cur[0] == b"proc" {
            if c == b"self" {
                todo.push(pid.to_string().into_bytes());
                continue;
            }
            if c == b"thread-self" {
                for part in [tid.to_string(), "task".into(), pid.to_string()] {
                    todo.push(part.into_bytes());
                }
                continue;
            }
        }
        let last = todo.iter().all(|t| t.is_empty() || t == b".");
        let here = join(&cur, Some(&c));
        if last && !follow {
            name = Some(c);
            break;
        }
        match std::fs::symlink_metadata(os(&here, &root)) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = std::fs::read_link(os(&here, &root)).ok()?;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    cur.clear();
                }
                let mut parts = split(t);
                parts.reverse();
                todo.extend(parts);
            }
            Ok(_) if last => {
                name = Some(c);
                break;
            }
            Ok(m) if m.is_dir() => cur.push(c),
            _ if last => {
                name = Some(c);
                break;
            }
            _ => return None,
        }
    }
    // Through a bind mount of a subfolder, the folders above that subfolder in its file
    // system are not on the way: spell the folder through a mount of a higher one (if both
    // spellings name the same folder) so that they are.
    for _ in 0..4 {
        let here = join(&cur, None);
        let Ok(here_s) = std::str::from_utf8(&here) else {
            break;
        };
        let mounts = if root.is_empty() {
            crate::sys::mountinfo::own()
        } else {
            std::sync::Arc::new(crate::sys::mountinfo::of(pid))
        };
        let Some(alt) = crate::sys::mountinfo::through_higher_mount(&mounts, here_s) else {
            break;
        };
        let id = |p: &[u8]| {
            std::fs::metadata(os(p, &root))
                .ok()
                .map(|m| (m.dev(), m.ino()))
        };
        if id(&here).is_none() || id(&here) != id(alt.as_bytes()) {
            break;
        }
        cur = split(alt.as_bytes())
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect();
    }
    let dir = join(&cur, None);
    let mut chain = Vec::new();
    for depth in (0..=cur.len()).rev() {
        let prefix = join(&cur[..depth], None);
        let m = std::fs::metadata(os(&prefix, &root)).ok()?;
        let bytes = if depth == 0 { 0 } else { prefix.len() };
        chain.push((bytes, m.dev(), m.ino()));
    }
    Some(Resolved {
        dir: String::from_utf8_lossy(&dir).into_owned(),
        name: String::from_utf8_lossy(&name.unwrap_or_default()).into_owned(),
        chain,
    })
}

/// `/proc/<pid>/root` when the process `pid` has another mount namespace or another root
/// than this process, else nothing (also when it is gone: then its own view is lost, and
/// this side's is the best guess).
fn callers_root(pid: u32) -> Vec<u8> {
    if pid == 0 {
        return Vec::new();
    }
    let id = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let theirs = (
        id(&format!("/proc/{pid}/ns/mnt")),
        id(&format!("/proc/{pid}/root")),
    );
    let ours = (id("/proc/self/ns/mnt"), id("/"));
    if theirs.0.is_none() || theirs == ours {
        return Vec::new();
    }
    format!("/proc/{pid}/root").into_bytes()
}

fn split(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|b| *b == b'/').map(<[u8]>::to_vec).collect()
}

/// `/a/b` from [a, b] (and a last part); `/` for nothing.
fn join(parts: &[Vec<u8>], last: Option<&Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts.iter().chain(last) {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// [`resolve_uncached`] run by an `fs` worker. Outer None: no answer in time.
pub fn resolve(
    fs: &FsGuard,
    path: &Path,
    pid: u32,
    tid: u32,
    follow: bool,
) -> Option<Option<Resolved>> {
    let reply = fs.call(
        path,
        json!({"op": "resolve", "path": path.to_string_lossy(), "pid": pid, "tid": tid,
               "follow": follow}),
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
        (Some("resolve"), Some(p)) => {
            let num = |k: &str| req.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
            let follow = req.get("follow").and_then(Value::as_bool).unwrap_or(false);
            serde_json::to_value(resolve_uncached(p, num("pid"), num("tid"), follow))
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
    fn a_caller_in_this_namespace_and_root_or_gone_resolves_here() {
        assert_eq!(callers_root(std::process::id()), Vec::<u8>::new());
        assert_eq!(callers_root(0), Vec::<u8>::new());
        assert_eq!(callers_root(u32::MAX), Vec::<u8>::new());
    }

    #[test]
    fn resolve_follows_the_callers_spelling_to_the_real_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let d = root.join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(&d, root.join("link")).unwrap();
        std::os::unix::fs::symlink("d/sub", root.join("rel")).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
        std::os::unix::fs::symlink(d.join("f"), root.join("flink")).unwrap();
        let want = d.to_string_lossy().into_owned();
        let me = std::process::id();
        let r = |p: String, follow: bool| resolve_uncached(Path::new(&p), me, me, follow).unwrap();
        let root_s = root.to_string_lossy();
        for spelling in [
            format!("{root_s}/d/new"),
            format!("{root_s}//d/./new"),
            format!("{root_s}/d/sub/../new"),
            format!("{root_s}/link/new"),
            format!("{root_s}/rel/../new"),
            format!("/tmp/../{}/d/new", root_s.trim_start_matches('/')),
        ] {
            let got = r(spelling.clone(), false);
            assert_eq!(
                (got.dir.as_str(), got.name.as_str()),
                (want.as_str(), "new"),
                "{spelling}"
            );
            let m = std::fs::metadata(&d).unwrap();
            assert_eq!(got.chain[0], (want.len(), m.dev(), m.ino()), "{spelling}");
            assert_eq!(got.chain.last().unwrap().0, 0, "the root is last");
        }
        // A final symlink is followed only when the call follows it.
        let nofollow = r(format!("{root_s}/flink"), false);
        assert_eq!(
            (nofollow.dir.as_str(), nofollow.name.as_str()),
            (&*root_s, "flink")
        );
        let follow = r(format!("{root_s}/flink"), true);
        assert_eq!(
            (follow.dir.as_str(), follow.name.as_str()),
            (want.as_str(), "f")
        );
        // The caller's /proc/self, not the resolver's: a child in `d` stands in for a caller.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&d)
            .spawn()
            .unwrap();
        let pid = child.id();
        let got = resolve_uncached(Path::new("/proc/self/cwd/new"), pid, pid, false).unwrap();
        assert_eq!(
            (got.dir.as_str(), got.name.as_str()),
            (want.as_str(), "new")
        );
        let got = resolve_uncached(Path::new("/proc/thread-self/cwd/new"), pid, pid, false);
        assert_eq!(got.map(|g| g.dir), Some(want.clone()));
        let _ = child.kill();
        let _ = child.wait();
        // A folder on the way that does not exist.
        assert_eq!(
            resolve_uncached(&root.join("none/new"), std::process::id(), 1, false),
            None
        );
    }

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
