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
    config_with(
        grpc,
        telemetry,
        r#"    decision_wait: 1s
    num_traces: 1000
    decision_cache: {sampled_cache_size: 1000, non_sampled_cache_size: 1000}
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - {name: slow, type: latency, latency: {threshold_ms: 1000}}
      - {name: none, type: probabilistic, probabilistic: {sampling_percentage: 0}}
"#,
    )
}

/// The otlp → tail_sampling → file pipeline with `tail_sampling` options.
fn config_with(grpc: u16, telemetry: u16, tail_sampling: &str) -> String {
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  tail_sampling:
{tail_sampling}
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

/// Spans written per trace, once every sent span of `want` has arrived and
/// `decided` traces have been decided in all.
fn received_when_decided(c: &Confluo, want: &Traces, decided: usize) -> Traces {
    let want_spans: usize = want.values().map(BTreeSet::len).sum();
    let arrived = wait_until(Duration::from_secs(15), || {
        received(c).values().map(BTreeSet::len).sum::<usize>() >= want_spans
    });
    assert!(arrived, "got {:?}\n{}", received(c), c.stderr());
    let all = wait_until(Duration::from_secs(10), || {
        let d = |s| {
            c.metric_or_zero(
                "otelcol_processor_tail_sampling_global_count_traces_sampled",
                &[("processor", "tail_sampling"), ("sampled", s)],
            )
        };
        d("true") + d("false") >= decided as f64
    });
    assert!(all, "{}", c.metrics());
    received(c)
}

#[test]
fn python_sdk_traces_by_trace_flags_and_ottl_conditions() {
    let (grpc, telemetry) = (free_port(), free_port());
    let mut c = Confluo::start(&config_with(
        grpc,
        telemetry,
        r#"    decision_wait: 1s
    policies:
      - {name: flags, type: trace_flags}
      - name: ottl
        type: ottl_condition
        ottl_condition:
          error_mode: ignore
          span:
            - 'attributes["app.tier"] == "gold" and resource.attributes["service.name"] == "tail-e2e"'
          spanevent:
            - 'name == "exception" and IsMatch(attributes["exception.message"], "^card declined") and span.kind == SPAN_KIND_INTERNAL'
"#,
    ));
    let sent = run_python(
        "tail_sampling_policies_send.py",
        &[
            "--endpoint",
            &format!("127.0.0.1:{grpc}"),
            "--per-kind",
            "3",
        ],
    );
    let mut want = expected(&sent, "gold");
    want.extend(expected(&sent, "declined"));
    want.extend(expected(&sent, "flagged"));
    let plain = expected(&sent, "plain");
    assert_eq!((want.len(), plain.len()), (9, 3));
    assert!(want.values().all(|s| s.len() == 3), "{want:?}");
    let got = received_when_decided(&c, &want, 12);
    let sampled_by = |policy| {
        c.metric_or_zero(
            "otelcol_processor_tail_sampling_count_traces_sampled",
            &[
                ("processor", "tail_sampling"),
                ("policy", policy),
                ("sampled", "true"),
            ],
        )
    };
    // The SDK's own flags (0x100, no W3C byte) do not count as sampled.
    assert_eq!(sampled_by("flags"), 3.0, "{}", c.metrics());
    assert_eq!(sampled_by("ottl"), 6.0, "{}", c.metrics());
    assert!(c.stop().success(), "{}", c.stderr());
    assert_eq!(received(&c), got);
    assert_eq!(got, want, "exactly the gold, declined and flagged traces");
}

#[test]
fn python_sdk_traces_under_a_bytes_limit() {
    const BURST: u64 = 3000;
    let (grpc, telemetry) = (free_port(), free_port());
    let mut c = Confluo::start(&config_with(
        grpc,
        telemetry,
        &format!(
            "    decision_wait: 1s\n    policies:\n      - {{name: bytes, type: bytes_limiting, bytes_limiting: {{bytes_per_second: 1, burst_capacity: {BURST}}}}}\n"
        ),
    ));
    let sent = run_python(
        "tail_sampling_policies_send.py",
        &[
            "--endpoint",
            &format!("127.0.0.1:{grpc}"),
            "--per-kind",
            "3",
        ],
    );
    let mut all = Traces::new();
    for kind in ["gold", "declined", "flagged", "plain"] {
        all.extend(expected(&sent, kind));
    }
    let size = |t: &str| {
        sent["bytes"][t]
            .as_u64()
            .unwrap_or_else(|| panic!("no size for {t}"))
    };
    let total: u64 = all.keys().map(|t| size(t)).sum();
    assert!(
        total > 2 * BURST,
        "traces too small for the test: {total} bytes"
    );
    let got = received_when_decided(&c, &Traces::new(), all.len());
    assert!(c.stop().success(), "{}", c.stderr());
    assert_eq!(received(&c), got);
    for (t, spans) in &got {
        assert_eq!(Some(spans), all.get(t), "whole traces only");
    }
    // Whatever order the traces were decided in, the kept ones fit in the
    // bucket (plus at most a few seconds of refill at 1 byte/s), and every
    // refused one was bigger than what was left.
    let kept: u64 = got.keys().map(|t| size(t)).sum();
    let smallest_refused = all
        .keys()
        .filter(|t| !got.contains_key(*t))
        .map(|t| size(t))
        .min()
        .expect("some traces must be refused");
    assert!(!got.is_empty());
    assert!(kept <= BURST + 30, "kept {kept} bytes > burst {BURST}");
    assert!(
        kept + smallest_refused > BURST,
        "kept {kept} bytes, yet a {smallest_refused}-byte trace was refused"
    );
}
