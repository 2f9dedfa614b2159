//! `suid_bin`: set-user-ID and set-group-ID files in the usual binary folders (`/bin`,
//! `/sbin`, `/usr/bin`, `/usr/sbin`, `/usr/local/bin`, `/usr/local/sbin`), walked without
//! following symlinks (on a merged-/usr system `/bin` is a link to `usr/bin`: its files are
//! listed once, under `/usr/bin`). `permissions` is `S`, `G` or `SG`; owner and group names
//! from `/etc/passwd` and `/etc/group` (the number when there is none).

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use crate::{
    sql::{
        tables::{groups::parse_group, users::parse_passwd, util::text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("path", Text),
    col("username", Text),
    col("groupname", Text),
    col("permissions", Text),
];
const FOLDERS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

#[derive(Debug)]
pub struct SuidBin;

/// Set-ID regular files below `dir` (not through symlinks), with their metadata.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            walk(&e.path(), out);
        } else if m.is_file() && m.mode() & 0o6000 != 0 {
            out.push((e.path(), m));
        }
    }
}

impl Table for SuidBin {
    fn name(&self) -> &'static str {
        "suid_bin"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let users = parse_passwd(&read_text(Path::new("/etc/passwd")).unwrap_or_default());
        let groups = parse_group(&read_text(Path::new("/etc/group")).unwrap_or_default());
        let mut found = Vec::new();
        for f in FOLDERS {
            // A folder that is itself a symlink is another folder's files again.
            if Path::new(f).symlink_metadata().is_ok_and(|m| m.is_dir()) {
                walk(Path::new(f), &mut found);
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Box::new(found.into_iter().map(move |(p, m)| {
            let user = users
                .iter()
                .find(|u| u.uid == m.uid())
                .map_or_else(|| m.uid().to_string(), |u| u.name.clone());
            let group = groups
                .iter()
                .find(|(_, g)| *g == m.gid())
                .map_or_else(|| m.gid().to_string(), |(n, _)| n.clone());
            let perms = format!(
                "{}{}",
                if m.mode() & 0o4000 != 0 { "S" } else { "" },
                if m.mode() & 0o2000 != 0 { "G" } else { "" }
            );
            Ok(vec![
                text(p.display().to_string()),
                text(user),
                text(group),
                text(perms),
            ])
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn the_set_id_files_are_what_find_finds() {
        let dirs: Vec<&str> = super::FOLDERS
            .iter()
            .copied()
            .filter(|d| {
                std::path::Path::new(d)
                    .symlink_metadata()
                    .is_ok_and(|m| m.is_dir())
            })
            .collect();
        let mut args = dirs.clone();
        args.extend(["-type", "f", "-perm", "/6000", "-printf", "%p %u %g %m\n"]);
        let mut want: Vec<Vec<String>> = tool("find", &args)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let mode = u32::from_str_radix(f[3], 8).unwrap();
                let perms = format!(
                    "{}{}",
                    if mode & 0o4000 != 0 { "S" } else { "" },
                    if mode & 0o2000 != 0 { "G" } else { "" }
                );
                vec![f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), perms]
            })
            .collect();
        want.sort();
        assert!(!want.is_empty(), "no set-ID file in {dirs:?}?");
        assert_eq!(
            rows_of("SELECT path, username, groupname, permissions FROM suid_bin ORDER BY path"),
            want
        );
    }
}
