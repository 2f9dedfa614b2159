//! Checked-in generated code stays what its generator makes of its source: the extension
//! manager's Thrift code (`sdk/src/osquery.rs`) from `osquery.thrift` by Debian's
//! `thrift-compiler` (installed by `cargo xtask setup`).

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::root;

/// Regenerates the Thrift code into a temporary folder and compares it with the checked-in
/// file; a difference (or a missing compiler) is an error that says how to fix it.
pub fn check() -> Result<()> {
    let dir = root().join("sdk/src");
    let out = root().join("target/thrift-check");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let status = Command::new("thrift")
        .args(["--gen", "rs", "-out"])
        .arg(&out)
        .arg(dir.join("osquery.thrift"))
        .status()
        .context("running `thrift` (Debian's thrift-compiler; `cargo xtask setup` installs it)")?;
    if !status.success() {
        bail!(
            "thrift --gen rs failed on {}",
            dir.join("osquery.thrift").display()
        );
    }
    let fresh = std::fs::read(out.join("osquery.rs")).context("the generated osquery.rs")?;
    let kept = std::fs::read(dir.join("osquery.rs")).context("the checked-in osquery.rs")?;
    if fresh != kept {
        bail!(
            "sdk/src/osquery.rs differs from what thrift makes of osquery.thrift: \
             run `thrift --gen rs -out sdk/src sdk/src/osquery.thrift`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn thrift_code_is_what_its_generator_makes() {
        super::check().unwrap();
    }
}
