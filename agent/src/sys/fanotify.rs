//! fanotify with directory file handles and names (`FAN_REPORT_DFID_NAME`), the file events
//! of the fallback source on a Linux host where eBPF is not allowed.
//!
//! A filesystem mark (`FAN_MARK_FILESYSTEM`) reports every change on one file system with
//! the acting process's pid and the changed entry as (folder handle, name); the folder's
//! handle is opened with `open_by_handle_at` (which needs CAP_DAC_READ_SEARCH) and its path
//! read back from `/proc/self/fd`. Records are parsed from the read buffer by offsets
//! (never by casting), so a short or odd record is an error value, never a panic.

use std::{
    collections::HashMap,
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
    time::Duration,
};

/// The changes the fallback asks for (the inotify set osquery's FIM reads).
pub const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_ONDIR;

/// One change: what happened (`mask`), who did it, and where (folder handle + name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub mask: u64,
    pub pid: i32,
    /// The event's file descriptor: none (-1) in this reporting mode.
    pub fd: i32,
    /// `fsid` + the folder's file handle (type and bytes): a key for the folder.
    pub dir: Vec<u8>,
    /// The entry's name in that folder (`.` or empty for the folder itself).
    pub name: Vec<u8>,
}

impl Record {
    /// The kernel's queue overflowed: changes were lost before this one.
    pub fn overflow(&self) -> bool {
        self.mask & libc::FAN_Q_OVERFLOW != 0
    }
}

#[derive(Debug)]
pub struct Fanotify {
    fd: OwnedFd,
    /// Open folders (by key) and their paths, and one fd per file system for
    /// `open_by_handle_at`.
    mounts: HashMap<[u8; 8], OwnedFd>,
}

fn errno(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

impl Fanotify {
    /// A notification group reporting folder handles and names (Linux 5.9+; CAP_SYS_ADMIN).
    pub fn new() -> io::Result<Self> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME;
        // SAFETY: fanotify_init takes two flag words and returns a new fd or -1.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_LARGEFILE) as u32) };
        if fd < 0 {
            return Err(errno("fanotify_init"));
        }
        // SAFETY: fd was just returned by fanotify_init and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            mounts: HashMap::new(),
        })
    }

    /// Watches the whole file system that holds `path` (a folder that exists). Returns its
    /// fsid, under which its records' folders are opened.
    pub fn mark_filesystem(&mut self, path: &Path) -> io::Result<[u8; 8]> {
        let c = cpath(path)?;
        // SAFETY: c is a valid NUL-terminated path; the fd is ours; the flags are constants.
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                MASK,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(errno(&format!("fanotify_mark {}", path.display())));
        }
        let fsid = fsid_of(path)?;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.mounts.entry(fsid) {
            // (Not O_PATH: open_by_handle_at refuses a path-only descriptor as its mount.)
            // SAFETY: c is a valid path; a folder opened read-only, nothing read.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(errno(&format!("open {}", path.display())));
            }
            // SAFETY: fd was just opened and is owned by nothing else.
            slot.insert(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(fsid)
    }

    /// Waits up to `timeout` for records; returns what one read gives (possibly none).
    pub fn read(&self, timeout: Duration, buf: &mut [u8]) -> io::Result<Vec<Record>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: buf is valid for buf.len() bytes of writes.
        let got = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if got < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        let records = parse(&buf[..got as usize])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        for r in &records {
            if r.fd >= 0 {
                // Not given in this reporting mode; if a kernel ever does, it is ours to close.
                // SAFETY: the kernel opened this fd for us with the event; nothing else uses it.
                unsafe { libc::close(r.fd) };
            }
        }
        Ok(records)
    }

    /// The path of a record's folder (opened by its handle), or why not.
    pub fn folder(&self, dir: &[u8]) -> io::Result<PathBuf> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "a short folder handle");
        let fsid: [u8; 8] = dir
            .get(..8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        let mount = self.mounts.get(&fsid).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "a file system that is not marked")
        })?;
        let handle = dir.get(8..).ok_or_else(bad)?;
        // struct file_handle: handle_bytes (u32), handle_type (i32), f_handle[].
        let mut h = handle.to_vec();
        if h.len() < 8 {
            return Err(bad());
        }
        let bytes = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if h.len() < 8 + bytes {
            return Err(bad());
        }
        h.truncate(8 + bytes);
        // SAFETY: h holds a complete struct file_handle (header + handle_bytes bytes), the
        // mount fd is ours; O_PATH opens no data.
        let fd = unsafe {
            libc::open_by_handle_at(
                mount.as_raw_fd(),
                h.as_mut_ptr().cast::<libc::file_handle>(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(errno("open_by_handle_at"));
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        path_of_fd(fd.as_raw_fd())
    }
}

fn path_of_fd(fd: RawFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
}

/// The fsid `statfs` gives for `path`, as the 8 bytes records carry.
fn fsid_of(path: &Path) -> io::Result<[u8; 8]> {
    let st = rustix::fs::statfs(path).map_err(io::Error::from)?;
    // SAFETY: __fsid_t is two plain i32s with no invalid bit patterns.
    let words: [i32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&words[0].to_ne_bytes());
    out[4..].copy_from_slice(&words[1].to_ne_bytes());
    Ok(out)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The records of one read: `fanotify_event_metadata` (event_len u32, vers u8, reserved
/// u8, metadata_len u16, mask u64, fd i32, pid i32), then info records (info_type u8, pad
/// u8, len u16; a DFID_NAME record: fsid 8 bytes, file_handle, the NUL-terminated name).
pub fn parse(buf: &[u8]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let len = u32_at(buf, at).ok_or("a short event header")? as usize;
        let ev = buf
            .get(at..at + len)
            .filter(|_| len >= 24)
            .ok_or_else(|| format!("an event of {len} bytes at {at}"))?;
        let vers = ev[4];
        if vers != libc::FANOTIFY_METADATA_VERSION {
            return Err(format!("fanotify metadata version {vers}"));
        }
        let meta_len = u16_at(ev, 6).ok_or("no metadata length")? as usize;
        let mask = u64_at(ev, 8).ok_or("no mask")?;
        let fd = u32_at(ev, 16).ok_or("no fd")? as i32;
        let pid = u32_at(ev, 20).ok_or("no pid")? as i32;
        let mut rec = Record {
            mask,
            pid,
            fd,
            dir: Vec::new(),
            name: Vec::new(),
        };
        let mut i = meta_len;
        while i + 4 <= ev.len() {
            let ty = ev[i];
            let ilen = u16_at(ev, i + 2).ok_or("no info length")? as usize;
            let info = ev
                .get(i..i + ilen)
                .filter(|_| ilen >= 4)
                .ok_or_else(|| format!("an info record of {ilen} bytes"))?;
            if ty == libc::FAN_EVENT_INFO_TYPE_DFID_NAME || ty == libc::FAN_EVENT_INFO_TYPE_DFID {
                // fsid (8), handle_bytes (4), handle_type (4), f_handle[handle_bytes], name.
                let hb = u32_at(info, 12).ok_or("no handle length")? as usize;
                let end = 20 + hb;
                rec.dir = info.get(4..end).ok_or("a handle past its record")?.to_vec();
                if ty == libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
                    let name = info.get(end..).unwrap_or(&[]);
                    let n = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                    rec.name = name[..n].to_vec();
                }
            }
            i += ilen;
        }
        out.push(rec);
        at += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(mask: u64, pid: i32, info: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&((24 + info.len()) as u32).to_ne_bytes());
        e.push(libc::FANOTIFY_METADATA_VERSION);
        e.push(0);
        e.extend_from_slice(&24u16.to_ne_bytes());
        e.extend_from_slice(&mask.to_ne_bytes());
        e.extend_from_slice(&(-1i32).to_ne_bytes());
        e.extend_from_slice(&pid.to_ne_bytes());
        e.extend_from_slice(info);
        e
    }

    fn dfid_name(handle: &[u8], name: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]); // fsid
        body.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
        body.extend_from_slice(&1i32.to_ne_bytes());
        body.extend_from_slice(handle);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        while (body.len() + 4) % 4 != 0 {
            body.push(0);
        }
        let mut i = vec![libc::FAN_EVENT_INFO_TYPE_DFID_NAME, 0];
        i.extend_from_slice(&((body.len() + 4) as u16).to_ne_bytes());
        i.extend_from_slice(&body);
        i
    }

    #[test]
    fn records_parse_and_bad_bytes_are_errors() {
        let mut buf = event(libc::FAN_CREATE, 42, &dfid_name(&[9, 9, 9, 9], "new.txt"));
        buf.extend(event(libc::FAN_Q_OVERFLOW, -1, &[]));
        let got = parse(&buf).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].mask, libc::FAN_CREATE);
        assert_eq!(got[0].pid, 42);
        assert_eq!(got[0].name, b"new.txt");
        assert_eq!(&got[0].dir[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(got[0].dir.len(), 8 + 8 + 4);
        assert!(got[1].overflow() && !got[0].overflow());
        // Truncations and corruptions: errors or records, never a panic.
        for cut in 0..buf.len() {
            let _ = parse(&buf[..cut]);
            let mut m = buf.clone();
            m[cut] ^= 0xff;
            let _ = parse(&m);
        }
        assert!(parse(&buf[..10]).is_err());
    }
}
