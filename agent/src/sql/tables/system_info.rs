//! `system_info`: host identity for inventory: hostname, machine id, CPU (from
//! `/proc/cpuinfo`), memory (`/proc/meminfo`) and DMI strings (`/sys/class/dmi/id`, absent on
//! many VMs and non-x86 boards, which leaves those columns empty).

use std::{collections::BTreeSet, path::Path};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::{read_text, read_trimmed},
};

const COLUMNS: &[Column] = &[
    col("hostname", Text),
    col("uuid", Text),
    col("cpu_type", Text),
    col("cpu_subtype", Text),
    col("cpu_brand", Text),
    col("cpu_physical_cores", Integer),
    col("cpu_logical_cores", Integer),
    col("cpu_sockets", Integer),
    col("cpu_microcode", Text),
    col("physical_memory", BigInt),
    col("hardware_vendor", Text),
    col("hardware_model", Text),
    col("hardware_version", Text),
    col("hardware_serial", Text),
    col("board_vendor", Text),
    col("board_model", Text),
    col("board_version", Text),
    col("board_serial", Text),
    col("computer_name", Text),
    col("local_hostname", Text),
    // Newer osquery; only meaningful under Rosetta on macOS, empty on Linux.
    col("emulated_cpu_type", Text),
];

#[derive(Debug)]
pub struct SystemInfo;

/// What the table takes from `/proc/cpuinfo`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    pub brand: String,
    pub model: String,
    pub microcode: String,
    pub logical: i64,
    pub physical: i64,
    pub sockets: i64,
}

pub fn parse_cpuinfo(s: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut cores = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    let mut physical_id = None;
    for line in s.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => {
                info.logical += 1;
                physical_id = None;
            }
            "model name" if info.brand.is_empty() => info.brand = v.to_owned(),
            "model" if info.model.is_empty() => info.model = v.to_owned(),
            "microcode" if info.microcode.is_empty() => info.microcode = v.to_owned(),
            "physical id" => {
                physical_id = Some(v.to_owned());
                sockets.insert(v.to_owned());
            }
            "core id" => {
                cores.insert((physical_id.clone(), v.to_owned()));
            }
            _ => {}
        }
    }
    // Without topology lines (many ARM kernels), every logical CPU counts as a core.
    info.physical = if cores.is_empty() {
        info.logical
    } else {
        cores.len() as i64
    };
    info.sockets = if sockets.is_empty() {
        i64::from(info.logical > 0)
    } else {
        sockets.len() as i64
    };
    info
}

/// `MemTotal` in bytes.
pub fn parse_mem_total(s: &str) -> Option<i64> {
    let v = s.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    v.split_whitespace()
        .next()?
        .parse::<i64>()
        .ok()?
        .checked_mul(1024)
}

/// The machine's id: the DMI product UUID when the firmware provides one (readable by root),
/// otherwise systemd's machine id.
pub fn host_uuid() -> String {
    read_trimmed(Path::new("/sys/class/dmi/id/product_uuid"))
        .or_else(|| read_trimmed(Path::new("/etc/machine-id")))
        .unwrap_or_default()
}

impl Table for SystemInfo {
    fn name(&self) -> &'static str {
        "system_info"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let uname = rustix::system::uname();
        let hostname = uname.nodename().to_string_lossy().into_owned();
        let cpu = read_text(Path::new("/proc/cpuinfo"))
            .map(|s| parse_cpuinfo(&s))
            .unwrap_or_default();
        let dmi = |f: &str| {
            text(read_trimmed(&Path::new("/sys/class/dmi/id").join(f)).unwrap_or_default())
        };
        let memory = read_text(Path::new("/proc/meminfo"))
            .and_then(|s| parse_mem_total(&s))
            .map_or(Value::Null, int);
        let row = vec![
            text(hostname.clone()),
            text(host_uuid()),
            text(uname.machine().to_string_lossy()),
            text(cpu.model),
            text(cpu.brand),
            int(cpu.physical),
            int(cpu.logical),
            int(cpu.sockets),
            text(cpu.microcode),
            memory,
            dmi("sys_vendor"),
            dmi("product_name"),
            dmi("product_version"),
            dmi("product_serial"),
            dmi("board_vendor"),
            dmi("board_name"),
            dmi("board_version"),
            dmi("board_serial"),
            text(hostname.clone()),
            text(hostname),
            text(""),
        ];
        Ok(Box::new(std::iter::once(Ok(row))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        flags::Flags,
        sql::{Engine, TableEnv},
    };

    #[test]
    fn cpuinfo_two_sockets_with_hyperthreads() {
        let mut s = String::new();
        for (cpu, socket, core) in [(0, 0, 0), (1, 0, 0), (2, 1, 0), (3, 1, 1)] {
            s.push_str(&format!(
                "processor\t: {cpu}\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nmicrocode\t: 0x10\n\
                 physical id\t: {socket}\ncore id\t\t: {core}\n\n"
            ));
        }
        assert_eq!(
            parse_cpuinfo(&s),
            CpuInfo {
                brand: "AMD EPYC".into(),
                model: "17".into(),
                microcode: "0x10".into(),
                logical: 4,
                physical: 3,
                sockets: 2,
            }
        );
        // ARM style: no topology lines.
        let arm = "processor\t: 0\nBogoMIPS\t: 50\n\nprocessor\t: 1\n";
        let got = parse_cpuinfo(arm);
        assert_eq!((got.logical, got.physical, got.sockets), (2, 2, 1));
        assert_eq!(parse_cpuinfo("").sockets, 0);
    }

    #[test]
    fn meminfo() {
        assert_eq!(
            parse_mem_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n"),
            Some(24_684_084 * 1024)
        );
        assert_eq!(parse_mem_total("MemTotal: lots"), None);
        assert_eq!(parse_mem_total(""), None);
    }

    #[test]
    fn matches_host() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query("SELECT hostname, cpu_logical_cores, physical_memory, cpu_type FROM system_info")
            .expect("query");
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
        let logical = std::fs::read_to_string("/proc/cpuinfo")
            .expect("cpuinfo")
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let mem = parse_mem_total(&std::fs::read_to_string("/proc/meminfo").expect("meminfo"))
            .expect("MemTotal");
        assert_eq!(
            rs.rows,
            vec![vec![
                text(hostname.trim()),
                int(logical as i64),
                int(mem),
                text(std::env::consts::ARCH),
            ]]
        );
    }
}
