//! The kernel side, seen from userspace: resolve offsets, load and attach the programs, and
//! read their ring buffers and loss counters.

pub mod btf;
pub mod decode;
pub mod files;
pub mod klog;
pub mod sockets;
pub mod tracefs;

use agent_common::{DropSlot, EventKind, KernelOffsets, globals, maps};
use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
};

/// The compiled kernel programs, embedded at build time by agent/build.rs.
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/osprey-ebpf"));

/// Every tracepoint program and where it attaches.
/// Raw tracepoints: (program, tracepoint).
const RAW_TRACEPOINTS: &[(&str, &str)] = &[("sched_process_fork", "sched_process_fork")];

const TRACEPOINTS: &[(&str, &str, &str)] = &[
    ("sched_process_exec", "sched", "sched_process_exec"),
    ("sched_process_exit", "sched", "sched_process_exit"),
    // Failed exec attempts: the entry keeps the path pointer, the exit reports an error.
    ("sys_enter_exec", "syscalls", "sys_enter_execve"),
    ("sys_enter_exec", "syscalls", "sys_enter_execveat"),
    ("sys_exit_exec", "syscalls", "sys_exit_execve"),
    ("sys_exit_exec", "syscalls", "sys_exit_execveat"),
];

/// Resolves every offset the programs use from the running kernel.
pub fn resolve_offsets(btf: &btf::Btf) -> Result<KernelOffsets> {
    tracefs::ensure_mounted()?;
    let exec = tracefs::field_offsets("sched", "sched_process_exec")
        .context("reading the sched_process_exec tracepoint format")?;
    let enter = tracefs::field_offsets("syscalls", "sys_enter_openat")
        .context("reading the sys_enter_openat tracepoint format (CONFIG_FTRACE_SYSCALLS)")?;
    let exit = tracefs::field_offsets("syscalls", "sys_exit_openat")
        .context("reading the sys_exit_openat tracepoint format")?;
    offsets_from(btf, &exec, &enter, &exit)
}

type Format = std::collections::HashMap<String, u32>;

pub fn offsets_from(
    btf: &btf::Btf,
    exec_format: &Format,
    enter: &Format,
    exit: &Format,
) -> Result<KernelOffsets> {
    let m = |s: &str, f: &str| btf.member_offset(s, f).unwrap_or(KernelOffsets::MISSING);
    // sock_common sits in struct sock as `__sk_common`; its fields hide in anonymous unions.
    let sk = |f: &str| {
        btf.path_offset("sock", &format!("__sk_common.{f}"))
            .unwrap_or(KernelOffsets::MISSING)
    };
    let o = KernelOffsets {
        task_real_parent: m("task_struct", "real_parent"),
        task_tgid: m("task_struct", "tgid"),
        task_mm: m("task_struct", "mm"),
        task_cred: m("task_struct", "cred"),
        task_loginuid: m("task_struct", "loginuid"),
        task_exit_code: m("task_struct", "exit_code"),
        task_start_time: m("task_struct", "start_time"),
        task_nsproxy: m("task_struct", "nsproxy"),
        nsproxy_mnt_ns: m("nsproxy", "mnt_ns"),
        mnt_ns_inum: btf
            .path_offset("mnt_namespace", "ns.inum")
            .unwrap_or(KernelOffsets::MISSING),
        mm_arg_start: m("mm_struct", "arg_start"),
        mm_arg_end: m("mm_struct", "arg_end"),
        mm_env_start: m("mm_struct", "env_start"),
        mm_env_end: m("mm_struct", "env_end"),
        task_flags: m("task_struct", "flags"),
        file_f_flags: m("file", "f_flags"),
        cred_uid: m("cred", "uid"),
        cred_gid: m("cred", "gid"),
        cred_euid: m("cred", "euid"),
        cred_egid: m("cred", "egid"),
        tp_exec_filename: exec_format
            .get("filename")
            .copied()
            .unwrap_or(KernelOffsets::MISSING),
        // sys_enter_openat's first argument is `dfd`; every syscall record lays its arguments
        // out as consecutive 8-byte slots from there.
        tp_syscall_args: enter.get("dfd").copied().unwrap_or(KernelOffsets::MISSING),
        tp_syscall_ret: exit.get("ret").copied().unwrap_or(KernelOffsets::MISSING),
        tp_syscall_nr: enter
            .get("__syscall_nr")
            .copied()
            .unwrap_or(KernelOffsets::MISSING),
        task_fs: m("task_struct", "fs"),
        task_files: m("task_struct", "files"),
        fs_pwd: m("fs_struct", "pwd"),
        path_mnt: m("path", "mnt"),
        path_dentry: m("path", "dentry"),
        dentry_parent: m("dentry", "d_parent"),
        dentry_name: btf
            .path_offset("dentry", "d_name.name")
            .unwrap_or(KernelOffsets::MISSING),
        dentry_name_len: btf
            .path_offset("dentry", "d_name.len")
            .unwrap_or(KernelOffsets::MISSING),
        vfsmount_root: m("vfsmount", "mnt_root"),
        mount_mnt: m("mount", "mnt"),
        mount_parent: m("mount", "mnt_parent"),
        mount_mountpoint: m("mount", "mnt_mountpoint"),
        files_fdt: m("files_struct", "fdt"),
        files_count: m("files_struct", "count"),
        fdtable_fd: m("fdtable", "fd"),
        fdtable_max_fds: m("fdtable", "max_fds"),
        file_path: m("file", "f_path"),
        file_inode: m("file", "f_inode"),
        inode_ino: m("inode", "i_ino"),
        file_mode: m("file", "f_mode"),
        file_private: m("file", "private_data"),
        socket_sk: m("socket", "sk"),
        sk_family: sk("skc_family"),
        sk_num: sk("skc_num"),
        sk_dport: sk("skc_dport"),
        sk_rcv_saddr: sk("skc_rcv_saddr"),
        sk_daddr: sk("skc_daddr"),
        sk_v6_rcv_saddr: sk("skc_v6_rcv_saddr"),
        sk_v6_daddr: sk("skc_v6_daddr"),
        sk_protocol: m("sock", "sk_protocol"),
        sk_type: m("sock", "sk_type"),
        task_pid: m("task_struct", "pid"),
        file_refcnt: btf
            .member_offset("file", "f_ref")
            .or_else(|| btf.member_offset("file", "f_count"))
            .unwrap_or(KernelOffsets::MISSING),
        file_refcnt_bias: u32::from(btf.member_offset("file", "f_ref").is_some()),
        dentry_inode: m("dentry", "d_inode"),
        inode_sb: m("inode", "i_sb"),
        sb_dev: m("super_block", "s_dev"),
        mm_exe_file: m("mm_struct", "exe_file"),
        inode_nlink: m("inode", "__i_nlink"),
    };
    // Without these the core columns would be empty: refuse to run half-blind.
    for (name, v) in [
        ("task_struct.tgid", o.task_tgid),
        ("task_struct.real_parent", o.task_real_parent),
        ("task_struct.mm", o.task_mm),
        ("mm_struct.arg_start", o.mm_arg_start),
        ("sched_process_exec.filename", o.tp_exec_filename),
    ] {
        if v == KernelOffsets::MISSING {
            bail!("the running kernel has no {name}; process events cannot be captured");
        }
    }
    Ok(o)
}

/// The offsets file events need; None when all are there.
pub fn missing_file_offsets(o: &KernelOffsets) -> Option<&'static str> {
    [
        ("sys_enter_openat args", o.tp_syscall_args),
        ("sys_exit_openat.ret", o.tp_syscall_ret),
        ("__syscall_nr", o.tp_syscall_nr),
        ("task_struct.fs", o.task_fs),
        ("task_struct.files", o.task_files),
        ("fs_struct.pwd", o.fs_pwd),
        ("path.mnt", o.path_mnt),
        ("path.dentry", o.path_dentry),
        ("dentry.d_parent", o.dentry_parent),
        ("dentry.d_name.name", o.dentry_name),
        ("dentry.d_name.len", o.dentry_name_len),
        ("vfsmount.mnt_root", o.vfsmount_root),
        ("mount.mnt", o.mount_mnt),
        ("mount.mnt_parent", o.mount_parent),
        ("mount.mnt_mountpoint", o.mount_mountpoint),
        ("files_struct.fdt", o.files_fdt),
        ("files_struct.count", o.files_count),
        ("fdtable.fd", o.fdtable_fd),
        ("fdtable.max_fds", o.fdtable_max_fds),
        ("file.f_path", o.file_path),
        ("file.f_flags", o.file_f_flags),
        ("file.f_inode", o.file_inode),
        ("inode.i_ino", o.inode_ino),
        ("dentry.d_inode", o.dentry_inode),
        ("inode.i_sb", o.inode_sb),
        ("super_block.s_dev", o.sb_dev),
    ]
    .into_iter()
    .find(|(_, v)| *v == KernelOffsets::MISSING)
    .map(|(n, _)| n)
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub ring_buffer_bytes: u32,
    pub enabled: Vec<EventKind>,
    /// Path prefixes whose file activity is reported (`/` or `watch_all` = everything): as
    /// spelled, a hint for failed calls only.
    pub watched_prefixes: Vec<String>,
    /// The watched folders by identity, with their ids (what decides "watched").
    pub watched_dirs: Vec<(agent_common::file::DirKey, u32)>,
    pub watch_all: bool,
    /// Report read-only opens too (file_accesses).
    pub report_reads: bool,
    /// Most argv bytes kept per exec; longer command lines are cut and flagged.
    pub exec_args_max: u32,
    /// Most environment bytes kept per exec; 0 = not captured.
    pub exec_env_max: u32,
    /// Which hooks may be used beyond the tracepoint base.
    pub hooks: Hooks,
    /// The programs' aya-log level (0: off; see [`klog::level_from_flag`]).
    pub log_level: u8,
}

/// `--ebpf_hooks`: `auto` probes the kernel for the better hooks, `tracepoint` forces the
/// tracepoint base (which is complete on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hooks {
    #[default]
    Auto,
    Tracepoint,
}

impl std::str::FromStr for Hooks {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "tracepoint" => Ok(Self::Tracepoint),
            other => Err(format!(
                "--ebpf_hooks must be auto or tracepoint, not {other:?}"
            )),
        }
    }
}

/// The hook strategy in use for each publisher, as logged and shown in `osquery_events.hook`.
pub const STRATEGY_TRACEPOINT: &str = "tracepoint";
/// Tracepoints for syscalls, plus fentry on `security_file_open` for opens issued through
/// io_uring.
pub const STRATEGY_FENTRY: &str = "tracepoint+fentry";

/// Loaded and attached programs. Dropping it detaches them.
pub struct Kernel {
    ebpf: Ebpf,
    pub offsets: KernelOffsets,
    /// Tracepoints that exist in tracefs but could not be attached, with the reason.
    pub skipped: Vec<String>,
    /// (record kind, strategy) for every enabled event source.
    pub strategies: Vec<(EventKind, String)>,
    /// The reader of the programs' log ring, when `--ebpf_log_level` is not off.
    kernel_log: Option<klog::KernelLog>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("offsets", &self.offsets)
            .finish_non_exhaustive()
    }
}

fn attach(ebpf: &mut Ebpf, prog: &str, category: &str, name: &str) -> Result<()> {
    let p: &mut TracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
        .try_into()
        .with_context(|| format!("{prog} is not a tracepoint program"))?;
    p.attach(category, name)
        .with_context(|| format!("attaching {prog} to {category}/{name}"))?;
    Ok(())
}

fn load_program(ebpf: &mut Ebpf, prog: &str) -> Result<()> {
    let p: &mut TracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
        .try_into()
        .with_context(|| format!("{prog} is not a tracepoint program"))?;
    let started = std::time::Instant::now();
    p.load()
        .with_context(|| format!("verifier rejected {prog}"))?;
    log::debug!(
        "{prog}: verified and loaded in {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// The fentry hook for io_uring opens and the two tracepoints that mark io_uring_enter.
fn attach_uring_hooks(ebpf: &mut Ebpf) -> Result<()> {
    let btf = aya::Btf::from_sys_fs().context("reading the kernel BTF")?;
    let p: &mut aya::programs::FEntry = ebpf
        .program_mut("uring_file_open")
        .ok_or_else(|| anyhow!("program uring_file_open missing from the object"))?
        .try_into()
        .context("uring_file_open is not an fentry program")?;
    p.load("security_file_open", &btf)
        .context("loading fentry/security_file_open")?;
    p.attach().context("attaching fentry/security_file_open")?;
    for (prog, tp) in [
        ("sys_enter_io_uring_enter", "sys_enter_io_uring_enter"),
        ("sys_exit_io_uring_enter", "sys_exit_io_uring_enter"),
    ] {
        load_program(ebpf, prog)?;
        attach(ebpf, prog, "syscalls", tp)?;
    }
    Ok(())
}

impl Kernel {
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        if !opts.ring_buffer_bytes.is_power_of_two() || opts.ring_buffer_bytes < 4096 {
            bail!(
                "--ring_buffer_bytes must be a power of two of at least 4096, not {}",
                opts.ring_buffer_bytes
            );
        }
        crate::sys::raise_memlock_limit();
        let t0 = std::time::Instant::now();
        let btf = btf::Btf::from_sys_fs()
            .context("reading /sys/kernel/btf/vmlinux (the kernel needs CONFIG_DEBUG_INFO_BTF)")?
            .context("parsing the kernel's BTF")?;
        let offsets = resolve_offsets(&btf)?;
        let t_btf = t0.elapsed();
        let files_on = opts.enabled.contains(&EventKind::File);
        if files_on && let Some(missing) = missing_file_offsets(&offsets) {
            bail!("the running kernel has no {missing}; file events cannot be captured");
        }
        let tgid = std::process::id();
        let kinds: u32 = opts
            .enabled
            .iter()
            .fold(0, |acc, k| acc | (1 << (*k as u32)));
        let watch_all = u32::from(opts.watch_all || opts.watched_prefixes.iter().any(|p| p == "/"));
        let mut ebpf = EbpfLoader::new()
            // No CO-RE relocations (offsets come from `KernelOffsets`): the loader need not
            // parse the kernel's BTF a second time.
            .btf(None)
            // The error line and the statistics only: a full instruction trace of programs
            // with loops overflows the log buffer, and the kernel then keeps a part without
            // the error.
            .verifier_log_level(aya::VerifierLogLevel::STATS)
            .override_global(globals::OFFSETS, &offsets, true)
            .override_global(globals::AGENT_TGID, &tgid, true)
            .override_global(globals::ENABLED_KINDS, &kinds, true)
            .override_global(globals::WATCH_ALL, &watch_all, true)
            .override_global(globals::ARGS_LIMIT, &opts.exec_args_max, true)
            .override_global(globals::ENV_LIMIT, &opts.exec_env_max, true)
            .override_global(globals::REPORT_READS, &u32::from(opts.report_reads), true)
            .override_global(globals::EXECVEAT_NR, &(libc::SYS_execveat as u32), true)
            .override_global(aya_log::LEVEL, &opts.log_level, true)
            .map_max_entries(maps::PROCESS_RING, opts.ring_buffer_bytes)
            .map_max_entries(maps::FILE_RING, opts.ring_buffer_bytes)
            .map_max_entries(maps::SOCK_RING, opts.ring_buffer_bytes)
            .load(PROGRAMS)
            .context("loading the eBPF programs (this needs root or CAP_BPF + CAP_PERFMON)")?;
        let t_object = t0.elapsed();
        let mut loaded = std::collections::HashSet::new();
        for (prog, category, name) in TRACEPOINTS {
            if loaded.insert(prog) {
                load_program(&mut ebpf, prog)?;
            }
            attach(&mut ebpf, prog, category, name)?;
        }
        if opts.enabled.contains(&EventKind::ProcessFork) {
            for (prog, tp) in RAW_TRACEPOINTS {
                let p: &mut RawTracePoint = ebpf
                    .program_mut(prog)
                    .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
                    .try_into()
                    .with_context(|| format!("{prog} is not a raw tracepoint program"))?;
                p.load()
                    .with_context(|| format!("verifier rejected {prog}"))?;
                p.attach(tp)
                    .with_context(|| format!("attaching {prog} to raw tracepoint {tp}"))?;
            }
        }
        let mut skipped = Vec::new();
        if files_on {
            files::fill_specs(&mut ebpf)?;
            files::set_watched(&mut ebpf, &opts.watched_prefixes)?;
            files::set_watched_dirs(&mut ebpf, &opts.watched_dirs)?;
            for prog in [
                "sys_enter_file",
                "sys_enter_file2",
                "sys_exit_file",
                "sys_enter_fd",
            ] {
                load_program(&mut ebpf, prog)?;
            }
            for (name, _) in files::syscalls() {
                let exists = tracefs::tracefs_root().is_some_and(|r| {
                    r.join("events/syscalls")
                        .join(format!("sys_enter_{name}"))
                        .is_dir()
                });
                if !exists {
                    // Older kernels lack newer syscalls (openat2, fchmodat2): nothing to watch.
                    log::debug!("no tracepoint for syscall {name} on this kernel");
                    continue;
                }
                if files::is_read_op(name) && !opts.report_reads {
                    continue;
                }
                let (enter, exit) = if files::is_fd_op(name) {
                    ("sys_enter_fd", None)
                } else {
                    (files::enter_program(name), Some("sys_exit_file"))
                };
                let res = attach(&mut ebpf, enter, "syscalls", &format!("sys_enter_{name}"))
                    .and_then(|()| match exit {
                        Some(exit) => {
                            attach(&mut ebpf, exit, "syscalls", &format!("sys_exit_{name}"))
                        }
                        None => Ok(()),
                    });
                if let Err(e) = res {
                    skipped.push(format!("{name}: {e:#}"));
                }
            }
            if !skipped.is_empty() {
                bail!(
                    "file syscall tracepoints could not be attached: {}",
                    skipped.join("; ")
                );
            }
        }
        if opts.enabled.contains(&EventKind::Socket) {
            for (name, v) in [
                ("file.private_data", offsets.file_private),
                ("socket.sk", offsets.socket_sk),
                ("sock_common.skc_family", offsets.sk_family),
                ("sock_common.skc_num", offsets.sk_num),
            ] {
                if v == KernelOffsets::MISSING {
                    bail!("the running kernel has no {name}; socket events cannot be captured");
                }
            }
            sockets::fill_ops(&mut ebpf)?;
            for prog in ["sys_enter_sock", "sys_exit_sock"] {
                load_program(&mut ebpf, prog)?;
            }
            for (name, _, _) in sockets::SYSCALLS {
                attach(
                    &mut ebpf,
                    "sys_enter_sock",
                    "syscalls",
                    &format!("sys_enter_{name}"),
                )?;
                attach(
                    &mut ebpf,
                    "sys_exit_sock",
                    "syscalls",
                    &format!("sys_exit_{name}"),
                )?;
            }
        }
        let t_attached = t0.elapsed();
        let mut strategies = Vec::new();
        if opts.enabled.contains(&EventKind::ProcessExec) {
            strategies.push((EventKind::ProcessExec, STRATEGY_TRACEPOINT.into()));
        }
        if files_on {
            let file = match opts.hooks {
                Hooks::Tracepoint => {
                    log::info!("file events: tracepoint base (--ebpf_hooks=tracepoint)");
                    STRATEGY_TRACEPOINT
                }
                Hooks::Auto => match attach_uring_hooks(&mut ebpf) {
                    Ok(()) => {
                        log::info!(
                            "file events: syscall tracepoints + fentry on security_file_open (io_uring opens)"
                        );
                        STRATEGY_FENTRY
                    }
                    Err(e) => {
                        log::info!(
                            "file events: tracepoint base (this kernel refuses fentry: {e:#}); opens issued through io_uring are not seen"
                        );
                        STRATEGY_TRACEPOINT
                    }
                },
            };
            strategies.push((EventKind::File, file.into()));
        }
        if opts.enabled.contains(&EventKind::Socket) {
            strategies.push((EventKind::Socket, STRATEGY_TRACEPOINT.into()));
        }
        let kernel_log = if opts.log_level > 0 {
            Some(klog::KernelLog::init(&mut ebpf)?)
        } else {
            None
        };
        // Start-up cost, phase by phase (the verifier dominates on slow machines).
        let ms = |d: std::time::Duration| d.as_millis();
        log::info!(
            "eBPF loaded in {} ms: BTF and offsets {} ms, object {} ms, verification and attachment {} ms, optional hooks {} ms",
            ms(t0.elapsed()),
            ms(t_btf),
            ms(t_object - t_btf),
            ms(t_attached - t_object),
            ms(t0.elapsed() - t_attached)
        );
        Ok(Self {
            ebpf,
            offsets,
            skipped,
            strategies,
            kernel_log,
        })
    }

    /// The hook strategy attached for records of `kind` (`tracepoint`, `tracepoint+fentry`),
    /// if that kind is enabled.
    pub fn strategy(&self, kind: EventKind) -> Option<&str> {
        self.strategies
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s.as_str())
    }

    /// The reader of the programs' log ring (once), if kernel logging is on.
    pub fn take_kernel_log(&mut self) -> Option<klog::KernelLog> {
        self.kernel_log.take()
    }

    pub fn take_process_ring(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(maps::PROCESS_RING)
    }

    pub fn take_file_ring(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(maps::FILE_RING)
    }

    pub fn take_sock_ring(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(maps::SOCK_RING)
    }

    fn take_ring(&mut self, name: &str) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(name)
            .ok_or_else(|| anyhow!("no {name} map"))?;
        RingBuf::try_from(map).with_context(|| format!("{name} is not a ring buffer"))
    }

    pub fn take_drops(&mut self) -> Result<DropCounters> {
        let map = self
            .ebpf
            .take_map(maps::DROPS)
            .ok_or_else(|| anyhow!("no {} map", maps::DROPS))?;
        Ok(DropCounters {
            map: PerCpuArray::try_from(map).context("DROPS is not a per-CPU array")?,
        })
    }

    /// The processes running now, from the `iter/task` program (the agent excluded). Run it
    /// after the exec program is attached: a process is then in the snapshot, in the exec
    /// records, or in both, never in neither.
    pub fn task_snapshot(&mut self) -> Result<Vec<agent_common::process::TaskRecord>> {
        use std::io::Read as _;
        let btf =
            aya::Btf::from_sys_fs().context("reading the kernel BTF for the task iterator")?;
        let prog: &mut aya::programs::Iter = self
            .ebpf
            .program_mut("dump_task")
            .ok_or_else(|| anyhow!("program dump_task missing from the object"))?
            .try_into()
            .context("dump_task is not an iterator program")?;
        prog.load("task", &btf)
            .context("verifier rejected the task iterator (dump_task)")?;
        let link_id = prog.attach().context("attaching the task iterator")?;
        let link = prog
            .take_link(link_id)
            .context("taking the task iterator link")?;
        let mut file = link.into_file().context("creating the task iterator")?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .context("reading the task iterator")?;
        Ok(decode::task_records(&bytes))
    }

    /// Replaces the watched prefixes while the programs run (config reload).
    /// See [`files::sweep_fd_state`].
    pub fn sweep_fd_state(&mut self, alive: impl Fn(u32) -> bool) -> Result<u64> {
        files::sweep_fd_state(&mut self.ebpf, alive)
    }

    pub fn set_watched(
        &mut self,
        prefixes: &[String],
        dirs: &[(agent_common::file::DirKey, u32)],
    ) -> Result<()> {
        files::set_watched_dirs(&mut self.ebpf, dirs)?;
        files::set_watched(&mut self.ebpf, prefixes)
    }
}

/// The kernel's per-CPU loss counters.
pub struct DropCounters {
    map: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for DropCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DropCounters")
    }
}

impl DropCounters {
    /// `(slot, per-CPU counts)` for every slot.
    pub fn read(&self) -> Result<Vec<(DropSlot, Vec<u64>)>> {
        DropSlot::ALL
            .iter()
            .map(|slot| {
                let values = self
                    .map
                    .get(&(*slot as u32), 0)
                    .with_context(|| format!("reading drop slot {slot:?}"))?;
                Ok((*slot, values.iter().copied().collect()))
            })
            .collect()
    }
}

/// Polls a kernel ring buffer and hands every record to `each` until `stopping()` is true, then
/// drains what is left. Stops early when `each` returns false (the writer is gone).
pub fn drain_ring(
    mut ring: RingBuf<MapData>,
    stopping: impl Fn() -> bool,
    mut each: impl FnMut(&[u8]) -> bool,
) {
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        let stopping = stopping();
        {
            let mut fds = [rustix::event::PollFd::new(
                &ring,
                rustix::event::PollFlags::IN,
            )];
            if let Err(e) = rustix::event::poll(&mut fds, Some(&timeout))
                && e != rustix::io::Errno::INTR
            {
                log::error!("poll on a ring buffer failed: {e}");
            }
        }
        while let Some(item) = ring.next() {
            if !each(&item) {
                return;
            }
        }
        if stopping {
            return;
        }
    }
}
