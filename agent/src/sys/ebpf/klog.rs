//! Kernel-side diagnostics: the programs' `aya_log_ebpf` statements, read into the daemon's
//! log. Off by default (`--ebpf_log_level=off`): the loader then sets the programs' level to
//! 0 and every log statement is one skipped branch in the kernel.

use std::panic::AssertUnwindSafe;

use anyhow::{Result, anyhow};
use aya::Ebpf;
use aya_log::EbpfLogger;

/// The value of the programs' `AYA_LOG_LEVEL` global for `--ebpf_log_level` (aya-log's
/// levels: error 1 … trace 5; 0 = off).
pub fn level_from_flag(v: &str) -> Result<u8> {
    Ok(match v {
        "off" => 0,
        "error" => 1,
        "warn" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        other => {
            return Err(anyhow!(
                "--ebpf_log_level must be off, error, warn, info, debug or trace, not {other:?}"
            ));
        }
    })
}

/// Forwards kernel records to the daemon's logger, prefixed `ebpf`, at a level the daemon's
/// default filter shows (the kernel already filtered by `--ebpf_log_level`).
struct Forward;

impl log::Log for Forward {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            l @ (log::Level::Error | log::Level::Warn) => l,
            _ => log::Level::Info,
        };
        log::log!(level, "ebpf {}: {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

/// The reader of the programs' log ring.
pub struct KernelLog {
    inner: EbpfLogger<Forward>,
    /// Records that could not be decoded (aya-log panics on them; caught and counted here).
    pub bad_records: u64,
}

impl std::fmt::Debug for KernelLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelLog").finish_non_exhaustive()
    }
}

impl KernelLog {
    pub(super) fn init(ebpf: &mut Ebpf) -> Result<Self> {
        let inner = EbpfLogger::init_with_logger(ebpf, Forward)
            .map_err(|e| anyhow!("reading the eBPF programs' log ring: {e}"))?;
        Ok(Self {
            inner,
            bad_records: 0,
        })
    }

    /// Logs what the programs wrote, until `stopping()`; then what is left.
    pub fn run(mut self, stopping: impl Fn() -> bool) {
        let timeout = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        loop {
            let stop = stopping();
            {
                let mut fds = [rustix::event::PollFd::new(
                    &self.inner,
                    rustix::event::PollFlags::IN,
                )];
                let _ = rustix::event::poll(&mut fds, Some(&timeout));
            }
            // aya-log unwraps its decoding: a bad record must not take the daemon down.
            if std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.flush())).is_err() {
                self.bad_records += 1;
                log::warn!(
                    "an undecodable eBPF log record was skipped ({} so far)",
                    self.bad_records
                );
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_aya_log() {
        assert_eq!(level_from_flag("off").unwrap(), 0);
        assert_eq!(
            level_from_flag("error").unwrap(),
            aya_log::Level::Error as u8
        );
        assert_eq!(
            level_from_flag("debug").unwrap(),
            aya_log::Level::Debug as u8
        );
        assert_eq!(
            level_from_flag("trace").unwrap(),
            aya_log::Level::Trace as u8
        );
        assert!(level_from_flag("loud").is_err());
    }
}
