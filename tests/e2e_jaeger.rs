//! The `jaeger` exporter end to end.
//!
//! - `grpc_api_v2`: the OpenTelemetry Python SDK → confluo's `otlp` receiver
//!   → `jaeger` → a Jaeger collector contract server
//!   (`tests/e2e/python/jaeger_contract.py`) that decodes `PostSpans` with
//!   the generated `model_pb2` / `collector_pb2_grpc` of the PyPI package
//!   opentelemetry-exporter-jaeger-proto-grpc — no code shared with the
//!   exporter — and can answer with gRPC errors. The mapping is checked field
//!   by field against what the SDK says it sent.
//! - `otlp_grpc`: confluo → `jaeger` (OTLP) → a second confluo with the file
//!   exporter, compared with the SDK's own account.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The Jaeger collector contract server; it records to `{DIR}/jaeger.jsonl`.
/// It runs on `.venv-jaeger`'s Python: its protobuf pins clash with the
/// SDK's (tests/e2e/requirements-jaeger.txt).
struct Jaeger(ContractServer);

impl Jaeger {
    fn start(args: &[&str]) -> Jaeger {
        Jaeger(ContractServer::start_with(
            &venv_bin("jaeger", "python"),
            "jaeger_contract.py",
            &[&["{DIR}/jaeger.jsonl"], args].concat(),
        ))
    }

    fn rows(&self) -> Vec<Value> {
        self.0.jsonl("jaeger.jsonl")
    }

    fn of_type(&self, t: &str) -> Vec<Value> {
        self.rows().into_iter().filter(|r| r["type"] == t).collect()
    }

    fn spans(&self) -> Vec<Value> {
        self.of_type("span")
    }

    fn calls(&self) -> Vec<Value> {
        self.of_type("call")
    }
}

/// confluo: OTLP/gRPC in, `jaeger` (configured by `exporter_yaml`, indented
/// under the exporter) out. Returns it and its OTLP/gRPC port.
fn start_confluo(exporter_yaml: &str) -> (Confluo, u16) {
    start_otlp_to_exporter(
        "grpc",
        "jaeger",
        &format!("{exporter_yaml}\n{FAST_RETRY}"),
        &["traces"],
    )
}

fn api_v2_exporter(jaeger: &Jaeger, extra: &str) -> String {
    format!(
        "    protocol: grpc_api_v2\n    endpoint: 127.0.0.1:{}\n    tls:\n      insecure: true\n{extra}",
        jaeger.0.port
    )
}

fn metric(c: &Confluo, name: &str) -> f64 {
    c.metric_or_zero(name, &[("exporter", "jaeger")])
}

fn tag(key: &str, ty: &str, value: Value) -> Value {
    json!({"key": key, "type": ty, "value": value})
}

/// A sender's `[key, type, value]` attribute as the Jaeger tag the mapping
/// must produce: arrays become JSON strings (compared parsed, so that number
/// formatting does not matter).
fn expected_tag(attr: &Value) -> Value {
    let (key, ty, value) = (
        attr[0].as_str().unwrap(),
        attr[1].as_str().unwrap(),
        &attr[2],
    );
    match ty {
        "ARRAY" => tag(key, "STRING", value.clone()),
        _ => tag(key, ty, value.clone()),
    }
}

/// A decoded Jaeger tag, with JSON-string values parsed where the expected
/// one is a list (arrays).
fn normalise_tags(tags: &Value, expected: &[Value]) -> Vec<Value> {
    let want_arrays: BTreeMap<&str, bool> = expected
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["value"].is_array()))
        .collect();
    tags.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let key = t["key"].as_str().unwrap();
            if want_arrays.get(key) == Some(&true) && t["type"] == "STRING" {
                let parsed: Value = serde_json::from_str(t["value"].as_str().unwrap())
                    .unwrap_or_else(|e| panic!("tag {key}: not JSON ({e}): {t}"));
                tag(key, "STRING", parsed)
            } else {
                t.clone()
            }
        })
        .collect()
}

const KINDS: [&str; 6] = ["", "internal", "server", "client", "producer", "consumer"];

/// The Jaeger span the mapping must make of one SDK span.
fn expected_span(s: &Value) -> Value {
    let mut tags = vec![tag("otel.scope.name", "STRING", s["scope"][0].clone())];
    if s["scope"][1] != "" {
        tags.push(tag("otel.scope.version", "STRING", s["scope"][1].clone()));
    }
    tags.extend(s["attributes"].as_array().unwrap().iter().map(expected_tag));
    let kind = KINDS[s["kind"].as_u64().unwrap() as usize];
    tags.push(tag("span.kind", "STRING", json!(kind)));
    match s["status_code"].as_u64().unwrap() {
        1 => tags.push(tag("otel.status_code", "STRING", json!("OK"))),
        2 => {
            tags.push(tag("otel.status_code", "STRING", json!("ERROR")));
            tags.push(tag("error", "BOOL", json!(true)));
        }
        _ => {}
    }
    if s["status_message"] != "" {
        tags.push(tag(
            "otel.status_description",
            "STRING",
            s["status_message"].clone(),
        ));
    }
    if s["trace_state"] != "" {
        tags.push(tag("w3c.tracestate", "STRING", s["trace_state"].clone()));
    }
    for (field, key) in [
        ("dropped_attributes", "otel.dropped_attributes_count"),
        ("dropped_events", "otel.dropped_events_count"),
        ("dropped_links", "otel.dropped_links_count"),
    ] {
        if s[field].as_u64().unwrap() > 0 {
            tags.push(tag(key, "INT64", s[field].clone()));
        }
    }
    let mut references = Vec::new();
    if s["parent_span_id"] != "" {
        references.push(json!({"ref_type": "CHILD_OF", "trace_id": s["trace_id"], "span_id": s["parent_span_id"]}));
    }
    for l in s["links"].as_array().unwrap() {
        let child_of = l["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a[0] == "opentracing.ref_type" && a[2] == "child_of");
        let ref_type = if child_of { "CHILD_OF" } else { "FOLLOWS_FROM" };
        // A link to the parent itself only retypes the parent's reference.
        if s["parent_span_id"] != ""
            && l["span_id"] == s["parent_span_id"]
            && l["trace_id"] == s["trace_id"]
        {
            references[0]["ref_type"] = json!(ref_type);
            continue;
        }
        references.push(json!({
            "ref_type": ref_type,
            "trace_id": l["trace_id"],
            "span_id": l["span_id"],
        }));
    }
    let logs: Vec<Value> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let attrs = e["attributes"].as_array().unwrap();
            let mut fields = Vec::new();
            if !attrs.iter().any(|a| a[0] == "event") {
                fields.push(tag("event", "STRING", e["name"].clone()));
            }
            fields.extend(attrs.iter().map(expected_tag));
            json!({"ts_ns": e["ts_ns"], "fields": fields})
        })
        .collect();
    let mut process_tags: Vec<Value> = s["resource"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "service.name")
        .map(|(k, v)| tag(k, v[0].as_str().unwrap(), v[1].clone()))
        .collect();
    process_tags.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    json!({
        "trace_id": s["trace_id"],
        "span_id": s["span_id"],
        "operation_name": s["name"],
        "flags": 0,
        "start_ns": s["start_ns"],
        "duration_ns": s["end_ns"].as_u64().unwrap() - s["start_ns"].as_u64().unwrap(),
        "tags": tags,
        "logs": logs,
        "references": references,
        "process": {"service_name": s["service"], "tags": process_tags},
        "warnings": [],
    })
}

/// What the contract server decoded, normalised for comparison: array tags
/// parsed, process tags sorted (the SDK's resource is a map).
fn decoded_span(got: &Value, want: &Value) -> Value {
    let mut got = got.clone();
    let want_tags = want["tags"].as_array().unwrap();
    got["tags"] = Value::Array(normalise_tags(&got["tags"], want_tags));
    let logs: Vec<Value> = got["logs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want["logs"].as_array().unwrap())
        .map(|(g, w)| {
            json!({"ts_ns": g["ts_ns"], "fields": normalise_tags(&g["fields"], w["fields"].as_array().unwrap())})
        })
        .collect();
    if logs.len() == want["logs"].as_array().unwrap().len() {
        got["logs"] = Value::Array(logs);
    }
    let mut ptags = got["process"]["tags"].as_array().unwrap().clone();
    ptags.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    got["process"]["tags"] = Value::Array(ptags);
    got.as_object_mut().unwrap().remove("type");
    got.as_object_mut().unwrap().remove("call");
    got
}

fn wait_for_spans(jaeger: &Jaeger, confluo: &Confluo, n: usize) -> Vec<Value> {
    let arrived = wait_until(Duration::from_secs(20), || jaeger.spans().len() >= n);
    assert!(
        arrived,
        "{} of {n} spans reached the contract server\n--- calls ---\n{:#?}\n--- confluo stderr ---\n{}",
        jaeger.spans().len(),
        jaeger.calls(),
        confluo.stderr()
    );
    jaeger.spans()
}

fn assert_no_violations(jaeger: &Jaeger) {
    for c in jaeger.calls() {
        assert_eq!(c["violations"], json!([]), "contract violations in {c}");
    }
}

#[test]
fn python_sdk_spans_reach_jaeger_api_v2_mapped_field_by_field() {
    let jaeger = Jaeger::start(&[]);
    let (confluo, grpc_port) = start_confluo(&api_v2_exporter(
        &jaeger,
        "    headers:\n      x-tenant: team-j\n    compression: gzip\n",
    ));
    let sent = run_python(
        "jaeger_send.py",
        &["--endpoint", &format!("127.0.0.1:{grpc_port}")],
    );
    let sent_spans = sent["spans"].as_array().unwrap();
    assert_eq!(sent_spans.len(), 5, "{sent}");
    let got = wait_for_spans(&jaeger, &confluo, sent_spans.len());
    assert_no_violations(&jaeger);
    assert_eq!(got.len(), sent_spans.len(), "each span exactly once");

    for s in sent_spans {
        let want = expected_span(s);
        let matches: Vec<&Value> = got
            .iter()
            .filter(|g| g["span_id"] == s["span_id"])
            .collect();
        assert_eq!(
            matches.len(),
            1,
            "span {} ({}) not delivered once",
            s["name"],
            s["span_id"]
        );
        let have = decoded_span(matches[0], &want);
        assert_eq!(
            have, want,
            "span {} mapped wrongly\n--- decoded ---\n{:#}\n--- expected ---\n{:#}",
            s["name"], have, want
        );
    }

    // The cases the sender built on purpose are really there (so the
    // comparison above is not vacuous).
    let by_name = |n: &str| got.iter().find(|g| g["operation_name"] == n).unwrap();
    let has_tag = |span: &Value, key: &str| {
        span["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == key)
    };
    assert!(has_tag(by_name("checkout"), "w3c.tracestate"));
    assert_eq!(by_name("checkout")["references"][0]["ref_type"], "CHILD_OF");
    assert!(has_tag(by_name("db.query"), "error"));
    assert!(has_tag(by_name("work"), "otel.dropped_attributes_count"));
    assert_eq!(
        by_name("publish")["references"][1]["ref_type"],
        "FOLLOWS_FROM"
    );
    assert_eq!(
        by_name("publish")["references"][1]["span_id"],
        by_name("db.query")["span_id"]
    );
    assert_eq!(by_name("consume")["references"][0]["ref_type"], "CHILD_OF");
    assert_eq!(
        by_name("db.query")["logs"][0]["fields"][0]["value"],
        "custom-event"
    );

    // One process per batch, and every call carried the configured header.
    let calls = jaeger.calls();
    let services: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["service"].as_str()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["jaeger-e2e-shop", "jaeger-e2e-worker"]
    );
    for c in &calls {
        assert_eq!(c["code"], "OK", "{c}");
        assert_eq!(c["metadata"]["x-tenant"], "team-j", "{c}");
    }
    assert!(wait_until(Duration::from_secs(5), || metric(
        &confluo,
        "otelcol_exporter_sent_spans"
    ) == 5.0));
    assert_eq!(metric(&confluo, "otelcol_exporter_send_failed_spans"), 0.0);
}

fn send_ten(grpc_port: u16, service: &str) -> Value {
    run_python(
        "send_otlp.py",
        &[
            "--protocol",
            "grpc",
            "--endpoint",
            &format!("127.0.0.1:{grpc_port}"),
            "--signal",
            "traces",
            "--count",
            "10",
            "--service",
            service,
        ],
    )
}

#[test]
fn unavailable_answers_are_retried_until_jaeger_takes_the_spans() {
    let jaeger = Jaeger::start(&["--fail-first", "2", "--fail-code", "UNAVAILABLE"]);
    let (confluo, grpc_port) = start_confluo(&api_v2_exporter(&jaeger, ""));
    let sent = send_ten(grpc_port, "jaeger-retry");
    let got = wait_for_spans(&jaeger, &confluo, 10);
    assert_no_violations(&jaeger);

    let mut want = str_list(&sent["span_ids"]);
    let mut have: Vec<String> = got
        .iter()
        .map(|g| g["span_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    have.sort();
    assert_eq!(have, want, "every span exactly once, after the retries");

    let calls = jaeger.calls();
    let codes: Vec<&str> = calls.iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(&codes[..2], ["UNAVAILABLE", "UNAVAILABLE"], "{calls:#?}");
    assert!(codes[2..].iter().all(|c| *c == "OK"), "{calls:#?}");
    let delivered: u64 = calls
        .iter()
        .filter(|c| c["code"] == "OK")
        .map(|c| c["spans"].as_u64().unwrap())
        .sum();
    assert_eq!(delivered, 10, "{calls:#?}");
    assert!(wait_until(Duration::from_secs(5), || metric(
        &confluo,
        "otelcol_exporter_sent_spans"
    ) == 10.0));
}

#[test]
fn permanent_errors_are_not_retried() {
    let jaeger = Jaeger::start(&["--fail-first", "1", "--fail-code", "INVALID_ARGUMENT"]);
    let (confluo, grpc_port) = start_confluo(&api_v2_exporter(&jaeger, ""));
    send_ten(grpc_port, "jaeger-permanent");

    let failed_spans = || {
        jaeger
            .calls()
            .iter()
            .filter(|c| c["code"] == "INVALID_ARGUMENT")
            .map(|c| c["spans"].as_u64().unwrap())
            .sum::<u64>()
    };
    // Everything not refused arrives; the refused request is dropped.
    let settled = wait_until(Duration::from_secs(20), || {
        failed_spans() > 0 && jaeger.spans().len() as u64 + failed_spans() == 10
    });
    assert!(
        settled,
        "calls: {:#?}\n--- confluo stderr ---\n{}",
        jaeger.calls(),
        confluo.stderr()
    );
    assert!(wait_until(Duration::from_secs(5), || metric(
        &confluo,
        "otelcol_exporter_send_failed_spans"
    ) == failed_spans()
        as f64));
    // Give a wrong retry the time to happen (backoff starts at 50 ms).
    std::thread::sleep(Duration::from_millis(600));
    let calls = jaeger.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c["code"] == "INVALID_ARGUMENT")
            .count(),
        1,
        "{calls:#?}"
    );
    assert_eq!(
        jaeger.spans().len() as u64 + failed_spans(),
        10,
        "{calls:#?}"
    );
}

#[test]
fn otlp_grpc_protocol_delivers_to_an_otlp_endpoint() {
    let gw_grpc = free_port();
    let gateway = Confluo::start(&file_pipeline_config(
        gw_grpc,
        free_port(),
        free_port(),
        &[],
        "",
    ));
    let out = gateway.path("out.jsonl");
    // No protocol: otlp_grpc is the default.
    let (confluo, grpc_port) = start_confluo(&format!(
        "    endpoint: 127.0.0.1:{gw_grpc}\n    tls:\n      insecure: true\n"
    ));
    let sent = send_ten(grpc_port, "jaeger-otlp");
    let arrived = wait_until(Duration::from_secs(20), || {
        spans_in(&read_file_exporter(&out)).len() >= 10
    });
    assert!(
        arrived,
        "spans did not reach the OTLP endpoint\n--- confluo stderr ---\n{}",
        confluo.stderr()
    );
    assert_traces_match(&sent, &spans_in(&read_file_exporter(&out)));
    assert!(wait_until(Duration::from_secs(5), || metric(
        &confluo,
        "otelcol_exporter_sent_spans"
    ) == 10.0));
}
