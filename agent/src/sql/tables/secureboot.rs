//! `secureboot`: whether UEFI Secure Boot is on, from the firmware's `SecureBoot` and
//! `SetupMode` variables (global GUID `8be4df61-93ca-11d2-aa0d-00e098032b8c`) in efivarfs
//! (`/sys/firmware/efi/efivars/<name>-<guid>`: 4 attribute bytes, then the value), or the
//! older sysfs `vars/<name>-<guid>/data`. One row on a UEFI machine (`1`, `0`; `-1` for a value
//! that is neither; empty when the variable cannot be read); no rows on BIOS machines (no
//! `/sys/firmware/efi`), as in osquery.

use std::path::Path;

use rusqlite::types::Value;

use crate::sql::{
    tables::util::int,
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[col("secure_boot", Integer), col("setup_mode", Integer)];

const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

#[derive(Debug)]
pub struct Secureboot;

/// The boolean variable `name` under an EFI firmware folder (`/sys/firmware/efi`).
pub fn bool_var(efi: &Path, name: &str) -> Option<i64> {
    let var = format!("{name}-{GLOBAL_GUID}");
    let value = match std::fs::read(efi.join("efivars").join(&var)) {
        Ok(b) if b.len() == 5 => b[4],
        Ok(_) => return None,
        Err(_) => match std::fs::read(efi.join("vars").join(&var).join("data")) {
            Ok(b) if b.len() == 1 => b[0],
            _ => return None,
        },
    };
    Some(match value {
        0 => 0,
        1 => 1,
        _ => -1,
    })
}

/// The table's row for a firmware folder; None when the machine has no UEFI.
pub fn row(efi: &Path) -> Option<[Option<i64>; 2]> {
    efi.is_dir()
        .then(|| [bool_var(efi, "SecureBoot"), bool_var(efi, "SetupMode")])
}

impl Table for Secureboot {
    fn name(&self) -> &'static str {
        "secureboot"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let rows: Vec<_> = row(Path::new("/sys/firmware/efi"))
            .into_iter()
            .map(|r| Ok(r.iter().map(|v| v.map_or(Value::Null, int)).collect()))
            .collect();
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::util::rows_of;

    #[test]
    fn efi_variables_read() {
        let t = tempfile::tempdir().unwrap();
        let efi = t.path().join("efi");
        assert_eq!(row(&efi), None);
        std::fs::create_dir_all(efi.join("efivars")).unwrap();
        assert_eq!(row(&efi), Some([None, None]));
        let put = |name: &str, b: &[u8]| {
            std::fs::write(efi.join("efivars").join(format!("{name}-{GLOBAL_GUID}")), b).unwrap()
        };
        put("SecureBoot", &[6, 0, 0, 0, 1]);
        put("SetupMode", &[6, 0, 0, 0, 0]);
        assert_eq!(row(&efi), Some([Some(1), Some(0)]));
        put("SetupMode", &[6, 0, 0, 0, 7]);
        put("SecureBoot", &[6, 0, 0]);
        assert_eq!(row(&efi), Some([None, Some(-1)]));
        // The sysfs interface of older kernels.
        std::fs::remove_dir_all(efi.join("efivars")).unwrap();
        let d = efi.join(format!("vars/SecureBoot-{GLOBAL_GUID}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("data"), [1]).unwrap();
        assert_eq!(row(&efi), Some([Some(1), None]));
    }

    /// This VM boots without UEFI: no row. On a UEFI host there is exactly one.
    #[test]
    fn this_host_has_a_row_only_with_uefi() {
        let uefi = Path::new("/sys/firmware/efi").is_dir();
        assert_eq!(
            rows_of("SELECT count(*) FROM secureboot"),
            [vec![if uefi { "1" } else { "0" }.to_owned()]]
        );
    }
}
