//! The ring-buffer publisher loop every kernel source shares: poll, count, decode, queue.

use std::sync::Arc;

use crate::{
    pipeline::{Event, Queue},
    rt::{Shutdown, counters::PublisherCounters},
    sys::ebpf::{
        decode::{RawRecord, decode},
        drain_ring,
    },
};

/// Runs one kernel ring's publisher until `shutdown`: counts every record in `events`, turns
/// it into pipeline events with `convert`, and queues them. A record that does not decode, or
/// that `convert` refuses (None: not for this ring, or unusable), is counted in
/// `decode_errors`.
pub fn run_ring_publisher(
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    queue: Queue,
    counters: Arc<PublisherCounters>,
    shutdown: Shutdown,
    ring_name: &str,
    mut convert: impl FnMut(RawRecord) -> Option<Vec<Event>>,
) {
    drain_ring(
        ring,
        || shutdown.is_set(),
        |bytes| {
            counters.events.add(1);
            let events = match decode(bytes) {
                Ok(raw) => convert(raw).unwrap_or_else(|| {
                    counters.decode_errors.add(1);
                    log::debug!("unusable record on the {ring_name} ring");
                    Vec::new()
                }),
                Err(e) => {
                    counters.decode_errors.add(1);
                    log::debug!("undecodable record on the {ring_name} ring: {e}");
                    Vec::new()
                }
            };
            events.into_iter().all(|e| queue.push(e))
        },
    );
}
