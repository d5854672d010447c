//! OpenTelemetry Python SDK spans → confluo's `otlp` receiver → the `datadog`
//! exporter's traces:
//!
//! - `traces.protocol: agent` → Datadog's own `ddapm-test-agent` (PyPI, its
//!   own venv `.venv-ddagent`) with its trace checks enabled; none may fail,
//!   and the spans and stats it decoded are checked field by field;
//! - `traces.protocol: intake` → `tests/e2e/python/datadog_trace_intake.py`,
//!   a contract server decoding the AgentPayload protobuf with its own wire
//!   reader and the stats with `msgpack` + Datadog's `ddsketch` protobuf
//!   class; plus a 413 (split and resend) and a 429 (retry) case.
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const API_KEY: &str = "e2e-dd-key";

/// The test agent, killed on drop.
struct Proc {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    record: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn get_json(&self, path: &str) -> Value {
        let r = http_get(&self.addr(), path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.text()))
    }
}

/// The Datadog APM test agent with its trace checks on.
fn start_test_agent() -> Proc {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = Command::new(venv_bin("ddagent", "ddapm-test-agent"))
        .args([
            "--port",
            &port.to_string(),
            "--otlp-http-port",
            &free_port().to_string(),
            "--otlp-grpc-port",
            &free_port().to_string(),
        ])
        .env(
            "ENABLED_CHECKS",
            "trace_count_header,meta_tracer_version_header,trace_content_length,trace_stall,meta_events_is_valid_json",
        )
        .env("SNAPSHOT_DIR", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
        .spawn()
        .expect("spawn ddapm-test-agent");
    let record = dir.path().join("agent.log");
    let p = Proc {
        child,
        port,
        _dir: dir,
        record,
    };
    assert!(
        wait_until(Duration::from_secs(60), || http_get(&p.addr(), "/info")
            .map(|r| r.status == 200)
            .unwrap_or(false)),
        "ddapm-test-agent did not answer /info:\n{}",
        std::fs::read_to_string(&p.record).unwrap_or_default()
    );
    p
}

/// The trace intake contract server, on `.venv-ddagent`'s Python; it
/// records to `{DIR}/intake.jsonl`.
struct Intake(ContractServer);

impl Intake {
    fn addr(&self) -> String {
        self.0.addr()
    }

    fn rows(&self) -> Vec<Value> {
        self.0.jsonl("intake.jsonl")
    }
}

fn start_intake(args: &[&str]) -> Intake {
    Intake(ContractServer::start_with(
        &venv_bin("ddagent", "python"),
        "datadog_trace_intake.py",
        &[&["{DIR}/intake.jsonl", "--api-key", API_KEY], args].concat(),
    ))
}

fn start_confluo(traces_yaml: &str) -> (Confluo, u16) {
    start_otlp_to_exporter(
        "http",
        "datadog",
        &format!(
            "    api:\n      key: {API_KEY}\n    hostname: confluo-e2e\n    traces:\n{traces_yaml}\n{FAST_RETRY}"
        ),
        &["traces"],
    )
}

fn send_sdk(http_port: u16, repeat: usize) -> Vec<Value> {
    let summary = run_python(
        "datadog_traces_send.py",
        &[
            "--endpoint",
            &format!("http://127.0.0.1:{http_port}/v1/traces"),
            "--repeat",
            &repeat.to_string(),
        ],
    );
    let spans = summary["spans"].as_array().expect("spans").clone();
    assert_eq!(spans.len(), 4 * repeat, "{summary}");
    spans
}

fn low64(hex: &str) -> u64 {
    u64::from_str_radix(&hex[16..], 16).unwrap()
}

fn id64(hex: &str) -> u64 {
    if hex.is_empty() {
        0
    } else {
        u64::from_str_radix(hex, 16).unwrap()
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_u64().map(|u| u as f64))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// What the Agent mapping makes of the SDK's spans, keyed by span id.
struct Expected {
    name: &'static str,
    resource: &'static str,
    r#type: &'static str,
    error: i64,
}

fn expected(sdk_name: &str) -> Expected {
    match sdk_name {
        "GET /items/{id}" => Expected {
            name: "shop.instrumentation.server",
            resource: "GET /items/{id}",
            r#type: "web",
            error: 0,
        },
        "SELECT items" => Expected {
            name: "shop.instrumentation.client",
            resource: "SELECT * FROM items",
            r#type: "db",
            error: 0,
        },
        "compute" => Expected {
            name: "shop.instrumentation.internal",
            resource: "compute",
            r#type: "custom",
            error: 1,
        },
        "POST /orders" => Expected {
            name: "shop.instrumentation.server",
            resource: "POST /orders",
            r#type: "web",
            error: 1,
        },
        other => panic!("unexpected SDK span {other}"),
    }
}

/// Checks one Datadog span (as decoded by the far side) against its SDK span.
fn check_span(dd: &Value, sdk: &Value) {
    let e = expected(sdk["name"].as_str().unwrap());
    let ctx = format!("{dd}\nSDK: {sdk}");
    let trace_hex = sdk["trace_id"].as_str().unwrap();
    assert_eq!(dd["trace_id"].as_u64(), Some(low64(trace_hex)), "{ctx}");
    assert_eq!(
        dd["parent_id"].as_u64().unwrap_or(0),
        id64(sdk["parent_id"].as_str().unwrap()),
        "{ctx}"
    );
    assert_eq!(dd["service"], "shop", "{ctx}");
    assert_eq!(dd["name"], e.name, "{ctx}");
    assert_eq!(dd["resource"], e.resource, "{ctx}");
    assert_eq!(dd["type"], e.r#type, "{ctx}");
    assert_eq!(dd["error"].as_i64(), Some(e.error), "{ctx}");
    assert_eq!(dd["start"].as_i64(), sdk["start"].as_i64(), "{ctx}");
    assert_eq!(
        dd["duration"].as_i64(),
        Some(sdk["end"].as_i64().unwrap() - sdk["start"].as_i64().unwrap()),
        "{ctx}"
    );
    let meta = &dd["meta"];
    assert_eq!(meta["otel.trace_id"], trace_hex, "{ctx}");
    assert_eq!(meta["span.kind"], sdk["kind"], "{ctx}");
    assert_eq!(meta["env"], "staging", "{ctx}");
    assert_eq!(meta["version"], "2.0.1", "{ctx}");
    assert_eq!(meta["host.name"], "e2e-host", "{ctx}");
    assert_eq!(meta["otel.library.name"], "shop.instrumentation", "{ctx}");
    let metrics = &dd["metrics"];
    match sdk["kind"].as_str().unwrap() {
        "server" => assert_eq!(num(&metrics["_top_level"]), 1.0, "{ctx}"),
        "client" => assert_eq!(num(&metrics["_dd.measured"]), 1.0, "{ctx}"),
        _ => assert!(metrics.get("_top_level").is_none(), "{ctx}"),
    }
    if sdk["parent_id"] == "" {
        assert_eq!(num(&metrics["_sampling_priority_v1"]), 1.0, "{ctx}");
    }
    match sdk["name"].as_str().unwrap() {
        "GET /items/{id}" => {
            assert_eq!(meta["http.method"], "GET", "{ctx}");
            assert_eq!(meta["http.status_code"], "200", "{ctx}");
            assert_eq!(num(&metrics["app.items"]), 3.0, "{ctx}");
        }
        "compute" => {
            assert_eq!(meta["error.type"], "ValueError", "{ctx}");
            assert_eq!(meta["error.msg"], "bad value", "{ctx}");
            assert!(
                meta["error.stack"].as_str().unwrap().contains("ValueError"),
                "{ctx}"
            );
            assert_eq!(meta["otel.status_code"], "Error", "{ctx}");
        }
        "POST /orders" => assert_eq!(meta["error.msg"], "payment failed", "{ctx}"),
        _ => {}
    }
}

/// Checks that every SDK span arrived once, and `_dd.p.tid` on each trace.
fn check_all(dd_spans: &[Value], sdk_spans: &[Value]) {
    let by_id: HashMap<u64, &Value> = sdk_spans
        .iter()
        .map(|s| (id64(s["span_id"].as_str().unwrap()), s))
        .collect();
    assert_eq!(dd_spans.len(), sdk_spans.len(), "span count");
    let mut seen = std::collections::HashSet::new();
    let mut tid_by_trace: HashMap<u64, String> = HashMap::new();
    for dd in dd_spans {
        let id = dd["span_id"].as_u64().expect("span_id");
        assert!(seen.insert(id), "span {id} received twice");
        let sdk = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("unknown span {dd}"));
        check_span(dd, sdk);
        if let Some(tid) = dd["meta"]["_dd.p.tid"].as_str() {
            tid_by_trace.insert(dd["trace_id"].as_u64().unwrap(), tid.to_string());
        }
    }
    for sdk in sdk_spans {
        let hex = sdk["trace_id"].as_str().unwrap();
        assert_eq!(
            tid_by_trace.get(&low64(hex)).map(String::as_str),
            Some(&hex[..16]),
            "_dd.p.tid of trace {hex}"
        );
    }
}

/// (resource → (hits, errors, top-level hits)) summed over stats groups.
fn stats_totals<'a>(groups: impl Iterator<Item = &'a Value>) -> BTreeMap<String, (u64, u64, u64)> {
    let mut out = BTreeMap::new();
    for g in groups {
        let e = out
            .entry(g["Resource"].as_str().unwrap().to_string())
            .or_insert((0, 0, 0));
        e.0 += g["Hits"].as_u64().unwrap();
        e.1 += g["Errors"].as_u64().unwrap();
        e.2 += g["TopLevelHits"].as_u64().unwrap();
    }
    out
}

fn expected_stats(repeat: u64) -> BTreeMap<String, (u64, u64, u64)> {
    BTreeMap::from([
        ("GET /items/{id}".to_string(), (repeat, 0, repeat)),
        ("SELECT * FROM items".to_string(), (repeat, 0, 0)),
        ("POST /orders".to_string(), (repeat, repeat, repeat)),
    ])
}

#[test]
fn agent_protocol_to_the_datadog_test_agent() {
    let agent = start_test_agent();
    let (mut confluo, http_port) = start_confluo(&format!(
        "      protocol: agent\n      endpoint: http://{}",
        agent.addr()
    ));
    let sdk = send_sdk(http_port, 2);
    let mut spans: Vec<Value> = Vec::new();
    let got_all = wait_until(Duration::from_secs(30), || {
        let traces = agent.get_json("/test/session/traces");
        spans = traces
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t.as_array().unwrap().iter().cloned())
            .collect();
        spans.len() >= sdk.len()
    });
    confluo.assert_alive("after sending");
    assert!(
        got_all,
        "the test agent got {} of {} spans\n{}",
        spans.len(),
        sdk.len(),
        confluo.stderr()
    );
    check_all(&spans, &sdk);

    // Every enabled check ran and none failed.
    let summary = agent.get_json("/test/trace_check/summary?return_all=true");
    for check in [
        "trace_count_header",
        "meta_tracer_version_header",
        "trace_content_length",
        "meta_events_is_valid_json",
    ] {
        let c = &summary[check];
        assert!(
            c["Passed_Checks"].as_u64().unwrap_or(0) > 0,
            "{check} never ran: {summary}"
        );
        assert_eq!(
            c["Failed_Checks"].as_u64().unwrap_or(0),
            0,
            "{check} failed: {summary}"
        );
    }
    for (name, c) in summary.as_object().unwrap() {
        assert_eq!(
            c["Failed_Checks"].as_u64().unwrap_or(0),
            0,
            "{name} failed: {summary}"
        );
    }

    // The requests as the test agent saw them.
    let requests = agent.get_json("/test/session/requests");
    let trace_reqs: Vec<&Value> = requests
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["url"].as_str().unwrap().ends_with("/v0.4/traces"))
        .collect();
    assert!(!trace_reqs.is_empty(), "{requests}");
    for r in trace_reqs {
        assert_eq!(r["method"], "PUT");
        // HTTP header names are case-insensitive (hyper sends them lower-case).
        let h: BTreeMap<String, String> = r["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
            .collect();
        let get = |k: &str| h.get(k).map(String::as_str).unwrap_or("");
        assert_eq!(get("content-type"), "application/msgpack", "{h:?}");
        assert_eq!(get("datadog-meta-lang"), "otlp", "{h:?}");
        assert!(
            get("datadog-meta-tracer-version").starts_with("confluo-"),
            "{h:?}"
        );
        assert_eq!(get("datadog-client-computed-stats"), "yes", "{h:?}");
        assert_eq!(get("datadog-client-computed-top-level"), "yes", "{h:?}");
    }

    // Stats sent to /v0.6/stats, decoded by the test agent.
    let mut totals = BTreeMap::new();
    let ok = wait_until(Duration::from_secs(20), || {
        let stats = agent.get_json("/test/session/stats");
        totals = stats_totals(
            stats
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["Stats"].as_array().unwrap().iter())
                .flat_map(|b| b["Stats"].as_array().unwrap().iter()),
        );
        totals == expected_stats(2)
    });
    assert!(ok, "stats {totals:?}");
    assert_eq!(
        confluo.metric_or_zero("otelcol_exporter_datadog_rejected_items", &[]),
        0.0
    );
}

#[test]
fn intake_protocol_to_the_contract_server() {
    let intake = start_intake(&[]);
    let (mut confluo, http_port) =
        start_confluo(&format!("      endpoint: http://{}", intake.addr()));
    let sdk = send_sdk(http_port, 3);
    let spans_of = |rows: &[Value]| -> Vec<Value> {
        rows.iter()
            .filter(|r| r["type"] == "traces" && r["status"] == 202)
            .flat_map(|r| r["payload"]["tracerPayloads"].as_array().unwrap().clone())
            .flat_map(|t| t["chunks"].as_array().unwrap().clone())
            .flat_map(|c| c["spans"].as_array().unwrap().clone())
            .collect()
    };
    let got = wait_until(Duration::from_secs(30), || {
        spans_of(&intake.rows()).len() >= sdk.len()
    });
    confluo.assert_alive("after sending");
    let rows = intake.rows();
    assert!(got, "{rows:?}\n{}", confluo.stderr());
    for r in &rows {
        assert!(r["violations"].as_array().unwrap().is_empty(), "{r}");
        assert_eq!(r["status"], 202, "{r}");
    }
    check_all(&spans_of(&rows), &sdk);
    let traces = rows.iter().find(|r| r["type"] == "traces").unwrap();
    assert_eq!(traces["headers"]["content-encoding"], "gzip");
    assert_eq!(traces["headers"]["x-datadog-reported-languages"], "python");
    let p = &traces["payload"];
    assert_eq!(p["hostName"], "confluo-e2e");
    let tp = &p["tracerPayloads"][0];
    assert_eq!(tp["hostname"], "e2e-host");
    assert_eq!(tp["env"], "staging");
    assert_eq!(tp["languageName"], "python");
    assert_eq!(tp["appVersion"], "2.0.1");
    for c in tp["chunks"].as_array().unwrap() {
        assert_eq!(c["priority"], 1, "{c}");
    }

    // Stats: hits/errors per resource as the SDK sent them.
    let mut totals = BTreeMap::new();
    let ok = wait_until(Duration::from_secs(20), || {
        let rows = intake.rows();
        totals = stats_totals(
            rows.iter()
                .filter(|r| r["type"] == "stats" && r["status"] == 202)
                .flat_map(|r| r["payload"]["Stats"].as_array().unwrap().clone())
                .flat_map(|c| {
                    assert_eq!(c["Env"], "staging", "{c}");
                    assert_eq!(c["Version"], "2.0.1", "{c}");
                    assert_eq!(c["Hostname"], "e2e-host", "{c}");
                    c["Stats"].as_array().unwrap().clone()
                })
                .flat_map(|b| b["Stats"].as_array().unwrap().clone())
                .collect::<Vec<_>>()
                .iter(),
        );
        totals == expected_stats(3)
    });
    assert!(ok, "stats {totals:?}");
    // The sketches hold the durations: the ok sketch of GET /items/{id}
    // brackets the SDK's durations within the 1 % accuracy.
    let rows = intake.rows();
    let group = rows
        .iter()
        .filter(|r| r["type"] == "stats")
        .flat_map(|r| r["payload"]["Stats"].as_array().unwrap().clone())
        .flat_map(|c| c["Stats"].as_array().unwrap().clone())
        .flat_map(|b| b["Stats"].as_array().unwrap().clone())
        .find(|g| g["Resource"] == "GET /items/{id}")
        .unwrap();
    let sk = &group["OkSummary"];
    let gamma = num(&sk["gamma"]);
    let durations: Vec<f64> = sdk
        .iter()
        .filter(|s| s["name"] == "GET /items/{id}")
        .map(|s| (s["end"].as_i64().unwrap() - s["start"].as_i64().unwrap()) as f64)
        .collect();
    let bins = sk["bins"].as_object().unwrap();
    for d in &durations {
        let idx = (d.ln() / gamma.ln()).floor() as i64;
        assert!(
            bins.contains_key(&idx.to_string()),
            "duration {d} (bin {idx}) not in {sk}"
        );
    }
    assert_eq!(
        confluo.metric_or_zero("otelcol_exporter_datadog_rejected_items", &[]),
        0.0
    );
}

/// An OTLP/JSON request with one span in each of `n` resources.
fn multi_resource_request(n: usize) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let resources: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": format!("svc{i}")}}]},
                "scopeSpans": [{"spans": [{
                    "traceId": format!("{:032x}", 0xabc000 + i),
                    "spanId": format!("{:016x}", 0x100 + i),
                    "name": format!("op{i}"),
                    "kind": 2,
                    "startTimeUnixNano": now.to_string(),
                    "endTimeUnixNano": (now + 1_000_000).to_string()
                }]}]
            })
        })
        .collect();
    serde_json::json!({"resourceSpans": resources}).to_string()
}

fn post_otlp_json(http_port: u16, body: &str) {
    let (status, _, resp) = http_post(
        &format!("127.0.0.1:{http_port}"),
        "/v1/traces",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
}

#[test]
fn intake_413_splits_and_resends() {
    let intake = start_intake(&["--max-payloads", "1"]);
    let (mut confluo, http_port) = start_confluo(&format!(
        "      endpoint: http://{}\n      send_stats: false",
        intake.addr()
    ));
    post_otlp_json(http_port, &multi_resource_request(2));
    let ok = wait_until(Duration::from_secs(20), || {
        intake.rows().iter().filter(|r| r["status"] == 202).count() >= 2
    });
    confluo.assert_alive("after the 413");
    let rows = intake.rows();
    assert!(ok, "{rows:?}\n{}", confluo.stderr());
    assert_eq!(rows[0]["status"], 413, "{rows:?}");
    assert_eq!(rows[0]["tracer_payloads"], 2, "{rows:?}");
    let mut services: Vec<String> = rows
        .iter()
        .filter(|r| r["status"] == 202)
        .map(|r| {
            let tps = r["payload"]["tracerPayloads"].as_array().unwrap();
            assert_eq!(tps.len(), 1, "{r}");
            tps[0]["chunks"][0]["spans"][0]["service"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    services.sort();
    assert_eq!(services, vec!["svc0", "svc1"]);
    assert_eq!(rows.len(), 3, "{rows:?}");
}

#[test]
fn intake_429_is_retried() {
    let intake = start_intake(&[
        "--fail-first",
        "1",
        "--fail-status",
        "429",
        "--retry-after",
        "1",
    ]);
    let (mut confluo, http_port) = start_confluo(&format!(
        "      endpoint: http://{}\n      send_stats: false",
        intake.addr()
    ));
    post_otlp_json(http_port, &multi_resource_request(1));
    let ok = wait_until(Duration::from_secs(20), || {
        intake.rows().iter().any(|r| r["status"] == 202)
    });
    confluo.assert_alive("after the 429");
    let rows = intake.rows();
    assert!(ok, "{rows:?}\n{}", confluo.stderr());
    assert_eq!(rows[0]["status"], 429);
    assert_eq!(rows.len(), 2, "one refusal, one delivery: {rows:?}");
    let spans = &rows[1]["payload"]["tracerPayloads"][0]["chunks"][0]["spans"];
    assert_eq!(spans.as_array().unwrap().len(), 1);
    assert_eq!(spans[0]["service"], "svc0");
    assert_eq!(spans[0]["trace_id"].as_u64(), Some(0xabc000));
}
