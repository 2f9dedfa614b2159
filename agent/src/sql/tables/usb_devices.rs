//! `usb_devices`: the USB devices of `/sys/bus/usb/devices` (entries with an `idVendor`:
//! devices and root hubs, not their interfaces), osquery's columns: `usb_address` the bus
//! number (`busnum`), `usb_port` the device number (`devnum`), `vendor_id`/`model_id`
//! (`idVendor`/`idProduct`, 4 hex digits), `version` (`bcdDevice`), `serial`, `class`,
//! `subclass`, `protocol` (decimal, as udev's `TYPE`), `vendor` and `model` from the usb.ids
//! database (`/usr/share/misc/usb.ids`, `/usr/share/hwdata/usb.ids`,
//! `/var/lib/usbutils/usb.ids`), else the device's own `manufacturer` and `product` strings;
//! `removable` 1 (`removable`), 0 (`fixed`) or -1 (unknown). A host without USB has no rows.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::{
            pci_devices::IdsDb,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_trimmed,
};

const COLUMNS: &[Column] = &[
    col("usb_address", Integer),
    col("usb_port", Integer),
    col("vendor", Text),
    col("vendor_id", Text),
    col("version", Text),
    col("model", Text),
    col("model_id", Text),
    col("serial", Text),
    col("class", Text),
    col("subclass", Text),
    col("protocol", Text),
    col("removable", Integer),
];

const USB_IDS: &[&str] = &[
    "/usr/share/misc/usb.ids",
    "/usr/share/hwdata/usb.ids",
    "/var/lib/usbutils/usb.ids",
];

#[derive(Debug)]
pub struct UsbDevices;

/// The rows of a `bus/usb/devices` folder, by entry name.
pub fn rows_in(root: &Path, db: &IdsDb) -> Vec<Vec<Value>> {
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let a = |n: &str| read_trimmed(&d.join(n)).unwrap_or_default();
            let vendor_id = a("idVendor").to_ascii_lowercase();
            let (bus, dev) = (a("busnum").parse::<i64>(), a("devnum").parse::<i64>());
            let (Ok(bus), Ok(dev)) = (bus, dev) else {
                return None;
            };
            if vendor_id.is_empty() {
                return None;
            }
            let model_id = a("idProduct").to_ascii_lowercase();
            let or = |a: String, b: String| if a.is_empty() { b } else { a };
            let dec =
                |n: &str| u8::from_str_radix(&a(n), 16).map_or(String::new(), |v| v.to_string());
            let removable = match a("removable").as_str() {
                "removable" => 1,
                "fixed" => 0,
                _ => -1,
            };
            Some(vec![
                int(bus),
                int(dev),
                text(or(db.vendor(&vendor_id), a("manufacturer"))),
                text(vendor_id.clone()),
                text(a("bcdDevice")),
                text(or(db.device(&vendor_id, &model_id), a("product"))),
                text(model_id),
                text(a("serial")),
                text(dec("bDeviceClass")),
                text(dec("bDeviceSubClass")),
                text(dec("bDeviceProtocol")),
                int(removable),
            ])
        })
        .collect()
}

impl Table for UsbDevices {
    fn name(&self) -> &'static str {
        "usb_devices"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let root = Path::new("/sys/bus/usb/devices");
        if !root.exists() {
            return Ok(Box::new(std::iter::empty()));
        }
        let rows = rows_in(root, &IdsDb::load(USB_IDS));
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{tables::util::rows_of, text_of};

    #[test]
    fn a_sysfs_tree_gives_devices() {
        let t = tempfile::tempdir().unwrap();
        let w = |dir: &str, files: &[(&str, &str)]| {
            let d = t.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            for (n, v) in files {
                std::fs::write(d.join(n), format!("{v}\n")).unwrap();
            }
        };
        w(
            "1-1",
            &[
                ("idVendor", "046D"),
                ("idProduct", "c52b"),
                ("bcdDevice", "1211"),
                ("busnum", "1"),
                ("devnum", "3"),
                ("serial", "ABC123"),
                ("bDeviceClass", "00"),
                ("bDeviceSubClass", "00"),
                ("bDeviceProtocol", "00"),
                ("removable", "removable"),
                ("manufacturer", "Logitech"),
                ("product", "USB Receiver"),
            ],
        );
        w(
            "usb1",
            &[
                ("idVendor", "1d6b"),
                ("idProduct", "0002"),
                ("bcdDevice", "0606"),
                ("busnum", "1"),
                ("devnum", "1"),
                ("bDeviceClass", "09"),
                ("bDeviceSubClass", "00"),
                ("bDeviceProtocol", "01"),
                ("removable", "unknown"),
                ("product", "EHCI Host Controller"),
            ],
        );
        // An interface: no idVendor.
        w("1-1:1.0", &[("bInterfaceClass", "03")]);
        let db = IdsDb::parse("1d6b  Linux Foundation\n\t0002  2.0 root hub\n");
        let got: Vec<Vec<String>> = rows_in(t.path(), &db)
            .iter()
            .map(|r| r.iter().map(text_of).collect())
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                s(&[
                    "1",
                    "3",
                    "Logitech",
                    "046d",
                    "1211",
                    "USB Receiver",
                    "c52b",
                    "ABC123",
                    "0",
                    "0",
                    "0",
                    "1"
                ]),
                s(&[
                    "1",
                    "1",
                    "Linux Foundation",
                    "1d6b",
                    "0606",
                    "2.0 root hub",
                    "0002",
                    "",
                    "9",
                    "0",
                    "1",
                    "-1"
                ]),
            ]
        );
    }

    /// As many rows as sysfs has devices (none on this VM, which has no USB bus).
    #[test]
    fn this_host_rows_are_its_usb_devices() {
        let n = std::fs::read_dir("/sys/bus/usb/devices").map_or(0, |d| {
            d.flatten()
                .filter(|e| e.path().join("idVendor").exists())
                .count()
        });
        assert_eq!(
            rows_of("SELECT count(*) FROM usb_devices"),
            [vec![n.to_string()]]
        );
    }
}
