//! osquery's JSON configuration: parsed into a loose serde struct ([`raw::Raw`]), then validated
//! into a typed [`Config`] ([`validate`]) with errors that name the offending key path
//! (`schedule.my_query.interval: expected a positive integer, got "x"`) or, for JSON syntax, the
//! line and column.
//!
//! Keys: `options`, `schedule`, `packs`, `decorators`, `file_paths`, `exclude_paths`,
//! `file_accesses`, `file_paths_query`, `kafka_topics`. Unknown top-level keys are warnings, as osquery ignores
//! them. The daemon's runtime side (load at start-up, reload on SIGHUP and every
//! `--config_refresh` seconds, the shared handle) is in [`live`].

pub mod live;
mod raw;
mod validate;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

pub use live::{ConfigHandle, Live, Service};

/// The configuration used when `--config_path` is empty (see `deploy/osprey.conf`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../deploy/osprey.conf");

/// How the embedded default is named in messages and in `osquery_flags`.
pub const EMBEDDED_ORIGIN: &str = "embedded default (deploy/osprey.conf)";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read config {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{origin}:{line}:{column}: JSON syntax error: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Every problem found, each starting with its key path.
    #[error("{origin}: {}", problems.join("; "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

/// A validated configuration. Maps keep the order of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it came from: a path, or [`EMBEDDED_ORIGIN`].
    pub origin: String,
    /// sha1 of the text, as osquery's `osquery_info.config_hash`.
    pub hash: String,
    /// `options`, values as flag text (`true`, `60`, `batch`).
    pub options: Vec<(String, String)>,
    pub schedule: Vec<(String, Query)>,
    pub packs: Vec<(String, Pack)>,
    pub decorators: Decorators,
    pub file_paths: Vec<(String, Vec<String>)>,
    pub exclude_paths: Vec<(String, Vec<String>)>,
    pub file_accesses: Vec<String>,
    pub file_paths_query: Vec<(String, Vec<String>)>,
    /// The `kafka_producer` logger's topics: (topic, query names).
    pub kafka_topics: Vec<(String, Vec<String>)>,
    /// What `file_paths_query` returned at load time ([`Config::expand_file_paths_query`]);
    /// not part of the file, so not in [`Config::to_json`].
    pub queried_paths: Vec<(String, Vec<String>)>,
}

/// A scheduled query (in `schedule` or a pack's `queries`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub query: String,
    /// Seconds, 1..=604800 (osquery's bounds); 3600 when absent, as osquery's
    /// `schedule_default_interval`.
    pub interval: u64,
    /// Whether the config gave `interval` (else the scheduler applies
    /// `schedule_default_interval`).
    pub interval_given: bool,
    pub removed: bool,
    pub snapshot: bool,
    pub platform: Option<String>,
    pub version: Option<String>,
    pub shard: Option<u64>,
    pub description: Option<String>,
    /// `denylist` (or osquery's older `blacklist`): false exempts the query from the watchdog.
    pub denylist: bool,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            query: String::new(),
            interval: 3600,
            interval_given: false,
            removed: true,
            snapshot: false,
            platform: None,
            version: None,
            shard: None,
            description: None,
            denylist: true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pack {
    /// The file it was read from, when it was given as a path.
    pub file: Option<PathBuf>,
    pub platform: Option<String>,
    pub version: Option<String>,
    pub shard: Option<u64>,
    pub discovery: Vec<String>,
    pub queries: Vec<(String, Query)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decorators {
    pub load: Vec<String>,
    pub always: Vec<String>,
    /// (seconds, queries), in file order.
    pub interval: Vec<(u64, Vec<String>)>,
}

/// A parsed config and the warnings it raised (unknown keys, patterns osquery would treat
/// unexpectedly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Parses `text`. `base_dir` is where relative pack paths are resolved (the config's folder).
pub fn parse(text: &str, origin: &str, base_dir: Option<&Path>) -> Result<Parsed, ConfigError> {
    let value = parse_json(text, origin)?;
    let raw = raw::Raw::from_value(value).map_err(|problem| ConfigError::Invalid {
        origin: origin.to_owned(),
        problems: vec![problem],
    })?;
    let mut v = validate::Validator::new(origin, base_dir);
    let mut config = v.config(raw);
    config.origin = origin.to_owned();
    config.hash = crate::fim::hash::sha1_hex(text.as_bytes());
    v.finish(config)
}

/// Reads and parses `path`, or the embedded default when `path` is None.
pub fn load(path: Option<&Path>) -> Result<Parsed, ConfigError> {
    match path {
        None => parse(DEFAULT_CONFIG, EMBEDDED_ORIGIN, None),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?;
            parse(&text, &p.display().to_string(), p.parent())
        }
    }
}

/// JSON text to a value; syntax errors carry line and column.
pub(crate) fn parse_json(text: &str, origin: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line L column C"; the position is given separately.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        ConfigError::Syntax {
            origin: origin.to_owned(),
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}

impl Config {
    /// The FIM matcher for this config's `file_paths` (with what `file_paths_query` returned),
    /// `exclude_paths` and `file_accesses`.
    pub fn fim_matcher(&self) -> crate::fim::FimMatcher {
        let watched = self.watched();
        crate::fim::FimMatcher::new(
            watched.iter().map(|(c, p)| (c.as_str(), p.as_slice())),
            self.exclude_paths.iter().map(|(_, p)| p.as_slice()),
            self.file_accesses.iter().map(String::as_str),
        )
    }

    /// `file_paths` with the patterns `file_paths_query` returned added to their categories
    /// (new categories after the file's, in `file_paths_query` order).
    pub fn watched(&self) -> Vec<(String, Vec<String>)> {
        let mut out = self.file_paths.clone();
        for (category, patterns) in &self.queried_paths {
            match out.iter_mut().find(|(c, _)| c == category) {
                Some((_, existing)) => existing.extend(patterns.iter().cloned()),
                None => out.push((category.clone(), patterns.clone())),
            }
        }
        out
    }

    /// How many `file_paths` categories (queried ones included) name at least one pattern.
    pub fn watched_categories(&self) -> usize {
        self.watched().iter().filter(|(_, p)| !p.is_empty()).count()
    }

    /// osquery's `file_paths_query`: runs every query with `run`, which returns the `path`
    /// column of each row, and keeps each path as a pattern of the query's category in
    /// [`Config::queried_paths`]. As in osquery, a failing query or a bad path is a warning
    /// (named by key), not an error: the rows are data, not configuration. Running it again
    /// (every load and reload does) picks up new rows, e.g. new users' home folders.
    pub fn expand_file_paths_query(
        &mut self,
        run: &mut dyn FnMut(&str) -> Result<Vec<String>, String>,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut out = Vec::new();
        for (category, queries) in &self.file_paths_query {
            let mut patterns = Vec::new();
            for (i, sql) in queries.iter().enumerate() {
                let key = format!("file_paths_query.{category}[{i}]");
                match run(sql) {
                    Ok(paths) => {
                        for p in paths {
                            match crate::fim::pattern::compile(&p) {
                                Ok(c) => {
                                    if let Some(w) = c.warning {
                                        warnings.push(format!("{key}: {w}"));
                                    }
                                    patterns.push(p);
                                }
                                Err(e) => warnings.push(format!("{key}: row ignored: {e}")),
                            }
                        }
                    }
                    Err(e) => warnings.push(format!("{key}: {e}")),
                }
            }
            out.push((category.clone(), patterns));
        }
        self.queried_paths = out;
        warnings
    }

    /// The config as osquery JSON again (packs inline). Parsing the result gives back an equal
    /// config (apart from `origin`, `hash` and pack `file`), which the tests check.
    pub fn to_json(&self) -> Value {
        fn lists(v: &[(String, Vec<String>)]) -> Value {
            Value::Object(v.iter().map(|(k, l)| (k.clone(), json!(l))).collect())
        }
        fn queries(v: &[(String, Query)]) -> Value {
            Value::Object(v.iter().map(|(k, q)| (k.clone(), q.to_json())).collect())
        }
        let mut top = Map::new();
        top.insert(
            "options".into(),
            Value::Object(
                self.options
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        top.insert("schedule".into(), queries(&self.schedule));
        let packs = self
            .packs
            .iter()
            .map(|(name, p)| {
                let mut o = Map::new();
                o.insert("queries".into(), queries(&p.queries));
                if let Some(s) = &p.platform {
                    o.insert("platform".into(), json!(s));
                }
                if let Some(s) = &p.version {
                    o.insert("version".into(), json!(s));
                }
                if let Some(s) = p.shard {
                    o.insert("shard".into(), json!(s));
                }
                if !p.discovery.is_empty() {
                    o.insert("discovery".into(), json!(p.discovery));
                }
                (name.clone(), Value::Object(o))
            })
            .collect();
        top.insert("packs".into(), Value::Object(packs));
        top.insert(
            "decorators".into(),
            json!({
                "load": self.decorators.load,
                "always": self.decorators.always,
                "interval": Value::Object(
                    self.decorators
                        .interval
                        .iter()
                        .map(|(s, q)| (s.to_string(), json!(q)))
                        .collect()
                ),
            }),
        );
        top.insert("file_paths".into(), lists(&self.file_paths));
        top.insert("exclude_paths".into(), lists(&self.exclude_paths));
        top.insert("file_accesses".into(), json!(self.file_accesses));
        top.insert("file_paths_query".into(), lists(&self.file_paths_query));
        if !self.kafka_topics.is_empty() {
            top.insert("kafka_topics".into(), lists(&self.kafka_topics));
        }
        Value::Object(top)
    }
}

impl Query {
    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("query".into(), json!(self.query));
        if self.interval_given {
            o.insert("interval".into(), json!(self.interval));
        }
        o.insert("removed".into(), json!(self.removed));
        o.insert("snapshot".into(), json!(self.snapshot));
        o.insert("denylist".into(), json!(self.denylist));
        for (k, v) in [
            ("platform", &self.platform),
            ("version", &self.version),
            ("description", &self.description),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), json!(v));
            }
        }
        if let Some(s) = self.shard {
            o.insert("shard".into(), json!(s));
        }
        Value::Object(o)
    }
}

#[cfg(test)]
mod tests;
