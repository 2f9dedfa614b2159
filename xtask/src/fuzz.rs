//! `cargo xtask fuzz`: libFuzzer on the targets of `fuzz/` through cargo-fuzz with the pinned
//! nightly (address sanitizer, release build with debug assertions, so overflows fail too).
//!
//! - `fuzz [TARGET] [SECONDS]`: one target (default `manager_request`, 600 s).
//! - `fuzz --seconds N`: every target for N seconds, one after another, then a table.
//! - `fuzz --smoke`: every target for [`SMOKE_SECONDS`] (part of `cargo xtask test`).
//!
//! cargo-fuzz is installed into `.tools/bin` at the first run. The corpus of a target starts
//! from its seeds in `fuzz/corpus/<target>/`: the SDK's (one well-formed request per manager
//! method, or well-formed replies) are written here; the agent's targets write theirs at
//! start-up (`agent::fuzzing::write_seeds`, asked for through `OSPREY_FUZZ_SEEDS`). A crash
//! leaves its input in `fuzz/artifacts/<target>/` and fails the command. The summary of a run
//! comes from libFuzzer's `-print_final_stats=1` output and its last status line.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{root, run_checked, setup};

const CARGO_FUZZ_VERSION: &str = "0.13.1";
/// The SDK's targets (extension protocol), then the agent's decoders.
const TARGETS: &[&str] = &[
    "manager_request",
    "extension_reply",
    "context",
    "ring_record",
    "stored_value",
    "config_json",
    "flagfile",
    "tls_reply",
    "osv_record",
];
/// How long `--smoke` runs each target.
pub const SMOKE_SECONDS: u64 = 5;
/// cargo-fuzz's build options, the same for `build` and `run` so a run reuses the build.
const BUILD_OPTIONS: &[&str] = &["--debug-assertions"];

pub fn fuzz(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("--smoke") => smoke(),
        Some("--seconds") => {
            let seconds = seconds_arg(args.get(1), None)?;
            all(seconds)
        }
        target => {
            let name = target.unwrap_or("manager_request");
            let Some(&target) = TARGETS.iter().find(|t| **t == name) else {
                bail!("no fuzz target {name:?} (known: {})", TARGETS.join(", "));
            };
            let seconds = seconds_arg(args.get(1), Some(600))?;
            install()?;
            let outcome = run_target(target, seconds)?;
            eprintln!("xtask fuzz: {}", outcome.line());
            if outcome.crashed {
                bail!("{target} crashed (the input is in fuzz/artifacts/{target}/)");
            }
            Ok(())
        }
    }
}

fn seconds_arg(arg: Option<&String>, default: Option<u64>) -> Result<u64> {
    match (arg, default) {
        (None, Some(d)) => Ok(d),
        (None, None) => bail!("--seconds needs a number of seconds"),
        (Some(s), _) => s
            .parse()
            .with_context(|| format!("{s:?} is not a number of seconds")),
    }
}

/// Every target for a few seconds, after one build of them all: the smoke run of
/// `cargo xtask test`.
pub fn smoke() -> Result<()> {
    let start = Instant::now();
    all(SMOKE_SECONDS)?;
    eprintln!(
        "xtask fuzz: smoke run done in {} s",
        start.elapsed().as_secs()
    );
    Ok(())
}

/// Every target for `seconds` each, one after another (a crash does not stop the others),
/// then the table; fails when one crashed.
fn all(seconds: u64) -> Result<()> {
    install()?;
    let start = Instant::now();
    run_checked(cargo_fuzz()?.arg("build").args(BUILD_OPTIONS))?;
    eprintln!(
        "xtask fuzz: built the {} targets in {} s",
        TARGETS.len(),
        start.elapsed().as_secs()
    );
    let mut outcomes = Vec::new();
    for target in TARGETS {
        let o = run_target(target, seconds)?;
        eprintln!("xtask fuzz: {}", o.line());
        outcomes.push(o);
    }
    eprintln!("\n{}", table(&outcomes));
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crashed)
        .map(|o| o.target)
        .collect();
    if !crashed.is_empty() {
        bail!(
            "crashed: {} (inputs in fuzz/artifacts/)",
            crashed.join(", ")
        );
    }
    Ok(())
}

fn install() -> Result<()> {
    let tools = setup::tools_dir();
    if tools.join("bin/cargo-fuzz").exists() {
        return Ok(());
    }
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
    )
}

/// `cargo fuzz` in `fuzz/` with the pinned nightly.
fn cargo_fuzz() -> Result<Command> {
    let toolchain = setup::ebpf_toolchain()?;
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root().join("fuzz"))
        .env("PATH", setup::path_with_tools())
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .args(["run", &toolchain, "cargo", "fuzz"]);
    Ok(cmd)
}

/// What one run of a target did, from libFuzzer's output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub target: &'static str,
    pub runs: Option<u64>,
    pub seconds: Option<u64>,
    /// Covered edges (`cov:` of the last status line).
    pub cov: Option<u64>,
    /// Inputs in the corpus (`corp:`).
    pub corpus: Option<u64>,
    pub peak_rss_mb: Option<u64>,
    pub crashed: bool,
}

impl Outcome {
    fn line(&self) -> String {
        let n = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        format!(
            "{}: {} runs in {} s, cov {}, corpus {}, peak RSS {} MB, {}",
            self.target,
            n(self.runs),
            n(self.seconds),
            n(self.cov),
            n(self.corpus),
            n(self.peak_rss_mb),
            if self.crashed { "CRASH" } else { "no crash" }
        )
    }
}

/// The number after `key` in `line` (digits only; `corp: 12/3Kb` gives 12).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The value of a `stat::name: value` line.
fn stat_value(line: &str) -> Option<u64> {
    line.rsplit(':').next()?.trim().parse().ok()
}

/// Reads libFuzzer's output of one run (stderr) into an [`Outcome`].
pub fn parse_output(target: &'static str, output: &str, crashed: bool) -> Outcome {
    let mut o = Outcome {
        target,
        crashed,
        ..Outcome::default()
    };
    for line in output.lines() {
        if line.starts_with("stat::number_executed_units")
            || line.starts_with("stat::number_of_executed_units")
        {
            o.runs = stat_value(line);
        } else if line.starts_with("stat::peak_rss_mb") {
            o.peak_rss_mb = stat_value(line);
        } else if let Some(rest) = line.strip_prefix("Done ") {
            o.runs = o.runs.or_else(|| number_after(rest, ""));
            o.seconds = number_after(rest, " in ");
        } else if line.starts_with('#') && line.contains(" cov: ") {
            o.cov = number_after(line, " cov: ");
            o.corpus = number_after(line, " corp: ").or(o.corpus);
            o.peak_rss_mb = o.peak_rss_mb.or_else(|| number_after(line, " rss: "));
        }
    }
    o
}

/// The results as a Markdown table.
pub fn table(outcomes: &[Outcome]) -> String {
    let n = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
    let mut s = String::from(
        "| target | runs | seconds | cov (edges) | corpus | peak RSS (MB) | crash |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for o in outcomes {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            o.target,
            n(o.runs),
            n(o.seconds),
            n(o.cov),
            n(o.corpus),
            n(o.peak_rss_mb),
            if o.crashed { "yes" } else { "none" }
        ));
    }
    s
}

/// Runs libFuzzer on `target` for `seconds`, its output passed through and kept for the
/// summary.
fn run_target(target: &'static str, seconds: u64) -> Result<Outcome> {
    let corpus = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    match target {
        "manager_request" => write_seeds(&corpus, &osprey_sdk::fuzzing::seeds())?,
        "extension_reply" => write_seeds(&corpus, &osprey_sdk::fuzzing::reply_seeds())?,
        _ => {}
    }
    eprintln!("xtask fuzz: {target} for {seconds} s");
    let mut cmd = cargo_fuzz()?;
    cmd.env("OSPREY_FUZZ_SEEDS", &corpus)
        .args(["run"])
        .args(BUILD_OPTIONS)
        .arg(target)
        .arg(&corpus)
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ])
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {cmd:?}"))?;
    // Status lines every few seconds for ten minutes: only what the summary reads is kept.
    let mut kept = String::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines() {
            let line = line.unwrap_or_default();
            eprintln!("{line}");
            if line.starts_with("stat::") || line.starts_with("Done ") || line.contains(" cov: ") {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {cmd:?}"))?;
    Ok(parse_output(target, &kept, !status.success()))
}

fn write_seeds(dir: &Path, seeds: &[Vec<u8>]) -> Result<()> {
    for (i, seed) in seeds.iter().enumerate() {
        let p = dir.join(format!("seed-{i}"));
        std::fs::write(&p, seed).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of a real run (`cargo xtask fuzz context 5`).
    const OUTPUT: &str = "\
#65536\tpulse  cov: 1100 ft: 4000 corp: 420/21Kb lim: 4096 exec/s: 21845 rss: 80Mb
#110323\tDONE   cov: 1111 ft: 4102 corp: 431/22Kb lim: 4096 exec/s: 22064 rss: 81Mb
Done 110323 runs in 5 second(s)
stat::number_executed_units: 110323
stat::average_exec_per_sec:     22064
stat::new_units_added:          310
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              81
";

    #[test]
    fn final_stats_are_read() {
        assert_eq!(
            parse_output("context", OUTPUT, false),
            Outcome {
                target: "context",
                runs: Some(110_323),
                seconds: Some(5),
                cov: Some(1111),
                corpus: Some(431),
                peak_rss_mb: Some(81),
                crashed: false,
            }
        );
        let crash = parse_output("context", "==1== ERROR: libFuzzer: deadly signal\n", true);
        assert!(crash.crashed && crash.runs.is_none());
        assert!(table(&[crash]).contains("| context | ? | ? | ? | ? | ? | yes |"));
    }

    #[test]
    fn targets_match_the_fuzz_crate() {
        let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
        for t in TARGETS {
            assert!(manifest.contains(&format!("name = \"{t}\"")), "{t}");
        }
        assert_eq!(manifest.matches("[[bin]]").count(), TARGETS.len());
    }
}
