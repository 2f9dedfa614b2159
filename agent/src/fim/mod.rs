//! File integrity monitoring, configuration side: path patterns ([`pattern`]), file hashing
//! ([`hash`]), and the one on/off decision ([`fim_status`]).
//!
//! FIM has exactly one switch, `--enable_file_events`; `--disable_events` turns every publisher
//! off; osquery's other FIM switches are aliases of `enable_file_events` (see `flags::ALIASES`).

pub mod fsops;
pub mod hash;
pub mod pattern;

use std::fmt;

pub use pattern::FimMatcher;

use crate::flags::Flags;

/// What the file source follows: whether FIM is on, the matcher of the config in force, and
/// whether read-only accesses are wanted. The control plane replaces it after each reload.
#[derive(Clone, Debug, Default)]
pub struct FimState {
    pub on: bool,
    pub matcher: FimMatcher,
    /// The config has `file_accesses`: the kernel reports reads too.
    pub report_reads: bool,
}

impl FimState {
    /// The literal prefixes the kernel filter needs (a superset of what the matcher keeps).
    pub fn kernel_prefixes(&self) -> Vec<String> {
        self.matcher
            .kernel_prefixes()
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }
}

/// The effective FIM state and why, plus warnings for settings that contradict each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FimStatus {
    pub on: bool,
    /// The deciding setting, e.g. `disable_events=true`.
    pub reason: String,
    pub categories: usize,
    pub warnings: Vec<String>,
}

impl fmt::Display for FimStatus {
    /// One line: `FIM on: enable_file_events=true (config), 3 categories`, then each warning
    /// as `; warning: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FIM {}: {}",
            if self.on { "on" } else { "off" },
            self.reason
        )?;
        if self.on {
            write!(
                f,
                ", {} categor{}",
                self.categories,
                if self.categories == 1 { "y" } else { "ies" }
            )?;
        }
        for w in &self.warnings {
            write!(f, "; warning: {w}")?;
        }
        Ok(())
    }
}

/// Whether FIM runs with these flags and a config of `categories` non-empty `file_paths`
/// categories, and why.
pub fn fim_status(flags: &Flags, categories: usize) -> FimStatus {
    let enable = flags.enable_file_events();
    let setting = |name: &str| format!("{name}={} ({})", flags.get(name), flags.source(name));
    let mut warnings = Vec::new();
    let (on, reason) = if flags.disable_events() {
        if enable {
            warnings.push(format!(
                "{} has no effect while disable_events=true",
                setting("enable_file_events")
            ));
        }
        (false, setting("disable_events"))
    } else {
        (enable, setting("enable_file_events"))
    };
    if on && categories == 0 {
        warnings.push("file_paths is empty: nothing is watched".into());
    }
    if !on && categories > 0 {
        warnings.push(format!(
            "the config lists {categories} file_paths categor{}, but FIM is off",
            if categories == 1 { "y" } else { "ies" }
        ));
    }
    FimStatus {
        on,
        reason,
        categories,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Source;

    /// The number of non-empty categories, as the config counts them.
    fn config(categories: &[(&str, &[&str])]) -> usize {
        categories.iter().filter(|(_, p)| !p.is_empty()).count()
    }

    fn flags(args: &[&str]) -> Flags {
        let mut f = Flags::default();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        f.parse_args(&args, Source::CommandLine).unwrap();
        f
    }

    #[test]
    fn status_lines() {
        let three = config(&[("a", &["/a"]), ("b", &["/b"]), ("c", &["/c/%%"])]);
        let cases: &[(&[&str], &usize, &str)] = &[
            (
                &["--enable_file_events"],
                &three,
                "FIM on: enable_file_events=true (command line), 3 categories",
            ),
            (
                &["--audit_allow_fim_events"],
                &config(&[("a", &["/a"])]),
                "FIM on: enable_file_events=true (command line), 1 category",
            ),
            (
                &["--enable_file_events", "--disable_events"],
                &three,
                "FIM off: disable_events=true (command line); warning: enable_file_events=true \
                 (command line) has no effect while disable_events=true; warning: the config \
                 lists 3 file_paths categories, but FIM is off",
            ),
            (
                &[],
                &config(&[("a", &["/a"])]),
                "FIM off: enable_file_events=false (default); warning: the config lists 1 \
                 file_paths category, but FIM is off",
            ),
            (&[], &0, "FIM off: enable_file_events=false (default)"),
            (
                &["--enable_file_events"],
                &config(&[("empty", &[])]),
                "FIM on: enable_file_events=true (command line), 0 categories; warning: \
                 file_paths is empty: nothing is watched",
            ),
            (
                &["--disable_endpointsecurity_fim=false"],
                &0,
                "FIM on: enable_file_events=true (command line), 0 categories; warning: \
                 file_paths is empty: nothing is watched",
            ),
        ];
        for (args, cfg, want) in cases {
            let s = fim_status(&flags(args), **cfg);
            assert_eq!(s.to_string(), *want, "{args:?}");
        }
    }
}
