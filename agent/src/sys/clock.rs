//! The one time base: kernel times (CLOCK_MONOTONIC, `bpf_ktime_get_ns()`) mapped to wall time,
//! shared by every publisher's event times and by retention's "now".
//!
//! The mapping (realtime − monotonic) is re-derived continuously, at most every
//! [`REDERIVE_NS`] of kernel time, so a clock step (NTP, an operator) of [`STEP_NS`] or more
//! moves new event times with it; smaller differences are read noise and leave it as it is
//! (else two events microseconds apart could swap places). Before, each publisher fixed the offset when it started: after a step forward by
//! more than `events_expiry`, retention (which reads the wall clock) deleted every new event as
//! expired.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicI64, AtomicU64, Ordering},
};

/// How often (in kernel time) the mapping is re-derived.
pub const REDERIVE_NS: u64 = 10_000_000;

/// The smallest change of the offset that is taken for a clock step (see `Clock::derive`).
pub const STEP_NS: i64 = 50_000_000;

/// Where the clocks are read: the system's, or a test's.
pub trait ClockSource: Send + Sync {
    fn realtime_ns(&self) -> i128;
    fn monotonic_ns(&self) -> i128;
}

/// CLOCK_REALTIME and CLOCK_MONOTONIC.
#[derive(Debug)]
pub struct SystemClocks;

fn ns(t: rustix::time::Timespec) -> i128 {
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

impl ClockSource for SystemClocks {
    fn realtime_ns(&self) -> i128 {
        ns(rustix::time::clock_gettime(rustix::time::ClockId::Realtime))
    }
    fn monotonic_ns(&self) -> i128 {
        ns(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ))
    }
}

/// A shared kernel-time → wall-time mapping. Clones share one mapping.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

struct Inner {
    source: Box<dyn ClockSource>,
    /// realtime − monotonic, ns.
    offset: AtomicI64,
    /// The monotonic time of the last derivation.
    derived_at: AtomicU64,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("offset", &self.inner.offset.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Clock {
    /// The process's clock on the system clocks: one mapping for every publisher and retention.
    pub fn now() -> Self {
        static SYSTEM: OnceLock<Clock> = OnceLock::new();
        SYSTEM
            .get_or_init(|| Self::with_source(Box::new(SystemClocks)))
            .clone()
    }

    /// A clock on other clocks (tests inject stepped ones).
    pub fn with_source(source: Box<dyn ClockSource>) -> Self {
        let c = Self {
            inner: Arc::new(Inner {
                source,
                offset: AtomicI64::new(0),
                derived_at: AtomicU64::new(0),
            }),
        };
        c.derive();
        c
    }

    /// Reads the offset again. The realtime read is bracketed by two monotonic reads and the
    /// tightest of a few brackets is used; an offset that moved by less than [`STEP_NS`] (the
    /// noise of reading two clocks one after the other, largest on slow or emulated
    /// machines) is kept as it was, so that two events a few microseconds apart can never
    /// swap places in wall time. Only a real step (NTP, an operator) moves the mapping.
    fn derive(&self) {
        let src = &self.inner.source;
        let mut best: Option<(i128, i128, i128)> = None;
        for _ in 0..3 {
            let m1 = src.monotonic_ns();
            let rt = src.realtime_ns();
            let m2 = src.monotonic_ns();
            let window = m2 - m1;
            if best.is_none_or(|(w, _, _)| window < w) {
                best = Some((window, rt - (m1 + m2) / 2, m2));
            }
        }
        let Some((window, offset, mono)) = best else {
            return;
        };
        let offset = i64::try_from(offset).unwrap_or(0);
        let first = self.inner.derived_at.load(Ordering::Relaxed) == 0;
        let old = self.inner.offset.load(Ordering::Relaxed);
        if first || (window < i128::from(STEP_NS) && offset.abs_diff(old) >= STEP_NS as u64) {
            self.inner.offset.store(offset, Ordering::Relaxed);
        }
        self.inner
            .derived_at
            .store(u64::try_from(mono).unwrap_or(1).max(1), Ordering::Relaxed);
    }

    /// Wall time (ns since the epoch) of the kernel time `mono_ns`; 0 stays 0 (unknown).
    pub fn wall_ns(&self, mono_ns: u64) -> u64 {
        if mono_ns == 0 {
            return 0;
        }
        if mono_ns.saturating_sub(self.inner.derived_at.load(Ordering::Relaxed)) >= REDERIVE_NS {
            self.derive();
        }
        let wall = i128::from(mono_ns) + i128::from(self.inner.offset.load(Ordering::Relaxed));
        u64::try_from(wall).unwrap_or(0)
    }

    /// Now, as wall time through the same mapping (retention's "now").
    pub fn now_wall_ns(&self) -> u64 {
        let mono = u64::try_from(self.inner.source.monotonic_ns()).unwrap_or(0);
        self.wall_ns(mono.max(1))
    }
}

#[cfg(test)]
pub mod testing {
    //! A clock source whose wall clock a test steps.
    use std::sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    };

    use super::ClockSource;

    #[derive(Debug, Clone, Default)]
    pub struct Stepped {
        pub mono: Arc<AtomicI64>,
        /// realtime − monotonic.
        pub step: Arc<AtomicI64>,
    }

    impl Stepped {
        pub fn at(wall_ns: i64, mono_ns: i64) -> Self {
            let s = Self::default();
            s.mono.store(mono_ns, Ordering::SeqCst);
            s.step.store(wall_ns - mono_ns, Ordering::SeqCst);
            s
        }
        pub fn advance(&self, ns: i64) {
            self.mono.fetch_add(ns, Ordering::SeqCst);
        }
        /// The wall clock jumps by `ns` (monotonic time does not).
        pub fn step_wall(&self, ns: i64) {
            self.step.fetch_add(ns, Ordering::SeqCst);
        }
    }

    impl ClockSource for Stepped {
        fn realtime_ns(&self) -> i128 {
            i128::from(self.mono.load(Ordering::SeqCst) + self.step.load(Ordering::SeqCst))
        }
        fn monotonic_ns(&self) -> i128 {
            i128::from(self.mono.load(Ordering::SeqCst))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{testing::Stepped, *};

    #[test]
    fn a_wall_clock_step_moves_new_event_times_with_it() {
        let src = Stepped::at(1_700_000_000_000_000_000, 5_000_000_000);
        let clock = Clock::with_source(Box::new(src.clone()));
        assert_eq!(clock.wall_ns(5_000_000_000), 1_700_000_000_000_000_000);
        assert_eq!(clock.now_wall_ns(), 1_700_000_000_000_000_000);
        // The wall clock jumps an hour ahead; a kernel time just after it maps after the jump.
        src.step_wall(3_600_000_000_000);
        src.advance(REDERIVE_NS as i64);
        let t = 5_000_000_000 + REDERIVE_NS;
        assert_eq!(clock.wall_ns(t), 1_700_003_600_000_000_000 + REDERIVE_NS);
        // An older kernel time keeps the mapping in force (it is not a reason to re-derive).
        assert_eq!(clock.wall_ns(1), 1_700_003_600_000_000_000 - 4_999_999_999);
        assert_eq!(clock.wall_ns(0), 0);
    }

    /// Reading two clocks one after the other is noisy (more so under emulation): that noise
    /// never reorders events. Each realtime read here is off by up to 3 ms.
    #[test]
    fn read_noise_never_reorders_close_events() {
        #[derive(Debug)]
        struct Noisy {
            inner: Stepped,
            n: AtomicI64,
        }
        impl ClockSource for Noisy {
            fn realtime_ns(&self) -> i128 {
                let k = self.n.fetch_add(1, Ordering::SeqCst);
                self.inner.realtime_ns() + i128::from((k * 7_919) % 6_000_001 - 3_000_000)
            }
            fn monotonic_ns(&self) -> i128 {
                self.inner.monotonic_ns()
            }
        }
        let src = Stepped::at(1_700_000_000_000_000_000, 5_000_000_000);
        let clock = Clock::with_source(Box::new(Noisy {
            inner: src.clone(),
            n: AtomicI64::new(0),
        }));
        let mut last = 0;
        let mut mono = 5_000_000_000u64;
        for _ in 0..10_000 {
            // Events 1 µs apart; every 10 ms of them the mapping is read again.
            mono += 1_000;
            src.advance(1_000);
            let w = clock.wall_ns(mono);
            assert!(w > last, "{w} after {last}");
            last = w;
        }
        // A real step still moves the mapping.
        src.step_wall(60_000_000_000);
        src.advance(REDERIVE_NS as i64);
        mono += REDERIVE_NS;
        assert!(clock.wall_ns(mono) > last + 59_000_000_000);
    }
}
