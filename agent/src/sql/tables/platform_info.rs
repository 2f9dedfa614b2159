//! `platform_info`: the firmware (BIOS/UEFI) as SMBIOS describes it, from its BIOS
//! information structure (type 0) in `/sys/firmware/dmi/tables/DMI` (root only), osquery's
//! Linux columns: `vendor`, `version`, `date` (the firmware's strings), `revision`
//! (`major.minor`), `address` (the runtime segment, `0xf000`), `size` (ROM size in bytes),
//! `volume_size` 0, `extra` empty, `firmware_type` `uefi` when `/sys/firmware/efi` exists,
//! else `bios`. No rows without SMBIOS (many VMs, this one included), as in osquery.

use std::path::Path;

use crate::sql::{
    tables::{
        cpu_info::{DMI_TABLE, smbios_structures},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("vendor", Text),
    col("version", Text),
    col("date", Text),
    col("revision", Text),
    col("extra", Text),
    col("firmware_type", Text),
    col("address", Text),
    col("size", Text),
    col("volume_size", Integer),
];

#[derive(Debug)]
pub struct PlatformInfo;

/// (vendor, version, date, revision, address, size) of each BIOS structure of an SMBIOS
/// table.
pub fn bios_entries(data: &[u8]) -> Vec<[String; 6]> {
    smbios_structures(data)
        .into_iter()
        .filter(|s| s.kind == 0 && s.formatted.len() >= 0x12)
        .map(|s| {
            let revision = match (s.byte(0x14), s.byte(0x15)) {
                (Some(a), Some(b)) => format!("{a}.{b}"),
                _ => String::new(),
            };
            let rom_kib = (u64::from(s.byte(0x09).unwrap_or(0)) + 1) << 6;
            [
                s.string(0x04),
                s.string(0x05),
                s.string(0x08),
                revision,
                format!("0x{:04x}", s.word(0x06).unwrap_or(0)),
                (rom_kib * 1024).to_string(),
            ]
        })
        .collect()
}

impl Table for PlatformInfo {
    fn name(&self) -> &'static str {
        "platform_info"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let data = std::fs::read(DMI_TABLE).unwrap_or_default();
        let kind = if Path::new("/sys/firmware/efi").is_dir() {
            "uefi"
        } else {
            "bios"
        };
        let rows: Vec<_> = bios_entries(&data)
            .into_iter()
            .map(|[vendor, version, date, revision, address, size]| {
                Ok(vec![
                    text(vendor),
                    text(version),
                    text(date),
                    text(revision),
                    text(""),
                    text(kind),
                    text(address),
                    text(size),
                    int(0),
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::util::rows_of;

    #[test]
    fn the_bios_structure_parses() {
        let mut t = vec![0u8; 0x18];
        t[1] = 0x18;
        t[0x04] = 1; // vendor
        t[0x05] = 2; // version
        t[0x06..0x08].copy_from_slice(&0xe800u16.to_le_bytes());
        t[0x08] = 3; // date
        t[0x09] = 0xff; // 16 MiB
        t[0x14] = 2;
        t[0x15] = 7;
        t.extend_from_slice(b"American Megatrends Inc.\0F.20 \0 03/12/2021\0\0");
        t.extend([127, 4, 0, 0, 0, 0]);
        assert_eq!(
            bios_entries(&t),
            [[
                "American Megatrends Inc.".to_owned(),
                "F.20".to_owned(),
                " 03/12/2021".to_owned(),
                "2.7".to_owned(),
                "0xe800".to_owned(),
                "16777216".to_owned(),
            ]]
        );
        assert_eq!(bios_entries(&t[..20]), Vec::<[String; 6]>::new());
    }

    /// The text and binary parsers of this batch of tables, fed truncated and byte-mutated
    /// input: none may panic.
    #[test]
    fn parsers_never_panic_on_mutated_input() {
        use crate::sql::tables::{
            block_devices,
            cpu_info::{cpuinfo_cpus, smbios_cpus, tests::processor_structure},
            md_personalities, memory_map, pci_devices, shared_memory,
        };
        let seeds: [&[u8]; 5] = [
            b"processor\t: 0\nphysical id\t: 1\ncpu cores\t: 2\ncpu MHz\t: 1.5\nflags\t: lm\n\n",
            b"  000de000-000defff : AMZNC10C:00\nPersonalities : [raid1] [x\n",
            b"key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime\n1 2 1640 4 5 6 7 8 9 10 11 12 13 14\n",
            b"1af4  Red Hat\n\t1042  Virtio\n\t\t1af4 1100  Q\nC 01  Mass\n\t80  M\nPCI_CLASS=18000\nPCI_ID=1AF4:1042\n",
            &processor_structure(),
        ];
        let specials = [
            0u8, 0xff, b'\n', b'\t', b' ', b':', b'[', b']', b'=', b'-', 4, 0x30,
        ];
        let run = |b: &[u8]| {
            let t = String::from_utf8_lossy(b);
            let _ = cpuinfo_cpus(&t, |_| Some(1));
            let _ = smbios_cpus(b, (1, 1));
            let _ = bios_entries(b);
            let _ = memory_map::parse(&t);
            let _ = md_personalities::parse(&t);
            let _ = shared_memory::parse(&t);
            let db = pci_devices::IdsDb::parse(&t);
            let _ = pci_devices::row_of(&t, &db);
            let _ = block_devices::probe(b);
        };
        let cases = crate::sql::tables::util::each_mutation(&seeds, &specials, run);
        assert!(cases > 1000, "{cases}");
    }

    /// No SMBIOS on this VM: no rows. With it, the vendor and version are the kernel's
    /// (`/sys/class/dmi/id/bios_vendor`, `bios_version`).
    #[test]
    fn this_host_agrees_with_dmi_id() {
        let got = rows_of("SELECT vendor, version FROM platform_info");
        if !Path::new(DMI_TABLE).exists() {
            assert!(got.is_empty());
            return;
        }
        let dmi = |f: &str| {
            std::fs::read_to_string(format!("/sys/class/dmi/id/{f}"))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        assert_eq!(got, [vec![dmi("bios_vendor"), dmi("bios_version")]]);
    }
}
