//! The shared send path: how Datadog's answers become outcomes, 413 splits,
//! headers and compression. Conversion tests live with each signal's module.

use super::*;
use axum::extract::State;
use axum::response::IntoResponse;
use confluo_pipeline::exporter_helper::Request as _;
use confluo_pipeline::{ComponentKind, SignalKind};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;

#[derive(Debug)]
struct Seen {
    path: String,
    method: http::Method,
    headers: HeaderMap,
    /// Decompressed.
    body: Vec<u8>,
}

/// Answers by a script; a body of more than `max_parts` JSON elements gets 413.
#[derive(Default)]
struct Intake {
    script: Mutex<VecDeque<u16>>,
    max_parts: Option<usize>,
    seen: Mutex<Vec<Seen>>,
}

async fn handle(
    State(intake): State<Arc<Intake>>,
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let body = match headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        Some("gzip") => confluo_pipeline::compression::decompress(Some("gzip"), body, 64 << 20)
            .unwrap()
            .to_vec(),
        Some("deflate") => {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        Some("zstd1") => zstd::bulk::decompress(&body, 64 << 20).unwrap(),
        None => body.to_vec(),
        Some(other) => panic!("unexpected encoding {other}"),
    };
    let parts = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len));
    intake.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        method,
        headers,
        body,
    });
    let status = match (intake.max_parts, parts) {
        (Some(max), Some(n)) if n > max => 413,
        _ => intake.script.lock().unwrap().pop_front().unwrap_or(202),
    };
    let mut resp = (
        http::StatusCode::from_u16(status).unwrap(),
        r#"{"errors":[]}"#,
    )
        .into_response();
    if status == 429 {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
    }
    resp
}

async fn serve(script: Vec<u16>, max_parts: Option<usize>) -> (Arc<Intake>, SocketAddr) {
    let intake = Arc::new(Intake {
        script: Mutex::new(script.into()),
        max_parts,
        seen: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(handle).put(handle))
        .with_state(intake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (intake, addr)
}

fn sender(yaml: &str) -> (DatadogSender, ComponentContext) {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let cfg: DatadogConfig = load_with(&node, validate).unwrap();
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "datadog");
    (DatadogSender::new(&cfg, &ctx).unwrap(), ctx)
}

fn config(addr: SocketAddr, extra: &str) -> String {
    format!(
        "{{api: {{key: k3y}}, hostname: h, \
         metrics: {{endpoint: 'http://{addr}'}}, logs: {{endpoint: 'http://{addr}/'}}, \
         traces: {{endpoint: 'http://{addr}'}}{extra}}}"
    )
}

/// A logs request of `n` JSON elements, one item each.
fn logs_request(n: usize) -> DatadogRequest {
    let mut r = DatadogRequest::new(Route::Logs, Arc::new(Framing::json_array()));
    for i in 0..n {
        r.push(Bytes::from(format!("{{\"message\":\"m{i}\"}}")), 1);
    }
    r
}

fn metric(ctx: &ComponentContext, reason: &str) -> u64 {
    let text = ctx.telemetry.render();
    text.lines()
        .find(|l| {
            l.starts_with("otelcol_exporter_datadog_rejected_items{")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn posts_with_the_api_key_and_gzip() {
    let (intake, addr) = serve(vec![], None).await;
    let (s, _) = sender(&config(addr, ""));
    let out = s.send(&logs_request(3)).await;
    assert!(matches!(out, SendOutcome::Sent), "{out:?}");
    let seen = intake.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/v2/logs");
    assert_eq!(seen[0].method, http::Method::POST);
    let h = |n: &str| {
        seen[0]
            .headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(h("dd-api-key").as_deref(), Some("k3y"));
    assert_eq!(h("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(h("content-type").as_deref(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(v[2]["message"], "m2");
}

#[tokio::test]
async fn metrics_compression_is_configurable() {
    for (name, header) in [
        ("deflate", Some("deflate")),
        ("zstd1", Some("zstd1")),
        ("none", None),
    ] {
        let (intake, addr) = serve(vec![], None).await;
        let extra = format!(", metrics: {{endpoint: 'http://{addr}', compression: {name}}}");
        let yaml = format!(
            "{{api: {{key: k}}, hostname: h, logs: {{endpoint: 'http://{addr}'}}, traces: {{endpoint: 'http://{addr}'}}{extra}}}"
        );
        let (s, _) = sender(&yaml);
        let mut r = DatadogRequest::new(Route::SeriesV2, Arc::new(Framing::json_series()));
        r.push(Bytes::from_static(b"{\"metric\":\"a\"}"), 1);
        assert!(matches!(s.send(&r).await, SendOutcome::Sent));
        let seen = intake.seen.lock().unwrap();
        assert_eq!(seen[0].path, "/api/v2/series");
        assert_eq!(
            seen[0]
                .headers
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            header
        );
        assert_eq!(seen[0].body, b"{\"series\":[{\"metric\":\"a\"}]}");
    }
}

#[tokio::test]
async fn too_large_is_split_until_it_fits() {
    let (intake, addr) = serve(vec![], Some(2)).await;
    let (s, _) = sender(&config(addr, ""));
    let out = s.send(&logs_request(7)).await;
    assert!(matches!(out, SendOutcome::Sent), "{out:?}");
    let seen = intake.seen.lock().unwrap();
    let delivered: Vec<String> = seen
        .iter()
        .filter_map(|s| serde_json::from_slice::<Vec<serde_json::Value>>(&s.body).ok())
        .filter(|v| v.len() <= 2)
        .flatten()
        .map(|v| v["message"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
    assert_eq!(delivered, expected, "every element once, in order");
}

#[tokio::test]
async fn a_single_element_too_large_is_rejected_and_counted() {
    let (_intake, addr) = serve(vec![413], None).await;
    let (s, ctx) = sender(&config(addr, ""));
    let out = s.send(&logs_request(1)).await;
    assert!(matches!(out, SendOutcome::Permanent { .. }), "{out:?}");
    assert_eq!(metric(&ctx, "too_large"), 1);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_retry_after() {
    for status in [408u16, 429, 500, 503] {
        let (_intake, addr) = serve(vec![status], None).await;
        let (s, _) = sender(&config(addr, ""));
        match s.send(&logs_request(2)).await {
            SendOutcome::Retry { retry_after, error } => {
                assert!(error.contains(&status.to_string()), "{error}");
                if status == 429 {
                    assert_eq!(retry_after, Some(Duration::from_secs(7)));
                }
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_request_and_auth_errors_are_permanent_and_counted() {
    for (status, reason) in [
        (400u16, "bad_request"),
        (401, "unauthorized"),
        (403, "forbidden"),
    ] {
        let (_intake, addr) = serve(vec![status], None).await;
        let (s, ctx) = sender(&config(addr, ""));
        let out = s.send(&logs_request(3)).await;
        assert!(matches!(out, SendOutcome::Permanent { .. }), "{out:?}");
        assert_eq!(metric(&ctx, reason), 3, "{reason}");
    }
}

#[tokio::test]
async fn halves_of_a_split_fail_independently() {
    // 4 elements → 413; first half 202, second half 503 then (never) again.
    let (_intake, addr) = serve(vec![413, 202, 503], None).await;
    let (s, _) = sender(&config(addr, ""));
    match s.send(&logs_request(4)).await {
        SendOutcome::Partial {
            retry: Some(r),
            rejected: 0,
            ..
        } => {
            assert_eq!(r.item_count(), 2);
            assert_eq!(r.body(), br#"[{"message":"m2"},{"message":"m3"}]"#);
        }
        other => panic!("{other:?}"),
    }
    let (_intake, addr) = serve(vec![413, 400, 202], None).await;
    let (s, _) = sender(&config(addr, ""));
    match s.send(&logs_request(4)).await {
        SendOutcome::Partial {
            retry: None,
            rejected: 2,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_errors_name_the_key() {
    let check = |yaml: &str| -> Vec<String> {
        let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
        DatadogFactory
            .check(&node)
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert!(check("{api: {key: k}}").is_empty());
    let e = check("{api: {key: k, site: datadog.com}}");
    assert!(
        e[0].contains("site") && e[0].contains("datadog.com"),
        "{e:?}"
    );
    let e = check("{api: {key: ''}}");
    assert!(e[0].contains("api.key"), "{e:?}");
    let e = check("{api: {key: k}, metrics: {endpoint: 'ftp://x'}}");
    assert!(e[0].contains("endpoint"), "{e:?}");
    let e = check("{api: {key: k}, metrics: {api_verison: v1}}");
    assert!(e[0].contains("api_verison"), "{e:?}");
    let e = check("{api: {key: k}, traces: {ignore_resources: ['(']}}");
    assert!(e[0].contains("ignore_resources"), "{e:?}");
    let e = check("{}");
    assert!(e[0].contains("api"), "{e:?}");
}

#[test]
fn hosts_are_derived_from_the_site() {
    let node = Node::from_yaml_str("t.yaml", "{api: {key: k, site: datadoghq.eu}}").unwrap();
    let cfg: DatadogConfig = load_with(&node, validate).unwrap();
    assert_eq!(cfg.metrics_base(), "https://api.datadoghq.eu");
    assert_eq!(cfg.logs_base(), "https://http-intake.logs.datadoghq.eu");
    assert_eq!(cfg.traces_base(), "https://trace.agent.datadoghq.eu");
    let node = Node::from_yaml_str("t.yaml", "{api: {key: k}, traces: {protocol: agent}}").unwrap();
    let cfg: DatadogConfig = load_with(&node, validate).unwrap();
    assert_eq!(cfg.traces_base(), "http://localhost:8126");
}

#[test]
fn the_api_key_never_prints() {
    let node = Node::from_yaml_str("t.yaml", "{api: {key: s3cr3t-key}}").unwrap();
    let cfg: DatadogConfig = load_with(&node, validate).unwrap();
    assert!(!format!("{cfg:?}").contains("s3cr3t"));
    let _ = SignalKind::Logs;
}
