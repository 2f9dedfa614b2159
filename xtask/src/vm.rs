//! `cargo xtask vm-test [KERNEL...]`: the kernel-source end-to-end tests (`process::`, `file::`,
//! `socket::`) inside QEMU on stock Debian kernels, once per eBPF hook strategy.
//!
//! - Kernels are downloaded with `apt-get download` through a private apt state under
//!   `target/vm/apt/` (mirrors read from the host's apt sources; the host's apt configuration is
//!   never touched), resolved through their metapackages, unpacked without installing, and their
//!   `vmlinuz` cached under `target/vm/kernels/<kernel>/`: a second run downloads nothing.
//! - Each run builds a throw-away initramfs (static busybox, the agent, the e2e test binary and
//!   the shared libraries `ldd` lists for them) and boots it with TCG (no KVM).
//! - Serial logs go to `target/vm/logs/<kernel>-<strategy>.log`; a table of kernel × strategy ×
//!   test is printed, and any failure, panic, hang or missing result makes the command fail.
//!
//! See docs/vm-test.md.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, root, run_checked};

/// Where a kernel comes from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Suites {
    /// bookworm and bookworm-security.
    Bookworm,
    /// bullseye-security only (bullseye itself is archived).
    BullseyeSecurity,
}

struct Kernel {
    label: &'static str,
    suites: Suites,
    /// The metapackage that depends on the current ABI's `linux-image-*` package.
    meta: &'static str,
}

const KERNELS: &[Kernel] = &[
    Kernel {
        label: "5.10",
        suites: Suites::BullseyeSecurity,
        meta: "linux-image-amd64",
    },
    Kernel {
        label: "6.1",
        suites: Suites::Bookworm,
        meta: "linux-image-amd64",
    },
    Kernel {
        label: "6.12",
        suites: Suites::Bookworm,
        meta: "linux-image-6.12-amd64",
    },
];

/// One run of the suite per strategy and kernel: the environment it adds in the guest
/// (`OSPREY_<FLAG>` sets the agent's flag).
struct Strategy {
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// The e2e areas this strategy runs: `--ebpf_hooks` changes the file programs only
    /// (`tracepoint` leaves out the fentry hook for io_uring opens), so the process and socket
    /// tests, whose programs are the same under both, run once per kernel, under `auto`.
    areas: &'static [&'static str],
}

const STRATEGIES: &[Strategy] = &[
    Strategy {
        name: "auto",
        env: &[("OSPREY_EBPF_HOOKS", "auto")],
        areas: TEST_FILTERS,
    },
    Strategy {
        name: "tracepoint",
        env: &[("OSPREY_EBPF_HOOKS", "tracepoint")],
        areas: &["file::", "evasion::", "parity::"],
    },
];

/// The e2e modules whose events come from the kernel.
const TEST_FILTERS: &[&str] = &["process::", "file::", "socket::", "evasion::", "parity::"];

/// Host programs the guest tests run, copied with their libraries: the inotify parity oracle.
const GUEST_TOOLS: &[&str] = &["inotifywait"];

/// The test filters of a strategy's run: `OSPREY_VM_FILTER` (space-separated, a development
/// aid for one area on one kernel) replaces its areas; CI never sets it.
fn test_filters(s: &Strategy) -> Vec<String> {
    match std::env::var("OSPREY_VM_FILTER") {
        Ok(f) if !f.trim().is_empty() => f.split_whitespace().map(str::to_owned).collect(),
        _ => s.areas.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// How many times a guest runs its tests, stopping at the first failure: `OSPREY_VM_REPEAT`
/// (a development aid to chase a rare failure; CI never sets it), else once.
fn repeat() -> u32 {
    std::env::var("OSPREY_VM_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// Slack for every wait in the tests (tests/src/lib.rs): TCG is several times slower.
const TIME_SCALE: &str = "2";

/// Seconds one guest may run before it counts as hung (override: OSPREY_VM_TIMEOUT).
const GUEST_TIMEOUT_SECS: u64 = 900;

const MARKER: &str = "OSPREY-VM-DONE exit=";

const KERNEL_APPEND: &str =
    "console=ttyS0 quiet panic=-1 rdinit=/init lsm=lockdown,capability,landlock,yama,apparmor,bpf";

fn vm_dir() -> PathBuf {
    root().join("target/vm")
}

pub fn vm_test(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let kernels: Vec<&Kernel> = if args.is_empty() {
        KERNELS.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                KERNELS.iter().find(|k| k.label == a).with_context(|| {
                    let known: Vec<&str> = KERNELS.iter().map(|k| k.label).collect();
                    format!("unknown kernel `{a}` (known: {})", known.join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    for tool in [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "gzip",
        "timeout",
        "ldd",
        "mke2fs",
    ] {
        if which(tool).is_none() {
            bail!("`{tool}` is missing: run `cargo xtask setup`");
        }
    }

    // The binaries under test, from the current target directory.
    crate::build(false)?;
    let target = target_dir()?;
    let osprey = target.join("debug/osprey");
    let e2e = e2e_binary()?;
    let mut expected = BTreeMap::new();
    for s in STRATEGIES {
        let list = list_tests(&e2e, &test_filters(s))?;
        if list.is_empty() {
            bail!(
                "{} lists no test under {:?}",
                e2e.display(),
                test_filters(s)
            );
        }
        expected.insert(s.name, list);
    }
    // Every test of any strategy, in the binary's order, for the table.
    let tests: Vec<String> = list_tests(&e2e, &[])?
        .into_iter()
        .filter(|t| expected.values().any(|l| l.contains(t)))
        .collect();

    let vm = vm_dir();
    let logs = vm.join("logs");
    fs::create_dir_all(&logs)?;
    // Per invocation, so two concurrent runs never delete each other's files.
    let work = vm.join(format!("run-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let base = build_base_initramfs(&work, &osprey, &e2e, None)?;

    let mut fetched = BTreeSet::new();
    let mut results: Vec<RunResult> = Vec::new();
    let mut kernel_times: Vec<(String, String, Duration)> = Vec::new();
    for k in &kernels {
        let t0 = Instant::now();
        let kf = ensure_kernel(k, &mut fetched)?;
        eprintln!("xtask vm-test: kernel {} = {}", k.label, kf.version);
        let mods = kernel_initramfs(&work, k.label, &kf.vmlinuz)?;
        for s in STRATEGIES {
            let initrd = work.join(format!("initrd-{}-{}.gz", k.label, s.name));
            strategy_initramfs(&work, &[&base, &mods], s, "test", &initrd)?;
            let log = logs.join(format!("{}-{}.log", k.label, s.name));
            results.push(boot(
                k.label,
                s.name,
                &kf.vmlinuz,
                &initrd,
                &log,
                &expected[s.name],
            )?);
        }
        kernel_times.push((k.label.to_owned(), kf.version.clone(), t0.elapsed()));
    }

    let failed = report(&tests, &results, &kernel_times);
    eprintln!(
        "xtask vm-test: {} run(s) in {:.0}s, logs in {}",
        results.len(),
        started.elapsed().as_secs_f64(),
        logs.display()
    );
    let _ = fs::remove_dir_all(&work);
    if failed > 0 {
        bail!("vm-test: {failed} failure(s), see the table above and the serial logs");
    }
    Ok(())
}

/// For `cargo xtask bench`: on each guest kernel and strategy, the open()/close() loop on a
/// watched file with the agent running, as a ratio to the same loop without it (medians of 3
/// one-second runs in the same boot). Guest figures are ratios only: TCG makes absolute
/// rates meaningless. Returns a Markdown section.
pub fn overhead() -> Result<String> {
    crate::build(false)?;
    run_checked(cargo().args([
        "build",
        "--release",
        "--package",
        "bench",
        "--bin",
        "openloop",
    ]))?;
    let target = target_dir()?;
    let osprey = target.join("debug/osprey");
    let openloop = target.join("release/openloop");
    let e2e = e2e_binary()?;
    let vm = vm_dir();
    let logs = vm.join("logs");
    fs::create_dir_all(&logs)?;
    let work = vm.join(format!("run-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let base = build_base_initramfs(&work, &osprey, &e2e, Some(&openloop))?;
    let mut fetched = BTreeSet::new();
    let mut out = String::from(
        "| kernel | strategy | hook used for file events | ratio (agent / none) |\n|---|---|---|---|\n",
    );
    for k in KERNELS {
        let kf = ensure_kernel(k, &mut fetched)?;
        let mods = kernel_initramfs(&work, k.label, &kf.vmlinuz)?;
        for s in STRATEGIES {
            let initrd = work.join(format!("initrd-ovh-{}-{}.gz", k.label, s.name));
            strategy_initramfs(&work, &[&base, &mods], s, "overhead", &initrd)?;
            let log = logs.join(format!("{}-{}-overhead.log", k.label, s.name));
            let r = boot(k.label, s.name, &kf.vmlinuz, &initrd, &log, &[])?;
            let text = fs::read_to_string(&r.log)
                .unwrap_or_default()
                .replace('\r', "");
            let rates = |which: &str| -> Vec<f64> {
                text.lines()
                    .filter_map(|l| l.split_once(&format!("OSPREY-VM-BENCH {which} ")))
                    .filter_map(|(_, rest)| {
                        rest.split_whitespace()
                            .find_map(|kv| kv.strip_prefix("ops_per_sec="))?
                            .parse()
                            .ok()
                    })
                    .collect()
            };
            let hook = text
                .lines()
                .find_map(|l| {
                    l.split_once("OSPREY-VM-BENCH hook ")
                        .map(|(_, h)| h.trim().to_owned())
                })
                .unwrap_or_default();
            let med = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied()
            };
            let cell = match (r.problem.as_ref(), med(rates("base")), med(rates("agent"))) {
                (None, Some(b), Some(a)) if b > 0.0 => format!("{:.3}", a / b),
                (p, _, _) => format!(
                    "not measurable: {}",
                    p.cloned()
                        .unwrap_or_else(|| format!("no result, see {}", log.display()))
                ),
            };
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} |",
                k.label, kf.version, s.name, hook, cell
            );
        }
    }
    let _ = fs::remove_dir_all(&work);
    Ok(out)
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

fn output_text(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed with {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The target directory cargo uses (honours CARGO_TARGET_DIR).
fn target_dir() -> Result<PathBuf> {
    let meta = output_text(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    json_string_after(&meta, "\"target_directory\":")
        .map(PathBuf::from)
        .context("no target_directory in `cargo metadata`")
}

/// The first JSON string value after `key` in `text` (enough for cargo's flat messages).
fn json_string_after(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// Builds the `tests` crate's e2e binary and returns its path.
fn e2e_binary() -> Result<PathBuf> {
    let out = output_text(cargo().args([
        "test",
        "--package",
        "tests",
        "--test",
        "e2e",
        "--no-run",
        "--message-format=json",
    ]))?;
    out.lines()
        .filter(|l| {
            l.contains("\"reason\":\"compiler-artifact\"") && l.contains("\"name\":\"e2e\"")
        })
        .filter(|l| l.contains("\"kind\":[\"test\"]"))
        .find_map(|l| json_string_after(l, "\"executable\":"))
        .map(PathBuf::from)
        .context("cargo test --no-run printed no e2e executable")
}

/// The test names the guest must report, from the binary itself.
fn list_tests(e2e: &Path, filters: &[String]) -> Result<Vec<String>> {
    let out = output_text(Command::new(e2e).arg("--list").args(filters))?;
    Ok(out
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Kernels

struct KernelFiles {
    vmlinuz: PathBuf,
    /// "<package> <Debian version>".
    version: String,
}

/// A source entry of the host's apt configuration.
struct Source {
    uri: String,
    suites: Vec<String>,
    signed_by: Option<String>,
}

/// Reads the host's Debian sources (deb822 `.sources` and one-line `.list` files).
fn host_sources() -> Result<Vec<Source>> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let mut sources = Vec::new();
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |k: &str| {
                    stanza.lines().find_map(|l| {
                        let (key, v) = l.split_once(':')?;
                        key.trim()
                            .eq_ignore_ascii_case(k)
                            .then(|| v.trim().to_owned())
                    })
                };
                let types = field("Types").unwrap_or_default();
                if !types.split_whitespace().any(|t| t == "deb") {
                    continue;
                }
                let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
                    continue;
                };
                for uri in uris.split_whitespace() {
                    sources.push(Source {
                        uri: uri.to_owned(),
                        suites: suites.split_whitespace().map(str::to_owned).collect(),
                        signed_by: field("Signed-By"),
                    });
                }
            }
        } else if name.ends_with(".list") {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                let Some(rest) = line.strip_prefix("deb ") else {
                    continue;
                };
                let mut rest = rest.trim();
                let mut signed_by = None;
                if let Some(opts) = rest.strip_prefix('[') {
                    let (opts, after) = opts.split_once(']').unwrap_or((opts, ""));
                    signed_by = opts
                        .split_whitespace()
                        .find_map(|o| o.strip_prefix("signed-by="))
                        .map(str::to_owned);
                    rest = after.trim();
                }
                let mut words = rest.split_whitespace();
                if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
                    sources.push(Source {
                        uri: uri.to_owned(),
                        suites: vec![suite.to_owned()],
                        signed_by,
                    });
                }
            }
        }
    }
    Ok(sources)
}

/// A private one-line sources list for `suites`, with the mirrors of the host's config.
fn private_sources_list(suites: Suites) -> Result<String> {
    let host = host_sources()?;
    let find = |security: bool| {
        host.iter().find(|s| {
            s.suites
                .iter()
                .any(|x| x.ends_with("-security") == security && !x.contains("backports"))
        })
    };
    let main = find(false);
    let security = find(true).context(
        "no `*-security` source in the host's apt configuration (/etc/apt/sources.list{,.d})",
    )?;
    let key = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let line = |s: &Source, suite: &str| {
        let signed = s
            .signed_by
            .clone()
            .filter(|k| k.starts_with('/'))
            .or_else(|| Path::new(key).exists().then(|| key.to_owned()));
        match signed {
            Some(k) => format!("deb [signed-by={k}] {} {suite} main\n", s.uri),
            None => format!("deb {} {suite} main\n", s.uri),
        }
    };
    Ok(match suites {
        Suites::Bookworm => {
            let main = main.context("no Debian main-archive source in the host's apt config")?;
            line(main, "bookworm") + &line(security, "bookworm-security")
        }
        Suites::BullseyeSecurity => line(security, "bullseye-security"),
    })
}

fn suites_dir(suites: Suites) -> PathBuf {
    vm_dir().join("apt").join(match suites {
        Suites::Bookworm => "bookworm",
        Suites::BullseyeSecurity => "bullseye-security",
    })
}

/// apt options that use only the private state under `dir`.
fn apt_private(dir: &Path, tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    let o = |k: &str, v: &Path| format!("{k}={}", v.display());
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-q", "-o"])
        .arg(o("Dir::Etc::SourceList", &dir.join("sources.list")))
        .args(["-o", "Dir::Etc::SourceParts=/dev/null", "-o"])
        .arg(o("Dir::State::Lists", &dir.join("lists")))
        .arg("-o")
        .arg(o("Dir::Cache", &dir.join("cache")))
        .args(["-o", "Dir::State::status=/dev/null"]);
    // As root apt downloads as `_apt`, which may not write into target/: stay root instead.
    use std::os::unix::fs::MetadataExt as _;
    if fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        cmd.args(["-o", "APT::Sandbox::User=root"]);
    }
    cmd
}

/// The cached vmlinuz of `k`, downloaded and unpacked on first use.
fn ensure_kernel(k: &Kernel, updated: &mut BTreeSet<Suites>) -> Result<KernelFiles> {
    let dir = vm_dir().join("kernels").join(k.label);
    let vmlinuz = dir.join("vmlinuz");
    let version_file = dir.join("version");
    let modules_order = dir.join("modules/order");
    if let (true, true, Ok(version)) = (
        vmlinuz.exists(),
        modules_order.exists(),
        fs::read_to_string(&version_file),
    ) {
        return Ok(KernelFiles {
            vmlinuz,
            version: version.trim().to_owned(),
        });
    }
    let apt = suites_dir(k.suites);
    if !updated.contains(&k.suites) {
        for sub in ["lists/partial", "cache/archives/partial", "debs"] {
            fs::create_dir_all(apt.join(sub))?;
        }
        fs::write(apt.join("sources.list"), private_sources_list(k.suites)?)?;
        eprintln!(
            "xtask vm-test: apt-get update ({:?}, private state)",
            k.suites
        );
        run_checked(apt_private(&apt, "apt-get").arg("update"))?;
        updated.insert(k.suites);
    }
    let deps = output_text(apt_private(&apt, "apt-cache").args(["depends", k.meta]))?;
    let package = deps
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Depends:")
                .map(str::trim)
                .filter(|p| p.starts_with("linux-image-"))
        })
        .with_context(|| format!("{} depends on no linux-image-* package:\n{deps}", k.meta))?
        .to_owned();
    let debs = apt.join("debs");
    eprintln!("xtask vm-test: downloading {package} for {}", k.label);
    run_checked(
        apt_private(&apt, "apt-get")
            .current_dir(&debs)
            .args(["download", &package]),
    )?;
    let deb = fs::read_dir(&debs)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download left no {package}_*.deb"))?;
    let deb_version = output_text(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Version"))?;
    let unpack = apt.join("unpack");
    let _ = fs::remove_dir_all(&unpack);
    fs::create_dir_all(&unpack)?;
    run_checked(
        Command::new("sh")
            .current_dir(&unpack)
            .arg("-c")
            .arg(format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -x --wildcards './boot/*'",
                deb.display()
            )),
    )?;
    let boot: Vec<PathBuf> = fs::read_dir(unpack.join("boot"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    let pick = |prefix: &str| {
        boot.iter()
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .cloned()
    };
    let image = pick("vmlinuz-").context("the package has no /boot/vmlinuz-*")?;
    fs::create_dir_all(&dir)?;
    fs::copy(&image, dir.join("vmlinuz.tmp"))?;
    if let Some(config) = pick("config-") {
        fs::copy(config, dir.join("config"))?;
    }
    extract_modules(&deb, &unpack, &dir.join("modules"))?;
    fs::rename(dir.join("vmlinuz.tmp"), &vmlinuz)?;
    let version = format!("{package} {}", deb_version.trim());
    fs::write(&version_file, format!("{version}\n"))?;
    let _ = fs::remove_dir_all(&unpack);
    let _ = fs::remove_file(&deb);
    Ok(KernelFiles { vmlinuz, version })
}

/// Modules the guest loads for its /tmp: a virtio disk with a filesystem that has user xattrs
/// (tmpfs has them only from 6.6 on). Built-in ones are absent from modules.dep and skipped.
const GUEST_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"];

/// Copies `GUEST_MODULES` and their dependencies (read from each module's `depends=`; the
/// package ships no modules.dep) out of the package into `out`, uncompressed, with `out/order`
/// listing them in load order.
fn extract_modules(deb: &Path, unpack: &Path, out: &Path) -> Result<()> {
    let name_of = |path: &str| {
        let file = path.rsplit('/').next().unwrap_or(path);
        file.split(".ko").next().unwrap_or(file).replace('-', "_")
    };
    let listing = output_text(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    let paths: BTreeMap<String, String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| p.contains("/lib/modules/") && p.contains(".ko"))
        .map(|p| (name_of(p), p.to_owned()))
        .collect();
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out)?;
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pending: Vec<String> = GUEST_MODULES
        .iter()
        .map(|m| (*m).to_owned())
        .filter(|m| paths.contains_key(m))
        .collect();
    while !pending.is_empty() {
        let members: Vec<String> = pending.iter().map(|m| format!("'{}'", paths[m])).collect();
        run_checked(
            Command::new("sh")
                .current_dir(unpack)
                .arg("-c")
                .arg(format!(
                    "dpkg-deb --fsys-tarfile '{}' | tar -x {}",
                    deb.display(),
                    members.join(" ")
                )),
        )?;
        let mut next = Vec::new();
        for m in pending.drain(..) {
            let src = unpack.join(paths[&m].trim_start_matches("./"));
            let tool = [(".xz", "xz"), (".zst", "zstd"), (".gz", "gzip")]
                .iter()
                .find(|(ext, _)| paths[&m].ends_with(ext))
                .map(|(_, t)| *t);
            let bytes = match tool {
                Some(tool) => {
                    let o = Command::new(tool)
                        .args(["-d", "-c"])
                        .arg(&src)
                        .output()
                        .with_context(|| format!("running {tool}"))?;
                    if !o.status.success() {
                        bail!("{tool} -d {} failed", src.display());
                    }
                    o.stdout
                }
                None => fs::read(&src)?,
            };
            let key = b"depends=";
            let d: Vec<String> = bytes
                .windows(key.len())
                .position(|w| w == key)
                .map(|i| {
                    let rest = &bytes[i + key.len()..];
                    let end = rest.iter().position(|b| *b == 0).unwrap_or(0);
                    String::from_utf8_lossy(&rest[..end])
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(|x| x.replace('-', "_"))
                        .collect()
                })
                .unwrap_or_default();
            fs::write(out.join(format!("{m}.ko")), &bytes)?;
            for x in &d {
                if paths.contains_key(x) && !deps.contains_key(x) && !next.contains(x) {
                    next.push(x.clone());
                }
            }
            deps.insert(m, d);
        }
        next.retain(|x| !deps.contains_key(x));
        pending = next;
    }
    // Depth-first: dependencies before the module.
    fn visit(m: &str, deps: &BTreeMap<String, Vec<String>>, order: &mut Vec<String>) {
        if order.iter().any(|o| o == m) || !deps.contains_key(m) {
            return;
        }
        for d in &deps[m] {
            visit(d, deps, order);
        }
        order.push(m.to_owned());
    }
    let mut order = Vec::new();
    for m in GUEST_MODULES {
        visit(m, &deps, &mut order);
    }
    let list: String = order.iter().map(|m| format!("{m}.ko\n")).collect();
    fs::write(out.join("order"), list)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Initramfs

const GUEST_BIN: &str = "/osprey/osprey";
const GUEST_E2E: &str = "/osprey/e2e";
const GUEST_OPENLOOP: &str = "/osprey/openloop";

/// The part every run shares: busybox, the binaries and their libraries.
fn build_base_initramfs(
    work: &Path,
    osprey: &Path,
    e2e: &Path,
    openloop: Option<&Path>,
) -> Result<PathBuf> {
    let root = work.join("root");
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "root", "etc", "osprey",
        "run", "var/tmp",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    let busybox = which("busybox").context("busybox")?;
    fs::copy(&busybox, root.join("bin/busybox"))?;
    let applets = output_text(Command::new(&busybox).arg("--list-full"))?;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        // busybox itself must stay a file, or /bin/busybox becomes a symlink loop.
        if applet.rsplit('/').next() == Some("busybox") {
            continue;
        }
        let link = root.join(applet);
        if link.exists() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink("/bin/busybox", &link)?;
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(root.join("etc/hostname"), "osprey-vm\n")?;

    let mut bins = vec![
        (osprey.to_path_buf(), GUEST_BIN.to_owned()),
        (e2e.to_path_buf(), GUEST_E2E.to_owned()),
    ];
    if let Some(o) = openloop {
        bins.push((o.to_path_buf(), GUEST_OPENLOOP.to_owned()));
    }
    for tool in GUEST_TOOLS {
        let path =
            which(tool).with_context(|| format!("`{tool}` is missing: run `cargo xtask setup`"))?;
        bins.push((path, format!("/usr/bin/{tool}")));
    }
    for (src, dst) in &bins {
        let (src, dst) = (src.as_path(), dst.as_str());
        copy_binary(src, &root.join(dst.trim_start_matches('/')))?;
        for lib in ldd(src)? {
            let dst = root.join(lib.to_string_lossy().trim_start_matches('/'));
            if dst.exists() {
                continue;
            }
            fs::create_dir_all(dst.parent().context("library path")?)?;
            // The file itself, at the path the loader asks for.
            fs::copy(&lib, &dst).with_context(|| format!("copying {}", lib.display()))?;
        }
    }
    let init = root.join("init");
    fs::write(&init, init_script())?;
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;

    let out = work.join("base.cpio.gz");
    cpio_gz(&root, &out)?;
    fs::remove_dir_all(&root)?;
    Ok(out)
}

/// Copies a binary without its debug info when `strip` exists (smaller, faster initramfs).
fn copy_binary(src: &Path, dst: &Path) -> Result<()> {
    let stripped = which("strip").is_some()
        && Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(dst)
            .arg(src)
            .status()
            .is_ok_and(|s| s.success());
    if !stripped {
        fs::copy(src, dst).with_context(|| format!("copying {}", src.display()))?;
    }
    Ok(())
}

/// The absolute paths of the shared libraries (and the loader) `ldd` lists for `bin`.
fn ldd(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = output_text(Command::new("ldd").arg(bin))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

fn cpio_gz(dir: &Path, out: &Path) -> Result<()> {
    run_checked(Command::new("sh").current_dir(dir).arg("-c").arg(format!(
        "find . -print0 | cpio --null --quiet -o -H newc | gzip -1 > '{}'",
        out.display()
    )))
}

/// The kernel's modules (`/modules/*.ko` and `/modules/order`) as an archive of their own.
fn kernel_initramfs(work: &Path, label: &str, vmlinuz: &Path) -> Result<PathBuf> {
    let src = vmlinuz.with_file_name("modules");
    let dir = work.join(format!("mods-{label}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("modules"))?;
    for e in fs::read_dir(&src).with_context(|| format!("listing {}", src.display()))? {
        let e = e?;
        fs::copy(e.path(), dir.join("modules").join(e.file_name()))?;
    }
    let out = work.join(format!("mods-{label}.cpio.gz"));
    cpio_gz(&dir, &out)?;
    Ok(out)
}

/// The base archive plus a second one holding `/etc/osprey-vm.env` for the strategy (the
/// kernel unpacks concatenated archives in order).
fn strategy_initramfs(
    work: &Path,
    parts: &[&Path],
    s: &Strategy,
    mode: &str,
    out: &Path,
) -> Result<()> {
    let dir = work.join(format!("env-{}", s.name));
    fs::create_dir_all(dir.join("etc"))?;
    let mut env = format!(
        "export OSPREY_VM_STRATEGY={}\nexport OSPREY_VM_MODE={mode}\nexport OSPREY_VM_FILTERS='{}'\n\
         export OSPREY_VM_REPEAT={}\n",
        s.name,
        test_filters(s).join(" "),
        repeat()
    );
    for (k, v) in s.env {
        let _ = writeln!(env, "export {k}='{v}'");
    }
    fs::write(dir.join("etc/osprey-vm.env"), env)?;
    let overlay = work.join(format!("env-{}.cpio.gz", s.name));
    cpio_gz(&dir, &overlay)?;
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend(fs::read(part)?);
    }
    bytes.extend(fs::read(&overlay)?);
    fs::write(out, bytes)?;
    Ok(())
}

/// PID 1 in the guest. Output goes to the serial console; the last line is the marker.
const INIT: &str = r#"#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in $(cat /modules/order 2>/dev/null); do
    insmod /modules/$m || echo "osprey-vm: insmod $m failed"
done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
# A disk filesystem for /tmp: tmpfs has user xattrs only from 6.6 on.
if mount -t ext4 /dev/vda /tmp 2>/dev/null; then
    echo "osprey-vm: /tmp on /dev/vda"
else
    mount -t tmpfs tmpfs /tmp
    echo "osprey-vm: /tmp on tmpfs (no disk)"
fi
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t securityfs securityfs /sys/kernel/security
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
hostname osprey-vm
. /etc/osprey-vm.env
export HOME=/root CI=1 OSPREY_BIN=/osprey/osprey OSPREY_TEST_TIME_SCALE=@TIME_SCALE@ RUST_BACKTRACE=1
echo "osprey-vm: $(cat /proc/version)"
echo "osprey-vm: strategy $OSPREY_VM_STRATEGY, lsm $(cat /sys/kernel/security/lsm 2>/dev/null)"
cd /tmp
if [ "$OSPREY_VM_MODE" = overhead ]; then
    # open()/close() of a watched file: without the agent, then with it (this strategy).
    mkdir -p /tmp/ovh && echo x > /tmp/ovh/t
    echo '{"options":{"enable_file_events":true},"file_paths":{"b":["/tmp/ovh/%%"]}}' > /tmp/ovh.json
    for i in 1 2 3; do
        echo "OSPREY-VM-BENCH base $(/osprey/openloop --file /tmp/ovh/t --secs 1)"
        /osprey/osprey daemon --database_path=/tmp/ovh-db-$i --config_path=/tmp/ovh.json > /tmp/ovh-$i.log 2>&1 &
        d=$!
        n=0
        while [ ! -f /tmp/ovh-db-$i/osprey.pid ] && [ $n -lt 900 ]; do sleep 0.1; n=$((n+1)); done
        echo "OSPREY-VM-BENCH agent $(/osprey/openloop --file /tmp/ovh/t --secs 1)"
        kill $d; wait $d
    done
    echo "OSPREY-VM-BENCH hook $(grep -o 'file events: [^(;]*' /tmp/ovh-1.log | head -1)"
    echo "OSPREY-VM-DONE exit=0"
    poweroff -f
fi
rc=0
i=0
while [ $rc -eq 0 ] && [ $i -lt "$OSPREY_VM_REPEAT" ]; do
    /osprey/e2e --test-threads=1 $OSPREY_VM_FILTERS
    rc=$?
    i=$((i+1))
done
echo "OSPREY-VM-DONE exit=$rc"
poweroff -f
"#;

// ---------------------------------------------------------------------------------------------
// Boot and results

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Ok,
    Failed,
    Missing,
}

struct RunResult {
    kernel: String,
    strategy: String,
    tests: BTreeMap<String, Outcome>,
    /// The guest's exit code, when its marker was printed.
    exit: Option<i32>,
    /// Why the run itself failed (timeout, panic, no marker).
    problem: Option<String>,
    elapsed: Duration,
    log: PathBuf,
}

impl RunResult {
    /// Failed or missing tests, plus one for a run that died (or exited non-zero with every
    /// test passing).
    fn failures(&self) -> usize {
        let tests = self.tests.values().filter(|o| **o != Outcome::Ok).count();
        tests + usize::from(self.problem.is_some() || (tests == 0 && self.exit != Some(0)))
    }
}

fn boot(
    kernel: &str,
    strategy: &str,
    vmlinuz: &Path,
    initrd: &Path,
    log: &Path,
    expected: &[String],
) -> Result<RunResult> {
    let timeout: u64 = std::env::var("OSPREY_VM_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GUEST_TIMEOUT_SECS);
    eprintln!("xtask vm-test: booting {kernel} / {strategy} (timeout {timeout}s)");
    // A fresh, sparse ext2 disk for the guest's /tmp (mounted with the ext4 driver).
    let disk = initrd.with_extension("disk");
    let _ = fs::remove_file(&disk);
    run_checked(Command::new("truncate").args(["-s", "2G"]).arg(&disk))?;
    run_checked(
        Command::new(which("mke2fs").unwrap_or_else(|| "mke2fs".into()))
            .args(["-q", "-F", "-t", "ext2"])
            .arg(&disk),
    )?;
    let started = Instant::now();
    let mut child = Command::new("timeout")
        .args([
            "--kill-after=10",
            &timeout.to_string(),
            "qemu-system-x86_64",
        ])
        .args(["-accel", "tcg,thread=single", "-cpu", "max", "-m", "1536"])
        .args(["-smp", "2", "-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", KERNEL_APPEND])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start qemu-system-x86_64 (under timeout)")?;
    let mut file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut text = String::new();
    let stdout = child.stdout.take().context("qemu stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        file.write_all(&buf)?;
        let line = String::from_utf8_lossy(&buf).replace('\r', "");
        // Progress on the terminal: results and the marker.
        let t = line.trim_end();
        if t.contains("test ") && (t.ends_with(" ok") || t.ends_with("FAILED"))
            || t.contains(MARKER)
            || t.contains("Kernel panic")
        {
            eprintln!("  [{kernel}/{strategy}] {}", t.trim_start());
        }
        text.push_str(&line);
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    if !stderr.is_empty() {
        let _ = writeln!(file, "\n--- qemu stderr ---\n{stderr}");
    }
    let status = child.wait()?;
    let elapsed = started.elapsed();

    let _ = fs::remove_file(&disk);
    let tests = parse_results(&text, expected);
    let exit: Option<i32> = text.lines().find_map(|l| {
        let rest = &l[l.find(MARKER)? + MARKER.len()..];
        rest.trim().parse().ok()
    });
    let problem = if status.code() == Some(124) || status.code() == Some(137) {
        Some(format!("hung: killed after {timeout}s"))
    } else if text.contains("Kernel panic") {
        Some("kernel panic".to_owned())
    } else if exit.is_none() {
        Some(format!(
            "no marker line (qemu/timeout exited with {status})"
        ))
    } else {
        None
    };
    // The panic messages of failed tests, where CI logs show them (the serial log stays on
    // the machine that ran it).
    if let Some(details) = failure_details(&text) {
        for l in details.lines() {
            eprintln!("  [{kernel}/{strategy}] | {l}");
        }
    }
    eprintln!(
        "xtask vm-test: {kernel} / {strategy}: {:.0}s, exit {}, log {}",
        elapsed.as_secs_f64(),
        exit.map_or("none".to_owned(), |e| e.to_string()),
        log.display()
    );
    Ok(RunResult {
        kernel: kernel.to_owned(),
        strategy: strategy.to_owned(),
        tests,
        exit,
        problem,
        elapsed,
        log: log.to_owned(),
    })
}

/// libtest's report of failed tests: from its first `failures:` line to its second (the list
/// of names), at most 400 lines.
fn failure_details(text: &str) -> Option<String> {
    let start = text.find("\nfailures:\n")? + 1;
    let rest = &text[start..];
    let end = rest[10..]
        .find("\nfailures:\n")
        .map_or(rest.len(), |e| e + 10);
    Some(rest[..end].lines().take(400).collect::<Vec<_>>().join("\n"))
}

/// libtest's `test NAME ... ok|FAILED` lines. With one test thread the result may come on a
/// later line when something else printed in between (kernel messages).
fn parse_results(text: &str, expected: &[String]) -> BTreeMap<String, Outcome> {
    let mut found: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(i) = line.find("test ")
            && let Some((name, rest)) = line[i + 5..].split_once(" ... ")
            && expected.iter().any(|e| e == name)
        {
            let rest = rest.trim();
            if let Some(o) = outcome(rest) {
                found.insert(name.to_owned(), o);
                pending = None;
            } else {
                pending = Some(name.to_owned());
            }
            continue;
        }
        if let Some(name) = &pending
            && let Some(o) = outcome(line.trim())
        {
            found.insert(name.clone(), o);
            pending = None;
        }
    }
    expected
        .iter()
        .map(|e| (e.clone(), found.get(e).copied().unwrap_or(Outcome::Missing)))
        .collect()
}

fn outcome(s: &str) -> Option<Outcome> {
    if s == "ok" || s.ends_with(" ok") {
        Some(Outcome::Ok)
    } else if s.ends_with("FAILED") {
        Some(Outcome::Failed)
    } else {
        None
    }
}

/// Prints the table and the summary; returns the number of failures.
fn report(
    tests: &[String],
    results: &[RunResult],
    kernel_times: &[(String, String, Duration)],
) -> usize {
    let width = tests.iter().map(String::len).max().unwrap_or(4).max(4);
    let cols: Vec<String> = results
        .iter()
        .map(|r| format!("{}/{}", r.kernel, r.strategy))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "\n{:width$}", "test");
    for c in &cols {
        let _ = write!(out, "  {c:>15}");
    }
    out.push('\n');
    for t in tests {
        let _ = write!(out, "{t:width$}");
        for r in results {
            let cell = match r.tests.get(t) {
                Some(Outcome::Ok) => "ok",
                Some(Outcome::Failed) => "FAILED",
                Some(Outcome::Missing) => "no result",
                None => "-",
            };
            let _ = write!(out, "  {cell:>15}");
        }
        out.push('\n');
    }
    out.push('\n');
    let mut failed = 0;
    for r in results {
        let ok = r.tests.values().filter(|o| **o == Outcome::Ok).count();
        let bad = r.tests.values().filter(|o| **o == Outcome::Failed).count();
        let missing = r.tests.len() - ok - bad;
        let _ = writeln!(
            out,
            "{:>5} {:<11} {ok} ok, {bad} failed, {missing} without result, guest exit {}, {:.0}s{}  ({})",
            r.kernel,
            r.strategy,
            r.exit.map_or("none".to_owned(), |e| e.to_string()),
            r.elapsed.as_secs_f64(),
            r.problem
                .as_ref()
                .map_or(String::new(), |p| format!(", {p}")),
            r.log.display()
        );
        failed += r.failures();
    }
    for (k, version, d) in kernel_times {
        let _ = writeln!(
            out,
            "kernel {k}: {version}, {:.0}s for {} strategies",
            d.as_secs_f64(),
            STRATEGIES.len()
        );
    }
    let _ = writeln!(
        out,
        "vm-test: {}",
        if failed == 0 {
            "all passed".to_owned()
        } else {
            format!("{failed} failure(s)")
        }
    );
    println!("{out}");
    failed
}

/// The time scale is substituted into the /init script (the filters come from the
/// strategy's environment file).
fn init_script() -> String {
    INIT.replace("@TIME_SCALE@", TIME_SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "test a::x ... ok\ntest a::y ... FAILED\n\nfailures:\n\n---- a::y stdout ----\n\
                       panicked at y.rs:3:5:\nleft: 1\n\nfailures:\n    a::y\n\ntest result: FAILED.\n";

    #[test]
    fn the_failure_report_is_cut_from_the_serial_log() {
        assert_eq!(
            failure_details(LOG).as_deref(),
            Some("failures:\n\n---- a::y stdout ----\npanicked at y.rs:3:5:\nleft: 1")
        );
        assert_eq!(failure_details("test a::x ... ok\n"), None);
    }

    #[test]
    fn results_are_read_per_expected_test() {
        let expected = ["a::x".to_owned(), "a::y".to_owned(), "a::z".to_owned()];
        let got = parse_results(LOG, &expected);
        assert_eq!(got["a::x"], Outcome::Ok);
        assert_eq!(got["a::y"], Outcome::Failed);
        assert_eq!(got["a::z"], Outcome::Missing);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn tracepoint_runs_only_the_areas_its_flag_changes() {
        assert_eq!(STRATEGIES[0].areas, TEST_FILTERS);
        assert_eq!(STRATEGIES[1].areas, ["file::", "evasion::", "parity::"]);
    }
}
