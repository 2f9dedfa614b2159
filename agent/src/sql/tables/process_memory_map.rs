//! `process_memory_map`: each process's mappings (`/proc/<pid>/maps`), osquery's columns:
//! `start` and `end` as `0x…`, `offset` in bytes, `device` as `major:minor`, `pseudo` 1 for
//! a mapping that is no file (`[heap]`, `[stack]`, `[vdso]`, anonymous). `WHERE pid = N`
//! reads only that process.

use crate::{
    sql::{
        tables::{
            ns::pids_for,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("pid", Integer),
    col("start", Text),
    col("end", Text),
    col("permissions", Text),
    col("offset", BigInt),
    col("device", Text),
    col("inode", Integer),
    col("path", Text),
    col("pseudo", Integer),
];
const PID: usize = 0;

#[derive(Debug)]
pub struct ProcessMemoryMap;

/// One mapping: (start, end, permissions, offset, device, inode, path, pseudo).
pub type Mapping = (String, String, String, i64, String, i64, String, bool);

/// The mappings of a maps file.
pub fn parse(s: &str) -> Vec<Mapping> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.splitn(6, ' ');
            let (range, perms, offset, dev, inode) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let path = f.next().unwrap_or("").trim().to_owned();
            let (start, end) = range.split_once('-')?;
            let inode: i64 = inode.parse().ok()?;
            let pseudo = inode == 0;
            Some((
                format!("0x{start}"),
                format!("0x{end}"),
                perms.to_owned(),
                i64::from_str_radix(offset, 16).ok()?,
                dev.to_owned(),
                inode,
                path,
                pseudo,
            ))
        })
        .collect()
}

impl Table for ProcessMemoryMap {
    fn name(&self) -> &'static str {
        "process_memory_map"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, _) = pids_for(ctx, PID, std::path::Path::new("/proc"))?;
        let mut rows = Vec::new();
        for pid in pids {
            let Some(s) = read_text(std::path::Path::new(&format!("/proc/{pid}/maps"))) else {
                continue;
            };
            for (start, end, perms, offset, dev, inode, path, pseudo) in parse(&s) {
                rows.push(Ok(vec![
                    int(pid),
                    text(start),
                    text(end),
                    text(perms),
                    int(offset),
                    text(dev),
                    int(inode),
                    text(path),
                    int(i64::from(pseudo)),
                ]));
            }
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn a_sleeping_childs_mappings_are_its_maps_lines() {
        let p = super::parse(
            "55d0c0a00000-55d0c0a02000 r--p 00001000 fe:01 1234 /usr/bin/sleep\n7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]\n",
        );
        assert_eq!(p[0].0, "0x55d0c0a00000");
        assert_eq!(
            (p[0].3, p[0].5, p[0].6.as_str(), p[0].7),
            (4096, 1234, "/usr/bin/sleep", false)
        );
        assert_eq!((p[1].6.as_str(), p[1].7), ("[stack]", true));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        // The loader maps the libraries after exec: compare once the maps stay the same
        // across the query (read before and after it).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let read = || std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let (maps, got) = loop {
            let before = read();
            let got = rows_of(&format!(
                "SELECT count(*), sum(path = '/usr/bin/sleep') > 0, sum(path = '[stack]') FROM process_memory_map WHERE pid = {pid}"
            ));
            if before == read() && before.contains("/usr/bin/sleep") && before.contains("libc") {
                break (before, got);
            }
            assert!(std::time::Instant::now() < until);
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            got,
            [vec![
                maps.lines().count().to_string(),
                "1".to_owned(),
                "1".to_owned()
            ]]
        );
    }
}
