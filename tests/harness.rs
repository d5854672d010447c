//! Tests of the test harness itself (tests/common), no binary needed.
mod common;

use common::*;

#[test]
fn prometheus_parsing() {
    let text = "# HELP x\n# TYPE otelcol_receiver_accepted_spans counter\n\
        otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 10\n\
        otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"http\"} 5\n\
        otelcol_exporter_queue_size{exporter=\"otlp_grpc\",service_name=\"a \\\"b\\\"\"} 2 1700000000\n\
        up 1\n";
    assert_eq!(
        parse_metric(
            text,
            "otelcol_receiver_accepted_spans",
            &[("transport", "grpc")]
        ),
        Some(10.0)
    );
    assert_eq!(
        parse_metric(
            text,
            "otelcol_receiver_accepted_spans",
            &[("receiver", "otlp")]
        ),
        Some(15.0)
    );
    assert_eq!(
        parse_metric(
            text,
            "otelcol_receiver_accepted_spans",
            &[("transport", "x")]
        ),
        None
    );
    assert_eq!(
        parse_metric(
            text,
            "otelcol_exporter_queue_size",
            &[("service_name", "a \"b\"")]
        ),
        Some(2.0)
    );
    assert_eq!(parse_metric(text, "up", &[]), Some(1.0));
    assert_eq!(parse_metric(text, "otelcol_receiver_accepted", &[]), None);
}

#[test]
fn telemetry_address_is_found() {
    let y = file_pipeline_config(1, 2, 3456, &[], "");
    assert_eq!(telemetry_address(&y).as_deref(), Some("127.0.0.1:3456"));
    assert!(y.contains("path: {{DIR}}/out.jsonl"), "{y}");
}

#[test]
fn http_response_parsing() {
    let raw = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let r = parse_response(raw).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.text(), "hello world");
}

#[test]
fn enum_names_and_numbers() {
    use serde_json::json;
    assert_eq!(enum_value(&json!(2)), 2);
    assert_eq!(enum_value(&json!("SPAN_KIND_CLIENT")), 3);
    assert_eq!(enum_value(&json!("SEVERITY_NUMBER_WARN")), 13);
    assert_eq!(enum_value(&json!("SEVERITY_NUMBER_INFO3")), 11);
    assert_eq!(enum_value(&json!(null)), 0);
}

#[test]
fn file_exporter_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.jsonl");
    assert!(read_file_exporter(&p).is_empty(), "a missing file is empty");
    std::fs::write(&p, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"s\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"x\"},\"spans\":[{\"name\":\"a\"},{\"name\":\"b\"}]}]}]}\n{\"resourceSpa").unwrap();
    let rows = read_file_exporter(&p);
    assert_eq!(rows.len(), 1, "the partial last line is skipped");
    let spans = spans_in(&rows);
    assert_eq!(spans.len(), 2);
    assert_eq!(
        spans[0].resource["service.name"],
        serde_json::json!({"stringValue": "s"})
    );
    assert_eq!(count_items("traces", &rows), 2);
}
