//! `cargo xtask setup`: everything a fresh machine of this kind lacks, installed idempotently.
//!
//! - Debian packages the build and the tests need (libclang for rocksdb's bindings, …).
//! - The pinned eBPF nightly (from `agent-ebpf/rust-toolchain.toml`) with `rust-src`.
//! - bpf-linker, built against that nightly's own libLLVM (no system LLVM needed), into the
//!   project-local `.tools/`. A stamp records what it was built against; it is rebuilt when
//!   the nightly changes.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{root, run_checked};

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_MAJOR: &str = "22";

/// Debian packages needed by the build and the tests.
/// - libclang-dev: bindgen in librocksdb-sys.
/// - librocksdb-dev: the RocksDB library we link (see .cargo/config.toml).
/// - python3-venv: the osquery-python extension tests.
/// - qemu-system-x86, busybox-static, cpio: `cargo xtask vm-test` (guests on other kernels).
/// - bpftool: inspecting programs and BTF when a kernel rejects one.
const DEBIAN_PACKAGES: &[&str] = &[
    "libclang-dev",
    "librocksdb-dev",
    "python3-venv",
    "ca-certificates",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "bpftool",
    // The hung-file-system e2e test: a FUSE server in Python (Debian's fusepy, on libfuse2).
    "python3-fusepy",
    "libfuse2",
    // The FIM parity test's oracle: inotifywait.
    "inotify-tools",
    // librdkafka's bundled build (the kafka_producer logger) runs configure and make.
    "make",
    // The TLS remote API tests: certificates made with openssl, the test server in Python.
    "openssl",
    "python3",
    // The network tables' test compares with iproute2's `ip`.
    "iproute2",
    // The extension manager's generated Thrift code is checked against this generator.
    "thrift-compiler",
    // `cargo xtask cross-check` and `wine-test`: the Windows linker, and wine to run the
    // Windows tests.
    "gcc-mingw-w64-x86-64",
    "wine64",
    // ... and the aarch64 Linux cross compiler for the agent's C dependencies (ring,
    // librdkafka) when it is checked for Linux on arm64.
    "gcc-aarch64-linux-gnu",
    "g++-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    // extended_attributes' test compares with getfattr and getcap, and sets with their pairs.
    "attr",
    "libcap2-bin",
    // pci_devices' test compares with lspci (pciutils brings the pci.ids names too).
    "pciutils",
    // block_devices' test makes XFS and FAT file systems to compare our reading with blkid's.
    "xfsprogs",
    "dosfstools",
    // systemd_units' test boots a real systemd in a container: the tree is bootstrapped with
    // debootstrap and booted with systemd-nspawn.
    "debootstrap",
    "systemd-container",
    // The SSH tables' tests compare with ssh-keygen and ssh -G.
    "openssh-client",
];

/// The osquery Python SDK the extension tests run unchanged, in a venv of its own.
const PYTHON_SDK: &[&str] = &["osquery==3.1.1", "thrift==0.21.0"];

/// The venv with [`PYTHON_SDK`].
pub fn python_sdk_dir() -> PathBuf {
    tools_dir().join("pyenv")
}

pub fn tools_dir() -> PathBuf {
    root().join(".tools")
}

/// PATH with `.tools/bin` first, so aya-build finds bpf-linker.
pub fn path_with_tools() -> String {
    let old = std::env::var("PATH").unwrap_or_default();
    format!("{}:{old}", tools_dir().join("bin").display())
}

/// The eBPF toolchain channel, read from `agent-ebpf/rust-toolchain.toml`.
pub fn ebpf_toolchain() -> Result<String> {
    let path = root().join("agent-ebpf/rust-toolchain.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.split('"').nth(1))
        .map(str::to_owned)
        .next()
        .with_context(|| format!("no `channel = \"...\"` in {}", path.display()))
}

pub fn setup() -> Result<()> {
    let started = Instant::now();
    debian_packages()?;
    let toolchain = ebpf_toolchain()?;
    nightly(&toolchain)?;
    bpf_linker(&toolchain)?;
    python_sdk()?;
    crate::cross::setup()?;
    container_tree()?;
    eprintln!(
        "xtask setup: ready in {:.1}s (eBPF toolchain {toolchain}, bpf-linker {BPF_LINKER_VERSION})",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "Debian packages {missing:?} are missing and apt-get is not available: install them by hand"
        );
    }
    eprintln!("xtask setup: installing Debian packages {missing:?}");
    run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    run_checked(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

pub fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn nightly(toolchain: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", toolchain])
        .output()
        .context("running rustup (is it installed?)")?;
    let list = String::from_utf8_lossy(&installed.stdout);
    let have = |c: &str| list.lines().any(|l| l.starts_with(c));
    if installed.status.success() && have("rust-src") && have("clippy") && have("rustfmt") {
        return Ok(());
    }
    eprintln!("xtask setup: installing Rust toolchain {toolchain} with rust-src");
    run_checked(Command::new("rustup").args([
        "toolchain",
        "install",
        toolchain,
        "--profile",
        "minimal",
        "--component",
        "rust-src,clippy,rustfmt",
    ]))
}

/// `.tools/pyenv`: a venv with the osquery Python SDK (rebuilt when the pins change).
fn python_sdk() -> Result<()> {
    let dir = python_sdk_dir();
    let stamp = dir.join("osprey.stamp");
    let want = PYTHON_SDK.join(" ");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(());
    }
    eprintln!("xtask setup: installing {want} into {}", dir.display());
    let _ = fs::remove_dir_all(&dir);
    run_checked(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run_checked(
        Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYTHON_SDK),
    )?;
    fs::write(&stamp, want).with_context(|| format!("writing {}", stamp.display()))
}

fn bpf_linker(toolchain: &str) -> Result<()> {
    let sysroot = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .output()
        .context("asking the eBPF nightly for its sysroot")?;
    if !sysroot.status.success() {
        bail!("`rustup run {toolchain} rustc --print sysroot` failed");
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    // The real shared library is `libLLVM.so.<ver>-rust-<ver>`; the `libLLVM-<major>-rust-*.so`
    // beside it is a linker script.
    let lib_dir = sysroot.join("lib");
    let libllvm = fs::read_dir(&lib_dir)
        .with_context(|| format!("listing {}", lib_dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("libLLVM.so.{LLVM_MAJOR}")))
        })
        .with_context(|| {
            format!(
                "{toolchain} ships no libLLVM.so.{LLVM_MAJOR}* in {}",
                lib_dir.display()
            )
        })?;

    let tools = tools_dir();
    let stamp_path = tools.join("bpf-linker.stamp");
    let stamp = format!(
        "bpf-linker {BPF_LINKER_VERSION} against {}\n",
        libllvm.display()
    );
    let binary = tools.join("bin/bpf-linker");
    if binary.exists() && fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(());
    }

    // bpf-linker's build only needs $LLVM_PREFIX/lib/libLLVM.so; its RUNPATH then points here.
    let prefix = tools.join("llvm");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)?;
    let soname = libllvm
        .file_name()
        .context("libLLVM path has a file name")?;
    for name in [std::ffi::OsStr::new("libLLVM.so"), soname] {
        let link = prefix_lib.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "xtask setup: building bpf-linker {BPF_LINKER_VERSION} against {}",
        libllvm.display()
    );
    run_checked(
        Command::new("cargo")
            .env("LLVM_PREFIX", &prefix)
            .env_remove("RUSTC")
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--force",
            ])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{LLVM_MAJOR}"),
            ])
            .arg("--root")
            .arg(&tools),
    )?;
    fs::write(&stamp_path, stamp)?;
    Ok(())
}

/// The Debian release of the container tree, and what it holds beyond minbase.
const CONTAINER_SUITE: &str = "bookworm";
// librocksdb7.8: what the agent links, so the package test's `dpkg -i` finds its
// dependencies in the tree.
const CONTAINER_PACKAGES: &str = "systemd,systemd-sysv,dbus,librocksdb7.8";

/// `.tools/nspawn/<suite>`: a Debian minbase tree with systemd and D-Bus, which the systemd
/// tests boot with systemd-nspawn (on an overlay: the tree itself is never changed). Built
/// once, from the mirror this machine's apt already uses; a stamp records what it holds.
pub fn container_tree() -> Result<()> {
    let dir = tools_dir().join("nspawn");
    let tree = dir.join(CONTAINER_SUITE);
    let stamp = dir.join(format!("{CONTAINER_SUITE}.stamp"));
    if fs::read_to_string(&stamp).is_ok_and(|s| s == CONTAINER_PACKAGES) && tree.exists() {
        return Ok(());
    }
    let mirror = apt_mirror()?;
    let part = dir.join(format!("{CONTAINER_SUITE}.part"));
    let _ = fs::remove_dir_all(&part);
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(&dir)?;
    eprintln!(
        "xtask setup: bootstrapping the container tree {}",
        tree.display()
    );
    run_checked(
        Command::new("debootstrap")
            .args([
                "--variant=minbase",
                &format!("--include={CONTAINER_PACKAGES}"),
            ])
            .arg(CONTAINER_SUITE)
            .arg(&part)
            .arg(&mirror)
            .stdout(Stdio::null()),
    )?;
    fs::rename(&part, &tree)?;
    fs::write(&stamp, CONTAINER_PACKAGES)?;
    Ok(())
}

/// The first Debian archive URI of this machine's apt sources (deb822 `.sources` or
/// one-line `.list` files): the tree comes from where the host's packages come from.
fn apt_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        v.sort();
        files.extend(v);
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        for line in text.lines().map(str::trim) {
            let uri = if name.ends_with(".sources") {
                line.strip_prefix("URIs:")
                    .and_then(|r| r.split_whitespace().next())
            } else if name.ends_with(".list") {
                line.strip_prefix("deb ")
                    .and_then(|r| r.split_whitespace().find(|w| !w.starts_with('[')))
            } else {
                None
            };
            if let Some(u) = uri.filter(|u| u.ends_with("/debian") || u.ends_with("/debian/")) {
                return Ok(u.to_owned());
            }
        }
    }
    bail!("no Debian archive in /etc/apt/sources.list(.d): cannot bootstrap the container tree")
}
