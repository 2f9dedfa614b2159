//! `cargo xtask bench [--quick]`: the measurements behind the performance goals, written to
//! `bench/RESULTS.md`.
//!
//! Every figure that compares two setups is a ratio of runs made side by side in this run
//! (each case run right after its own baseline run), and every figure is the median of several
//! runs. Everything started here (daemons, tracers, auditd) is stopped by pid, and every audit
//! rule added here (key `osprey_bench`) is removed again, also on error (see [`Cleanup`]).
//! Only local files under `target/bench-work/` are used; nothing touches the network.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, root, run_checked, setup::dpkg_installed};

const PACKAGES: &[&str] = &["auditd", "bpftrace", "inotify-tools"];
const AUDIT_KEY: &str = "osprey_bench";
const BPFTRACE_PROG: &str =
    r#"tracepoint:syscalls:sys_enter_openat { printf("%d %s\n", pid, str(args->filename)); }"#;
/// How long the full query run may take; above this the event count is scaled down.
const QUERY_BUDGET: Duration = Duration::from_secs(600);

/// Sizes of one bench run.
#[derive(Debug, Clone, Copy)]
struct Params {
    quick: bool,
    runs: usize,
    open_secs: f64,
    exec_secs: f64,
    exec_rate: u64,
    ingest_events: u64,
    query_events: u64,
}

impl Params {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                runs: 3,
                open_secs: 0.5,
                exec_secs: 1.0,
                exec_rate: 1000,
                ingest_events: 200_000,
                query_events: 1_000_000,
            }
        } else {
            Self {
                quick,
                runs: 7,
                open_secs: 2.0,
                exec_secs: 5.0,
                exec_rate: 1000,
                ingest_events: 2_000_000,
                query_events: 10_000_000,
            }
        }
    }
}

pub fn bench(args: &[String]) -> Result<()> {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "--guests" => return guests_only(),
            "--schedule" => return schedule_only(quick),
            other => {
                bail!(
                    "unknown argument {other:?}; usage: cargo xtask bench [--quick] [--guests | --schedule]"
                )
            }
        }
    }
    let p = Params::new(quick);
    install_packages()?;
    run_checked(cargo().args(["build", "--release", "--package", "bench", "--bins"]))?;
    for bin in [osprey(), bin("openloop"), bin("execloop")] {
        if !bin.is_file() {
            bail!("{} is missing after the build", bin.display());
        }
    }
    let work = root().join("target/bench-work");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot clear {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    let mut b = Bench {
        p,
        work: work.clone(),
        cleanup: Cleanup::default(),
        commands: Vec::new(),
        seq: 0,
        startups: Vec::new(),
    };
    let result = b.run_all();
    // Stop everything and remove the audit rules before anything else, error or not.
    let cleanup_errors = b.cleanup.finish();
    for e in &cleanup_errors {
        eprintln!("xtask bench: cleanup: {e}");
    }
    let report = result?;
    let out = root().join("bench/RESULTS.md");
    std::fs::write(&out, &report).with_context(|| format!("cannot write {}", out.display()))?;
    let _ = std::fs::remove_dir_all(&work);
    println!("{report}");
    eprintln!("xtask bench: wrote {}", out.display());
    if !cleanup_errors.is_empty() {
        bail!("cleanup failed: {}", cleanup_errors.join("; "));
    }
    Ok(())
}

fn osprey() -> PathBuf {
    root().join("target/release/osprey")
}

fn bin(name: &str) -> PathBuf {
    root().join("target/release").join(name)
}

fn install_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask bench: installing {missing:?}");
    run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    run_checked(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

// ---------------------------------------------------------------------------------------------
// Cleanup: processes by pid, audit rules by exact rule, auditd if started here.

#[derive(Debug, Default)]
struct Cleanup {
    /// Background processes started here, with a name for messages.
    children: Vec<(String, Child)>,
    /// Audit rules added here, as given to `auditctl` (`-w ...` or `-a ...`).
    audit_rules: Vec<Vec<String>>,
    /// auditd, if this run started it, and whether auditing was enabled before.
    auditd: Option<(Child, bool)>,
}

impl Cleanup {
    fn finish(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for (name, mut child) in std::mem::take(&mut self.children) {
            if let Err(e) = stop_child(&mut child, Duration::from_secs(30)) {
                errors.push(format!("{name}: {e:#}"));
            }
        }
        for rule in std::mem::take(&mut self.audit_rules) {
            if let Err(e) = delete_audit_rule(&rule) {
                errors.push(format!("{e:#}"));
            }
        }
        if let Some((mut child, was_enabled)) = self.auditd.take() {
            if let Err(e) = stop_child(&mut child, Duration::from_secs(10)) {
                errors.push(format!("auditd: {e:#}"));
            }
            if !was_enabled {
                let _ = Command::new("auditctl")
                    .args(["-e", "0"])
                    .stdout(Stdio::null())
                    .status();
            }
        }
        errors
    }

    fn stop(&mut self, pid: u32) -> Result<std::process::ExitStatus> {
        let i = self
            .children
            .iter()
            .position(|(_, c)| c.id() == pid)
            .with_context(|| format!("pid {pid} was not started here"))?;
        let (name, mut child) = self.children.remove(i);
        stop_child(&mut child, Duration::from_secs(30)).with_context(|| format!("stopping {name}"))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for e in self.finish() {
            eprintln!("xtask bench: cleanup: {e}");
        }
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
fn stop_child(child: &mut Child, grace: Duration) -> Result<std::process::ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        sleep(Duration::from_millis(20));
    }
    child.kill().context("SIGKILL")?;
    let status = child.wait()?;
    bail!(
        "pid {} ignored SIGTERM for {grace:?}; killed ({status})",
        child.id()
    )
}

fn delete_audit_rule(rule: &[String]) -> Result<()> {
    let mut del = rule.to_vec();
    match del.first().map(String::as_str) {
        Some("-w") => del[0] = "-W".into(),
        Some("-a") => del[0] = "-d".into(),
        _ => bail!("cannot delete audit rule {rule:?}"),
    }
    let out = Command::new("auditctl")
        .args(&del)
        .output()
        .context("auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {} failed: {}",
            del.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

const ZERO_LOSS_PLACEHOLDER: &str = "<!-- zero-loss -->\n";

fn zero_loss_report(runs: &Result<Vec<LossRun>>) -> String {
    let mut s = String::from(
        "\n### Kernel to RocksDB\n\nN `openloop` processes at once, each opening its own watched \
         file for writing (one file event per open), Osprey storing every event; counts from \
         `file_events` and `event_drops` after the daemon stopped.\n\n\
         | open loops | events/s offered | made | stored | dropped | loss-free |\n|---|---|---|---|---|---|\n",
    );
    match runs {
        Ok(runs) => {
            for r in runs {
                let ok = r.stored == r.made && r.dropped == 0;
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {} | {} | {} | {} |",
                    r.procs,
                    r.rate,
                    r.made,
                    r.stored,
                    r.dropped,
                    if ok { "yes" } else { "no" }
                );
            }
            let best = runs
                .iter()
                .filter(|r| r.stored == r.made && r.dropped == 0)
                .map(|r| r.rate)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            let _ = writeln!(
                s,
                "\nHighest sustained rate with zero loss: {} events/s (the open loops share the 2 cores with the \
                 agent, so this is the most this machine could offer, not a ceiling of the pipeline).",
                best.map_or_else(|| "none of the runs".into(), |b| format!("{b:.0}"))
            );
        }
        Err(e) => {
            let _ = writeln!(s, "not measurable: {e:#}");
        }
    }
    s
}

/// Section 7: the hook strategies' overhead inside QEMU guests (`crate::vm::overhead`).
fn guest_section(date: &str) -> String {
    let table = match crate::vm::overhead() {
        Ok(t) => t,
        Err(e) => format!("not measurable: {e:#}\n"),
    };
    format!(
        "\n## 7. Hook strategies on other kernels (QEMU guests, ratios only)\n\n\
         Measured {}. The open()/close() loop on a watched file inside each guest, with the \
         agent running under each `--ebpf_hooks` strategy, as a ratio to the loop without the \
         agent in the same boot (medians of 3 one-second runs; the CPUs are emulated, so only \
         the ratios mean anything). On this machine's kernel every strategy is `tracepoint` \
         (section 1). `cargo xtask bench --guests` reruns this section alone.\n\n{table}",
        date.trim()
    )
}

/// `cargo xtask bench --guests`: replaces section 7 of bench/RESULTS.md.
fn guests_only() -> Result<()> {
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))?;
    let out = root().join("bench/RESULTS.md");
    let old = std::fs::read_to_string(&out).unwrap_or_default();
    let report = replace_section(&old, "\n## 7. ", &guest_section(&date));
    std::fs::write(&out, &report).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{report}");
    Ok(())
}

/// `md` with the section that starts with `heading` (up to the next `\n## ` heading or the
/// end) replaced by `section`, or `section` appended.
fn replace_section(md: &str, heading: &str, section: &str) -> String {
    match md.find(heading) {
        Some(i) => {
            let rest = &md[i + heading.len()..];
            let end = rest
                .find("\n## ")
                .map_or(md.len(), |j| i + heading.len() + j);
            format!(
                "{}\n\n{}{}",
                md[..i].trim_end(),
                section.trim_start_matches('\n'),
                &md[end..]
            )
        }
        None => format!("{}\n\n{}", md.trim_end(), section.trim_start_matches('\n')),
    }
}

/// `cargo xtask bench --schedule [--quick]`: replaces section 8 of bench/RESULTS.md.
fn schedule_only(quick: bool) -> Result<()> {
    run_checked(cargo().args(["build", "--release", "--package", "bench", "--bins"]))?;
    let work = root().join("target/bench-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut b = Bench {
        p: Params::new(quick),
        work: work.clone(),
        cleanup: Cleanup::default(),
        commands: Vec::new(),
        seq: 0,
        startups: Vec::new(),
    };
    let result = b.schedule_section();
    let cleanup_errors = b.cleanup.finish();
    let section = result?;
    let out = root().join("bench/RESULTS.md");
    let old = std::fs::read_to_string(&out).unwrap_or_default();
    let report = replace_section(&old, "\n## 8. ", &section);
    std::fs::write(&out, &report).with_context(|| format!("cannot write {}", out.display()))?;
    let _ = std::fs::remove_dir_all(&work);
    println!("{section}");
    if !cleanup_errors.is_empty() {
        bail!("cleanup failed: {}", cleanup_errors.join("; "));
    }
    Ok(())
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// `key=value` from a load generator's output line.
fn kv(text: &str, key: &str) -> Option<f64> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// A number from flat JSON: `"key": 12.5` or `"key": "12"`.
fn json_num(text: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\"");
    let rest = &text[text.find(&pat)? + pat.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let after = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ')' : state(3) ppid(4) ... utime(14) stime(15); index = field - 3.
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).context("utime")?;
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).context("stime")?;
    Ok(utime + stime)
}

fn clk_tck() -> Result<f64> {
    let s = output(Command::new("getconf").arg("CLK_TCK"))?;
    let v: f64 = s.trim().parse().context("getconf CLK_TCK")?;
    if v <= 0.0 {
        bail!("getconf CLK_TCK returned {v}");
    }
    Ok(v)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// The runs.

/// One case of the file and exec overhead measurements: side-by-side samples.
#[derive(Debug, Default)]
struct Pairs {
    base: Vec<f64>,
    case: Vec<f64>,
    ratios: Vec<f64>,
    /// Why the case could not be measured, if it could not.
    unmeasurable: Option<String>,
}

impl Pairs {
    fn push(&mut self, base: f64, case: f64) {
        self.base.push(base);
        self.case.push(case);
        self.ratios
            .push(if base > 0.0 { case / base } else { f64::NAN });
    }
}

/// One kernel-to-RocksDB run: `procs` open loops at once on watched files.
#[derive(Debug)]
struct LossRun {
    procs: usize,
    rate: f64,
    made: u64,
    stored: u64,
    dropped: u64,
}

/// Capture completeness of one case (a) run.
#[derive(Debug)]
struct Capture {
    made: u64,
    stored: u64,
    dropped: u64,
}

struct Daemon {
    pid: u32,
    db: PathBuf,
    startup: Duration,
}

struct Bench {
    p: Params,
    work: PathBuf,
    cleanup: Cleanup,
    commands: Vec<String>,
    seq: u32,
    startups: Vec<f64>,
}

impl Bench {
    fn note(&mut self, cmd: String) {
        if !self.commands.contains(&cmd) {
            self.commands.push(cmd);
        }
    }

    fn fresh_dir(&mut self, what: &str) -> Result<PathBuf> {
        self.seq += 1;
        let d = self.work.join(format!("{what}-{}", self.seq));
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        Ok(d)
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<u32> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {name}: {cmd:?}"))?;
        let pid = child.id();
        self.cleanup.children.push((name.to_owned(), child));
        Ok(pid)
    }

    fn alive(&mut self, pid: u32) -> bool {
        self.cleanup
            .children
            .iter_mut()
            .find(|(_, c)| c.id() == pid)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts `osprey daemon` with `config` (JSON) on a fresh database; returns once the
    /// pidfile exists.
    fn start_daemon(&mut self, config: &str) -> Result<Daemon> {
        let dir = self.fresh_dir("daemon")?;
        let db = dir.join("db");
        let conf = dir.join("osprey.conf");
        std::fs::write(&conf, config)
            .with_context(|| format!("cannot write {}", conf.display()))?;
        let db_arg = format!("--database_path={}", db.display());
        let conf_arg = format!("--config_path={}", conf.display());
        self.note(format!(
            "target/release/osprey daemon --database_path=<tmp>/db --config_path=<tmp>/osprey.conf   # config: {config}"
        ));
        let started = Instant::now();
        let log = std::fs::File::create(dir.join("daemon.stderr"))?;
        // Status lines (and any schedule's results) stay in the run's folder.
        let log_arg = if config.contains("\"logger_path\"") {
            None
        } else {
            Some(format!(
                "--logger_path={}",
                dir.join("osquery-log").display()
            ))
        };
        let pid = self.spawn(
            "osprey daemon",
            Command::new(osprey())
                .arg("daemon")
                .args([&db_arg, &conf_arg])
                .args(log_arg)
                .stdout(Stdio::null())
                .stderr(log),
        )?;
        let pidfile = db.join("osprey.pid");
        let deadline = started + Duration::from_secs(60);
        while !pidfile.exists() {
            if !self.alive(pid) || Instant::now() > deadline {
                let err = std::fs::read_to_string(dir.join("daemon.stderr")).unwrap_or_default();
                let _ = self.cleanup.stop(pid);
                bail!(
                    "osprey daemon did not create {} ({}): {}",
                    pidfile.display(),
                    if Instant::now() > deadline {
                        "timeout"
                    } else {
                        "exited"
                    },
                    err.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                );
            }
            sleep(Duration::from_millis(10));
        }
        let startup = started.elapsed();
        self.startups.push(startup.as_secs_f64());
        Ok(Daemon { pid, db, startup })
    }

    fn stop_daemon(&mut self, d: &Daemon) -> Result<()> {
        let status = self.cleanup.stop(d.pid)?;
        if !status.success() {
            bail!("osprey daemon exited with {status} after SIGTERM (expected 0)");
        }
        Ok(())
    }

    fn query_n(&mut self, db: &Path, sql: &str) -> Result<u64> {
        self.note(format!(
            "target/release/osprey query --database_path=<db> --json \"{sql}\""
        ));
        let out = output(
            Command::new(osprey())
                .arg("query")
                .arg(format!("--database_path={}", db.display()))
                .arg("--json")
                .arg(sql),
        )?;
        let n = json_num(&out, "n").with_context(|| format!("no \"n\" in {out:?}"))?;
        Ok(n as u64)
    }

    fn openloop(&mut self, file: &Path) -> Result<(f64, u64)> {
        let secs = self.p.open_secs.to_string();
        self.note(format!(
            "target/release/openloop --file <dir>/target --secs {secs} --write 1"
        ));
        let out = output(Command::new(bin("openloop")).args([
            "--file".as_ref(),
            file.as_os_str(),
            "--secs".as_ref(),
            secs.as_ref(),
            "--write".as_ref(),
            "1".as_ref(),
        ]))?;
        let rate = kv(&out, "ops_per_sec").with_context(|| format!("openloop printed {out:?}"))?;
        let ops = kv(&out, "ops").with_context(|| format!("openloop printed {out:?}"))?;
        Ok((rate, ops as u64))
    }

    /// `openloop --rename 1`: renames per second of `file` to `file.b` and back.
    fn renameloop(&mut self, file: &Path) -> Result<f64> {
        let secs = self.p.open_secs.to_string();
        self.note(format!(
            "target/release/openloop --file <unwatched dir>/renamed --secs {secs} --rename 1"
        ));
        let out = output(Command::new(bin("openloop")).args([
            "--file".as_ref(),
            file.as_os_str(),
            "--secs".as_ref(),
            secs.as_ref(),
            "--rename".as_ref(),
            "1".as_ref(),
        ]))?;
        kv(&out, "ops_per_sec").with_context(|| format!("openloop printed {out:?}"))
    }

    fn execloop(&mut self, rate: u64) -> Result<f64> {
        let secs = self.p.exec_secs.to_string();
        self.note(format!(
            "target/release/execloop --rate {rate} --secs {secs}   # rate 0: unthrottled"
        ));
        let out = output(Command::new(bin("execloop")).args([
            "--rate",
            &rate.to_string(),
            "--secs",
            &secs,
        ]))?;
        kv(&out, "execs_per_sec").with_context(|| format!("execloop printed {out:?}"))
    }

    /// Makes sure auditd runs (starting `auditd -n` if none does). Err: not measurable.
    fn ensure_auditd(&mut self) -> Result<()> {
        let status = output(Command::new("auditctl").arg("-s"))
            .context("auditctl -s (audit netlink not usable here?)")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
        };
        if field("pid ").unwrap_or(0) != 0 || self.cleanup.auditd.is_some() {
            return Ok(());
        }
        let was_enabled = field("enabled ").unwrap_or(0) != 0;
        self.note("auditd -n   # only if no auditd was running; stopped by pid afterwards".into());
        let mut child = Command::new("auditd")
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start auditd")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait()? {
                if !was_enabled {
                    let _ = Command::new("auditctl").args(["-e", "0"]).output();
                }
                bail!("auditd exited at start ({st})");
            }
            let s = output(Command::new("auditctl").arg("-s")).unwrap_or_default();
            let pid = s
                .lines()
                .find_map(|l| l.strip_prefix("pid ")?.trim().parse::<u32>().ok());
            if pid == Some(child.id()) {
                break;
            }
            if Instant::now() > deadline {
                let _ = stop_child(&mut child, Duration::from_secs(5));
                bail!("auditd did not register with the kernel within 10 s");
            }
            sleep(Duration::from_millis(50));
        }
        self.cleanup.auditd = Some((child, was_enabled));
        Ok(())
    }

    fn add_audit_rule(&mut self, rule: &[&str]) -> Result<()> {
        let rule: Vec<String> = rule.iter().map(|s| (*s).to_owned()).collect();
        self.note(format!("auditctl {}", rule.join(" ")));
        output(Command::new("auditctl").args(&rule))?;
        self.cleanup.audit_rules.push(rule);
        Ok(())
    }

    fn remove_audit_rule(&mut self, rule: &[&str]) -> Result<()> {
        let i = self
            .cleanup
            .audit_rules
            .iter()
            .position(|r| r.iter().map(String::as_str).eq(rule.iter().copied()));
        if let Some(i) = i {
            let r = self.cleanup.audit_rules.remove(i);
            delete_audit_rule(&r)?;
        }
        Ok(())
    }

    /// Section 8: the scheduler's cost (100 queries at 1 s intervals over `processes` and
    /// `file_events`, as daemon CPU and RSS) and the loggers' throughput (`osprey
    /// bench-logger`).
    fn schedule_section(&mut self) -> Result<String> {
        let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))?;
        let secs = if self.p.runs <= 3 { 20 } else { 60 };
        let logs = self.fresh_dir("sched-logs")?;
        let mut schedule = String::new();
        for i in 0..100 {
            let sql = if i % 2 == 0 {
                "SELECT pid, name, cmdline FROM processes"
            } else {
                "SELECT count(*) AS n FROM file_events"
            };
            let _ = write!(
                schedule,
                "{}\"q{i}\": {{\"query\": \"{sql}\", \"interval\": 1}}",
                if i > 0 { ", " } else { "" }
            );
        }
        let config = format!(
            "{{\"options\": {{\"disable_events\": true, \"logger_path\": \"{}\"}}, \"schedule\": {{{schedule}}}}}",
            logs.display()
        );
        eprintln!("xtask bench: scheduler, 100 queries at 1 s for {secs} s");
        let d = self.start_daemon(&config)?;
        sleep(Duration::from_secs(5));
        let tck = clk_tck()?;
        let (t0, c0) = (Instant::now(), cpu_ticks(d.pid)?);
        sleep(Duration::from_secs(secs));
        let cpu = (cpu_ticks(d.pid)? - c0) as f64 / tck / t0.elapsed().as_secs_f64() * 100.0;
        let rss = proc_status_bytes(d.pid, "VmRSS").unwrap_or(0) as f64;
        let runs = self.query_n(&d.db, "SELECT sum(executions) AS n FROM osquery_schedule")?;
        self.stop_daemon(&d)?;
        let lines = std::fs::read_to_string(logs.join("osqueryd.results.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        eprintln!("xtask bench: loggers");
        let n = if self.p.runs <= 3 { 100_000 } else { 500_000 };
        let dir = self.fresh_dir("logger")?;
        self.note(format!(
            "target/release/osprey bench-logger --lines {n} --dir <tmp>"
        ));
        let json = output(
            Command::new(osprey())
                .arg("bench-logger")
                .args(["--lines", &n.to_string(), "--dir"])
                .arg(&dir),
        )?;
        let num = |k: &str| json_num(&json, k);
        Ok(format!(
            "\n## 8. Scheduler and loggers\n\nMeasured {}. `cargo xtask bench --schedule` reruns this \
             section alone (release build).\n\n\
             | figure | value |\n|---|---|\n\
             | daemon CPU, 100 scheduled queries at 1 s (50 × `SELECT pid, name, cmdline FROM processes`, 50 × `SELECT count(*) FROM file_events`), {secs} s after a 5 s warm-up | {cpu:.1}% of one core |\n\
             | daemon RSS at the end | {} |\n\
             | query runs in the whole daemon life | {runs} |\n\
             | result lines written (filesystem logger) | {lines} |\n\
             | log buffer append, 1,000-line synced batches | {} lines/s |\n\
             | `filesystem` logger, {n} lines of {} bytes, buffer to synced file | {} lines/s |\n\
             | `kafka_producer` logger, same lines, librdkafka mock cluster (1 broker, acks=all, idempotent) | {} lines/s |\n",
            date.trim(),
            mib(rss),
            fmt_opt(num("buffer_lines_per_sec"), 0),
            fmt_opt(num("line_bytes"), 0),
            fmt_opt(num("filesystem_lines_per_sec"), 0),
            fmt_opt(num("kafka_lines_per_sec"), 0),
        ))
    }

    fn run_all(&mut self) -> Result<String> {
        let p = self.p;
        let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))?;
        eprintln!("xtask bench: file overhead ({} runs per case)", p.runs);
        let file = self.file_overhead()?;
        eprintln!("xtask bench: exec");
        let exec = self.exec()?;
        eprintln!("xtask bench: ingest");
        let ingest = self.ingest();
        eprintln!("xtask bench: kernel-to-RocksDB zero loss");
        let loss = self.zero_loss();
        eprintln!("xtask bench: query");
        let query = self.query();
        eprintln!("xtask bench: hook strategies on guest kernels (QEMU)");
        self.note("cargo xtask bench --guests   # section 7 alone".into());
        let mut report = self.report(date.trim(), &file, &exec, &ingest, &query);
        report = report.replace(ZERO_LOSS_PLACEHOLDER, &zero_loss_report(&loss));
        report.push_str(&guest_section(&date));
        eprintln!("xtask bench: scheduler and loggers");
        self.note("cargo xtask bench --schedule   # section 8 alone".into());
        match self.schedule_section() {
            Ok(s) => report.push_str(&s),
            Err(e) => {
                let _ = write!(
                    report,
                    "\n## 8. Scheduler and loggers\n\nnot measured: {e:#}\n"
                );
            }
        }
        Ok(report)
    }

    /// Kernel to RocksDB: 1, 2 and 4 open loops at once, each on its own watched file, with
    /// Osprey storing every open. A run is loss-free when every open made is a stored row and
    /// no drop was counted.
    fn zero_loss(&mut self) -> Result<Vec<LossRun>> {
        let dir = self.fresh_dir("zeroloss")?;
        let conf = format!(
            r#"{{"options":{{"enable_file_events":true}},"file_paths":{{"bench":["{}/%%"]}}}}"#,
            dir.display()
        );
        let secs = (self.p.open_secs * 2.0).to_string();
        let mut out = Vec::new();
        for procs in [1usize, 2, 4] {
            let targets: Vec<PathBuf> = (0..procs)
                .map(|i| dir.join(format!("p{procs}-{i}")))
                .collect();
            for t in &targets {
                std::fs::write(t, b"osprey bench\n")?;
            }
            let d = self.start_daemon(&conf)?;
            self.note(format!(
                "{procs} x target/release/openloop --file <dir>/p{procs}-<i> --secs {secs} --write 1 (at once)"
            ));
            let children = targets
                .iter()
                .map(|t| {
                    Command::new(bin("openloop"))
                        .args([
                            "--file".as_ref(),
                            t.as_os_str(),
                            "--secs".as_ref(),
                            secs.as_ref(),
                        ])
                        .stdout(Stdio::piped())
                        .stdin(Stdio::null())
                        .spawn()
                        .context("could not start openloop")
                })
                .collect::<Result<Vec<_>>>()?;
            let (mut rate, mut made) = (0.0, 0u64);
            for c in children {
                let o = c.wait_with_output().context("waiting for openloop")?;
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                if !o.status.success() {
                    bail!("openloop failed: {text}");
                }
                rate += kv(&text, "ops_per_sec")
                    .with_context(|| format!("openloop printed {text:?}"))?;
                made +=
                    kv(&text, "ops").with_context(|| format!("openloop printed {text:?}"))? as u64;
            }
            // SIGTERM drains the rings and the queue before the daemon exits.
            self.stop_daemon(&d)?;
            let stored = self.query_n(
                &d.db,
                &format!(
                    "SELECT count(*) AS n FROM file_events WHERE target_path LIKE '{}/p{procs}-%' AND operation='open'",
                    dir.display()
                ),
            )?;
            let dropped = self.query_n(
                &d.db,
                "SELECT coalesce(sum(count),0) AS n FROM event_drops WHERE window_start = 0 AND reason != 'expired'",
            )?;
            out.push(LossRun {
                procs,
                rate,
                made,
                stored,
                dropped,
            });
        }
        Ok(out)
    }

    // ----- 1, 2, 6: file overhead, capture completeness, daemon footprint ---------------------

    fn file_overhead(&mut self) -> Result<FileResults> {
        let p = self.p;
        let watched = self.fresh_dir("watched")?;
        let other = self.fresh_dir("unwatched")?;
        let target = watched.join("target");
        std::fs::write(&target, b"osprey bench\n")?;
        let conf_watched = format!(
            r#"{{"options":{{"enable_file_events":true}},"file_paths":{{"bench":["{}/%%"]}}}}"#,
            watched.display()
        );
        let conf_other = format!(
            r#"{{"options":{{"enable_file_events":true}},"file_paths":{{"bench":["{}/%%"]}}}}"#,
            other.display()
        );
        let target_s = target.display().to_string();
        let watched_s = watched.display().to_string();
        let mut r = FileResults::default();
        let audit_rule = ["-w", target_s.as_str(), "-p", "rwxa", "-k", AUDIT_KEY];

        for round in 0..p.runs {
            eprintln!("xtask bench:   round {}/{}", round + 1, p.runs);
            // (a) Osprey watching the file.
            let (base, _) = self.openloop(&target)?;
            let d = self.start_daemon(&conf_watched)?;
            let (rate, made) = self.openloop(&target)?;
            // Peak right after the load; steady once the writer has caught up (1 s later).
            let hwm = proc_status_bytes(d.pid, "VmHWM");
            sleep(Duration::from_secs(1));
            let rss = proc_status_bytes(d.pid, "VmRSS");
            self.stop_daemon(&d)?;
            r.a.push(base, rate);
            r.startup.push(d.startup.as_secs_f64());
            if let (Some(rss), Some(hwm)) = (rss, hwm) {
                r.rss.push(rss as f64);
                r.hwm.push(hwm as f64);
            }
            let stored = self.query_n(
                &d.db,
                &format!(
                    "SELECT count(*) AS n FROM file_events WHERE target_path = '{target_s}' AND operation='open'"
                ),
            )?;
            let dropped = self.query_n(
                &d.db,
                "SELECT coalesce(sum(count),0) AS n FROM event_drops WHERE window_start = 0",
            )?;
            r.capture.push(Capture {
                made,
                stored,
                dropped,
            });

            // (b) Osprey running, another folder watched.
            let (base, _) = self.openloop(&target)?;
            let d = self.start_daemon(&conf_other)?;
            let (rate, _) = self.openloop(&target)?;
            self.stop_daemon(&d)?;
            r.b.push(base, rate);
            r.startup.push(d.startup.as_secs_f64());

            // (f) rename() by absolute path in an unwatched folder: the price of a
            // path-based change the kernel cannot place from the string alone.
            let renamed = other.join("renamed");
            std::fs::write(&renamed, b"osprey bench\n")?;
            let base = self.renameloop(&renamed)?;
            let d = self.start_daemon(&conf_watched)?;
            let rate = self.renameloop(&renamed)?;
            self.stop_daemon(&d)?;
            r.f.push(base, rate);
            r.startup.push(d.startup.as_secs_f64());

            // (c) auditd watch rule on the file.
            if r.c.unmeasurable.is_none() {
                let (base, _) = self.openloop(&target)?;
                match self
                    .ensure_auditd()
                    .and_then(|()| self.add_audit_rule(&audit_rule))
                {
                    Ok(()) => {
                        let res = self.openloop(&target);
                        self.remove_audit_rule(&audit_rule)?;
                        r.c.push(base, res?.0);
                    }
                    Err(e) => r.c.unmeasurable = Some(format!("{e:#}")),
                }
            }

            // (d) bpftrace printing every openat.
            if r.d.unmeasurable.is_none() {
                let (base, _) = self.openloop(&target)?;
                self.note(format!(
                    "bpftrace -e '{BPFTRACE_PROG}' > /dev/null   # then sleep 3"
                ));
                let log = self.work.join("bpftrace.stderr");
                let pid = self.spawn(
                    "bpftrace",
                    Command::new("bpftrace")
                        .args(["-e", BPFTRACE_PROG])
                        .stdout(Stdio::null())
                        .stderr(std::fs::File::create(&log)?),
                )?;
                sleep(Duration::from_secs(3));
                if self.alive(pid) {
                    let res = self.openloop(&target);
                    self.cleanup.stop(pid)?;
                    r.d.push(base, res?.0);
                } else {
                    let _ = self.cleanup.stop(pid);
                    let err = std::fs::read_to_string(&log).unwrap_or_default();
                    r.d.unmeasurable = Some(format!(
                        "bpftrace exited: {}",
                        err.lines().take(3).collect::<Vec<_>>().join(" | ")
                    ));
                }
            }

            // (e) inotifywait -m on the folder.
            if r.e.unmeasurable.is_none() {
                let (base, _) = self.openloop(&target)?;
                self.note("inotifywait -m <dir> > /dev/null".into());
                let mut child = Command::new("inotifywait")
                    .args(["-m", &watched_s])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("could not start inotifywait")?;
                let stderr = child.stderr.take();
                let pid = child.id();
                self.cleanup.children.push(("inotifywait".into(), child));
                // It prints "Watches established." on stderr once it watches.
                let mut ready = false;
                let mut said = String::new();
                if let Some(stderr) = stderr {
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if line.contains("Watches established") {
                            ready = true;
                            break;
                        }
                        said.push_str(&line);
                        said.push(' ');
                    }
                }
                if ready {
                    let res = self.openloop(&target);
                    self.cleanup.stop(pid)?;
                    r.e.push(base, res?.0);
                } else {
                    let _ = self.cleanup.stop(pid);
                    r.e.unmeasurable = Some(format!("inotifywait did not start: {said}"));
                }
            }
        }
        Ok(r)
    }

    // ----- 3: exec -------------------------------------------------------------------------

    fn exec(&mut self) -> Result<ExecResults> {
        let p = self.p;
        let tck = clk_tck()?;
        let mut r = ExecResults::default();
        let conf = r#"{"options":{}}"#;
        let rule = [
            "-a",
            "always,exit",
            "-F",
            "arch=b64",
            "-S",
            "execve",
            "-k",
            AUDIT_KEY,
        ];
        for round in 0..p.runs {
            eprintln!("xtask bench:   round {}/{}", round + 1, p.runs);
            // Daemon CPU at a fixed rate, and the unthrottled throughput with Osprey.
            let base = self.execloop(0)?;
            let d = self.start_daemon(conf)?;
            let t0 = cpu_ticks(d.pid)?;
            let wall = Instant::now();
            let achieved = self.execloop(p.exec_rate)?;
            let t1 = cpu_ticks(d.pid)?;
            let wall = wall.elapsed().as_secs_f64();
            r.cpu.push((t1.saturating_sub(t0)) as f64 / tck / wall);
            r.achieved.push(achieved);
            let with = self.execloop(0)?;
            self.stop_daemon(&d)?;
            r.osprey.push(base, with);

            // auditd execve rule.
            if r.audit.unmeasurable.is_none() {
                let base = self.execloop(0)?;
                match self
                    .ensure_auditd()
                    .and_then(|()| self.add_audit_rule(&rule))
                {
                    Ok(()) => {
                        let res = self.execloop(0);
                        self.remove_audit_rule(&rule)?;
                        r.audit.push(base, res?);
                    }
                    Err(e) => r.audit.unmeasurable = Some(format!("{e:#}")),
                }
            }
        }
        Ok(r)
    }

    // ----- 4: ingest ---------------------------------------------------------------------------

    fn ingest(&mut self) -> Result<IngestResults> {
        let n = self.p.ingest_events;
        self.note(format!(
            "target/release/osprey bench-ingest --events {n} --dir <fresh tmp>"
        ));
        let mut r = IngestResults::default();
        for _ in 0..self.p.runs.min(3) {
            let dir = self.fresh_dir("ingest")?.join("store");
            let out = output(Command::new(osprey()).args([
                "bench-ingest".as_ref(),
                "--events".as_ref(),
                n.to_string().as_ref(),
                "--dir".as_ref(),
                dir.as_os_str(),
            ]))?;
            let get = |k: &str| json_num(&out, k).with_context(|| format!("no {k} in {out}"));
            r.events_per_sec.push(get("events_per_sec")?);
            r.events_per_cpu_sec.push(get("events_per_cpu_sec")?);
            r.bytes_per_event.push(get("bytes_per_event")?);
            r.peak_rss.push(get("peak_rss_bytes")?);
            let stored = get("stored")?;
            if stored as u64 != n {
                bail!("bench-ingest stored {stored} of {n} events: {out}");
            }
            let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(&dir));
        }
        r.events = n;
        Ok(r)
    }

    // ----- 5: query ----------------------------------------------------------------------------

    fn query_once(&mut self, n: u64) -> Result<(String, Duration)> {
        let dir = self.fresh_dir("query")?;
        let t = Instant::now();
        let out = output(Command::new(osprey()).args([
            "bench-query".as_ref(),
            "--events".as_ref(),
            n.to_string().as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
        ]))?;
        let took = t.elapsed();
        let _ = std::fs::remove_dir_all(&dir);
        Ok((out, took))
    }

    fn query(&mut self) -> Result<QueryResults> {
        let want = self.p.query_events;
        let mut note = None;
        let mut n = want;
        let (mut out, mut took);
        if self.p.quick {
            (out, took) = self.query_once(n)?;
        } else {
            // Probe with 1M events, then scale to what fits the time budget.
            let probe = 1_000_000;
            (out, took) = self.query_once(probe)?;
            let per_event = took.as_secs_f64() / probe as f64;
            let fits = (QUERY_BUDGET.as_secs_f64() / per_event.max(1e-12)) as u64;
            if fits < want {
                n = (fits / 1_000_000 * 1_000_000).max(probe);
                note = Some(format!(
                    "{want} events would take about {:.0} s here (1M took {:.1} s), more than the {} s budget: measured with {n}",
                    per_event * want as f64,
                    took.as_secs_f64(),
                    QUERY_BUDGET.as_secs()
                ));
            }
            if n > probe {
                (out, took) = self.query_once(n)?;
            } else {
                n = probe;
            }
        }
        self.note(format!(
            "target/release/osprey bench-query --events {n} --dir <fresh tmp>"
        ));
        let get = |k: &str| json_num(&out, k).with_context(|| format!("no {k} in {out}"));
        Ok(QueryResults {
            events: n,
            seconds: took.as_secs_f64(),
            note,
            range_rows: get("range_rows")?,
            visited: get("osprey_range_rows_visited")?,
            osprey_range_ms: get("osprey_range_ms")?,
            sqlite_range_ms: get("sqlite_range_ms")?,
            range_ratio: get("range_latency_ratio")?,
            osprey_scan: get("osprey_scan_rows_per_sec")?,
            sqlite_scan: get("sqlite_scan_rows_per_sec")?,
            scan_ratio: get("scan_throughput_ratio")?,
        })
    }

    // ----- the report --------------------------------------------------------------------------

    fn report(
        &self,
        date: &str,
        file: &FileResults,
        exec: &ExecResults,
        ingest: &Result<IngestResults>,
        query: &Result<QueryResults>,
    ) -> String {
        let p = self.p;
        let mut s = String::new();
        let nproc = output(&mut Command::new("nproc"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e:#})"));
        let kernel = output(Command::new("uname").arg("-r"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e:#})"));
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|x| x.1.trim())
            })
            .unwrap_or("unknown");
        let mem = proc_meminfo_total().map_or_else(
            || "unknown".to_owned(),
            |b| format!("{:.1} GiB", b / 1073741824.0),
        );
        let _ = writeln!(s, "# Benchmark results\n");
        let _ = writeln!(
            s,
            "Written by `cargo xtask bench{}`. Ratios compare runs made side by side in this run \
             (each case right after its own baseline); every figure is the median of {} runs \
             unless stated otherwise.{}\n",
            if p.quick { " --quick" } else { "" },
            p.runs,
            if p.quick {
                " **Quick run: short durations and small counts, for development only.**"
            } else {
                ""
            }
        );
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(s, "| date | {date} |");
        let _ = writeln!(s, "| CPU | {cpu} |");
        let _ = writeln!(s, "| nproc | {nproc} |");
        let _ = writeln!(s, "| memory | {mem} |");
        let _ = writeln!(s, "| kernel | {kernel} |\n");

        // 1. File overhead.
        let _ = writeln!(
            s,
            "## 1. File open() overhead\n\n`openloop`: open(O_WRONLY) + close() of one existing \
             file for {} s; ops/s relative to no agent (1.00 = no overhead).\n",
            p.open_secs
        );
        let _ = writeln!(
            s,
            "| case | ratio to baseline | case ops/s | baseline ops/s |\n|---|---|---|---|"
        );
        for (name, pairs) in [
            ("(a) Osprey watching the file", &file.a),
            ("(b) Osprey running, file not watched", &file.b),
            ("(c) auditd watch rule (-w FILE -p rwxa)", &file.c),
            ("(d) bpftrace printing every openat", &file.d),
            ("(e) inotifywait -m on the folder", &file.e),
            (
                "(f) rename() by absolute path in an unwatched folder, Osprey running (renames/s)",
                &file.f,
            ),
        ] {
            pair_row(&mut s, name, pairs, 0);
        }

        // 2. Capture completeness.
        let _ = writeln!(
            s,
            "\n## 2. Capture completeness in case (a)\n\nPer run: `open` rows stored in \
             `file_events` for the file, drops counted in `event_drops` (window_start = 0), and \
             the opens `openloop` made.\n"
        );
        let _ = writeln!(
            s,
            "| run | made | stored | dropped | stored + dropped == made | stored / made |\n|---|---|---|---|---|---|"
        );
        for (i, c) in file.capture.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.4} |",
                i + 1,
                c.made,
                c.stored,
                c.dropped,
                if c.stored + c.dropped == c.made {
                    "yes"
                } else {
                    "**no**"
                },
                if c.made > 0 {
                    c.stored as f64 / c.made as f64
                } else {
                    f64::NAN
                }
            );
        }
        let ratios: Vec<f64> = file
            .capture
            .iter()
            .map(|c| c.stored as f64 / c.made.max(1) as f64)
            .collect();
        let _ = writeln!(
            s,
            "\nMedian stored / made: {}.",
            fmt_opt(median(&ratios), 4)
        );

        // 3. Exec.
        let _ = writeln!(s, "\n## 3. Exec\n");
        let _ = writeln!(s, "| figure | value |\n|---|---|");
        let _ = writeln!(
            s,
            "| osprey daemon CPU at {} exec/s of /bin/true (CPU s / wall s, {} s per run) | {} |",
            p.exec_rate,
            p.exec_secs,
            fmt_opt(median(&exec.cpu), 4)
        );
        let _ = writeln!(
            s,
            "| exec rate achieved during that measurement | {} /s |",
            fmt_opt(median(&exec.achieved), 0)
        );
        if let Some(a) = median(&exec.achieved)
            && a < 0.9 * p.exec_rate as f64
        {
            let _ = writeln!(
                s,
                "\nThe loop reached only {a:.0} of the {} exec/s asked for on this machine: the \
                 CPU figure is for that rate.",
                p.exec_rate
            );
        }
        let _ = writeln!(
            s,
            "\n| unthrottled exec loop | ratio to baseline | case exec/s | baseline exec/s |\n|---|---|---|---|"
        );
        pair_row(&mut s, "with Osprey", &exec.osprey, 0);
        pair_row(&mut s, "with auditd execve rule", &exec.audit, 0);

        // 4. Ingest.
        let _ = writeln!(s, "\n## 4. Ingest\n");
        match ingest {
            Ok(r) => {
                let _ = writeln!(
                    s,
                    "`osprey bench-ingest --events {}`: decoded exec events through the real queue, \
                     subscriber and writer into RocksDB (WAL on), median of {} runs.\n",
                    r.events,
                    r.events_per_sec.len()
                );
                let _ = writeln!(s, "| figure | value |\n|---|---|");
                let _ = writeln!(
                    s,
                    "| events/s | {} |",
                    fmt_opt(median(&r.events_per_sec), 0)
                );
                let _ = writeln!(
                    s,
                    "| events per CPU second | {} |",
                    fmt_opt(median(&r.events_per_cpu_sec), 0)
                );
                let _ = writeln!(
                    s,
                    "| bytes per stored event (SST, after compaction) | {} |",
                    fmt_opt(median(&r.bytes_per_event), 1)
                );
                let _ = writeln!(
                    s,
                    "| peak RSS of the process | {} |",
                    median(&r.peak_rss).map_or_else(|| "n/a".into(), mib)
                );
            }
            Err(e) => {
                let _ = writeln!(s, "not measurable yet: {e:#}");
            }
        }
        s.push_str(ZERO_LOSS_PLACEHOLDER);

        // 5. Query.
        let _ = writeln!(s, "\n## 5. Query\n");
        match query {
            Ok(q) => {
                let _ = writeln!(
                    s,
                    "`osprey bench-query --events {}` ({:.0} s): `process_events` in Osprey vs the \
                     same rows in a plain indexed SQLite table; median of 5 runs each (inside the \
                     command).{}\n",
                    q.events,
                    q.seconds,
                    q.note
                        .as_ref()
                        .map(|n| format!(" **Event count reduced:** {n}."))
                        .unwrap_or_default()
                );
                let _ = writeln!(
                    s,
                    "| figure | Osprey | SQLite | ratio Osprey / SQLite |\n|---|---|---|---|"
                );
                let _ = writeln!(
                    s,
                    "| latency of the 1% time slice ({} rows; Osprey visited {}) | {:.3} ms | {:.3} ms | {:.3} (below 1: Osprey faster) |",
                    q.range_rows, q.visited, q.osprey_range_ms, q.sqlite_range_ms, q.range_ratio
                );
                let _ = writeln!(
                    s,
                    "| full scan rows/s | {:.0} | {:.0} | {:.3} (above 1: Osprey faster) |",
                    q.osprey_scan, q.sqlite_scan, q.scan_ratio
                );
            }
            Err(e) => {
                let _ = writeln!(s, "not measurable yet: {e:#}");
            }
        }

        // 6. Footprint.
        let _ = writeln!(s, "\n## 6. Footprint\n\n| figure | value |\n|---|---|");
        let bpe = ingest
            .as_ref()
            .ok()
            .and_then(|r| median(&r.bytes_per_event));
        let _ = writeln!(
            s,
            "| bytes per stored event (bench-ingest) | {} |",
            fmt_opt(bpe, 1)
        );
        let _ = writeln!(
            s,
            "| daemon peak RSS (VmHWM) during (a) | {} |",
            median(&file.hwm).map_or_else(
                || "not measurable yet: /proc/PID/status unreadable".into(),
                mib
            )
        );
        let _ = writeln!(
            s,
            "| daemon steady RSS (VmRSS) 1 s after the load of (a) | {} |",
            median(&file.rss).map_or_else(
                || "not measurable yet: /proc/PID/status unreadable".into(),
                mib
            )
        );
        let _ = writeln!(
            s,
            "| daemon start until the pidfile exists (events flow), median of {} starts | {} s |",
            self.startups.len(),
            fmt_opt(median(&self.startups), 3)
        );

        let _ = writeln!(s, "\n## Commands\n\n```sh");
        for c in &self.commands {
            let _ = writeln!(s, "{c}");
        }
        let _ = writeln!(s, "```");
        let _ = writeln!(
            s,
            "\nThe machine was not otherwise idle-guaranteed: ratios, not absolute numbers, are the \
             figures to compare between runs."
        );
        s
    }
}

fn proc_meminfo_total() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb * 1024.0)
}

fn pair_row(s: &mut String, name: &str, p: &Pairs, digits: usize) {
    if let Some(why) = &p.unmeasurable {
        let _ = writeln!(
            s,
            "| {name} | not measurable: {} | | |",
            why.replace('|', "/")
        );
        return;
    }
    if p.ratios.is_empty() {
        let _ = writeln!(s, "| {name} | not measurable yet: no run completed | | |");
        return;
    }
    let _ = writeln!(
        s,
        "| {name} | {} | {} | {} |",
        fmt_opt(median(&p.ratios), 3),
        fmt_opt(median(&p.case), digits),
        fmt_opt(median(&p.base), digits)
    );
}

#[derive(Debug, Default)]
struct FileResults {
    a: Pairs,
    b: Pairs,
    c: Pairs,
    d: Pairs,
    e: Pairs,
    /// rename() by absolute path in an unwatched folder.
    f: Pairs,
    capture: Vec<Capture>,
    rss: Vec<f64>,
    hwm: Vec<f64>,
    startup: Vec<f64>,
}

#[derive(Debug, Default)]
struct ExecResults {
    cpu: Vec<f64>,
    achieved: Vec<f64>,
    osprey: Pairs,
    audit: Pairs,
}

#[derive(Debug, Default)]
struct IngestResults {
    events: u64,
    events_per_sec: Vec<f64>,
    events_per_cpu_sec: Vec<f64>,
    bytes_per_event: Vec<f64>,
    peak_rss: Vec<f64>,
}

#[derive(Debug)]
struct QueryResults {
    events: u64,
    seconds: f64,
    note: Option<String>,
    range_rows: f64,
    visited: f64,
    osprey_range_ms: f64,
    sqlite_range_ms: f64,
    range_ratio: f64,
    osprey_scan: f64,
    sqlite_scan: f64,
    scan_ratio: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_or_appended() {
        let md = "# R\n\n## 7. G\nold7\n\n## 8. S\nold8\n";
        assert_eq!(
            replace_section(md, "\n## 7. ", "\n## 7. G\nnew7\n"),
            "# R\n\n## 7. G\nnew7\n\n## 8. S\nold8\n"
        );
        assert_eq!(
            replace_section(md, "\n## 8. ", "\n## 8. S\nnew8\n"),
            "# R\n\n## 7. G\nold7\n\n## 8. S\nnew8\n"
        );
        assert_eq!(
            replace_section("# R\n", "\n## 8. ", "\n## 8. S\n"),
            "# R\n\n## 8. S\n"
        );
    }

    #[test]
    fn parsers_and_median() {
        assert_eq!(kv("ops=12 secs=0.5 ops_per_sec=24.0", "ops"), Some(12.0));
        assert_eq!(
            kv("ops=12 secs=0.5 ops_per_sec=24.0", "ops_per_sec"),
            Some(24.0)
        );
        assert_eq!(kv("ops=12", "secs"), None);
        assert_eq!(
            json_num("[\n  {\n    \"n\": \"42\"\n  }\n]", "n"),
            Some(42.0)
        );
        assert_eq!(json_num(r#"{"a":1.5e3,"b":-2}"#, "a"), Some(1500.0));
        assert_eq!(json_num(r#"{"a":1.5e3,"b":-2}"#, "b"), Some(-2.0));
        assert_eq!(json_num(r#"{"a":"x"}"#, "a"), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
    }
}
