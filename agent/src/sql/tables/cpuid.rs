//! `cpuid`: CPU features as the CPUID instruction reports them (x86_64; no rows elsewhere),
//! osquery's rows: `vendor` (leaf 0), `product_name` (leaves 0x80000002-4; NULs dropped),
//! `hypervisor_id` (leaf 0x40000000, eax, ebx, ecx in hex, when eax is not 0), `serial`
//! (eax of leaf 1, eax and edx of leaf 3, in hex), `family` (leaf 1 eax & 0xf00), one row
//! per feature bit of leaves 1, 7 and 0x80000001 that osquery names (`value` 1 or 0), and
//! `sgx0`/`sgx1` (leaf 0x12 sub-leaves 0 and 1 in hex). The registers and hex forms are
//! osquery's, including its quirks (`serial`'s last part is edx though labelled ecx).

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::cpuid::cpuid,
};

const COLUMNS: &[Column] = &[
    col("feature", Text),
    col("value", Text),
    col("output_register", Text),
    col("output_bit", Integer),
    col("input_eax", Text),
];

/// (feature, register, bit) per leaf, in osquery's order.
/// A feature bit: (name, register, bit).
type Feature = (&'static str, &'static str, u32);

const FEATURES: &[(u32, &[Feature])] = &[
    (
        1,
        &[
            ("pae", "edx", 6),
            ("msr", "edx", 5),
            ("sep", "edx", 11),
            ("mtrr", "edx", 12),
            ("pge", "edx", 13),
            ("mca", "edx", 14),
            ("pat", "edx", 16),
            ("clfsh", "edx", 19),
            ("acpi", "edx", 22),
            ("mmz", "edx", 23),
            ("sse", "edx", 25),
            ("sse2", "edx", 26),
            ("ss", "edx", 27),
            ("htt", "edx", 28),
            ("ia64", "edx", 30),
            ("sse3", "ecx", 0),
            ("vmx", "ecx", 5),
            ("smx", "ecx", 6),
            ("ssse3", "ecx", 9),
            ("sdbg", "ecx", 11),
            ("pdcm", "ecx", 15),
            ("pcid", "ecx", 17),
            ("dca", "ecx", 18),
            ("sse4.1", "ecx", 19),
            ("sse4.2", "ecx", 20),
            ("aes", "ecx", 25),
            ("avx", "ecx", 28),
            ("hypervisor", "ecx", 31),
        ],
    ),
    (
        7,
        &[
            ("sgx", "ebx", 2),
            ("hle", "ebx", 4),
            ("avx2", "ebx", 5),
            ("smep", "ebx", 7),
            ("bmi2", "ebx", 8),
            ("erms", "ebx", 9),
            ("invpcid", "ebx", 10),
            ("rtm", "ebx", 11),
            ("pqm", "ebx", 12),
            ("mpx", "ebx", 14),
            ("pqe", "ebx", 15),
            ("avx512f", "ebx", 16),
            ("avx512dq", "ebx", 17),
            ("rdseed", "ebx", 18),
            ("adx", "ebx", 19),
            ("smap", "ebx", 20),
            ("intel_pt", "ebx", 25),
            ("sha", "ebx", 29),
            ("umip", "ecx", 2),
            ("pku", "ecx", 3),
            ("ospke", "ecx", 4),
            ("gfni", "ecx", 8),
            ("vaes", "ecx", 9),
            ("sgx_lc", "ecx", 30),
            ("spec_ctrl", "edx", 26),
        ],
    ),
    (
        0x8000_0001,
        &[
            ("lahfsahf", "ecx", 0),
            ("svm", "ecx", 2),
            ("3dnowprefetch", "ecx", 8),
            ("ibs", "ecx", 10),
            ("skinit", "ecx", 12),
            ("lwp", "ecx", 15),
            ("nx", "edx", 20),
            ("page1gb", "edx", 26),
            ("lm", "edx", 29),
        ],
    ),
];

/// (feature, value, output_register, output_bit, input_eax) rows from a CPUID function
/// (leaf, sub-leaf) -> [eax, ebx, ecx, edx].
pub fn rows_from(
    cpuid: impl Fn(u32, u32) -> [u32; 4],
) -> Vec<(String, String, &'static str, u32, String)> {
    let mut out = Vec::new();
    let leaf0 = cpuid(0, 0);
    if leaf0[0] < 1 {
        return out;
    }
    let chars = |regs: &[u32]| -> String {
        let bytes: Vec<u8> = regs
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .filter(|b| *b != 0)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let hex = |regs: &[u32]| -> String { regs.iter().map(|r| format!("{r:08x}")).collect() };
    let mut push = |f: &str, v: String, reg: &'static str, bit: u32, eax: &str| {
        out.push((f.to_owned(), v, reg, bit, eax.to_owned()));
    };
    push(
        "vendor",
        chars(&[leaf0[1], leaf0[3], leaf0[2]]),
        "ebx,edx,ecx",
        0,
        "0",
    );
    let brand: Vec<u32> = (0..3).flat_map(|i| cpuid(0x8000_0002 + i, 0)).collect();
    push(
        "product_name",
        chars(&brand),
        "eax,ebx,ecx,edx",
        0,
        "0x80000002",
    );
    let hv = cpuid(0x4000_0000, 0);
    if hv[0] != 0 {
        push(
            "hypervisor_id",
            hex(&hv[..3]),
            "ebx,ecx,edx",
            0,
            "0x40000000",
        );
    }
    let (l1, l3) = (cpuid(1, 0), cpuid(3, 0));
    push(
        "serial",
        hex(&[l1[0], l3[0], l3[3]]),
        "eax,eax,ecx",
        0,
        "1,3",
    );
    push("family", format!("{:04x}", l1[0] & 0xf00), "eax", 0, "1");
    for (leaf, features) in FEATURES {
        let regs = cpuid(*leaf, 0);
        for (name, reg, bit) in *features {
            let r = match *reg {
                "ebx" => regs[1],
                "ecx" => regs[2],
                "edx" => regs[3],
                _ => regs[0],
            };
            let set = r & (1 << bit) != 0;
            push(
                name,
                if set { "1" } else { "0" }.into(),
                reg,
                *bit,
                &leaf.to_string(),
            );
        }
    }
    push("sgx0", hex(&cpuid(0x12, 0)), "eax,ebx,ecx,edx", 0, "18");
    push("sgx1", hex(&cpuid(0x12, 1)), "eax,ebx,ecx,edx", 0, "18,1");
    out
}

#[derive(Debug)]
pub struct Cpuid;

impl Table for Cpuid {
    fn name(&self) -> &'static str {
        "cpuid"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        if cpuid(0, 0).is_none() {
            return Ok(Box::new(std::iter::empty()));
        }
        let rows: Vec<_> = rows_from(|l, s| cpuid(l, s).unwrap_or_default())
            .into_iter()
            .map(|(f, v, reg, bit, eax)| Ok(vec![text(f), text(v), text(reg), int(bit), text(eax)]))
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "x86_64")]
    use crate::sql::tables::util::rows_of;

    /// A made-up processor: "GenuineIntel", family 6, SSE2 and AVX2, under a hypervisor.
    fn fake(leaf: u32, sub: u32) -> [u32; 4] {
        let le = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let brand = b"Intel(R) Fake CPU @ 1.00GHz\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        match (leaf, sub) {
            (0, _) => [0x16, le(b"Genu"), le(b"ntel"), le(b"ineI")],
            (1, _) => [0x000906ea, 0, (1 << 31) | (1 << 28), 1 << 26],
            (3, _) => [0, 0, 0, 0],
            (7, 0) => [0, 1 << 5, 0, 0],
            (0x4000_0000, _) => [0x4000_0001, le(b"KVMK"), le(b"VMKV"), le(b"M\0\0\0")],
            (l @ 0x8000_0002..=0x8000_0004, _) => {
                let i = (l - 0x8000_0002) as usize * 16;
                let b = &brand[i..i + 16];
                [le(&b[0..4]), le(&b[4..8]), le(&b[8..12]), le(&b[12..16])]
            }
            (0x8000_0001, _) => [0, 0, 0, 1 << 29],
            (0x12, 1) => [1, 2, 3, 4],
            _ => [0; 4],
        }
    }

    #[test]
    fn rows_from_a_fake_processor() {
        let rows = rows_from(fake);
        let get = |f: &str| {
            rows.iter()
                .find(|r| r.0 == f)
                .map(|r| (r.1.as_str(), r.2, r.3, r.4.as_str()))
                .unwrap_or_else(|| panic!("no {f}"))
        };
        assert_eq!(get("vendor"), ("GenuineIntel", "ebx,edx,ecx", 0, "0"));
        assert_eq!(
            get("product_name"),
            (
                "Intel(R) Fake CPU @ 1.00GHz",
                "eax,ebx,ecx,edx",
                0,
                "0x80000002"
            )
        );
        assert_eq!(
            get("hypervisor_id"),
            ("400000014b4d564b564b4d56", "ebx,ecx,edx", 0, "0x40000000")
        );
        assert_eq!(
            get("serial"),
            ("000906ea0000000000000000", "eax,eax,ecx", 0, "1,3")
        );
        assert_eq!(get("family"), ("0600", "eax", 0, "1"));
        assert_eq!(get("sse2"), ("1", "edx", 26, "1"));
        assert_eq!(get("sse"), ("0", "edx", 25, "1"));
        assert_eq!(get("avx"), ("1", "ecx", 28, "1"));
        assert_eq!(get("hypervisor"), ("1", "ecx", 31, "1"));
        assert_eq!(get("avx2"), ("1", "ebx", 5, "7"));
        assert_eq!(get("lm"), ("1", "edx", 29, "2147483649"));
        assert_eq!(get("nx"), ("0", "edx", 20, "2147483649"));
        assert_eq!(
            get("sgx0"),
            (
                "00000000000000000000000000000000",
                "eax,ebx,ecx,edx",
                0,
                "18"
            )
        );
        assert_eq!(
            get("sgx1"),
            (
                "00000001000000020000000300000004",
                "eax,ebx,ecx,edx",
                0,
                "18,1"
            )
        );
        // 5 string rows, 62 feature bits, 2 SGX rows.
        assert_eq!(rows.len(), 5 + 28 + 25 + 9 + 2);
        // No leaf 1: nothing.
        assert!(rows_from(|_, _| [0; 4]).is_empty());
    }

    /// On this machine: the vendor, the brand and the feature bits /proc/cpuinfo shows.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn this_cpu_agrees_with_proc_cpuinfo() {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let field = |k: &str| {
            info.lines()
                .find_map(|l| {
                    let (a, b) = l.split_once(':')?;
                    (a.trim() == k).then(|| b.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("no {k} in /proc/cpuinfo"))
        };
        let flags = field("flags");
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let value = |f: &str| rows_of(&format!("SELECT value FROM cpuid WHERE feature = '{f}'"));
        let one = |v: String| vec![vec![v]];
        assert_eq!(value("vendor"), one(field("vendor_id")));
        let brand = value("product_name");
        assert_eq!(brand[0][0].trim(), field("model name"));
        let family: u32 = field("cpu family").parse().unwrap();
        assert_eq!(value("family"), one(format!("{:04x}", family.min(15) << 8)));
        for (ours, kernel) in [
            ("sse", "sse"),
            ("sse2", "sse2"),
            ("ssse3", "ssse3"),
            ("sse4.1", "sse4_1"),
            ("sse4.2", "sse4_2"),
            ("aes", "aes"),
            ("avx", "avx"),
            ("avx2", "avx2"),
            ("pae", "pae"),
            ("lm", "lm"),
            ("hypervisor", "hypervisor"),
            ("bmi2", "bmi2"),
            ("adx", "adx"),
            ("sha", "sha_ni"),
            ("rdseed", "rdseed"),
        ] {
            let want = if has(kernel) { "1" } else { "0" };
            assert_eq!(value(ours), one(want.to_owned()), "{ours}");
        }
        // Every row of the fake processor's, but hypervisor_id when there is none.
        let n = rows_from(fake).len() - usize::from(value("hypervisor_id").is_empty());
        assert_eq!(rows_of("SELECT count(*) FROM cpuid"), one(n.to_string()));
    }
}
