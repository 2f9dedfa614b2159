//! The ingest and query measurements behind `cargo xtask bench` (`osprey bench-ingest`,
//! `osprey bench-query`), compiled only with the `bench` feature.

pub mod ingest;
pub mod query;
