//! `process_open_files`: each process's open file descriptors and what they name
//! (`/proc/<pid>/fd/<n>` links: a path, or `socket:[inode]`, `pipe:[inode]`,
//! `anon_inode:[eventfd]`, …). `WHERE pid = N` reads only that process.

use std::path::Path;

use crate::{
    sql::{
        tables::{
            ns::pids_for,
            util::{int, text},
        },
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_link,
};

const COLUMNS: &[Column] = &[col("pid", BigInt), col("fd", BigInt), col("path", Text)];
const PID: usize = 0;

#[derive(Debug)]
pub struct ProcessOpenFiles;

impl Table for ProcessOpenFiles {
    fn name(&self) -> &'static str {
        "process_open_files"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, _) = pids_for(ctx, PID, Path::new("/proc"))?;
        let mut rows = Vec::new();
        for pid in pids {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            let mut fds: Vec<i64> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort_unstable();
            for fd in fds {
                // Closed since the listing: left out.
                if let Some(target) = read_link(Path::new(&format!("/proc/{pid}/fd/{fd}"))) {
                    rows.push(Ok(vec![int(pid), int(fd), text(target)]));
                }
            }
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn a_childs_descriptors_are_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("held");
        std::fs::write(&f, "x").unwrap();
        // sleep holds the file open on fd 7 (sh opened it); stdin, stdout, stderr: /dev/null.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 7<'{}'; exec sleep 30", f.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // Until sh has exec'd sleep (fd 7 open then, and nothing changes any more).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            != "sleep"
        {
            assert!(
                std::time::Instant::now() < until,
                "the child never became sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let ours = rows_of(&format!(
            "SELECT fd, path FROM process_open_files WHERE pid = {pid} AND fd IN (0, 1, 2, 7) ORDER BY fd"
        ));
        let all = rows_of(&format!(
            "SELECT fd FROM process_open_files WHERE pid = {pid} ORDER BY fd"
        ));
        // The system's own view of the same folder (inherited descriptors included).
        let mut ls: Vec<i64> = tool("ls", &[&format!("/proc/{pid}/fd")])
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        ls.sort_unstable();
        child.kill().unwrap();
        child.wait().unwrap();
        let s = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
        assert_eq!(
            ours,
            [
                s("0", "/dev/null"),
                s("1", "/dev/null"),
                s("2", "/dev/null"),
                s("7", &f.display().to_string())
            ]
        );
        assert_eq!(
            all,
            ls.iter().map(|n| vec![n.to_string()]).collect::<Vec<_>>()
        );
    }
}
