//! `startup_items`: what starts at boot or login. systemd's units (`type` = `systemd unit`,
//! `status` = the unit's active state, `path` its unit file, `source` its source path,
//! `username` a service's `User=`, from `systemd_units::fetch`), the scripts of
//! `/etc/init.d` and `/etc/rc.local`, and the XDG autostart entries of `/etc/xdg/autostart`
//! and of every account's `~/.config/autostart` (desktop entries: `Exec` split into `path` and
//! `args`; `disabled` when `Hidden=true` or `X-GNOME-Autostart-enabled=false`) and
//! `~/.config/autostart-scripts` (`type` = `Startup Item`, `source` = the folder). Only
//! regular files are read (a symlink in a user's folder is not followed), at most 64 KiB each.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
};

use crate::{
    sql::{
        TableEnv,
        tables::{systemd_units, users::parse_passwd, util::text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::{dbus::Wanted, procfs::read_text},
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("path", Text),
    col("args", Text),
    col("type", Text),
    col("source", Text),
    col("status", Text),
    col("username", Text),
];

/// The most of a desktop entry read.
const ENTRY_MAX: u64 = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub path: String,
    pub args: String,
    pub ty: String,
    pub source: String,
    pub status: String,
    pub username: String,
}

/// The `KEY=value` lines of a desktop entry's `[Desktop Entry]` group (the first value of a
/// key wins, as in the XDG specification's readers).
pub fn desktop_entry(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut in_entry = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_entry = line == "[Desktop Entry]";
            continue;
        }
        if !in_entry || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.trim().to_owned())
                .or_insert_with(|| v.trim().to_owned());
        }
    }
    out
}

/// The regular files of `dir`, sorted (symlinks and folders skipped).
fn regular_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn read_capped(path: &Path) -> Option<String> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(ENTRY_MAX)
        .read_to_end(&mut buf)
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn entries(dir: &Path, username: &str, out: &mut Vec<Item>) {
    for f in regular_files(dir) {
        if f.extension().is_none_or(|e| e != "desktop") {
            continue;
        }
        let e = desktop_entry(&read_capped(&f).unwrap_or_default());
        let exec = e.get("Exec").map(String::as_str).unwrap_or("");
        let (path, args) = match exec.split_once(char::is_whitespace) {
            Some((p, a)) => (p, a.trim()),
            None => (exec, ""),
        };
        let off = |k: &str, v: &str| e.get(k).is_some_and(|x| x.eq_ignore_ascii_case(v));
        let disabled = off("Hidden", "true") || off("X-GNOME-Autostart-enabled", "false");
        out.push(Item {
            name: e.get("Name").cloned().unwrap_or_default(),
            path: path.to_owned(),
            args: args.to_owned(),
            ty: "Startup Item".into(),
            source: dir.display().to_string(),
            status: if disabled { "disabled" } else { "enabled" }.into(),
            username: username.to_owned(),
        });
    }
}

fn scripts(dir: &Path, username: &str, out: &mut Vec<Item>) {
    for f in regular_files(dir) {
        out.push(script(&f, dir, username));
    }
}

fn script(f: &Path, source: &Path, username: &str) -> Item {
    use std::os::unix::fs::PermissionsExt;
    let executable = std::fs::metadata(f).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    Item {
        name: f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: f.display().to_string(),
        args: String::new(),
        ty: "Startup Item".into(),
        source: source.display().to_string(),
        status: if executable { "enabled" } else { "disabled" }.into(),
        username: username.to_owned(),
    }
}

/// The file-based items under `root` (`/` on the host): system folders, then each account's.
pub fn file_items(root: &Path) -> Vec<Item> {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let mut out = Vec::new();
    scripts(&at("/etc/init.d"), "", &mut out);
    let rc = at("/etc/rc.local");
    if std::fs::symlink_metadata(&rc).is_ok_and(|m| m.is_file()) {
        out.push(script(&rc, &at("/etc"), ""));
    }
    entries(&at("/etc/xdg/autostart"), "", &mut out);
    let passwd = read_text(&at("/etc/passwd")).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for u in parse_passwd(&passwd) {
        if u.dir.is_empty() || !seen.insert(u.dir.clone()) {
            continue;
        }
        let home = at(&u.dir);
        entries(&home.join(".config/autostart"), &u.name, &mut out);
        scripts(&home.join(".config/autostart-scripts"), &u.name, &mut out);
    }
    out
}

#[derive(Debug)]
pub struct StartupItems {
    env: TableEnv,
}

impl StartupItems {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for StartupItems {
    fn name(&self) -> &'static str {
        "startup_items"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut items = file_items(Path::new("/"));
        let types = ctx.equal_texts(3);
        if types.is_empty() || types.iter().any(|t| t == "systemd unit") {
            let wanted = Wanted {
                unit_properties: ctx.uses(1) || ctx.uses(4),
                user: ctx.uses(6),
            };
            items.extend(
                systemd_units::fetch(&self.env, wanted, &|_| true)
                    .into_iter()
                    .map(|u| Item {
                        name: u.id,
                        path: u.fragment_path,
                        args: String::new(),
                        ty: "systemd unit".into(),
                        source: u.source_path,
                        status: u.active_state,
                        username: u.user,
                    }),
            );
        }
        Ok(Box::new(items.into_iter().map(|i| {
            Ok(vec![
                text(i.name),
                text(i.path),
                text(i.args),
                text(i.ty),
                text(i.source),
                text(i.status),
                text(i.username),
            ])
        })))
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt};

    use super::*;

    #[test]
    fn desktop_entries_read_only_their_group() {
        let e = desktop_entry(
            "# c\n[Desktop Entry]\nName=Tray\nExec=/usr/bin/tray --quiet\nName=second\n[Desktop Action x]\nExec=/other\n",
        );
        assert_eq!(e.get("Name").map(String::as_str), Some("Tray"));
        assert_eq!(
            e.get("Exec").map(String::as_str),
            Some("/usr/bin/tray --quiet")
        );
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn scripts_and_autostart_entries_of_a_tree() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let w = |p: &str, s: &str, mode: u32| {
            let p = r.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, s).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        };
        w(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\nnohome:x:1001:1001::/home/ann:/bin/sh\n",
            0o644,
        );
        w("etc/init.d/ssh", "#!/bin/sh\n", 0o755);
        w("etc/init.d/README", "text\n", 0o644);
        w("etc/rc.local", "#!/bin/sh\n", 0o755);
        w(
            "etc/xdg/autostart/tray.desktop",
            "[Desktop Entry]\nName=Tray\nExec=/usr/bin/tray --quiet -x\n",
            0o644,
        );
        w(
            "etc/xdg/autostart/notes.txt",
            "[Desktop Entry]\nName=No\n",
            0o644,
        );
        w(
            "home/ann/.config/autostart/off.desktop",
            "[Desktop Entry]\nName=Off\nExec=/opt/off\nX-GNOME-Autostart-enabled=false\n",
            0o644,
        );
        w(
            "home/ann/.config/autostart-scripts/go.sh",
            "#!/bin/sh\n",
            0o700,
        );
        std::os::unix::fs::symlink(
            "/etc/shadow",
            r.join("home/ann/.config/autostart/evil.desktop"),
        )
        .unwrap();
        let d = |p: &str| r.join(p).display().to_string();
        let item =
            |name: &str, path: String, args: &str, source: String, status: &str, user: &str| Item {
                name: name.into(),
                path,
                args: args.into(),
                ty: "Startup Item".into(),
                source,
                status: status.into(),
                username: user.into(),
            };
        assert_eq!(
            file_items(r),
            [
                item(
                    "README",
                    d("etc/init.d/README"),
                    "",
                    d("etc/init.d"),
                    "disabled",
                    ""
                ),
                item(
                    "ssh",
                    d("etc/init.d/ssh"),
                    "",
                    d("etc/init.d"),
                    "enabled",
                    ""
                ),
                item("rc.local", d("etc/rc.local"), "", d("etc"), "enabled", ""),
                item(
                    "Tray",
                    "/usr/bin/tray".into(),
                    "--quiet -x",
                    d("etc/xdg/autostart"),
                    "enabled",
                    ""
                ),
                item(
                    "Off",
                    "/opt/off".into(),
                    "",
                    d("home/ann/.config/autostart"),
                    "disabled",
                    "ann"
                ),
                item(
                    "go.sh",
                    d("home/ann/.config/autostart-scripts/go.sh"),
                    "",
                    d("home/ann/.config/autostart-scripts"),
                    "enabled",
                    "ann"
                ),
            ]
        );
    }
}
