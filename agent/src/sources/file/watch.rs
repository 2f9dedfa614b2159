//! The watched folders by identity: what the kernel's `WATCHED_DIRS` map holds, and how a
//! folder id in a record turns back into the path as the config spells it.
//!
//! Each kernel prefix of the config (see `FimMatcher::kernel_prefixes`) is watched through
//! its nearest existing directory: the prefix itself when it is a directory, else the closest
//! ancestor that is (a watched file is watched through its folder, so a rename over it is
//! seen; a folder that does not exist yet is covered by its parent until it appears). The
//! rows' paths are then `folder as configured + the part below it`, whatever spelling the
//! writer used; the matcher decides what is kept.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::RwLock,
};

use agent_common::file::DirKey;

use crate::fim::fsops::Resolved;

/// Folder ids are stable for the life of the process (records in flight still name the
/// folder after a reload); only the set the kernel matches changes.
#[derive(Debug, Default)]
pub struct WatchDirs {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    paths: Vec<String>,
    current: HashMap<DirKey, u32>,
    /// Every folder identity ever planned: a row resolved after a re-plan (the folder's
    /// ancestor was watched until the folder itself appeared) is still placed.
    seen: HashMap<DirKey, u32>,
}

/// What the planner needs to know of a path: None when its file system did not answer, else
/// `Some(None)` for nothing there and `Some(Some((st_dev, ino, is_dir)))`.
pub type Probe = Option<Option<(u64, u64, bool)>>;

impl WatchDirs {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The folder as configured for an id from a record.
    pub fn path(&self, id: u32) -> Option<String> {
        self.read().paths.get(id as usize).cloned()
    }

    /// The id of a watched folder by identity.
    pub fn find(&self, key: &DirKey) -> Option<u32> {
        self.read().current.get(key).copied()
    }

    /// The same, or of a folder watched before the last re-plan (see `Inner::seen`).
    fn find_ever(&self, key: &DirKey) -> Option<u32> {
        let inner = self.read();
        inner
            .current
            .get(key)
            .or_else(|| inner.seen.get(key))
            .copied()
    }

    /// The kernel entries for `prefixes`, made the current set. `probe` stats a path
    /// (following symlinks, as the config's spelling means).
    pub fn plan(&self, prefixes: &[String], probe: impl Fn(&Path) -> Probe) -> Vec<(DirKey, u32)> {
        let mut found: Vec<(DirKey, String)> = Vec::new();
        for prefix in prefixes {
            let mut at = PathBuf::from(prefix);
            loop {
                if let Some(Some((dev, ino, true))) = probe(&at) {
                    found.push((
                        DirKey::from_stat(dev, ino),
                        at.to_string_lossy().into_owned(),
                    ));
                    break;
                }
                if !at.pop() {
                    break;
                }
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        let mut current = HashMap::new();
        for (key, path) in found {
            let id = match inner.paths.iter().position(|p| *p == path) {
                Some(i) => i as u32,
                None => {
                    inner.paths.push(path);
                    (inner.paths.len() - 1) as u32
                }
            };
            // Two spellings of one folder: the first (prefixes are sorted) names it.
            if let std::collections::hash_map::Entry::Vacant(v) = current.entry(key) {
                v.insert(id);
                out.push((key, id));
            }
        }
        for (k, id) in &current {
            inner.seen.insert(*k, *id);
        }
        inner.current = current;
        out
    }

    /// The path as configured for where the agent resolved a caller's string: the deepest
    /// watched folder on the way, and the rest below it. None: under no watched folder.
    pub fn place(&self, r: &Resolved) -> Option<String> {
        for (len, dev, ino) in &r.chain {
            if let Some(id) = self.find_ever(&DirKey::from_stat(*dev, *ino)) {
                let base = self.path(id)?;
                let rest = r.dir.get(*len..).unwrap_or("");
                return Some(super::normalize(&format!("{base}/{rest}/{}", r.name)));
            }
        }
        None
    }

    /// A record's path: `rel` below folder `id` (as configured), or `rel` itself when the
    /// id is unknown.
    pub fn join(&self, id: u32, rel: &str) -> String {
        match self.path(id) {
            Some(base) => format!("{base}/{rel}"),
            None => rel.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_from(entries: &[(&str, u64, bool)]) -> impl Fn(&Path) -> Probe {
        let map: HashMap<PathBuf, (u64, u64, bool)> = entries
            .iter()
            .map(|(p, ino, dir)| (PathBuf::from(p), (7, *ino, *dir)))
            .collect();
        move |p: &Path| Some(map.get(p).copied())
    }

    #[test]
    fn each_prefix_is_watched_through_its_nearest_existing_folder() {
        let w = WatchDirs::default();
        let probe = probe_from(&[
            ("/", 2, true),
            ("/etc", 10, true),
            ("/etc/passwd", 11, false),
            ("/srv", 20, true),
            ("/srv/data", 21, true),
        ]);
        let prefixes = ["/etc/passwd", "/srv/data", "/srv/notyet/deeper"].map(String::from);
        let plan = w.plan(&prefixes, &probe);
        let named: Vec<(u64, String)> = plan
            .iter()
            .map(|(k, id)| (k.ino, w.path(*id).unwrap()))
            .collect();
        assert_eq!(
            named,
            [
                (10, "/etc".into()),
                (21, "/srv/data".into()),
                (20, "/srv".into())
            ]
        );
        assert_eq!(w.find(&DirKey::from_stat(7, 21)), plan.get(1).map(|e| e.1));
        // Ids survive a reload that drops the folder; the set does not.
        let id = plan[1].1;
        let again = w.plan(&["/etc/passwd".to_owned()], &probe);
        assert_eq!(again.len(), 1);
        assert_eq!(w.find(&DirKey::from_stat(7, 21)), None);
        assert_eq!(w.path(id).as_deref(), Some("/srv/data"));
    }

    #[test]
    fn a_resolved_path_is_placed_under_the_deepest_watched_folder() {
        let w = WatchDirs::default();
        let probe = probe_from(&[("/", 2, true), ("/srv", 20, true), ("/srv/data", 21, true)]);
        w.plan(&["/srv/data".to_owned()], &probe);
        // Reached through a bind mount at /mnt/b: /mnt/b has the folder's identity.
        let r = Resolved {
            dir: "/mnt/b/sub".into(),
            name: "f".into(),
            chain: vec![(10, 7, 99), (6, 7, 21), (4, 7, 30), (0, 7, 2)],
        };
        assert_eq!(w.place(&r).as_deref(), Some("/srv/data/sub/f"));
        let outside = Resolved {
            dir: "/mnt".into(),
            name: "f".into(),
            chain: vec![(4, 7, 30), (0, 7, 2)],
        };
        assert_eq!(w.place(&outside), None);
    }

    #[test]
    fn device_numbers_follow_the_kernel_encoding() {
        // st_dev 8:1 (sda1) is 0x801 in glibc's encoding, MKDEV(8, 1) in the kernel's.
        assert_eq!(DirKey::from_stat(0x801, 5).dev, (8 << 20) | 1);
        // A large minor (tmpfs anonymous devices are 0:N).
        let st_dev = libc::makedev(0, 300);
        assert_eq!(DirKey::from_stat(st_dev, 5).dev, 300);
    }
}
