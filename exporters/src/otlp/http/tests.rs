//! `otlp_http` against an in-process axum server that records requests and
//! answers from a script.

use super::*;
use crate::testdata;
use axum::extract::State;
use axum::response::IntoResponse;
use confluo_pipeline::compression::decompress;
use confluo_pipeline::proto::trace_service::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};
use confluo_pipeline::{ComponentKind, Signal};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        ..Default::default()
    }
}

#[derive(Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    /// Decompressed per Content-Encoding.
    body: Vec<u8>,
}

#[derive(Default)]
struct Recorder {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

impl Recorder {
    fn scripted(replies: Vec<Reply>) -> Arc<Recorder> {
        let r = Recorder::default();
        *r.script.lock().unwrap() = replies.into();
        Arc::new(r)
    }

    fn attempts(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn handle(
    State(rec): State<Arc<Recorder>>,
    uri: http::Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = decompress(encoding.as_deref(), body, 64 << 20).expect("valid compressed body");
    rec.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
    let r = rec.script.lock().unwrap().pop_front().unwrap_or(reply(200));
    let mut resp = (http::StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    resp
}

async fn serve(rec: Arc<Recorder>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(handle))
        .with_state(rec);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn exporter(yaml: &str) -> (Arc<dyn Exporter>, ComponentContext) {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let problems = OtlpHttpFactory.check(&node);
    assert!(problems.is_empty(), "{problems:?}");
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "otlp_http");
    let exp = OtlpHttpFactory
        .create(ctx.clone(), &node, SignalSet::ALL)
        .unwrap();
    (exp, ctx)
}

/// No queue (consume returns the final result) and fast retries.
fn cfg(addr: SocketAddr, extra: &str) -> String {
    format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{enabled: false}}, \
         retry_on_failure: {{initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 5s}}{extra}}}"
    )
}

fn header<'a>(s: &'a Seen, name: &str) -> Option<&'a str> {
    s.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn protobuf_bodies_decode_to_the_original_with_gzip_by_default() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone()).await;
    let (exp, ctx) = exporter(&cfg(addr, ", headers: {Authorization: 'Bearer t0ken'}"));
    exp.start().await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.consume(Batch::new(testdata::metrics())).await.unwrap();
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    let seen = rec.seen.lock().unwrap();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/v1/traces", "/v1/metrics", "/v1/logs"]
    );
    for s in seen.iter() {
        assert_eq!(header(s, "content-type"), Some("application/x-protobuf"));
        assert_eq!(header(s, "content-encoding"), Some("gzip"));
        assert_eq!(header(s, "authorization"), Some("Bearer t0ken"));
        assert!(header(s, "user-agent").unwrap().starts_with("confluo/"));
    }
    let t = ExportTraceServiceRequest::decode(&seen[0].body[..]).unwrap();
    assert_eq!(Signal::Traces(t.resource_spans), testdata::traces());
    let m = confluo_pipeline::proto::metrics_service::ExportMetricsServiceRequest::decode(
        &seen[1].body[..],
    )
    .unwrap();
    assert_eq!(Signal::Metrics(m.resource_metrics), testdata::metrics());
    let l =
        confluo_pipeline::proto::logs_service::ExportLogsServiceRequest::decode(&seen[2].body[..])
            .unwrap();
    assert_eq!(Signal::Logs(l.resource_logs), testdata::logs());
    let rendered = ctx.telemetry.render();
    assert!(
        rendered.contains("otelcol_exporter_sent_metric_points{exporter=\"otlp_http\"} 3"),
        "{rendered}"
    );
}

#[tokio::test]
async fn json_bodies_decode_to_the_original() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone()).await;
    let (exp, _) = exporter(&cfg(addr, ", encoding: json, compression: none"));
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    let (zstd, _) = exporter(&cfg(addr, ", encoding: json, compression: zstd"));
    zstd.consume(Batch::new(testdata::metrics())).await.unwrap();
    let seen = rec.seen.lock().unwrap();
    assert_eq!(header(&seen[0], "content-type"), Some("application/json"));
    assert_eq!(header(&seen[0], "content-encoding"), None);
    assert_eq!(header(&seen[2], "content-encoding"), Some("zstd"));
    let t = otlp_json::decode_traces(&seen[0].body).unwrap();
    assert_eq!(Signal::Traces(t.resource_spans), testdata::traces());
    let l = otlp_json::decode_logs(&seen[1].body).unwrap();
    assert_eq!(Signal::Logs(l.resource_logs), testdata::logs());
    let m = otlp_json::decode_metrics(&seen[2].body).unwrap();
    assert_eq!(Signal::Metrics(m.resource_metrics), testdata::metrics());
}

#[tokio::test]
async fn retry_after_overrides_the_backoff() {
    let throttled = Reply {
        status: 503,
        headers: vec![("retry-after", "0".into())],
        body: vec![],
    };
    let rec = Recorder::scripted(vec![throttled.clone(), throttled]);
    let addr = serve(rec.clone()).await;
    // A 10s backoff that `Retry-After: 0` must override.
    let (exp, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{enabled: false}}, retry_on_failure: {{initial_interval: 10s}}}}"
    ));
    let started = Instant::now();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rec.attempts(), 3);
    // The same (compressed-once) body was sent every time.
    let seen = rec.seen.lock().unwrap();
    assert!(seen.windows(2).all(|w| w[0].body == w[1].body));
}

#[tokio::test]
async fn retryable_statuses_and_delay() {
    let rec = Recorder::scripted(vec![
        Reply {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: vec![],
        },
        reply(502),
        reply(504),
    ]);
    let addr = serve(rec.clone()).await;
    let (exp, _) = exporter(&cfg(addr, ""));
    let started = Instant::now();
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    assert_eq!(rec.attempts(), 4);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_errors_are_permanent_with_the_status_message() {
    let status = tonic_types::pb::Status {
        code: 3,
        message: "span name must not be empty".into(),
        details: vec![],
    };
    let rec = Recorder::scripted(vec![Reply {
        status: 400,
        headers: vec![("content-type", "application/x-protobuf".into())],
        body: status.encode_to_vec(),
    }]);
    let addr = serve(rec.clone()).await;
    let (exp, ctx) = exporter(&cfg(addr, ""));
    let err = exp
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("400") && text.contains("span name must not be empty"),
        "{text}"
    );
    assert_eq!(rec.attempts(), 1);
    assert!(ctx
        .telemetry
        .render()
        .contains("otelcol_exporter_send_failed_spans{exporter=\"otlp_http\"} 2"));

    // 500 is not in the spec's retryable list either.
    let rec = Recorder::scripted(vec![Reply {
        status: 500,
        headers: vec![("content-type", "application/json".into())],
        body: br#"{"code":13,"message":"disk on fire"}"#.to_vec(),
    }]);
    let addr = serve(rec.clone()).await;
    let (exp, _) = exporter(&cfg(addr, ""));
    let err = exp
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable() && err.to_string().contains("disk on fire"),
        "{err}"
    );
    assert_eq!(rec.attempts(), 1);
}

#[tokio::test]
async fn partial_success_is_counted_not_retried() {
    let resp = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: "too old".into(),
        }),
    };
    let mut json = Vec::new();
    otlp_json::encode_trace_response(&resp, &mut json);
    let rec = Recorder::scripted(vec![
        Reply {
            status: 200,
            headers: vec![("content-type", "application/x-protobuf".into())],
            body: resp.encode_to_vec(),
        },
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: json,
        },
    ]);
    let addr = serve(rec.clone()).await;
    let (exp, ctx) = exporter(&cfg(addr, ""));
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    assert_eq!(rec.attempts(), 2);
    let rendered = ctx.telemetry.render();
    assert!(
        rendered.contains("otelcol_exporter_sent_spans{exporter=\"otlp_http\"} 2"),
        "{rendered}"
    );
    assert!(
        rendered.contains("otelcol_exporter_send_failed_spans{exporter=\"otlp_http\"} 2"),
        "{rendered}"
    );
}

#[tokio::test]
async fn per_signal_endpoints_override_the_base() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone()).await;
    let (exp, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}/otlp/', logs_endpoint: 'http://{addr}/custom/logs', sending_queue: {{enabled: false}}}}"
    ));
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    let paths: Vec<String> = rec
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(paths, ["/otlp/v1/traces", "/custom/logs"]);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (exp, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ));
    assert!(exp
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err()
        .is_retryable());
}

#[test]
fn config_validation_and_urls() {
    let check = |y: &str| OtlpHttpFactory.check(&Node::from_yaml_str("t.yaml", y).unwrap());
    assert!(check("{endpoint: 'https://otlp.example.com'}").is_empty());
    assert!(check("{traces_endpoint: 'https://x/v1/traces'}").is_empty());
    assert_eq!(check("{}").len(), 1);
    assert_eq!(check("{endpoint: 'otlp.example.com:4318'}").len(), 1);
    assert_eq!(check("{endpoint: 'https://x', encoding: avro}").len(), 1);
    assert_eq!(check("{endpoint: 'https://x', compression: lz4}").len(), 1);
    assert_eq!(
        check("{endpoint: 'https://x', tls: {insecure_skip_verify: true}, timeout: 2s}").len(),
        0
    );
    assert_eq!(check("{endpoint: 'https://x', unknown: 1}").len(), 1);

    let cfg: HttpConfig = Node::from_yaml_str("t.yaml", "{endpoint: 'https://x:4318'}")
        .unwrap()
        .deserialize()
        .unwrap();
    assert_eq!(
        cfg.url(SignalKind::Metrics).unwrap().to_string(),
        "https://x:4318/v1/metrics"
    );
    assert_eq!(cfg.encoding, super::super::config::Encoding::Proto);
    assert_eq!(cfg.compression, Compression::Gzip);
    assert_eq!(cfg.timeout.0, Duration::from_secs(30));

    // Only traces configured: creating it for a logs pipeline fails clearly.
    let node = Node::from_yaml_str("t.yaml", "{traces_endpoint: 'http://x/v1/traces'}").unwrap();
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "otlp_http");
    let err = OtlpHttpFactory
        .create(ctx, &node, SignalSet::only(SignalKind::Logs))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("logs_endpoint"), "{err}");
}
