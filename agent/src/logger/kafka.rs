//! The `kafka_producer` sink (librdkafka through `rdkafka`), with osquery's flags:
//! `logger_kafka_brokers`, `logger_kafka_topic`, `logger_kafka_acks`,
//! `logger_kafka_compression`, and the config's `kafka_topics` (`{"topic": ["query", …]}`).
//!
//! A line goes to the topic its query name is mapped to, else to `logger_kafka_topic`, else
//! to `base_topic` (osquery's fallback); status lines go to the default topic.
//!
//! Exactly once while the daemon runs: with `acks=all` the producer is idempotent and never
//! gives up on a message (`message.timeout.ms=0`), so a broker outage delays lines instead of
//! failing them, and a line handed to librdkafka is never handed over again. The buffer keeps
//! each line until its delivery report comes back. After a crash, lines that were in flight
//! are sent again (at least once across restarts). A line the cluster refuses for good (too
//! large, no such topic with auto-creation off) is counted as `log_rejected` and skipped.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::{
    ClientConfig, ClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext},
};

use super::{Kind, Line, Sink};
use crate::rt::counters::LoggerCounters;

/// osquery's topic for lines with no mapping when `logger_kafka_topic` is empty.
pub const BASE_TOPIC: &str = "base_topic";

#[derive(Default)]
struct Reports {
    delivered: BTreeSet<u64>,
    rejected: Vec<(u64, String)>,
}

struct Context {
    reports: Arc<Mutex<Reports>>,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<u64>) {
        let mut r = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                r.delivered.insert(*seq);
            }
            Err((e, _)) => r.rejected.push((*seq, e.to_string())),
        }
    }
}

/// What the sink is configured with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    pub brokers: String,
    pub topic: String,
    pub acks: String,
    pub compression: String,
    /// (topic, query names), from the config's `kafka_topics`.
    pub topics: Vec<(String, Vec<String>)>,
}

pub struct Kafka {
    producer: BaseProducer<Context>,
    reports: Arc<Mutex<Reports>>,
    counters: Arc<LoggerCounters>,
    default_topic: String,
    by_query: BTreeMap<String, String>,
    /// The last seq handed to librdkafka, and the last one delivered with all before it.
    produced: u64,
    acked: u64,
    started: bool,
}

impl Kafka {
    pub fn new(o: &KafkaOptions, counters: Arc<LoggerCounters>) -> Result<Self, String> {
        let reports = Arc::new(Mutex::new(Reports::default()));
        let acks = if o.acks.is_empty() { "all" } else { &o.acks };
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &o.brokers)
            .set("acks", acks)
            .set(
                "compression.codec",
                if o.compression.is_empty() {
                    "none"
                } else {
                    &o.compression
                },
            )
            // Never give up on a message: an outage delays it, the buffer keeps it.
            .set("message.timeout.ms", "0");
        if matches!(acks, "all" | "-1") {
            // No duplicates from librdkafka's own retries.
            cfg.set("enable.idempotence", "true");
        }
        let producer: BaseProducer<Context> = cfg
            .create_with_context(Context {
                reports: reports.clone(),
            })
            .map_err(|e| format!("kafka_producer: {e}"))?;
        let by_query = o
            .topics
            .iter()
            .flat_map(|(t, qs)| qs.iter().map(move |q| (q.clone(), t.clone())))
            .collect();
        Ok(Self {
            producer,
            reports,
            counters,
            default_topic: if o.topic.is_empty() {
                BASE_TOPIC.to_owned()
            } else {
                o.topic.clone()
            },
            by_query,
            produced: 0,
            acked: 0,
            started: false,
        })
    }

    fn topic_for(&self, line: &Line) -> &str {
        if !matches!(line.kind, Kind::Status(_)) {
            let name = serde_json::from_str::<serde_json::Value>(&line.text)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned));
            if let Some(t) = name.and_then(|n| self.by_query.get(&n)) {
                return t;
            }
        }
        &self.default_topic
    }
}

impl Sink for Kafka {
    fn name(&self) -> &'static str {
        "kafka_producer"
    }

    fn send(&mut self, lines: &[(u64, Line)]) -> Result<u64, String> {
        let Some(first) = lines.first() else {
            return Ok(self.acked);
        };
        if !self.started {
            self.started = true;
            self.produced = first.0.saturating_sub(1);
            self.acked = first.0.saturating_sub(1);
        }
        for (seq, line) in lines {
            if *seq <= self.produced {
                continue;
            }
            let topic = self.topic_for(line).to_owned();
            let rec: BaseRecord<'_, (), [u8], Box<u64>> =
                BaseRecord::with_opaque_to(&topic, Box::new(*seq)).payload(line.text.as_bytes());
            match self.producer.send(rec) {
                Ok(()) => self.produced = *seq,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => break,
                Err((e, _)) => return Err(format!("kafka_producer: {e}")),
            }
        }
        // Delivery reports, until everything handed over is delivered or half a second
        // passed (a broker that is down: the lines stay in flight, asked again next time).
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        loop {
            self.producer.poll(Duration::from_millis(5));
            let mut r = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            for (seq, e) in std::mem::take(&mut r.rejected) {
                self.counters.rejected.add(1);
                log::error!(
                    target: crate::rt::status::DAEMON_LOG_ONLY,
                    "kafka_producer: line {seq} refused: {e}; counted as log_rejected"
                );
                r.delivered.insert(seq);
            }
            while r.delivered.remove(&(self.acked + 1)) {
                self.acked += 1;
            }
            if self.acked >= self.produced || std::time::Instant::now() >= deadline {
                return Ok(self.acked);
            }
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        // What is delivered in this second is acknowledged by no one (the buffer keeps it
        // and sends it again after the restart): a short wait, not a promise.
        let _ = self.producer.flush(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::{
        Message, Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer},
        mocking::MockCluster,
    };

    use super::*;
    use crate::{
        logger::Forwarder,
        storage::{
            Store,
            logbuf::{Limits, LogBuffer},
        },
    };

    fn lines(from: u32, to: u32) -> Vec<Vec<u8>> {
        (from..to)
            .map(|i| {
                Line {
                    kind: Kind::Result,
                    text: format!(r#"{{"name":"q{}","n":{i}}}"#, i % 2),
                }
                .encode()
            })
            .collect()
    }

    /// Every message of `topic` (partition 0) as text, waiting until `n` arrived.
    fn consume(bootstrap: &str, topic: &str, n: usize) -> Vec<String> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "osprey-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while out.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        // Anything beyond n would be a duplicate: give it a moment to show up.
        let settle = Instant::now() + Duration::from_millis(500);
        while Instant::now() < settle {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        out
    }

    fn pump_until_empty(fwd: &mut Forwarder, buf: &LogBuffer) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while buf.len().0 > 0 && Instant::now() < deadline {
            fwd.pump().unwrap();
        }
        assert_eq!(buf.len().0, 0, "every line delivered");
    }

    #[test]
    fn every_line_once_across_a_broker_outage_and_topics_by_query() {
        let cluster = MockCluster::new(1).unwrap();
        let bootstrap = cluster.bootstrap_servers();
        cluster.create_topic("osq", 1, 1).unwrap();
        cluster.create_topic("odd", 1, 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_primary(&dir.path().join("db")).unwrap());
        let buf = Arc::new(LogBuffer::open(store).unwrap());
        let counters = Arc::new(LoggerCounters::default());
        let o = KafkaOptions {
            brokers: bootstrap.clone(),
            topic: "osq".into(),
            acks: "all".into(),
            compression: "none".into(),
            topics: vec![("odd".into(), vec!["q1".into()])],
        };
        let sink = Kafka::new(&o, counters.clone()).unwrap();
        let mut fwd = Forwarder::new(buf.clone(), vec![Box::new(sink)], counters.clone());
        buf.append(&lines(0, 6), None, Limits::default()).unwrap();
        pump_until_empty(&mut fwd, &buf);

        cluster.broker_down(1).unwrap();
        buf.append(&lines(6, 12), None, Limits::default()).unwrap();
        for _ in 0..5 {
            fwd.pump().unwrap();
        }
        assert_eq!(buf.len().0, 6, "kept while the broker is down");
        cluster.broker_up(1).unwrap();
        pump_until_empty(&mut fwd, &buf);

        let even = consume(&bootstrap, "osq", 6);
        let odd = consume(&bootstrap, "odd", 6);
        let want = |parity: u32| -> Vec<String> {
            (0..12)
                .filter(|i| i % 2 == parity)
                .map(|i| format!(r#"{{"name":"q{parity}","n":{i}}}"#))
                .collect()
        };
        assert_eq!(
            even,
            want(0),
            "q0 to logger_kafka_topic, once each, in order"
        );
        assert_eq!(odd, want(1), "q1 to its kafka_topics topic");
        assert_eq!(counters.sent.get(), 12);
        assert_eq!(counters.rejected.get(), 0);
    }
}
