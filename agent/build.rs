//! Builds the kernel programs (`agent-ebpf`) with the pinned nightly through aya-build and puts
//! the object in OUT_DIR, where `ebpf::loader` embeds it. `AYA_BUILD_SKIP=1` skips this (for
//! tools that only need the userspace code to type-check).

use std::path::Path;

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root = Path::new(&manifest_dir)
        .parent()
        .ok_or_else(|| anyhow!("agent/ has no parent"))?;
    let toolchain_file = root.join("agent-ebpf/rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", toolchain_file.display());
    let text = std::fs::read_to_string(&toolchain_file)
        .with_context(|| format!("reading {}", toolchain_file.display()))?;
    let toolchain = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .find_map(|rest| rest.split('"').nth(1))
        .ok_or_else(|| anyhow!("no channel in {}", toolchain_file.display()))?
        .to_owned();

    // `cargo xtask setup` installs bpf-linker into the project's .tools/bin; make it reachable
    // for plain `cargo build` too.
    let tools_bin = root.join(".tools/bin");
    let path = std::env::var("PATH").unwrap_or_default();
    let new_path = format!("{}:{path}", tools_bin.display());
    // SAFETY: build scripts are single-threaded at this point; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("PATH", new_path) };

    // aya-build runs the nested `cargo build` with our environment and turns every line of its
    // stderr into a `cargo:warning`, so each "Compiling ..."/"Finished ..." status line showed up
    // as a warning of this crate. Quiet mode drops those status lines (and the nested cargo's own
    // warnings) but not its errors; rustc's diagnostics travel as JSON on stdout, which aya-build
    // still renders as warnings, so real warnings and compile errors stay visible. If either
    // variable is already set it is left alone: CARGO_TERM_VERBOSE=true brings the lines back.
    println!("cargo:rerun-if-env-changed=CARGO_TERM_QUIET");
    println!("cargo:rerun-if-env-changed=CARGO_TERM_VERBOSE");
    if std::env::var_os("CARGO_TERM_QUIET").is_none()
        && std::env::var_os("CARGO_TERM_VERBOSE").is_none()
    {
        // SAFETY: as above.
        unsafe {
            std::env::set_var("CARGO_TERM_QUIET", "true");
            // Overrides a `term.verbose` from a cargo config file, which cargo would reject
            // together with `term.quiet`.
            std::env::set_var("CARGO_TERM_VERBOSE", "false");
        }
    }

    if which_bpf_linker().is_none() && std::env::var_os("AYA_BUILD_SKIP").is_none() {
        return Err(anyhow!(
            "bpf-linker not found in {} or PATH: run `cargo xtask setup` first",
            tools_bin.display()
        ));
    }

    let ebpf_dir = root.join("agent-ebpf");
    let ebpf = aya_build::Package {
        name: "agent-ebpf",
        root_dir: ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom(&toolchain))
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("bpf-linker"))
            .find(|p| p.is_file())
    })
}
