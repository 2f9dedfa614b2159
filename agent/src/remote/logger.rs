//! The `tls` logger: buffered lines go to `logger_tls_endpoint` as osquery sends them,
//! `{"node_key", "log_type": "result" | "status", "data": [line objects]}`, at most
//! `logger_tls_max_lines` per request, every `logger_tls_period` seconds (sooner when a full
//! request is waiting). A line leaves the buffer only once the server accepted the request
//! that carried it; while the server is down the lines wait there (bounded, counted) and go
//! out in order afterwards.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Map, Value};

use super::Remote;
use crate::{
    flags::Flags,
    logger::{Kind, Line, Sink},
    rt::counters::LoggerCounters,
};

/// The log type a line travels as.
fn log_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Result | Kind::Snapshot => "result",
        Kind::Status(_) => "status",
    }
}

pub struct TlsLogger {
    remote: Arc<Remote>,
    endpoint: String,
    settings: super::distributed::Settings,
    last: Option<Instant>,
    counters: Arc<LoggerCounters>,
}

/// What one send follows, read from the flags in force (Fleet sets `logger_tls_period` in
/// the config's options, and may change it).
struct Limits {
    period: Duration,
    max_lines: usize,
    max_linesize: usize,
    compress: bool,
}

impl Limits {
    fn of(f: &Flags) -> Self {
        Self {
            period: Duration::from_secs(f.u64("logger_tls_period")),
            max_lines: f.u64("logger_tls_max_lines").clamp(1, 1 << 20) as usize,
            max_linesize: f.u64("logger_tls_max_linesize").min(usize::MAX as u64) as usize,
            compress: f.bool("logger_tls_compress"),
        }
    }
}

impl TlsLogger {
    /// The logger on `remote`'s start-up endpoint, its limits from `settings` at each send.
    pub fn new(
        remote: Arc<Remote>,
        settings: super::distributed::Settings,
        counters: Arc<LoggerCounters>,
    ) -> Self {
        Self {
            endpoint: remote.flags().get("logger_tls_endpoint").to_owned(),
            settings,
            last: None,
            counters,
            remote,
        }
    }
}

/// One request: its log type, its data, the seq of its last line, and how many of its
/// lines were left out for being longer than `logger_tls_max_linesize`.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub log_type: &'static str,
    pub data: Vec<Value>,
    pub last: u64,
    pub too_long: u64,
}

/// The requests for `lines`: runs of one log type, at most `max_lines` lines each.
pub fn requests(lines: &[(u64, Line)], max_lines: usize, max_linesize: usize) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for (seq, line) in lines {
        let ty = log_type(line.kind);
        let long = line.text.len() > max_linesize;
        let item = if long {
            None
        } else {
            // The buffer holds the JSON text of each line; the request carries it as JSON.
            Some(
                serde_json::from_str(&line.text)
                    .unwrap_or_else(|_| Value::String(line.text.clone())),
            )
        };
        match out.last_mut() {
            Some(r) if r.log_type == ty && r.data.len() < max_lines => {
                r.data.extend(item);
                r.last = *seq;
                r.too_long += u64::from(long);
            }
            _ => out.push(Request {
                log_type: ty,
                data: item.into_iter().collect(),
                last: *seq,
                too_long: u64::from(long),
            }),
        }
    }
    out
}

impl Sink for TlsLogger {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        let Some(&(first, _)) = lines.first() else {
            return Ok(0);
        };
        let before = first.saturating_sub(1);
        let lim = Limits::of(&(self.settings)());
        if let Some(t) = self.last
            && t.elapsed() < lim.period
            && lines.len() < lim.max_lines
        {
            // Not yet: these lines come again on a later pump.
            return Ok(before);
        }
        self.last = Some(Instant::now());
        let mut through = before;
        let mut too_long = 0;
        for (i, r) in requests(lines, lim.max_lines, lim.max_linesize)
            .into_iter()
            .enumerate()
        {
            if !r.data.is_empty() {
                let mut body = Map::new();
                body.insert("log_type".into(), Value::String(r.log_type.into()));
                body.insert("data".into(), Value::Array(r.data));
                let sent =
                    self.remote
                        .block_on(self.remote.request(&self.endpoint, body, lim.compress));
                if let Err(e) = sent {
                    let e = format!("{}: {e}", self.remote.url(&self.endpoint));
                    self.count_too_long(too_long, lim.max_linesize);
                    // What went before this request is delivered; the rest comes again.
                    return if i == 0 { Err(e) } else { Ok(through) };
                }
            }
            through = r.last;
            too_long += r.too_long;
        }
        self.count_too_long(too_long, lim.max_linesize);
        Ok(through)
    }
}

impl TlsLogger {
    fn count_too_long(&self, too_long: u64, max_linesize: usize) {
        if too_long > 0 {
            self.counters.rejected.add(too_long);
            log::warn!(
                target: crate::rt::status::DAEMON_LOG_ONLY,
                "logger tls: {too_long} line(s) longer than --logger_tls_max_linesize={max_linesize} were dropped (log_rejected)"
            );
        }
    }
}
