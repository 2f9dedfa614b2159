//! `cargo xtask fuzz [TARGET] [SECONDS]`: libFuzzer on a target of `fuzz/` (default
//! `manager_request`, 600 s) through cargo-fuzz with the pinned nightly. cargo-fuzz is
//! installed into `.tools/bin` at the first run; the corpus starts from the SDK's seeds (one
//! well-formed request per manager method, or well-formed replies) in `fuzz/corpus/<target>/`. A crash leaves its
//! input in `fuzz/artifacts/<target>/` and fails the command.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::{root, run_checked, setup};

const CARGO_FUZZ_VERSION: &str = "0.13.1";
const TARGETS: &[&str] = &["manager_request", "extension_reply", "context"];

pub fn fuzz(args: &[String]) -> Result<()> {
    let target = args.first().map_or("manager_request", String::as_str);
    if !TARGETS.contains(&target) {
        bail!("no fuzz target {target:?} (known: {})", TARGETS.join(", "));
    }
    let seconds: u64 = match args.get(1) {
        None => 600,
        Some(s) => s
            .parse()
            .with_context(|| format!("{s:?} is not a number of seconds"))?,
    };
    let tools = setup::tools_dir();
    if !tools.join("bin/cargo-fuzz").exists() {
        eprintln!(
            "xtask fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} into {}",
            tools.display()
        );
        run_checked(
            Command::new("cargo")
                .env_remove("RUSTC")
                .args([
                    "install",
                    &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
                    "--locked",
                ])
                .arg("--root")
                .arg(&tools),
        )?;
    }
    let corpus = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    match target {
        "manager_request" => write_seeds(&corpus, &osprey_sdk::fuzzing::seeds())?,
        "extension_reply" => write_seeds(&corpus, &osprey_sdk::fuzzing::reply_seeds())?,
        _ => {}
    }
    let toolchain = setup::ebpf_toolchain()?;
    eprintln!("xtask fuzz: {target} for {seconds} s with {toolchain}");
    run_checked(
        Command::new("rustup")
            .current_dir(root().join("fuzz"))
            .env("PATH", setup::path_with_tools())
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .args(["run", &toolchain, "cargo", "fuzz", "run", target])
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ]),
    )
}

fn write_seeds(dir: &Path, seeds: &[Vec<u8>]) -> Result<()> {
    for (i, seed) in seeds.iter().enumerate() {
        let p = dir.join(format!("seed-{i}"));
        std::fs::write(&p, seed).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
