//! The query worker and its watchdog: queries can die, capture cannot.
//!
//! osquery's watcher kills its whole worker when a query uses too much memory or CPU, and
//! capture stops with it until the worker is back. Here the daemon (capture, storage, the
//! loggers) never runs a scheduled query itself: each one goes to a helper process,
//! `osprey query-worker`, that reads the event store as a RocksDB secondary instance and
//! answers with the rows. While a query runs, the daemon measures the worker: resident memory
//! above the limit, or CPU above the limit for longer than the latency limit, and the worker
//! is killed; the query that was running is denylisted for `watchdog_denylist_duration`
//! seconds (shown in `osquery_schedule.denylisted`, kept across restarts) and a status line
//! names the resource. The next query starts a new worker. Limits follow osquery's
//! `watchdog_level` profiles and its override flags; none are enforced during the first
//! `watchdog_delay` seconds.
//!
//! Protocol (JSON lines through [`crate::sys::helper`]): the first request is
//! `{"flags": [[name, value], …]}` (the daemon's flags that are not defaults; on stdin, so
//! secrets never reach a command line), answered `{"ready": true}` or `{"error": …}`; then
//! `{"sql": …, "events": null | {"after": null | [time_ns, seq]}}`, answered with
//! `{"rows": [{column: value}], "used": bool, "mark": null | [time_ns, seq], "user_ms",
//! "system_ms", "memory"}` or `{"error": …}`.

use std::{
    fmt,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    flags::{Flags, Source},
    rt::Shutdown,
    sql::{Engine, EventsCursor, EventsMark, TableEnv},
    sys::helper::{Helper, Reply},
};

/// The subcommand the worker runs.
pub const COMMAND: &str = "query-worker";

/// How often a running query's worker is measured.
const SAMPLE: Duration = Duration::from_millis(250);
/// The shortest span a CPU share is computed over.
const CPU_WINDOW: Duration = Duration::from_secs(1);
/// How long a new worker may take to open the store and answer `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the watchdog enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// Percent of one core.
    pub cpu_percent: u64,
    /// Seconds in a row above `cpu_percent` that are tolerated.
    pub latency_secs: u64,
    /// Nothing is enforced this long after start-up.
    pub delay: Duration,
}

const MB: u64 = 1024 * 1024;

impl Limits {
    /// The limits of `flags`; None when there is no watchdog (`disable_watchdog`, or
    /// `watchdog_level` -1): then queries run in the daemon.
    pub fn from_flags(f: &Flags) -> Option<Self> {
        if f.bool("disable_watchdog") {
            return None;
        }
        let (memory, cpu, latency) = match f.get("watchdog_level") {
            "-1" => return None,
            "1" => (100, 5, 6),
            _ => (200, 10, 12),
        };
        let or = |name: &str, level: u64| match f.u64(name) {
            0 => level,
            v => v,
        };
        Some(Self {
            memory_bytes: or("watchdog_memory_limit", memory) * MB,
            cpu_percent: or("watchdog_utilization_limit", cpu),
            latency_secs: or("watchdog_latency_limit", latency),
            delay: Duration::from_secs(f.u64("watchdog_delay")),
        })
    }
}

/// Why the watchdog stopped a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overage {
    Memory {
        resident: u64,
        limit: u64,
    },
    Cpu {
        percent: u64,
        limit: u64,
        secs: u64,
        latency: u64,
    },
}

impl fmt::Display for Overage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory { resident, limit } => write!(
                f,
                "memory: {} MB resident, over the limit of {} MB",
                resident / MB,
                limit / MB
            ),
            Self::Cpu {
                percent,
                limit,
                secs,
                latency,
            } => write!(
                f,
                "CPU: {percent}% of a core for {secs} s, over the limit of {limit}% for more than {latency} s"
            ),
        }
    }
}

/// The watchdog's judgement of one running query, from samples of the worker.
#[derive(Debug)]
pub struct Meter {
    limits: Limits,
    /// The start of the current CPU window and the worker's CPU time then.
    window: Option<(Instant, u64)>,
    /// Seconds in a row above the CPU limit.
    over_secs: u64,
}

impl Meter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            window: None,
            over_secs: 0,
        }
    }

    /// One sample at `at`: the worker's resident bytes and CPU time so far (ms).
    pub fn sample(&mut self, at: Instant, resident: u64, cpu_ms: u64) -> Option<Overage> {
        if resident > self.limits.memory_bytes {
            return Some(Overage::Memory {
                resident,
                limit: self.limits.memory_bytes,
            });
        }
        let Some((since, cpu0)) = self.window else {
            self.window = Some((at, cpu_ms));
            return None;
        };
        let span = at.saturating_duration_since(since);
        if span < CPU_WINDOW {
            return None;
        }
        self.window = Some((at, cpu_ms));
        let percent = cpu_ms.saturating_sub(cpu0) * 100 / (span.as_millis() as u64).max(1);
        if percent > self.limits.cpu_percent {
            self.over_secs += span.as_secs().max(1);
        } else {
            self.over_secs = 0;
        }
        (self.over_secs > self.limits.latency_secs).then_some(Overage::Cpu {
            percent,
            limit: self.limits.cpu_percent,
            secs: self.over_secs,
            latency: self.limits.latency_secs,
        })
    }
}

/// A query's rows and what running it cost.
#[derive(Debug, Default, PartialEq)]
pub struct Ran {
    pub rows: Vec<serde_json::Map<String, Value>>,
    /// An event table was read (events_optimize).
    pub used_events: bool,
    /// Where the next run starts in the event tables.
    pub mark: Option<EventsMark>,
    pub user_ms: u64,
    pub system_ms: u64,
    /// Resident bytes of the process that ran it, after the run.
    pub memory: u64,
}

/// Why a worker ended during a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Watchdog(Overage),
    /// It ran past the caller's time limit (`distributed_timeout`).
    Timeout(Duration),
    /// It died on its own (a crash): how it ended.
    Exited(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Watchdog(o) => write!(f, "was stopped by the watchdog ({o})"),
            Self::Timeout(d) => write!(f, "ran the query longer than {d:?} and was stopped"),
            Self::Exited(how) => write!(f, "ended on its own ({how})"),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Ran(Ran),
    /// SQLite's (or the worker's) error: the query failed, the worker is fine.
    Failed(String),
    /// The worker (pid) ended while running the query.
    Stopped {
        pid: u32,
        stop: Stop,
    },
}

/// The daemon's side: one worker process at a time, started when a query needs it.
pub struct Worker {
    exe: PathBuf,
    flags: Vec<(String, String)>,
    limits: Limits,
    /// Limits apply from here on (start-up + `watchdog_delay`).
    enforce_from: Instant,
    shutdown: Shutdown,
    helper: Option<Helper>,
    /// Workers started so far.
    pub started: u64,
}

/// The flags a worker is given: every one not at its default.
fn set_flags(f: &Flags) -> Vec<(String, String)> {
    f.iter()
        .filter(|(_, _, source)| *source != Source::Default)
        .map(|(def, value, _)| (def.name.to_owned(), value.to_owned()))
        .collect()
}

impl Worker {
    pub fn new(exe: PathBuf, flags: &Flags, limits: Limits, shutdown: Shutdown) -> Self {
        Self {
            exe,
            flags: set_flags(flags),
            enforce_from: Instant::now() + limits.delay,
            limits,
            shutdown,
            helper: None,
            started: 0,
        }
    }

    /// New flags from a config reload: a worker with other flags is replaced (it is idle
    /// between queries). Limits follow at once; the start-up delay stays.
    pub fn follow(&mut self, flags: &Flags) {
        if let Some(l) = Limits::from_flags(flags) {
            self.enforce_from = self.enforce_from - self.limits.delay + l.delay;
            self.limits = l;
        }
        let new = set_flags(flags);
        if new != self.flags {
            self.flags = new;
            if let Some(h) = self.helper.take() {
                end(h);
            }
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The pid of the worker now, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.helper.as_ref().map(Helper::pid)
    }

    fn start(&mut self) -> Result<&mut Helper, String> {
        if self.helper.is_none() {
            let mut h = Helper::start(&self.exe, &[COMMAND.into()], "query-worker-reply")
                .map_err(|e| format!("cannot start the query worker: {e}"))?;
            self.started += 1;
            let flags: Vec<Value> = self.flags.iter().map(|(n, v)| json!([n, v])).collect();
            h.send(&json!({ "flags": flags }))
                .map_err(|e| format!("the query worker did not take its flags: {e}"))?;
            match h.recv(START_TIMEOUT) {
                Reply::Value(v) if v["ready"] == true => {}
                Reply::Value(v) => {
                    end(h);
                    return Err(format!(
                        "the query worker could not start: {}",
                        v["error"].as_str().unwrap_or("no reason given")
                    ));
                }
                Reply::Pending | Reply::Gone => {
                    let how = end(h);
                    return Err(format!(
                        "the query worker did not get ready within {START_TIMEOUT:?} ({how})"
                    ));
                }
            }
            log::info!("query worker started (pid {})", h.pid());
            self.helper = Some(h);
        }
        Ok(self.helper.as_mut().expect("just started"))
    }

    /// Runs `sql` in the worker; `events` is the events_optimize cursor start (None: the
    /// query sees every stored event). The worker is measured while it runs, and stopped
    /// after `timeout` when one is given.
    pub fn run(
        &mut self,
        sql: &str,
        events: Option<Option<EventsMark>>,
        timeout: Option<Duration>,
    ) -> Outcome {
        let (limits, enforce_from) = (self.limits, self.enforce_from);
        let helper = match self.start() {
            Ok(h) => h,
            Err(e) => return Outcome::Failed(e),
        };
        let pid = helper.pid();
        let request = json!({
            "sql": sql,
            "events": events.map(|after| json!({ "after": after })),
        });
        if let Err(e) = helper.send(&request) {
            let how = self.helper.take().map(end).unwrap_or_default();
            return Outcome::Stopped {
                pid,
                stop: Stop::Exited(format!("{how}; sending the query: {e}")),
            };
        }
        let mut meter = Meter::new(limits);
        let began = Instant::now();
        loop {
            let reply = match &self.helper {
                Some(h) => h.recv(SAMPLE),
                None => Reply::Gone,
            };
            match reply {
                Reply::Value(v) => return decode_reply(&v),
                Reply::Gone => {
                    let how = self.helper.take().map(ended).unwrap_or_default();
                    return Outcome::Stopped {
                        pid,
                        stop: Stop::Exited(how),
                    };
                }
                Reply::Pending => {}
            }
            if self.shutdown.is_set() {
                if let Some(h) = self.helper.take() {
                    end(h);
                }
                return Outcome::Failed("the daemon is stopping".into());
            }
            let now = Instant::now();
            if let Some(t) = timeout.filter(|t| now.duration_since(began) > *t) {
                if let Some(h) = self.helper.take() {
                    end(h);
                }
                return Outcome::Stopped {
                    pid,
                    stop: Stop::Timeout(t),
                };
            }
            let Some(h) = &self.helper else { continue };
            let (Some(resident), Some(cpu)) = (h.resident_bytes(), h.cpu_ms()) else {
                continue;
            };
            if now < enforce_from {
                continue;
            }
            if let Some(o) = meter.sample(now, resident, cpu) {
                if let Some(h) = self.helper.take() {
                    end(h);
                }
                return Outcome::Stopped {
                    pid,
                    stop: Stop::Watchdog(o),
                };
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(h) = self.helper.take() {
            end(h);
        }
    }
}

/// Ends a worker and removes what its store secondary left in the temporary folder (a killed
/// worker cannot).
fn end(h: Helper) -> String {
    let pid = h.pid();
    let how = h.end();
    crate::storage::remove_secondary_dirs_of(pid);
    how
}

/// The same for a worker that closed its stdout: it is given a second to exit, so that the
/// status line says how (a signal, an exit code).
fn ended(h: Helper) -> String {
    let pid = h.pid();
    let how = h.reap(Duration::from_secs(1));
    crate::storage::remove_secondary_dirs_of(pid);
    how
}

fn decode_reply(v: &Value) -> Outcome {
    if let Some(e) = v.get("error") {
        return Outcome::Failed(e.as_str().unwrap_or("the query worker failed").to_owned());
    }
    let Some(rows) = v["rows"].as_array() else {
        return Outcome::Failed("the query worker sent a reply without rows".into());
    };
    let mark = v["mark"].as_array().and_then(|m| match m.as_slice() {
        [t, s] => Some((t.as_u64()?, s.as_u64()?)),
        _ => None,
    });
    Outcome::Ran(Ran {
        rows: rows
            .iter()
            .map(|r| r.as_object().cloned().unwrap_or_default())
            .collect(),
        used_events: v["used"] == true,
        mark,
        user_ms: v["user_ms"].as_u64().unwrap_or(0),
        system_ms: v["system_ms"].as_u64().unwrap_or(0),
        memory: v["memory"].as_u64().unwrap_or(0),
    })
}

/// Runs `sql` on `engine` (in the daemon, or in the worker for the daemon), with the events
/// cursor started at `events` when given.
pub fn run_here(
    engine: &Engine,
    cursor: &EventsCursor,
    sql: &str,
    events: Option<Option<EventsMark>>,
) -> Result<Ran, String> {
    let (u0, s0) = crate::sys::procfs::thread_cpu_ms();
    if let Some(after) = events {
        cursor.begin(after);
    }
    let result = engine.query(sql);
    let (used_events, mark) = if events.is_some() {
        cursor.end()
    } else {
        (false, None)
    };
    let (u1, s1) = crate::sys::procfs::thread_cpu_ms();
    let rs = result?;
    Ok(Ran {
        rows: crate::sql::json_rows(&rs),
        used_events,
        mark,
        user_ms: u1.saturating_sub(u0),
        system_ms: s1.saturating_sub(s0),
        memory: crate::sys::procfs::resident_bytes(),
    })
}

/// The worker's side (`osprey query-worker`): reads its flags, builds its tables with
/// `env_for`, then answers queries until stdin closes.
pub fn serve(env_for: impl Fn(&Flags) -> Result<TableEnv, String>) -> std::io::Result<()> {
    // A daemon that dies (SIGKILL, crash) leaves no worker running its query.
    crate::sys::helper::exit_with_parent()?;
    let mut engine: Option<(Engine, Arc<EventsCursor>)> = None;
    crate::sys::helper::serve(|req| match (&engine, req.get("flags")) {
        (None, Some(list)) => match start_engine(list, &env_for) {
            Ok(e) => {
                engine = Some(e);
                json!({ "ready": true })
            }
            Err(e) => json!({ "error": e }),
        },
        (None, None) => json!({ "error": "the first request gives the flags" }),
        (Some(_), Some(_)) => json!({ "error": "the flags are given once" }),
        (Some((engine, cursor)), None) => {
            let Some(sql) = req["sql"].as_str() else {
                return json!({ "error": "a request without sql" });
            };
            let events = req.get("events").filter(|e| !e.is_null()).map(|e| {
                match e["after"].as_array().map(Vec::as_slice) {
                    Some([t, s]) => t.as_u64().zip(s.as_u64()),
                    _ => None,
                }
            });
            match run_here(engine, cursor, sql, events) {
                Ok(r) => json!({
                    "rows": r.rows,
                    "used": r.used_events,
                    "mark": r.mark.map(|(t, s)| json!([t, s])),
                    "user_ms": r.user_ms,
                    "system_ms": r.system_ms,
                    "memory": r.memory,
                }),
                Err(e) => json!({ "error": e }),
            }
        }
    })
}

fn start_engine(
    list: &Value,
    env_for: &impl Fn(&Flags) -> Result<TableEnv, String>,
) -> Result<(Engine, Arc<EventsCursor>), String> {
    let mut flags = Flags::default();
    for pair in list.as_array().ok_or("the flags are not a list")? {
        let (Some(name), Some(value)) = (pair[0].as_str(), pair[1].as_str()) else {
            return Err(format!("a flag that is not a [name, value] pair: {pair}"));
        };
        flags
            .set(name, value, Source::Config)
            .map_err(|e| e.to_string())?;
    }
    let env = env_for(&flags)?;
    let limits = crate::sql::guard::Limits::unattended(&env.flags);
    let cursor = Arc::new(EventsCursor::default());
    let engine = Engine::new(env.with_events_cursor(cursor.clone()))
        .map_err(|e| format!("setting up SQL tables: {e}"))?
        .with_limits(limits);
    Ok((engine, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            memory_bytes: 100 * MB,
            cpu_percent: 10,
            latency_secs: 3,
            delay: Duration::ZERO,
        }
    }

    #[test]
    fn levels_and_overrides_follow_osquery() {
        let mut f = Flags::default();
        let l = Limits::from_flags(&f).unwrap();
        assert_eq!(
            (l.memory_bytes, l.cpu_percent, l.latency_secs, l.delay),
            (200 * MB, 10, 12, Duration::from_secs(60))
        );
        f.set("watchdog_level", "1", Source::CommandLine).unwrap();
        let l = Limits::from_flags(&f).unwrap();
        assert_eq!(
            (l.memory_bytes, l.cpu_percent, l.latency_secs),
            (100 * MB, 5, 6)
        );
        f.set("watchdog_memory_limit", "350", Source::CommandLine)
            .unwrap();
        f.set("watchdog_utilization_limit", "50", Source::CommandLine)
            .unwrap();
        f.set("watchdog_latency_limit", "2", Source::CommandLine)
            .unwrap();
        let l = Limits::from_flags(&f).unwrap();
        assert_eq!(
            (l.memory_bytes, l.cpu_percent, l.latency_secs),
            (350 * MB, 50, 2)
        );
        let mut off = Flags::default();
        off.set("watchdog_level", "-1", Source::CommandLine)
            .unwrap();
        assert_eq!(Limits::from_flags(&off), None);
        let mut off = Flags::default();
        off.set("disable_watchdog", "true", Source::CommandLine)
            .unwrap();
        assert_eq!(Limits::from_flags(&off), None);
    }

    #[test]
    fn memory_over_the_limit_stops_at_once() {
        let mut m = Meter::new(limits());
        let t = Instant::now();
        assert_eq!(m.sample(t, 100 * MB, 0), None);
        assert_eq!(
            m.sample(t, 100 * MB + 1, 0),
            Some(Overage::Memory {
                resident: 100 * MB + 1,
                limit: 100 * MB
            })
        );
        assert_eq!(
            Overage::Memory {
                resident: 312 * MB,
                limit: 200 * MB
            }
            .to_string(),
            "memory: 312 MB resident, over the limit of 200 MB"
        );
    }

    #[test]
    fn cpu_must_stay_over_the_limit_longer_than_the_latency() {
        let mut m = Meter::new(limits());
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        assert_eq!(m.sample(t, 0, 0), None);
        // 3 s at 100%: tolerated (the latency is 3 s); a quiet second resets the count.
        assert_eq!(m.sample(s(1), 0, 1000), None);
        assert_eq!(m.sample(s(2), 0, 2000), None);
        assert_eq!(m.sample(s(3), 0, 3000), None);
        assert_eq!(m.sample(s(4), 0, 3050), None);
        // Samples closer than a second apart wait for the window.
        assert_eq!(m.sample(s(4) + Duration::from_millis(250), 0, 3300), None);
        assert_eq!(m.sample(s(5), 0, 4050), None);
        assert_eq!(m.sample(s(6), 0, 5050), None);
        assert_eq!(m.sample(s(7), 0, 6050), None);
        let o = m.sample(s(8), 0, 7050).unwrap();
        assert_eq!(
            o,
            Overage::Cpu {
                percent: 100,
                limit: 10,
                secs: 4,
                latency: 3
            }
        );
        assert_eq!(
            o.to_string(),
            "CPU: 100% of a core for 4 s, over the limit of 10% for more than 3 s"
        );
        // At the limit is not over it.
        let mut m = Meter::new(limits());
        for n in 0..20 {
            assert_eq!(m.sample(s(n), 0, n * 100), None);
        }
    }

    #[test]
    fn replies_decode_and_bad_ones_are_errors() {
        let v = json!({"rows": [{"a": 1, "b": "x"}], "used": true, "mark": [5, 7],
                       "user_ms": 3, "system_ms": 4, "memory": 9});
        let Outcome::Ran(r) = decode_reply(&v) else {
            panic!("rows")
        };
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0]["a"], 1);
        assert_eq!(
            (r.used_events, r.mark, r.user_ms, r.system_ms, r.memory),
            (true, Some((5, 7)), 3, 4, 9)
        );
        assert_eq!(
            decode_reply(&json!({"error": "no such table: x"})),
            Outcome::Failed("no such table: x".into())
        );
        assert_eq!(
            decode_reply(&Value::Null),
            Outcome::Failed("the query worker sent a reply without rows".into())
        );
    }
}
