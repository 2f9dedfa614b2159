//! All access to the operating system: clocks and rlimits (here), host files under `/proc`,
//! `/etc` and `/sys` ([`procfs`]), and the kernel programs ([`ebpf`]: BTF, tracefs, loading,
//! ring buffers). Architecture invariant: `sys` imports nothing else of the crate, so a port
//! to another OS fills in this folder and nothing above it.

pub mod cpuid;
#[cfg(target_os = "linux")]
pub mod dbus;
pub mod ebpf;
pub mod fanotify;
pub mod fsguard;
pub mod hash;
pub mod helper;
pub mod mountinfo;
pub mod net;
pub mod notify;
pub mod privileges;
pub mod proc_connector;
pub mod procfs;
pub mod rpmdb;
pub mod utmp;
pub mod xattr;

mod clock;
#[cfg(test)]
pub use clock::testing as clock_testing;
pub use clock::{Clock, ClockSource, SystemClocks};

/// Stops a child process: SIGTERM, then SIGKILL if it has not exited after `grace`; reaped
/// either way.
pub fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let until = std::time::Instant::now() + grace;
    while std::time::Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: turns `bpf_ktime_get_ns()` into wall time.
pub fn monotonic_to_realtime_offset_ns() -> i128 {
    let rt = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let ns =
        |t: rustix::time::Timespec| i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    ns(rt) - ns(mono)
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Seconds since boot (CLOCK_BOOTTIME).
pub fn uptime_secs() -> u64 {
    rustix::time::clock_gettime(rustix::time::ClockId::Boottime).tv_sec as u64
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK. Newer ones use memcg accounting,
/// and some sandboxes refuse the raise: that is only worth a debug line.
pub fn raise_memlock_limit() {
    let unlimited = rustix::process::Rlimit {
        current: None,
        maximum: None,
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Memlock, unlimited) {
        log::debug!("could not raise RLIMIT_MEMLOCK ({e}); fine on kernels with memcg accounting");
    }
}

/// This process's resource limits: (osquery's name, soft, hard), None meaning unlimited; a
/// limit the kernel does not answer for is left out.
pub fn rlimits() -> Vec<(&'static str, Option<u64>, Option<u64>)> {
    use rustix::process::Resource as R;
    [
        ("as", R::As),
        ("core", R::Core),
        ("cpu", R::Cpu),
        ("data", R::Data),
        ("fsize", R::Fsize),
        ("locks", R::Locks),
        ("memlock", R::Memlock),
        ("msgqueue", R::Msgqueue),
        ("nice", R::Nice),
        ("nofile", R::Nofile),
        ("nproc", R::Nproc),
        ("rss", R::Rss),
        ("rtprio", R::Rtprio),
        ("rttime", R::Rttime),
        ("sigpending", R::Sigpending),
        ("stack", R::Stack),
    ]
    .into_iter()
    .map(|(name, r)| {
        let l = rustix::process::getrlimit(r);
        (name, l.current, l.maximum)
    })
    .collect()
}

/// Files this process creates from now on are its owner's only (umask 077): RocksDB's
/// files 0600 and its folders 0700. Files that must be wider (the logs, 0640) set their mode
/// explicitly.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Sets `dir`'s mode to 0700 when it allows group or others anything; says so when it did.
pub fn make_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        log::info!(
            "{}: mode {:04o} tightened to 0700 (the event store is private)",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// Writes this process's pid to `path`, never through a symlink (O_NOFOLLOW: a link planted
/// there is an error, not a file overwritten elsewhere as root).
pub fn write_pidfile(path: &std::path::Path) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    writeln!(f, "{}", std::process::id())
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// CLOCK_MONOTONIC now, in ns: the clock of `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// A random (version 4) UUID from the kernel's random source; None when it cannot be read.
pub fn random_uuid() -> Option<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
