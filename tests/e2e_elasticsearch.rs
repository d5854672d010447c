//! confluo (otlp receiver → `elasticsearch` exporter) against the `_bulk`
//! contract server `tests/e2e/python/es_contract.py`, which parses NDJSON
//! strictly and answers per item (201, 429 once, 500 once, 409 on a
//! duplicate `_id`, 400 mapper errors) or fails whole requests as scripted.
//! The tests check which documents were stored, which were retried (from
//! the server's request log) and which were dropped and counted.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// The `_bulk` contract server: stored documents go to `{DIR}/store.jsonl`,
/// one row per bulk request to `{DIR}/requests.jsonl`.
struct EsServer(ContractServer);

impl EsServer {
    fn start(args: &[&str]) -> EsServer {
        let files = [
            "--store",
            "{DIR}/store.jsonl",
            "--requests",
            "{DIR}/requests.jsonl",
        ];
        EsServer(ContractServer::start(
            "es_contract.py",
            &[&files, args].concat(),
        ))
    }

    fn url(&self) -> String {
        self.0.url()
    }

    fn stored(&self) -> Vec<Value> {
        self.0.jsonl("store.jsonl")
    }

    fn requests(&self) -> Vec<Value> {
        self.0.jsonl("requests.jsonl")
    }
}

struct Ports {
    http: u16,
    telemetry: u16,
}

fn config(ports: &Ports, exporter: &str) -> String {
    otlp_to_exporter_config(
        "http",
        ports.http,
        ports.telemetry,
        "elasticsearch",
        &format!(
            "{exporter}\n    timeout: 5s\n    sending_queue:\n      num_consumers: 2\n      batch:\n        flush_timeout: 100ms\n"
        ),
        &["logs", "traces"],
    )
}

fn ports() -> Ports {
    Ports {
        http: free_port(),
        telemetry: free_port(),
    }
}

/// An OTLP/JSON logs request, one record per body, with resource and record
/// attributes.
fn logs_request(bodies: &[&str], record_attrs: &[(&str, &str)]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let attrs: Vec<Value> = record_attrs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "timeUnixNano": (now + i as u128).to_string(),
                "severityNumber": 13,
                "severityText": "WARN",
                "body": {"stringValue": b},
                "attributes": attrs,
                "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                "spanId": "00f067aa0ba902b7",
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "crafted"}},
            {"key": "host.name", "value": {"stringValue": "box-1"}},
            {"key": "team", "value": {"stringValue": "payments"}}
        ]},
        "scopeLogs": [{"scope": {"name": "raw"}, "logRecords": records}]
    }]})
    .to_string()
}

fn post_logs(port: u16, body: &str) {
    let (status, _, resp) = http_post(
        &format!("127.0.0.1:{port}"),
        "/v1/logs",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
}

fn message(doc: &Value) -> String {
    let s = &doc["source"];
    s["body"]["text"]
        .as_str()
        .or_else(|| s["message"].as_str())
        .or_else(|| s["name"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// How many bulk requests carried a document with this message, and with which item statuses.
fn attempts(requests: &[Value], msg: &str) -> Vec<u64> {
    requests
        .iter()
        .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["message"] == msg)
        .map(|i| i["status"].as_u64().unwrap())
        .collect()
}

fn metric(c: &Confluo, name: &str, labels: &[(&str, &str)]) -> f64 {
    c.metric_or_zero(name, labels)
}

#[test]
fn sdk_logs_traces_and_per_item_statuses() {
    let es = EsServer::start(&["--api-key", "c2VjcmV0OmtleQ=="]);
    let p = ports();
    let mut confluo = Confluo::start(&config(
        &p,
        &format!(
            "    endpoint: {}\n    api_key: c2VjcmV0OmtleQ==\n    id:\n      deterministic: true\n    retry:\n      initial_interval: 50ms\n      max_interval: 200ms",
            es.url()
        ),
    ));

    // 1. Real SDK logs.
    let endpoint = format!("http://127.0.0.1:{}", p.http);
    let summary = run_python(
        "send_otlp.py",
        &[
            "--protocol",
            "http",
            "--endpoint",
            &endpoint,
            "--signal",
            "logs",
            "--count",
            "10",
            "--service",
            "es-e2e",
        ],
    );
    assert_eq!(summary["count"], 10);
    assert!(
        wait_until(WAIT, || es.stored().len() >= 10),
        "stored {:?}\n{}",
        es.stored(),
        confluo.stderr()
    );
    let stored = es.stored();
    assert_eq!(stored.len(), 10);
    let by_body: BTreeMap<String, &Value> = stored.iter().map(|d| (message(d), d)).collect();
    for rec in summary["log_records"].as_array().unwrap() {
        let body = rec["body"].as_str().unwrap();
        let doc = by_body
            .get(body)
            .unwrap_or_else(|| panic!("no document for {body}"));
        assert_eq!(doc["index"], "logs-generic.otel-default");
        assert_eq!(doc["op"], "create");
        assert_eq!(doc["id"].as_str().unwrap().len(), 32, "deterministic _id");
        let s = &doc["source"];
        assert_eq!(s["severity_text"], rec["severity_text"]);
        assert_eq!(s["severity_number"], rec["severity_number"]);
        assert_eq!(s["trace_id"], rec["trace_id"]);
        assert_eq!(s["span_id"], rec["span_id"]);
        assert_eq!(s["attributes"]["test.int"], 42);
        assert_eq!(s["attributes"]["test.array.string"], json!(["a", "b", "c"]));
        assert_eq!(s["resource"]["attributes"]["service.name"], "es-e2e");
        assert_eq!(
            s["data_stream"],
            json!({"type": "logs", "dataset": "generic.otel", "namespace": "default"})
        );
        let ts = s["@timestamp"].as_str().unwrap();
        assert!(ts.len() == 30 && ts.ends_with('Z'), "{ts}");
    }
    let reqs = es.requests();
    assert!(reqs.iter().all(|r| r["content_encoding"] == "gzip"
        && r["content_type"] == "application/x-ndjson"
        && r["authorization"] == "ApiKey c2VjcmV0OmtleQ=="));

    // 2. Crafted records: one fine, one mapping error, one 429 once, one 500 once.
    post_logs(
        p.http,
        &logs_request(
            &["fine one", "bad MAP_ERR", "slow RETRY429", "broken ITEM500"],
            &[
                ("data_stream.dataset", "crafted"),
                ("data_stream.namespace", "e2e"),
            ],
        ),
    );
    let crafted = |es: &EsServer| {
        es.stored()
            .into_iter()
            .filter(|d| d["index"] == "logs-crafted.otel-e2e")
            .map(|d| message(&d))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(WAIT, || {
            metric(
                &confluo,
                "otelcol_exporter_elasticsearch_dropped_documents",
                &[],
            ) >= 2.0
                && crafted(&es).len() >= 2
        }),
        "{:?}\n{}",
        crafted(&es),
        confluo.stderr()
    );
    let mut got = crafted(&es);
    got.sort();
    assert_eq!(
        got,
        vec!["fine one", "slow RETRY429"],
        "stored exactly once each"
    );
    let reqs = es.requests();
    assert_eq!(
        attempts(&reqs, "slow RETRY429"),
        vec![429, 201],
        "retried once"
    );
    assert_eq!(attempts(&reqs, "bad MAP_ERR"), vec![400], "never retried");
    assert_eq!(
        attempts(&reqs, "broken ITEM500"),
        vec![500],
        "500 is not in retry_on_status"
    );
    assert_eq!(
        attempts(&reqs, "fine one"),
        vec![201],
        "not resent with the retry subset"
    );
    let labels = |t: &'static str| [("exporter", "elasticsearch"), ("error_type", t)];
    assert_eq!(
        metric(
            &confluo,
            "otelcol_exporter_elasticsearch_dropped_documents",
            &labels("mapper_parsing_exception")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &confluo,
            "otelcol_exporter_elasticsearch_dropped_documents",
            &labels("internal_server_error")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &confluo,
            "otelcol_exporter_elasticsearch_retried_documents",
            &[("exporter", "elasticsearch")]
        ),
        1.0
    );
    let sent = metric(
        &confluo,
        "otelcol_exporter_sent_log_records",
        &[("exporter", "elasticsearch")],
    );
    assert_eq!(sent, 12.0, "10 SDK records + 2 crafted");
    let stderr = confluo.stderr();
    assert!(
        stderr.contains("elasticsearch_documents_dropped")
            && stderr.contains("mapper_parsing_exception"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("c2VjcmV0OmtleQ=="),
        "the API key never reaches a log line"
    );

    // 3. Spans as documents.
    let summary = run_python(
        "send_otlp.py",
        &[
            "--protocol",
            "http",
            "--endpoint",
            &endpoint,
            "--signal",
            "traces",
            "--count",
            "5",
        ],
    );
    let spans = |es: &EsServer| {
        es.stored()
            .into_iter()
            .filter(|d| d["index"] == "traces-generic.otel-default")
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(WAIT, || spans(&es).len() >= 5),
        "{}",
        confluo.stderr()
    );
    let docs = spans(&es);
    assert_eq!(docs.len(), 5);
    for sp in summary["spans"].as_array().unwrap() {
        let doc = docs
            .iter()
            .map(|d| &d["source"])
            .find(|s| s["span_id"] == sp["span_id"])
            .unwrap_or_else(|| panic!("no document for span {sp}"));
        assert_eq!(doc["name"], sp["name"]);
        assert_eq!(doc["trace_id"], sp["trace_id"]);
        assert_eq!(doc["attributes"]["test.string"], "hello confluo");
        assert!(doc["duration"].as_u64().is_some());
        assert_eq!(
            doc["events"].as_array().unwrap().len(),
            sp["events"].as_array().unwrap().len()
        );
        let code = ["Unset", "Ok", "Error"][sp["status_code"].as_u64().unwrap() as usize];
        assert_eq!(doc["status"]["code"], code);
        if sp["parent_span_id"] != "" {
            assert_eq!(doc["parent_span_id"], sp["parent_span_id"]);
        }
    }
    assert!(confluo.stop().success());
}

/// Scenario: two whole-request 429s, then a request that is stored but
/// whose answer is lost (503). Returns (stored messages, request statuses, confluo).
fn lost_response_scenario(deterministic: bool) -> (Vec<String>, Vec<u64>, Confluo) {
    let es = EsServer::start(&[
        "--fail-first",
        "2",
        "--fail-status",
        "429",
        "--fail-after-store",
        "3",
    ]);
    let p = ports();
    let confluo = Confluo::start(&config(
        &p,
        &format!(
            "    endpoint: {}\n    compression: none\n    id: {{deterministic: {deterministic}}}\n    retry:\n      max_retries: 5\n      initial_interval: 20ms\n      max_interval: 100ms",
            es.url()
        ),
    ));
    post_logs(p.http, &logs_request(&["a", "b", "c"], &[]));
    assert!(
        wait_until(WAIT, || es.requests().len() >= 4
            && metric(
                &confluo,
                "otelcol_exporter_sent_log_records",
                &[("exporter", "elasticsearch")]
            ) >= 3.0),
        "{:?}\n{}",
        es.requests(),
        confluo.stderr()
    );
    let mut stored: Vec<String> = es.stored().iter().map(message).collect();
    stored.sort();
    let statuses = es
        .requests()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert!(
        es.requests()
            .iter()
            .all(|r| r["content_encoding"].is_null()),
        "compression: none"
    );
    (stored, statuses, confluo)
}

#[test]
fn deterministic_ids_make_whole_request_retries_idempotent() {
    let (stored, statuses, confluo) = lost_response_scenario(true);
    assert_eq!(statuses, vec![429, 429, 503, 200]);
    assert_eq!(stored, vec!["a", "b", "c"], "no duplicates");
    assert_eq!(
        metric(
            &confluo,
            "otelcol_exporter_elasticsearch_already_indexed_documents",
            &[("exporter", "elasticsearch")]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &confluo,
            "otelcol_exporter_elasticsearch_dropped_documents",
            &[]
        ),
        0.0
    );
    // The contrast: without deterministic ids the same retry duplicates.
    let (stored, statuses, _c) = lost_response_scenario(false);
    assert_eq!(statuses, vec![429, 429, 503, 200]);
    assert_eq!(stored, vec!["a", "a", "b", "b", "c", "c"]);
}

#[test]
fn ecs_mode_fixed_index_basic_auth_failover_and_5xx_items() {
    let es = EsServer::start(&["--basic", "elastic:pa:ss"]);
    // A closed port first: each attempt fails over to the live endpoint.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let p = ports();
    let confluo = Confluo::start(&config(
        &p,
        &format!(
            "    endpoints: [{dead}, {}]\n    user: elastic\n    password: pa:ss\n    logs_index: app-logs\n    mapping: {{mode: ecs}}\n    retry:\n      initial_interval: 20ms\n      retry_on_status: [429, 500]",
            es.url()
        ),
    ));
    post_logs(
        p.http,
        &logs_request(
            &["plain", "broken ITEM500"],
            &[("exception.type", "KeyError"), ("user.id", "u1")],
        ),
    );
    assert!(
        wait_until(WAIT, || es.stored().len() >= 2),
        "{}",
        confluo.stderr()
    );
    let stored = es.stored();
    assert_eq!(stored.len(), 2);
    let reqs = es.requests();
    assert_eq!(
        attempts(&reqs, "broken ITEM500"),
        vec![500, 201],
        "500 retried when configured"
    );
    let doc = stored.iter().find(|d| message(d) == "plain").unwrap();
    assert_eq!(doc["index"], "app-logs");
    let s = &doc["source"];
    assert_eq!(s["message"], "plain");
    assert_eq!(s["log.level"], "WARN");
    assert_eq!(s["event.severity"], 13);
    assert_eq!(s["trace.id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s["span.id"], "00f067aa0ba902b7");
    assert_eq!(s["service.name"], "crafted");
    assert_eq!(s["host.name"], "box-1");
    assert_eq!(s["labels.team"], "payments");
    assert_eq!(s["labels.user_id"], "u1");
    assert_eq!(s["error.type"], "KeyError");
    assert!(
        s.get("data_stream").is_none(),
        "a fixed index has no data stream fields"
    );
    assert!(reqs.iter().all(|r| r["status"] == 200), "{reqs:?}");
}
