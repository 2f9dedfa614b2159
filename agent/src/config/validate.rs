//! [`super::raw::Raw`] to [`Config`]: type checks with key paths, osquery's defaults and bounds,
//! and warnings for what osquery would accept but ignore. Every problem is collected (not just
//! the first), so one reload attempt reports everything that needs fixing.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{
    Config, ConfigError, Decorators, Pack, Parsed, Query,
    raw::{Raw, describe},
};
use crate::fim::pattern;

/// osquery's `kMaxQueryInterval` (one week).
const MAX_INTERVAL: u64 = 604_800;

/// Top-level keys osquery knows but Osprey does not implement: ignored with a clearer warning.
const OSQUERY_ONLY_KEYS: &[&str] = &[
    "events",
    "yara",
    "prometheus_targets",
    "views",
    "auto_table_construction",
    "feature_vectors",
    "kafka_topics",
];

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

pub(super) struct Validator<'a> {
    origin: &'a str,
    base_dir: Option<&'a Path>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Validator<'a> {
    pub fn new(origin: &'a str, base_dir: Option<&'a Path>) -> Self {
        Self {
            origin,
            base_dir,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn finish(self, config: Config) -> Result<Parsed, ConfigError> {
        if self.problems.is_empty() {
            Ok(Parsed {
                config,
                warnings: self.warnings,
            })
        } else {
            Err(ConfigError::Invalid {
                origin: self.origin.to_owned(),
                problems: self.problems,
            })
        }
    }

    fn problem(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }

    fn warn(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{key}: {msg}"));
    }

    pub fn config(&mut self, raw: Raw) -> Config {
        for key in raw.unknown.keys() {
            if OSQUERY_ONLY_KEYS.contains(&key.as_str()) {
                self.warn(key, "an osquery key Osprey does not implement; ignored");
            } else {
                self.warn(key, "unknown top-level key; ignored (as osquery does)");
            }
        }
        let mut c = Config {
            options: self.options(raw.options.as_ref()),
            schedule: self.queries("schedule", raw.schedule.as_ref()),
            packs: self.packs(raw.packs.as_ref()),
            decorators: self.decorators(raw.decorators.as_ref()),
            file_paths: self.string_lists("file_paths", raw.file_paths.as_ref()),
            exclude_paths: self.string_lists("exclude_paths", raw.exclude_paths.as_ref()),
            file_accesses: self.strings("file_accesses", raw.file_accesses.as_ref()),
            file_paths_query: self.string_lists("file_paths_query", raw.file_paths_query.as_ref()),
            kafka_topics: self.string_lists("kafka_topics", raw.kafka_topics.as_ref()),
            ..Config::default()
        };
        self.fim(&mut c);
        c
    }

    fn object<'v>(&mut self, key: &str, v: Option<&'v Value>) -> Option<&'v Map<String, Value>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.problem(key, format!("expected an object, got {}", describe(other)));
                None
            }
        }
    }

    fn string(&mut self, key: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(key, format!("expected a string, got {}", describe(other)));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.problem(
                    key,
                    format!("expected true or false, got {}", describe(other)),
                );
                None
            }
        }
    }

    /// A positive integer, as a JSON number or a string of digits (osquery's `valueToSize`).
    fn positive(&mut self, key: &str, v: &Value, max: u64) -> Option<u64> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n > 0 && n <= max => Some(n),
            Some(n) if n > max => {
                self.problem(key, format!("{n} is more than the maximum {max}"));
                None
            }
            _ => {
                self.problem(
                    key,
                    format!("expected a positive integer, got {}", describe(v)),
                );
                None
            }
        }
    }

    fn strings(&mut self, key: &str, v: Option<&Value>) -> Vec<String> {
        match v {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(&format!("{key}[{i}]"), item))
                .collect(),
            Some(other) => {
                self.problem(
                    key,
                    format!("expected an array of strings, got {}", describe(other)),
                );
                Vec::new()
            }
        }
    }

    fn string_lists(&mut self, key: &str, v: Option<&Value>) -> Vec<(String, Vec<String>)> {
        let Some(m) = self.object(key, v) else {
            return Vec::new();
        };
        m.iter()
            .map(|(name, list)| (name.clone(), self.strings(&join(key, name), Some(list))))
            .collect()
    }

    fn options(&mut self, v: Option<&Value>) -> Vec<(String, String)> {
        let Some(m) = self.object("options", v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in m {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => {
                    self.problem(
                        &join("options", name),
                        format!(
                            "expected a string, number or boolean, got {}",
                            describe(other)
                        ),
                    );
                    continue;
                }
            };
            out.push((name.clone(), text));
        }
        out
    }

    fn queries(&mut self, key: &str, v: Option<&Value>) -> Vec<(String, Query)> {
        let Some(m) = self.object(key, v) else {
            return Vec::new();
        };
        m.iter()
            .filter_map(|(name, q)| {
                let path = join(key, name);
                self.query(&path, q).map(|q| (name.clone(), q))
            })
            .collect()
    }

    fn query(&mut self, key: &str, v: &Value) -> Option<Query> {
        let Value::Object(m) = v else {
            self.problem(key, format!("expected an object, got {}", describe(v)));
            return None;
        };
        let mut q = Query::default();
        let before = self.problems.len();
        match m.get("query") {
            Some(v) => {
                if let Some(s) = self.string(&join(key, "query"), v) {
                    if s.trim().is_empty() {
                        self.problem(&join(key, "query"), "empty query");
                    }
                    q.query = s;
                }
            }
            None => self.problem(key, "missing \"query\""),
        }
        for (k, v) in m {
            let path = join(key, k);
            match k.as_str() {
                "query" => {}
                "interval" => {
                    if let Some(n) = self.positive(&path, v, MAX_INTERVAL) {
                        q.interval = n;
                        q.interval_given = true;
                    }
                }
                "removed" => q.removed = self.boolean(&path, v).unwrap_or(q.removed),
                "snapshot" => q.snapshot = self.boolean(&path, v).unwrap_or(q.snapshot),
                "denylist" | "blacklist" => {
                    q.denylist = self.boolean(&path, v).unwrap_or(q.denylist)
                }
                "platform" => q.platform = self.string(&path, v),
                "version" => q.version = self.string(&path, v),
                "description" => q.description = self.string(&path, v),
                "shard" => q.shard = self.positive(&path, v, 100),
                _ => self.warn(&path, "unknown query key; ignored"),
            }
        }
        (self.problems.len() == before).then_some(q)
    }

    fn packs(&mut self, v: Option<&Value>) -> Vec<(String, Pack)> {
        let Some(m) = self.object("packs", v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in m {
            let key = join("packs", name);
            let pack = match value {
                Value::Object(o) => self.pack(&key, o, None),
                Value::String(path) if glob_name(path).is_some() => {
                    // A glob of pack files: each match is a pack named by its file stem.
                    for (stem, file) in self.pack_glob(&key, path) {
                        let key = join("packs", &stem);
                        if let Some(p) = self.pack_file(&key, &file) {
                            out.push((stem, p));
                        }
                    }
                    continue;
                }
                Value::String(path) => self.pack_file(&key, path),
                other => {
                    self.problem(
                        &key,
                        format!(
                            "expected a pack object or a pack file path, got {}",
                            describe(other)
                        ),
                    );
                    None
                }
            };
            if let Some(p) = pack {
                out.push((name.clone(), p));
            }
        }
        out
    }

    /// (pack name, file) for each file the glob `path` matches, in name order.
    fn pack_glob(&mut self, key: &str, path: &str) -> Vec<(String, String)> {
        let p = Path::new(path);
        let dir = match (p.parent(), self.base_dir) {
            (Some(d), _) if d.is_absolute() => d.to_owned(),
            (Some(d), Some(base)) => base.join(d),
            _ => {
                self.problem(
                    key,
                    format!("relative pack glob {path:?} needs a config file to be relative to"),
                );
                return Vec::new();
            }
        };
        let pattern = glob_name(path).unwrap_or_default();
        let mut out: Vec<(String, String)> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    wildcard(&pattern, &name).then(|| {
                        let stem = Path::new(&name)
                            .file_stem()
                            .map_or(name.clone(), |s| s.to_string_lossy().into_owned());
                        (stem, e.path().display().to_string())
                    })
                })
                .collect(),
            Err(e) => {
                self.problem(key, format!("cannot list {}: {e}", dir.display()));
                return Vec::new();
            }
        };
        out.sort();
        if out.is_empty() {
            self.warn(key, format!("no pack file matches {path:?}"));
        }
        out
    }

    fn pack_file(&mut self, key: &str, path: &str) -> Option<Pack> {
        let p = Path::new(path);
        let resolved: PathBuf = if p.is_absolute() {
            p.to_owned()
        } else if let Some(base) = self.base_dir {
            base.join(p)
        } else {
            self.problem(
                key,
                format!("relative pack path {path:?} needs a config file to be relative to"),
            );
            return None;
        };
        let text = match std::fs::read_to_string(&resolved) {
            Ok(t) => t,
            Err(e) => {
                self.problem(key, format!("cannot read pack {}: {e}", resolved.display()));
                return None;
            }
        };
        let value = match super::parse_json(&text, &resolved.display().to_string()) {
            Ok(v) => v,
            Err(e) => {
                self.problem(key, e);
                return None;
            }
        };
        match &value {
            Value::Object(o) => self.pack(key, o, Some(resolved.clone())),
            other => {
                self.problem(
                    key,
                    format!(
                        "pack {} is not a JSON object (got {})",
                        resolved.display(),
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    fn pack(&mut self, key: &str, o: &Map<String, Value>, file: Option<PathBuf>) -> Option<Pack> {
        let before = self.problems.len();
        let mut p = Pack {
            file,
            ..Pack::default()
        };
        for (k, v) in o {
            let path = join(key, k);
            match k.as_str() {
                "queries" => p.queries = self.queries(&path, Some(v)),
                "platform" => p.platform = self.string(&path, v),
                "version" => p.version = self.string(&path, v),
                "shard" => p.shard = self.positive(&path, v, 100),
                "discovery" => p.discovery = self.strings(&path, Some(v)),
                _ => self.warn(&path, "unknown pack key; ignored"),
            }
        }
        (self.problems.len() == before).then_some(p)
    }

    fn decorators(&mut self, v: Option<&Value>) -> Decorators {
        let mut d = Decorators::default();
        let Some(m) = self.object("decorators", v) else {
            return d;
        };
        for (k, v) in m {
            let path = join("decorators", k);
            match k.as_str() {
                "load" => d.load = self.strings(&path, Some(v)),
                "always" => d.always = self.strings(&path, Some(v)),
                "interval" => {
                    for (secs, queries) in self.string_lists(&path, Some(v)) {
                        let key = join(&path, &secs);
                        match secs.parse::<u64>() {
                            Ok(n) if n > 0 => {
                                if !n.is_multiple_of(60) {
                                    self.warn(
                                        &key,
                                        "osquery runs interval decorators on minute boundaries; use a multiple of 60",
                                    );
                                }
                                d.interval.push((n, queries));
                            }
                            _ => self.problem(
                                &key,
                                format!(
                                    "expected a positive number of seconds as the key, got {secs:?}"
                                ),
                            ),
                        }
                    }
                }
                _ => self.warn(&path, "unknown decorator kind; ignored"),
            }
        }
        d
    }

    /// Pattern checks for the FIM keys, which need the categories of `file_paths`.
    fn fim(&mut self, c: &mut Config) {
        for (category, patterns) in &mut c.file_paths {
            let mut kept = Vec::new();
            for (i, p) in patterns.iter().enumerate() {
                let key = format!("file_paths.{category}[{i}]");
                if p.is_empty() {
                    self.warn(&key, "empty pattern; ignored (as osquery does)");
                    continue;
                }
                match pattern::compile(p) {
                    Ok(compiled) => {
                        if let Some(w) = compiled.warning {
                            self.warn(&key, w);
                        }
                        kept.push(p.clone());
                    }
                    Err(e) => self.problem(&key, e),
                }
            }
            *patterns = kept;
        }
        let categories: Vec<String> = c
            .file_paths
            .iter()
            .chain(&c.file_paths_query)
            .map(|(n, _)| n.clone())
            .collect();
        for (category, entries) in &c.exclude_paths {
            if !categories.contains(category) {
                self.warn(
                    &format!("exclude_paths.{category}"),
                    "not a file_paths category; its entries still exclude paths from every category (as osquery does on Linux)",
                );
            }
            for (i, e) in entries.iter().enumerate() {
                if let Some(w) = pattern::check_exclude(e) {
                    self.warn(&format!("exclude_paths.{category}[{i}]"), w);
                }
            }
        }
        for (i, a) in c.file_accesses.iter().enumerate() {
            if !categories.contains(a) {
                self.warn(
                    &format!("file_accesses[{i}]"),
                    format!("{a:?} is not a file_paths category; it has no effect"),
                );
            }
        }
    }
}

/// The file-name part of `path` when it holds a `*` (a glob of pack files).
fn glob_name(path: &str) -> Option<String> {
    let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
    name.contains('*').then_some(name)
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}
