//! Memory bounds of the `tail_sampling` processor, in their own test binary
//! so that the process RSS they read is not disturbed by other tests.
//!
//! `cargo test -p confluo-processors --test tail_sampling_memory -- --nocapture --test-threads=1`

use async_trait::async_trait;
use confluo_config::{ComponentKind, Node};
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, KeyValue};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{ResourceSpans, ScopeSpans, Span};
use confluo_pipeline::{Batch, ComponentContext, ConsumeError, Consumer, Processor, Signal};
use confluo_processors::tail_sampling::{TailSamplingConfig, TailSamplingProcessor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Default)]
struct CountingSink {
    spans: AtomicU64,
}

#[async_trait]
impl Consumer for CountingSink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.spans
            .fetch_add(batch.item_count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn start(yaml: &str, sink: Arc<CountingSink>) -> Arc<TailSamplingProcessor> {
    let cfg: TailSamplingConfig = Node::from_yaml_str("t.yaml", yaml)
        .unwrap()
        .deserialize()
        .unwrap();
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "tail_sampling");
    TailSamplingProcessor::start(ctx, cfg, sink).unwrap()
}

fn trace_id(n: u64) -> Vec<u8> {
    let mut v = (n + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn span(trace: u64, i: u64, attrs: usize) -> Span {
    let catalogue = [
        kv("http.request.method", Value::StringValue("GET".into())),
        kv(
            "http.route",
            Value::StringValue("/api/v1/users/{id}".into()),
        ),
        kv("user.id", Value::StringValue(format!("user-{trace:08x}"))),
        kv("http.response.status_code", Value::IntValue(200)),
        kv(
            "server.address",
            Value::StringValue("api.internal.example.com".into()),
        ),
        kv("server.port", Value::IntValue(8080)),
        kv("error", Value::BoolValue(false)),
        kv("network.protocol.version", Value::StringValue("1.1".into())),
        kv("http.request.body.size", Value::IntValue(512)),
        kv("thread.id", Value::IntValue(17)),
    ];
    Span {
        trace_id: trace_id(trace),
        span_id: (trace * 16 + i + 1).to_be_bytes().to_vec(),
        parent_span_id: if i == 0 {
            Vec::new()
        } else {
            (trace * 16 + 1).to_be_bytes().to_vec()
        },
        name: if i == 0 {
            "GET /api/v1/users/{id}"
        } else {
            "SELECT users"
        }
        .into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000 + trace * 1000,
        end_time_unix_nano: 1_700_000_000_000_000_000 + trace * 1000 + 5_000_000,
        attributes: catalogue.into_iter().take(attrs).collect(),
        ..Default::default()
    }
}

fn batch(spans: Vec<Span>) -> Batch {
    Batch::new(Signal::Traces(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", Value::StringValue("checkout".into())),
                kv("host.name", Value::StringValue("node-1".into())),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        schema_url: String::new(),
    }]))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// 1,000,000 single-span traces through a 10,000-trace, 4 MiB table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_million_traces_stay_within_the_bounds() {
    let max_bytes = 4usize << 20;
    let sink = Arc::new(CountingSink::default());
    let p = start(
        &format!(
            "decision_wait: 50ms\nnum_traces: 10000\nmax_bytes: {max_bytes}\nnum_shards: 2\npolicies:\n  - {{name: p, type: probabilistic, probabilistic: {{sampling_percentage: 1}}}}\n"
        ),
        sink.clone(),
    );
    let started = Instant::now();
    let rss_before = rss_kib();
    let mut peak_held = 0;
    let mut peak_traces = 0;
    let per_batch = 1000u64;
    let total = 1_000_000u64;
    for first in (0..total).step_by(per_batch as usize) {
        let spans = (first..first + per_batch).map(|t| span(t, 0, 0)).collect();
        p.consume(batch(spans)).await.unwrap();
        peak_held = peak_held.max(p.held_bytes());
        peak_traces = peak_traces.max(p.traces_in_memory());
        tokio::task::yield_now().await;
    }
    let rss_delta = rss_kib().saturating_sub(rss_before);
    p.shutdown().await.unwrap();
    eprintln!(
        "1M traces in {:?}: peak held {peak_held} B, peak traces {peak_traces}, RSS delta {rss_delta} KiB, spans sampled {}",
        started.elapsed(),
        sink.spans.load(Ordering::Relaxed)
    );
    assert!(peak_held <= max_bytes, "held {peak_held} > {max_bytes}");
    assert!(peak_traces <= 10_000, "{peak_traces} traces held");
    assert_eq!(p.held_bytes(), 0);
    // Unbounded holding of 1M traces would need hundreds of MiB.
    assert!(rss_delta < 48 * 1024, "RSS grew {rss_delta} KiB");
}

/// Accounted bytes per held span for 10-span traces of 10-attribute spans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_per_held_span() {
    let sink = Arc::new(CountingSink::default());
    let p = start(
        "decision_wait: 1h\nnum_traces: 100000\npolicies:\n  - {name: a, type: always_sample}\n",
        sink,
    );
    let traces = 2000u64;
    let mut encoded = 0usize;
    for first in (0..traces).step_by(10) {
        let spans: Vec<Span> = (first..first + 10)
            .flat_map(|t| (0..10).map(move |i| span(t, i, 10)))
            .collect();
        let b = batch(spans);
        encoded += b.signal().encoded_len();
        p.consume(b).await.unwrap();
    }
    let held = p.held_bytes();
    let spans = (traces * 10) as f64;
    eprintln!(
        "10-attribute spans: {:.1} accounted bytes per held span (OTLP request bytes per span {:.1})",
        held as f64 / spans,
        encoded as f64 / spans
    );
    // The resource is repeated once per trace fragment, plus the per-trace
    // table entry: bounded overhead over the wire size.
    assert!((held as f64) < encoded as f64 * 1.6, "{held} vs {encoded}");
    p.shutdown().await.unwrap();
}
