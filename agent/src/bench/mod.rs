//! The ingest, query and logger measurements behind `cargo xtask bench` (`osprey
//! bench-ingest`, `osprey bench-query`, `osprey bench-logger`), compiled only with the `bench`
//! feature.

pub mod ingest;
pub mod logger;
pub mod query;
