//! The flag registry: the only place a flag is defined ([`defs::FLAGS`]), and the parser that
//! turns the command line, a flagfile and the environment into typed [`Flags`].
//!
//! Precedence, highest first: command line, environment (`OSPREY_<NAME>`), flagfile, config
//! `options`, built-in default.

mod defs;

use std::{collections::BTreeMap, fmt, path::PathBuf};

pub use defs::FLAGS;

/// The type of a flag's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagType {
    Bool,
    Int,
    Str,
    Path,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

impl FlagType {
    /// The type name as osquery's `osquery_flags.type` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "uint64",
            Self::Str | Self::Path | Self::Choice(_) => "string",
        }
    }
}

#[derive(Debug)]
pub struct FlagDef {
    pub name: &'static str,
    pub ty: FlagType,
    pub default: &'static str,
    pub description: &'static str,
    /// Only meaningful for `osprey shell` / `osprey query`.
    pub shell_only: bool,
}

/// Where a flag's effective value came from; later variants take precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    Config,
    Flagfile,
    Environment,
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "default",
            Self::Config => "config",
            Self::Flagfile => "flagfile",
            Self::Environment => "environment",
            Self::CommandLine => "command line",
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("unknown flag --{name}{}", suggestion_text(.suggestion))]
    Unknown {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("bad value {value:?} for --{name}: {reason}")]
    BadValue {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("--{name} needs a value")]
    MissingValue { name: &'static str },
    #[error("{origin}:{line}: {source}")]
    InFile {
        origin: String,
        line: usize,
        #[source]
        source: Box<FlagError>,
    },
    #[error("cannot read flagfile {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

fn suggestion_text(s: &Option<&'static str>) -> String {
    match s {
        Some(s) => format!(" (did you mean --{s}?)"),
        None => String::new(),
    }
}

/// Parsed, validated flag values.
#[derive(Clone, Debug)]
pub struct Flags {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            values: FLAGS
                .iter()
                .map(|f| (f.name, (f.default.to_owned(), Source::Default)))
                .collect(),
        }
    }
}

pub fn lookup(name: &str) -> Option<&'static FlagDef> {
    FLAGS.iter().find(|f| f.name == name)
}

/// The closest known flag name, for "did you mean".
pub fn suggest(name: &str) -> Option<&'static str> {
    FLAGS
        .iter()
        .map(|f| (edit_distance(name, f.name), f.name))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks `value` against the flag's type and returns its normal form.
pub fn validate(def: &'static FlagDef, value: &str) -> Result<String, FlagError> {
    let bad = |reason: String| FlagError::BadValue {
        name: def.name,
        value: value.to_owned(),
        reason,
    };
    match def.ty {
        FlagType::Bool => match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok("true".into()),
            "0" | "false" | "no" | "off" => Ok("false".into()),
            _ => Err(bad("expected true or false".into())),
        },
        FlagType::Int => value
            .parse::<u64>()
            .map(|v| v.to_string())
            .map_err(|_| bad("expected a non-negative integer".into())),
        FlagType::Str | FlagType::Path => Ok(value.to_owned()),
        FlagType::Choice(words) => {
            if words.contains(&value) {
                Ok(value.to_owned())
            } else {
                Err(bad(format!("expected one of {}", words.join(", "))))
            }
        }
    }
}

impl Flags {
    /// Sets `name` from `source` unless a higher-precedence source already set it.
    pub fn set(&mut self, name: &str, value: &str, source: Source) -> Result<(), FlagError> {
        let def = lookup(name).ok_or_else(|| FlagError::Unknown {
            name: name.to_owned(),
            suggestion: suggest(name),
        })?;
        let value = validate(def, value)?;
        let slot = self
            .values
            .entry(def.name)
            .or_insert_with(|| (def.default.to_owned(), Source::Default));
        if source >= slot.1 {
            *slot = (value, source);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> &str {
        self.values
            .get(name)
            .map(|(v, _)| v.as_str())
            .unwrap_or_else(|| panic!("flag {name} is not in the registry"))
    }

    pub fn source(&self, name: &str) -> Source {
        self.values
            .get(name)
            .map(|(_, s)| *s)
            .unwrap_or(Source::Default)
    }

    pub fn bool(&self, name: &str) -> bool {
        self.get(name) == "true"
    }

    pub fn u64(&self, name: &str) -> u64 {
        // Values are validated on the way in.
        self.get(name).parse().unwrap_or(0)
    }

    pub fn path(&self, name: &str) -> Option<PathBuf> {
        let v = self.get(name);
        (!v.is_empty()).then(|| PathBuf::from(v))
    }

    /// Every flag with its effective value and source, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static FlagDef, &str, Source)> {
        FLAGS
            .iter()
            .map(|d| (d, self.get(d.name), self.source(d.name)))
    }

    /// Applies `--name=value` / `--name value` / `--name` / `--noname` arguments. Returns the
    /// arguments that are not flags (the SQL of `osprey query`, for example).
    pub fn parse_args(
        &mut self,
        args: &[String],
        source: Source,
    ) -> Result<Vec<String>, FlagError> {
        let mut rest = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            let Some(body) = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-').filter(|b| b.len() > 1))
            else {
                rest.push(arg.clone());
                continue;
            };
            if body.is_empty() {
                // `--` ends the flags.
                rest.extend(args[i..].iter().cloned());
                break;
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let (def, value) = match (lookup(name), inline) {
                (Some(def), Some(v)) => (def, v),
                (Some(def), None) if def.ty == FlagType::Bool => (def, "true".to_owned()),
                (Some(def), None) => {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or(FlagError::MissingValue { name: def.name })?;
                    i += 1;
                    (def, v)
                }
                (None, inline) => match name.strip_prefix("no").and_then(lookup) {
                    Some(def) if def.ty == FlagType::Bool && inline.is_none() => {
                        (def, "false".to_owned())
                    }
                    _ => {
                        return Err(FlagError::Unknown {
                            name: name.to_owned(),
                            suggestion: suggest(name),
                        });
                    }
                },
            };
            self.set(def.name, &value, source)?;
        }
        Ok(rest)
    }

    /// Reads a flagfile: one `--name=value` per line, blank lines and `#` comments ignored.
    pub fn parse_flagfile(&mut self, path: &std::path::Path) -> Result<(), FlagError> {
        let text = std::fs::read_to_string(path).map_err(|e| FlagError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.parse_flagfile_text(&text, &path.display().to_string())
    }

    pub fn parse_flagfile_text(&mut self, text: &str, origin: &str) -> Result<(), FlagError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = vec![line.to_owned()];
            let in_file = |e: FlagError| FlagError::InFile {
                origin: origin.to_owned(),
                line: n + 1,
                source: Box::new(e),
            };
            let rest = self.parse_args(&words, Source::Flagfile).map_err(in_file)?;
            if let Some(extra) = rest.first() {
                return Err(in_file(FlagError::Unknown {
                    name: extra.clone(),
                    suggestion: None,
                }));
            }
        }
        Ok(())
    }

    /// Applies `OSPREY_<NAME>` environment variables (for example `OSPREY_DATABASE_PATH`).
    pub fn parse_env(
        &mut self,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<(), FlagError> {
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("OSPREY_") else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            if lookup(&name).is_some() {
                self.set(&name, &value, Source::Environment)
                    .map_err(|e| FlagError::InFile {
                        origin: format!("environment variable {key}"),
                        line: 0,
                        source: Box::new(e),
                    })?;
            }
        }
        Ok(())
    }

    /// The whole precedence chain for a command line: arguments, environment, then the
    /// flagfile they name. Returns the non-flag arguments.
    pub fn from_sources(
        args: &[String],
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), FlagError> {
        let mut flags = Self::default();
        let rest = flags.parse_args(args, Source::CommandLine)?;
        flags.parse_env(env)?;
        if let Some(path) = flags.path("flagfile") {
            flags.parse_flagfile(&path)?;
        }
        Ok((flags, rest))
    }
}

/// `osprey --help`'s flag section, generated from the registry.
pub fn help_text() -> String {
    let mut out = String::new();
    for shell in [false, true] {
        out.push_str(if shell {
            "\nshell and query flags:\n"
        } else {
            "\nflags:\n"
        });
        for f in FLAGS.iter().filter(|f| f.shell_only == shell) {
            let value = match f.ty {
                FlagType::Bool => String::new(),
                FlagType::Choice(w) => format!("={}", w.join("|")),
                t => format!("=<{}>", t.name()),
            };
            out.push_str(&format!(
                "  --{}{value}\n      {} (default: {:?})\n",
                f.name, f.description, f.default
            ));
        }
    }
    out
}

/// `docs/flags.md`, generated from the registry (a test keeps the checked-in file current).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Flags\n\nGenerated from `agent/src/flags/defs.rs` (`osprey flags --markdown`); do not edit by hand.\n\n\
         Precedence, highest first: command line, environment (`OSPREY_<NAME>`), flagfile, config `options`, default.\n\n\
         | flag | type | default | shell only | description |\n|---|---|---|---|---|\n",
    );
    for f in FLAGS {
        let ty = match f.ty {
            FlagType::Choice(w) => w.join(" \\| "),
            t => t.name().to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {ty} | `{}` | {} | {} |\n",
            f.name,
            f.default,
            if f.shell_only { "yes" } else { "no" },
            f.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_round_trip_through_validation() {
        for f in FLAGS {
            assert_eq!(
                validate(f, f.default).unwrap(),
                f.default,
                "default of {}",
                f.name
            );
        }
    }

    #[test]
    fn command_line_forms() {
        let mut f = Flags::default();
        let rest = f
            .parse_args(
                &args(&[
                    "--database_path=/a",
                    "--json",
                    "--events_max",
                    "7",
                    "--noheader",
                    "SELECT 1",
                ]),
                Source::CommandLine,
            )
            .unwrap();
        assert_eq!(rest, args(&["SELECT 1"]));
        assert_eq!(f.get("database_path"), "/a");
        assert!(f.bool("json"));
        assert_eq!(f.u64("events_max"), 7);
        assert!(!f.bool("header"));
    }

    #[test]
    fn unknown_flag_suggests() {
        let err = Flags::default()
            .parse_args(&args(&["--databse_path=/x"]), Source::CommandLine)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown flag --databse_path (did you mean --database_path?)"
        );
    }

    #[test]
    fn bad_value_is_named() {
        let err = Flags::default()
            .parse_args(&args(&["--events_max=lots"]), Source::CommandLine)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad value \"lots\" for --events_max: expected a non-negative integer"
        );
        let err = Flags::default()
            .parse_args(&args(&["--storage_sync=always"]), Source::CommandLine)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad value \"always\" for --storage_sync: expected one of none, batch"
        );
    }

    #[test]
    fn precedence_command_line_over_env_over_flagfile() {
        let dir = tempfile::tempdir().unwrap();
        let ff = dir.path().join("flags");
        std::fs::write(
            &ff,
            "# comment\n--events_max=1\n--events_expiry=2\n--storage_batch_ms=3\n",
        )
        .unwrap();
        let env = vec![
            ("OSPREY_EVENTS_EXPIRY".to_owned(), "20".to_owned()),
            ("OSPREY_STORAGE_BATCH_MS".to_owned(), "30".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let (f, _) = Flags::from_sources(
            &args(&[
                &format!("--flagfile={}", ff.display()),
                "--storage_batch_ms=300",
            ]),
            env.into_iter(),
        )
        .unwrap();
        assert_eq!(
            (f.u64("events_max"), f.source("events_max")),
            (1, Source::Flagfile)
        );
        assert_eq!(
            (f.u64("events_expiry"), f.source("events_expiry")),
            (20, Source::Environment)
        );
        assert_eq!(
            (f.u64("storage_batch_ms"), f.source("storage_batch_ms")),
            (300, Source::CommandLine)
        );
        assert_eq!(f.source("events_max").to_string(), "flagfile");
    }

    #[test]
    fn flagfile_errors_name_the_line() {
        let err = Flags::default()
            .parse_flagfile_text("--events_max=1\n\n--bogus=2\n", "ff")
            .unwrap_err();
        assert_eq!(err.to_string(), "ff:3: unknown flag --bogus");
    }

    #[test]
    fn checked_in_docs_match_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/flags.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == markdown(),
            "docs/flags.md is stale: run `osprey flags --markdown > docs/flags.md`"
        );
    }
}
