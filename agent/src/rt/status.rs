//! The daemon's own log lines as osquery status lines: [`Tee`] is the process logger; it
//! writes every record through the inner logger (stderr) and, once the daemon has set a hook
//! ([`set_hook`]), hands each INFO, WARN and ERROR record to it as (severity 0/1/2, file, line,
//! message), where it becomes a status line in the log buffer. Records logged with the target
//! [`DAEMON_LOG_ONLY`] are not handed over, and a record logged while the hook runs is not
//! either (no loop).

use std::{
    cell::Cell,
    sync::{Mutex, OnceLock},
};

/// The target of log records that stay in the daemon log: the scheduler's own status lines
/// (it buffers them itself) and the loggers' delivery failures (they would go back into the
/// logger that is failing).
pub const DAEMON_LOG_ONLY: &str = "osprey::daemon_log_only";

/// Where status lines go: (severity, source file, line, message).
pub type Hook = Box<dyn Fn(u8, &str, u32, &str) + Send + Sync>;

fn hook() -> &'static Mutex<Option<Hook>> {
    static HOOK: OnceLock<Mutex<Option<Hook>>> = OnceLock::new();
    HOOK.get_or_init(|| Mutex::new(None))
}

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Sets (Some) or removes (None) where status lines go.
pub fn set_hook(h: Option<Hook>) {
    *hook().lock().unwrap_or_else(|p| p.into_inner()) = h;
}

pub struct Tee {
    inner: Box<dyn log::Log>,
}

impl Tee {
    /// Makes a `Tee` over `inner` the process logger, at `max`.
    pub fn install(
        inner: Box<dyn log::Log>,
        max: log::LevelFilter,
    ) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(Self { inner }))?;
        log::set_max_level(max);
        Ok(())
    }
}

/// osquery's severities: 0 info, 1 warning, 2 error; None below info.
pub fn severity(level: log::Level) -> Option<u8> {
    match level {
        log::Level::Error => Some(2),
        log::Level::Warn => Some(1),
        log::Level::Info => Some(0),
        _ => None,
    }
}

impl log::Log for Tee {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        self.inner.log(record);
        let Some(sev) = severity(record.level()) else {
            return;
        };
        // librdkafka's own connection messages are a logger's delivery failures too.
        if matches!(record.target(), DAEMON_LOG_ONLY | "librdkafka") || IN_HOOK.with(Cell::get) {
            return;
        }
        let guard = hook().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = guard.as_ref() {
            IN_HOOK.with(|f| f.set(true));
            h(
                sev,
                record.file().unwrap_or_default(),
                record.line().unwrap_or(0),
                &record.args().to_string(),
            );
            IN_HOOK.with(|f| f.set(false));
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
