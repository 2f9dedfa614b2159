//! The `filesystem` and `stdout` sinks.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
};

use super::{Kind, Line, Sink};

/// osquery's files under `logger_path`: `osqueryd.results.log`, `osqueryd.snapshots.log`,
/// and the status lines in `osqueryd.INFO`, `osqueryd.WARNING`, `osqueryd.ERROR` as glog
/// writes them (`I1201 16:17:22.000000 4242 mod.rs:140] message`, in UTC, the daemon's pid
/// in the thread column); a line goes to its severity's file and to every lower one.
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
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(self.mode)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        // The daemon's umask (077) narrows what `mode` asks for: a new file gets it exactly.
        let want = self.mode & 0o7777;
        if f.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o7777 != want)
        {
            f.set_permissions(std::fs::Permissions::from_mode(want))
                .map_err(|e| format!("setting the mode of {}: {e}", path.display()))?;
        }
        Ok(f)
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
                    let text = glog_line(&l.text);
                    for file in STATUS.iter().take(usize::from(sev.min(2)) + 1) {
                        push(file, &text);
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

/// A JSON status line (`schedule::format::status`) in glog's layout; the JSON itself when it
/// is not one.
pub fn glog_line(json: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_owned();
    };
    let (Some(sev), Some(unix), Some(msg)) = (
        v["severity"].as_u64(),
        v["unixTime"].as_u64(),
        v["message"].as_str(),
    ) else {
        return json.to_owned();
    };
    let file = v["filename"].as_str().unwrap_or_default();
    let file = file.rsplit('/').next().unwrap_or(file);
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (_, month, day) = crate::sys::civil_from_days(days);
    format!(
        "{}{month:02}{day:02} {:02}:{:02}:{:02}.000000 {} {file}:{}] {msg}",
        ["I", "W", "E"].get(sev as usize).copied().unwrap_or("F"),
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        std::process::id(),
        v["line"].as_u64().unwrap_or(0)
    )
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

/// osquery's `syslog` logger: every line to the local syslog socket as process `osqueryd`,
/// facility `logger_syslog_facility` (0-23, default 19 = local3); results at info, status
/// lines at their severity; with `logger_syslog_prepend_cee`, results start with `@cee: `.
/// The socket is connected at the first send and again after an error, so a syslog daemon
/// that starts (or restarts) later gets the buffered lines.
pub struct Syslog {
    socket: PathBuf,
    facility: syslog::Facility,
    cee: bool,
    logger: Option<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>,
}

impl Syslog {
    pub fn new(socket: PathBuf, facility: u64, cee: bool) -> Result<Self, String> {
        const NAMES: [&str; 24] = [
            "kern",
            "user",
            "mail",
            "daemon",
            "auth",
            "syslog",
            "lpr",
            "news",
            "uucp",
            "cron",
            "authpriv",
            "ftp",
            "ntp",
            "audit",
            "alert",
            "clock_daemon",
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
        ];
        let facility: syslog::Facility = usize::try_from(facility)
            .ok()
            .and_then(|i| NAMES.get(i))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("logger_syslog_facility {facility} is not 0-23"))?;
        Ok(Self {
            socket,
            facility,
            cee,
            logger: None,
        })
    }
}

impl Sink for Syslog {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        let logger = match &mut self.logger {
            Some(l) => l,
            None => {
                let f = syslog::Formatter3164 {
                    facility: self.facility,
                    hostname: None,
                    process: "osqueryd".into(),
                    pid: std::process::id(),
                };
                let l = syslog::unix_custom(f, &self.socket)
                    .map_err(|e| format!("connecting to {}: {e}", self.socket.display()))?;
                self.logger.insert(l)
            }
        };
        let mut done = 0;
        for (seq, l) in lines {
            let res = match l.kind {
                Kind::Status(0) => logger.info(&l.text),
                Kind::Status(1) => logger.warning(&l.text),
                Kind::Status(_) => logger.err(&l.text),
                Kind::Result | Kind::Snapshot if self.cee => {
                    logger.info(format!("@cee: {}", l.text))
                }
                Kind::Result | Kind::Snapshot => logger.info(&l.text),
            };
            if let Err(e) = res {
                // Reconnect next time; what went out so far counts.
                self.logger = None;
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(format!("writing to {}: {e}", self.socket.display()))
                };
            }
            done = *seq;
        }
        Ok(done)
    }
}
