//! Real OpenTelemetry SDKs → confluo's `otlp` receiver → `file` exporter.
//!
//! Each test starts confluo on ephemeral loopback ports, sends one signal with
//! an SDK (Python over gRPC or HTTP/protobuf, JavaScript over HTTP/JSON),
//! waits for the file exporter to hold everything, checks the self-metrics,
//! stops confluo with SIGTERM (exit 0) and then checks that the file holds
//! exactly what the SDK reported sending, value by value.
mod common;

use std::time::Duration;

use common::*;

#[derive(Clone, Copy, Debug)]
enum Sender {
    /// Python SDK, OTLP/gRPC exporter.
    PyGrpc,
    /// Python SDK, OTLP/HTTP protobuf exporter (gzip-compressed when `gzip`).
    PyHttp { gzip: bool },
    /// JavaScript SDK, OTLP/HTTP JSON exporter.
    JsJson,
}

impl Sender {
    fn transport(self) -> &'static str {
        match self {
            Sender::PyGrpc => "grpc",
            Sender::PyHttp { .. } | Sender::JsJson => "http",
        }
    }
}

/// Self-metric names of the Collector for a signal: (receiver accepted, exporter sent).
fn self_metric_names(signal: &str) -> (&'static str, &'static str) {
    match signal {
        "traces" => (
            "otelcol_receiver_accepted_spans",
            "otelcol_exporter_sent_spans",
        ),
        "metrics" => (
            "otelcol_receiver_accepted_metric_points",
            "otelcol_exporter_sent_metric_points",
        ),
        "logs" => (
            "otelcol_receiver_accepted_log_records",
            "otelcol_exporter_sent_log_records",
        ),
        s => panic!("unknown signal {s}"),
    }
}

fn send(
    sender: Sender,
    signal: &str,
    count: usize,
    grpc_port: u16,
    http_port: u16,
) -> serde_json::Value {
    let count_s = count.to_string();
    let request_id = format!("{signal}-{sender:?}-{}", std::process::id());
    let common_args = [
        "--signal",
        signal,
        "--count",
        &count_s,
        "--attr",
        "deployment.environment=e2e",
        "--attr",
        "host.name=confluo-test-host",
        "--request-id",
        &request_id,
    ];
    match sender {
        Sender::PyGrpc => {
            let ep = format!("127.0.0.1:{grpc_port}");
            let mut args = vec![
                "--protocol",
                "grpc",
                "--endpoint",
                &ep,
                "--service",
                "py-grpc-svc",
            ];
            args.extend_from_slice(&common_args);
            run_python("send_otlp.py", &args)
        }
        Sender::PyHttp { gzip } => {
            let ep = format!("http://127.0.0.1:{http_port}");
            let mut args = vec![
                "--protocol",
                "http",
                "--endpoint",
                &ep,
                "--service",
                "py-http-svc",
            ];
            if gzip {
                args.extend_from_slice(&["--compression", "gzip"]);
            }
            args.extend_from_slice(&common_args);
            run_python("send_otlp.py", &args)
        }
        Sender::JsJson => {
            let ep = format!("http://127.0.0.1:{http_port}");
            let mut args = vec!["--endpoint", ep.as_str(), "--service", "js-json-svc"];
            args.extend_from_slice(&common_args);
            run_node("send_otlp_json.mjs", &args)
        }
    }
}

/// Send `count` items of `signal` with `sender` through a fresh confluo and
/// check everything that can be checked.
fn roundtrip(
    sender: Sender,
    signal: &str,
    count: usize,
    processors: &[&str],
    processor_config: &str,
) {
    let (grpc, http, tel) = (free_port(), free_port(), free_port());
    let mut c = Confluo::start(&file_pipeline_config(
        grpc,
        http,
        tel,
        processors,
        processor_config,
    ));
    let out = c.path("out.jsonl");

    let summary = send(sender, signal, count, grpc, http);
    assert_eq!(summary["ok"], true, "sender reported failure: {summary}");
    assert_eq!(
        summary["count"].as_u64(),
        Some(count as u64),
        "sender summary: {summary}"
    );

    assert!(
        wait_until(Duration::from_secs(15), || count_items(
            signal,
            &read_file_exporter(&out)
        ) >= count),
        "the file exporter wrote {} of {count} {signal} items within 15 s",
        count_items(signal, &read_file_exporter(&out))
    );

    // Self-telemetry: the receiver accepted exactly what was sent, on the
    // right transport, and the exporter sent all of it.
    let (accepted, sent) = self_metric_names(signal);
    let labels = [("receiver", "otlp"), ("transport", sender.transport())];
    let mut last = None;
    let ok = wait_until(Duration::from_secs(5), || {
        last = c.metric_value(accepted, &labels);
        last == Some(count as f64)
    });
    assert!(
        ok,
        "{accepted}{{receiver=\"otlp\",transport=\"{}\"}} = {last:?}, expected {count}\n--- /metrics ---\n{}",
        sender.transport(),
        c.metrics()
    );
    let mut last = None;
    let ok = wait_until(Duration::from_secs(5), || {
        last = c.metric_value(sent, &[("exporter", "file")]);
        last == Some(count as f64)
    });
    assert!(
        ok,
        "{sent}{{exporter=\"file\"}} = {last:?}, expected {count}\n--- /metrics ---\n{}",
        c.metrics()
    );

    // Graceful stop: exit 0, file flushed, nothing duplicated or lost.
    let status = c.stop();
    assert!(
        status.success(),
        "confluo exited with {status} after SIGTERM\n--- stderr ---\n{}",
        c.stderr()
    );
    let rows = read_file_exporter(&out);
    assert_signal_matches(signal, &summary, &rows);
}

// ------------------------------------------------------------ Python, gRPC

#[test]
fn python_grpc_traces() {
    roundtrip(Sender::PyGrpc, "traces", 25, &[], "");
}

#[test]
fn python_grpc_metrics() {
    roundtrip(Sender::PyGrpc, "metrics", 12, &[], "");
}

#[test]
fn python_grpc_logs() {
    roundtrip(Sender::PyGrpc, "logs", 20, &[], "");
}

// ------------------------------------------------------------ Python, HTTP/protobuf

#[test]
fn python_http_protobuf_traces_gzip() {
    roundtrip(Sender::PyHttp { gzip: true }, "traces", 25, &[], "");
}

#[test]
fn python_http_protobuf_metrics() {
    roundtrip(Sender::PyHttp { gzip: false }, "metrics", 12, &[], "");
}

#[test]
fn python_http_protobuf_logs_through_batch() {
    // Also exercises the batch processor: it must not lose, duplicate or alter items.
    roundtrip(
        Sender::PyHttp { gzip: false },
        "logs",
        30,
        &["batch"],
        "processors:\n  batch:\n    send_batch_size: 8\n    timeout: 100ms\n",
    );
}

// ------------------------------------------------------------ JavaScript, HTTP/JSON

#[test]
fn js_http_json_traces() {
    roundtrip(Sender::JsJson, "traces", 25, &[], "");
}

#[test]
fn js_http_json_metrics() {
    roundtrip(Sender::JsJson, "metrics", 12, &[], "");
}

#[test]
fn js_http_json_logs() {
    roundtrip(Sender::JsJson, "logs", 20, &[], "");
}

// ------------------------------------------------------------ mixed

#[test]
fn all_signals_from_both_sdks_into_one_file() {
    let (grpc, http, tel) = (free_port(), free_port(), free_port());
    let mut c = Confluo::start(&file_pipeline_config(grpc, http, tel, &[], ""));
    let out = c.path("out.jsonl");
    let sent: Vec<(&str, serde_json::Value)> = vec![
        ("traces", send(Sender::PyGrpc, "traces", 9, grpc, http)),
        ("traces", send(Sender::JsJson, "traces", 7, grpc, http)),
        (
            "logs",
            send(Sender::PyHttp { gzip: false }, "logs", 6, grpc, http),
        ),
        ("metrics", send(Sender::JsJson, "metrics", 8, grpc, http)),
    ];
    assert!(
        wait_until(Duration::from_secs(15), || {
            let rows = read_file_exporter(&out);
            count_items("traces", &rows) >= 16
                && count_items("logs", &rows) >= 6
                && count_items("metrics", &rows) >= 8
        }),
        "not everything arrived within 15 s"
    );
    let status = c.stop();
    assert!(status.success(), "exit status {status}\n{}", c.stderr());
    let rows = read_file_exporter(&out);
    for (signal, summary) in &sent {
        let rid = summary["request_id"].as_str().unwrap();
        let items = match *signal {
            "traces" => with_request_id(spans_in(&rows), rid),
            "logs" => with_request_id(logs_in(&rows), rid),
            _ => with_request_id(metrics_in(&rows), rid),
        };
        match *signal {
            "traces" => assert_traces_match(summary, &items),
            "logs" => assert_logs_match(summary, &items),
            _ => assert_metrics_match(summary, &items),
        }
    }
    // Every row is one export request of one signal.
    for (i, row) in rows.iter().enumerate() {
        let keys: Vec<&String> = row
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 1, "row {i} should hold exactly one of resourceSpans/resourceMetrics/resourceLogs: {keys:?}");
    }
}
