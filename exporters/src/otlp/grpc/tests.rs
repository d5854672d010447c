//! `otlp_grpc` against an in-process tonic server built from
//! opentelemetry-proto's generated services, which records what it gets and
//! answers from a script.

use super::*;
use crate::testdata;
use confluo_pipeline::proto::logs_service::logs_service_server::{LogsService, LogsServiceServer};
use confluo_pipeline::proto::logs_service::ExportLogsServiceRequest;
use confluo_pipeline::proto::metrics_service::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use confluo_pipeline::proto::metrics_service::ExportMetricsServiceRequest;
use confluo_pipeline::proto::trace_service::trace_service_server::{
    TraceService, TraceServiceServer,
};
use confluo_pipeline::proto::trace_service::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};
use confluo_pipeline::{ComponentKind, Signal};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_types::ErrorDetails;

/// What the server answers to the next call: `Ok(rejected)` or a status.
type Answer = Result<i64, Status>;

#[derive(Default)]
struct Recorder {
    traces: Mutex<Vec<ExportTraceServiceRequest>>,
    metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
    logs: Mutex<Vec<ExportLogsServiceRequest>>,
    script: Mutex<VecDeque<Answer>>,
    attempts: AtomicUsize,
    /// `grpc-encoding` of every call (None when uncompressed).
    encodings: Mutex<Vec<Option<String>>>,
    metadata: Mutex<Vec<MetadataMap>>,
}

impl Recorder {
    fn scripted(answers: Vec<Answer>) -> Arc<Recorder> {
        let r = Recorder::default();
        *r.script.lock().unwrap() = answers.into();
        Arc::new(r)
    }

    /// Records the call's metadata and returns the scripted answer.
    fn answer<T>(&self, req: &tonic::Request<T>) -> Answer {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let md = req.metadata();
        self.encodings.lock().unwrap().push(
            md.get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        );
        self.metadata.lock().unwrap().push(md.clone());
        self.script.lock().unwrap().pop_front().unwrap_or(Ok(0))
    }

    fn span_names(&self) -> Vec<String> {
        self.traces
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect()
    }
}

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let rejected = self.answer(&request)?;
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: "spans too old".into(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        self.answer(&request)?;
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        self.answer(&request)?;
        self.logs.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// A test-only CA and a server certificate for `localhost` / `127.0.0.1`
/// signed by it (made with openssl; the CA key was discarded).
const CA_PEM: &str = include_str!("../testdata/ca.pem");
const SERVER_PEM: &str = include_str!("../testdata/server.pem");
const SERVER_KEY: &str = include_str!("../testdata/server.key");

async fn serve(rec: Arc<Recorder>, tls: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut builder = Server::builder();
    if tls {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(SERVER_PEM, SERVER_KEY)))
            .unwrap();
    }
    let router = builder
        .add_service(
            TraceServiceServer::from_arc(rec.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd),
        )
        .add_service(
            MetricsServiceServer::from_arc(rec.clone())
                .accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(LogsServiceServer::from_arc(rec).accept_compressed(CompressionEncoding::Gzip));
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
    addr
}

/// Fast retries, and no queue unless the test asks: `consume` then returns
/// the final result, which makes outcomes observable without sleeping.
fn exporter(yaml: &str) -> (Arc<dyn Exporter>, ComponentContext) {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let problems = OtlpGrpcFactory.check(&node);
    assert!(problems.is_empty(), "{problems:?}");
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "otlp_grpc");
    let exp = OtlpGrpcFactory
        .create(ctx.clone(), &node, SignalSet::ALL)
        .unwrap();
    (exp, ctx)
}

fn plain(addr: SocketAddr, extra: &str) -> String {
    format!(
        "{{endpoint: '{addr}', tls: {{insecure: true}}, sending_queue: {{enabled: false}}, \
         retry_on_failure: {{initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 5s}}{extra}}}"
    )
}

#[tokio::test]
async fn delivers_what_was_consumed_for_every_signal() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone(), false).await;
    let (exp, ctx) = exporter(&plain(addr, ""));
    exp.start().await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.consume(Batch::new(testdata::metrics())).await.unwrap();
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    let traces = rec.traces.lock().unwrap().clone();
    assert_eq!(traces.len(), 1);
    assert_eq!(
        Signal::Traces(traces[0].resource_spans.clone()),
        testdata::traces()
    );
    assert_eq!(
        Signal::Metrics(rec.metrics.lock().unwrap()[0].resource_metrics.clone()),
        testdata::metrics()
    );
    assert_eq!(
        Signal::Logs(rec.logs.lock().unwrap()[0].resource_logs.clone()),
        testdata::logs()
    );
    let rendered = ctx.telemetry.render();
    assert!(
        rendered.contains("otelcol_exporter_sent_spans{exporter=\"otlp_grpc\"} 2"),
        "{rendered}"
    );
    assert!(
        rendered.contains("otelcol_exporter_sent_log_records{exporter=\"otlp_grpc\"} 2"),
        "{rendered}"
    );
    exp.shutdown(Instant::now()).await.unwrap();
}

#[tokio::test]
async fn unavailable_is_retried_and_delivered_once() {
    let rec = Recorder::scripted(vec![Err(Status::unavailable("restarting"))]);
    let addr = serve(rec.clone(), false).await;
    let (exp, _) = exporter(&plain(addr, ""));
    exp.start().await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    assert_eq!(rec.attempts.load(Ordering::SeqCst), 2);
    assert_eq!(rec.traces.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let rec = Recorder::scripted(vec![Err(Status::invalid_argument("bad data"))]);
    let addr = serve(rec.clone(), false).await;
    let (exp, ctx) = exporter(&plain(addr, ""));
    exp.start().await.unwrap();
    let err = exp
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("bad data"), "{err}");
    assert_eq!(rec.attempts.load(Ordering::SeqCst), 1);
    assert!(rec.traces.lock().unwrap().is_empty());
    let rendered = ctx.telemetry.render();
    assert!(
        rendered.contains("otelcol_exporter_send_failed_spans{exporter=\"otlp_grpc\"} 2"),
        "{rendered}"
    );
}

#[tokio::test]
async fn resource_exhausted_is_retried_only_with_retry_info() {
    let rec = Recorder::scripted(vec![Err(Status::resource_exhausted("too big"))]);
    let addr = serve(rec.clone(), false).await;
    let (exp, _) = exporter(&plain(addr, ""));
    exp.start().await.unwrap();
    let err = exp
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(rec.attempts.load(Ordering::SeqCst), 1);

    let throttled = Status::with_error_details(
        Code::ResourceExhausted,
        "slow down",
        ErrorDetails::with_retry_info(Some(Duration::from_millis(300))),
    );
    let rec = Recorder::scripted(vec![Err(throttled)]);
    let addr = serve(rec.clone(), false).await;
    let (exp, _) = exporter(&plain(addr, ""));
    exp.start().await.unwrap();
    let started = Instant::now();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    assert_eq!(rec.attempts.load(Ordering::SeqCst), 2);
    assert_eq!(rec.traces.lock().unwrap().len(), 1);
    // The server's delay wins over the 10ms backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn partial_success_is_counted_and_not_retried() {
    let rec = Recorder::scripted(vec![Ok(1)]);
    let addr = serve(rec.clone(), false).await;
    let (exp, ctx) = exporter(&plain(addr, ""));
    exp.start().await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    assert_eq!(rec.attempts.load(Ordering::SeqCst), 1);
    let rendered = ctx.telemetry.render();
    assert!(
        rendered.contains("otelcol_exporter_sent_spans{exporter=\"otlp_grpc\"} 1"),
        "{rendered}"
    );
    assert!(
        rendered.contains("otelcol_exporter_send_failed_spans{exporter=\"otlp_grpc\"} 1"),
        "{rendered}"
    );
}

#[tokio::test]
async fn compression_and_headers_on_the_wire() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone(), false).await;
    // gzip is the default.
    let (exp, _) = exporter(&plain(
        addr,
        ", headers: {x-api-key: s3cret, X-Tenant: acme}",
    ));
    exp.start().await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    let (zstd, _) = exporter(&plain(addr, ", compression: zstd"));
    zstd.consume(Batch::new(testdata::traces())).await.unwrap();
    let (none, _) = exporter(&plain(addr, ", compression: none"));
    none.consume(Batch::new(testdata::traces())).await.unwrap();
    assert_eq!(
        *rec.encodings.lock().unwrap(),
        [Some("gzip".to_string()), Some("zstd".to_string()), None]
    );
    let md = rec.metadata.lock().unwrap()[0].clone();
    assert_eq!(md.get("x-api-key").unwrap(), "s3cret");
    assert_eq!(md.get("x-tenant").unwrap(), "acme");
    assert!(md.get("grpc-timeout").is_some());
    assert!(md
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("confluo/")));
    // Every request decoded to the same data, whatever the compression.
    assert!(rec
        .traces
        .lock()
        .unwrap()
        .iter()
        .all(|r| Signal::Traces(r.resource_spans.clone()) == testdata::traces()));
}

#[tokio::test]
async fn http_scheme_means_plaintext_even_without_tls_insecure() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone(), false).await;
    let (exp, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ));
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    assert_eq!(rec.logs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn tls_with_a_private_ca_and_with_skip_verify() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone(), true).await;
    let ca = CA_PEM.replace('\n', "\\n");
    let (exp, _) = exporter(&format!(
        "{{endpoint: '{addr}', tls: {{ca_pem: \"{ca}\"}}, sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ));
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    let (skip, _) = exporter(&format!(
        "{{endpoint: 'localhost:{}', tls: {{insecure_skip_verify: true}}, sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}",
        addr.port()
    ));
    skip.consume(Batch::new(testdata::traces())).await.unwrap();
    assert_eq!(rec.traces.lock().unwrap().len(), 2);

    // TLS is on by default: the system roots do not trust the test CA, and
    // a failed handshake is retryable (no response from the server).
    let (untrusted, _) = exporter(&format!(
        "{{endpoint: '{addr}', sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ));
    let err = untrusted
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    // And plaintext against a TLS server fails too.
    let (plaintext, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ));
    assert!(plaintext
        .consume(Batch::new(testdata::traces()))
        .await
        .is_err());
    assert_eq!(rec.traces.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (exp, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}"
    ));
    let err = exp
        .consume(Batch::new(testdata::traces()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn queued_requests_are_merged_at_dequeue() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone(), false).await;
    let (exp, _) = exporter(&format!(
        "{{endpoint: 'http://{addr}', sending_queue: {{num_consumers: 1, batch: {{min_size: 6, flush_timeout: 2s}}}}}}"
    ));
    exp.start().await.unwrap();
    for tag in ["a", "b", "c"] {
        exp.consume(Batch::new(testdata::traces_named(tag, 2)))
            .await
            .unwrap();
    }
    exp.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(rec.traces.lock().unwrap().len(), 1, "one merged request");
    assert_eq!(rec.span_names(), ["a-0", "a-1", "b-0", "b-1", "c-0", "c-1"]);
}

#[test]
fn classify_follows_the_otlp_spec() {
    let retry = |s: Status| matches!(classify(&s), SendOutcome::Retry { .. });
    for code in [
        Code::Cancelled,
        Code::DeadlineExceeded,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unavailable,
        Code::DataLoss,
    ] {
        assert!(retry(Status::new(code, "x")), "{code:?}");
    }
    for code in [
        Code::InvalidArgument,
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::Unimplemented,
        Code::Internal,
        Code::Unknown,
        Code::NotFound,
        Code::ResourceExhausted,
    ] {
        assert!(!retry(Status::new(code, "x")), "{code:?}");
    }
    let with_info = Status::with_error_details(
        Code::Unavailable,
        "throttled",
        ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
    );
    match classify(&with_info) {
        SendOutcome::Retry { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_validation() {
    let check = |y: &str| OtlpGrpcFactory.check(&Node::from_yaml_str("t.yaml", y).unwrap());
    assert!(check("{endpoint: 'collector:4317'}").is_empty());
    let e = check("{}");
    assert_eq!(e.len(), 1);
    assert!(e[0].to_string().contains("endpoint"), "{}", e[0]);
    assert_eq!(
        check("{endpoint: 'collector:4317', compresion: gzip}").len(),
        1
    );
    assert_eq!(
        check("{endpoint: 'collector:4317', compression: snappy}").len(),
        1
    );
    assert_eq!(check("{endpoint: 'unix:///tmp/s.sock'}").len(), 1);
    assert_eq!(
        check("{endpoint: 'collector:4317', balancer_name: weird}").len(),
        1
    );
    let w = check("{endpoint: 'collector:4317', balancer_name: round_robin}");
    assert!(w.len() == 1 && !w[0].is_error(), "{w:?}");
    let e = check("{endpoint: 'c:4317', headers: {'bad header': x}}");
    assert_eq!(e.len(), 1);
    // A bad header value is named by its key, never quoted.
    let e = check("{endpoint: 'c:4317', headers: {authorization: \"Bearer \\u0001secret\"}}");
    assert_eq!(e.len(), 1);
    assert!(!e[0].to_string().contains("secret"), "{}", e[0]);
    let cfg: GrpcConfig = Node::from_yaml_str("t.yaml", "{endpoint: x:1}")
        .unwrap()
        .deserialize()
        .unwrap();
    assert_eq!(cfg.compression, Compression::Gzip);
    assert_eq!(cfg.timeout.0, Duration::from_secs(5));
    assert!(cfg.sending_queue.enabled);
}

#[test]
fn endpoint_resolution() {
    let target = |y: &str| {
        Node::from_yaml_str("t.yaml", y)
            .unwrap()
            .deserialize::<GrpcConfig>()
            .unwrap()
            .target()
    };
    let t = target("{endpoint: 'collector:4317'}").unwrap();
    assert_eq!(
        (t.uri.to_string().as_str(), t.tls),
        ("http://collector:4317/", true)
    );
    let t = target("{endpoint: 'collector:4317', tls: {insecure: true}}").unwrap();
    assert!(!t.tls);
    let t = target("{endpoint: 'http://collector:4317'}").unwrap();
    assert!(!t.tls);
    let t = target("{endpoint: 'https://collector', tls: {insecure: true}}").unwrap();
    assert_eq!(
        (t.uri.to_string().as_str(), t.tls),
        ("http://collector:443/", true)
    );
    let t = target("{endpoint: 'dns:///collector:4317'}").unwrap();
    assert_eq!(t.uri.authority().unwrap().as_str(), "collector:4317");
    assert!(target("{endpoint: 'collector:4317/v1/traces'}").is_err());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let cfg: GrpcConfig = Node::from_yaml_str(
        "t.yaml",
        "{endpoint: x:1, headers: {authorization: hunter2}}",
    )
    .unwrap()
    .deserialize()
    .unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
}
