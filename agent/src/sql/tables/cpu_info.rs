//! `cpu_info`: one row per processor socket. As osquery on Linux: the SMBIOS processor
//! structures (type 4) of `/sys/firmware/dmi/tables/DMI` (root only): `socket_designation`,
//! `manufacturer`, `model` (the version string), `processor_type` (3 = central, `device_id`
//! `CPU0`, `CPU1`, …), `cpu_status`, clock speeds in MHz, cores, threads, 64-bit capability.
//! Where the firmware publishes no SMBIOS (most VMs without DMI, many ARM boards) osquery
//! returns nothing; here the rows come from `/proc/cpuinfo` instead (one per `physical id`:
//! `model name`, `vendor_id`, `cpu cores`, `siblings`, `cpu MHz`, the `lm` flag, and the
//! cpufreq maximum when there is one), with `processor_type` 3 and no `cpu_status` or
//! `socket_designation`.
//!
//! The SMBIOS walker here also serves `platform_info`.

use std::{collections::BTreeMap, path::Path};

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::{read_text, read_trimmed},
};

const COLUMNS: &[Column] = &[
    col("device_id", Text),
    col("model", Text),
    col("manufacturer", Text),
    col("processor_type", Text),
    col("cpu_status", Integer),
    col("number_of_cores", Text),
    col("logical_processors", Integer),
    col("address_width", Text),
    col("current_clock_speed", Integer),
    col("max_clock_speed", Integer),
    col("socket_designation", Text),
];

/// The raw SMBIOS structure table the kernel exports.
pub const DMI_TABLE: &str = "/sys/firmware/dmi/tables/DMI";

/// One SMBIOS structure: its type, its formatted area (header included, so offsets are the
/// specification's) and its strings (string number n is `strings[n - 1]`).
#[derive(Debug, PartialEq, Eq)]
pub struct Structure<'a> {
    pub kind: u8,
    pub formatted: &'a [u8],
    pub strings: Vec<String>,
}

impl Structure<'_> {
    pub fn byte(&self, at: usize) -> Option<u8> {
        self.formatted.get(at).copied()
    }
    pub fn word(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte(at)?, self.byte(at + 1)?]))
    }
    /// The string the byte at `at` numbers (right-trimmed); empty for 0 or out of range.
    pub fn string(&self, at: usize) -> String {
        match self.byte(at) {
            Some(n) if n > 0 => self
                .strings
                .get(usize::from(n) - 1)
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// The structures of an SMBIOS table, up to the end-of-table structure (type 127) or the
/// first malformed one.
pub fn smbios_structures(data: &[u8]) -> Vec<Structure<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() {
        let (kind, len) = (data[pos], usize::from(data[pos + 1]));
        if len < 4 || pos + len > data.len() {
            break;
        }
        let formatted = &data[pos..pos + len];
        // The string set ends with two NULs (a structure without strings has just those).
        let rest = &data[pos + len..];
        let Some(end) = rest.windows(2).position(|w| w == [0, 0]) else {
            break;
        };
        let strings = rest[..end]
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        out.push(Structure {
            kind,
            formatted,
            strings,
        });
        if kind == 127 {
            break;
        }
        pos += len + end + 2;
    }
    out
}

/// One row's values.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    pub device_id: Option<String>,
    pub model: String,
    pub manufacturer: String,
    pub processor_type: String,
    pub cpu_status: Option<i64>,
    pub cores: Option<i64>,
    pub logical: Option<i64>,
    pub address_width: String,
    pub current_mhz: Option<i64>,
    pub max_mhz: Option<i64>,
    pub socket: Option<String>,
}

/// osquery's `device_id` prefix for a processor type.
fn type_prefix(t: u8) -> Option<&'static str> {
    match t {
        3 => Some("CPU"),
        4 => Some("MATH"),
        5 => Some("DSP"),
        6 => Some("GPU"),
        _ => None,
    }
}

/// Names `CPU0`, `CPU1`, … (one counter over all types, as osquery counts).
fn number(mut cpus: Vec<(u8, Cpu)>) -> Vec<Cpu> {
    let mut n = 0;
    for (t, c) in &mut cpus {
        if let Some(p) = type_prefix(*t) {
            c.device_id = Some(format!("{p}{n}"));
            n += 1;
        }
    }
    cpus.into_iter().map(|(_, c)| c).collect()
}

/// The processors of an SMBIOS table; `fallback` (physical cores, logical) for structures
/// older than SMBIOS 2.5, which do not carry the counts.
pub fn smbios_cpus(data: &[u8], fallback: (i64, i64)) -> Vec<Cpu> {
    let cpus = smbios_structures(data)
        .into_iter()
        .filter(|s| s.kind == 4 && s.formatted.len() >= 0x1a)
        .map(|s| {
            let t = s.byte(0x05).unwrap_or(0);
            let (cores, logical, wide) = match (s.byte(0x23), s.byte(0x25), s.word(0x26)) {
                (Some(c), Some(l), Some(chars)) => {
                    (i64::from(c), i64::from(l), chars & (1 << 2) != 0)
                }
                _ => (fallback.0, fallback.1, cfg!(target_pointer_width = "64")),
            };
            let cpu = Cpu {
                device_id: None,
                model: s.string(0x10),
                manufacturer: s.string(0x07),
                processor_type: t.to_string(),
                cpu_status: s.byte(0x18).map(i64::from),
                cores: Some(cores),
                logical: Some(logical),
                address_width: if wide { "64" } else { "32" }.to_owned(),
                current_mhz: s.word(0x16).map(i64::from),
                max_mhz: s.word(0x14).map(i64::from),
                socket: Some(s.string(0x04)),
            };
            (t, cpu)
        })
        .collect();
    number(cpus)
}

/// One row per `physical id` of `/proc/cpuinfo` (one in all without topology lines);
/// `max_mhz(n)` is the maximum frequency of logical CPU n, when known.
pub fn cpuinfo_cpus(s: &str, max_mhz: impl Fn(u32) -> Option<i64>) -> Vec<Cpu> {
    // Per package: its first processor's fields.
    let mut packages: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    for block in s.split("\n\n") {
        let fields: BTreeMap<String, String> = block
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        if !fields.contains_key("processor") {
            continue;
        }
        let package = fields
            .get("physical id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        packages.entry(package).or_insert(fields);
    }
    let cpus = packages
        .into_values()
        .map(|f| {
            let num = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
            let lm = f
                .get("flags")
                .is_some_and(|fl| fl.split_whitespace().any(|x| x == "lm"));
            let processor = f.get("processor").and_then(|v| v.parse().ok());
            let cpu = Cpu {
                device_id: None,
                model: f.get("model name").cloned().unwrap_or_default(),
                manufacturer: f.get("vendor_id").cloned().unwrap_or_default(),
                processor_type: "3".to_owned(),
                cpu_status: None,
                cores: num("cpu cores"),
                logical: num("siblings"),
                address_width: if lm { "64" } else { "32" }.to_owned(),
                current_mhz: f
                    .get("cpu MHz")
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(|m| m.round() as i64),
                max_mhz: processor.and_then(&max_mhz),
                socket: None,
            };
            (3, cpu)
        })
        .collect();
    number(cpus)
}

#[derive(Debug)]
pub struct CpuInfo;

impl Table for CpuInfo {
    fn name(&self) -> &'static str {
        "cpu_info"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let cpuinfo = read_text(Path::new("/proc/cpuinfo")).unwrap_or_default();
        let max_mhz = |n: u32| {
            read_trimmed(Path::new(&format!(
                "/sys/devices/system/cpu/cpu{n}/cpufreq/cpuinfo_max_freq"
            )))?
            .parse::<i64>()
            .ok()
            .map(|khz| khz / 1000)
        };
        let mut cpus = std::fs::read(DMI_TABLE)
            .map(|d| {
                let info = super::system_info::parse_cpuinfo(&cpuinfo);
                smbios_cpus(&d, (info.physical, info.logical))
            })
            .unwrap_or_default();
        if cpus.is_empty() {
            cpus = cpuinfo_cpus(&cpuinfo, max_mhz);
        }
        let opt = |v: Option<i64>| v.map_or(Value::Null, int);
        let rows: Vec<_> = cpus
            .into_iter()
            .map(|c| {
                Ok(vec![
                    c.device_id.map_or(Value::Null, text),
                    text(c.model),
                    text(c.manufacturer),
                    text(c.processor_type),
                    opt(c.cpu_status),
                    c.cores.map_or(Value::Null, |n| text(n.to_string())),
                    opt(c.logical),
                    text(c.address_width),
                    opt(c.current_mhz),
                    opt(c.max_mhz),
                    c.socket.map_or(Value::Null, text),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sql::tables::util::{rows_of, tool};

    /// A type 4 structure of SMBIOS 2.5+ (0x30 bytes) and its strings.
    pub fn processor_structure() -> Vec<u8> {
        let mut f = vec![0u8; 0x30];
        f[0] = 4;
        f[1] = 0x30;
        f[2] = 0x04; // handle
        f[0x04] = 1; // socket designation: string 1
        f[0x05] = 3; // central processor
        f[0x07] = 2; // manufacturer: string 2
        f[0x10] = 3; // version: string 3
        f[0x14..0x16].copy_from_slice(&4000u16.to_le_bytes());
        f[0x16..0x18].copy_from_slice(&2400u16.to_le_bytes());
        f[0x18] = 0x41; // populated, enabled
        f[0x23] = 8; // cores
        f[0x25] = 16; // threads
        f[0x26..0x28].copy_from_slice(&0x00fcu16.to_le_bytes()); // 64-bit capable, …
        f.extend_from_slice(b"CPU 1\0Intel(R) Corporation\0Intel(R) Xeon(R) Gold 6130   \0\0");
        f
    }

    #[test]
    fn smbios_processors_parse() {
        // A BIOS structure without strings, the processor, a truncated one never read past the
        // end-of-table structure.
        let mut t = vec![0, 0x18];
        t.extend([0u8; 0x16]);
        t.extend([0, 0]);
        t.extend(processor_structure());
        t.extend([127, 4, 0xff, 0xfe, 0, 0]);
        t.extend([4, 0x30, 1]);
        let s = smbios_structures(&t);
        assert_eq!(s.iter().map(|s| s.kind).collect::<Vec<_>>(), [0, 4, 127]);
        assert_eq!(
            smbios_cpus(&t, (1, 1)),
            [Cpu {
                device_id: Some("CPU0".into()),
                model: "Intel(R) Xeon(R) Gold 6130".into(),
                manufacturer: "Intel(R) Corporation".into(),
                processor_type: "3".into(),
                cpu_status: Some(65),
                cores: Some(8),
                logical: Some(16),
                address_width: "64".into(),
                current_mhz: Some(2400),
                max_mhz: Some(4000),
                socket: Some("CPU 1".into()),
            }]
        );
        // Garbage never panics and yields what it can.
        for n in 0..t.len() {
            let _ = smbios_cpus(&t[..n], (1, 1));
        }
    }

    #[test]
    fn cpuinfo_packages() {
        let s = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon A\nphysical id\t: 0\n\
                 siblings\t: 4\ncpu cores\t: 2\ncpu MHz\t\t: 2199.998\nflags\t\t: fpu lm sse\n\n\
                 processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon A\nphysical id\t: 1\n\
                 siblings\t: 4\ncpu cores\t: 2\ncpu MHz\t\t: 1800.2\nflags\t\t: fpu\n\n\
                 processor\t: 2\nphysical id\t: 0\n\n";
        let got = cpuinfo_cpus(s, |n| (n == 1).then_some(3000));
        assert_eq!(
            got.iter()
                .map(|c| (
                    c.device_id.clone().unwrap(),
                    c.cores,
                    c.logical,
                    c.address_width.as_str(),
                    c.current_mhz,
                    c.max_mhz
                ))
                .collect::<Vec<_>>(),
            [
                ("CPU0".into(), Some(2), Some(4), "64", Some(2200), None),
                (
                    "CPU1".into(),
                    Some(2),
                    Some(4),
                    "32",
                    Some(1800),
                    Some(3000)
                ),
            ]
        );
        assert_eq!(got[1].model, "Xeon A");
        assert_eq!(got[1].manufacturer, "GenuineIntel");
    }

    /// Without SMBIOS (this VM), the rows agree with lscpu: one per socket, its model, cores
    /// per socket and threads.
    #[test]
    fn this_host_agrees_with_lscpu() {
        let got = rows_of(
            "SELECT device_id, model, number_of_cores, logical_processors, processor_type FROM cpu_info",
        );
        if Path::new(DMI_TABLE).exists() {
            // Firmware values: only their count is known to lscpu.
            assert!(!got.is_empty());
            return;
        }
        let lscpu = tool("lscpu", &[]);
        let field = |k: &str| {
            lscpu
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("lscpu has no {k}"))
        };
        let sockets: usize = field("Socket(s)").parse().unwrap();
        let cores: i64 = field("Core(s) per socket").parse().unwrap();
        let threads: i64 = field("Thread(s) per core").parse().unwrap();
        let want: Vec<Vec<String>> = (0..sockets)
            .map(|i| {
                vec![
                    format!("CPU{i}"),
                    field("Model name"),
                    cores.to_string(),
                    (cores * threads).to_string(),
                    "3".to_owned(),
                ]
            })
            .collect();
        assert_eq!(got, want);
    }
}
