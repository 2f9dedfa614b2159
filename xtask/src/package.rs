//! `cargo xtask package`: the Debian package, `target/package/osprey_<version>_amd64.deb`,
//! made with `dpkg-deb` from the release binary (debug info stripped; `cargo xtask test`
//! packages the debug build instead) and `deploy/`:
//! `/usr/bin/osprey`, the systemd unit, `/etc/osprey/osprey.conf` and `osprey.flags` as
//! conffiles, `/var/lib/osprey` (0700), the docs. `Depends` lists the packages that hold the
//! shared libraries the binary links (`ldd`, then `dpkg -S`), so a `dpkg -i` on Debian 12
//! finds them or says which are missing.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{root, run_checked};

/// The package's path for this version.
pub fn deb_path() -> PathBuf {
    root()
        .join("target/package")
        .join(format!("osprey_{}_amd64.deb", env!("CARGO_PKG_VERSION")))
}

fn put(stage: &Path, to: &str, from: &Path, mode: u32) -> Result<()> {
    let dest = stage.join(to.trim_start_matches('/'));
    fs::create_dir_all(dest.parent().expect("a folder"))?;
    fs::copy(from, &dest).with_context(|| format!("copying {}", from.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(stage: &Path, to: &str, text: &str, mode: u32) -> Result<()> {
    let dest = stage.join(to.trim_start_matches('/'));
    fs::create_dir_all(dest.parent().expect("a folder"))?;
    fs::write(&dest, text)?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The Debian packages that hold the shared libraries `bin` links.
fn depends(bin: &Path) -> Result<String> {
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .context("running ldd")?;
    let mut pkgs = BTreeSet::new();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let Some(path) = line
            .split("=>")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            continue;
        };
        let out = Command::new("dpkg").args(["-S", path]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(pkg) = text.split(':').next().filter(|p| !p.trim().is_empty()) {
            pkgs.insert(pkg.trim().to_owned());
        }
    }
    if !pkgs.contains("libc6") {
        bail!("ldd {} named no libc: {:?}", bin.display(), ldd);
    }
    Ok(pkgs.into_iter().collect::<Vec<_>>().join(", "))
}

/// Builds and writes the package: of the release binary, or (`release` false, as
/// `cargo xtask test` makes it for the package test, sparing CI a release build) of the
/// debug one; both stripped of debug info.
pub fn package(release: bool) -> Result<PathBuf> {
    crate::build(release)?;
    let root = root();
    let bin = root.join(if release {
        "target/release/osprey"
    } else {
        "target/debug/osprey"
    });
    let stage = root.join("target/package/stage");
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage)?;
    put(&stage, "/usr/bin/osprey", &bin, 0o755)?;
    run_checked(
        Command::new("strip")
            .arg("--strip-debug")
            .arg(stage.join("usr/bin/osprey")),
    )?;
    let deploy = root.join("deploy");
    put(
        &stage,
        "/lib/systemd/system/osprey.service",
        &deploy.join("osprey.service"),
        0o644,
    )?;
    put(
        &stage,
        "/etc/osprey/osprey.conf",
        &deploy.join("osprey.conf"),
        0o644,
    )?;
    put(
        &stage,
        "/etc/osprey/osprey.flags",
        &deploy.join("osprey.flags"),
        0o644,
    )?;
    for doc in ["README.md", "ARCHITECTURE.md"] {
        put(
            &stage,
            &format!("/usr/share/doc/osprey/{doc}"),
            &root.join(doc),
            0o644,
        )?;
    }
    let state = stage.join("var/lib/osprey");
    fs::create_dir_all(&state)?;
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700))?;
    let size_kib = dir_size(&stage)? / 1024;
    let control = format!(
        "Package: osprey\nVersion: {version}\nArchitecture: amd64\nMaintainer: Osprey developers <osprey@example.org>\nInstalled-Size: {size_kib}\nDepends: {deps}\nSection: admin\nPriority: optional\nDescription: endpoint agent with eBPF capture and osquery-compatible SQL\n Osprey captures process, file and socket events with eBPF, stores them in RocksDB\n and serves them, with live system state, as osquery's SQL tables.\n",
        version = env!("CARGO_PKG_VERSION"),
        deps = depends(&bin)?,
    );
    write(&stage, "/DEBIAN/control", &control, 0o644)?;
    write(
        &stage,
        "/DEBIAN/conffiles",
        "/etc/osprey/osprey.conf\n/etc/osprey/osprey.flags\n",
        0o644,
    )?;
    // Enabled and started by the administrator (`systemctl enable --now osprey`); the unit
    // is made known to a running systemd.
    let reload = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";
    write(&stage, "/DEBIAN/postinst", reload, 0o755)?;
    write(&stage, "/DEBIAN/postrm", reload, 0o755)?;
    let deb = deb_path();
    run_checked(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    eprintln!("xtask package: {}", deb.display());
    Ok(deb)
}

fn dir_size(p: &Path) -> Result<u64> {
    let mut n = 0;
    for e in fs::read_dir(p)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            dir_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}
