//! Extended attributes of a file (the `xattr` crate: `llistxattr`/`lgetxattr`, so a symlink's
//! own attributes, never its target's), and file capabilities (`security.capability`, the
//! kernel's `vfs_cap_data`) as the text `getcap` prints, with the `caps` crate's names.

use std::{io, path::Path};

/// Every attribute of `path` (a symlink's own) with its value; one that vanished between
/// the list and the read is left out.
pub fn attributes(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in xattr::list(path)? {
        if let Some(value) = xattr::get(path, &name)? {
            out.push((name.to_string_lossy().into_owned(), value));
        }
    }
    Ok(out)
}

/// The name `getcap` gives capability number `bit`.
fn cap_name(bit: u32) -> String {
    caps::all()
        .into_iter()
        .find(|c| u32::from(c.index()) == bit)
        .map_or_else(|| bit.to_string(), |c| c.to_string().to_ascii_lowercase())
}

/// `security.capability` as `getcap` prints it (`cap_net_raw=ep`; several sets as
/// `cap_chown=i cap_net_raw+p`, grouped by their flags, groups in the order of their first
/// capability). None: not a `vfs_cap_data` of a known revision.
pub fn capability_text(value: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<u32> {
        let b = value.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let magic = word(0)?;
    let words = match magic & 0xff00_0000 {
        0x0100_0000 if value.len() == 12 => 1,
        0x0200_0000 if value.len() == 20 => 2,
        0x0300_0000 if value.len() == 24 => 2,
        _ => return None,
    };
    let effective = magic & 1 == 1;
    // (permitted, inheritable) of each capability number.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for bit in 0..32 * words {
        let (w, b) = (bit / 32, bit % 32);
        let permitted = word(1 + 2 * w as usize)? >> b & 1 == 1;
        let inheritable = word(2 + 2 * w as usize)? >> b & 1 == 1;
        if !permitted && !inheritable {
            continue;
        }
        let flags = format!(
            "{}{}{}",
            if effective { "e" } else { "" },
            if inheritable { "i" } else { "" },
            if permitted { "p" } else { "" }
        );
        match groups.iter_mut().find(|(f, _)| *f == flags) {
            Some((_, names)) => names.push(cap_name(bit)),
            None => groups.push((flags, vec![cap_name(bit)])),
        }
    }
    if groups.is_empty() {
        return Some("=".to_owned());
    }
    Some(
        groups
            .iter()
            .enumerate()
            .map(|(i, (flags, names))| {
                format!(
                    "{}{}{flags}",
                    names.join(","),
                    if i == 0 { "=" } else { "+" }
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::capability_text;

    #[test]
    fn file_capabilities_read_as_getcap_prints_them() {
        // What `setcap "cap_chown,cap_net_raw+p cap_chown+i"` stores (revision 2).
        let v = [
            0, 0, 0, 2, 0x01, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(capability_text(&v).unwrap(), "cap_chown=ip cap_net_raw+p");
        // Effective, revision 3 (a root id after the sets).
        let mut v3 = vec![
            1, 0, 0, 3, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        v3.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(capability_text(&v3).unwrap(), "cap_net_raw=ep");
        // Not a vfs_cap_data: a wrong size or revision, never a panic.
        assert_eq!(capability_text(&v[..19]), None);
        assert_eq!(capability_text(&[0, 0, 0, 9]), None);
        for cut in 0..v.len() {
            let _ = capability_text(&v[..cut]);
        }
    }
}
