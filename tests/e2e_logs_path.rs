//! The whole logs path, end to end, with the example config
//! `docs/examples/logs-path.yaml` (only its endpoints replaced):
//!
//! two real Python services (`tests/e2e/python/logs_path_app.py`) — one
//! logging with structlog, one with python-json-logger — POST their JSON lines
//! to the `jsonlog` receiver and send their spans with the OpenTelemetry SDK to
//! the `otlp` receiver; `correlation` processors in the traces and logs
//! pipelines share a store; logs leave through the `loki` exporter (to the
//! Loki contract server) and the `elasticsearch` exporter (to the `_bulk`
//! contract server), spans through `elasticsearch`.
//!
//! Every line the apps logged must come out of Loki AND Elasticsearch exactly
//! once, with the trace/span ids of the SDK's span (its own for lines logged
//! inside a span, the request's SERVER span for lines that carried only the
//! request id), the level, the time the app logged (to the nanosecond the
//! line states), the service and every other field as an attribute. Lines of
//! requests that were never traced come out unjoined.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Map, Value};

const WAIT: Duration = Duration::from_secs(45);
const REQUESTS: usize = 4;
const ORPHANS: usize = 2;

/// `docs/examples/logs-path.yaml` with its endpoints pointed at this test's.
fn example_config(grpc: u16, jsonlog: u16, telemetry: u16, loki: u16, es: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/logs-path.yaml");
    let mut yaml = std::fs::read_to_string(&path).expect("read docs/examples/logs-path.yaml");
    for (from, to) in [
        ("localhost:4317", format!("127.0.0.1:{grpc}")),
        ("localhost:8081", format!("127.0.0.1:{jsonlog}")),
        ("127.0.0.1:8888", format!("127.0.0.1:{telemetry}")),
        ("http://loki:3100", format!("http://127.0.0.1:{loki}")),
        (
            "http://elasticsearch:9200",
            format!("http://127.0.0.1:{es}"),
        ),
    ] {
        assert_eq!(
            yaml.matches(from).count(),
            1,
            "the example should hold {from} exactly once"
        );
        yaml = yaml.replace(from, &to);
    }
    yaml
}

/// RFC 3339 UTC with a fraction (`2024-05-01T12:00:00.123456789Z`) → Unix ns.
fn rfc3339_ns(s: &str) -> u64 {
    let bad = format!("not an RFC 3339 UTC time: {s:?}");
    let s = s.strip_suffix('Z').expect(&bad);
    let (date, time) = s.split_once('T').expect(&bad);
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    let nanos: i64 = format!("{frac:0<9}")[..9].parse().unwrap();
    (secs * 1_000_000_000 + nanos) as u64
}

/// Loki's `level` label for a Python level name.
fn loki_level(level: &str) -> &'static str {
    match python_level_severity(level) {
        5 => "debug",
        9 => "info",
        13 => "warn",
        17 => "error",
        _ => "fatal",
    }
}

/// What one logged line must look like wherever it comes out.
#[derive(Debug)]
struct Want {
    request_id: String,
    body: String,
    level: String,
    time_ns: u64,
    service: Option<String>,
    scope: String,
    /// (trace_id, span_id); None: must come out unjoined.
    ids: Option<(String, String)>,
    /// Every field that is not mapped to a record field, as the app logged it.
    attributes: Map<String, Value>,
}

struct Span {
    trace_id: String,
    span_id: String,
    service: String,
}

/// Expectations from one app's summary. `joined` counts the lines that only
/// the correlation join can give trace ids.
fn expectations(summary: &Value, wants: &mut Vec<Want>, joined: &mut usize) {
    let structlog = summary["lib"] == "structlog";
    let service = summary["service"].as_str().unwrap().to_string();
    let spans = summary["spans"].as_array().unwrap();
    let servers: BTreeMap<String, Span> = spans
        .iter()
        .filter(|s| s["kind"] == "SERVER")
        .map(|s| {
            (
                s["request_id"].as_str().unwrap().to_string(),
                Span {
                    trace_id: s["trace_id"].as_str().unwrap().to_string(),
                    span_id: s["span_id"].as_str().unwrap().to_string(),
                    service: service.clone(),
                },
            )
        })
        .collect();
    assert_eq!(
        servers.len(),
        REQUESTS,
        "one server span per request: {spans:?}"
    );
    assert_eq!(
        spans.len(),
        REQUESTS * (1 + structlog as usize),
        "{spans:?}"
    );
    let span_ids: BTreeSet<(&str, &str)> = spans
        .iter()
        .map(|s| {
            (
                s["trace_id"].as_str().unwrap(),
                s["span_id"].as_str().unwrap(),
            )
        })
        .collect();
    let (body_key, level_key, time_key, scope_key) = if structlog {
        ("event", "level", "timestamp", "logger")
    } else {
        ("message", "levelname", "asctime", "name")
    };
    let lines = summary["lines"].as_array().unwrap();
    // Five lines per request (one after its spans were sent), structlog's
    // declined payments (every third request) one more, one per orphan.
    let declined = (REQUESTS + 1) / 3 * structlog as usize;
    assert_eq!(
        lines.len(),
        REQUESTS * 5 + declined + ORPHANS,
        "lines logged by {service}"
    );
    // structlog lines logged inside a span carry its ids (two per request,
    // plus the declined payments); python-json-logger lines never do.
    let with_context = lines.iter().filter(|l| l.get("trace_id").is_some()).count();
    let want_with_context = if structlog {
        REQUESTS * 2 + declined
    } else {
        0
    };
    assert_eq!(with_context, want_with_context, "lines with trace context");
    for line in lines {
        let rid = line["request_id"].as_str().unwrap().to_string();
        let own = line
            .get("trace_id")
            .map(|t| (t.as_str().unwrap(), line["span_id"].as_str().unwrap()));
        let ids = match (own, servers.get(&rid)) {
            (Some((t, s)), Some(server)) => {
                // The app's own trace context is the SDK's: its request's
                // trace, and one of the spans exported for it.
                assert_eq!(t, server.trace_id, "{line}");
                assert!(
                    span_ids.contains(&(t, s)),
                    "span {s} was not exported: {line}"
                );
                Some((t.to_string(), s.to_string()))
            }
            (Some(_), None) => panic!("a line with trace context but no span: {line}"),
            (None, Some(server)) => {
                *joined += 1;
                Some((server.trace_id.clone(), server.span_id.clone()))
            }
            (None, None) => {
                assert!(rid.contains("orphan"), "{line}");
                None
            }
        };
        // structlog names the service in each line; python-json-logger lines
        // do not: joined ones get the span's, orphans none.
        let line_service = line
            .get("service")
            .and_then(Value::as_str)
            .map(str::to_string);
        let service = line_service.or_else(|| servers.get(&rid).map(|s| s.service.clone()));
        let mut attributes = line.as_object().unwrap().clone();
        for k in [
            body_key, level_key, time_key, scope_key, "service", "trace_id", "span_id", "_time_ns",
        ] {
            attributes.remove(k);
        }
        wants.push(Want {
            request_id: rid,
            body: line[body_key].as_str().unwrap().to_string(),
            level: line[level_key].as_str().unwrap().to_string(),
            time_ns: line["_time_ns"].as_u64().unwrap(),
            service,
            scope: line[scope_key].as_str().unwrap().to_string(),
            ids,
            attributes,
        });
    }
}

fn find<'a>(items: &'a [(String, String, Value)], w: &Want, sink: &str) -> &'a Value {
    let found: Vec<&Value> = items
        .iter()
        .filter(|(rid, body, _)| *rid == w.request_id && *body == w.body)
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{sink}: {} copies of {:?} / {:?}",
        found.len(),
        w.request_id,
        w.body
    );
    found[0]
}

fn check_loki(entry: &Value, w: &Want) {
    let what = format!("Loki entry {entry} for {w:?}");
    let mut line: Map<String, Value> =
        serde_json::from_str(entry["line"].as_str().unwrap()).expect("a JSON line");
    assert_eq!(line.remove("body"), Some(json!(w.body)), "{what}");
    assert_eq!(line, w.attributes, "attributes in the line, {what}");
    assert_eq!(entry["ts"].as_u64(), Some(w.time_ns), "time, {what}");
    assert_eq!(entry["tenant"], "shop", "{what}");
    let labels = entry["labels"].as_object().unwrap();
    assert_eq!(labels["level"], loki_level(&w.level), "{what}");
    assert_eq!(
        labels["service_name"].as_str(),
        Some(w.service.as_deref().unwrap_or("unknown_service")),
        "{what}"
    );
    assert_eq!(labels["deployment_environment"], "production", "{what}");
    let meta = &entry["metadata"];
    match &w.ids {
        Some((t, s)) => {
            assert_eq!(meta["trace_id"].as_str(), Some(t.as_str()), "{what}");
            assert_eq!(meta["span_id"].as_str(), Some(s.as_str()), "{what}");
        }
        None => {
            assert!(meta.get("trace_id").is_none(), "unjoined, {what}");
            assert!(meta.get("span_id").is_none(), "unjoined, {what}");
        }
    }
}

fn check_es(doc: &Value, w: &Want) {
    let what = format!("Elasticsearch document {doc} for {w:?}");
    assert_eq!(doc["index"], "logs-generic.otel-default", "{what}");
    assert_eq!(doc["op"], "create", "{what}");
    let s = &doc["source"];
    assert_eq!(s["body"]["text"].as_str(), Some(w.body.as_str()), "{what}");
    assert_eq!(
        s["severity_text"].as_str(),
        Some(w.level.as_str()),
        "{what}"
    );
    assert_eq!(
        s["severity_number"].as_i64(),
        Some(python_level_severity(&w.level)),
        "{what}"
    );
    assert_eq!(
        rfc3339_ns(s["@timestamp"].as_str().unwrap()),
        w.time_ns,
        "time, {what}"
    );
    assert_eq!(s["attributes"].as_object(), Some(&w.attributes), "{what}");
    assert_eq!(
        s["scope"]["name"].as_str(),
        Some(w.scope.as_str()),
        "{what}"
    );
    let resource = &s["resource"]["attributes"];
    assert_eq!(
        resource["service.name"].as_str(),
        w.service.as_deref(),
        "{what}"
    );
    assert_eq!(resource["deployment.environment"], "production", "{what}");
    let id = |k: &str| s.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    match &w.ids {
        Some((t, sp)) => {
            assert_eq!(id("trace_id"), Some(t.as_str()), "{what}");
            assert_eq!(id("span_id"), Some(sp.as_str()), "{what}");
        }
        None => {
            assert_eq!(id("trace_id"), None, "unjoined, {what}");
            assert_eq!(id("span_id"), None, "unjoined, {what}");
        }
    }
}

#[test]
fn python_logs_reach_loki_and_elasticsearch_joined_to_their_spans() {
    logs_path(0, 0);
}

/// The same path while both backends push back: the first Loki pushes get 429
/// with `Retry-After: 1`, the first `_bulk` requests a whole-request 429.
/// Nothing may be lost or stored twice, and the joins must survive the
/// retries.
#[test]
fn rate_limited_backends_lose_and_duplicate_nothing() {
    logs_path(2, 2);
}

/// Runs both apps through the example config and checks every line in Loki
/// and Elasticsearch. `loki_429s` / `es_429s`: how many requests each
/// contract server refuses first.
fn logs_path(loki_429s: usize, es_429s: usize) {
    let (lf, ef) = (loki_429s.to_string(), es_429s.to_string());
    let loki = ContractServer::start(
        "loki_contract.py",
        &[
            "{DIR}/loki.jsonl",
            "--fail-first",
            &lf,
            "--fail-status",
            "429",
            "--retry-after",
            "1",
        ],
    );
    let es = ContractServer::start(
        "es_contract.py",
        &[
            "--store",
            "{DIR}/store.jsonl",
            "--requests",
            "{DIR}/requests.jsonl",
            "--fail-first",
            &ef,
            "--fail-status",
            "429",
        ],
    );
    let (grpc, jsonlog, telemetry) = (free_port(), free_port(), free_port());
    let confluo = Confluo::start(&example_config(
        grpc, jsonlog, telemetry, loki.port, es.port,
    ));

    // Both services at once, as on a node.
    let url = format!("http://127.0.0.1:{jsonlog}/v1/logs/json");
    let otlp = format!("127.0.0.1:{grpc}");
    let (requests, orphans) = (REQUESTS.to_string(), ORPHANS.to_string());
    let run = |lib: &str| {
        run_python(
            "logs_path_app.py",
            &[
                "--jsonlog-url",
                &url,
                "--otlp-endpoint",
                &otlp,
                "--lib",
                lib,
                "--requests",
                &requests,
                "--orphans",
                &orphans,
            ],
        )
    };
    let (checkout, payments) = std::thread::scope(|s| {
        let a = s.spawn(|| run("structlog"));
        let b = s.spawn(|| run("python-json-logger"));
        (a.join().unwrap(), b.join().unwrap())
    });

    let (mut wants, mut joined) = (Vec::new(), 0);
    expectations(&checkout, &mut wants, &mut joined);
    expectations(&payments, &mut wants, &mut joined);
    let total = wants.len();
    let unjoined = wants.iter().filter(|w| w.ids.is_none()).count();
    assert_eq!(unjoined, 2 * ORPHANS);

    let loki_entries = || -> Vec<(String, String, Value)> {
        loki.jsonl("loki.jsonl")
            .into_iter()
            .filter(|r| r["type"] == "entry")
            .map(|e| {
                let line: Value = serde_json::from_str(e["line"].as_str().unwrap()).unwrap();
                let rid = line["request_id"].as_str().unwrap_or_default().to_string();
                let body = line["body"].as_str().unwrap_or_default().to_string();
                (rid, body, e)
            })
            .collect()
    };
    let es_docs = |prefix: &str| -> Vec<Value> {
        es.jsonl("store.jsonl")
            .into_iter()
            .filter(|d| d["index"].as_str().unwrap_or("").starts_with(prefix))
            .collect()
    };
    let es_logs = || -> Vec<(String, String, Value)> {
        es_docs("logs-")
            .into_iter()
            .map(|d| {
                let s = &d["source"];
                let rid = s["attributes"]["request_id"].as_str().unwrap_or_default();
                let body = s["body"]["text"].as_str().unwrap_or_default();
                (rid.to_string(), body.to_string(), d.clone())
            })
            .collect()
    };
    // Orphans wait out the hold (5 s) before they leave unjoined.
    assert!(
        wait_until(WAIT, || loki_entries().len() >= total
            && es_logs().len() >= total
            && es_docs("traces-").len() >= 3 * REQUESTS),
        "expected {total} lines in Loki and Elasticsearch and {} spans; got {}, {}, {}\n{}",
        3 * REQUESTS,
        loki_entries().len(),
        es_logs().len(),
        es_docs("traces-").len(),
        confluo.metrics()
    );
    let (in_loki, in_es) = (loki_entries(), es_logs());
    assert_eq!(in_loki.len(), total, "no line twice in Loki");
    assert_eq!(in_es.len(), total, "no line twice in Elasticsearch");
    for w in &wants {
        check_loki(find(&in_loki, w, "Loki"), w);
        check_es(find(&in_es, w, "Elasticsearch"), w);
    }
    let pushes: Vec<Value> = loki
        .jsonl("loki.jsonl")
        .into_iter()
        .filter(|r| r["type"] == "push")
        .collect();
    for p in &pushes {
        assert_eq!(p["violations"], json!([]), "{p}");
    }
    let statuses =
        |rows: &[Value], status: u64| rows.iter().filter(|r| r["status"] == status).count();
    assert_eq!(statuses(&pushes, 429), loki_429s, "{pushes:?}");
    assert_eq!(
        statuses(&pushes, 204),
        pushes.len() - loki_429s,
        "{pushes:?}"
    );
    let bulks = es.jsonl("requests.jsonl");
    assert_eq!(statuses(&bulks, 429), es_429s, "{bulks:?}");
    assert_eq!(statuses(&bulks, 200), bulks.len() - es_429s, "{bulks:?}");
    for r in bulks.iter().filter(|r| r["status"] == 200) {
        assert!(
            r["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["status"] == 201),
            "{r}"
        );
    }

    // Spans pass the traces pipeline with their request id normalised.
    let span_docs = es_docs("traces-");
    assert_eq!(span_docs.len(), 3 * REQUESTS, "no span twice");
    for summary in [&checkout, &payments] {
        for sp in summary["spans"].as_array().unwrap() {
            let doc = span_docs
                .iter()
                .map(|d| &d["source"])
                .find(|s| s["span_id"] == sp["span_id"])
                .unwrap_or_else(|| panic!("no document for span {sp}"));
            assert_eq!(doc["trace_id"], sp["trace_id"]);
            assert_eq!(
                doc["resource"]["attributes"]["service.name"],
                summary["service"]
            );
            if sp["kind"] == "SERVER" {
                assert_eq!(doc["attributes"]["request_id"], sp["request_id"], "{doc}");
                assert!(
                    doc["attributes"]
                        .get("http.request.header.x-request-id")
                        .is_none(),
                    "{doc}"
                );
            }
        }
    }

    let proc = [("processor", "correlation")];
    let m = |name: &str| confluo.metric_or_zero(name, &proc);
    assert_eq!(m("otelcol_processor_correlation_joined"), joined as f64);
    assert_eq!(m("otelcol_processor_correlation_unjoined"), unjoined as f64);
    assert_eq!(m("otelcol_processor_correlation_invalid_ids"), 0.0);
    // The contract servers record before they answer: the counters may lag.
    let sent = |exporter: &str| {
        confluo.metric_or_zero(
            "otelcol_exporter_sent_log_records",
            &[("exporter", exporter)],
        )
    };
    assert!(
        wait_until(Duration::from_secs(5), || sent("loki") == total as f64
            && sent("elasticsearch") == total as f64
            && m("otelcol_processor_correlation_held_log_records") == 0.0),
        "sent {} to Loki, {} to Elasticsearch, want {total}; {} held",
        sent("loki"),
        sent("elasticsearch"),
        m("otelcol_processor_correlation_held_log_records")
    );
}
