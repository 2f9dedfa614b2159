//! The daemon run in-process on a temporary store with test sources (no kernel programs):
//! a clean stop, and a component that panics.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use agent_common::EventKind;

use super::*;
use crate::{
    events::ProcessEvent,
    pipeline::{Event, Subscriber},
    rt::{counters::SubscriberCounters, supervise::Supervised},
    sources::{Source, Wiring},
    sql::{TableEnv, TableProvider, vtab::Table},
};

/// A source that queues `EVENTS` process events, then panics if `PANIC` is set (the test-only
/// hook), or else waits for the shutdown.
struct TestSource {
    panic: bool,
}

const EVENTS: u32 = 5;

static CALM: TestSource = TestSource { panic: false };
static BROKEN: TestSource = TestSource { panic: true };
static STORED: AtomicU32 = AtomicU32::new(0);

impl TableProvider for TestSource {
    fn make_table(&self, env: &TableEnv) -> Arc<dyn Table> {
        sources::process::SOURCE.make_table(env)
    }
}

struct Counting(Arc<SubscriberCounters>);

impl Subscriber for Counting {
    fn table(&self) -> &'static str {
        "test_events"
    }
    fn publisher(&self) -> &'static str {
        "test"
    }
    fn counters(&self) -> Arc<SubscriberCounters> {
        self.0.clone()
    }
    fn transform(&mut self, ev: &Event) -> Option<(u64, Vec<u8>)> {
        let Event::Process(p) = ev else { return None };
        STORED.fetch_add(1, Ordering::SeqCst);
        Some((p.time_ns, p.encode()))
    }
}

impl Source for TestSource {
    fn publisher(&self) -> &'static str {
        "test"
    }
    fn table(&self) -> &'static str {
        "test_events"
    }
    fn kinds(&self) -> &'static [EventKind] {
        &[]
    }
    fn drop_event_type(&self, _: EventKind) -> &'static str {
        "test"
    }
    fn enabled(&self, _: Ctx<'_>) -> bool {
        true
    }
    fn start(&self, w: Wiring<'_>) -> Result<Supervised> {
        let (queue, shutdown, panic) = (w.queue, w.supervisor.shutdown().clone(), self.panic);
        Ok(w.supervisor.spawn("pub-test", move || {
            for pid in 0..EVENTS {
                queue.push(Event::Process(ProcessEvent {
                    time_ns: 1_000 + u64::from(pid),
                    pid,
                    ..Default::default()
                }));
            }
            if panic {
                panic!("injected by the test source");
            }
            while !shutdown.is_set() {
                std::thread::sleep(Duration::from_millis(10));
            }
        })?)
    }
    fn subscriber(&self, _: Ctx<'_>, counters: Arc<SubscriberCounters>) -> Box<dyn Subscriber> {
        Box::new(Counting(counters))
    }
}

fn control(dir: &std::path::Path) -> Control {
    let mut flags = Flags::default();
    flags
        .parse_args(
            &[format!("--database_path={}", dir.display())],
            crate::flags::Source::CommandLine,
        )
        .unwrap();
    Control::start(&flags).unwrap()
}

fn stored_rows(store: &Store) -> usize {
    let mut n = 0;
    store
        .scan("test_events", 0, u64::MAX, |_, _, _| {
            n += 1;
            true
        })
        .unwrap();
    n
}

/// Both cases in one test: `STORED` is process-wide.
#[test]
fn daemon_runs_in_process_and_a_panicking_component_stops_it_with_an_error() {
    // A clean run: the events are stored, the shutdown returns Ok.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_primary(dir.path()).unwrap());
    let shutdown = Shutdown::default();
    let stopper = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while STORED.load(Ordering::SeqCst) < EVENTS && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            shutdown.trigger();
        })
    };
    run(store.clone(), &[&CALM], control(dir.path()), None, shutdown).unwrap();
    stopper.join().unwrap();
    assert_eq!(stored_rows(&store), EVENTS as usize);
    drop(store);

    // The test source panics after queueing: the daemon stops by itself (nobody triggers the
    // shutdown), still stores what was queued, and returns the failure naming the component.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_primary(dir.path()).unwrap());
    let started = Instant::now();
    let err = run(
        store.clone(),
        &[&BROKEN],
        control(dir.path()),
        None,
        Shutdown::default(),
    )
    .expect_err("a panicking source must fail the daemon");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        format!("{err:#}"),
        "stopped after a failure (1 panic(s); see the log): component `pub-test` panicked: \
         injected by the test source"
    );
    assert_eq!(stored_rows(&store), EVENTS as usize);
}
