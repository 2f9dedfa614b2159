//! Loggers: every line (result, snapshot, status) goes into the durable buffer
//! (`storage::logbuf`) first; [`Forwarder::pump`] hands it to each sink of `logger_plugin` in
//! order, and a line leaves the buffer once every sink acknowledged it. A sink that fails
//! keeps its place: it gets the same lines again on the next pump, and the others go on.
//!
//! Sinks: `filesystem` (osquery's file names under `logger_path`), `stdout`, `syslog`,
//! `kafka_producer` ([`kafka`]), and `tls` (made by `remote`, which sits above this layer,
//! through [`MoreSinks`]). A name this build does not have is reported once at start-up and
//! skipped, not an error.

pub mod kafka;
pub mod sinks;

use std::sync::Arc;

use crate::{
    flags::Flags,
    rt::counters::LoggerCounters,
    storage::{
        StorageError,
        logbuf::{Limits, LogBuffer},
    },
};

/// What a line is; decides the file (filesystem) and the TLS log type later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Result,
    Snapshot,
    /// A status line with its severity (0 info, 1 warning, 2 error).
    Status(u8),
}

/// One log line, as JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub kind: Kind,
    pub text: String,
}

/// Encoding in the buffer: format byte, kind byte, severity byte, UTF-8 text.
const FORMAT: u8 = 1;

impl Line {
    pub fn encode(&self) -> Vec<u8> {
        let (k, sev) = match self.kind {
            Kind::Result => (1, 0),
            Kind::Snapshot => (2, 0),
            Kind::Status(s) => (3, s),
        };
        let mut v = Vec::with_capacity(3 + self.text.len());
        v.extend_from_slice(&[FORMAT, k, sev]);
        v.extend_from_slice(self.text.as_bytes());
        v
    }

    /// Never panics: bad bytes are an error (the line is then skipped and counted).
    pub fn decode(v: &[u8]) -> Result<Self, &'static str> {
        let [format, k, sev, rest @ ..] = v else {
            return Err("shorter than its header");
        };
        if *format != FORMAT {
            return Err("unknown format version");
        }
        let kind = match k {
            1 => Kind::Result,
            2 => Kind::Snapshot,
            3 => Kind::Status(*sev),
            _ => return Err("unknown line kind"),
        };
        let text = std::str::from_utf8(rest).map_err(|_| "not UTF-8")?;
        Ok(Self {
            kind,
            text: text.to_owned(),
        })
    }
}

/// A destination of log lines.
pub trait Sink: Send {
    /// The `logger_plugin` name.
    fn name(&self) -> &'static str;
    /// Delivers `lines` (buffer seq, line), in order, durably as far as the sink can tell.
    /// Returns the seq through which every line is delivered: the last one, or an earlier
    /// one while the rest is still in flight (those lines come again on the next call and
    /// a sink that already has them in flight does not send them twice). Err: nothing new
    /// is delivered; the same lines come again.
    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String>;
}

/// A sink made by a layer above this one (`tls` by the remote API client): None when it does
/// not know the name, else the sink or why it cannot start.
pub type MoreSinks<'a> = &'a mut dyn FnMut(&str) -> Option<Result<Box<dyn Sink>, String>>;

/// The sinks `logger_plugin` names, and a warning for each name this build lacks or cannot
/// start. `kafka_topics` is the config's map of Kafka topics to query names; `more` makes the
/// sinks this module does not know.
pub fn sinks_from_flags(
    flags: &Flags,
    kafka_topics: &[(String, Vec<String>)],
    counters: &Arc<LoggerCounters>,
    more: MoreSinks<'_>,
) -> (Vec<Box<dyn Sink>>, Vec<String>) {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut warnings = Vec::new();
    for name in flags
        .get("logger_plugin")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if sinks.iter().any(|s| s.name() == name) {
            continue;
        }
        match name {
            "filesystem" => sinks.push(Box::new(sinks::Filesystem::new(
                flags
                    .path("logger_path")
                    .unwrap_or_else(|| "/var/log/osquery".into()),
                (flags.u64("logger_mode") & 0o7777) as u32,
                flags.bool("logger_rotate").then(|| sinks::Rotate {
                    size: flags.u64("logger_rotate_size"),
                    max_files: flags.u64("logger_rotate_max_files").min(u64::from(u32::MAX)) as u32,
                }),
            ))),
            "stdout" => sinks.push(Box::new(sinks::Stdout)),
            "syslog" => match sinks::Syslog::new(
                flags
                    .path("logger_syslog_socket")
                    .unwrap_or_else(|| "/dev/log".into()),
                flags.u64("logger_syslog_facility"),
                flags.bool("logger_syslog_prepend_cee"),
            ) {
                Ok(s) => sinks.push(Box::new(s)),
                Err(e) => warnings.push(format!("{e}; syslog lines stay buffered")),
            },
            "kafka_producer" => {
                let o = kafka::KafkaOptions {
                    brokers: flags.get("logger_kafka_brokers").to_owned(),
                    topic: flags.get("logger_kafka_topic").to_owned(),
                    acks: flags.get("logger_kafka_acks").to_owned(),
                    compression: flags.get("logger_kafka_compression").to_owned(),
                    topics: kafka_topics.to_vec(),
                };
                match kafka::Kafka::new(&o, counters.clone()) {
                    Ok(k) => sinks.push(Box::new(k)),
                    Err(e) => warnings.push(format!("{e}; its lines stay buffered")),
                }
            }
            other => match more(other) {
                Some(Ok(sink)) => sinks.push(sink),
                Some(Err(e)) => warnings.push(format!("{e}; its lines stay buffered")),
                None => warnings.push(format!(
                    "logger_plugin {other:?} is not available in this build; its lines are not sent (known: filesystem, stdout, syslog, kafka_producer, tls)"
                )),
            },
        }
    }
    (sinks, warnings)
}

/// The buffer limits from `buffered_log_max` (lines) and `buffered_log_max_bytes`.
pub fn limits(flags: &Flags) -> Limits {
    Limits {
        max_lines: flags.u64("buffered_log_max"),
        max_bytes: flags.u64("buffered_log_max_bytes"),
    }
}

/// Lines per send.
const BATCH: usize = 4096;

/// Moves buffered lines to the sinks.
pub struct Forwarder {
    buffer: Arc<LogBuffer>,
    sinks: Vec<Box<dyn Sink>>,
    counters: Arc<LoggerCounters>,
    /// Per sink: the last error, so a sink that stays down is reported once, not per pump.
    failing: Vec<Option<String>>,
}

impl Forwarder {
    pub fn new(
        buffer: Arc<LogBuffer>,
        sinks: Vec<Box<dyn Sink>>,
        counters: Arc<LoggerCounters>,
    ) -> Self {
        let failing = sinks.iter().map(|_| None).collect();
        Self {
            buffer,
            sinks,
            counters,
            failing,
        }
    }

    /// Sends what each sink has not had yet (up to a few batches), then releases what all
    /// of them have. Returns the lines sent.
    pub fn pump(&mut self) -> Result<u64, StorageError> {
        let mut sent = 0;
        for (i, sink) in self.sinks.iter_mut().enumerate() {
            let mut cursor = self.buffer.cursor(sink.name())?;
            for _ in 0..8 {
                let batch = self.buffer.read(cursor, BATCH)?;
                let Some(&(last, _)) = batch.last() else {
                    break;
                };
                let mut lines = Vec::with_capacity(batch.len());
                for (seq, bytes) in &batch {
                    match Line::decode(bytes) {
                        Ok(l) => lines.push((*seq, l)),
                        Err(what) => {
                            self.counters.undecodable.add(1);
                            log::error!("log buffer line {seq} skipped: {what}");
                        }
                    }
                }
                let result = if lines.is_empty() {
                    Ok(last)
                } else {
                    sink.send(&lines)
                };
                match result {
                    Ok(acked) => {
                        if let Some(e) = self.failing[i].take() {
                            log::info!(
                                target: crate::rt::status::DAEMON_LOG_ONLY,
                                "logger {}: delivering again (it failed: {e})",
                                sink.name()
                            );
                        }
                        // All decoded lines delivered: the batch is done (an undecodable
                        // line at its end included).
                        let through = if lines.last().is_none_or(|l| acked >= l.0) {
                            last
                        } else {
                            acked
                        };
                        let n = lines
                            .iter()
                            .filter(|(s, _)| *s > cursor && *s <= through)
                            .count() as u64;
                        if through > cursor {
                            self.buffer.set_cursor(sink.name(), through)?;
                            cursor = through;
                        }
                        sent += n;
                        self.counters.sent.add(n);
                        if through < last {
                            // The rest is still in flight: the next pump asks again.
                            break;
                        }
                    }
                    Err(e) => {
                        self.counters.send_errors.add(1);
                        if self.failing[i].as_deref() != Some(e.as_str()) {
                            log::warn!(
                                target: crate::rt::status::DAEMON_LOG_ONLY,
                                "logger {}: {e}; its lines stay buffered and are sent again",
                                sink.name()
                            );
                        }
                        self.failing[i] = Some(e);
                        break;
                    }
                }
                if batch.len() < BATCH {
                    break;
                }
            }
        }
        let mut done = u64::MAX;
        for s in &self.sinks {
            done = done.min(self.buffer.cursor(s.name())?);
        }
        if done != u64::MAX && done > 0 {
            self.buffer.release(done)?;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests;
