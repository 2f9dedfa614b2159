//! Other platforms from this machine: `cargo xtask cross-check` checks and lints the crates
//! that build for Windows, macOS (Apple silicon) and Linux on arm64 (the SDK and the Rust
//! sample everywhere; the agent, with its kernel programs, for Linux on arm64: its C
//! dependencies build with Debian's aarch64 cross compiler), and `cargo xtask wine-test`
//! runs the SDK's unit tests, the named-pipe transport's among them, as a Windows program
//! under wine. Both run in `cargo xtask test`.
//!
//! Debian 12's wine has no `bcryptprimitives.dll`, whose `ProcessPrng` the Rust standard
//! library calls at start-up; setup builds a stand-in (`ProcessPrng` over
//! `SystemFunction036`, i.e. RtlGenRandom) with mingw into `.tools/wine/`, and the test
//! folder gets a copy.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context as _, Result};

use crate::{cargo, root, run_checked, setup::tools_dir};

/// The targets checked besides the host.
pub const TARGETS: &[&str] = &[
    "x86_64-pc-windows-gnu",
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
];
const WINDOWS: &str = "x86_64-pc-windows-gnu";
/// The crates that build for every target now.
const CRATES: &[&str] = &["osprey-sdk", "osprey-example-extension"];
/// The crates that build for Linux targets only (the agent is Linux-only so far).
const LINUX_CRATES: &[&str] = &["agent"];
const WINE: &str = "/usr/lib/wine/wine64";

const PRNG_STUB: &str = r#"#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
"#;

fn stub_dll() -> PathBuf {
    tools_dir().join("wine/bcryptprimitives.dll")
}

/// The rustup targets and the wine stand-in DLL (idempotent).
pub fn setup() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup")?;
    let have = String::from_utf8_lossy(&installed.stdout).into_owned();
    let missing: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| !have.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask setup: adding Rust targets {missing:?}");
        run_checked(
            Command::new("rustup")
                .args(["target", "add"])
                .args(&missing),
        )?;
    }
    let dll = stub_dll();
    if !dll.exists() {
        let dir = dll.parent().expect("a folder");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let src = dir.join("bcryptprimitives.c");
        fs::write(&src, PRNG_STUB)?;
        eprintln!("xtask setup: building {} for wine", dll.display());
        run_checked(
            Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-o"])
                .arg(&dll)
                .arg(&src)
                .arg("-ladvapi32"),
        )?;
    }
    Ok(())
}

/// `cargo clippy -D warnings` (which checks) of [`CRATES`] for each of [`TARGETS`].
pub fn cross_check() -> Result<()> {
    for target in TARGETS {
        eprintln!("xtask cross-check: {target}");
        let mut cmd = cargo();
        cmd.args(["clippy", "--all-targets", "--target", target]);
        for c in CRATES {
            cmd.args(["--package", c]);
        }
        if target.contains("-linux-") {
            for c in LINUX_CRATES {
                cmd.args(["--package", c]);
            }
        }
        run_checked(cmd.args(["--", "-D", "warnings"]))?;
    }
    Ok(())
}

/// The SDK's unit tests as a Windows program under wine.
pub fn wine_test() -> Result<()> {
    let deps = root().join("target").join(WINDOWS).join("debug/deps");
    run_checked(cargo().args([
        "test",
        "--package",
        "osprey-sdk",
        "--target",
        WINDOWS,
        "--no-run",
    ]))?;
    fs::copy(stub_dll(), deps.join("bcryptprimitives.dll")).with_context(|| {
        format!(
            "copying {} (cargo xtask setup builds it)",
            stub_dll().display()
        )
    })?;
    run_checked(
        cargo()
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE)
            .env("WINEPREFIX", root().join("target/wine-prefix"))
            .env("WINEDEBUG", "-all")
            .args(["test", "--package", "osprey-sdk", "--target", WINDOWS]),
    )
}
