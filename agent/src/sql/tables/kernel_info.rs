//! `kernel_info`: the running kernel's release (uname) and its command line (`/proc/cmdline`),
//! split as osquery splits it: `BOOT_IMAGE=` is the path, `root=` the device, the rest the
//! arguments.

use std::path::Path;

use crate::{
    sql::{
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("version", Text),
    col("arguments", Text),
    col("path", Text),
    col("device", Text),
];

#[derive(Debug)]
pub struct KernelInfo;

/// (arguments, path, device) from a kernel command line.
pub fn split_cmdline(cmdline: &str) -> (String, String, String) {
    let (mut args, mut path, mut device) = (Vec::new(), String::new(), String::new());
    for word in cmdline.split_whitespace() {
        if let Some(p) = word.strip_prefix("BOOT_IMAGE=") {
            path = p.to_owned();
        } else if let Some(d) = word.strip_prefix("root=") {
            device = d.to_owned();
        } else {
            args.push(word);
        }
    }
    (args.join(" "), path, device)
}

impl Table for KernelInfo {
    fn name(&self) -> &'static str {
        "kernel_info"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, _ctx: &QueryContext) -> Result<Rows, String> {
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        let cmdline = read_text(Path::new("/proc/cmdline")).unwrap_or_default();
        let (args, path, device) = split_cmdline(&cmdline);
        let row = vec![text(release), text(args), text(path), text(device)];
        Ok(Box::new(std::iter::once(Ok(row))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        flags::Flags,
        sql::{Engine, TableEnv},
    };

    #[test]
    fn split() {
        assert_eq!(
            split_cmdline("BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=ab-cd ro quiet\n"),
            (
                "ro quiet".to_owned(),
                "/boot/vmlinuz-6.1.0-18-amd64".to_owned(),
                "UUID=ab-cd".to_owned()
            )
        );
        assert_eq!(
            split_cmdline(""),
            (String::new(), String::new(), String::new())
        );
    }

    #[test]
    fn matches_uname_and_proc_cmdline() {
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).expect("engine");
        let rs = engine
            .query("SELECT version, arguments, path, device FROM kernel_info")
            .expect("query");
        let cmdline = std::fs::read_to_string("/proc/cmdline").expect("cmdline");
        let (a, p, d) = split_cmdline(&cmdline);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        assert_eq!(
            rs.rows,
            vec![vec![text(release.trim()), text(a), text(p), text(d)]]
        );
    }
}
