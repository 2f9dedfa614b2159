//! The `osprey` command line: `daemon`, `query`, `shell`, `flags`. Errors become a message on
//! stderr and a non-zero exit code here, in one place.

pub mod output;
pub mod shell;

use std::{process::ExitCode, sync::Arc};

use anyhow::{Context as _, Result, bail};

use crate::{
    flags::{self, Flags},
    sql::{Engine, TableEnv},
    storage::Store,
};
use output::Mode;

const USAGE: &str = "\
usage: osprey <command> [--flag=value ...]

commands:
  daemon           capture events and store them until SIGINT/SIGTERM
  query SQL        run SQL against live state and the daemon's stored events
  shell            interactive SQL shell
  flags            list every flag (--markdown: as the docs table)
  extension uninstall NAME
                   drop an extension's stored data (through the running daemon, if any)
  help             this text
";

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("osprey: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(flags: &Flags) {
    let level = if flags.verbose() { "debug" } else { "info" };
    let logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .build();
    let max = logger.filter();
    // The daemon also turns its log lines into status lines (rt::status).
    let _ = crate::rt::status::Tee::install(Box::new(logger), max);
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    let cmd = cmd.as_str();
    if matches!(cmd, "help" | "--help" | "-h") {
        print!("{USAGE}{}", flags::help_text());
        return Ok(ExitCode::SUCCESS);
    }
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}{}", flags::help_text());
        return Ok(ExitCode::SUCCESS);
    }
    if cmd == "flags" {
        match rest {
            [] => print!("{}", flags::help_text()),
            [m] if m == "--markdown" => print!("{}", flags::markdown()),
            _ => bail!("usage: osprey flags [--markdown]"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cmd == crate::watchdog::COMMAND {
        // Hidden: the daemon's query worker (watchdog), flags and queries on stdin.
        crate::watchdog::serve(|flags| env(flags).map_err(|e| format!("{e:#}")))?;
        return Ok(ExitCode::SUCCESS);
    }
    if cmd == "fs-worker" {
        // Hidden: the daemon's file-system helper (sys::fsguard), one request per line.
        crate::sys::fsguard::serve(crate::fim::fsops::handle)?;
        return Ok(ExitCode::SUCCESS);
    }
    #[cfg(feature = "bench")]
    if let Some(code) = bench_command(cmd, rest)? {
        return Ok(code);
    }
    let (flags, positional) = Flags::from_sources(rest, std::env::vars())?;
    init_logging(&flags);
    // Deprecated names and conflicting values: the daemon logs them with its config
    // (config::live); the other commands print them here.
    if cmd != "daemon" {
        for w in flags.warnings() {
            eprintln!("osprey: warning: {w}");
        }
    }
    match cmd {
        "daemon" => {
            if let Some(extra) = positional.first() {
                bail!("`osprey daemon` takes no argument (got {extra:?})");
            }
            crate::daemon::main(&flags)?;
            Ok(ExitCode::SUCCESS)
        }
        "query" => {
            let sql = if positional.is_empty() {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .context("reading SQL from stdin")?;
                s
            } else {
                positional.join(" ")
            };
            if sql.trim().is_empty() {
                bail!("no SQL given: osprey query \"SELECT ...\"");
            }
            let engine = engine(&flags)?;
            match engine.query(&sql) {
                Ok(rs) => {
                    print!("{}", output::render(&rs, mode(&flags), flags.header()));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        "shell" => {
            if let Some(extra) = positional.first() {
                bail!(
                    "`osprey shell` takes no argument (got {extra:?}); use `osprey query` for one statement"
                );
            }
            let engine = engine(&flags)?;
            shell::Shell::new(engine, mode(&flags), flags.header()).run()?;
            Ok(ExitCode::SUCCESS)
        }
        "extension" => extension_command(&flags, &positional),
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

/// `osprey extension uninstall NAME`: drops an extension's stored data, through the running
/// daemon's manager when one answers, else in the store itself (the daemon stopped).
fn extension_command(flags: &Flags, positional: &[String]) -> Result<ExitCode> {
    let [verb, name] = positional else {
        bail!("usage: osprey extension uninstall NAME");
    };
    if verb != "uninstall" {
        bail!(
            "unknown `osprey extension` command {verb:?}; usage: osprey extension uninstall NAME"
        );
    }
    let socket = flags.path("extensions_socket");
    let timeout = std::time::Duration::from_secs(flags.u64("extensions_timeout").max(1));
    let removed = match socket
        .filter(|p| p.exists())
        .map(|p| crate::extensions::uninstall(&p, timeout, name))
    {
        Some(Ok(Some(removed))) => removed,
        Some(Err(e)) => bail!("{e}"),
        // No manager answers: the daemon is stopped, the store can be opened.
        Some(Ok(None)) | None => {
            let path = flags
                .database_path()
                .context("--database_path must not be empty")?;
            let store = Store::open_primary(&path)
                .with_context(|| format!("opening {} (is a daemon running?)", path.display()))?;
            store.uninstall(name)?
        }
    };
    println!(
        "{}",
        if removed {
            format!("extension {name}: stored data removed")
        } else {
            format!("extension {name}: had no stored data")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The hidden measurements behind `cargo xtask bench` (built with `--features bench`); each
/// prints JSON.
#[cfg(feature = "bench")]
fn bench_command(cmd: &str, rest: &[String]) -> Result<Option<ExitCode>> {
    let json = match cmd {
        "bench-ingest" => {
            let (events, dir, sync) = crate::bench::ingest::parse_args(rest)?;
            serde_json::to_string(&crate::bench::ingest::ingest_bench(&dir, events, sync)?)?
        }
        "bench-query" => {
            let (events, dir) =
                crate::bench::query::parse_args(rest).map_err(anyhow::Error::msg)?;
            let r = crate::bench::query::query_bench(&dir, events).map_err(anyhow::Error::msg)?;
            serde_json::to_string(&r)?
        }
        "bench-logger" => {
            let (lines, dir) =
                crate::bench::logger::parse_args(rest).map_err(anyhow::Error::msg)?;
            serde_json::to_string(
                &crate::bench::logger::logger_bench(&dir, lines).map_err(anyhow::Error::msg)?,
            )?
        }
        _ => return Ok(None),
    };
    println!("{json}");
    Ok(Some(ExitCode::SUCCESS))
}

fn mode(flags: &Flags) -> Mode {
    if flags.json() {
        Mode::Json
    } else if flags.csv() {
        Mode::Csv
    } else if flags.line() {
        Mode::Line
    } else {
        Mode::Pretty
    }
}

/// The SQL environment of `osprey query` and `shell`: live tables, every source's event
/// table, and the config-aware `osquery_flags`.
pub fn table_env(store: Option<Arc<Store>>, flags: &Flags) -> TableEnv {
    let env = TableEnv::new(store, Arc::new(flags.clone()))
        .with_tables(crate::sources::tables())
        .with_flags_view(Arc::new(crate::control::flags_view));
    // A running daemon's extensions, through its manager (as `osqueryi --connect`).
    let via = (!flags.bool("disable_extensions"))
        .then(|| flags.path("extensions_socket"))
        .flatten()
        .filter(|p| p.exists())
        .and_then(|p| {
            let timeout = std::time::Duration::from_secs(flags.u64("extensions_timeout").max(1));
            crate::extensions::ViaManager::connect(&p, timeout)
        });
    match via {
        Some(v) => env.with_dynamic(Arc::new(v)),
        None => env,
    }
}

/// An engine over the daemon's store (as a secondary) when the database exists. Without one,
/// live tables still work and event tables are empty, with a warning.
fn engine(flags: &Flags) -> Result<Engine> {
    Engine::new(env(flags)?).context("setting up SQL tables")
}

/// The tables of [`engine`].
fn env(flags: &Flags) -> Result<TableEnv> {
    let store = match flags.database_path() {
        Some(p)
            if std::fs::metadata(p.join("CURRENT"))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied) =>
        {
            anyhow::bail!(
                "permission denied: the event database at {} is readable by its owner only (the daemon keeps it private); run osprey as root",
                p.display()
            )
        }
        Some(p) if p.join("CURRENT").exists() => Some(Arc::new(
            Store::open_secondary(&p).with_context(|| format!("opening {}", p.display()))?,
        )),
        Some(p) => {
            eprintln!(
                "osprey: warning: no event database at {} (is `osprey daemon` running with this --database_path?); event tables are empty",
                p.display()
            );
            None
        }
        None => None,
    };
    Ok(table_env(store, flags))
}
