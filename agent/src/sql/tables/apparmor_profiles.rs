//! `apparmor_profiles`: the loaded AppArmor profiles, from securityfs
//! (`/sys/kernel/security/apparmor/policy/profiles/<entry>/{name,mode,attach,sha256|sha1}`,
//! child profiles under each entry's `profiles/`), osquery's columns. `path` is the profile's
//! full name as aa-status prints it (`parent//child`); `sha1` is read only when the kernel
//! publishes no `sha256` (as osquery does). No rows without AppArmor (or securityfs).

use std::path::Path;

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("path", Text),
    col("name", Text),
    col("attach", Text),
    col("mode", Text),
    col("sha1", Text),
    col("sha256", Text),
];

const PROFILES: &str = "/sys/kernel/security/apparmor/policy/profiles";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub path: String,
    pub name: String,
    pub attach: String,
    pub mode: String,
    pub sha1: String,
    pub sha256: String,
}

fn sub_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The profiles under a `policy/profiles` folder, sorted by path; an entry missing one of
/// its files is skipped (as osquery does).
pub fn profiles(root: &Path) -> Vec<Profile> {
    let mut out = Vec::new();
    let mut todo: Vec<(String, std::path::PathBuf)> = sub_dirs(root)
        .into_iter()
        .map(|d| (String::new(), d))
        .collect();
    while let Some((parent, dir)) = todo.pop() {
        let f = |n: &str| read_text(&dir.join(n)).map(|s| s.trim().to_owned());
        let (Some(name), Some(mode), Some(attach)) = (f("name"), f("mode"), f("attach")) else {
            continue;
        };
        let (sha256, sha1) = match f("sha256") {
            Some(h) => (h, String::new()),
            None => match f("sha1") {
                Some(h) => (String::new(), h),
                None => continue,
            },
        };
        // The kernel names a child profile in full (`parent//child`).
        let path = if parent.is_empty() || name.starts_with(&format!("{parent}//")) {
            name.clone()
        } else {
            format!("{parent}//{name}")
        };
        todo.extend(
            sub_dirs(&dir.join("profiles"))
                .into_iter()
                .map(|d| (path.clone(), d)),
        );
        out.push(Profile {
            path,
            name,
            attach,
            mode,
            sha1,
            sha256,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[derive(Debug)]
pub struct ApparmorProfiles;

impl Table for ApparmorProfiles {
    fn name(&self) -> &'static str {
        "apparmor_profiles"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let rows: Vec<_> = profiles(Path::new(PROFILES))
            .into_iter()
            .map(|p| {
                Ok(vec![
                    text(p.path),
                    text(p.name),
                    text(p.attach),
                    text(p.mode),
                    text(p.sha1),
                    text(p.sha256),
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
    fn a_securityfs_tree_gives_profiles() {
        let t = tempfile::tempdir().unwrap();
        let w = |dir: &str, files: &[(&str, &str)]| {
            let d = t.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            for (n, v) in files {
                std::fs::write(d.join(n), format!("{v}\n")).unwrap();
            }
        };
        w(
            "usr.sbin.cupsd.4",
            &[
                ("name", "/usr/sbin/cupsd"),
                ("mode", "enforce"),
                ("attach", "/usr/sbin/cupsd"),
                ("sha256", "ab12"),
            ],
        );
        w(
            "usr.sbin.cupsd.4/profiles/third_party.5",
            &[
                ("name", "/usr/sbin/cupsd//third_party"),
                ("mode", "complain"),
                ("attach", "<unconfined>"),
                ("sha1", "cd34"),
            ],
        );
        w(
            "lsb_release.1",
            &[
                ("name", "lsb_release"),
                ("mode", "enforce"),
                ("attach", "/usr/bin/lsb_release"),
                ("sha1", "ef56"),
            ],
        );
        // Missing its hashes: skipped.
        w(
            "broken.2",
            &[("name", "broken"), ("mode", "enforce"), ("attach", "x")],
        );
        let p =
            |path: &str, name: &str, attach: &str, mode: &str, sha1: &str, sha256: &str| Profile {
                path: path.into(),
                name: name.into(),
                attach: attach.into(),
                mode: mode.into(),
                sha1: sha1.into(),
                sha256: sha256.into(),
            };
        assert_eq!(
            profiles(t.path()),
            [
                p(
                    "/usr/sbin/cupsd",
                    "/usr/sbin/cupsd",
                    "/usr/sbin/cupsd",
                    "enforce",
                    "",
                    "ab12"
                ),
                p(
                    "/usr/sbin/cupsd//third_party",
                    "/usr/sbin/cupsd//third_party",
                    "<unconfined>",
                    "complain",
                    "cd34",
                    ""
                ),
                p(
                    "lsb_release",
                    "lsb_release",
                    "/usr/bin/lsb_release",
                    "enforce",
                    "ef56",
                    ""
                ),
            ]
        );
        assert_eq!(profiles(&t.path().join("none")), []);
    }

    /// The kernel's own list (`apparmor/profiles`: `name (mode)` lines) names the same
    /// profiles; none on this host, which has no AppArmor.
    #[test]
    fn this_host_agrees_with_the_kernels_list() {
        let mut want: Vec<Vec<String>> =
            std::fs::read_to_string("/sys/kernel/security/apparmor/profiles")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let (name, mode) = l.rsplit_once(" (")?;
                    Some(vec![name.to_owned(), mode.trim_end_matches(')').to_owned()])
                })
                .collect();
        want.sort();
        assert_eq!(
            rows_of("SELECT path, mode FROM apparmor_profiles ORDER BY path"),
            want
        );
    }
}
