//! The flag registry: the only place a flag is defined ([`defs::FLAGS`]), and the parser that
//! turns the command line, a flagfile and the environment into typed [`Flags`].
//!
//! Precedence, highest first: command line, environment (`OSPREY_<NAME>`), flagfile, config
//! `options`, built-in default.
//!
//! osquery's older names for a flag ([`defs::ALIASES`]) are accepted from every source: they set
//! their target (inverted where the old name meant "disable") and leave a deprecation warning in
//! [`Flags::warnings`], so two names can never silently disagree about one switch.

mod defs;
pub mod persist;
mod typed;

use std::{collections::BTreeMap, fmt, path::PathBuf};

pub use defs::{ALIASES, FLAGS};

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

/// An old (osquery) name for a registry flag.
#[derive(Debug)]
pub struct AliasDef {
    pub name: &'static str,
    /// The registry flag it sets; always a `Bool` when `inverted`.
    pub target: &'static str,
    /// `true` when the old name means the opposite of the target (`disable_*` for `enable_*`).
    pub inverted: bool,
}

impl AliasDef {
    /// The alias's value given its target's value (booleans flip when inverted).
    pub fn value_from_target(&self, target_value: &str) -> String {
        match (self.inverted, target_value) {
            (true, "true") => "false".into(),
            (true, "false") => "true".into(),
            _ => target_value.to_owned(),
        }
    }

    /// The deprecation text logged when the alias is used.
    pub fn warning(&self, value: &str, source: Source) -> String {
        let target_value = self.value_from_target(value);
        format!(
            "--{} is deprecated: it is an alias of --{}{}; {} set --{}={}",
            self.name,
            self.target,
            if self.inverted { " (inverted)" } else { "" },
            source,
            self.target,
            target_value
        )
    }
}

pub fn lookup_alias(name: &str) -> Option<&'static AliasDef> {
    ALIASES.iter().find(|a| a.name == name)
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
    /// A config `options` entry, named by its key path (`options.<name>`).
    #[error("options.{key}: {source}")]
    InConfig {
        key: String,
        #[source]
        source: Box<FlagError>,
    },
}

fn suggestion_text(s: &Option<&'static str>) -> String {
    match s {
        Some(s) => format!(" (did you mean --{s}?)"),
        None => String::new(),
    }
}

/// Parsed, validated flag values.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// Only flags set by some source; the rest have their registry default.
    values: BTreeMap<&'static str, (String, Source)>,
    /// Deprecation notes from aliases, in the order they were used.
    warnings: Vec<String>,
}

pub fn lookup(name: &str) -> Option<&'static FlagDef> {
    FLAGS.iter().find(|f| f.name == name)
}

/// A name as any source may spell it: a registry flag, or an alias with its target.
fn resolve(name: &str) -> Option<(&'static FlagDef, Option<&'static AliasDef>)> {
    if let Some(def) = lookup(name) {
        return Some((def, None));
    }
    let alias = lookup_alias(name)?;
    lookup(alias.target).map(|def| (def, Some(alias)))
}

/// The closest known flag name (aliases included), for "did you mean".
pub fn suggest(name: &str) -> Option<&'static str> {
    FLAGS
        .iter()
        .map(|f| f.name)
        .chain(ALIASES.iter().map(|a| a.name))
        .map(|n| (edit_distance(name, n), n))
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
    /// Sets `name` (a flag or an alias) from `source` unless a higher-precedence source already
    /// set it. An alias sets its target and records a deprecation warning.
    pub fn set(&mut self, name: &str, value: &str, source: Source) -> Result<(), FlagError> {
        let (def, alias) = resolve(name).ok_or_else(|| FlagError::Unknown {
            name: name.to_owned(),
            suggestion: suggest(name),
        })?;
        let value = match alias {
            // Validate against the target's type, but under the name the user wrote.
            Some(a) => {
                let v = validate(def, value).map_err(|e| match e {
                    FlagError::BadValue { value, reason, .. } => FlagError::BadValue {
                        name: a.name,
                        value,
                        reason,
                    },
                    other => other,
                })?;
                self.warnings.push(a.warning(&v, source));
                a.value_from_target(&v)
            }
            None => validate(def, value)?,
        };
        let current = self.source(def.name);
        // Two names (or one name twice) disagreeing within one source: say which one won.
        if source == current && source != Source::Default && self.get(def.name) != value {
            let old = self.get(def.name).to_owned();
            self.warnings.push(match alias {
                Some(a) => format!(
                    "--{} sets --{} again in the {source} ({old}, then {value}); the last one wins",
                    a.name, def.name
                ),
                None => format!(
                    "--{} is set twice in the {source} ({old}, then {value}); the last one wins",
                    def.name
                ),
            });
        }
        if source >= current {
            self.values.insert(def.name, (value, source));
        }
        Ok(())
    }

    /// The effective value; an unknown name (a programming error) reads as empty.
    pub fn get(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some((v, _)) => v.as_str(),
            None => {
                debug_assert!(lookup(name).is_some(), "flag {name} is not in the registry");
                lookup(name).map_or("", |d| d.default)
            }
        }
    }

    /// Deprecation notes left by aliases, oldest first (the daemon logs them).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Applies a config's `options` with [`Source::Config`] precedence (above defaults only).
    /// All-or-nothing: on a bad value nothing is applied and the error names `options.<key>`.
    /// Unknown options are skipped with a warning (osquery configs carry many options Osprey
    /// does not implement; rejecting them would reject whole fleets' configs).
    pub fn apply_config_options(
        &mut self,
        options: &[(String, String)],
    ) -> Result<Vec<String>, FlagError> {
        let mut next = self.clone();
        let mut warnings = Vec::new();
        for (key, value) in options {
            match next.set(key, value, Source::Config) {
                Ok(()) => {}
                Err(FlagError::Unknown { name, suggestion }) => warnings.push(format!(
                    "options.{key}: unknown flag --{name}{}; ignored",
                    suggestion_text(&suggestion)
                )),
                Err(e) => {
                    return Err(FlagError::InConfig {
                        key: key.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        *self = next;
        Ok(warnings)
    }

    /// Names of flags whose value differs between `self` and `other`, in registry order.
    pub fn changed(&self, other: &Flags) -> Vec<&'static str> {
        FLAGS
            .iter()
            .filter(|d| self.get(d.name) != other.get(d.name))
            .map(|d| d.name)
            .collect()
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
            // `name` stays as written: an alias goes through `set` to leave its warning.
            let (name, value) = match (resolve(name), inline) {
                (Some(_), Some(v)) => (name, v),
                (Some((def, _)), None) if def.ty == FlagType::Bool => (name, "true".to_owned()),
                (Some((def, alias)), None) => {
                    let v = args.get(i).cloned().ok_or(FlagError::MissingValue {
                        name: alias.map_or(def.name, |a| a.name),
                    })?;
                    i += 1;
                    (name, v)
                }
                (None, inline) => match name.strip_prefix("no").and_then(resolve) {
                    Some((def, alias)) if def.ty == FlagType::Bool && inline.is_none() => {
                        (alias.map_or(def.name, |a| a.name), "false".to_owned())
                    }
                    _ => {
                        return Err(FlagError::Unknown {
                            name: name.to_owned(),
                            suggestion: suggest(name),
                        });
                    }
                },
            };
            self.set(name, &value, source)?;
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
        // The environment has no order: apply aliases first and registry names last, so that
        // when both are set the registry name wins, every time.
        let mut ours: Vec<(bool, String, String, String)> = vars
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("OSPREY_")?.to_ascii_lowercase();
                let (_, alias) = resolve(&name)?;
                Some((alias.is_none(), name, key, value))
            })
            .collect();
        ours.sort();
        for (_, name, key, value) in ours {
            self.set(&name, &value, Source::Environment)
                .map_err(|e| FlagError::InFile {
                    origin: format!("environment variable {key}"),
                    line: 0,
                    source: Box::new(e),
                })?;
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
        if let Some(path) = flags.flagfile() {
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
    out.push_str("\ndeprecated osquery names (accepted, with a warning):\n");
    for a in ALIASES {
        out.push_str(&format!(
            "  --{}\n      {}\n",
            a.name,
            persist::alias_description(a)
        ));
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
    out.push_str(
        "\n## Deprecated osquery names\n\n\
         Accepted from every source with a deprecation warning; each sets its target flag. \
         `osquery_flags` lists them too, showing the value they read as.\n\n\
         | name | alias of | inverted |\n|---|---|---|\n",
    );
    for a in ALIASES {
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            a.name,
            a.target,
            if a.inverted { "yes" } else { "no" }
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
    fn aliases_set_their_target_from_every_source_with_a_warning() {
        let mut f = Flags::default();
        f.parse_args(&args(&["--audit_allow_fim_events"]), Source::CommandLine)
            .unwrap();
        assert_eq!(
            (f.get("enable_file_events"), f.source("enable_file_events")),
            ("true", Source::CommandLine)
        );
        assert_eq!(
            f.warnings(),
            [
                "--audit_allow_fim_events is deprecated: it is an alias of --enable_file_events; \
              command line set --enable_file_events=true"
            ]
        );

        let mut f = Flags::default();
        f.parse_flagfile_text("--enable_ntfs_event_publisher=true\n", "ff")
            .unwrap();
        assert_eq!(
            (f.get("enable_file_events"), f.source("enable_file_events")),
            ("true", Source::Flagfile)
        );

        let mut f = Flags::default();
        f.parse_env(
            vec![(
                "OSPREY_DISABLE_ENDPOINTSECURITY_FIM".to_owned(),
                "true".to_owned(),
            )]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(
            (f.get("enable_file_events"), f.source("enable_file_events")),
            ("false", Source::Environment)
        );
        assert_eq!(
            f.warnings(),
            [
                "--disable_endpointsecurity_fim is deprecated: it is an alias of \
              --enable_file_events (inverted); environment set --enable_file_events=false"
            ]
        );

        let mut f = Flags::default();
        let w = f
            .apply_config_options(&[("config_tls_refresh".into(), "30".into())])
            .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            (f.u64("config_refresh"), f.source("config_refresh")),
            (30, Source::Config)
        );
        assert_eq!(f.warnings().len(), 1);
    }

    #[test]
    fn inverted_alias_forms() {
        for (arg, want) in [
            ("--disable_endpointsecurity_fim=false", true),
            ("--disable_endpointsecurity_fim", false),
            ("--nodisable_endpointsecurity_fim", true),
            ("--noaudit_allow_fim_events", false),
            ("--disable_endpointsecurity_fim=0", true),
        ] {
            let mut f = Flags::default();
            // Start from "on" so that every row has to move or keep the value on purpose.
            f.set("enable_file_events", "true", Source::Default)
                .unwrap();
            f.parse_args(&args(&[arg]), Source::CommandLine).unwrap();
            assert_eq!(f.bool("enable_file_events"), want, "{arg}");
        }
    }

    #[test]
    fn alias_errors_use_the_name_written() {
        let err = Flags::default()
            .parse_args(
                &args(&["--disable_endpointsecurity_fim=maybe"]),
                Source::CommandLine,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad value \"maybe\" for --disable_endpointsecurity_fim: expected true or false"
        );
        let err = Flags::default()
            .parse_args(&args(&["--audit_allow_fim_event"]), Source::CommandLine)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown flag --audit_allow_fim_event (did you mean --audit_allow_fim_events?)"
        );
        let err = Flags::default()
            .parse_args(&args(&["--config_tls_refresh"]), Source::CommandLine)
            .unwrap_err();
        assert_eq!(err.to_string(), "--config_tls_refresh needs a value");
    }

    #[test]
    fn alias_and_target_in_one_source_last_wins() {
        let mut f = Flags::default();
        f.parse_args(
            &args(&["--enable_file_events", "--disable_endpointsecurity_fim"]),
            Source::CommandLine,
        )
        .unwrap();
        assert!(!f.bool("enable_file_events"));
        assert_eq!(
            f.warnings()[1],
            "--disable_endpointsecurity_fim sets --enable_file_events again in the command line \
             (true, then false); the last one wins"
        );
        // A lower source cannot undo it, whichever name it uses.
        f.parse_flagfile_text("--audit_allow_fim_events=true\n", "ff")
            .unwrap();
        assert_eq!(
            (f.get("enable_file_events"), f.source("enable_file_events")),
            ("false", Source::CommandLine)
        );
    }

    #[test]
    fn in_the_environment_the_registry_name_beats_an_alias_whatever_the_order() {
        for reversed in [false, true] {
            let mut vars = vec![
                ("OSPREY_ENABLE_FILE_EVENTS".to_owned(), "false".to_owned()),
                (
                    "OSPREY_AUDIT_ALLOW_FIM_EVENTS".to_owned(),
                    "true".to_owned(),
                ),
            ];
            if reversed {
                vars.reverse();
            }
            let mut f = Flags::default();
            f.parse_env(vars.into_iter()).unwrap();
            assert!(!f.bool("enable_file_events"), "reversed: {reversed}");
            assert_eq!(
                f.warnings()[1],
                "--enable_file_events is set twice in the environment (true, then false); the last one wins"
            );
        }
    }

    #[test]
    fn same_value_twice_is_not_a_conflict() {
        let mut f = Flags::default();
        f.parse_args(
            &args(&["--events_max=5", "--events_max=5", "--json", "--json"]),
            Source::CommandLine,
        )
        .unwrap();
        assert!(f.warnings().is_empty(), "{:?}", f.warnings());
        f.parse_args(&args(&["--events_max=6"]), Source::CommandLine)
            .unwrap();
        assert_eq!(
            f.warnings(),
            ["--events_max is set twice in the command line (5, then 6); the last one wins"]
        );
    }

    #[test]
    fn precedence_of_all_five_sources() {
        let dir = tempfile::tempdir().unwrap();
        let ff = dir.path().join("flags");
        std::fs::write(
            &ff,
            "--events_max=1\n--events_expiry=2\n--storage_batch_ms=3\n",
        )
        .unwrap();
        let env = vec![
            ("OSPREY_EVENTS_EXPIRY".to_owned(), "20".to_owned()),
            ("OSPREY_STORAGE_BATCH_MS".to_owned(), "30".to_owned()),
        ];
        let (mut f, _) = Flags::from_sources(
            &args(&[
                &format!("--flagfile={}", ff.display()),
                "--storage_batch_ms=300",
            ]),
            env.into_iter(),
        )
        .unwrap();
        let options: Vec<(String, String)> = [
            ("events_max", "1000"),
            ("events_expiry", "2000"),
            ("storage_batch_ms", "3000"),
            ("ring_buffer_bytes", "65536"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(f.apply_config_options(&options).unwrap().is_empty());
        let got: Vec<(u64, String)> = [
            "storage_batch_ms",
            "events_expiry",
            "events_max",
            "ring_buffer_bytes",
            "event_queue_size",
        ]
        .iter()
        .map(|n| (f.u64(n), f.source(n).to_string()))
        .collect();
        assert_eq!(
            got,
            vec![
                (300, "command line".to_owned()),
                (20, "environment".to_owned()),
                (1, "flagfile".to_owned()),
                (65536, "config".to_owned()),
                (65536, "default".to_owned()),
            ]
        );
    }

    #[test]
    fn config_options_are_all_or_nothing_and_named_by_key() {
        let mut f = Flags::default();
        let err = f
            .apply_config_options(&[
                ("events_max".into(), "5".into()),
                ("storage_sync".into(), "always".into()),
            ])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "options.storage_sync: bad value \"always\" for --storage_sync: expected one of none, batch"
        );
        assert_eq!(
            (f.u64("events_max"), f.source("events_max")),
            (50000, Source::Default)
        );
        let w = f
            .apply_config_options(&[
                ("events_maxx".into(), "5".into()),
                ("watchdog_levels".into(), "1".into()),
            ])
            .unwrap();
        assert_eq!(
            w,
            [
                "options.events_maxx: unknown flag --events_maxx (did you mean --events_max?); ignored",
                "options.watchdog_levels: unknown flag --watchdog_levels (did you mean --watchdog_level?); ignored",
            ]
        );
    }

    #[test]
    fn changed_lists_differences_in_registry_order() {
        let a = Flags::default();
        let mut b = Flags::default();
        b.apply_config_options(&[
            ("verbose".into(), "true".into()),
            ("events_max".into(), "50000".into()),
            ("events_expiry".into(), "1".into()),
        ])
        .unwrap();
        assert_eq!(a.changed(&b), ["events_expiry", "verbose"]);
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
