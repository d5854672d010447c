//! The `datadog` exporter's metrics and logs, end to end: the OpenTelemetry
//! Python SDK (`tests/e2e/python/datadog_send.py`) → confluo's `otlp`
//! receiver → `datadog` exporter →
//! - a real VictoriaMetrics (Debian `victoria-metrics`), which ingests
//!   Datadog's `/api/v1/series`, read back through its export API;
//! - a Datadog intake contract server (`tests/e2e/python/datadog_contract.py`)
//!   that validates series v2 and logs with Datadog's own model classes
//!   (`datadog-api-client`) and decodes sketches with its own protobuf
//!   reader, and can be scripted to answer 413/429/500/400/403.
//!
//! Traces have their own file (`e2e_datadog_traces.rs`).
mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The Datadog intake contract server, on `.venv-datadog`'s Python
/// (datadog-api-client); it records to `{DIR}/intake.jsonl`.
struct Intake(ContractServer);

impl Intake {
    fn start(args: &[&str]) -> Intake {
        Intake(ContractServer::start_with(
            &venv_bin("datadog", "python"),
            "datadog_contract.py",
            &[&["{DIR}/intake.jsonl"], args].concat(),
        ))
    }

    fn url(&self) -> String {
        self.0.url()
    }

    fn rows(&self, t: &str) -> Vec<Value> {
        self.0
            .jsonl("intake.jsonl")
            .into_iter()
            .filter(|r| r["type"] == t)
            .collect()
    }
}

/// confluo: OTLP/HTTP in, `datadog` out (`exporter_yaml` indented under it).
fn start_confluo(exporter_yaml: &str, pipelines: &[&str]) -> (Confluo, String) {
    let (confluo, http_port) = start_otlp_to_exporter(
        "http",
        "datadog",
        &format!(
            "    api:\n      key: test-key\n    hostname: confluo-fallback\n{exporter_yaml}\n{FAST_RETRY}"
        ),
        pipelines,
    );
    (confluo, format!("http://127.0.0.1:{http_port}"))
}

fn tags(v: &Value) -> Vec<String> {
    str_list(v)
}

// ------------------------------------------------------------ VictoriaMetrics

/// A VictoriaMetrics server on an ephemeral port with a temp storage dir.
struct Victoria {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Victoria {
    fn start() -> Victoria {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("vm.log")).expect("vm log");
        let child = Command::new("victoria-metrics")
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr={addr}"))
            // Accept the test's "now" points without waiting for the
            // default 30 s search latency offset.
            .arg("-search.latencyOffset=0s")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log)
            .spawn()
            .expect("spawn victoria-metrics (Debian package victoria-metrics)");
        let mut vm = Victoria {
            child,
            addr,
            _dir: dir,
        };
        let ready = wait_until(
            Duration::from_secs(30),
            || matches!(http_get(&vm.addr, "/health"), Ok(r) if r.status == 200),
        );
        if !ready {
            let _ = vm.child.kill();
            panic!(
                "victoria-metrics did not become healthy: {}",
                std::fs::read_to_string(vm._dir.path().join("vm.log")).unwrap_or_default()
            );
        }
        vm
    }

    /// Every stored sample of series whose name starts with `prefix`:
    /// (name, labels without `__name__`) → values in time order.
    fn export(&self, prefix: &str) -> BTreeMap<(String, BTreeMap<String, String>), Vec<f64>> {
        let _ = http_get(&self.addr, "/internal/force_flush");
        let q = format!("/api/v1/export?match[]=%7B__name__%3D~%22{prefix}.*%22%7D");
        let resp = http_get(&self.addr, &q).expect("GET /api/v1/export");
        assert_eq!(resp.status, 200, "{}", resp.text());
        let mut out = BTreeMap::new();
        for line in resp.text().lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("export line");
            let mut labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let name = labels.remove("__name__").unwrap_or_default();
            let mut samples: Vec<(i64, f64)> = v["timestamps"]
                .as_array()
                .unwrap()
                .iter()
                .zip(v["values"].as_array().unwrap())
                .map(|(t, x)| (t.as_i64().unwrap(), x.as_f64().unwrap()))
                .collect();
            samples.sort_by_key(|s| s.0);
            out.insert((name, labels), samples.into_iter().map(|s| s.1).collect());
        }
        out
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn v1_series_are_stored_by_victoria_metrics() {
    let vm = Victoria::start();
    let exporter = format!(
        "    metrics:\n      endpoint: http://{}/datadog\n      api_version: v1\n      compression: deflate\n      histograms:\n        mode: counters\n        send_aggregation_metrics: true\n",
        vm.addr
    );
    let (confluo, otlp) = start_confluo(&exporter, &["metrics"]);
    let sent = run_python("datadog_send.py", &["metrics", &otlp]);
    assert_eq!(sent["ok"], true);

    let mut stored = BTreeMap::new();
    let complete = wait_until(Duration::from_secs(30), || {
        stored = vm.export("dd");
        // Both cycles of the counter (5 kept as the first value of a series
        // that started after the exporter, then the delta 3).
        stored
            .iter()
            .any(|((n, _), v)| n.starts_with("dd") && n.ends_with("requests") && v.len() == 2)
    });
    assert!(
        complete,
        "VictoriaMetrics holds {stored:#?}\nconfluo stderr:\n{}",
        confluo.stderr()
    );
    let find = |name: &str, extra: &[(&str, &str)]| -> Vec<f64> {
        let hits: Vec<_> = stored
            .iter()
            .filter(|((n, labels), _)| {
                n == name
                    && extra
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(hits.len(), 1, "one series {name} {extra:?} in {stored:#?}");
        hits[0].1.clone()
    };
    // VictoriaMetrics 1.79 keeps Datadog's dotted names as they are; `host`
    // becomes a label, `k:v` tags become labels.
    let common = [
        ("host", "e2e-host"),
        ("service", "dd-e2e"),
        ("env", "test"),
        ("version", "1.2.3"),
        ("route", "/a"),
    ];
    assert_eq!(find("dd.requests", &common), vec![5.0, 3.0]);
    assert_eq!(find("dd.queue.depth", &common), vec![6.0, 7.0]);
    assert_eq!(find("dd.temperature", &common), vec![21.5, 22.5]);
    // Cumulative histogram: the second cycle's differences.
    assert_eq!(find("dd.latency.count", &common), vec![2.0]);
    assert_eq!(find("dd.latency.sum", &common), vec![67.0]);
    let bucket = |lo: &str, hi: &str| {
        let mut l = common.to_vec();
        l.push(("lower_bound", lo));
        l.push(("upper_bound", hi));
        find("dd.latency.bucket", &l)
    };
    // The SDK's default bounds 0, 5, 10, 25, 50, 75, 100, 250, 500, …
    assert_eq!(bucket("5.0", "10.0"), vec![1.0]);
    assert_eq!(bucket("50.0", "75.0"), vec![1.0]);
    assert_eq!(bucket("250.0", "500.0"), vec![0.0]);
    assert_eq!(
        confluo.metric_or_zero(
            "otelcol_exporter_datadog_rejected_items",
            &[("reason", "bad_request")]
        ),
        0.0
    );
}

// ------------------------------------------------------------ contract server

#[test]
fn v2_series_sketches_and_logs_pass_the_datadog_models() {
    let intake = Intake::start(&[]);
    let exporter = format!(
        "    metrics:\n      endpoint: {url}\n    logs:\n      endpoint: {url}\n",
        url = intake.url()
    );
    let (confluo, otlp) = start_confluo(&exporter, &["metrics", "logs"]);
    let sent = run_python("datadog_send.py", &["metrics", &otlp]);
    assert_eq!(sent["ok"], true);
    let logs = run_python("datadog_send.py", &["logs", &otlp]);

    let done = wait_until(Duration::from_secs(30), || {
        intake
            .rows("series")
            .iter()
            .filter(|s| s["metric"] == "dd.requests")
            .count()
            == 2
            && !intake.rows("sketch").is_empty()
            && intake.rows("log").len() == 3
    });
    let requests = intake.rows("request");
    assert!(
        done,
        "requests: {requests:#?}\nconfluo stderr:\n{}",
        confluo.stderr()
    );
    assert!(
        requests.iter().all(|r| r["status"] == 202),
        "every request accepted: {requests:#?}"
    );
    assert!(requests.iter().all(|r| r["encoding"] == "gzip"));

    let series = intake.rows("series");
    let of =
        |name: &str| -> Vec<&Value> { series.iter().filter(|s| s["metric"] == name).collect() };
    for s in &series {
        assert_eq!(s["host"], "e2e-host");
        let t = tags(&s["tags"]);
        for want in ["service:dd-e2e", "env:test", "version:1.2.3", "route:/a"] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
    }
    let values = |name: &str, kind: i64| -> Vec<f64> {
        of(name)
            .iter()
            .map(|s| {
                assert_eq!(s["type_"], kind, "{name} type");
                s["points"][0][1].as_f64().unwrap()
            })
            .collect()
    };
    assert_eq!(values("dd.requests", 1), vec![5.0, 3.0]);
    assert_eq!(values("dd.queue.depth", 3), vec![6.0, 7.0]);
    assert_eq!(values("dd.temperature", 3), vec![21.5, 22.5]);
    // Timestamps are seconds of "now".
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = of("dd.requests")[0]["points"][0][0].as_i64().unwrap();
    assert!(
        (now - 120..=now).contains(&ts),
        "timestamp {ts} vs now {now}"
    );
    // Distributions: no bucket series, one sketch of the second cycle.
    assert!(of("dd.latency.bucket").is_empty() && of("dd.latency.count").is_empty());
    let sketches = intake.rows("sketch");
    assert_eq!(sketches.len(), 1, "{sketches:#?}");
    let sk = &sketches[0];
    assert_eq!(
        (sk["metric"].as_str(), sk["host"].as_str()),
        (Some("dd.latency"), Some("e2e-host"))
    );
    assert!(tags(&sk["tags"]).contains(&"route:/a".to_string()));
    let d = &sk["dogsketches"][0];
    assert_eq!(
        (d["cnt"].as_i64(), d["sum"].as_f64()),
        (Some(2), Some(67.0))
    );
    assert_eq!(d["avg"].as_f64(), Some(33.5));
    let n: i64 = d["n"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .sum();
    assert_eq!(n, 2, "the bins hold both values");
    // 7 lies in (5, 10], 60 in (50, 75]: their bins lie within those bounds.
    let (min, max) = (d["min"].as_f64().unwrap(), d["max"].as_f64().unwrap());
    assert!(
        (4.9..=10.2).contains(&min) && (49.0..=75.2).contains(&max),
        "min {min} max {max}"
    );

    let items: Vec<Value> = intake
        .rows("log")
        .into_iter()
        .map(|r| r["item"].clone())
        .collect();
    let by_msg = |m: &str| {
        items
            .iter()
            .find(|i| i["message"] == m)
            .unwrap_or_else(|| panic!("{m} in {items:#?}"))
    };
    let warn = by_msg("disk almost full");
    assert_eq!(warn["status"], "WARN");
    assert_eq!(warn["hostname"], "e2e-host");
    assert_eq!(warn["service"], "dd-e2e");
    assert_eq!(warn["ddsource"], "otlp_log_ingestion");
    let dt = warn["ddtags"].as_str().unwrap();
    for want in [
        "service:dd-e2e",
        "env:test",
        "version:1.2.3",
        "otel_source:datadog_exporter",
    ] {
        assert!(dt.split(',').any(|t| t == want), "{want} in {dt}");
    }
    assert_eq!(warn["mount"], "/var");
    assert_eq!(warn["disk.free_mb"], "12");
    assert!(warn["@timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(warn.get("dd.trace_id").is_none());
    let err = by_msg("request failed");
    assert_eq!(err["status"], "ERROR");
    let trace_hex = logs["trace_id"].as_str().unwrap();
    let lower = u64::from_str_radix(&trace_hex[16..], 16).unwrap();
    assert_eq!(err["dd.trace_id"], lower.to_string());
    assert_eq!(err["otel.trace_id"], trace_hex);
    let span = u64::from_str_radix(logs["span_id"].as_str().unwrap(), 16).unwrap();
    assert_eq!(err["dd.span_id"], span.to_string());
    assert_eq!(by_msg("plain info")["status"], "INFO");
}

/// OTLP/JSON logs: `n` records with bodies `line 0…`.
fn otlp_logs(n: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let recs: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": now.to_string(),
                "severityNumber": 9,
                "body": {"stringValue": format!("line {i}")},
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "scripted"}}]},
        "scopeLogs": [{"logRecords": recs}]
    }]}))
    .unwrap()
}

fn post_logs(otlp: &str, n: usize) {
    let addr = otlp.trim_start_matches("http://");
    let (status, _, body) = http_post(
        addr,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        &otlp_logs(n),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn retries_splits_and_permanent_errors() {
    // Logs: 429 (Retry-After 1), then 500, then 413 (split in two halves,
    // each accepted). Series: 400 once (permanent, counted).
    let intake = Intake::start(&[
        "--script",
        "/api/v2/logs=429,500,413",
        "--script",
        "/api/v2/series=400",
    ]);
    let exporter = format!(
        "    metrics:\n      endpoint: {url}\n    logs:\n      endpoint: {url}\n",
        url = intake.url()
    );
    let (confluo, otlp) = start_confluo(&exporter, &["metrics", "logs"]);

    post_logs(&otlp, 3);
    let got = wait_until(Duration::from_secs(30), || intake.rows("log").len() == 3);
    let requests = |path: &str| -> Vec<(i64, i64)> {
        intake
            .rows("request")
            .iter()
            .filter(|r| r["path"] == path)
            .map(|r| (r["status"].as_i64().unwrap(), r["items"].as_i64().unwrap()))
            .collect()
    };
    let logs = requests("/api/v2/logs");
    assert!(got, "logs requests: {logs:?}\n{}", confluo.stderr());
    let statuses: Vec<i64> = logs.iter().map(|r| r.0).collect();
    assert_eq!(statuses, vec![429, 500, 413, 202, 202], "{logs:?}");
    let mut halves: Vec<i64> = logs[3..].iter().map(|r| r.1).collect();
    halves.sort();
    assert_eq!(halves, vec![1, 2], "the 413 split the request in two");
    let bodies: Vec<String> = intake
        .rows("log")
        .iter()
        .map(|r| r["item"]["message"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = bodies.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["line 0", "line 1", "line 2"]);

    // Series: a 400 is permanent and counted by reason.
    let sent = run_python("datadog_send.py", &["metrics", &otlp]);
    assert_eq!(sent["ok"], true);
    let counted = wait_until(Duration::from_secs(30), || {
        confluo.metric_or_zero(
            "otelcol_exporter_datadog_rejected_items",
            &[("reason", "bad_request")],
        ) > 0.0
    });
    assert!(counted, "{}", confluo.metrics());
    assert_eq!(requests("/api/v2/series")[0].0, 400);
}

#[test]
fn a_wrong_api_key_is_forbidden_and_counted() {
    let intake = Intake::start(&["--api-key", "another-key"]);
    let exporter = format!("    logs:\n      endpoint: {}\n", intake.url());
    let (confluo, otlp) = start_confluo(&exporter, &["logs"]);
    post_logs(&otlp, 2);
    let counted = wait_until(Duration::from_secs(30), || {
        confluo.metric_or_zero(
            "otelcol_exporter_datadog_rejected_items",
            &[("reason", "forbidden")],
        ) == 2.0
    });
    assert!(counted, "{}", confluo.metrics());
    assert!(intake.rows("log").is_empty());
    // Permanent: exactly one attempt.
    assert_eq!(intake.rows("request").len(), 1);
}
