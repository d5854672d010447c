//! confluo's `otlp` receiver → `loki` exporter → a Loki contract server
//! (`tests/e2e/python/loki_contract.py`) that decodes pushes with its own
//! code (python-snappy + a protobuf reader written from Loki's field
//! numbers) and answers as Loki does: 204, 400 that stored the valid
//! entries, 429 with Retry-After.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The Loki contract server; it records to `{DIR}/loki.jsonl`.
struct Loki(ContractServer);

impl Loki {
    fn start(args: &[&str]) -> Loki {
        Loki(ContractServer::start(
            "loki_contract.py",
            &[&["{DIR}/loki.jsonl"], args].concat(),
        ))
    }

    fn push_url(&self) -> String {
        format!("{}/loki/api/v1/push", self.0.url())
    }

    fn rows(&self) -> Vec<Value> {
        self.0.jsonl("loki.jsonl")
    }

    fn of_type(&self, t: &str) -> Vec<Value> {
        self.rows().into_iter().filter(|r| r["type"] == t).collect()
    }

    fn entries(&self) -> Vec<Value> {
        self.of_type("entry")
    }

    fn pushes(&self) -> Vec<Value> {
        self.of_type("push")
    }
}

/// confluo with the OTLP/HTTP receiver feeding `loki` configured by `exporter_yaml`
/// (indented under `exporters: loki:`).
fn start_confluo(exporter_yaml: &str) -> (Confluo, u16) {
    start_otlp_to_exporter(
        "http",
        "loki",
        &format!("{exporter_yaml}\n{FAST_RETRY}"),
        &["logs"],
    )
}

/// An OTLP/JSON logs request: (body, attributes) per record, one resource.
fn otlp_logs_json(service: &str, records: &[(&str, Value)]) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let recs: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, (body, attrs))| {
            json!({
                // Deliberately out of order: the exporter sorts per stream.
                "timeUnixNano": (now - 1_000_000 * (i as u64 % 3)).to_string(),
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": body},
                "attributes": attrs,
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
            })
        })
        .collect();
    serde_json::to_vec(&json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "host.name", "value": {"stringValue": "node-7"}}
        ]},
        "scopeLogs": [{"scope": {"name": "e2e"}, "logRecords": recs}]
    }]}))
    .unwrap()
}

fn post_logs(http_port: u16, body: &[u8]) {
    let (status, _, resp) = http_post(
        &format!("127.0.0.1:{http_port}"),
        "/v1/logs",
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
}

fn exporter_metric(c: &Confluo, name: &str) -> f64 {
    c.metric_or_zero(name, &[("exporter", "loki")])
}

fn assert_no_violations(loki: &Loki) {
    for p in loki.pushes() {
        assert_eq!(p["violations"], json!([]), "contract violations in {p}");
        assert!(
            p.get("error").is_none(),
            "push refused by the contract: {p}"
        );
    }
}

#[test]
fn python_sdk_logs_reach_loki_with_labels_lines_and_metadata() {
    let loki = Loki::start(&[]);
    let (confluo, http_port) = start_confluo(&format!(
        "    endpoint: {}\n    tenant: {{ id: team-a }}",
        loki.push_url()
    ));
    let summary = run_python(
        "send_otlp.py",
        &[
            "--protocol",
            "http",
            "--endpoint",
            &format!("http://127.0.0.1:{http_port}"),
            "--signal",
            "logs",
            "--count",
            "10",
            "--service",
            "e2e-loki",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || loki.entries().len() >= 10),
        "Loki holds {} of 10 entries; pushes: {:?}",
        loki.entries().len(),
        loki.pushes()
    );
    assert_no_violations(&loki);
    let entries = loki.entries();
    assert_eq!(entries.len(), 10);
    for p in loki.pushes() {
        assert_eq!(p["status"], 204, "{p}");
        assert_eq!(p["tenant"], "team-a");
        assert_eq!(p["content_type"], "application/x-protobuf");
        assert_eq!(
            p["content_encoding"],
            Value::Null,
            "raw snappy, no Content-Encoding"
        );
    }
    // Each record as the SDK reported it, by body.
    let want: BTreeMap<String, &Value> = summary["log_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["body"].as_str().unwrap().to_string(), r))
        .collect();
    for e in &entries {
        let line: Value = serde_json::from_str(e["line"].as_str().unwrap()).expect("json line");
        let body = line["body"].as_str().expect("body in line").to_string();
        let w = want
            .get(&body)
            .unwrap_or_else(|| panic!("unexpected line {line}"));
        assert_eq!(e["labels"]["service_name"], "e2e-loki", "{e}");
        let level = if w["severity_number"].as_i64().unwrap() >= 13 {
            "warn"
        } else {
            "info"
        };
        assert_eq!(e["labels"]["level"], level, "{e}");
        assert_eq!(e["metadata"]["trace_id"], w["trace_id"], "{e}");
        assert_eq!(e["metadata"]["span_id"], w["span_id"], "{e}");
        assert_eq!(e["metadata"]["telemetry_sdk_language"], "python", "{e}");
        assert_eq!(line["test.string"], "hello confluo");
        assert_eq!(line["test.int"], 42);
        assert_eq!(line["test.array.string"], json!(["a", "b", "c"]));
        assert!(
            line.get("trace_id").is_none(),
            "trace ids stay out of the line"
        );
    }
    let mut bodies: Vec<String> = entries
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e["line"].as_str().unwrap()).unwrap()["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        want.keys().cloned().collect::<Vec<_>>(),
        "each line exactly once"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        exporter_metric(&confluo, "otelcol_exporter_sent_log_records") == 10.0
    }));
    assert_eq!(
        exporter_metric(&confluo, "otelcol_exporter_send_failed_log_records"),
        0.0
    );
}

#[test]
fn rate_limited_pushes_are_retried_after_retry_after_and_stored_once() {
    let loki = Loki::start(&[
        "--fail-first",
        "1",
        "--fail-status",
        "429",
        "--retry-after",
        "1",
    ]);
    let (confluo, http_port) = start_confluo(&format!("    endpoint: {}", loki.push_url()));
    let recs: Vec<(&str, Value)> = vec![("r0", json!([])), ("r1", json!([])), ("r2", json!([]))];
    post_logs(http_port, &otlp_logs_json("svc-429", &recs));
    assert!(
        wait_until(Duration::from_secs(20), || loki.entries().len() >= 3),
        "pushes: {:?}",
        loki.pushes()
    );
    assert_no_violations(&loki);
    let pushes = loki.pushes();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert_eq!(pushes[0]["status"], 429);
    assert_eq!(pushes[1]["status"], 204);
    let waited = pushes[1]["at"].as_f64().unwrap() - pushes[0]["at"].as_f64().unwrap();
    assert!(
        waited >= 0.9,
        "the retry came {waited:.3}s after a Retry-After: 1"
    );
    let entries = loki.entries();
    assert_eq!(entries.len(), 3, "stored exactly once");
    // Sorted within the stream, although sent out of order.
    let ts: Vec<u64> = entries.iter().map(|e| e["ts"].as_u64().unwrap()).collect();
    let mut sorted = ts.clone();
    sorted.sort();
    assert_eq!(ts, sorted);
    assert!(wait_until(Duration::from_secs(5), || {
        exporter_metric(&confluo, "otelcol_exporter_sent_log_records") == 3.0
    }));
}

#[test]
fn a_400_is_partial_counted_and_never_retried() {
    let loki = Loki::start(&[]);
    let (confluo, http_port) = start_confluo(&format!(
        "    endpoint: {}\n    line_format: logfmt",
        loki.push_url()
    ));
    let recs: Vec<(&str, Value)> = vec![
        ("good 1", json!([])),
        ("REJECT_ME bad", json!([])),
        (
            "good 2",
            json!([{"key": "user", "value": {"stringValue": "bob smith"}}]),
        ),
        ("good 3", json!([])),
    ];
    post_logs(http_port, &otlp_logs_json("svc-400", &recs));
    assert!(
        wait_until(Duration::from_secs(20), || {
            exporter_metric(&confluo, "otelcol_exporter_send_failed_log_records") >= 1.0
        }),
        "pushes: {:?}\n{}",
        loki.pushes(),
        confluo.stderr()
    );
    assert_eq!(
        exporter_metric(&confluo, "otelcol_exporter_send_failed_log_records"),
        1.0
    );
    assert_eq!(
        exporter_metric(&confluo, "otelcol_exporter_sent_log_records"),
        3.0
    );
    assert_eq!(
        confluo.metric_or_zero(
            "otelcol_exporter_loki_rejected_log_records",
            &[("exporter", "loki"), ("reason", "out_of_order")]
        ),
        1.0
    );
    let mut lines: Vec<String> = loki
        .entries()
        .iter()
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "msg=\"good 1\"",
            "msg=\"good 2\" user=\"bob smith\"",
            "msg=\"good 3\""
        ]
    );
    // Retries run every 50–200ms here: half a second without a second push
    // means the 400 was not retried.
    std::thread::sleep(Duration::from_millis(500));
    let pushes = loki.pushes();
    assert_eq!(pushes.len(), 1, "a 400 must not be retried: {pushes:?}");
    assert_eq!(pushes[0]["status"], 400);
    assert_eq!(pushes[0]["rejected"], 1);
    let warned = confluo
        .stderr()
        .lines()
        .filter(|l| l.contains("loki_lines_rejected"))
        .count();
    assert_eq!(warned, 1, "logged once:\n{}", confluo.stderr());
}

#[test]
fn json_protocol_with_tenants_from_an_attribute() {
    let loki = Loki::start(&["--require-tenant"]);
    let (_confluo, http_port) = start_confluo(&format!(
        "    endpoint: {}\n    protocol: push_json\n    tenant: {{ from_attribute: tenant, id: default-team }}",
        loki.push_url()
    ));
    let t = |v: &str| json!([{"key": "tenant", "value": {"stringValue": v}}]);
    let recs: Vec<(&str, Value)> = vec![
        ("for a", t("team-a")),
        ("for b", t("team-b")),
        ("no tenant", json!([])),
        ("also a", t("team-a")),
    ];
    post_logs(http_port, &otlp_logs_json("svc-json", &recs));
    assert!(
        wait_until(Duration::from_secs(20), || loki.entries().len() >= 4),
        "pushes: {:?}",
        loki.pushes()
    );
    assert_no_violations(&loki);
    for p in loki.pushes() {
        assert_eq!(p["content_type"], "application/json");
        assert_eq!(p["content_encoding"], "gzip");
        assert_eq!(p["status"], 204, "{p}");
    }
    let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in loki.entries() {
        let line: Value = serde_json::from_str(e["line"].as_str().unwrap()).unwrap();
        by_tenant
            .entry(e["tenant"].as_str().unwrap().to_string())
            .or_default()
            .push(line["body"].as_str().unwrap().to_string());
        assert_eq!(
            e["metadata"]["trace_id"],
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(e["labels"]["service_name"], "svc-json");
    }
    for v in by_tenant.values_mut() {
        v.sort();
    }
    assert_eq!(
        by_tenant,
        BTreeMap::from([
            ("default-team".to_string(), vec!["no tenant".to_string()]),
            (
                "team-a".to_string(),
                vec!["also a".to_string(), "for a".to_string()]
            ),
            ("team-b".to_string(), vec!["for b".to_string()]),
        ])
    );
}

#[test]
fn otlp_protocol_posts_to_lokis_native_endpoint() {
    let loki = Loki::start(&[]);
    let (confluo, http_port) = start_confluo(&format!(
        "    endpoint: http://127.0.0.1:{}/otlp\n    protocol: otlp\n    tenant: {{ id: team-o }}",
        loki.0.port
    ));
    let recs: Vec<(&str, Value)> = vec![("o1", json!([])), ("o2", json!([]))];
    post_logs(http_port, &otlp_logs_json("svc-otlp", &recs));
    assert!(
        wait_until(Duration::from_secs(20), || !loki.of_type("otlp").is_empty()),
        "rows: {:?}",
        loki.rows()
    );
    let o = &loki.of_type("otlp")[0];
    assert_eq!(o["path"], "/otlp/v1/logs");
    assert_eq!(o["records"], 2);
    assert_eq!(o["bodies"], json!(["o1", "o2"]));
    assert_eq!(o["services"], json!(["svc-otlp"]));
    assert_eq!(o["tenant"], "team-o");
    assert_eq!(o["content_encoding"], "gzip");
    assert!(wait_until(Duration::from_secs(5), || {
        exporter_metric(&confluo, "otelcol_exporter_sent_log_records") == 2.0
    }));
}
