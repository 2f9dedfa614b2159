//! Runtime primitives every layer may use: the shutdown broadcast ([`Shutdown`]), counters
//! ([`counters`]), a swappable shared value ([`Watch`]) and supervised threads
//! ([`supervise`]). Nothing here touches the OS beyond spawning threads, and nothing here
//! knows about events, storage or SQL.

pub mod counters;
pub mod status;
pub mod supervise;
mod watch;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

pub use watch::Watch;

/// The one stop signal of the daemon: the signal handlers, a failed component and tests set
/// it; every thread polls [`Shutdown::is_set`] and every control-plane task awaits
/// [`Shutdown::wait`].
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    flag: Arc<AtomicBool>,
    notify: tokio::sync::Notify,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    /// The flag itself, for signal handlers (`signal_hook::flag::register`). A signal sets it
    /// without waking async waiters; [`Shutdown::wait`] also polls the flag.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.flag.clone()
    }

    /// Resolves once the shutdown is triggered (by [`Shutdown::trigger`] or a signal).
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_set() {
                return;
            }
            // A signal handler cannot notify; poll the flag at a human pace as well.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), notified).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_after_trigger_and_after_a_bare_flag_store() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let s = Shutdown::default();
        let s2 = s.clone();
        rt.block_on(async move {
            let waiter = tokio::spawn(async move { s2.wait().await });
            s.trigger();
            waiter.await.unwrap();
        });
        let s = Shutdown::default();
        s.flag().store(true, Ordering::SeqCst);
        rt.block_on(s.wait());
        assert!(s.is_set());
    }
}
