//! `cargo xtask bench`: placeholder until the benchmark issue lands.

use anyhow::Result;

pub fn bench(_args: &[String]) -> Result<()> {
    anyhow::bail!("cargo xtask bench is not implemented yet")
}
