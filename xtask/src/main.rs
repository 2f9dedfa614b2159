//! `cargo xtask`: the project's automation. Every command that needs the eBPF toolchain calls
//! `setup` first, so a fresh machine needs no manual step.
//!
//! - `setup`  installs Debian packages, the pinned eBPF nightly and bpf-linker (idempotent).
//! - `build`  release binaries in `target/release/`.
//! - `run`    builds, starts the daemon with the embedded default config, opens the shell.
//! - `test`   every test, the privileged eBPF tests included, then `vm-test`.
//! - `vm-test` the kernel-source e2e tests in QEMU on Debian 5.10, 6.1 and 6.12 (`vm.rs`).
//! - `lint`   the layering check (`layers.rs`, rules in ARCHITECTURE.md), then `cargo fmt --check`
//!   and clippy `-D warnings` for userspace and the eBPF target.
//! - `bench`  the measurements behind the performance goals (`bench/RESULTS.md`).

mod bench;
mod cross;
mod fuzz;
mod generated;
mod layers;
mod package;
mod run;
mod setup;
mod vm;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  setup            install Debian packages, the eBPF nightly and bpf-linker (idempotent)
  build            build release binaries into target/release/
  run [-- ARGS]    build, start the daemon, then run `osprey ARGS` (default: the shell)
  test             run every test, the privileged eBPF tests included, then vm-test
  vm-test [KERNEL...]
                   the kernel-source e2e tests in QEMU on Debian kernels
                   (5.10, 6.1, 6.12; default: all), logs in target/vm/logs/
  package [--debug]
                   the Debian package: target/package/osprey_<version>_amd64.deb
                   (of the release build; --debug: of the debug build, as `test` does)
  lint             layering check (ARCHITECTURE.md rules), cargo fmt --check and
                   clippy -D warnings (userspace and eBPF target)
  bench [--quick]  run the benchmarks and write bench/RESULTS.md
  bench --guests   rerun only section 7 (hook strategies in QEMU guests)
  cross-check      clippy -D warnings of the portable crates for Windows, macOS arm64
                   and Linux arm64
  wine-test        the SDK's unit tests as a Windows program under wine
  fuzz [TARGET] [SECONDS]
                   libFuzzer on a target of fuzz/ (default manager_request, 600 s)
  fuzz --seconds N every fuzz target for N seconds each, then a table of the runs
  fuzz --smoke     every fuzz target for a few seconds (part of `test`)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    let rest: Vec<String> = rest.iter().skip_while(|a| *a == "--").cloned().collect();
    match cmd.as_str() {
        "setup" => setup::setup(),
        "build" => {
            setup::setup()?;
            build(true)
        }
        "run" => {
            setup::setup()?;
            build(true)?;
            run::run(&rest)
        }
        "test" => {
            setup::setup()?;
            test()
        }
        "vm-test" => {
            setup::setup()?;
            vm::vm_test(&rest)
        }
        "lint" => {
            setup::setup()?;
            lint()
        }
        "bench" => {
            setup::setup()?;
            build_bench()?;
            bench::bench(&rest)
        }
        "package" => {
            setup::setup()?;
            package::package(!rest.iter().any(|a| a == "--debug")).map(|_| ())
        }
        "cross-check" => {
            setup::setup()?;
            cross::cross_check()
        }
        "wine-test" => {
            setup::setup()?;
            cross::wine_test()
        }
        "fuzz" => {
            setup::setup()?;
            fuzz::fuzz(&rest)
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `cargo` with `.tools/bin` (bpf-linker) first on PATH.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root())
        .env("PATH", setup::path_with_tools());
    cmd
}

/// Runs `cmd`, failing with its command line when it exits non-zero.
pub fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

pub(crate) fn build(release: bool) -> Result<()> {
    let mut cmd = cargo();
    // The daemon and CLI, and the sample extension the end-to-end tests run against it.
    cmd.args([
        "build",
        "--package",
        "agent",
        "--package",
        "osprey-example-extension",
        "--bins",
    ]);
    if release {
        cmd.arg("--release");
    }
    run_checked(&mut cmd)
}

/// Release binaries with the `bench` feature: `osprey bench-ingest` and `bench-query`.
fn build_bench() -> Result<()> {
    run_checked(cargo().args([
        "build",
        "--package",
        "agent",
        "--bins",
        "--release",
        "--features",
        "bench",
    ]))
}

fn test() -> Result<()> {
    // The end-to-end tests run target/debug/osprey, so build it first; the package test
    // installs the Debian package.
    build(false)?;
    package::package(false)?;
    let mut cmd = cargo();
    // Default members: agent-ebpf only builds for the BPF target.
    cmd.args(["test", "--no-fail-fast", "--features", "agent/bench"]);
    let host = run_checked(&mut cmd);
    // Other platforms: the portable crates checked for each target, the SDK's tests under
    // wine; then a few seconds of libFuzzer on every fuzz target.
    let host = host
        .and(cross::cross_check())
        .and(cross::wine_test())
        .and(fuzz::smoke());
    // The same kernel-source tests on other kernels, in QEMU; run even when the host tests
    // failed, so one run reports both.
    let vm = vm::vm_test(&[]);
    match (host, vm) {
        (Ok(()), vm) => vm,
        (Err(e), Ok(())) => Err(e),
        (Err(h), Err(v)) => Err(h.context(format!("and {v:#}"))),
    }
}

fn lint() -> Result<()> {
    // Cheap and independent of the toolchains: which agent module may import which.
    layers::run()?;
    generated::check()?;
    run_checked(cargo().args(["fmt", "--all", "--check"]))?;
    // Default members (userspace); agent-ebpf is linted below for its own target.
    run_checked(cargo().args([
        "clippy",
        "--all-targets",
        "--features",
        "agent/bench",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The kernel programs, for the BPF target, with the pinned nightly.
    let toolchain = setup::ebpf_toolchain()?;
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root())
        .env("PATH", setup::path_with_tools())
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "--cfg=bpf_target_arch=\"x86_64\"",
        )
        .env("CARGO_TARGET_DIR", root().join("target/ebpf-clippy"))
        .args([
            "run",
            &toolchain,
            "cargo",
            "clippy",
            "--package",
            "agent-ebpf",
            "--bins",
        ])
        .args([
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .args(["--", "-D", "warnings"]);
    run_checked(&mut cmd)
}
