//! `openloop --file PATH [--secs S] [--write 1] [--rename 0]`: open() and close() one existing
//! file in a tight loop for `S` seconds, then print `ops=N secs=T ops_per_sec=R`.
//!
//! `--rename 1`: rename() the file to `PATH.b` and back instead, by absolute paths (a
//! path-based change the kernel cannot place from the string alone); `ops` counts renames.
//!
//! `--write 1` (the default) opens with `O_WRONLY` (no `O_TRUNC`, no `O_CREAT`): Osprey
//! reports opens for writing, so every iteration is one file event. `--write 0` opens
//! read-only. `ops` is the exact number of successful open() calls made.

use std::{
    fs::OpenOptions,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use bench::Args;

const USAGE: &str = "usage: openloop --file PATH [--secs S] [--write 0|1] [--rename 0|1]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openloop: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let args = Args::parse(args, &["file", "secs", "write", "rename"], USAGE)?;
    let file = args.get("file").context(USAGE)?.to_owned();
    let secs: f64 = args.num("secs", 2.0)?;
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0) {
        bail!("--secs must be between 0 and 86400, not {secs}");
    }
    let write = match args.get("write").unwrap_or("1") {
        "1" => true,
        "0" => false,
        other => bail!("--write takes 0 or 1, not {other:?}"),
    };
    match args.get("rename").unwrap_or("0") {
        "0" => {}
        "1" => return rename_loop(&file, secs),
        other => bail!("--rename takes 0 or 1, not {other:?}"),
    }
    let mut opts = OpenOptions::new();
    if write {
        opts.write(true);
    } else {
        opts.read(true);
    }
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    // Fail early and clearly if the file cannot be opened at all. This open counts: `ops` is
    // every open() made, so an agent's event count can be compared with it exactly.
    drop(
        opts.open(&file)
            .with_context(|| format!("cannot open {file}"))?,
    );
    let mut ops: u64 = 1;
    loop {
        // Check the clock every 256 opens: cheap next to two syscalls, precise enough.
        for _ in 0..256 {
            let f = opts
                .open(&file)
                .with_context(|| format!("cannot open {file} after {ops} opens"))?;
            ops += 1;
            drop(f);
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "ops={ops} secs={elapsed:.6} ops_per_sec={:.1}",
        ops as f64 / elapsed
    );
    Ok(())
}

fn rename_loop(file: &str, secs: f64) -> Result<()> {
    if !file.starts_with('/') {
        bail!("--rename needs an absolute --file, not {file:?}");
    }
    let other = format!("{file}.b");
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut ops: u64 = 0;
    let (mut from, mut to) = (file, other.as_str());
    loop {
        for _ in 0..256 {
            std::fs::rename(from, to)
                .with_context(|| format!("cannot rename {from} to {to} after {ops} renames"))?;
            ops += 1;
            std::mem::swap(&mut from, &mut to);
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    // 256 renames per round: the file is back under its own name.
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "ops={ops} secs={elapsed:.6} ops_per_sec={:.1}",
        ops as f64 / elapsed
    );
    Ok(())
}
