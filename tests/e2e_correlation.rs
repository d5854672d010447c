//! The `correlation` processor in a traces pipeline and a logs pipeline of
//! one confluo, fed by the OpenTelemetry Python SDK over OTLP/gRPC. Log
//! records carrying only `request_id` = R arrive BEFORE the server span
//! carrying `http.request.header.x-request-id` = [R]; they are held and must
//! leave with the span's trace and span ids.
mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const PROCESSOR: [(&str, &str); 1] = [("processor", "correlation")];

fn config(grpc: u16, telemetry: u16, store: bool, max_wait: &str) -> String {
    let (store_line, extensions, service_extensions) = if store {
        (
            "    store: correlation_store/shared\n",
            "extensions:\n  correlation_store/shared:\n    ttl: 1m\n    max_entries: 1000\n",
            "  extensions: [correlation_store/shared]\n",
        )
    } else {
        ("", "", "")
    };
    r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:GRPC
processors:
  correlation:
STORE    hold:
      max_wait: MAXWAIT
exporters:
  file/traces:
    path: {{DIR}}/traces.jsonl
  file/logs:
    path: {{DIR}}/logs.jsonl
EXTENSIONSservice:
SERVICE_EXTENSIONS  telemetry:
    metrics:
      address: 127.0.0.1:TELEMETRY
  pipelines:
    traces:
      receivers: [otlp]
      processors: [correlation]
      exporters: [file/traces]
    logs:
      receivers: [otlp]
      processors: [correlation]
      exporters: [file/logs]
"#
    .replace("GRPC", &grpc.to_string())
    .replace("TELEMETRY", &telemetry.to_string())
    .replace("MAXWAIT", max_wait)
    .replace("STORE", store_line)
    .replace("SERVICE_EXTENSIONS", service_extensions)
    .replace("EXTENSIONS", extensions)
}

fn send(grpc: u16, signal: &str, request_id: &str, count: usize) -> Value {
    let ep = format!("127.0.0.1:{grpc}");
    let n = count.to_string();
    let mut args = vec![
        "--endpoint",
        &ep,
        "--signal",
        signal,
        "--request-id",
        request_id,
        "--count",
        &n,
    ];
    if signal == "traces" {
        args.extend(["--service", "orders-api"]);
    }
    let out = run_python("correlation_send.py", &args);
    assert_eq!(out["ok"], Value::Bool(true), "{out}");
    out
}

fn string_attr(attrs: &Value, key: &str) -> Option<String> {
    attr_map(attrs)
        .get(key)
        .and_then(|v| v["stringValue"].as_str())
        .map(str::to_string)
}

fn resource_service(item: &Item) -> Option<String> {
    item.resource
        .get("service.name")
        .and_then(|v| v["stringValue"].as_str())
        .map(str::to_string)
}

fn logs_with(c: &Confluo, request_id: &str) -> Vec<Item> {
    logs_in(&read_file_exporter(c.path("logs.jsonl")))
        .into_iter()
        .filter(|l| {
            string_attr(&l.value["attributes"], "request_id").as_deref() == Some(request_id)
        })
        .collect()
}

fn hex(v: &Value) -> String {
    v.as_str().unwrap_or("").to_ascii_lowercase()
}

#[test]
fn logs_sent_before_their_span_leave_joined_to_it() {
    let (grpc, telemetry) = (free_port(), free_port());
    let c = Confluo::start(&config(grpc, telemetry, true, "60s"));
    let rid = "req-7f3a9c";

    let logs = send(grpc, "logs", rid, 3);
    assert_eq!(logs["count"], 3, "{logs}");
    // Held, waiting for the span: in custody, not yet written.
    assert!(
        wait_until(Duration::from_secs(10), || {
            c.metric_or_zero("otelcol_processor_correlation_held_log_records", &PROCESSOR) == 3.0
        }),
        "the 3 log records were not held:\n{}",
        c.metrics()
    );
    assert!(logs_with(&c, rid).is_empty());

    let span = send(grpc, "traces", rid, 1);
    let trace_id = span["trace_id"].as_str().unwrap().to_string();
    let span_id = span["span_id"].as_str().unwrap().to_string();
    // Released by the span's arrival, long before the 60 s hold expires.
    assert!(
        wait_until(Duration::from_secs(10), || logs_with(&c, rid).len() == 3),
        "joined logs did not arrive; metrics:\n{}\nstderr:\n{}",
        c.metrics(),
        c.stderr()
    );
    for l in logs_with(&c, rid) {
        assert_eq!(hex(&l.value["traceId"]), trace_id, "{:?}", l.value);
        assert_eq!(hex(&l.value["spanId"]), span_id, "{:?}", l.value);
        // The SDK's `unknown_service` is replaced by the span's service.
        assert_eq!(resource_service(&l).as_deref(), Some("orders-api"));
    }
    assert_eq!(
        c.metric_value("otelcol_processor_correlation_joined", &PROCESSOR),
        Some(3.0)
    );
    assert_eq!(
        c.metric_or_zero("otelcol_processor_correlation_unjoined", &PROCESSOR),
        0.0
    );
    // The span passed through with its header attribute normalised.
    let spans = spans_in(&read_file_exporter(c.path("traces.jsonl")));
    let server = spans
        .iter()
        .find(|s| hex(&s.value["spanId"]) == span_id)
        .expect("server span written");
    assert_eq!(
        string_attr(&server.value["attributes"], "request_id").as_deref(),
        Some(rid)
    );
    assert_eq!(spans.len(), 2);
}

#[test]
fn default_store_joins_at_once_and_shutdown_releases_held_logs() {
    let (grpc, telemetry) = (free_port(), free_port());
    let mut c = Confluo::start(&config(grpc, telemetry, false, "10m"));

    // Span first: the logs join without waiting.
    let span = send(grpc, "traces", "req-span-first", 1);
    send(grpc, "logs", "req-span-first", 2);
    assert!(
        wait_until(Duration::from_secs(10), || logs_with(&c, "req-span-first")
            .len()
            == 2),
        "{}",
        c.metrics()
    );
    for l in logs_with(&c, "req-span-first") {
        assert_eq!(hex(&l.value["traceId"]), span["trace_id"].as_str().unwrap());
    }

    // Logs whose span never comes are held (10 min) until shutdown releases them.
    send(grpc, "logs", "req-orphan", 2);
    assert!(wait_until(Duration::from_secs(10), || {
        c.metric_or_zero("otelcol_processor_correlation_held_log_records", &PROCESSOR) == 2.0
    }));
    let status = c.stop();
    assert!(status.success(), "{status}\n{}", c.stderr());
    let orphans = logs_with(&c, "req-orphan");
    assert_eq!(orphans.len(), 2, "{}", c.stderr());
    for l in orphans {
        assert_eq!(hex(&l.value["traceId"]), "", "{:?}", l.value);
    }
}
