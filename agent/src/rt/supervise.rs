//! Supervised threads and tasks: a panic is caught, logged with its component's name,
//! counted, and turned into a daemon stop with a failure, never a silent dead thread.
//!
//! Policy: a hot-path component (publisher, writer, retention) cannot be restarted without
//! losing its place (a ring buffer, a half-built batch), so its panic stops the daemon, which
//! flushes what the others hold and exits non-zero; the service manager restarts it
//! (`Restart=on-failure`). Control-plane tasks follow the same rule.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use super::{Shutdown, counters::Counter};

/// A component that panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("component `{component}` panicked: {message}")]
pub struct Failure {
    pub component: String,
    pub message: String,
}

/// Spawns components and remembers which of them failed.
#[derive(Debug, Clone)]
pub struct Supervisor {
    shutdown: Shutdown,
    failures: Arc<Mutex<Vec<Failure>>>,
    panics: Arc<Counter>,
}

/// A supervised thread; [`Supervised::join`] reports its panic instead of hiding it.
#[derive(Debug)]
pub struct Supervised {
    component: &'static str,
    handle: JoinHandle<()>,
}

impl Supervised {
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// Waits for the thread. A panic was already logged and counted when it happened.
    pub fn join(self) -> Result<(), Failure> {
        self.handle.join().map_err(|p| Failure {
            component: self.component.into(),
            message: panic_message(p.as_ref()),
        })
    }
}

impl Supervisor {
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            failures: Arc::default(),
            panics: Arc::default(),
        }
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Panics caught so far.
    pub fn panics(&self) -> u64 {
        self.panics.get()
    }

    /// The first component that failed, if any.
    pub fn first_failure(&self) -> Option<Failure> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }

    /// Records a failure: logs it, counts it, and stops the daemon.
    pub fn fail(&self, component: &str, message: String) {
        log::error!("component `{component}` panicked: {message}; stopping the daemon");
        self.panics.add(1);
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Failure {
                component: component.into(),
                message,
            });
        self.shutdown.trigger();
    }

    /// Runs `f` on a thread named `component`; a panic in it is caught and reported.
    pub fn spawn(
        &self,
        component: &'static str,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Supervised> {
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name(component.into())
            .spawn(move || {
                if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
                    me.fail(component, panic_message(p.as_ref()));
                    // Let `join` see the panic too.
                    std::panic::resume_unwind(p);
                }
            })?;
        Ok(Supervised { component, handle })
    }

    /// Runs `fut` as a task of the control-plane runtime; a panic stops the daemon as for a
    /// thread.
    pub fn spawn_task(
        &self,
        rt: &tokio::runtime::Handle,
        component: &'static str,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let task = rt.spawn(fut);
        rt.spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
            {
                me.fail(component, panic_message(e.into_panic().as_ref()));
            }
        })
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_thread_is_reported_counted_and_stops_everything() {
        let sup = Supervisor::new(Shutdown::default());
        let ok = sup.spawn("fine", || {}).unwrap();
        let bad = sup.spawn("broken", || panic!("injected")).unwrap();
        assert_eq!(ok.join(), Ok(()));
        let err = bad.join().unwrap_err();
        assert_eq!(err.component, "broken");
        assert_eq!(err.message, "injected");
        assert!(sup.shutdown().is_set());
        assert_eq!(sup.panics(), 1);
        assert_eq!(
            sup.first_failure().map(|f| f.to_string()),
            Some("component `broken` panicked: injected".into())
        );
    }

    #[test]
    fn a_panicking_task_stops_everything() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sup = Supervisor::new(Shutdown::default());
        let h = sup.spawn_task(rt.handle(), "task", async { panic!("boom {}", 1) });
        rt.block_on(h).unwrap();
        assert!(sup.shutdown().is_set());
        assert_eq!(sup.first_failure().unwrap().message, "boom 1");
    }
}
