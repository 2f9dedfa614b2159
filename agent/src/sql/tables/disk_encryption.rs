//! `disk_encryption`: every block device (`/sys/class/block`), and whether it is a dm-crypt
//! mapping (device-mapper UUID `CRYPT-<type>-…`). `type` is the mapping's kind (`LUKS2`,
//! `PLAIN`, …); the cipher needs libcryptsetup, which this build does not link.

use std::path::Path;

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::read_trimmed,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("uuid", Text),
    col("encrypted", Integer),
    col("type", Text),
    col("encryption_status", Text),
    hidden("filevault_status", Text),
    hidden("user_uuid", Text),
];

#[derive(Debug)]
pub struct DiskEncryption;

/// (encrypted, type) from a device-mapper UUID.
pub fn crypt_of(dm_uuid: &str) -> (bool, String) {
    match dm_uuid.strip_prefix("CRYPT-") {
        Some(rest) => (true, rest.split('-').next().unwrap_or("").to_owned()),
        None => (false, String::new()),
    }
}

impl Table for DiskEncryption {
    fn name(&self) -> &'static str {
        "disk_encryption"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let root = Path::new("/sys/class/block");
        let mut names: Vec<String> = std::fs::read_dir(root)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let rows: Vec<_> = names
            .into_iter()
            .map(|n| {
                let dm_uuid = read_trimmed(&root.join(&n).join("dm/uuid")).unwrap_or_default();
                let (encrypted, kind) = crypt_of(&dm_uuid);
                Ok(vec![
                    text(format!("/dev/{n}")),
                    text(dm_uuid),
                    int(i64::from(encrypted)),
                    text(kind),
                    text(if encrypted {
                        "encrypted"
                    } else {
                        "not encrypted"
                    }),
                    Value::Null,
                    Value::Null,
                ])
            })
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_crypt_uuids_say_encrypted() {
        assert_eq!(
            crypt_of("CRYPT-LUKS2-6c1b0d8e1f0a4f7e9d2c3b4a5f6e7d8c-luks-6c1b"),
            (true, "LUKS2".to_owned())
        );
        assert_eq!(crypt_of("LVM-abc"), (false, String::new()));
        assert_eq!(crypt_of(""), (false, String::new()));
    }
}
