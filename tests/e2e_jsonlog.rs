//! Real Python applications logging with structlog and python-json-logger,
//! shipping their JSON lines over HTTP into confluo's `jsonlog` receiver →
//! `file` exporter; every record is compared with what the app rendered.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOKEN: &str = "e2e-jsonlog-token";

struct Setup {
    confluo: Confluo,
    addr: String,
    url: String,
}

fn start() -> Setup {
    let (port, tel) = (free_port(), free_port());
    let config = format!(
        r#"receivers:
  jsonlog:
    endpoint: 127.0.0.1:{port}
    max_line_size: 2KiB
    bearer_tokens: [{TOKEN}]
    resource:
      deployment.environment: e2e
exporters:
  file:
    path: {{{{DIR}}}}/logs.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{tel}
  pipelines:
    logs:
      receivers: [jsonlog]
      exporters: [file]
"#
    );
    let confluo = Confluo::start(&config);
    let addr = format!("127.0.0.1:{port}");
    Setup {
        url: format!("http://{addr}/v1/logs/json"),
        addr,
        confluo,
    }
}

impl Setup {
    /// Waits until the file exporter holds `n` log records, then returns them.
    fn records(&self, n: usize) -> Vec<Item> {
        let path = self.confluo.path("logs.jsonl");
        let mut items = Vec::new();
        let ok = wait_until(Duration::from_secs(15), || {
            items = logs_in(&read_file_exporter(&path));
            items.len() >= n
        });
        assert!(ok, "expected {n} records in the file, got {}", items.len());
        assert_eq!(items.len(), n, "more records than sent");
        items
    }

    fn accepted_metric(&self) -> f64 {
        self.confluo.metric_or_zero(
            "otelcol_receiver_accepted_log_records",
            &[("receiver", "jsonlog"), ("transport", "http")],
        )
    }
}

/// An OTLP/JSON uint64 (a string per the proto3 JSON mapping, or a number).
fn u64_of(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a u64: {s}")),
        Value::Number(n) => n.as_u64().expect("u64"),
        Value::Null => 0,
        other => panic!("not a u64: {other}"),
    }
}

fn string_value(v: &Value) -> Option<&str> {
    v.get("stringValue").and_then(Value::as_str)
}

/// Checks the fields every format shares and returns the record's attributes.
fn check_common(
    item: &Item,
    line: &Value,
    body_key: &str,
    level_key: &str,
    scope: &str,
    mapped: &[&str],
) -> BTreeMap<String, Value> {
    let r = &item.value;
    let what = format!("record for line {line}");
    assert_eq!(
        string_value(&r["body"]),
        line[body_key].as_str(),
        "body, {what}"
    );
    let level = line[level_key].as_str().unwrap();
    assert_eq!(r["severityText"].as_str(), Some(level), "{what}");
    assert_eq!(
        r["severityNumber"].as_i64(),
        Some(python_level_severity(level)),
        "{what}"
    );
    assert_eq!(
        u64_of(&r["timeUnixNano"]),
        line["_time_ns"].as_u64().unwrap(),
        "time, {what}"
    );
    assert!(u64_of(&r["observedTimeUnixNano"]) > 0, "{what}");
    assert_eq!(item.scope_name, scope, "{what}");
    assert_eq!(
        item.resource.get("service.name").and_then(string_value),
        Some("shop"),
        "{what}"
    );
    assert_eq!(
        item.resource
            .get("deployment.environment")
            .and_then(string_value),
        Some("e2e")
    );
    let attrs = attr_map(&r["attributes"]);
    for k in mapped {
        assert!(
            !attrs.contains_key(*k),
            "mapped field {k} left in the attributes: {what}"
        );
    }
    attrs
}

#[test]
fn structlog_app_ships_its_logs() {
    let s = start();
    let summary = run_python(
        "jsonlog_app.py",
        &[
            "--url",
            &s.url,
            "--lib",
            "structlog",
            "--count",
            "15",
            "--batch",
            "4",
            "--token",
            TOKEN,
            "--gzip",
        ],
    );
    assert_eq!(summary["accepted"], 15, "{summary}");
    let items = s.records(15);
    let lines = summary["lines"].as_array().unwrap();
    for line in lines {
        let rid = line["request_id"].as_str().unwrap();
        let item = items
            .iter()
            .find(|i| {
                attr_map(&i.value["attributes"])
                    .get("request_id")
                    .and_then(string_value)
                    == Some(rid)
            })
            .unwrap_or_else(|| panic!("no record with request_id {rid}"));
        let attrs = check_common(
            item,
            line,
            "event",
            "level",
            "shop.checkout",
            &[
                "event",
                "level",
                "timestamp",
                "logger",
                "service",
                "trace_id",
                "span_id",
            ],
        );
        assert_eq!(
            item.value["traceId"].as_str(),
            line["trace_id"].as_str(),
            "trace id of {rid}"
        );
        assert_eq!(item.value["spanId"].as_str(), line["span_id"].as_str());
        assert_eq!(
            attrs["user_id"]["intValue"].as_str().map(str::to_string),
            line["user_id"].as_i64().map(|n| n.to_string()),
        );
        match line["level"].as_str().unwrap() {
            "error" => {
                let exc = string_value(&attrs["exception"]).unwrap();
                assert!(exc.contains("ValueError: card declined"), "{exc}");
                assert_eq!(exc, line["exception"].as_str().unwrap());
            }
            "warning" => {
                let tags = &attrs["tags"]["arrayValue"]["values"];
                assert_eq!(tags[0]["stringValue"], "big");
                assert_eq!(tags[1]["stringValue"], "slow");
            }
            _ => {
                let order = attr_map(&attrs["order"]["kvlistValue"]["values"]);
                assert_eq!(order["total"]["doubleValue"].as_f64(), Some(9.99));
            }
        }
    }
    assert_eq!(s.accepted_metric(), 15.0);
}

#[test]
fn python_json_logger_app_ships_its_logs() {
    let s = start();
    let summary = run_python(
        "jsonlog_app.py",
        &[
            "--url",
            &s.url,
            "--lib",
            "python-json-logger",
            "--count",
            "10",
            "--batch",
            "3",
            "--token",
            TOKEN,
        ],
    );
    assert_eq!(summary["accepted"], 10, "{summary}");
    let items = s.records(10);
    for line in summary["lines"].as_array().unwrap() {
        let rid = line["request_id"].as_str().unwrap();
        let item = items
            .iter()
            .find(|i| {
                attr_map(&i.value["attributes"])
                    .get("request_id")
                    .and_then(string_value)
                    == Some(rid)
            })
            .unwrap_or_else(|| panic!("no record with request_id {rid}"));
        let attrs = check_common(
            item,
            line,
            "message",
            "levelname",
            "shop.payments",
            &["message", "levelname", "asctime", "name", "service"],
        );
        assert_eq!(
            attrs["amount"]["doubleValue"].as_f64(),
            line["amount"].as_f64()
        );
        let cart = attr_map(&attrs["cart"]["kvlistValue"]["values"]);
        assert_eq!(
            cart["items"]["intValue"].as_str().map(str::to_string),
            line["cart"]["items"].as_i64().map(|n| n.to_string())
        );
        assert!(item.value.get("traceId").is_none_or(|t| t == ""));
    }
    assert_eq!(s.accepted_metric(), 10.0);
}

#[test]
fn bad_lines_are_rejected_one_by_one_and_nothing_else_is_lost() {
    let mut s = start();
    let auth = format!("Bearer {TOKEN}");
    let huge = format!("{{\"msg\":\"{}\"}}", "x".repeat(4000));
    let body = format!(
        "{{\"msg\":\"good-1\",\"level\":\"info\"}}\n\
         {{\"msg\": broken\n\
         {huge}\n\
         {{\"msg\":\"bad-time\",\"timestamp\":\"last tuesday\"}}\n\
         {{\"msg\":\"bad-id\",\"trace_id\":\"xyz\",\"ts\":1714564800.5}}\n\
         [1,2]\n"
    );
    let (status, _, resp) = http_post(
        &s.addr,
        "/v1/logs/json",
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    );
    let resp: Value = serde_json::from_slice(&resp).expect("JSON answer");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["accepted"], 3, "{resp}");
    assert_eq!(resp["rejected"], 3, "{resp}");
    let errors = resp["errors"].as_array().unwrap();
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 6]);
    assert!(errors[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid JSON"));
    assert!(errors[1]["error"]
        .as_str()
        .unwrap()
        .contains("over the max_line_size of 2048 bytes"));
    assert!(errors[2]["error"]
        .as_str()
        .unwrap()
        .contains("expected a JSON object"));

    let items = s.records(3);
    let by_body = |b: &str| {
        items
            .iter()
            .find(|i| string_value(&i.value["body"]) == Some(b))
            .unwrap_or_else(|| panic!("no record {b}"))
    };
    let bad_time = by_body("bad-time");
    assert_eq!(u64_of(&bad_time.value["timeUnixNano"]), 0);
    assert!(u64_of(&bad_time.value["observedTimeUnixNano"]) > 0);
    assert_eq!(
        attr_map(&bad_time.value["attributes"])
            .get("timestamp")
            .and_then(string_value),
        Some("last tuesday")
    );
    let bad_id = by_body("bad-id");
    assert_eq!(
        u64_of(&bad_id.value["timeUnixNano"]),
        1_714_564_800_500_000_000
    );
    assert_eq!(
        attr_map(&bad_id.value["attributes"])
            .get("trace_id")
            .and_then(string_value),
        Some("xyz")
    );
    assert_eq!(s.accepted_metric(), 3.0);
    let metric = |name: &str, labels: &[(&str, &str)]| s.confluo.metric_or_zero(name, labels);
    assert_eq!(
        metric(
            "confluo_receiver_jsonlog_rejected_lines",
            &[("receiver", "jsonlog"), ("reason", "invalid_json")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            "confluo_receiver_jsonlog_rejected_lines",
            &[("receiver", "jsonlog"), ("reason", "too_large")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            "confluo_receiver_jsonlog_invalid_fields",
            &[("receiver", "jsonlog"), ("field", "timestamp")]
        ),
        1.0
    );

    // A body with no good line, and a request without the token.
    let (status, _, resp) = http_post(
        &s.addr,
        "/v1/logs/json",
        &[("Authorization", &auth)],
        b"this is not json at all",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&resp));
    let (status, _, _) = http_post(&s.addr, "/v1/logs/json", &[], b"{\"msg\":\"x\"}");
    assert_eq!(status, 401);
    s.confluo.assert_alive("after bad input");
    assert_eq!(
        logs_in(&read_file_exporter(s.confluo.path("logs.jsonl"))).len(),
        3
    );
}
