//! Least privilege after start-up: every thread of the daemon keeps only the capabilities it
//! still needs once its kernel programs are loaded and attached.
//!
//! Linux capabilities belong to each thread, and the daemon has threads before the programs
//! load (the control plane's runtime, RocksDB's). So the new sets are applied in every
//! thread: each one is sent a real-time signal whose handler calls `capset` for itself (a
//! system call, async-signal-safe), the caller applies them to itself, and the threads are
//! checked in `/proc/self/task/*/status` until each has them (new threads started meanwhile
//! are found on the next pass; a thread made after the drop inherits the dropped sets). A
//! thread that blocks every signal (librdkafka's own threads do) cannot be reached: it is
//! named in the report. The bounding set is left alone, so the helper processes the daemon
//! starts (fs workers, extensions) are what they would have been.

use std::{
    io,
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// The sets to apply, as the two 32-bit words of capset's version 3 data.
static WANT: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
static APPLIED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets this thread's effective and permitted sets to [`WANT`] (inheritable empty).
fn apply_here() -> bool {
    let words = [
        WANT[0].load(Ordering::SeqCst),
        WANT[1].load(Ordering::SeqCst),
    ];
    let mut header = Header {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = words.map(|w| Data {
        effective: w,
        permitted: w,
        inheritable: 0,
    });
    // SAFETY: capset reads one header and two data structs of the layout version 3 defines,
    // both valid for the duration of the call; pid 0 is this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    rc == 0
}

extern "C" fn on_signal(_: libc::c_int) {
    if !apply_here() {
        FAILED.fetch_add(1, Ordering::SeqCst);
    }
    APPLIED.fetch_add(1, Ordering::SeqCst);
}

fn signal() -> libc::c_int {
    libc::SIGRTMIN() + 5
}

/// `CapEff` and `CapPrm` of one thread, from its status file.
fn thread_caps(tid: &str) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let get = |key: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some((get("CapEff:")?, get("CapPrm:")?))
}

fn tids() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What [`keep_only`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The sets every reached thread now has.
    pub mask: u64,
    pub threads: usize,
    /// Threads whose sets could not be changed (they block every signal).
    pub unreached: Vec<String>,
}

/// Keeps `keep` (capability numbers) of what this process has, in every thread.
pub fn keep_only(keep: &[u32]) -> io::Result<Dropped> {
    // SAFETY: gettid has no preconditions and cannot fail.
    let me = unsafe { libc::gettid() }.to_string();
    let (_, permitted) = thread_caps(&me).ok_or_else(|| io::Error::other("no /proc/self"))?;
    let mask = keep.iter().fold(0u64, |m, c| m | (1u64 << c)) & permitted;
    WANT[0].store(mask as u32, Ordering::SeqCst);
    WANT[1].store((mask >> 32) as u32, Ordering::SeqCst);
    // SAFETY: sigaction with a zeroed struct plus a handler that only makes system calls
    // and touches atomics; the old action is not needed.
    let rc = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_signal as *const () as usize;
        act.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(signal(), &act, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if !apply_here() {
        return Err(io::Error::last_os_error());
    }
    let pid = std::process::id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pending: Vec<String> = tids()
            .into_iter()
            .filter(|t| thread_caps(t).is_some_and(|(e, p)| e != mask || p != mask))
            .collect();
        if pending.is_empty() || Instant::now() > deadline {
            return Ok(Dropped {
                mask,
                threads: tids().len(),
                unreached: pending,
            });
        }
        let before = APPLIED.load(Ordering::SeqCst);
        let mut sent = 0;
        for t in &pending {
            let Ok(tid) = t.parse::<libc::pid_t>() else {
                continue;
            };
            // SAFETY: tgkill sends a signal to one thread of this process; a thread that
            // has exited meanwhile is an ESRCH, ignored.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal()) } == 0 {
                sent += 1;
            }
        }
        let wait = Instant::now() + Duration::from_millis(100);
        while APPLIED.load(Ordering::SeqCst) < before + sent && Instant::now() < wait {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Decodes a capability mask into names (`cap_bpf`, ...), lowest bit first.
pub fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            caps::all()
                .into_iter()
                .find(|c| c.index() == b)
                .map_or(format!("cap_{b}"), |c| c.to_string().to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_decode_to_names() {
        assert_eq!(
            super::names((1 << 2) | (1 << 39)),
            ["cap_dac_read_search", "cap_bpf"]
        );
    }
}
