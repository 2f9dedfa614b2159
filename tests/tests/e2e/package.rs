//! The Debian package (`cargo xtask package`, which `cargo xtask test` runs first), installed
//! with dpkg into a Debian container booted with systemd-nspawn (`tests::container`, with the
//! capabilities, system calls and tracefs the kernel programs need), started as its unit by
//! that container's systemd (`Type=notify`: `systemctl start` returns once the daemon says
//! READY=1), queried for an exec made in the container, and stopped cleanly.

use std::{
    os::unix::fs::MetadataExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use tests::container::Container;

fn deb() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/package/osprey_{}_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask package` (cargo xtask test does)",
        p.display()
    );
    p
}

fn show(c: &Container, props: &str) -> String {
    c.run(&[
        "systemctl",
        "show",
        "osprey",
        &format!("--property={props}"),
    ])
}

#[test]
fn the_package_installs_and_runs_under_systemd() {
    if !tests::privileged() {
        return;
    }
    let deb = deb();
    let c = Container::boot_with(&[
        "--capability=CAP_BPF,CAP_PERFMON,CAP_SYS_ADMIN,CAP_NET_ADMIN,CAP_SYS_RESOURCE,CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE",
        "--system-call-filter=bpf perf_event_open",
        "--bind-ro=/sys/kernel/tracing",
    ]);
    std::fs::copy(&deb, c.path("/root/osprey.deb")).expect("copy the package in");
    c.run(&["dpkg", "-i", "/root/osprey.deb"]);
    assert_eq!(
        c.run(&["dpkg-query", "-W", "-f=${Status} ${Version}", "osprey"]),
        format!("install ok installed {}", env!("CARGO_PKG_VERSION"))
    );
    let conffiles = c.run(&["dpkg-query", "-W", "-f=${Conffiles}", "osprey"]);
    assert!(conffiles.contains("/etc/osprey/osprey.conf"), "{conffiles}");
    assert!(
        conffiles.contains("/etc/osprey/osprey.flags"),
        "{conffiles}"
    );
    let state = std::fs::metadata(c.path("/var/lib/osprey")).expect("/var/lib/osprey");
    assert_eq!(state.mode() & 0o7777, 0o700);

    // The unit's hardening, as systemd loaded it.
    let props = show(
        &c,
        "Type,NotifyAccess,WatchdogUSec,Restart,NoNewPrivileges,ProtectSystem,ProtectHome,PrivateTmp,MemoryMax,CPUQuotaPerSecUSec,LimitMEMLOCK,CapabilityBoundingSet,ReadWritePaths,After",
    );
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "MemoryMax=1073741824",
        "CPUQuotaPerSecUSec=500ms",
        "LimitMEMLOCK=infinity",
        "CapabilityBoundingSet=cap_dac_read_search cap_net_admin cap_sys_ptrace cap_sys_admin cap_sys_resource cap_perfmon cap_bpf",
        "ReadWritePaths=/var/lib/osprey /var/log/osprey /run/osprey",
    ] {
        assert!(props.lines().any(|l| l == want), "{want} not in:\n{props}");
    }
    assert!(
        props
            .lines()
            .any(|l| l.starts_with("After=") && l.contains("time-sync.target")),
        "{props}"
    );

    // Started by systemd: `start` returns after READY=1.
    c.run(&["systemctl", "start", "osprey"]);
    assert_eq!(
        c.run(&["systemctl", "is-active", "osprey"]).trim(),
        "active"
    );
    // The watchdog in force once it runs (the daemon pings it; a missed ping restarts it).
    assert_eq!(show(&c, "WatchdogUSec").trim(), "WatchdogUSec=30s");
    let main_pid = show(&c, "MainPID");
    let main_pid = main_pid.trim().trim_start_matches("MainPID=");
    // Its effective capabilities are within the unit's bounding set.
    let status = c.run(&["cat", &format!("/proc/{main_pid}/status")]);
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
        .expect("CapEff");
    let allowed: u64 = [2u32, 12, 19, 21, 24, 38, 39] // DAC_READ_SEARCH, NET_ADMIN, SYS_PTRACE, SYS_ADMIN, SYS_RESOURCE, PERFMON, BPF
        .iter()
        .map(|b| 1u64 << b)
        .sum();
    assert_eq!(cap_eff & !allowed, 0, "CapEff {cap_eff:#x}");
    assert_ne!(cap_eff & (1 << 39), 0, "no CAP_BPF: {cap_eff:#x}");

    // An exec in the container is a stored event, read with the package's own flagfile.
    let m = tests::marker("pkg");
    c.run(&["/bin/true", &m]);
    let deadline = Instant::now() + tests::scaled(Duration::from_secs(30));
    let rows = loop {
        let out = c.run(&[
            "/usr/bin/osprey",
            "query",
            "--flagfile=/etc/osprey/osprey.flags",
            "--json",
            &format!(
                "SELECT path, cmdline FROM process_events WHERE syscall = 'execve' AND cmdline = '/bin/true {m}'"
            ),
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        if v.as_array().is_some_and(|a| !a.is_empty()) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        rows,
        serde_json::json!([{"path": "/bin/true", "cmdline": format!("/bin/true {m}")}])
    );

    // A clean stop: exit status 0, the unit inactive.
    c.run(&["systemctl", "stop", "osprey"]);
    assert_eq!(
        c.exec(&["systemctl", "is-active", "osprey"]).stdout,
        b"inactive\n"
    );
    assert_eq!(show(&c, "ExecMainStatus").trim(), "ExecMainStatus=0");
}
