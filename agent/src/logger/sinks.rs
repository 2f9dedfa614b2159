//! The `filesystem` and `stdout` sinks.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
};

use super::{Kind, Line, Sink};

/// osquery's files under `logger_path`: `osqueryd.results.log`, `osqueryd.snapshots.log`,
/// and the status lines in `osqueryd.INFO`, `osqueryd.WARNING`, `osqueryd.ERROR` (a line goes
/// to its severity's file and to every lower one, as glog does; here as JSON lines).
///
/// With `logger_rotate`, a file that reaches `logger_rotate_size` bytes is renamed to `<name>.1`
/// (the older ones move up to `<name>.2`, …, and the one beyond `logger_rotate_max_files` is
/// deleted) before the next line is written.
pub struct Filesystem {
    dir: PathBuf,
    mode: u32,
    rotate: Option<Rotate>,
}

/// When and how far the filesystem logger rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotate {
    pub size: u64,
    pub max_files: u32,
}

/// File names by line kind.
pub const RESULTS: &str = "osqueryd.results.log";
pub const SNAPSHOTS: &str = "osqueryd.snapshots.log";
const STATUS: [&str; 3] = ["osqueryd.INFO", "osqueryd.WARNING", "osqueryd.ERROR"];

impl Filesystem {
    pub fn new(dir: PathBuf, mode: u32, rotate: Option<Rotate>) -> Self {
        Self { dir, mode, rotate }
    }

    /// Rotates `name` if it has reached the size.
    fn rotate(&self, name: &str) -> Result<(), String> {
        let Some(r) = self.rotate else {
            return Ok(());
        };
        let path = self.dir.join(name);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        if size < r.size.max(1) {
            return Ok(());
        }
        let numbered = |n: u32| self.dir.join(format!("{name}.{n}"));
        let max = r.max_files.max(1);
        let _ = std::fs::remove_file(numbered(max));
        for n in (1..max).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))
                    .map_err(|e| format!("rotating {}: {e}", from.display()))?;
            }
        }
        std::fs::rename(&path, numbered(1)).map_err(|e| format!("rotating {}: {e}", path.display()))
    }

    fn open(&self, name: &str) -> Result<File, String> {
        let path = self.dir.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(self.mode)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))
    }
}

impl Sink for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        // Grouped per file, in order within each file.
        let mut out: Vec<(&str, String)> = Vec::new();
        let mut push = |file: &'static str, text: &str| {
            let slot = match out.iter_mut().position(|(f, _)| *f == file) {
                Some(i) => &mut out[i].1,
                None => {
                    out.push((file, String::new()));
                    &mut out.last_mut().expect("just pushed").1
                }
            };
            slot.push_str(text);
            slot.push('\n');
        };
        for (_, l) in lines {
            match l.kind {
                Kind::Result => push(RESULTS, &l.text),
                Kind::Snapshot => push(SNAPSHOTS, &l.text),
                Kind::Status(sev) => {
                    for file in STATUS.iter().take(usize::from(sev.min(2)) + 1) {
                        push(file, &l.text);
                    }
                }
            }
        }
        for (name, text) in out {
            self.rotate(name)?;
            let mut f = self.open(name)?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(|e| format!("writing {}: {e}", self.dir.join(name).display()))?;
        }
        Ok(lines.last().map_or(0, |l| l.0))
    }
}

/// Every line on standard output.
pub struct Stdout;

impl Sink for Stdout {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        let mut out = std::io::stdout().lock();
        for (_, l) in lines {
            writeln!(out, "{}", l.text).map_err(|e| format!("writing to stdout: {e}"))?;
        }
        out.flush().map_err(|e| format!("writing to stdout: {e}"))?;
        Ok(lines.last().map_or(0, |l| l.0))
    }
}
