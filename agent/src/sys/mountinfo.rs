//! Mount tables (`/proc/<pid>/mountinfo`) and the one question the file source asks of
//! them: a folder reached through a bind mount of a subfolder, spelled through a mount of its
//! file system's root instead, so that the folders above it in that file system (a watched
//! folder among them) are on the way.

use std::{
    io::{Read as _, Seek as _},
    os::fd::AsFd as _,
    sync::{Arc, Mutex},
};

/// One line of a mountinfo file: what matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The file system's device, as `st_dev` numbers it.
    pub dev: u64,
    /// The folder of the file system mounted here (`/` for its root).
    pub root: String,
    /// Where it is mounted, as the process that owns the table sees it.
    pub point: String,
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash). A backslash not followed by three octal digits (of a byte) is kept as it is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(code) = b.get(i + 1..i + 4).and_then(|d| {
                // from_str_radix would also take a sign; only three octal digits count.
                if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    return None;
                }
                u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()
            })
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of a mountinfo text (proc(5)); malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (_id, _parent, devno, root, point) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let (major, minor) = devno.split_once(':')?;
            let dev = rustix::fs::makedev(major.parse().ok()?, minor.parse().ok()?);
            Some(Mount {
                dev,
                root: unescape(root),
                point: unescape(point),
            })
        })
        .collect()
}

/// `path` is `prefix` or below it, component-wise.
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

fn below(path: &str, prefix: &str) -> String {
    if prefix == "/" {
        return path.to_owned();
    }
    path[prefix.len()..].to_owned()
}

fn joined(base: &str, rest: &str) -> String {
    match (base == "/", rest.is_empty()) {
        (true, true) => "/".to_owned(),
        (true, false) => rest.to_owned(),
        (false, _) => format!("{base}{rest}"),
    }
}

/// `dir` (absolute, normalised) spelled through a mount of a higher folder of the same file
/// system when the mount `dir` is under mounts a subfolder (a bind mount of `D/sub`: `dir` is
/// then also `D/sub/…` through the mount of D's file system). None: `dir` is under a mount of
/// its file system's root, or no other mount reaches higher. The caller checks that both
/// spellings name one folder (a mount over the other spelling could hide it).
pub fn through_higher_mount(mounts: &[Mount], dir: &str) -> Option<String> {
    // The mount `dir` is under: the deepest mount point, the last mounted among equals.
    let (_, top) = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| under(dir, &m.point))
        .max_by_key(|(i, m)| (m.point.len(), *i))?;
    if top.root == "/" {
        return None;
    }
    let inner = joined(&top.root, &below(dir, &top.point));
    let alt = mounts
        .iter()
        .filter(|m| m.dev == top.dev && m.root.len() < top.root.len() && under(&inner, &m.root))
        .min_by_key(|m| m.root.len())?;
    Some(joined(&alt.point, &below(&inner, &alt.root)))
}

/// This process's mount table, re-read only when the kernel says it changed (poll on an
/// open mountinfo file reports `POLLPRI` after every mount or unmount).
pub fn own() -> Arc<Vec<Mount>> {
    static CACHE: Mutex<Option<(std::fs::File, Arc<Vec<Mount>>)>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((file, mounts)) = guard.as_mut() {
        let mut fds = [nix::poll::PollFd::new(
            file.as_fd(),
            nix::poll::PollFlags::POLLPRI,
        )];
        // An error counts as a change: the table is read again.
        let changed = !matches!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO),
            Ok(0)
        );
        if !changed {
            return mounts.clone();
        }
        let mut text = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut text).is_ok() {
            *mounts = Arc::new(parse(&text));
            return mounts.clone();
        }
    }
    let Ok(mut file) = std::fs::File::open("/proc/self/mountinfo") else {
        return Arc::new(Vec::new());
    };
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return Arc::new(Vec::new());
    }
    let mounts = Arc::new(parse(&text));
    *guard = Some((file, mounts.clone()));
    mounts
}

/// The mount table of process `pid` (read each time: another namespace's table is asked for
/// rarely). Empty when it cannot be read.
pub fn of(pid: u32) -> Vec<Mount> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /tmp/t rw shared:2 - tmpfs tmpfs rw
31 22 0:40 /d /tmp/bind rw shared:2 - tmpfs tmpfs rw
32 22 0:40 /d/sub /tmp/bind\\040sub rw shared:2 - tmpfs tmpfs rw
33 22 8:1 /srv/data /data rw - ext4 /dev/sda1 rw
bad line
";

    #[test]
    fn parses_devices_roots_and_escaped_points() {
        let m = parse(TABLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[3].point, "/tmp/bind sub");
        assert_eq!(m[3].root, "/d/sub");
        assert_eq!(m[3].dev, rustix::fs::makedev(0, 40));
        assert_eq!(m[0].dev, rustix::fs::makedev(8, 1));
    }

    #[test]
    fn a_bind_of_a_subfolder_is_spelled_through_its_file_systems_root() {
        let m = parse(TABLE);
        let t = |d: &str| through_higher_mount(&m, d);
        assert_eq!(t("/tmp/bind sub/x").as_deref(), Some("/tmp/t/d/sub/x"));
        assert_eq!(t("/tmp/bind sub").as_deref(), Some("/tmp/t/d/sub"));
        assert_eq!(t("/tmp/bind/y").as_deref(), Some("/tmp/t/d/y"));
        assert_eq!(t("/data/a/b").as_deref(), Some("/srv/data/a/b"));
        // Under a mount of a file system's root: nothing to do.
        assert_eq!(t("/tmp/t/d"), None);
        assert_eq!(t("/etc"), None);
        // `/tmp/bindx` is not under `/tmp/bind`.
        assert_eq!(t("/tmp/bindx"), None);
        // No mount of a higher folder: nothing.
        let only = parse("33 22 8:1 /srv/data /data rw - ext4 /dev/sda1 rw\n");
        assert_eq!(through_higher_mount(&only, "/data/a"), None);
    }

    #[test]
    fn own_table_has_the_root() {
        let m = own();
        assert!(m.iter().any(|e| e.point == "/"), "{m:?}");
        // Cached until a mount changes: the same table again.
        assert!(Arc::ptr_eq(&m, &own()) || *m == *own());
    }
}
