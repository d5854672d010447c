//! The receiver on loopback with real clients: tonic's generated OTLP
//! clients for gRPC and a raw HTTP/1.1 client (so that every header and byte
//! is under the test's control).

use super::*;
use confluo_config::ComponentKind;
use confluo_pipeline::proto::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::metrics::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{ResourceSpans, ScopeSpans, Span};
use confluo_pipeline::Consumer;
use logs_service::logs_service_client::LogsServiceClient;
use logs_service::ExportLogsServiceRequest;
use metrics_service::metrics_service_client::MetricsServiceClient;
use metrics_service::ExportMetricsServiceRequest;
use prost::Message;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt;
use trace_service::trace_service_client::TraceServiceClient;
use trace_service::ExportTraceServiceRequest;

// ---------------------------------------------------------------- helpers

/// Collects batches; can refuse, or hold consumes until released.
#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Batch>>,
    refuse: Mutex<Option<ConsumeError>>,
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            let _pass = gate.acquire().await;
        }
        if let Some(e) = self.refuse.lock().unwrap().clone() {
            return Err(e);
        }
        self.got.lock().unwrap().push(batch);
        Ok(())
    }
}

impl Sink {
    fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
    fn refuse_with(&self, e: Option<ConsumeError>) {
        *self.refuse.lock().unwrap() = e;
    }
}

struct Harness {
    rx: OtlpReceiver,
    ctx: ComponentContext,
    sink: Arc<Sink>,
}

impl Harness {
    fn grpc(&self) -> String {
        format!("http://{}", self.rx.grpc_addr().expect("grpc started"))
    }
    fn http(&self) -> SocketAddr {
        self.rx.http_addr().expect("http started")
    }
    fn metric(&self, line_prefix: &str) -> Option<u64> {
        let text = self.ctx.telemetry.render();
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
    }
}

const BOTH: &str = "protocols: {grpc: {endpoint: '127.0.0.1:0'}, http: {endpoint: '127.0.0.1:0'}}";

fn config(yaml: &str) -> Result<OtlpConfig, Vec<ConfigError>> {
    let node = Node::from_yaml_str("test.yaml", yaml).expect("valid YAML");
    OtlpConfig::from_node(&node)
}

async fn start(yaml: &str) -> Harness {
    start_for(yaml, SignalSet::ALL).await
}

async fn start_for(yaml: &str, signals: SignalSet) -> Harness {
    let ctx = ComponentContext::for_tests(ComponentKind::Receiver, "otlp");
    start_ctx(yaml, signals, ctx).await
}

async fn start_ctx(yaml: &str, signals: SignalSet, ctx: ComponentContext) -> Harness {
    let sink = Arc::new(Sink::default());
    let mut consumers = SignalConsumers::default();
    for kind in signals.iter() {
        consumers.set(kind, sink.clone());
    }
    let mut rx = OtlpReceiver::new(ctx.clone(), config(yaml).expect("valid config"));
    rx.start(consumers).await.expect("receiver starts");
    Harness { rx, ctx, sink }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", "checkout")],
        ..Default::default()
    })
}

fn traces(spans: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("span-{i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        end_time_unix_nano: 1_700_000_000_000_000_100 + i as u64,
                        attributes: vec![kv("http.route", "/checkout")],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics(points: usize) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue_depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                time_unix_nano: 1_700_000_000_000_000_000,
                                value: Some(number_data_point::Value::AsInt(i as i64)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(records: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: (0..records)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    confluo_pipeline::compression::gzip(data)
}

/// A response read by the raw HTTP client.
#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `google.rpc.Status` of an error answer, in either encoding.
    fn rpc_status(&self) -> (i32, String) {
        match self.header("content-type") {
            Some(PROTOBUF_CT) => {
                let s = tonic_types::Status::decode(&self.body[..])
                    .expect("protobuf google.rpc.Status");
                (s.code, s.message)
            }
            Some(JSON_CT) => {
                let v: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON status");
                (
                    v["code"].as_i64().expect("code") as i32,
                    v["message"].as_str().expect("message").to_string(),
                )
            }
            other => panic!("unexpected content-type {other:?}: {}", self.text()),
        }
    }
}

const PROTOBUF_CT: &str = "application/x-protobuf";
const JSON_CT: &str = "application/json";

/// Sends `head` (request line and headers, without the blank line) and
/// `body`, then reads until the server closes.
async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> HttpResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{head}\r\nHost: test\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10s")
        .expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .expect("hex chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// POSTs `body` with a Content-Length and the given extra headers.
async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut head = format!("POST {path} HTTP/1.1\r\nContent-Length: {}", body.len());
    for (k, v) in headers {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    raw_http(addr, &head, body).await
}

fn traces_of(batch: &Batch) -> &[ResourceSpans] {
    match batch.signal() {
        Signal::Traces(t) => t,
        other => panic!("expected traces, got {:?}", other.kind()),
    }
}

// ---------------------------------------------------------------- config

#[test]
fn config_null_protocol_means_defaults_and_absent_means_off() {
    let c = config("protocols: {grpc: }").unwrap();
    let grpc = c.protocols.grpc.expect("grpc enabled");
    assert_eq!(grpc.endpoint.as_str(), "localhost:4317");
    assert_eq!(grpc.max_recv_msg_size(), 4 << 20);
    assert!(!grpc.include_metadata);
    assert!(c.protocols.http.is_none());

    let c = config("protocols:\n  http:\n").unwrap();
    let http = c.protocols.http.expect("http enabled");
    assert_eq!(http.endpoint.as_str(), "localhost:4318");
    assert_eq!(http.max_request_body_size(), 20 << 20);
    assert_eq!(http.traces_url_path.as_str(), "/v1/traces");
    assert_eq!(http.metrics_url_path.as_str(), "/v1/metrics");
    assert_eq!(http.logs_url_path.as_str(), "/v1/logs");
    assert!(c.protocols.grpc.is_none());
}

#[test]
fn config_reads_every_documented_option() {
    let c = config(
        "protocols:\n  grpc: {endpoint: '0.0.0.0:14317', max_recv_msg_size_mib: 16, max_concurrent_streams: 8, include_metadata: true}\n  http:\n    endpoint: 0.0.0.0:14318\n    max_request_body_size: 10MiB\n    include_metadata: true\n    traces_url_path: custom/traces\n    metrics_url_path: /m\n    logs_url_path: /l\n    cors: {allowed_origins: ['https://*.example.com'], allowed_headers: [X-Tenant], max_age: 600}\n",
    )
    .unwrap();
    let grpc = c.protocols.grpc.unwrap();
    assert_eq!(grpc.max_recv_msg_size(), 16 << 20);
    assert_eq!(grpc.max_concurrent_streams, 8);
    assert!(grpc.include_metadata);
    let http = c.protocols.http.unwrap();
    assert_eq!(http.max_request_body_size(), 10 << 20);
    assert_eq!(http.traces_url_path.as_str(), "/custom/traces");
    let cors = http.cors.unwrap();
    assert_eq!(cors.allowed_origins, vec!["https://*.example.com"]);
    assert_eq!(cors.max_age, 600);
}

#[test]
fn config_errors() {
    let first = |yaml: &str| config(yaml).expect_err(yaml).remove(0);

    let e = first("protocols: {}");
    assert!(e.message.contains("at least one protocol"), "{e}");
    let e = first("");
    assert!(e.message.contains("at least one protocol"), "{e}");

    let e = first("protocols: {grpc: {endpont: 'localhost:4317'}}");
    assert!(e.message.contains("endpont"), "{e}");
    let e = first("protocols: {thrift: {}}");
    assert!(e.message.contains("thrift"), "{e}");

    for yaml in [
        "protocols: {grpc: {tls: {cert_file: a.pem}}}",
        "protocols: {http: {tls: }}",
        "protocols: {http: {auth: {authenticator: basicauth}}}",
    ] {
        let e = first(yaml);
        assert!(e.message.contains("not supported yet"), "{yaml}: {e}");
        assert!(
            e.path.contains("tls") || e.path.contains("auth"),
            "{yaml}: {}",
            e.path
        );
    }

    let e = first("protocols: {grpc: {endpoint: localhost}}");
    assert!(e.message.contains("host:port"), "{e}");
    let e = first("protocols: {http: {endpoint: 'localhost:99999'}}");
    assert!(e.message.contains("host:port"), "{e}");

    let e = first("protocols: {http: {traces_url_path: /v1/x, logs_url_path: /v1/x}}");
    assert!(e.message.contains("same path"), "{e}");
    let e = first("protocols: {http: {max_request_body_size: 0}}");
    assert!(e.message.contains("greater than 0"), "{e}");
}

#[test]
fn factory_checks_and_creates() {
    let f = OtlpReceiverFactory;
    assert_eq!(f.type_name(), "otlp");
    let good = Node::from_yaml_str("t.yaml", BOTH).unwrap();
    assert!(f.check(&good).is_empty());
    let bad = Node::from_yaml_str("t.yaml", "protocols: {grpc: {bogus: 1}}").unwrap();
    assert_eq!(f.check(&bad).len(), 1);
    let ctx = ComponentContext::for_tests(ComponentKind::Receiver, "otlp");
    assert!(f.create(ctx.clone(), &good).is_ok());
    assert!(f.create(ctx, &bad).is_err());
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn bind_conflict_fails_start_with_the_endpoint() {
    let h = start(BOTH).await;
    let taken = h.rx.grpc_addr().unwrap();
    let ctx = ComponentContext::for_tests(ComponentKind::Receiver, "otlp/2");
    let cfg = config(&format!("protocols: {{grpc: {{endpoint: '{taken}'}}}}")).unwrap();
    let mut second = OtlpReceiver::new(ctx, cfg);
    let mut consumers = SignalConsumers::default();
    consumers.set(SignalKind::Traces, h.sink.clone());
    let err = second.start(consumers).await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("otlp/2: bind {taken}: ")), "{err}");
}

#[tokio::test]
async fn shutdown_waits_for_requests_in_flight_then_stops_listening() {
    let mut h = start(BOTH).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *h.sink.gate.lock().unwrap() = Some(gate.clone());
    let addr = h.http();
    let body = traces(1).encode_to_vec();
    let in_flight = tokio::spawn(async move {
        post(addr, "/v1/traces", &[("Content-Type", PROTOBUF_CT)], &body).await
    });
    // Wait until the request is blocked in the consumer.
    while h.ctx.admission.available() == (1 << 30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut shutdown = Box::pin(h.rx.shutdown(Instant::now() + Duration::from_secs(10)));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut shutdown)
            .await
            .is_err(),
        "shutdown returned while a request was in flight"
    );
    gate.add_permits(1);
    shutdown.await.unwrap();
    assert_eq!(in_flight.await.unwrap().status, 200);
    assert_eq!(h.sink.take().len(), 1);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test]
async fn shutdown_abandons_requests_still_in_flight_at_the_deadline() {
    let mut h = start(BOTH).await;
    // Never opened: the consumer holds both requests past the deadline.
    *h.sink.gate.lock().unwrap() = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    let (grpc_url, http_addr) = (h.grpc(), h.http());
    let grpc = tokio::spawn(async move {
        let mut client = TraceServiceClient::connect(grpc_url).await.unwrap();
        client.export(traces(1)).await
    });
    let http = tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(http_addr).await.unwrap();
        let body = traces(1).encode_to_vec();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: t\r\ncontent-type: {PROTOBUF_CT}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    });
    // Both requests are blocked in the consumer once both hold admission.
    let one = ExportTraceServiceRequest::encoded_len(&traces(1));
    while h.ctx.admission.available() > (1 << 30) - 2 * one {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let grace = Duration::from_millis(300);
    let begun = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), h.rx.shutdown(begun + grace))
        .await
        .expect("shutdown kept waiting past its deadline")
        .unwrap();
    let took = begun.elapsed();
    assert!(took >= grace, "returned before the deadline: {took:?}");
    assert!(took < grace + Duration::from_secs(2), "took {took:?}");
    assert!(
        tokio::net::TcpStream::connect(http_addr).await.is_err(),
        "still listening after shutdown"
    );
    // The servers' connection tasks are detached from the listeners' tasks,
    // so the abandoned requests stay parked in the consumer (in the process
    // they end with the runtime); they were not answered.
    assert!(!grpc.is_finished() && !http.is_finished());
    assert!(h.sink.take().is_empty());
    grpc.abort();
    http.abort();
}

// ---------------------------------------------------------------- gRPC

#[tokio::test]
async fn grpc_export_delivers_exactly_the_request() {
    let h = start(BOTH).await;
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();
    let req = traces(3);
    let resp = client.export(req.clone()).await.unwrap().into_inner();
    assert!(resp.partial_success.is_none());
    let got = h.sink.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signal(), &Signal::Traces(req.resource_spans.clone()));
    assert_eq!(got[0].wire_bytes, req.encoded_len());
    assert!(got[0].ctx.client.addr.is_some_and(|a| a.ip().is_loopback()));
    assert!(
        got[0].ctx.client.metadata.is_empty(),
        "include_metadata is off"
    );
    assert_eq!(
        h.metric("otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"}"),
        Some(3)
    );
    assert_eq!(
        h.metric(
            "otelcol_receiver_requests{receiver=\"otlp\",transport=\"grpc\",outcome=\"success\"}"
        ),
        Some(1)
    );

    let mut metrics_client = MetricsServiceClient::connect(h.grpc()).await.unwrap();
    metrics_client.export(metrics(4)).await.unwrap();
    let mut logs_client = LogsServiceClient::connect(h.grpc()).await.unwrap();
    logs_client.export(logs(5)).await.unwrap();
    let got = h.sink.take();
    assert_eq!(
        got.iter()
            .map(|b| (b.kind(), b.item_count()))
            .collect::<Vec<_>>(),
        [(SignalKind::Metrics, 4), (SignalKind::Logs, 5)]
    );
    assert_eq!(
        h.metric("otelcol_receiver_accepted_metric_points{receiver=\"otlp\",transport=\"grpc\"}"),
        Some(4)
    );
    assert_eq!(
        h.metric("otelcol_receiver_accepted_log_records{receiver=\"otlp\",transport=\"grpc\"}"),
        Some(5)
    );
}

#[tokio::test]
async fn grpc_gzip_and_zstd_requests_are_accepted() {
    let h = start(BOTH).await;
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = TraceServiceClient::connect(h.grpc())
            .await
            .unwrap()
            .send_compressed(encoding);
        let req = traces(50);
        client.export(req.clone()).await.unwrap();
        let got = h.sink.take();
        assert_eq!(got.len(), 1, "{encoding:?}");
        assert_eq!(traces_of(&got[0]), &req.resource_spans[..]);
    }
}

#[tokio::test]
async fn grpc_empty_request_succeeds_without_the_pipeline() {
    let h = start(BOTH).await;
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();
    client
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap();
    assert!(h.sink.take().is_empty());
}

#[tokio::test]
async fn grpc_include_metadata_copies_request_metadata() {
    let h = start("protocols: {grpc: {endpoint: '127.0.0.1:0', include_metadata: true}}").await;
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();
    let mut req = tonic::Request::new(traces(1));
    req.metadata_mut()
        .insert("x-tenant", "acme".parse().unwrap());
    req.set_timeout(Duration::from_secs(30));
    client.export(req).await.unwrap();
    let got = h.sink.take();
    let md = &got[0].ctx.client.metadata;
    assert!(
        md.contains(&("x-tenant".to_string(), "acme".to_string())),
        "{md:?}"
    );
    let deadline = got[0]
        .ctx
        .deadline
        .expect("grpc-timeout becomes the deadline");
    assert!(deadline > Instant::now() + Duration::from_secs(20));
}

#[tokio::test]
async fn grpc_services_exist_only_for_signals_in_a_pipeline() {
    let h = start_for(BOTH, SignalSet::only(SignalKind::Traces)).await;
    let mut client = MetricsServiceClient::connect(h.grpc()).await.unwrap();
    let status = client.export(metrics(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();
    client.export(traces(1)).await.unwrap();
}

#[tokio::test]
async fn grpc_consumer_refusals_map_to_status_codes() {
    let h = start(BOTH).await;
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();

    h.sink.refuse_with(Some(ConsumeError::Retryable {
        reason: "sending queue is full".into(),
        retry_after: Some(Duration::from_secs(3)),
    }));
    let status = client.export(traces(2)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("sending queue is full"));
    let retry = status.get_details_retry_info().expect("RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));

    h.sink
        .refuse_with(Some(ConsumeError::retryable("pipeline is shutting down")));
    let status = client.export(traces(2)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let retry = status.get_details_retry_info().expect("RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(DEFAULT_RETRY_AFTER));

    h.sink
        .refuse_with(Some(ConsumeError::permanent("span name is required")));
    let status = client.export(traces(2)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("span name is required"));

    h.sink.refuse_with(None);
    client.export(traces(1)).await.unwrap();
    assert_eq!(
        h.metric("otelcol_receiver_refused_spans{receiver=\"otlp\",transport=\"grpc\"}"),
        Some(6)
    );
    assert_eq!(
        h.metric("otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"}"),
        Some(1)
    );
}

#[tokio::test]
async fn grpc_admission_refusal_is_resource_exhausted_with_retry_info() {
    let ctx = ComponentContext {
        admission: confluo_pipeline::admission::Admission::new(1 << 20),
        ..ComponentContext::for_tests(ComponentKind::Receiver, "otlp")
    };
    let h = start_ctx(BOTH, SignalSet::ALL, ctx).await;
    let held = h.ctx.admission.try_admit(1 << 20).expect("whole budget");
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();
    let status = client.export(traces(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.get_details_retry_info().is_some());
    assert!(h.sink.take().is_empty());
    drop(held);
    client.export(traces(1)).await.unwrap();
    assert_eq!(h.sink.take().len(), 1);
    assert_eq!(h.ctx.admission.available(), 1 << 20, "permits are returned");
}

#[tokio::test]
async fn grpc_oversized_message_is_refused_and_the_server_keeps_serving() {
    let h = start("protocols: {grpc: {endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1}}").await;
    let mut client = TraceServiceClient::connect(h.grpc()).await.unwrap();
    let mut big = traces(1);
    big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(1 << 20);
    let status = client.export(big).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{status:?}"
    );
    assert!(h.sink.take().is_empty());
    client.export(traces(1)).await.unwrap();
    assert_eq!(h.sink.take().len(), 1);
}

/// Sends raw bytes as the gRPC message, to test the decoder with garbage.
mod raw_grpc {
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::Status;

    #[derive(Default)]
    pub struct RawCodec;
    pub struct Raw;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = Raw;
        type Decoder = Raw;
        fn encoder(&mut self) -> Raw {
            Raw
        }
        fn decoder(&mut self) -> Raw {
            Raw
        }
    }

    impl Encoder for Raw {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }

    impl Decoder for Raw {
        type Item = Vec<u8>;
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
            let n = bytes::Buf::remaining(src);
            Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
        }
    }
}

async fn raw_grpc_export(
    url: String,
    path: &'static str,
    message: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(message),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        raw_grpc::RawCodec,
    )
    .await
    .map(|r| r.into_inner())
}

/// Sends one hand-built gRPC message (flag, length, payload) with
/// `grpc-encoding: gzip`, so that the payload need not be valid gzip, and
/// returns the answer's status.
async fn raw_gzip_frame(url: String, path: &'static str, payload: &[u8]) -> tonic::Status {
    use http_body_util::BodyExt;
    use tonic::codegen::Service;
    let mut channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(1); // compressed
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let req = ::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", "gzip")
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(frame),
        )))
        .unwrap();
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .unwrap();
    let resp = channel.call(req).await.unwrap();
    if let Some(status) = tonic::Status::from_header_map(resp.headers()) {
        return status; // trailers-only answer
    }
    let trailers = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .trailers()
        .cloned();
    tonic::Status::from_header_map(&trailers.expect("trailers")).expect("grpc-status")
}

#[tokio::test]
async fn grpc_admission_is_taken_on_the_wire_bytes_before_decompression() {
    const BUDGET: usize = 64 << 10;
    let ctx = ComponentContext {
        admission: confluo_pipeline::admission::Admission::new(BUDGET),
        ..ComponentContext::for_tests(ComponentKind::Receiver, "otlp")
    };
    let h = start_ctx(BOTH, SignalSet::ALL, ctx).await;
    let held = h.ctx.admission.try_admit(BUDGET / 2).unwrap();

    // Compressed it fits in what is left; decompressed it is four times the
    // whole budget: accepted, and counted by its wire size.
    let mut big = traces(1);
    big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(4 * BUDGET);
    assert!(big.encoded_len() > 4 * BUDGET);
    let mut client = TraceServiceClient::connect(h.grpc())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    client.export(big.clone()).await.unwrap();
    let got = h.sink.take();
    assert_eq!(got.len(), 1);
    assert_eq!(traces_of(&got[0]), &big.resource_spans[..]);
    let gzipped = gzip(&big.encode_to_vec()).len();
    assert!(
        got[0].wire_bytes > 0 && got[0].wire_bytes < BUDGET / 2,
        "wire_bytes {} is the compressed size (~{gzipped}), not the decoded one",
        got[0].wire_bytes
    );
    assert_eq!(
        h.ctx.admission.available(),
        BUDGET / 2,
        "permits are returned"
    );

    // A gzip-flagged message that is not gzip at all, larger than what is
    // left: refused by admission. Had it been decompressed first, the answer
    // would have been a decompression error.
    let not_gzip = vec![0xab; BUDGET / 2 + 1024];
    let status = raw_gzip_frame(h.grpc(), Traces::GRPC_PATH, &not_gzip).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().is_some(), "{status:?}");
    assert_eq!(
        h.metric(
            "otelcol_receiver_requests{receiver=\"otlp\",transport=\"grpc\",outcome=\"refused\"}"
        ),
        Some(1)
    );

    // With the budget free the same bytes reach decompression, which fails.
    drop(held);
    let status = raw_gzip_frame(h.grpc(), Traces::GRPC_PATH, &not_gzip).await;
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert!(status.message().contains("decompressing"), "{status:?}");
    assert!(h.sink.take().is_empty());
    assert_eq!(h.ctx.admission.available(), BUDGET, "permits are returned");
}

#[tokio::test]
async fn grpc_decompressed_size_is_still_capped_by_max_recv_msg_size() {
    let h = start("protocols: {grpc: {endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1}}").await;
    let mut client = TraceServiceClient::connect(h.grpc())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let mut bomb = traces(1);
    bomb.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(2 << 20);
    let status = client.export(bomb).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.get_details_retry_info().is_none(),
        "a size limit is not backpressure: {status:?}"
    );
    assert!(h.sink.take().is_empty());
    assert_eq!(h.ctx.admission.available(), 1 << 30, "permits are returned");
    client.export(traces(1)).await.unwrap();
    assert_eq!(h.sink.take().len(), 1);
}

#[tokio::test]
async fn grpc_undecodable_messages_are_invalid_argument() {
    let h = start(BOTH).await;
    let mut truncated = traces(3).encode_to_vec();
    truncated.truncate(truncated.len() - 5);
    for garbage in [truncated, vec![0xff; 32]] {
        let status = raw_grpc_export(h.grpc(), Traces::GRPC_PATH, garbage)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with("failed to decode protobuf"),
            "{status:?}"
        );
    }
    assert!(h.sink.take().is_empty());
    assert_eq!(
        h.metric(
            "otelcol_receiver_requests{receiver=\"otlp\",transport=\"grpc\",outcome=\"failure\"}"
        ),
        Some(2)
    );
    // The same raw path works with a valid message.
    let ok = raw_grpc_export(h.grpc(), Traces::GRPC_PATH, traces(1).encode_to_vec())
        .await
        .unwrap();
    assert!(ok.is_empty(), "an empty ExportTraceServiceResponse");
    assert_eq!(h.sink.take().len(), 1);
    assert_eq!(h.ctx.admission.available(), 1 << 30, "permits are returned");
}

// ---------------------------------------------------------------- HTTP

#[tokio::test]
async fn http_protobuf_export_delivers_exactly_the_request() {
    let h = start(BOTH).await;
    let req = traces(2);
    let body = req.encode_to_vec();
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(PROTOBUF_CT));
    let resp = trace_service::ExportTraceServiceResponse::decode(&r.body[..]).unwrap();
    assert!(resp.partial_success.is_none());
    let got = h.sink.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signal(), &Signal::Traces(req.resource_spans));
    assert_eq!(got[0].wire_bytes, body.len());
    assert!(got[0].ctx.client.addr.is_some());
    assert_eq!(
        h.metric("otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"http\"}"),
        Some(2)
    );
}

#[tokio::test]
async fn http_json_export_decodes_otlp_json() {
    let h = start(BOTH).await;
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
        "scopeSpans":[{"scope":{"name":"manual"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
        "spanId":"EEE19B7EC3C1B174","name":"GET /cart","kind":2,"startTimeUnixNano":"1544712660000000000",
        "endTimeUnixNano":"1544712661000000000","attributes":[{"key":"http.status_code","value":{"intValue":"200"}}]}]}]}]}"#;
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", "application/json; charset=utf-8")],
        json.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(JSON_CT));
    assert_eq!(r.text().trim(), "{}");
    let got = h.sink.take();
    let span = &traces_of(&got[0])[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "GET /cart");
    assert_eq!(span.kind, 2);
    assert_eq!(
        span.trace_id,
        [
            0x5B, 0x8E, 0xFF, 0xF7, 0x98, 0x03, 0x81, 0x03, 0xD2, 0x69, 0xB6, 0x33, 0x81, 0x3F,
            0xC6, 0x0C
        ]
    );
    assert_eq!(
        span.span_id,
        [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74]
    );
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(
        span.attributes[0].value.as_ref().unwrap().value,
        Some(any_value::Value::IntValue(200))
    );
}

#[tokio::test]
async fn http_metrics_and_logs_paths_route_to_their_signal() {
    let h = start(BOTH).await;
    let r = post(
        h.http(),
        "/v1/metrics",
        &[("Content-Type", PROTOBUF_CT)],
        &metrics(3).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let json_logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"stringValue":"hi"}},{"body":{"stringValue":"there"}}]}]}]}"#;
    let r = post(
        h.http(),
        "/v1/logs",
        &[("Content-Type", JSON_CT)],
        json_logs.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = h.sink.take();
    assert_eq!(
        got.iter()
            .map(|b| (b.kind(), b.item_count()))
            .collect::<Vec<_>>(),
        [(SignalKind::Metrics, 3), (SignalKind::Logs, 2)]
    );
}

#[tokio::test]
async fn http_gzip_and_zstd_bodies_are_decompressed() {
    let h = start(BOTH).await;
    let req = traces(20);
    let plain = req.encode_to_vec();
    for (encoding, body) in [
        ("gzip", gzip(&plain)),
        ("zstd", confluo_pipeline::compression::zstd(&plain)),
    ] {
        let r = post(
            h.http(),
            "/v1/traces",
            &[
                ("Content-Type", PROTOBUF_CT),
                ("Content-Encoding", encoding),
            ],
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{encoding}: {}", r.text());
        let got = h.sink.take();
        assert_eq!(traces_of(&got[0]), &req.resource_spans[..], "{encoding}");
        assert_eq!(
            got[0].wire_bytes,
            body.len(),
            "wire bytes are the compressed size"
        );
    }
}

#[tokio::test]
async fn http_chunked_body_without_content_length() {
    let h = start(BOTH).await;
    let body = traces(2).encode_to_vec();
    let (a, b) = body.split_at(body.len() / 2);
    let mut chunked = Vec::new();
    for part in [a, b] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nContent-Type: {PROTOBUF_CT}\r\nTransfer-Encoding: chunked"
    );
    let r = raw_http(h.http(), &head, &chunked).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.sink.take()[0].item_count(), 2);
}

#[tokio::test]
async fn http_bad_requests_are_400_with_a_status_body_and_the_server_keeps_serving() {
    let h = start(BOTH).await;
    let addr = h.http();
    let mut truncated = traces(3).encode_to_vec();
    truncated.truncate(truncated.len() - 7);

    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &[0xff; 40],
    )
    .await;
    assert_eq!(r.status, 400);
    let (code, message) = r.rpc_status();
    assert_eq!(code, tonic::Code::InvalidArgument as i32);
    assert!(
        message.starts_with("failed to decode protobuf"),
        "{message}"
    );

    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &truncated,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.rpc_status().1.starts_with("failed to decode protobuf"));

    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT), ("Content-Encoding", "gzip")],
        b"definitely not gzip",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.rpc_status().1.contains("gzip"), "{}", r.rpc_status().1);

    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT), ("Content-Encoding", "br")],
        &traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.rpc_status().1.contains("unsupported Content-Encoding"));

    let bad_json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","name":"a"},{"traceId":"zz","name":"b"}]}]}]}"#;
    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", JSON_CT)],
        bad_json.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some(JSON_CT));
    let (code, message) = r.rpc_status();
    assert_eq!(code, 3);
    assert!(
        message.starts_with("invalid OTLP/JSON at resourceSpans[0].scopeSpans[0].spans["),
        "{message}"
    );
    assert!(message.contains("traceId"), "{message}");

    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", JSON_CT)],
        b"{\"resourceSpans\": [",
    )
    .await;
    assert_eq!(r.status, 400);

    assert!(h.sink.take().is_empty());
    assert_eq!(
        h.metric(
            "otelcol_receiver_requests{receiver=\"otlp\",transport=\"http\",outcome=\"failure\"}"
        ),
        Some(6)
    );
    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.sink.take().len(), 1);
    assert_eq!(h.ctx.admission.available(), 1 << 30, "permits are returned");
}

#[tokio::test]
async fn http_unsupported_content_type_is_415() {
    let h = start(BOTH).await;
    for ct in [Some("text/plain"), Some("application/protobuf-ish"), None] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("Content-Type", c)).into_iter().collect();
        let r = post(h.http(), "/v1/traces", &headers, &traces(1).encode_to_vec()).await;
        assert_eq!(r.status, 415, "{ct:?}");
        assert!(
            r.text().contains("application/json") && r.text().contains("application/x-protobuf")
        );
    }
    assert!(h.sink.take().is_empty());
}

#[tokio::test]
async fn http_bodies_over_the_limit_are_413() {
    let h =
        start("protocols: {http: {endpoint: '127.0.0.1:0', max_request_body_size: 4096}}").await;
    let addr = h.http();

    // Declared too large: refused before reading (no body sent at all).
    let head =
        format!("POST /v1/traces HTTP/1.1\r\nContent-Type: {PROTOBUF_CT}\r\nContent-Length: 5000");
    let r = raw_http(addr, &head, b"").await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.rpc_status().0, 3);

    // Streamed without a length, over the limit.
    let big = vec![b'x'; 6000];
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nContent-Type: {PROTOBUF_CT}\r\nTransfer-Encoding: chunked"
    );
    let r = raw_http(addr, &head, &chunked).await;
    assert_eq!(r.status, 413, "{}", r.text());

    // A gzip bomb: small on the wire, over the limit once decompressed.
    let bomb = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        enc.finish().unwrap()
    };
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", JSON_CT), ("Content-Encoding", "gzip")],
        &bomb,
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.rpc_status().1.contains("exceeds the limit"));

    let r = post(
        addr,
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.sink.take().len(), 1);
}

#[tokio::test]
async fn http_wrong_method_is_405_and_unknown_path_is_404() {
    let h = start_for(BOTH, SignalSet::only(SignalKind::Traces)).await;
    let r = raw_http(h.http(), "GET /v1/traces HTTP/1.1", b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = post(h.http(), "/v1/spans", &[("Content-Type", PROTOBUF_CT)], b"").await;
    assert_eq!(r.status, 404);
    // No metrics pipeline: its path does not exist.
    let r = post(
        h.http(),
        "/v1/metrics",
        &[("Content-Type", PROTOBUF_CT)],
        &metrics(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn http_configured_paths_replace_the_defaults() {
    let h = start("protocols: {http: {endpoint: '127.0.0.1:0', traces_url_path: /otlp/t}}").await;
    let body = traces(1).encode_to_vec();
    let r = post(h.http(), "/otlp/t", &[("Content-Type", PROTOBUF_CT)], &body).await;
    assert_eq!(r.status, 200);
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &body,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn http_consumer_refusals_map_to_429_503_and_400() {
    let h = start(BOTH).await;
    let body = traces(2).encode_to_vec();
    let send = || {
        post(
            h.http(),
            "/v1/traces",
            &[("Content-Type", PROTOBUF_CT)],
            &body,
        )
    };

    h.sink.refuse_with(Some(ConsumeError::Retryable {
        reason: "sending queue is full".into(),
        retry_after: Some(Duration::from_millis(2500)),
    }));
    let r = send().await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(
        r.rpc_status(),
        (
            tonic::Code::ResourceExhausted as i32,
            "sending queue is full".into()
        )
    );

    h.sink
        .refuse_with(Some(ConsumeError::retryable("exporter is shutting down")));
    let r = send().await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));

    h.sink
        .refuse_with(Some(ConsumeError::permanent("bad data")));
    let r = send().await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("retry-after"), None);

    h.sink.refuse_with(None);
    assert_eq!(send().await.status, 200);
    assert_eq!(
        h.metric("otelcol_receiver_refused_spans{receiver=\"otlp\",transport=\"http\"}"),
        Some(6)
    );
    assert_eq!(
        h.metric("otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"http\"}"),
        Some(2)
    );
}

#[tokio::test]
async fn http_admission_refusal_is_429() {
    let ctx = ComponentContext {
        admission: confluo_pipeline::admission::Admission::new(1 << 20),
        ..ComponentContext::for_tests(ComponentKind::Receiver, "otlp")
    };
    let h = start_ctx(BOTH, SignalSet::ALL, ctx).await;
    let body = traces(1).encode_to_vec();
    let held = h.ctx.admission.try_admit(1 << 20).unwrap();
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &body,
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    drop(held);
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        &body,
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn http_include_metadata_copies_headers() {
    let h = start("protocols: {http: {endpoint: '127.0.0.1:0', include_metadata: true}}").await;
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT), ("X-Tenant", "acme")],
        &traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    let got = h.sink.take();
    assert!(got[0]
        .ctx
        .client
        .metadata
        .contains(&("x-tenant".to_string(), "acme".to_string())));
}

#[tokio::test]
async fn http_empty_request_succeeds_without_the_pipeline() {
    let h = start(BOTH).await;
    let r = post(
        h.http(),
        "/v1/traces",
        &[("Content-Type", PROTOBUF_CT)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post(h.http(), "/v1/logs", &[("Content-Type", JSON_CT)], b"{}").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text().trim(), "{}");
    assert!(h.sink.take().is_empty());
}

#[tokio::test]
async fn http_cors_preflight_and_actual_request() {
    let h = start(
        "protocols: {http: {endpoint: '127.0.0.1:0', cors: {allowed_origins: ['https://*.example.com'], allowed_headers: [X-Tenant], max_age: 600}}}",
    )
    .await;
    let preflight = |origin: &str, headers: &str| {
        let head = format!(
            "OPTIONS /v1/traces HTTP/1.1\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: {headers}"
        );
        let addr = h.http();
        async move { raw_http(addr, &head, b"").await }
    };
    let r = preflight("https://app.example.com", "content-type, x-tenant").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));

    let r = preflight("https://evil.org", "content-type").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = preflight("https://app.example.com", "x-secret").await;
    assert_eq!(r.header("access-control-allow-origin"), None);

    let r = post(
        h.http(),
        "/v1/traces",
        &[
            ("Content-Type", PROTOBUF_CT),
            ("Origin", "https://app.example.com"),
        ],
        &traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
}
