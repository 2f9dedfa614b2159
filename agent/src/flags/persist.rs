//! The daemon's effective flags, persisted under one meta key so that `osprey query` (a separate
//! process with its own command line) shows in `osquery_flags` what the running daemon uses,
//! config `options` and all, rather than its own defaults.
//!
//! Written by the daemon at start-up, after every config (re)load, and with `running = false`
//! at a clean exit. Stored as JSON: it is small, written rarely, and readable by hand with
//! `ldb`; an unreadable value is treated as "no daemon" (never a panic, never an error).

use serde::{Deserialize, Serialize};

use super::{AliasDef, FLAGS, FlagDef, FlagType, Flags, Source, lookup, validate};
use crate::storage::{StorageError, Store};

/// The meta key (owned by the config/flags side; `stats` owns its own keys).
pub const META_KEY: &[u8] = b"config/daemon_flags";

/// What the daemon persists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonFlags {
    pub pid: u32,
    pub running: bool,
    pub updated_ns: u64,
    /// Every registry flag that is not shell-only: (name, value, source).
    pub values: Vec<(String, String, String)>,
    /// [`crate::fim::FimStatus`]'s line, e.g. `FIM off: enable_file_events=false`.
    pub fim_status: String,
    /// Where the config in force came from (a path, or `embedded default`).
    pub config_origin: String,
    /// sha1 of the config text in force (osquery's `osquery_info.config_hash`).
    #[serde(default)]
    pub config_hash: String,
    /// How many configs were applied since start (1 after start-up).
    pub config_generation: u64,
    /// The last failed reload, if the latest attempt failed (the previous config stays).
    pub config_error: Option<String>,
}

impl DaemonFlags {
    pub fn new(flags: &Flags, fim_status: String) -> Self {
        Self {
            pid: std::process::id(),
            running: true,
            updated_ns: crate::sys::now_ns(),
            values: FLAGS
                .iter()
                .filter(|d| !d.shell_only)
                .map(|d| {
                    (
                        d.name.to_owned(),
                        flags.get(d.name).to_owned(),
                        flags.source(d.name).to_string(),
                    )
                })
                .collect(),
            fim_status,
            config_origin: String::new(),
            config_hash: String::new(),
            config_generation: 0,
            config_error: None,
        }
    }

    pub fn save(&self, store: &Store) -> Result<(), StorageError> {
        // Serialising plain strings and numbers cannot fail; an empty value reads as "none".
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        store.put_meta(META_KEY, &bytes, false)
    }

    /// The stored value, if there is one and it decodes.
    pub fn load(store: &Store) -> Option<Self> {
        let bytes = store.get_meta(META_KEY).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// True while the daemon that wrote this is alive (it did not exit cleanly, and its pid
    /// still exists). A crashed daemon's values are stale and must not be shown as current.
    pub fn is_live(&self) -> bool {
        self.running && std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// `local` (this process's flags) with every daemon-scope flag replaced by the daemon's
    /// value and source. Shell-only flags stay local: they are this process's output options.
    pub fn overlay(&self, local: &Flags) -> Flags {
        let mut out = local.clone();
        for (name, value, source) in &self.values {
            let Some(def) = lookup(name).filter(|d| !d.shell_only) else {
                continue;
            };
            // A value from another version of the registry may no longer validate: keep ours.
            let (Ok(value), Some(source)) = (validate(def, value), Source::parse(source)) else {
                continue;
            };
            out.values.insert(def.name, (value, source));
        }
        out
    }
}

impl Source {
    /// The inverse of `Display`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "default" => Self::Default,
            "config" => Self::Config,
            "flagfile" => Self::Flagfile,
            "environment" => Self::Environment,
            "command line" => Self::CommandLine,
            _ => return None,
        })
    }
}

/// The flags and FIM status line of a live daemon writing to `store`, with this process's
/// shell-only flags kept from `local`; None when no daemon is running there. What to show
/// otherwise is the caller's choice (`control::flags_view` applies the config's options).
pub fn daemon_view(store: Option<&Store>, local: &Flags) -> Option<(Flags, String)> {
    let d = store
        .and_then(DaemonFlags::load)
        .filter(DaemonFlags::is_live)?;
    let status = d.fim_status.clone();
    Some((d.overlay(local), status))
}

/// One row of `osquery_flags`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagRow {
    pub name: &'static str,
    pub ty: &'static str,
    pub description: String,
    pub default_value: String,
    pub value: String,
    pub shell_only: bool,
    pub source: String,
}

/// Every registry flag, then every alias, as `osquery_flags` rows.
///
/// Alias rows show the alias's *effect*: the value it would read as given its target
/// (inverted where the alias means "disable"), the target's source, and a description that
/// names the target, so `SELECT value FROM osquery_flags WHERE name = 'audit_allow_fim_events'`
/// answers the same question it answers on osquery. `fim_status` is appended to the
/// description of `enable_file_events`, the one FIM switch.
pub fn rows(flags: &Flags, fim_status: &str) -> Vec<FlagRow> {
    let mut out: Vec<FlagRow> = FLAGS
        .iter()
        .map(|d: &FlagDef| FlagRow {
            name: d.name,
            ty: d.ty.name(),
            description: if d.name == "enable_file_events" && !fim_status.is_empty() {
                format!("{} [now: {fim_status}]", d.description)
            } else {
                d.description.to_owned()
            },
            default_value: d.default.to_owned(),
            value: flags.get(d.name).to_owned(),
            shell_only: d.shell_only,
            source: flags.source(d.name).to_string(),
        })
        .collect();
    for a in super::ALIASES {
        let Some(target) = lookup(a.target) else {
            continue;
        };
        out.push(FlagRow {
            name: a.name,
            ty: target.ty.name(),
            description: alias_description(a),
            default_value: a.value_from_target(target.default),
            value: a.value_from_target(flags.get(a.target)),
            shell_only: target.shell_only,
            source: flags.source(a.target).to_string(),
        });
    }
    out
}

pub(super) fn alias_description(a: &AliasDef) -> String {
    let kind = match lookup(a.target).map(|d| d.ty) {
        Some(FlagType::Bool) if a.inverted => " (inverted: true turns it off)",
        _ => "",
    };
    format!("Deprecated osquery name; alias of --{}{kind}", a.target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlay_takes_daemon_values_but_keeps_shell_flags() {
        let mut daemon = Flags::default();
        daemon
            .parse_args(&args(&["--events_max=7", "--json"]), Source::CommandLine)
            .unwrap();
        daemon
            .apply_config_options(&[("events_expiry".into(), "9".into())])
            .unwrap();
        let persisted = DaemonFlags::new(&daemon, "FIM off: x".into());
        let mut local = Flags::default();
        local
            .parse_args(&args(&["--csv", "--events_max=1"]), Source::CommandLine)
            .unwrap();
        let seen = persisted.overlay(&local);
        assert_eq!(
            (seen.get("events_max"), seen.source("events_max")),
            ("7", Source::CommandLine)
        );
        assert_eq!(
            (seen.get("events_expiry"), seen.source("events_expiry")),
            ("9", Source::Config)
        );
        // Output flags are the query process's own.
        assert!(seen.bool("csv"));
        assert!(!seen.bool("json"));
    }

    #[test]
    fn overlay_skips_values_that_no_longer_validate() {
        let mut p = DaemonFlags::new(&Flags::default(), String::new());
        p.values = vec![
            ("events_max".into(), "lots".into(), "config".into()),
            ("no_such_flag".into(), "1".into(), "config".into()),
            ("events_expiry".into(), "5".into(), "martian".into()),
            ("storage_batch_ms".into(), "5".into(), "flagfile".into()),
        ];
        let seen = p.overlay(&Flags::default());
        assert_eq!(seen.get("events_max"), "50000");
        assert_eq!(seen.get("events_expiry"), "3600");
        assert_eq!(
            (
                seen.get("storage_batch_ms"),
                seen.source("storage_batch_ms")
            ),
            ("5", Source::Flagfile)
        );
    }

    #[test]
    fn source_parse_inverts_display() {
        for s in [
            Source::Default,
            Source::Config,
            Source::Flagfile,
            Source::Environment,
            Source::CommandLine,
        ] {
            assert_eq!(Source::parse(&s.to_string()), Some(s));
        }
        assert_eq!(Source::parse("cli"), None);
    }

    #[test]
    fn rows_show_aliases_with_their_effect() {
        let mut f = Flags::default();
        f.parse_args(&args(&["--enable_file_events"]), Source::Flagfile)
            .unwrap();
        let rows = rows(&f, "FIM on: enable_file_events=true, 1 category");
        let get = |n: &str| rows.iter().find(|r| r.name == n).unwrap().clone();
        let e = get("enable_file_events");
        assert_eq!((e.value.as_str(), e.source.as_str()), ("true", "flagfile"));
        assert!(
            e.description
                .ends_with("[now: FIM on: enable_file_events=true, 1 category]"),
            "{}",
            e.description
        );
        let es = get("disable_endpointsecurity_fim");
        assert_eq!(
            (
                es.value.as_str(),
                es.default_value.as_str(),
                es.source.as_str(),
                es.ty
            ),
            ("false", "true", "flagfile", "bool")
        );
        assert_eq!(
            es.description,
            "Deprecated osquery name; alias of --enable_file_events (inverted: true turns it off)"
        );
        let audit = get("audit_allow_fim_events");
        assert_eq!(
            (audit.value.as_str(), audit.default_value.as_str()),
            ("true", "false")
        );
        assert_eq!(rows.len(), FLAGS.len() + super::super::ALIASES.len());
    }

    #[test]
    fn round_trips_through_json() {
        let p = DaemonFlags::new(
            &Flags::default(),
            "FIM off: enable_file_events=false".into(),
        );
        let back: DaemonFlags = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_slice::<DaemonFlags>(b"{\"pid\":").is_err());
    }
}
