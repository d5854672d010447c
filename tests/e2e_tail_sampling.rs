//! The OpenTelemetry Python SDK → confluo `otlp` → `tail_sampling` → `file`.
//!
//! The SDK sends error, slow and normal traces, each in several requests with
//! children before their root and some late children; the processor keeps
//! ERROR traces and traces over the latency threshold and drops the rest
//! (probabilistic 0%). Exactly the error and slow traces, with all their
//! spans, must reach the file.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;

fn config(grpc: u16, telemetry: u16) -> String {
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
    decision_wait: 1s
    num_traces: 1000
    decision_cache: {{sampled_cache_size: 1000, non_sampled_cache_size: 1000}}
    policies:
      - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
      - {{name: slow, type: latency, latency: {{threshold_ms: 1000}}}}
      - {{name: none, type: probabilistic, probabilistic: {{sampling_percentage: 0}}}}
exporters:
  file:
    path: {{{{DIR}}}}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [file]
"#
    )
}

type Traces = BTreeMap<String, BTreeSet<String>>;

fn expected(sent: &serde_json::Value, kind: &str) -> Traces {
    sent["traces"][kind]
        .as_object()
        .unwrap_or_else(|| panic!("no {kind} traces in {sent}"))
        .iter()
        .map(|(t, spans)| (t.clone(), str_list(spans).into_iter().collect()))
        .collect()
}

fn received(c: &Confluo) -> Traces {
    let mut out = Traces::new();
    for span in spans_in(&read_file_exporter(c.path("out.jsonl"))) {
        let t = span.value["traceId"].as_str().unwrap_or("").to_lowercase();
        let s = span.value["spanId"].as_str().unwrap_or("").to_lowercase();
        assert!(
            out.entry(t.clone()).or_default().insert(s.clone()),
            "span {t}/{s} written twice"
        );
    }
    out
}

#[test]
fn python_sdk_traces_are_tail_sampled_by_error_and_latency() {
    let (grpc, telemetry) = (free_port(), free_port());
    let mut c = Confluo::start(&config(grpc, telemetry));
    let endpoint = format!("127.0.0.1:{grpc}");
    let sent = run_python(
        "tail_sampling_send.py",
        &[
            "--endpoint",
            &endpoint,
            "--per-kind",
            "6",
            "--slow-ms",
            "1500",
        ],
    );
    let mut want = expected(&sent, "error");
    want.extend(expected(&sent, "slow"));
    let normal = expected(&sent, "normal");
    assert_eq!(want.len(), 12);
    assert!(want.values().all(|s| s.len() >= 3), "{want:?}");

    let want_spans: usize = want.values().map(BTreeSet::len).sum();
    let done = wait_until(Duration::from_secs(15), || {
        received(&c).values().map(BTreeSet::len).sum::<usize>() >= want_spans
    });
    assert!(
        done,
        "sampled spans did not arrive: got {:?}\n{}",
        received(&c),
        c.stderr()
    );
    // Everything is decided by now; a little longer shows nothing else comes.
    let decided = wait_until(Duration::from_secs(10), || {
        c.metric_or_zero(
            "otelcol_processor_tail_sampling_global_count_traces_sampled",
            &[("processor", "tail_sampling"), ("sampled", "false")],
        ) >= normal.len() as f64
    });
    assert!(decided, "{}", c.metrics());
    assert_eq!(
        c.metric_or_zero(
            "otelcol_processor_tail_sampling_global_count_traces_sampled",
            &[("processor", "tail_sampling"), ("sampled", "true")],
        ),
        12.0
    );
    assert_eq!(
        c.metric_or_zero(
            "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
            &[("processor", "tail_sampling")],
        ),
        0.0
    );
    let status = c.stop();
    assert!(status.success(), "exit {status}\n{}", c.stderr());
    let got = received(&c);
    assert_eq!(
        got, want,
        "exactly the error and slow traces, all their spans"
    );
    assert!(normal.keys().all(|t| !got.contains_key(t)));
}

#[test]
fn shutdown_decides_pending_traces() {
    let (grpc, telemetry) = (free_port(), free_port());
    let cfg = config(grpc, telemetry).replace("decision_wait: 1s", "decision_wait: 1h");
    let mut c = Confluo::start(&cfg);
    let endpoint = format!("127.0.0.1:{grpc}");
    let sent = run_python(
        "tail_sampling_send.py",
        &[
            "--endpoint",
            &endpoint,
            "--per-kind",
            "2",
            "--slow-ms",
            "1500",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(received(&c).is_empty(), "decided before decision_wait");
    let status = c.stop();
    assert!(status.success(), "exit {status}\n{}", c.stderr());
    let mut want = expected(&sent, "error");
    want.extend(expected(&sent, "slow"));
    assert_eq!(received(&c), want);
}
