//! The Osprey agent. See ARCHITECTURE.md for the map; in short:
//!
//! - [`ebpf`]: load the kernel programs, resolve offsets from BTF, decode ring-buffer records.
//! - [`pipeline`]: publishers -> bounded queues -> subscribers -> batched storage writes.
//! - [`storage`]: RocksDB, one column family per event table, keys in time order, no index.
//! - [`sql`]: SQLite virtual tables over stored events and live state.
//! - [`cli`], [`daemon`]: the `osprey` command.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod ebpf;
pub mod events;
pub mod fim;
pub mod flags;
pub mod pipeline;
pub mod sql;
pub mod stats;
pub mod storage;
pub mod sys;
