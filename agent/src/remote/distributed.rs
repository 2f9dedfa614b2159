//! Distributed (live) queries: every `distributed_interval` seconds (every 5 s while the
//! server asks to `accelerate`), read `{queries: {id: sql}, discovery: {id: sql}}`, run each
//! query whose discovery query returns a row, each with a time limit, and write
//! `{queries: {id: [rows]}, statuses: {id: code}, messages: {id: error}, stats: {id: …}}`.
//!
//! A query that runs past `distributed_timeout`, or was running when the agent died, is
//! denylisted for `distributed_denylist_duration` seconds: asked again meanwhile, it gets a
//! non-zero status and a message saying so, and does not run. The query being run is
//! written to the store first, so a crash leaves its trace.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};

use super::{Remote, text_values};
use crate::{
    flags::Flags,
    rt::Shutdown,
    sql::{Engine, TableEnv},
    storage::{Store, denylist::Denylist},
    watchdog::{Outcome, Stop, Worker},
};

/// The query running now (store metadata): found at start-up, it crashed the agent.
const RUNNING_META: &[u8] = b"remote.distributed.running";
/// The denylist: SQL → unix second until which it is refused.
pub const DENYLIST_META: &[u8] = b"remote.distributed.denylist";

/// Poll period while the server asks to accelerate.
const ACCELERATED: Duration = Duration::from_secs(5);

/// Settings of the answering side.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest run of one query (None: no limit).
    pub timeout: Option<Duration>,
    /// Seconds a query that timed out or crashed stays refused.
    pub denylist_secs: u64,
}

/// What happened to one query.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Rows(Vec<Map<String, Value>>, Value),
    Failed(String),
}

/// Runs one SQL text with `limits.timeout`; the rows with every value a string.
fn run_one(engine: &Engine, sql: &str, timeout: Option<Duration>) -> Result<Answer, String> {
    let (cancel, cancelled) = crossbeam_channel::bounded::<()>(1);
    let timer = timeout.map(|t| {
        let h = engine.interrupt_handle();
        std::thread::spawn(move || {
            if cancelled.recv_timeout(t).is_err() {
                h.interrupt();
                true
            } else {
                false
            }
        })
    });
    let started = Instant::now();
    let (u0, s0) = crate::sys::procfs::thread_cpu_ms();
    let result = engine.query(sql);
    let (u1, s1) = crate::sys::procfs::thread_cpu_ms();
    let _ = cancel.send(());
    let timed_out = timer.is_some_and(|t| t.join().unwrap_or(false));
    if timed_out {
        return Err(format!(
            "the query ran longer than {:?} and was stopped",
            timeout.unwrap_or_default()
        ));
    }
    let stats = json!({
        "wall_time_ms": started.elapsed().as_millis() as u64,
        "user_time": u1.saturating_sub(u0),
        "system_time": s1.saturating_sub(s0),
        "memory": crate::sys::procfs::resident_bytes(),
    });
    Ok(match result {
        Ok(rs) => Answer::Rows(
            crate::schedule::rows(&rs)
                .into_iter()
                .map(text_values)
                .collect(),
            stats,
        ),
        Err(e) => Answer::Failed(e),
    })
}

/// Runs one SQL text in the query worker, stopped after `timeout`.
fn run_in(worker: &mut Worker, sql: &str, timeout: Option<Duration>) -> Result<Answer, String> {
    let started = Instant::now();
    match worker.run(sql, None, timeout) {
        Outcome::Ran(r) => Ok(Answer::Rows(
            r.rows.into_iter().map(text_values).collect(),
            json!({
                "wall_time_ms": started.elapsed().as_millis() as u64,
                "user_time": r.user_ms,
                "system_time": r.system_ms,
                "memory": r.memory,
            }),
        )),
        Outcome::Failed(e) => Ok(Answer::Failed(e)),
        Outcome::Stopped {
            stop: Stop::Timeout(t),
            ..
        } => Err(format!("the query ran longer than {t:?} and was stopped")),
        Outcome::Stopped { pid, stop } => Err(format!("the query worker (pid {pid}) {stop}")),
    }
}

/// Whether `sql` may start a carve: it then runs in the daemon, whose carves table holds the
/// remote API's carver.
fn may_carve(sql: &str) -> bool {
    sql.to_ascii_lowercase().contains("carves")
}

/// The write body for a read reply: discovery first, then each query (id order).
/// `request`, when given, is set to each query's id while it runs (a carve carries it).
/// With a `worker`, queries run there, watched (those that may carve run in the daemon).
#[allow(clippy::too_many_arguments)]
pub fn answer(
    engine: &Engine,
    mut worker: Option<&mut Worker>,
    store: &Store,
    read: &Map<String, Value>,
    limits: Limits,
    now: u64,
    request: Option<&std::sync::Mutex<String>>,
) -> Map<String, Value> {
    let empty = Map::new();
    let queries = read
        .get("queries")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let discovery = read
        .get("discovery")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut deny = Denylist::load(store, DENYLIST_META);
    let (mut rows, mut statuses, mut messages, mut stats) =
        (Map::new(), Map::new(), Map::new(), Map::new());
    for (id, sql) in queries {
        let Some(sql) = sql.as_str() else {
            statuses.insert(id.clone(), json!(1));
            messages.insert(id.clone(), json!("the query is not a string"));
            rows.insert(id.clone(), json!([]));
            continue;
        };
        if let Some(d) = discovery.get(id).and_then(Value::as_str) {
            match engine.query(d) {
                Ok(rs) if !rs.rows.is_empty() => {}
                // Discovery says no: the query is not for this host; it is not answered.
                _ => continue,
            }
        }
        if let Some(left) = deny.refused(sql, now) {
            statuses.insert(id.clone(), json!(1));
            messages.insert(
                id.clone(),
                json!(format!(
                    "denylisted for {left} more second(s): it timed out, was stopped by the watchdog, or was running when the agent stopped"
                )),
            );
            rows.insert(id.clone(), json!([]));
            continue;
        }
        if let Some(r) = request {
            id.clone_into(&mut r.lock().unwrap_or_else(|e| e.into_inner()));
        }
        if let Err(e) = store.put_meta(RUNNING_META, sql.as_bytes(), true) {
            log::warn!("recording the running distributed query: {e}");
        }
        let outcome = match worker.as_deref_mut() {
            Some(w) if !may_carve(sql) => run_in(w, sql, limits.timeout),
            _ => run_one(engine, sql, limits.timeout),
        };
        let _ = store.delete_meta(RUNNING_META, true);
        match outcome {
            Ok(Answer::Rows(r, s)) => {
                statuses.insert(id.clone(), json!(0));
                rows.insert(
                    id.clone(),
                    Value::Array(r.into_iter().map(Value::Object).collect()),
                );
                stats.insert(id.clone(), s);
            }
            Ok(Answer::Failed(e)) => {
                statuses.insert(id.clone(), json!(1));
                messages.insert(id.clone(), json!(e));
                rows.insert(id.clone(), json!([]));
            }
            Err(e) => {
                deny.add(store, sql, now + limits.denylist_secs);
                log::warn!(
                    "distributed query {id}: {e}; denylisted for {} s",
                    limits.denylist_secs
                );
                statuses.insert(id.clone(), json!(1));
                messages.insert(id.clone(), json!(e));
                rows.insert(id.clone(), json!([]));
            }
        }
    }
    let mut body = Map::new();
    body.insert("queries".into(), Value::Object(rows));
    body.insert("statuses".into(), Value::Object(statuses));
    body.insert("messages".into(), Value::Object(messages));
    body.insert("stats".into(), Value::Object(stats));
    body
}

/// At start-up: a query recorded as running was running when the agent died; denylist it.
pub fn denylist_crashed(store: &Store, denylist_secs: u64, now: u64) {
    let Ok(Some(sql)) = store.get_meta(RUNNING_META) else {
        return;
    };
    let sql = String::from_utf8_lossy(&sql).into_owned();
    log::warn!(
        "the distributed query {sql:?} was running when the agent stopped; denylisted for {denylist_secs} s"
    );
    let mut deny = Denylist::load(store, DENYLIST_META);
    deny.add(store, &sql, now + denylist_secs);
    let _ = store.delete_meta(RUNNING_META, true);
}

fn limits(f: &Flags) -> Limits {
    let t = f.u64("distributed_timeout");
    Limits {
        timeout: (t > 0).then(|| Duration::from_secs(t)),
        denylist_secs: f.u64("distributed_denylist_duration"),
    }
}

/// The effective flags now (the config's options included: Fleet sets
/// `distributed_interval` there, and may change it).
pub type Settings = Arc<dyn Fn() -> Flags + Send + Sync>;

/// What a peer call returns, once awaited.
pub type PeerFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where distributed queries come from and where their answers go: the TLS remote API
/// (Fleet), or an extension's distributed plugin.
pub trait Peer: Send + Sync {
    /// The read reply: `{queries: {id: sql}, discovery: {id: sql}, accelerate: seconds}`.
    fn read(&self) -> PeerFuture<'_, Map<String, Value>>;
    /// Delivers a write body (see [`answer`]).
    fn write(&self, body: Map<String, Value>) -> PeerFuture<'_, ()>;
}

/// The TLS remote API's distributed endpoints.
struct Tls {
    remote: Arc<Remote>,
    read: String,
    write: String,
}

impl Peer for Tls {
    fn read(&self) -> PeerFuture<'_, Map<String, Value>> {
        Box::pin(async move {
            self.remote
                .request(&self.read, Map::new(), false)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn write(&self, body: Map<String, Value>) -> PeerFuture<'_, ()> {
        Box::pin(async move {
            self.remote
                .request(&self.write, body, false)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// The poll loop of the TLS remote API, a task on the control-plane runtime, until
/// `shutdown`. The interval, the attempts and the limits follow `settings` at every poll; the
/// endpoints are the start-up ones. Carves (when on) are started by these queries.
pub async fn run(
    remote: Arc<Remote>,
    env: TableEnv,
    settings: Settings,
    shutdown: Shutdown,
    worker: Option<Worker>,
) {
    let f = settings();
    // Carves (when on) are started by these queries and carry their ids.
    let carver = (!f.bool("disable_carver"))
        .then(|| Arc::new(super::carve::RemoteCarver::new(remote.clone())));
    let request = carver.as_ref().map(|c| c.request.clone());
    let env = match carver {
        Some(c) => env.with_carver(Arc::new(c) as Arc<dyn crate::sql::Carver>),
        None => env,
    };
    let peer = Tls {
        remote: remote.clone(),
        read: f.get("distributed_tls_read_endpoint").to_owned(),
        write: f.get("distributed_tls_write_endpoint").to_owned(),
    };
    poll(
        &peer,
        remote.store(),
        env,
        request,
        settings,
        shutdown,
        worker,
    )
    .await;
}

/// The poll loop over any [`Peer`]: every `distributed_interval` (5 s while accelerated),
/// read, answer, write (each up to `distributed_tls_max_attempts` times). `request`, when
/// given, carries the id of the query running (for carves).
pub async fn poll(
    peer: &dyn Peer,
    store: &Arc<Store>,
    env: TableEnv,
    request: Option<Arc<std::sync::Mutex<String>>>,
    settings: Settings,
    shutdown: Shutdown,
    mut worker: Option<Worker>,
) {
    let f = settings();
    let now = || crate::sys::now_ns() / 1_000_000_000;
    denylist_crashed(store, limits(&f).denylist_secs, now());
    let mut accelerate_until: Option<Instant> = None;
    let mut failing: Option<String> = None;
    while !shutdown.is_set() {
        let f = settings();
        if let Some(w) = worker.as_mut() {
            w.follow(&f);
        }
        let attempts = f.u64("distributed_tls_max_attempts").max(1);
        let limits = limits(&f);
        let mut read = Err(String::new());
        for _ in 0..attempts {
            read = peer.read().await;
            if read.is_ok() || shutdown.is_set() {
                break;
            }
        }
        match read {
            Ok(reply) => {
                if failing.take().is_some() {
                    log::info!("distributed read: answering again");
                }
                if let Some(secs) = reply.get("accelerate").and_then(Value::as_u64)
                    && secs > 0
                {
                    accelerate_until = Some(Instant::now() + Duration::from_secs(secs));
                }
                let has_queries = reply
                    .get("queries")
                    .and_then(Value::as_object)
                    .is_some_and(|q| !q.is_empty());
                if has_queries {
                    let body = tokio::task::block_in_place(|| {
                        Engine::new(env.clone())
                            .map(|e| {
                                e.with_limits(crate::sql::guard::Limits::unattended(&env.flags))
                            })
                            .map(|e| {
                                answer(
                                    &e,
                                    worker.as_mut(),
                                    store,
                                    &reply,
                                    limits,
                                    now(),
                                    request.as_deref(),
                                )
                            })
                            .map_err(|e| e.to_string())
                    });
                    match body {
                        Ok(body) => {
                            let mut sent = Err(String::new());
                            for _ in 0..attempts {
                                sent = peer.write(body.clone()).await;
                                if sent.is_ok() || shutdown.is_set() {
                                    break;
                                }
                            }
                            if let Err(e) = sent {
                                log::warn!("distributed write: {e}");
                            }
                        }
                        Err(e) => log::error!("distributed queries: the SQL engine: {e}"),
                    }
                }
            }
            Err(e) => {
                if failing.as_deref() != Some(e.as_str()) {
                    log::warn!("distributed read: {e}");
                }
                failing = Some(e);
            }
        }
        // Until the next poll is due, by the interval in force at each second (a new
        // `distributed_interval` from the config applies to the wait already begun).
        let polled = Instant::now();
        while !shutdown.is_set() {
            let wait = match accelerate_until {
                Some(t) if Instant::now() < t => ACCELERATED,
                _ => Duration::from_secs(settings().u64("distributed_interval").max(1)),
            };
            if polled.elapsed() >= wait {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep((wait - polled.elapsed()).min(Duration::from_secs(1))) => {}
                _ = shutdown.wait() => {}
            }
        }
    }
}
