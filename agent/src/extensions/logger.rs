//! Extensions' logger plugins as sinks of the loggers' buffer: a `--logger_plugin` name that is
//! no built-in logger goes to the extension that registers a logger plugin of that name, when
//! one does. Until then (and while its extension does not answer) its lines stay in the
//! durable buffer, counted there, and come again on the next pump.
//!
//! Requests are osquery's: `{"string": line}` for a result line, `{"snapshot": line}` for a
//! snapshot, `{"status": "true", "log": "[line]"}` for a status line. A result or snapshot line
//! answered with a non-zero code is not delivered (it comes again); a status line answered so
//! is taken as declined (osquery-python answers every status line with code 1, "Use Glog for
//! status logging") and leaves the buffer, counted as `log_rejected`.

use std::{collections::BTreeMap, sync::Arc};

use super::Registry;
use crate::{
    logger::{Kind, Line, Sink},
    rt::counters::LoggerCounters,
};

/// The sink of logger plugin `name` of whichever extension registers it.
pub struct ExtensionLogger {
    registry: Arc<Registry>,
    name: &'static str,
    /// Status lines the extension declined count as `rejected`.
    counters: Arc<LoggerCounters>,
}

impl ExtensionLogger {
    pub fn new(registry: Arc<Registry>, name: &str, counters: Arc<LoggerCounters>) -> Self {
        Self {
            registry,
            name: super::table::table_name(name),
            counters,
        }
    }
}

/// osquery's request for `line`.
fn request(line: &Line) -> BTreeMap<String, String> {
    match line.kind {
        Kind::Result => BTreeMap::from([("string".to_owned(), line.text.clone())]),
        Kind::Snapshot => BTreeMap::from([("snapshot".to_owned(), line.text.clone())]),
        Kind::Status(_) => BTreeMap::from([
            ("status".to_owned(), "true".to_owned()),
            ("log".to_owned(), format!("[{}]", line.text)),
        ]),
    }
}

impl Sink for ExtensionLogger {
    fn name(&self) -> &'static str {
        self.name
    }

    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        let Some(uuid) = self.registry.owner("logger", self.name) else {
            return Err(format!(
                "no extension has registered logger plugin {:?}",
                self.name
            ));
        };
        let mut done = None;
        for (seq, line) in lines {
            let answer = self.registry.call(uuid, "logger", self.name, request(line));
            let code = answer
                .as_ref()
                .map(|a| a.status.as_ref().and_then(|s| s.code));
            match (code, line.kind) {
                (Ok(Some(0)), _) => {}
                (Ok(_), Kind::Status(_)) => self.counters.rejected.add(1),
                (Ok(_), _) => {
                    let why = answer
                        .ok()
                        .and_then(|a| a.status)
                        .and_then(|s| s.message)
                        .unwrap_or_default();
                    return done.ok_or_else(|| format!("logger plugin {}: {why}", self.name));
                }
                (Err(e), _) => return done.ok_or_else(|| e.clone()),
            }
            done = Some(*seq);
        }
        done.ok_or_else(|| "nothing to send".to_owned())
    }
}
