//! Bad input over raw HTTP/1.1, and backpressure from a stalled exporter.
//! After every rejection the process is alive and a valid request gets 200.
mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;

const MAX_BODY: usize = 64 * 1024;
const PB: &str = "application/x-protobuf";
const TRACES: &str = "/v1/traces";

struct Http {
    confluo: Confluo,
    addr: String,
}

fn start() -> Http {
    let (http, tel) = (free_port(), free_port());
    let config = format!(
        r#"receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        max_request_body_size: {MAX_BODY}
exporters:
  file:
    path: {{{{DIR}}}}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{tel}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
"#
    );
    Http {
        confluo: Confluo::start(&config),
        addr: format!("127.0.0.1:{http}"),
    }
}

fn valid_pb(name: &str) -> Vec<u8> {
    otlp_trace_request_pb(name, [0x11; 16], [0x22; 8])
}

impl Http {
    /// The rejection answered `want` with a message, and the receiver still serves.
    fn assert_rejected(&mut self, case: &str, headers: &[(&str, &str)], body: &[u8], want: u16) {
        let (status, hdrs, resp) = http_post(&self.addr, TRACES, headers, body);
        assert_eq!(
            status,
            want,
            "{case}: expected HTTP {want}, got {status} (headers {hdrs:?}, body {:?})",
            String::from_utf8_lossy(&resp)
        );
        assert!(
            !resp.is_empty(),
            "{case}: the {status} answer has no message body"
        );
        self.assert_still_serving(case);
    }

    fn assert_still_serving(&mut self, case: &str) {
        self.confluo.assert_alive(&format!("after {case}"));
        let (status, _, resp) = http_post(
            &self.addr,
            TRACES,
            &[("Content-Type", PB)],
            &valid_pb("after-bad-input"),
        );
        assert_eq!(
            status,
            200,
            "after {case}, a valid protobuf request got {status}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
}

#[test]
fn valid_protobuf_and_json_are_accepted() {
    let mut h = start();
    let (status, _, body) = http_post(
        &h.addr,
        TRACES,
        &[("Content-Type", PB)],
        &valid_pb("valid-pb"),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json = otlp_trace_request_json(
        "valid-json",
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
    );
    let (status, _, body) = http_post(
        &h.addr,
        TRACES,
        &[("Content-Type", "application/json")],
        json.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = h.confluo.path("out.jsonl");
    assert!(
        wait_until(Duration::from_secs(10), || spans_in(&read_file_exporter(
            &out
        ))
        .len()
            >= 2),
        "the two valid spans did not reach the file"
    );
    let status = h.confluo.stop();
    assert!(status.success(), "{status}");
    let spans = spans_in(&read_file_exporter(&out));
    let mut names: Vec<&str> = spans
        .iter()
        .map(|s| s.value["name"].as_str().unwrap_or(""))
        .collect();
    names.sort();
    assert_eq!(names, ["valid-json", "valid-pb"]);
    let pb = spans
        .iter()
        .find(|s| s.value["name"] == "valid-pb")
        .unwrap();
    assert_eq!(pb.value["traceId"], "11111111111111111111111111111111");
    assert_eq!(pb.value["spanId"], "2222222222222222");
    let js = spans
        .iter()
        .find(|s| s.value["name"] == "valid-json")
        .unwrap();
    assert_eq!(js.value["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(js.value["spanId"], "eee19b7ec3c1b174");
}

#[test]
fn garbage_protobuf_is_400() {
    let mut h = start();
    let mut body = vec![0xff; 16]; // a varint that never ends
    body.extend_from_slice(b"definitely not protobuf");
    h.assert_rejected("garbage protobuf", &[("Content-Type", PB)], &body, 400);
}

#[test]
fn truncated_protobuf_is_400() {
    let mut h = start();
    let pb = valid_pb("truncated");
    h.assert_rejected(
        "truncated protobuf",
        &[("Content-Type", PB)],
        &pb[..pb.len() - 7],
        400,
    );
}

#[test]
fn bad_gzip_is_400() {
    let mut h = start();
    h.assert_rejected(
        "Content-Encoding: gzip with a body that is not gzip",
        &[("Content-Type", PB), ("Content-Encoding", "gzip")],
        &valid_pb("not-gzipped"),
        400,
    );
}

#[test]
fn wrong_content_type_is_415() {
    let mut h = start();
    h.assert_rejected(
        "Content-Type: text/plain",
        &[("Content-Type", "text/plain")],
        &valid_pb("text"),
        415,
    );
}

#[test]
fn oversize_body_is_413() {
    let mut h = start();
    // A valid request, only too big: without the limit it would be accepted.
    let big = valid_pb(&"x".repeat(4 * MAX_BODY));
    assert!(big.len() > MAX_BODY);
    h.assert_rejected(
        "body over max_request_body_size",
        &[("Content-Type", PB)],
        &big,
        413,
    );
}

#[test]
fn invalid_json_is_400() {
    let mut h = start();
    h.assert_rejected(
        "invalid JSON",
        &[("Content-Type", "application/json")],
        br#"{"resourceSpans": [{"scopeSpans": [ "#,
        400,
    );
}

/// A TCP listener that accepts connections and never answers.
fn stalled_peer() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind stalled peer");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s); // keep it open, read nothing, write nothing
        }
    });
    port
}

#[test]
fn stalled_exporter_pushes_back_with_retry_after_and_bounded_memory() {
    let stall = stalled_peer();
    let (http, tel) = (free_port(), free_port());
    let config = format!(
        r#"receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:{stall}
    tls:
      insecure: true
    timeout: 30s
    retry_on_failure:
      enabled: true
      initial_interval: 5s
      max_interval: 30s
      max_elapsed_time: 300s
    sending_queue:
      enabled: true
      num_consumers: 1
      queue_size: 2
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{tel}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc]
"#
    );
    let mut c = Confluo::start(&config);
    let addr = format!("127.0.0.1:{http}");
    let rss_start = c.rss_kib();
    // 16 KiB per request, so that keeping refused data would show in RSS.
    let body = otlp_trace_request_pb(&"s".repeat(16 * 1024), [0x33; 16], [0x44; 8]);

    let mut refused = None;
    let mut accepted = 0;
    for i in 0..200 {
        let r = http_request("POST", &addr, "/v1/traces", &[("Content-Type", PB)], &body)
            .unwrap_or_else(|e| panic!("request {i}: {e}\n--- stderr ---\n{}", c.stderr()));
        match r.status {
            200 => accepted += 1,
            429 | 503 => {
                refused = Some((i, r));
                break;
            }
            s => panic!("request {i}: unexpected HTTP {s}: {}", r.text()),
        }
    }
    let Some((i, r)) = refused else {
        panic!(
            "200 requests were all accepted with a stalled exporter and queue_size 2: no backpressure\n--- /metrics ---\n{}",
            c.metrics()
        );
    };
    eprintln!(
        "refused request {i} with {} after {accepted} accepted",
        r.status
    );
    let retry_after = r.header("retry-after").unwrap_or_else(|| {
        panic!(
            "HTTP {} without Retry-After (headers {:?})",
            r.status, r.headers
        )
    });
    assert!(
        retry_after.trim().parse::<u64>().is_ok(),
        "Retry-After should be a number of seconds: {retry_after:?}"
    );
    assert!(
        accepted <= 10,
        "{accepted} requests accepted with a queue of 2 and one stalled consumer"
    );

    // Self-metrics show the full queue and the refusals.
    assert_eq!(
        c.metric_value(
            "otelcol_exporter_queue_capacity",
            &[("exporter", "otlp_grpc")]
        ),
        Some(2.0),
        "queue capacity\n{}",
        c.metrics()
    );
    assert!(
        wait_until(Duration::from_secs(5), || {
            c.metric_or_zero("otelcol_exporter_enqueue_failed_spans", &[("exporter", "otlp_grpc")]) >= 1.0
        }),
        "otelcol_exporter_enqueue_failed_spans{{exporter=\"otlp_grpc\"}} did not count the refusal\n{}",
        c.metrics()
    );

    // Keep pushing a little: still refused, still alive, memory bounded.
    for _ in 0..50 {
        let r = http_request("POST", &addr, "/v1/traces", &[("Content-Type", PB)], &body)
            .expect("request");
        assert!(
            matches!(r.status, 200 | 429 | 503),
            "HTTP {}: {}",
            r.status,
            r.text()
        );
    }
    c.assert_alive("under backpressure");
    let rss = c.rss_kib();
    eprintln!("RSS: {rss_start} KiB at start, {rss} KiB under backpressure");
    assert!(
        rss < 256 * 1024,
        "RSS {rss} KiB > 256 MiB under backpressure"
    );
    assert!(
        rss < rss_start + 128 * 1024,
        "RSS grew by {} KiB under backpressure (from {rss_start} KiB)",
        rss - rss_start
    );
}
