//! The kernel side, seen from userspace: resolve offsets, load and attach the programs, and
//! read their ring buffers and loss counters.

pub mod btf;
pub mod decode;
pub mod tracefs;

use agent_common::{DropSlot, EventKind, KernelOffsets, globals, maps};
use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::TracePoint,
};

/// The compiled kernel programs, embedded at build time by agent/build.rs.
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/osprey-ebpf"));

/// Every tracepoint program and where it attaches.
const TRACEPOINTS: &[(&str, &str, &str)] = &[
    ("sched_process_exec", "sched", "sched_process_exec"),
    ("sched_process_exit", "sched", "sched_process_exit"),
];

/// Resolves every offset the programs use from the running kernel.
pub fn resolve_offsets(btf: &btf::Btf) -> Result<KernelOffsets> {
    tracefs::ensure_mounted()?;
    let exec = tracefs::field_offsets("sched", "sched_process_exec")
        .context("reading the sched_process_exec tracepoint format")?;
    offsets_from(btf, &exec)
}

pub fn offsets_from(
    btf: &btf::Btf,
    exec_format: &std::collections::HashMap<String, u32>,
) -> Result<KernelOffsets> {
    let m = |s: &str, f: &str| btf.member_offset(s, f).unwrap_or(KernelOffsets::MISSING);
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
        cred_euid: m("cred", "euid"),
        cred_egid: m("cred", "egid"),
        tp_exec_filename: exec_format
            .get("filename")
            .copied()
            .unwrap_or(KernelOffsets::MISSING),
        _pad: 0,
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

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub ring_buffer_bytes: u32,
    pub enabled: Vec<EventKind>,
}

/// Loaded and attached programs. Dropping it detaches them.
pub struct Kernel {
    ebpf: Ebpf,
    pub offsets: KernelOffsets,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("offsets", &self.offsets)
            .finish_non_exhaustive()
    }
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
        let btf = btf::Btf::from_sys_fs()
            .context("reading /sys/kernel/btf/vmlinux (the kernel needs CONFIG_DEBUG_INFO_BTF)")?
            .context("parsing the kernel's BTF")?;
        let offsets = resolve_offsets(&btf)?;
        let tgid = std::process::id();
        let kinds: u32 = opts
            .enabled
            .iter()
            .fold(0, |acc, k| acc | (1 << (*k as u32)));
        let mut ebpf = EbpfLoader::new()
            .override_global(globals::OFFSETS, &offsets, true)
            .override_global(globals::AGENT_TGID, &tgid, true)
            .override_global(globals::ENABLED_KINDS, &kinds, true)
            .map_max_entries(maps::PROCESS_RING, opts.ring_buffer_bytes)
            .load(PROGRAMS)
            .context("loading the eBPF programs (this needs root or CAP_BPF + CAP_PERFMON)")?;
        for (prog, category, name) in TRACEPOINTS {
            let p: &mut TracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
                .try_into()
                .with_context(|| format!("{prog} is not a tracepoint program"))?;
            p.load()
                .with_context(|| format!("verifier rejected {prog}"))?;
            p.attach(category, name)
                .with_context(|| format!("attaching {prog} to {category}/{name}"))?;
        }
        Ok(Self { ebpf, offsets })
    }

    pub fn take_process_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(maps::PROCESS_RING)
            .ok_or_else(|| anyhow!("no {} map", maps::PROCESS_RING))?;
        RingBuf::try_from(map).context("PROCESS_RING is not a ring buffer")
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
