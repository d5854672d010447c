//! The OpenTelemetry Python SDK sends spans and logs full of secrets →
//! confluo's `otlp` receiver → `redaction` (every detector) → `file`
//! exporter; no secret may reach the file.
mod common;

use std::time::Duration;

use common::*;

const IGNORED_VALUE: &str = "ignored 4111111111111111";
const ORDER_ID: &str = "4111111111111112";

fn start(redaction: &str) -> (Confluo, u16) {
    let grpc = free_port();
    let http = free_port();
    let telemetry = free_port();
    let yaml = file_pipeline_config(
        grpc,
        http,
        telemetry,
        &["redaction"],
        &format!("processors:\n  redaction:\n{redaction}"),
    );
    (Confluo::start(&yaml), grpc)
}

fn wait_for_items(c: &Confluo, spans: usize, logs: usize) -> Vec<serde_json::Value> {
    let out = c.path("out.jsonl");
    let mut rows = Vec::new();
    let done = wait_until(Duration::from_secs(20), || {
        rows = read_file_exporter(&out);
        spans_in(&rows).len() >= spans && logs_in(&rows).len() >= logs
    });
    assert!(
        done,
        "file exporter did not get {spans} spans and {logs} logs: {rows:?}"
    );
    rows
}

#[test]
fn python_sdk_secrets_never_reach_the_exporter() {
    let (mut c, grpc) = start(
        r#"    allow_all_keys: true
    ignored_keys: [safe_attribute]
    detectors: [credit_card, email, jwt, bearer_token, aws_access_key, private_key, password_keys]
    url_sanitizer: {enabled: true}
    summary: debug
"#,
    );
    let summary = run_python(
        "redaction_send.py",
        &["--endpoint", &format!("127.0.0.1:{grpc}")],
    );
    let rows = wait_for_items(&c, 1, 2);
    let text = std::fs::read_to_string(c.path("out.jsonl")).expect("read output");

    // Ignored keys are untouched (both the span's and the log's).
    assert_eq!(text.matches(IGNORED_VALUE).count(), 2, "{text}");
    let scrubbed = text.replace(IGNORED_VALUE, "");
    let secrets = str_list(&summary["secrets"]);
    assert_eq!(secrets.len(), 7);
    for s in &secrets {
        assert!(
            !scrubbed.contains(s.as_str()),
            "secret {s:?} reached the file:\n{text}"
        );
    }
    assert!(text.contains("****"));
    // A 16-digit order id that fails the Luhn check is not a card.
    assert!(text.contains(ORDER_ID), "{text}");

    let spans = spans_in(&rows);
    let span = &spans[0];
    let attrs = attr_map(&span.value["attributes"]);
    let s = |k: &str| {
        attrs[k]["stringValue"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(s("payment.card"), "****");
    assert_eq!(s("PassWord"), "****");
    assert_eq!(s("note"), "Authorization: Bearer ****");
    assert_eq!(s("aws.key"), "key=****");
    assert_eq!(
        s("url.full"),
        "https://shop.example/orders/*?card=****&coupon=****"
    );
    assert_eq!(span.value["name"].as_str(), Some("charge ****"));
    assert_eq!(
        span.value["status"]["message"].as_str(),
        Some("declined card ****")
    );
    assert!(
        s("redaction.masked.keys").contains("payment.card"),
        "{attrs:?}"
    );
    assert_eq!(
        attrs["redaction.ignored.count"]["intValue"].as_str(),
        Some("1")
    );

    let masked = c.metric_or_zero(
        "otelcol_processor_redaction_masked_values",
        &[("processor", "redaction"), ("otel_signal", "traces")],
    );
    assert!(masked >= 10.0, "masked metric {masked}\n{}", c.metrics());
    assert!(c.stop().success());
}

#[test]
fn empty_allow_list_fails_closed() {
    let (mut c, grpc) = start("    allowed_keys: []\n    summary: silent\n");
    run_python(
        "redaction_send.py",
        &["--endpoint", &format!("127.0.0.1:{grpc}")],
    );
    let rows = wait_for_items(&c, 1, 2);
    for item in spans_in(&rows).iter().chain(logs_in(&rows).iter()) {
        let attrs = attr_map(&item.value["attributes"]);
        assert!(attrs.is_empty(), "attributes left: {attrs:?}");
    }
    let text = std::fs::read_to_string(c.path("out.jsonl")).expect("read output");
    assert!(
        !text.contains("service.name"),
        "resource attributes must go too: {text}"
    );
    assert!(c.stop().success());
}

#[test]
fn python_sdk_db_statements_are_sanitized_per_db_system() {
    let (mut c, grpc) = start(
        r#"    allow_all_keys: true
    db_sanitizer:
      sanitize_span_name: true
      sql: {enabled: true}
      redis: {enabled: true}
      valkey: {enabled: true}
      memcached: {enabled: true}
      mongo: {enabled: true}
      opensearch: {enabled: true}
      es: {enabled: true}
"#,
    );
    let summary = run_python(
        "redaction_db_send.py",
        &["--endpoint", &format!("127.0.0.1:{grpc}")],
    );
    let rows = wait_for_items(&c, 7, 1);
    assert!(c.stop().success(), "{}", c.stderr());
    let text = std::fs::read_to_string(c.path("out.jsonl")).expect("read output");
    for s in str_list(&summary["secrets"]) {
        assert!(
            !text.contains(s.as_str()),
            "secret {s:?} reached the file:\n{text}"
        );
    }
    let mut by_system = std::collections::BTreeMap::new();
    for span in spans_in(&rows) {
        let attrs = attr_map(&span.value["attributes"]);
        let s = |k: &str| {
            attrs
                .get(k)
                .and_then(|v| v["stringValue"].as_str())
                .map(str::to_string)
        };
        let system = s("db.system.name")
            .or_else(|| s("db.system"))
            .expect("db system");
        let statement = s("db.query.text")
            .or_else(|| s("db.statement"))
            .expect("statement");
        let name = span.value["name"].as_str().unwrap_or_default().to_string();
        by_system.insert(system, (statement, name));
    }
    let want = [
        ("redis", "SET session:42 ? EX 3600"),
        ("valkey", "AUTH ?"),
        ("memcached", "set user:7 0 60 21"),
        (
            "mongodb",
            r#"{"find":"?","filter":{"email":"?","age":{"$gt":"?"}}}"#,
        ),
        ("elasticsearch", r#"{"query":{"term":{"ssn":"?"}}}"#),
        ("opensearch", r#"{"query":{"match":{"note":"?"}}}"#),
        (
            "postgresql",
            "SELECT id FROM users WHERE email = ? AND pin = ?",
        ),
    ];
    assert_eq!(by_system.len(), want.len(), "{by_system:?}");
    for (system, statement) in want {
        let (got, name) = &by_system[system];
        assert_eq!(got, statement, "{system}");
        // Span names are the statements, rewritten by the same block.
        assert_eq!(name, statement, "{system} span name");
    }
    let logs = logs_in(&rows);
    let attrs = attr_map(&logs[0].value["attributes"]);
    assert_eq!(
        attrs["db.statement"]["stringValue"].as_str(),
        Some("SET user:?:pw ?"),
        "a log record without db.system gets every listed block in turn: sql, then redis"
    );
}
