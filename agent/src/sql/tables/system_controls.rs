//! `system_controls`: the kernel's sysctl settings (`/proc/sys`, walked without following
//! symlinks; write-only entries left out), osquery's columns: `name` with dots
//! (`kernel.ostype`), `subsystem` its first part, `current_value` as the file reads (the last
//! newline dropped; several values separated by tabs, as `sysctl` shows them),
//! `config_value` what the sysctl.d configuration sets (`/etc/sysctl.conf`, then files of
//! `/etc/sysctl.d`, `/run/sysctl.d`, `/usr/lib/sysctl.d` by name, a file of an earlier folder
//! hiding a later one of the same name, the last setting winning, as systemd-sysctl applies
//! them). `oid` and `type` are empty on Linux. `WHERE name = '…'` reads only that setting.

use std::path::{Path, PathBuf};

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("name", Text),
    col("oid", Text),
    col("subsystem", Text),
    col("current_value", Text),
    col("config_value", Text),
    col("type", Text),
];
const NAME: usize = 0;
const ROOT: &str = "/proc/sys";

#[derive(Debug)]
pub struct SystemControls;

/// `name = value` settings of sysctl.d text, in order (`-` prefixes of names that may fail
/// are dropped; `/` in names is a `.`).
pub fn parse_conf(s: &str) -> Vec<(String, String)> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim().trim_start_matches('-').replace('/', ".");
            Some((k, v.trim().to_owned()))
        })
        .collect()
}

/// What the configuration sets, the last setting of a name winning.
fn configured() -> Vec<(String, String)> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for dir in ["/etc/sysctl.d", "/run/sysctl.d", "/usr/lib/sysctl.d"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") && !files.iter().any(|(n, _)| *n == name) {
                files.push((name, e.path()));
            }
        }
    }
    files.sort();
    let mut out: Vec<(String, String)> = Vec::new();
    let texts =
        std::iter::once(PathBuf::from("/etc/sysctl.conf")).chain(files.into_iter().map(|(_, p)| p));
    for p in texts {
        for (k, v) in parse_conf(&read_text(&p).unwrap_or_default()) {
            out.retain(|(n, _)| *n != k);
            out.push((k, v));
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        match p.symlink_metadata() {
            Ok(m) if m.is_dir() => walk(&p, out),
            Ok(m) if m.is_file() => out.push(p),
            _ => {}
        }
    }
}

impl Table for SystemControls {
    fn name(&self) -> &'static str {
        "system_controls"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let wanted = ctx.equal_texts(NAME);
        let mut files = Vec::new();
        if wanted.is_empty() {
            walk(Path::new(ROOT), &mut files);
        } else {
            // A name never climbs out of /proc/sys.
            files.extend(
                wanted
                    .iter()
                    .filter(|n| {
                        !n.contains('/') && !n.split('.').any(|p| p.is_empty() || p == "..")
                    })
                    .map(|n| Path::new(ROOT).join(n.replace('.', "/"))),
            );
        }
        let config = configured();
        let mut rows = Vec::new();
        for f in files {
            let Ok(rel) = f.strip_prefix(ROOT) else {
                continue;
            };
            // Write-only or gone: not a setting to show.
            let Some(value) = read_text(&f) else { continue };
            let name = rel.to_string_lossy().replace('/', ".");
            let subsystem = name.split('.').next().unwrap_or("").to_owned();
            let config_value = config
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            rows.push(Ok(vec![
                text(name),
                text(""),
                text(subsystem),
                text(value.strip_suffix('\n').unwrap_or(&value)),
                text(config_value),
                text(""),
            ]));
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn settings_are_what_sysctl_shows() {
        assert_eq!(
            super::parse_conf("# c\n; c\nkernel.pid_max = 4194304\n-net/ipv4/ip_forward=1\nbad\n"),
            [
                ("kernel.pid_max".to_owned(), "4194304".to_owned()),
                ("net.ipv4.ip_forward".to_owned(), "1".to_owned()),
            ]
        );
        // Settings that do not change while the test runs: exactly as sysctl prints them.
        for name in [
            "kernel.ostype",
            "kernel.osrelease",
            "kernel.pid_max",
            "vm.overcommit_memory",
            "fs.protected_symlinks",
        ] {
            let want = tool("sysctl", &["-n", name])
                .trim_end_matches('\n')
                .to_owned();
            let got = rows_of(&format!(
                "SELECT current_value, subsystem FROM system_controls WHERE name = '{name}'"
            ));
            assert_eq!(
                got,
                [vec![want, name.split('.').next().unwrap().to_owned()]],
                "{name}"
            );
        }
        // The whole walk names what sysctl -a names, but for sysctl's own choices: it hides
        // the deprecated `neigh.*.base_reachable_time` and `retrans_time` (their `_ms` twins
        // stay), and names entries that cannot be read (`stable_secret` before one is set),
        // which have no value to show here.
        let want: std::collections::BTreeSet<String> = tool("sysctl", &["-a", "-N"])
            .lines()
            .filter(|n| std::fs::read(format!("/proc/sys/{}", n.replace('.', "/"))).is_ok())
            .map(str::to_owned)
            .collect();
        let got: std::collections::BTreeSet<String> = rows_of("SELECT name FROM system_controls")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert!(want.len() > 100, "{}", want.len());
        assert_eq!(
            want.difference(&got).collect::<Vec<_>>(),
            Vec::<&String>::new()
        );
        let extra: Vec<&String> = got
            .difference(&want)
            .filter(|n| !n.ends_with(".base_reachable_time") && !n.ends_with(".retrans_time"))
            .collect();
        assert_eq!(extra, Vec::<&String>::new());
        // A name cannot climb out of /proc/sys.
        assert!(rows_of("SELECT * FROM system_controls WHERE name = '..'").is_empty());
    }
}
