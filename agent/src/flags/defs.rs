//! Every flag Osprey knows, in one list. Adding a flag is one entry here; `--help`, the
//! `osquery_flags` table and `docs/flags.md` are generated from this list.

use super::{AliasDef, FlagDef, FlagType::*};

pub const FLAGS: &[FlagDef] = &[
    // Storage and the event pipeline.
    FlagDef {
        name: "database_path",
        ty: Path,
        default: "/var/lib/osprey/osprey.db",
        description: "Directory of the RocksDB event store",
        shell_only: false,
    },
    FlagDef {
        name: "events_expiry",
        ty: Int,
        default: "3600",
        description: "Seconds events are kept before background expiry deletes them (0 = keep)",
        shell_only: false,
    },
    FlagDef {
        name: "events_max",
        ty: Int,
        default: "50000",
        description: "Most events kept per event table; older ones are expired first (0 = no cap)",
        shell_only: false,
    },
    FlagDef {
        name: "events_max_bytes",
        ty: Int,
        default: "0",
        description: "Approximate on-disk bytes kept per event table (SST files plus unflushed memtables); the oldest events are expired first (0 = no cap)",
        shell_only: false,
    },
    FlagDef {
        name: "disable_events",
        ty: Bool,
        default: "false",
        description: "Turn every event publisher off",
        shell_only: false,
    },
    FlagDef {
        name: "enable_file_events",
        ty: Bool,
        default: "false",
        description: "The one switch for file integrity monitoring (file_events over the config's file_paths); osquery's other FIM switches are aliases of it",
        shell_only: false,
    },
    FlagDef {
        name: "read_max",
        ty: Int,
        default: "52428800",
        description: "Largest file (bytes) that is read, e.g. hashed for file_events; larger files are not hashed (hashed = 0)",
        shell_only: false,
    },
    FlagDef {
        name: "hash_cache_max",
        ty: Int,
        default: "500",
        description: "Most file hashes kept in the cache keyed by (device, inode, mtime, size) (0 = no cache)",
        shell_only: false,
    },
    FlagDef {
        name: "enable_process_events",
        ty: Bool,
        default: "true",
        description: "Capture process exec and exit events from the kernel",
        shell_only: false,
    },
    FlagDef {
        name: "enable_socket_events",
        ty: Bool,
        default: "false",
        description: "Capture connect, bind, listen and accept (IPv4, IPv6, unix) from the kernel into socket_events",
        shell_only: false,
    },
    FlagDef {
        name: "ring_buffer_bytes",
        ty: Int,
        default: "8388608",
        description: "Size of each kernel ring buffer in bytes (a power of two, at least 4096)",
        shell_only: false,
    },
    FlagDef {
        name: "event_queue_size",
        ty: Int,
        default: "65536",
        description: "Capacity of the queue between the kernel reader and the storage writer",
        shell_only: false,
    },
    FlagDef {
        name: "event_queue_bytes",
        ty: Int,
        default: "16777216",
        description: "Most bytes the events in the queue between the kernel reader and the storage writer may hold (an exec with thousands of arguments holds ~100 KB); full is handled by event_queue_policy like a full count",
        shell_only: false,
    },
    FlagDef {
        name: "enrichment_timeout_ms",
        ty: Int,
        default: "1000",
        description: "Longest wait for a file system while adding metadata and hashes to a stored event; a file system that does not answer (a hung FUSE or network mount) is skipped for 30 s and its rows are stored without them (file_events.enriched = 0)",
        shell_only: false,
    },
    FlagDef {
        name: "event_queue_policy",
        ty: Choice(&["block", "drop_newest"]),
        default: "block",
        description: "When the queue is full: block the reader (the kernel ring buffer then counts drops) or drop the new event (counted)",
        shell_only: false,
    },
    FlagDef {
        name: "storage_batch_events",
        ty: Int,
        default: "4096",
        description: "Most events in one RocksDB write batch",
        shell_only: false,
    },
    FlagDef {
        name: "storage_batch_ms",
        ty: Int,
        default: "50",
        description: "Longest time an event waits before its batch is written (milliseconds)",
        shell_only: false,
    },
    FlagDef {
        name: "storage_sync",
        ty: Choice(&["none", "batch"]),
        default: "batch",
        description: "Durability of writes: none (WAL written, not fsynced) or batch (fsync per batch)",
        shell_only: false,
    },
    FlagDef {
        name: "exec_args_max",
        ty: Int,
        default: "4095",
        description: "Most argv bytes kept per exec (at most 4095); longer command lines are cut and flagged",
        shell_only: false,
    },
    FlagDef {
        name: "ebpf_hooks",
        ty: Choice(&["auto", "tracepoint"]),
        default: "auto",
        description: "Kernel hooks: auto (probe the kernel and add fentry hooks where it accepts them, e.g. for io_uring opens) or tracepoint (the tracepoint base only). The choice per event type is logged and shown in osquery_events.hook",
        shell_only: false,
    },
    FlagDef {
        name: "ebpf_log_level",
        ty: Choice(&["off", "error", "warn", "info", "debug", "trace"]),
        default: "off",
        description: "Kernel-side diagnostics of the eBPF programs (aya-log), read into the daemon's log at this level and above; off: the programs skip every log statement",
        shell_only: false,
    },
    FlagDef {
        name: "exec_env_max",
        ty: Int,
        default: "0",
        description: "Most environment bytes kept per exec (at most 4095) for process_events.env; 0 = the environment is not captured. Environments can hold secrets: opt in knowingly",
        shell_only: false,
    },
    // Configuration.
    FlagDef {
        name: "config_path",
        ty: Path,
        default: "",
        description: "osquery JSON config file (empty: the embedded default)",
        shell_only: false,
    },
    FlagDef {
        name: "config_refresh",
        ty: Int,
        default: "0",
        description: "Seconds between re-reads of the config (0 = only at start-up and on SIGHUP); a bad config keeps the last good one",
        shell_only: false,
    },
    FlagDef {
        name: "flagfile",
        ty: Path,
        default: "",
        description: "File of --name=value lines, one flag per line; # starts a comment",
        shell_only: false,
    },
    FlagDef {
        name: "pidfile",
        ty: Path,
        default: "",
        description: "Where the daemon writes its pid once events flow (empty: <database_path>/osprey.pid)",
        shell_only: false,
    },
    FlagDef {
        name: "verbose",
        ty: Bool,
        default: "false",
        description: "Log at debug level",
        shell_only: false,
    },
    // Shell and query output.
    FlagDef {
        name: "json",
        ty: Bool,
        default: "false",
        description: "Print results as a JSON array of objects",
        shell_only: true,
    },
    FlagDef {
        name: "csv",
        ty: Bool,
        default: "false",
        description: "Print results as |-separated values with a header",
        shell_only: true,
    },
    FlagDef {
        name: "line",
        ty: Bool,
        default: "false",
        description: "Print each column on its own line",
        shell_only: true,
    },
    FlagDef {
        name: "header",
        ty: Bool,
        default: "true",
        description: "Print column names in csv and pretty modes",
        shell_only: true,
    },
];

/// osquery's other names for an existing flag. Each is accepted from every source (command
/// line, environment, flagfile, config `options`), sets its target, and logs a deprecation
/// warning, so that no two names can silently start or stop the same subsystem.
pub const ALIASES: &[AliasDef] = &[
    // osquery's Linux audit-based FIM switch (process_file_events).
    AliasDef {
        name: "audit_allow_fim_events",
        target: "enable_file_events",
        inverted: false,
    },
    // osquery's Windows FIM switch (ntfs_journal_events).
    AliasDef {
        name: "enable_ntfs_event_publisher",
        target: "enable_file_events",
        inverted: false,
    },
    // osquery's macOS EndpointSecurity FIM switch: `true` means off.
    AliasDef {
        name: "disable_endpointsecurity_fim",
        target: "enable_file_events",
        inverted: true,
    },
    // osquery declares the next two itself with FLAG_ALIAS (config/config.cpp,
    // database/database.cpp).
    AliasDef {
        name: "config_tls_refresh",
        target: "config_refresh",
        inverted: false,
    },
    AliasDef {
        name: "db_path",
        target: "database_path",
        inverted: false,
    },
];
