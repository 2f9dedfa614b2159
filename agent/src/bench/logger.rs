//! Logger throughput for `cargo xtask bench` and `osprey bench-logger`: N result lines
//! (osquery's event format, about 300 bytes each) are appended to a fresh log buffer, then
//! [`Forwarder::pump`] moves them to a sink until the buffer is empty: the `filesystem`
//! logger (synced writes) and the `kafka_producer` logger against librdkafka's in-process
//! mock cluster (one broker, acks=all).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use serde::Serialize;

use crate::{
    logger::{
        Forwarder, Kind, Line, Sink,
        kafka::{Kafka, KafkaOptions},
        sinks::Filesystem,
    },
    rt::counters::LoggerCounters,
    storage::{
        Store,
        logbuf::{Limits, LogBuffer},
    },
};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LoggerBench {
    pub lines: u64,
    pub line_bytes: u64,
    pub filesystem_lines_per_sec: f64,
    pub kafka_lines_per_sec: f64,
    /// Appending to the buffer (one synced batch per 1,000 lines).
    pub buffer_lines_per_sec: f64,
}

/// `--lines N --dir D`.
pub fn parse_args(args: &[String]) -> Result<(u64, PathBuf), String> {
    let (mut lines, mut dir) = (100_000u64, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--lines" => {
                lines = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--lines needs a number")?
            }
            "--dir" => dir = it.next().map(PathBuf::from),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((lines, dir.ok_or("--dir is required")?))
}

fn line(i: u64) -> Line {
    Line {
        kind: Kind::Result,
        text: format!(
            r#"{{"name":"pack_bench_processes","hostIdentifier":"bench-host","calendarTime":"Tue Dec  1 16:17:22 2026 UTC","unixTime":1796141842,"epoch":0,"counter":{i},"numerics":false,"decorations":{{"host_uuid":"4c4c4544-0042-3010-8052-b4c04f4a4e32"}},"columns":{{"name":"worker","path":"/usr/sbin/nginx","pid":"{}"}},"action":"added"}}"#,
            100_000 + i
        ),
    }
}

/// Fills a buffer in `dir` with `n` lines; returns it and the append rate.
fn filled(dir: &Path, n: u64) -> Result<(Arc<LogBuffer>, f64), String> {
    let store = Arc::new(Store::open_primary(dir).map_err(|e| e.to_string())?);
    let buf = Arc::new(LogBuffer::open(store).map_err(|e| e.to_string())?);
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<Vec<u8>> = (i..(i + 1000).min(n)).map(|j| line(j).encode()).collect();
        i += batch.len() as u64;
        buf.append(&batch, None, Limits::default())
            .map_err(|e| e.to_string())?;
    }
    Ok((buf, n as f64 / started.elapsed().as_secs_f64()))
}

fn drain(buf: &Arc<LogBuffer>, sink: Box<dyn Sink>) -> Result<f64, String> {
    let mut fwd = Forwarder::new(buf.clone(), vec![sink], Arc::new(LoggerCounters::default()));
    let (n, _) = buf.len();
    let started = Instant::now();
    while buf.len().0 > 0 {
        fwd.pump().map_err(|e| e.to_string())?;
        if started.elapsed().as_secs() > 600 {
            return Err("the sink did not drain the buffer in 10 minutes".into());
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

pub fn logger_bench(dir: &Path, n: u64) -> Result<LoggerBench, String> {
    let (buf, append_rate) = filled(&dir.join("fs-db"), n)?;
    let fs = drain(
        &buf,
        Box::new(Filesystem::new(dir.join("fs-log"), 0o640, None)),
    )?;
    drop(buf);
    let (buf, _) = filled(&dir.join("kafka-db"), n)?;
    let cluster = rdkafka::mocking::MockCluster::new(1).map_err(|e| e.to_string())?;
    cluster
        .create_topic("bench", 1, 1)
        .map_err(|e| e.to_string())?;
    let o = KafkaOptions {
        brokers: cluster.bootstrap_servers(),
        topic: "bench".into(),
        acks: "all".into(),
        compression: "none".into(),
        topics: Vec::new(),
    };
    let sink = Kafka::new(&o, Arc::new(LoggerCounters::default()))?;
    let kafka = drain(&buf, Box::new(sink))?;
    Ok(LoggerBench {
        lines: n,
        line_bytes: line(0).text.len() as u64,
        filesystem_lines_per_sec: fs,
        kafka_lines_per_sec: kafka,
        buffer_lines_per_sec: append_rate,
    })
}
