//! `execloop [--rate R] [--secs S] [--path /bin/true]`: run `/bin/true` (fork + exec + wait)
//! `R` times a second for `S` seconds (`--rate 0`: as fast as possible), then print
//! `execs=N secs=T execs_per_sec=R`.

use std::{
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use bench::Args;

const USAGE: &str = "usage: execloop [--rate R (0 = unthrottled)] [--secs S] [--path BIN]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("execloop: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let args = Args::parse(args, &["rate", "secs", "path"], USAGE)?;
    let rate: u64 = args.num("rate", 0)?;
    let secs: f64 = args.num("secs", 5.0)?;
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0) {
        bail!("--secs must be between 0 and 86400, not {secs}");
    }
    if rate > 1_000_000 {
        bail!("--rate must be at most 1000000, not {rate}");
    }
    let path = args.get("path").unwrap_or("/bin/true").to_owned();
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut execs: u64 = 0;
    let mut failures: u64 = 0;
    while start.elapsed() < limit {
        if rate > 0 {
            // The n-th exec is due at n / rate seconds; sleep until then. A loop that falls
            // behind does not burst to catch up by more than the one it is late for.
            let due = Duration::from_secs_f64(execs as f64 / rate as f64);
            let now = start.elapsed();
            if due > now {
                std::thread::sleep(due - now);
                if start.elapsed() >= limit {
                    break;
                }
            }
        }
        let status = Command::new(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {path}"))?;
        if !status.success() {
            failures += 1;
        }
        execs += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "execs={execs} failures={failures} secs={elapsed:.6} execs_per_sec={:.1}",
        execs as f64 / elapsed
    );
    Ok(())
}
