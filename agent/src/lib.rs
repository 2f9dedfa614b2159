//! The Osprey agent. See ARCHITECTURE.md for the map; in short:
//!
//! - [`sys`]: all OS access (clocks, /proc and /etc readers, the eBPF loader and ring buffers).
//! - [`rt`]: shutdown broadcast, counters, supervised threads and tasks.
//! - [`storage`]: RocksDB, one column family per event table, keys in time order, no index.
//! - [`pipeline`]: bounded queues -> subscribers -> batched storage writes.
//! - [`sources`]: one folder per event source (attach, publisher, decoder, subscriber, table),
//!   registered in one list.
//! - [`sql`]: SQLite virtual tables over stored events and live state.
//! - [`control`]: the control plane on one tokio runtime (config service, reports).
//! - [`schedule`], [`logger`]: osquery's schedule and packs, differential results, and the
//!   loggers behind one durable buffer.
//! - [`cli`], [`daemon`]: the `osprey` command and the wiring.
//!
//! The layering between them is stated in ARCHITECTURE.md and checked by `cargo xtask lint`.

#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod events;
pub mod extensions;
pub mod fim;
pub mod flags;
pub mod fuzzing;
pub mod logger;
pub mod pipeline;
pub mod remote;
pub mod rt;
pub mod schedule;
pub mod sources;
pub mod sql;
pub mod stats;
pub mod storage;
pub mod sys;
pub mod watchdog;
