//! Typed accessors for the flags the agent's own code reads, generated from one list: a
//! misspelt name fails the test below instead of reading a default at run time, and the
//! type is the flag's (`u64`, `bool`, a path, a word).

use std::path::PathBuf;

use super::Flags;

macro_rules! accessors {
    (
        u64: [$($u:ident),* $(,)?],
        bool: [$($b:ident),* $(,)?],
        path: [$($p:ident),* $(,)?],
        word: [$($w:ident),* $(,)?] $(,)?
    ) => {
        impl Flags {
            $(#[doc = concat!("`--", stringify!($u), "`")]
            pub fn $u(&self) -> u64 { self.u64(stringify!($u)) })*
            $(#[doc = concat!("`--", stringify!($b), "`")]
            pub fn $b(&self) -> bool { self.bool(stringify!($b)) })*
            $(#[doc = concat!("`--", stringify!($p), "`; None when empty")]
            pub fn $p(&self) -> Option<PathBuf> { self.path(stringify!($p)) })*
            $(#[doc = concat!("`--", stringify!($w), "`")]
            pub fn $w(&self) -> &str { self.get(stringify!($w)) })*
        }

        /// (name, accessor kind) of every typed accessor.
        #[cfg(test)]
        const TYPED: &[(&str, &str)] = &[
            $((stringify!($u), "u64"),)*
            $((stringify!($b), "bool"),)*
            $((stringify!($p), "path"),)*
            $((stringify!($w), "word"),)*
        ];
    };
}

accessors! {
    u64: [
        events_max, events_expiry, events_max_bytes, storage_batch_ms, storage_batch_events,
        ring_buffer_bytes, read_max, hash_cache_max, event_queue_size, event_queue_bytes,
        config_refresh, enrichment_timeout_ms,
        exec_args_max, exec_env_max,
    ],
    bool: [
        disable_events, enable_process_events, enable_file_events, enable_socket_events,
        verbose, header, json, csv, line,
    ],
    path: [database_path, config_path, flagfile, pidfile],
    word: [storage_sync, event_queue_policy, ebpf_log_level, ebpf_hooks],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{FlagType, lookup};

    #[test]
    fn every_accessor_names_a_registry_flag_of_its_type() {
        for (name, kind) in TYPED {
            let def = lookup(name).unwrap_or_else(|| panic!("{name} is not a flag"));
            let ok = matches!(
                (*kind, def.ty),
                ("u64", FlagType::Int)
                    | ("bool", FlagType::Bool)
                    | ("path", FlagType::Path)
                    | ("word", FlagType::Str | FlagType::Choice(_))
            );
            assert!(ok, "{name}: accessor {kind}, flag {:?}", def.ty);
        }
    }
}
