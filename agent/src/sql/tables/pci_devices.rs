//! `pci_devices`: the PCI functions of `/sys/bus/pci/devices` (each one's `uevent`:
//! `PCI_SLOT_NAME`, `PCI_ID`, `PCI_SUBSYS_ID`, `PCI_CLASS`, `DRIVER`), osquery's Linux
//! columns, named from the pci.ids database (`/usr/share/misc/pci.ids`,
//! `/usr/share/hwdata/pci.ids` or `/usr/share/pci.ids`): vendor, model, subsystem vendor and
//! model, class and subclass. Ids are `0x`-prefixed lower-case hex (`0x8086`, class `0x06`).
//! Without a pci.ids file the names are empty (osquery then returns no rows). A name that is
//! not in the database is empty.
//!
//! The pci.ids reader here also reads usb.ids for `usb_devices`.

use std::{collections::HashMap, path::Path};

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("pci_slot", Text),
    col("pci_class", Text),
    col("driver", Text),
    col("vendor", Text),
    col("vendor_id", Text),
    col("model", Text),
    col("model_id", Text),
    col("pci_class_id", Text),
    col("pci_subclass_id", Text),
    col("pci_subclass", Text),
    col("subsystem_vendor_id", Text),
    col("subsystem_vendor", Text),
    col("subsystem_model_id", Text),
    col("subsystem_model", Text),
];

const PCI_IDS: &[&str] = &[
    "/usr/share/misc/pci.ids",
    "/usr/share/hwdata/pci.ids",
    "/usr/share/pci.ids",
];

/// The names of a pci.ids / usb.ids file; ids are lower-case hex as written there.
#[derive(Debug, Default)]
pub struct IdsDb {
    vendors: HashMap<String, String>,
    /// (vendor, device) -> name
    devices: HashMap<(String, String), String>,
    /// (vendor, device, subvendor, subdevice) -> name
    subsystems: HashMap<(String, String, String, String), String>,
    classes: HashMap<String, String>,
    /// (class, subclass) -> name
    subclasses: HashMap<(String, String), String>,
}

impl IdsDb {
    /// Reads the database's vendor/device/subsystem lines (two, four and four+four hex digits,
    /// indented by 0, 1 and 2 tabs) and its `C` class section; other sections are skipped.
    pub fn parse(s: &str) -> Self {
        #[derive(PartialEq)]
        enum Section {
            Vendors,
            Classes,
            Other,
        }
        let mut db = IdsDb::default();
        let mut section = Section::Vendors;
        let (mut vendor, mut device, mut class) = (None::<String>, None::<String>, None::<String>);
        // "<id>  <name>" with `n` hex digits.
        let id_name = |l: &str, n: usize| -> Option<(String, String)> {
            let id = l.get(..n)?;
            if !id.bytes().all(|b| b.is_ascii_hexdigit()) || !l[n..].starts_with(' ') {
                return None;
            }
            Some((id.to_ascii_lowercase(), l[n..].trim().to_owned()))
        };
        for line in s.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let line = line.trim_end();
            if let Some(rest) = line.strip_prefix("\t\t") {
                if section == Section::Vendors
                    && let (Some(v), Some(d)) = (&vendor, &device)
                    && let Some((sv, rest)) = id_name(rest, 4)
                    && let Some((sd, name)) = id_name(&rest, 4)
                {
                    db.subsystems.insert((v.clone(), d.clone(), sv, sd), name);
                }
            } else if let Some(rest) = line.strip_prefix('\t') {
                match section {
                    Section::Vendors => {
                        if let (Some(v), Some((d, name))) = (&vendor, id_name(rest, 4)) {
                            db.devices.insert((v.clone(), d.clone()), name);
                            device = Some(d);
                        }
                    }
                    Section::Classes => {
                        if let (Some(c), Some((sc, name))) = (&class, id_name(rest, 2)) {
                            db.subclasses.insert((c.clone(), sc), name);
                        }
                    }
                    Section::Other => {}
                }
            } else if let Some(rest) = line.strip_prefix("C ") {
                section = Section::Classes;
                class = id_name(rest, 2).map(|(c, name)| {
                    db.classes.insert(c.clone(), name);
                    c
                });
            } else if let Some((v, name)) = id_name(line, 4) {
                section = Section::Vendors;
                db.vendors.insert(v.clone(), name);
                vendor = Some(v);
                device = None;
            } else {
                // Another section (usb.ids: `AT`, `HID`, `L`, …) until the next known line.
                section = Section::Other;
                vendor = None;
            }
        }
        db
    }

    /// The first of `paths` that can be read.
    pub fn load(paths: &[&str]) -> Self {
        paths
            .iter()
            .find_map(|p| read_text(Path::new(p)))
            .map(|s| Self::parse(&s))
            .unwrap_or_default()
    }

    fn get<K: std::hash::Hash + Eq>(m: &HashMap<K, String>, k: &K) -> String {
        m.get(k).cloned().unwrap_or_default()
    }
    pub fn vendor(&self, v: &str) -> String {
        Self::get(&self.vendors, &v.to_owned())
    }
    pub fn device(&self, v: &str, d: &str) -> String {
        Self::get(&self.devices, &(v.to_owned(), d.to_owned()))
    }
    pub fn subsystem(&self, v: &str, d: &str, sv: &str, sd: &str) -> String {
        Self::get(
            &self.subsystems,
            &(v.to_owned(), d.to_owned(), sv.to_owned(), sd.to_owned()),
        )
    }
    pub fn class(&self, c: &str) -> String {
        Self::get(&self.classes, &c.to_owned())
    }
    pub fn subclass(&self, c: &str, sc: &str) -> String {
        Self::get(&self.subclasses, &(c.to_owned(), sc.to_owned()))
    }
}

/// "VVVV:DDDD" -> (vvvv, dddd), lower-case.
fn id_pair(s: &str) -> Option<(String, String)> {
    let (a, b) = s.trim().split_once(':')?;
    (!a.is_empty() && !b.is_empty() && !b.contains(':'))
        .then(|| (a.to_ascii_lowercase(), b.to_ascii_lowercase()))
}

/// The table's row (in column order) for one device's `uevent` text.
pub fn row_of(uevent: &str, db: &IdsDb) -> Vec<String> {
    let kv: HashMap<&str, &str> = uevent.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| kv.get(k).copied().unwrap_or("").to_owned();
    let mut class_attr = get("PCI_CLASS").to_ascii_lowercase();
    if !class_attr.bytes().all(|b| b.is_ascii_hexdigit()) {
        class_attr.clear();
    }
    let (class_id, subclass_id) = match class_attr.len() {
        5 => (
            format!("0{}", &class_attr[..1]),
            class_attr[1..3].to_owned(),
        ),
        6 => (class_attr[..2].to_owned(), class_attr[2..4].to_owned()),
        _ => (String::new(), String::new()),
    };
    let hex = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!("0x{s}")
        }
    };
    let (mut vendor_id, mut model_id) = ("0".to_owned(), "0".to_owned());
    let (mut vendor, mut model) = (String::new(), String::new());
    let (mut sub_vendor_id, mut sub_model_id) = (String::new(), String::new());
    let (mut sub_vendor, mut sub_model) = (String::new(), String::new());
    if let Some((v, d)) = id_pair(&get("PCI_ID")) {
        vendor = db.vendor(&v);
        model = db.device(&v, &d);
        if let Some((sv, sd)) = id_pair(&get("PCI_SUBSYS_ID")) {
            sub_vendor = db.vendor(&sv);
            sub_model = db.subsystem(&v, &d, &sv, &sd);
            (sub_vendor_id, sub_model_id) = (hex(&sv), hex(&sd));
        }
        (vendor_id, model_id) = (hex(&v), hex(&d));
    }
    vec![
        get("PCI_SLOT_NAME"),
        db.class(&class_id),
        get("DRIVER"),
        vendor,
        vendor_id,
        model,
        model_id,
        hex(&class_id),
        hex(&subclass_id),
        db.subclass(&class_id, &subclass_id),
        sub_vendor_id,
        sub_vendor,
        sub_model_id,
        sub_model,
    ]
}

#[derive(Debug)]
pub struct PciDevices;

impl Table for PciDevices {
    fn name(&self) -> &'static str {
        "pci_devices"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let root = Path::new("/sys/bus/pci/devices");
        let mut names: Vec<_> = std::fs::read_dir(root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        names.sort();
        let db = IdsDb::load(PCI_IDS);
        let rows: Vec<_> = names
            .into_iter()
            .filter_map(|n| read_text(&root.join(n).join("uevent")))
            .map(|u| Ok(row_of(&u, &db).into_iter().map(text).collect()))
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::util::{rows_of, tool};

    const IDS: &str = "# comment\n\
        1af4  Red Hat, Inc.\n\
        \t1042  Virtio 1.0 block device\n\
        \t\t1af4 1100  QEMU Virtual Machine\n\
        8086  Intel Corporation\n\
        \t1237  440FX - 82441FX PMC [Natoma] #1\n\
        ffff  Illegal Vendor ID\n\
        C 01  Mass storage controller\n\
        \t80  Mass storage controller\n\
        C 06  Bridge\n\
        \t00  Host bridge\n\
        \t\t00  Normal decode\n";

    #[test]
    fn uevents_and_ids_give_rows() {
        let db = IdsDb::parse(IDS);
        let u = "DRIVER=virtio-pci\nPCI_CLASS=18000\nPCI_ID=1AF4:1042\nPCI_SUBSYS_ID=1AF4:1100\n\
                 PCI_SLOT_NAME=0000:00:02.0\nMODALIAS=pci:v00001AF4d00001042\n";
        assert_eq!(
            row_of(u, &db),
            [
                "0000:00:02.0",
                "Mass storage controller",
                "virtio-pci",
                "Red Hat, Inc.",
                "0x1af4",
                "Virtio 1.0 block device",
                "0x1042",
                "0x01",
                "0x80",
                "Mass storage controller",
                "0x1af4",
                "Red Hat, Inc.",
                "0x1100",
                "QEMU Virtual Machine",
            ]
        );
        let u = "PCI_CLASS=060000\nPCI_ID=8086:1237\nPCI_SUBSYS_ID=1AF4:0000\nPCI_SLOT_NAME=0000:00:00.0\n";
        let r = row_of(u, &db);
        assert_eq!(r[1], "Bridge");
        assert_eq!(r[5], "440FX - 82441FX PMC [Natoma] #1");
        assert_eq!(
            (r[7].as_str(), r[8].as_str(), r[9].as_str()),
            ("0x06", "0x00", "Host bridge")
        );
        assert_eq!(r[13], "");
        // Odd values never panic; an unreadable id is "0".
        assert_eq!(row_of("PCI_CLASS=\u{fffd}00\n", &db)[7], "");
        let r = row_of("PCI_ID=zz\nPCI_CLASS=1\n", &db);
        assert_eq!(
            (r[4].as_str(), r[6].as_str(), r[7].as_str()),
            ("0", "0", "")
        );
    }

    /// Every function lspci lists, with its ids, driver and names.
    #[test]
    fn this_host_agrees_with_lspci() {
        let out = tool("lspci", &["-vmm", "-nn", "-D", "-k"]);
        // "Name [id]" -> (name, id)
        let split = |v: &str| {
            let (name, id) = v.rsplit_once(" [").unwrap();
            (name.to_owned(), id.trim_end_matches(']').to_owned())
        };
        let mut want = Vec::new();
        for block in out.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let f: HashMap<&str, &str> =
                block.lines().filter_map(|l| l.split_once(":\t")).collect();
            let (class, class_id) = split(f["Class"]);
            let (vendor, vendor_id) = split(f["Vendor"]);
            let (model, model_id) = split(f["Device"]);
            // lspci names an unknown device "Device", an unknown subclass by its number.
            let model = if model == "Device" {
                String::new()
            } else {
                model
            };
            want.push(vec![
                f["Slot"].to_owned(),
                f.get("Driver").copied().unwrap_or("").to_owned(),
                vendor,
                format!("0x{vendor_id}"),
                model,
                format!("0x{model_id}"),
                format!("0x{}", &class_id[..2]),
                format!("0x{}", &class_id[2..]),
                class,
                // lspci leaves out a zero subsystem.
                f.get("SVendor")
                    .map_or("0x0000".to_owned(), |v| format!("0x{}", split(v).1)),
            ]);
        }
        let got = rows_of(
            "SELECT pci_slot, driver, vendor, vendor_id, model, model_id, pci_class_id, \
             pci_subclass_id, CASE WHEN pci_subclass != '' THEN pci_subclass ELSE pci_class END, \
             subsystem_vendor_id FROM pci_devices ORDER BY pci_slot",
        );
        assert_eq!(got, want);
        assert!(!got.is_empty());
    }
}
