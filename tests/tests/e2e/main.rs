//! End-to-end tests: the real daemon, the real kernel, the real RocksDB and SQLite.
//! One test binary, one module per area.

mod cli;
mod config;
mod deploy;
mod enrichment;
mod evasion;
mod extensions;
mod fallback;
mod file;
mod fleet;
mod package;
mod parity;
mod private;
mod process;
mod schedule;
mod socket;
mod storage;
mod systemd;
mod watchdog;
