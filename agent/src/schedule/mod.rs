//! The scheduler: osquery's `schedule` and packs run on the control plane, their results
//! compared with the previous run ([`results`]), turned into osquery's log lines
//! ([`format`]) and appended, with the new state, to the durable log buffer in one synced
//! batch (so a crash neither loses a line nor reports a row twice).
//!
//! Timing: a query with interval N runs when the wall clock passes a multiple of N seconds
//! (as osquery's scheduler, which counts from the epoch), so a restart does not reset it;
//! a run that is late (the host was busy) happens at the next tick.
//!
//! Decorators: `load` queries run at start and on every config change, `always` ones before
//! every tick that runs a query, `interval` ones every N seconds; the first row of each one
//! gives its columns as decorations.
//!
//! A query that fails logs a status line with SQLite's error; the others go on.
//!
//! Event tables (osquery's `events_optimize`): a query that reads one sees only the events it
//! has not seen ([`crate::sql::EventsCursor`]), and its rows are all `added`
//! ([`results::events`]).

pub mod format;
pub mod plan;
pub mod results;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    config::live::Live,
    rt::counters::LoggerCounters,
    sql::{Engine, EventsCursor, TableEnv},
    stats::{PackStats, QueryStats, ScheduleStats},
    storage::{
        denylist::Denylist,
        logbuf::{Limits, LogBuffer},
    },
};
use plan::{Job, PackPlan};
use results::State;

struct JobState {
    job: Job,
    next_due: u64,
    stats: QueryStats,
}

struct PackState {
    plan: PackPlan,
    stats: PackStats,
    next_check: u64,
}

/// The logger flags a run needs, read once per config.
#[derive(Clone, Debug)]
struct Output {
    host: String,
    epoch: u64,
    numerics: bool,
    event_format: bool,
    snapshot_event_format: bool,
    top_level: bool,
    limits: Limits,
    delimiter: String,
    timing: plan::Timing,
    pack_refresh: u64,
    /// `schedule_timeout` (0 = none).
    timeout: u64,
    /// `logger_min_status`: status lines below this severity are not logged.
    min_status: u64,
    /// `watchdog_denylist_duration`.
    denylist_secs: u64,
}

pub struct Scheduler {
    engine: Engine,
    /// Shared with the engine's event tables (events_optimize).
    cursor: Arc<EventsCursor>,
    buffer: Arc<LogBuffer>,
    counters: Arc<LoggerCounters>,
    generation: u64,
    started: u64,
    /// This database's `instance` identifier.
    instance_id: String,
    out: Output,
    jobs: Vec<JobState>,
    packs: Vec<PackState>,
    decorators: crate::config::Decorators,
    load_decorations: BTreeMap<String, String>,
    always_decorations: BTreeMap<String, String>,
    interval_decorations: BTreeMap<u64, BTreeMap<String, String>>,
    /// Discovery answers by SQL: (when, whether it returned a row).
    discovery_cache: BTreeMap<String, (u64, bool)>,
    /// Where scheduled queries run when there is a watchdog (None: on `engine`).
    worker: Option<crate::watchdog::Worker>,
    /// Queries the watchdog stopped, by name, and until when they are skipped.
    denylist: Denylist,
}

/// The scheduled queries' denylist (store metadata).
pub const DENYLIST_META: &[u8] = b"schedule.denylist";

/// The next multiple of `interval` strictly after `now`.
fn next_multiple(now: u64, interval: u64) -> u64 {
    let i = interval.max(1);
    (now / i + 1) * i
}

/// `host_identifier`: `hostname`, `uuid` (the machine's), `instance` (a UUID made once per
/// database, `instance_id`), `ephemeral` (a UUID made at each start) or `specified`.
pub fn host_identifier(flags: &crate::flags::Flags, instance_id: &str) -> String {
    match flags.get("host_identifier") {
        "specified" => flags.get("specified_identifier").to_owned(),
        "uuid" => crate::sql::tables::host_uuid(),
        "instance" => instance_id.to_owned(),
        "ephemeral" => {
            static EPHEMERAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            EPHEMERAL
                .get_or_init(|| crate::sys::random_uuid().unwrap_or_default())
                .clone()
        }
        _ => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    }
}

impl Output {
    /// A status line now (None below `logger_min_status`).
    fn status_line(
        &self,
        severity: u8,
        location: (&str, u32),
        message: &str,
        decorations: &BTreeMap<String, String>,
    ) -> Option<crate::logger::Line> {
        if u64::from(severity) < self.min_status {
            return None;
        }
        let text = format::status(
            &self.host,
            crate::sys::now_ns() / 1_000_000_000,
            severity,
            location,
            message,
            decorations,
            self.top_level,
        );
        Some(crate::logger::Line {
            kind: crate::logger::Kind::Status(severity),
            text,
        })
    }
}

fn output(live: &Live, instance_id: &str) -> Output {
    let f = &live.flags;
    let host = host_identifier(f, instance_id);
    Output {
        timing: plan::Timing {
            default_interval: f.u64("schedule_default_interval"),
            splay_percent: f.u64("schedule_splay_percent"),
            machine_shard: plan::machine_shard(&host),
        },
        host,
        epoch: f.u64("epoch"),
        numerics: f.bool("logger_numerics"),
        event_format: f.bool("logger_event_type"),
        snapshot_event_format: f.bool("logger_snapshot_event_type"),
        top_level: f.bool("decorations_top_level"),
        limits: crate::logger::limits(f),
        delimiter: f.get("pack_delimiter").to_owned(),
        pack_refresh: f.u64("pack_refresh_interval").max(1),
        timeout: f.u64("schedule_timeout"),
        min_status: f.u64("logger_min_status"),
        denylist_secs: f.u64("watchdog_denylist_duration"),
    }
}

pub use crate::sql::json_rows as rows;

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Scheduler {
    pub fn new(
        env: TableEnv,
        buffer: Arc<LogBuffer>,
        counters: Arc<LoggerCounters>,
        live: &Live,
        now: u64,
    ) -> rusqlite::Result<Self> {
        let cursor = Arc::new(EventsCursor::default());
        let limits = crate::sql::guard::Limits::unattended(&env.flags);
        let instance_id = buffer.instance_id().unwrap_or_else(|e| {
            log::warn!("reading this database's instance id: {e}");
            String::new()
        });
        let denylist = Denylist::load(buffer.store(), DENYLIST_META);
        let mut s = Self {
            engine: Engine::new(env.with_events_cursor(cursor.clone()))?.with_limits(limits),
            cursor,
            buffer,
            counters,
            generation: 0,
            started: now,
            out: output(live, &instance_id),
            instance_id,
            jobs: Vec::new(),
            packs: Vec::new(),
            decorators: Default::default(),
            load_decorations: BTreeMap::new(),
            always_decorations: BTreeMap::new(),
            interval_decorations: BTreeMap::new(),
            discovery_cache: BTreeMap::new(),
            worker: None,
            denylist,
        };
        s.update(live, now);
        Ok(s)
    }

    /// Scheduled queries run in `worker`, watched, from now on.
    pub fn with_worker(mut self, worker: crate::watchdog::Worker) -> Self {
        self.worker = Some(worker);
        self
    }

    /// The query worker's pid, while one runs.
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.as_ref().and_then(crate::watchdog::Worker::pid)
    }

    /// Follows a new config: re-plans, keeps the statistics of queries that stay, forgets
    /// the stored results of queries that left, re-runs the load decorators and discovery.
    pub fn update(&mut self, live: &Live, now: u64) {
        if live.generation == self.generation {
            return;
        }
        self.generation = live.generation;
        self.out = output(live, &self.instance_id);
        if let Some(w) = &mut self.worker {
            w.follow(&live.flags);
        }
        let (jobs, packs) = plan::plan(&live.config, &self.out.delimiter, self.out.timing);
        let mut old: BTreeMap<String, JobState> = std::mem::take(&mut self.jobs)
            .into_iter()
            .map(|j| (j.job.name.clone(), j))
            .collect();
        for job in jobs {
            let stats = old.remove(&job.name).map(|j| j.stats).unwrap_or_default();
            self.jobs.push(JobState {
                next_due: next_multiple(now, job.interval),
                stats: QueryStats {
                    name: job.name.clone(),
                    query: job.sql.clone(),
                    interval: job.interval,
                    denylisted: self.denylist.refused(&job.name, now).is_some(),
                    ..stats
                },
                job,
            });
        }
        // Results of queries that are no longer scheduled: gone, so that a query added
        // back later starts fresh (as osquery's purge does).
        match self.buffer.query_state_names() {
            Ok(names) => {
                for n in names {
                    if !self.jobs.iter().any(|j| j.job.name == n)
                        && let Err(e) = self.buffer.delete_query_state(&n)
                    {
                        log::warn!("forgetting the results of {n}: {e}");
                    }
                }
            }
            Err(e) => log::warn!("listing stored query results: {e}"),
        }
        self.packs = packs
            .into_iter()
            .map(|p| PackState {
                stats: PackStats {
                    name: p.name.clone(),
                    platform: p.platform.clone(),
                    version: p.version.clone(),
                    shard: p.shard,
                    ..Default::default()
                },
                plan: p,
                next_check: now,
            })
            .collect();
        // A new config re-checks every discovery query.
        self.discovery_cache.clear();
        self.decorators = live.config.decorators.clone();
        self.load_decorations = self.decorate(&self.decorators.load.clone());
        self.interval_decorations.clear();
        self.check_packs(now);
    }

    /// The first row of each query, its columns as text.
    fn decorate(&mut self, queries: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for q in queries {
            match self.engine.query(q) {
                Ok(rs) => {
                    if let Some(first) = rows(&rs).into_iter().next() {
                        for (k, v) in first {
                            out.insert(k, as_text(&v));
                        }
                    }
                }
                Err(e) => {
                    self.status(2, line!(), &format!("decorator query failed: {q}: {e}"));
                }
            }
        }
        out
    }

    fn decorations(&self) -> BTreeMap<String, String> {
        let mut d = self.load_decorations.clone();
        for v in self.interval_decorations.values() {
            d.extend(v.clone());
        }
        d.extend(self.always_decorations.clone());
        d
    }

    /// Discovery, for packs whose check is due.
    /// Discovery, for packs whose check is due. A discovery query's answer is kept for
    /// `pack_refresh_interval`: packs that share it run it once (the others count a cache
    /// hit, as in osquery).
    fn check_packs(&mut self, now: u64) {
        for i in 0..self.packs.len() {
            if self.packs[i].next_check > now {
                continue;
            }
            self.packs[i].next_check = now + self.out.pack_refresh;
            let plan = self.packs[i].plan.clone();
            let mut active = plan.runs_here;
            if active {
                for q in &plan.discovery {
                    let cached = self
                        .discovery_cache
                        .get(q)
                        .filter(|(at, _)| now < at + self.out.pack_refresh)
                        .map(|(_, found)| *found);
                    let found = match cached {
                        Some(found) => {
                            self.packs[i].stats.discovery_cache_hits += 1;
                            Ok(found)
                        }
                        None => {
                            self.packs[i].stats.discovery_executions += 1;
                            let r = self.engine.query(q).map(|rs| !rs.rows.is_empty());
                            if let Ok(found) = r {
                                self.discovery_cache.insert(q.clone(), (now, found));
                            }
                            r
                        }
                    };
                    match found {
                        Ok(true) => {}
                        Ok(false) => {
                            active = false;
                            break;
                        }
                        Err(e) => {
                            self.status(
                                1,
                                line!(),
                                &format!("discovery query of pack {} failed: {e}", plan.name),
                            );
                            active = false;
                            break;
                        }
                    }
                }
            }
            if active != self.packs[i].stats.active {
                log::info!(
                    "pack {}: {}",
                    plan.name,
                    if active {
                        "active"
                    } else {
                        "inactive (discovery)"
                    }
                );
            }
            self.packs[i].stats.active = active;
        }
    }

    fn pack_active(&self, pack: Option<&str>) -> bool {
        pack.is_none_or(|p| {
            self.packs
                .iter()
                .any(|s| s.plan.name == p && s.stats.active)
        })
    }

    /// Appends a status line (0 info, 1 warning, 2 error) to the buffer and the daemon log.
    fn status(&self, severity: u8, line: u32, message: &str) {
        // Its status line goes into the buffer here, not again through the log hook.
        let target = crate::rt::status::DAEMON_LOG_ONLY;
        match severity {
            0 => log::info!(target: target, "{message}"),
            1 => log::warn!(target: target, "{message}"),
            _ => log::error!(target: target, "{message}"),
        }
        if let Some(l) =
            self.out
                .status_line(severity, (file!(), line), message, &self.decorations())
        {
            self.append(&[l], None);
        }
    }

    /// A hook for [`crate::rt::status::set_hook`]: the daemon's own log lines become status
    /// lines in the buffer, with this scheduler's host identifier and load decorations.
    pub fn status_hook(&self) -> crate::rt::status::Hook {
        let (buffer, counters) = (self.buffer.clone(), self.counters.clone());
        let (out, decorations) = (self.out.clone(), self.load_decorations.clone());
        Box::new(move |severity, file, line, message| {
            let Some(l) = out.status_line(severity, (file, line), message, &decorations) else {
                return;
            };
            // Not synced: a log line must not cost the caller an fsync (the WAL still
            // survives a crash of the daemon).
            match buffer.append_with(&[l.encode()], None, out.limits, false) {
                Ok(a) => counters.buffer_full.add(a.dropped),
                Err(_) => counters.buffer_full.add(1),
            }
        })
    }

    fn append(&self, lines: &[crate::logger::Line], state: Option<(&str, &[u8])>) {
        let encoded: Vec<Vec<u8>> = lines.iter().map(crate::logger::Line::encode).collect();
        match self.buffer.append(&encoded, state, self.out.limits) {
            Ok(a) => self.counters.buffer_full.add(a.dropped),
            Err(e) => {
                self.counters.buffer_full.add(lines.len() as u64);
                log::error!("log buffer: {e}; {} line(s) lost", lines.len());
            }
        }
    }

    /// Runs what is due at `now` (unix seconds). Returns how many queries ran.
    pub fn tick(&mut self, now: u64) -> usize {
        if self.out.timeout > 0 && now >= self.started + self.out.timeout {
            return 0;
        }
        self.check_packs(now);
        for (secs, queries) in self.decorators.interval.clone() {
            if secs > 0
                && (now.is_multiple_of(secs) || !self.interval_decorations.contains_key(&secs))
            {
                let d = self.decorate(&queries);
                self.interval_decorations.insert(secs, d);
            }
        }
        let due: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| self.jobs[i].next_due <= now)
            .collect();
        if due.is_empty() {
            return 0;
        }
        if !self.decorators.always.is_empty() {
            self.always_decorations = self.decorate(&self.decorators.always.clone());
        }
        let mut ran = 0;
        for i in due {
            self.jobs[i].next_due = next_multiple(now, self.jobs[i].job.interval);
            if !self.pack_active(self.jobs[i].job.pack.as_deref()) {
                continue;
            }
            let refused = self.denylist.refused(&self.jobs[i].job.name, now);
            self.jobs[i].stats.denylisted = refused.is_some();
            if refused.is_some() {
                continue;
            }
            self.run(i, now);
            ran += 1;
        }
        ran
    }

    /// The stored state of `name`: None on its first run, or when it cannot be read (a
    /// status line says so, and the query starts fresh). Err: the store failed.
    fn previous(&self, name: &str) -> Result<Option<State>, ()> {
        match self.buffer.query_state(name) {
            Ok(Some(v)) => match State::decode(&v) {
                Ok(s) => Ok(Some(s)),
                Err(e) => {
                    self.status(
                        1,
                        line!(),
                        &format!("stored results of {name} unreadable ({e}); starting fresh"),
                    );
                    Ok(None)
                }
            },
            Ok(None) => Ok(None),
            Err(e) => {
                self.status(2, line!(), &format!("reading the results of {name}: {e}"));
                Err(())
            }
        }
    }

    fn run(&mut self, i: usize, now: u64) {
        let job = self.jobs[i].job.clone();
        let previous = if job.snapshot {
            None
        } else {
            match self.previous(&job.name) {
                Ok(p) => p,
                Err(()) => return,
            }
        };
        let started = Instant::now();
        // Event tables show this query only what it has not seen (events_optimize).
        let events = (!job.snapshot).then(|| previous.as_ref().and_then(|p| p.events_after));
        let outcome = match &mut self.worker {
            Some(w) => w.run(&job.sql, events, None),
            None => match crate::watchdog::run_here(&self.engine, &self.cursor, &job.sql, events) {
                Ok(r) => crate::watchdog::Outcome::Ran(r),
                Err(e) => crate::watchdog::Outcome::Failed(e),
            },
        };
        let wall = started.elapsed();
        let st = &mut self.jobs[i].stats;
        st.executions += 1;
        st.last_executed = now;
        st.last_wall_time_ms = wall.as_millis() as u64;
        st.wall_time_ms += st.last_wall_time_ms;
        let ran = match outcome {
            crate::watchdog::Outcome::Ran(r) => r,
            crate::watchdog::Outcome::Failed(e) => {
                self.counters.query_errors.add(1);
                self.status(
                    2,
                    line!(),
                    &format!("Error executing scheduled query {}: {e}", job.name),
                );
                return;
            }
            crate::watchdog::Outcome::Stopped { pid, stop } => {
                self.counters.query_errors.add(1);
                let what = if job.denylist {
                    self.denylist
                        .add(self.buffer.store(), &job.name, now + self.out.denylist_secs);
                    self.jobs[i].stats.denylisted = true;
                    format!(
                        "{} is denylisted for {} s",
                        job.name, self.out.denylist_secs
                    )
                } else {
                    format!("{} is not denylisted (\"denylist\": false)", job.name)
                };
                self.status(
                    1,
                    line!(),
                    &format!(
                        "the query worker (pid {pid}) {stop} while running scheduled query {}; {what}; capture and storage went on",
                        job.name
                    ),
                );
                return;
            }
        };
        let st = &mut self.jobs[i].stats;
        st.last_user_time = ran.user_ms;
        st.user_time += st.last_user_time;
        st.last_system_time = ran.system_ms;
        st.system_time += st.last_system_time;
        st.last_memory = ran.memory;
        st.average_memory =
            (st.average_memory * (st.executions - 1) + st.last_memory) / st.executions;
        let (used_events, mark, rows) = (ran.used_events, ran.mark, ran.rows);
        let mut header = format::Header {
            name: job.name.clone(),
            host_identifier: self.out.host.clone(),
            unix_time: now,
            epoch: self.out.epoch,
            counter: 0,
            numerics: self.out.numerics,
            decorations: self.decorations(),
            decorations_top_level: self.out.top_level,
        };
        let (lines, state) = if job.snapshot {
            let lines = format::snapshot(&header, &rows, self.out.snapshot_event_format);
            (
                lines
                    .into_iter()
                    .map(|text| crate::logger::Line {
                        kind: crate::logger::Kind::Snapshot,
                        text,
                    })
                    .collect::<Vec<_>>(),
                None,
            )
        } else {
            let mut o = if used_events {
                results::events(previous.as_ref(), &job.sql, self.out.epoch, rows, mark)
            } else {
                results::differential(previous.as_ref(), &job.sql, self.out.epoch, rows)
            };
            if !job.removed {
                o.diff.removed.clear();
            }
            header.counter = o.counter;
            let lines = format::differential(&header, &o.diff, self.out.event_format)
                .into_iter()
                .map(|text| crate::logger::Line {
                    kind: crate::logger::Kind::Result,
                    text,
                })
                .collect::<Vec<_>>();
            (lines, o.store.map(|s| s.encode()))
        };
        let size: u64 = lines.iter().map(|l| l.text.len() as u64).sum();
        self.jobs[i].stats.output_size += size;
        self.append(&lines, state.as_deref().map(|s| (job.name.as_str(), s)));
    }

    /// The statistics, for `osquery_schedule` and `osquery_packs`.
    pub fn stats(&self) -> ScheduleStats {
        ScheduleStats {
            queries: self.jobs.iter().map(|j| j.stats.clone()).collect(),
            packs: self.packs.iter().map(|p| p.stats.clone()).collect(),
        }
    }
}

/// How long the scheduler waits between ticks.
pub const TICK: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests;
