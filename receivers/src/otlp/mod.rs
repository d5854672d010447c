//! The `otlp` receiver: OTLP over gRPC (default `localhost:4317`) and over
//! HTTP with protobuf or JSON bodies (default `localhost:4318`), after the
//! OpenTelemetry Collector's `otlpreceiver`.
//!
//! Both transports share one path into the pipeline ([`Core`]): take the
//! request's bytes from the global admission budget, decode, hand the batch to
//! the signal's consumer, and map the consumer's answer to the protocol's
//! (success, backpressure with a retry delay, or a permanent rejection).
//!
//! Deliberate differences from the Collector, documented for users:
//! - `tls` and `auth` blocks are rejected (not supported yet) instead of
//!   configuring TLS/authentication.
//! - HTTP backpressure answers 429 (admission budget or pipeline full) and
//!   503 only while shutting down; the Collector answers 503 for both.
//! - Undecodable requests are counted in `otelcol_receiver_requests`
//!   with `outcome="failure"` (their item count is unknowable).

mod config;
mod grpc;
mod http;
#[cfg(test)]
mod tests;

pub use config::{
    CorsConfig, Endpoint, GrpcConfig, HttpConfig, OtlpConfig, Protocols, UrlPath,
    DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT, DEFAULT_MAX_RECV_MSG_SIZE_MIB,
    DEFAULT_MAX_REQUEST_BODY_SIZE,
};

use async_trait::async_trait;
use confluo_config::{ConfigError, Node, SignalKind, SignalSet};
use confluo_pipeline::admission::{Admission, AdmissionPermit};
use confluo_pipeline::otlp_json::{self, JsonError};
use confluo_pipeline::proto::{logs_service, metrics_service, trace_service};
use confluo_pipeline::telemetry::BurstLog;
use confluo_pipeline::telemetry::{Counter, ReceiverMetrics};
use confluo_pipeline::{
    Batch, ClientInfo, ComponentContext, ComponentError, ConsumeError, Receiver, ReceiverFactory,
    RequestContext, Signal, SignalConsumers, Stability,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The delay suggested to clients when the pipeline gives none.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Registered in the binary as the `otlp` receiver.
pub struct OtlpReceiverFactory;

impl ReceiverFactory for OtlpReceiverFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn stability(&self) -> Stability {
        Stability::Beta
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        OtlpConfig::from_node(node).err().unwrap_or_default()
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        let config = OtlpConfig::from_node(node).map_err(|mut errors| {
            // `check` has already reported every error; the first one is
            // enough to explain why creation failed.
            ComponentError::Config(errors.swap_remove(0))
        })?;
        Ok(Box::new(OtlpReceiver::new(ctx, config)))
    }
}

/// One configured `otlp` receiver. Start it to bind its listeners.
pub struct OtlpReceiver {
    ctx: ComponentContext,
    config: OtlpConfig,
    grpc: Option<Server>,
    http: Option<Server>,
}

/// A listener serving in a task until `stop` is cancelled.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    pub fn new(ctx: ComponentContext, config: OtlpConfig) -> OtlpReceiver {
        OtlpReceiver {
            ctx,
            config,
            grpc: None,
            http: None,
        }
    }

    /// The address the gRPC listener is bound to, once started (useful with
    /// port 0).
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|s| s.addr)
    }

    /// The address the HTTP listener is bound to, once started.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|s| s.addr)
    }

    fn core(
        &self,
        transport: &'static str,
        consumers: &SignalConsumers,
        include_metadata: bool,
    ) -> Arc<Core> {
        Arc::new(Core::new(
            &self.ctx,
            transport,
            consumers.clone(),
            include_metadata,
        ))
    }

    async fn bind(&self, endpoint: &Endpoint) -> Result<tokio::net::TcpListener, ComponentError> {
        tokio::net::TcpListener::bind(endpoint.as_str())
            .await
            .map_err(|e| {
                ComponentError::start(format!("{}: bind {}: {e}", self.ctx.id, endpoint.as_str()))
            })
    }

    /// The runtime answers consumes blocked on full queues with a retryable
    /// error when it shuts down, so in-flight requests normally finish well
    /// before `deadline`; those that do not are abandoned.
    async fn stop_all(&mut self, deadline: Instant) {
        let deadline = tokio::time::Instant::from_std(deadline);
        let servers = [("grpc", self.grpc.take()), ("http", self.http.take())];
        // Both listeners stop accepting at once; then each is awaited.
        for (_, server) in &servers {
            if let Some(s) = server {
                s.stop.cancel();
            }
        }
        for (transport, server) in servers {
            let Some(mut s) = server else { continue };
            if tokio::time::timeout_at(deadline, &mut s.task)
                .await
                .is_err()
            {
                tracing::warn!(
                    event = "receiver_shutdown_timeout",
                    receiver = %self.ctx.id,
                    transport,
                    "requests still in flight at the shutdown deadline were abandoned"
                );
                s.task.abort();
            }
        }
    }
}

#[async_trait]
impl Receiver for OtlpReceiver {
    async fn start(&mut self, consumers: SignalConsumers) -> Result<(), ComponentError> {
        // Bind everything before serving anything, so that a bind error on
        // the second listener does not leave the first one running.
        let grpc_listener = match &self.config.protocols.grpc {
            Some(cfg) => Some(self.bind(&cfg.endpoint).await?),
            None => None,
        };
        let http_listener = match &self.config.protocols.http {
            Some(cfg) => Some(self.bind(&cfg.endpoint).await?),
            None => None,
        };
        let local_addr = |l: &tokio::net::TcpListener, endpoint: &Endpoint| {
            l.local_addr().map_err(|e| {
                ComponentError::start(format!("{}: bind {}: {e}", self.ctx.id, endpoint.as_str()))
            })
        };

        if let (Some(cfg), Some(listener)) = (&self.config.protocols.grpc, grpc_listener) {
            let addr = local_addr(&listener, &cfg.endpoint)?;
            let stop = self.ctx.shutdown.child_token();
            let core = self.core("grpc", &consumers, cfg.include_metadata);
            let task = grpc::serve(core, cfg, listener, stop.clone());
            tracing::info!(event = "receiver_listening", receiver = %self.ctx.id, transport = "grpc", endpoint = %addr);
            self.grpc = Some(Server { addr, stop, task });
        }
        if let (Some(cfg), Some(listener)) = (&self.config.protocols.http, http_listener) {
            let addr = local_addr(&listener, &cfg.endpoint)?;
            let stop = self.ctx.shutdown.child_token();
            let core = self.core("http", &consumers, cfg.include_metadata);
            let task = http::serve(core, cfg, &consumers, listener, stop.clone());
            tracing::info!(event = "receiver_listening", receiver = %self.ctx.id, transport = "http", endpoint = %addr);
            self.http = Some(Server { addr, stop, task });
        }
        Ok(())
    }

    async fn shutdown(&mut self, deadline: Instant) -> Result<(), ComponentError> {
        self.stop_all(deadline).await;
        Ok(())
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        // A receiver dropped without `shutdown` (a failed start elsewhere in
        // the graph, a test) must not leave its listeners serving.
        for s in [&self.grpc, &self.http].into_iter().flatten() {
            s.stop.cancel();
        }
    }
}

/// The per-signal parts of OTLP: message types, paths and the JSON codec.
pub(crate) trait OtlpSignal: Send + Sync + 'static {
    const KIND: SignalKind;
    /// The gRPC service name, e.g. `opentelemetry.proto.collector.trace.v1.TraceService`.
    const GRPC_SERVICE: &'static str;
    /// The full gRPC method path of `Export`.
    const GRPC_PATH: &'static str;
    type Request: prost::Message + Default + Send + 'static;
    type Response: prost::Message + Default + Send + 'static;
    fn into_signal(req: Self::Request) -> Signal;
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonError>;
    fn encode_json_response(resp: &Self::Response, out: &mut Vec<u8>);
}

pub(crate) struct Traces;
pub(crate) struct Metrics;
pub(crate) struct Logs;

impl OtlpSignal for Traces {
    const KIND: SignalKind = SignalKind::Traces;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    type Request = trace_service::ExportTraceServiceRequest;
    type Response = trace_service::ExportTraceServiceResponse;
    fn into_signal(req: Self::Request) -> Signal {
        Signal::Traces(req.resource_spans)
    }
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonError> {
        otlp_json::decode_traces(body)
    }
    fn encode_json_response(resp: &Self::Response, out: &mut Vec<u8>) {
        otlp_json::encode_trace_response(resp, out)
    }
}

impl OtlpSignal for Metrics {
    const KIND: SignalKind = SignalKind::Metrics;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    type Request = metrics_service::ExportMetricsServiceRequest;
    type Response = metrics_service::ExportMetricsServiceResponse;
    fn into_signal(req: Self::Request) -> Signal {
        Signal::Metrics(req.resource_metrics)
    }
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonError> {
        otlp_json::decode_metrics(body)
    }
    fn encode_json_response(resp: &Self::Response, out: &mut Vec<u8>) {
        otlp_json::encode_metrics_response(resp, out)
    }
}

impl OtlpSignal for Logs {
    const KIND: SignalKind = SignalKind::Logs;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    type Request = logs_service::ExportLogsServiceRequest;
    type Response = logs_service::ExportLogsServiceResponse;
    fn into_signal(req: Self::Request) -> Signal {
        Signal::Logs(req.resource_logs)
    }
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonError> {
        otlp_json::decode_logs(body)
    }
    fn encode_json_response(resp: &Self::Response, out: &mut Vec<u8>) {
        otlp_json::encode_logs_response(resp, out)
    }
}

/// How a request ended, for `otelcol_receiver_requests{outcome}`.
#[derive(Clone, Copy)]
enum Outcome {
    Success,
    Refused,
    Failure,
}

/// What one transport of one receiver shares between its requests.
pub(crate) struct Core {
    id: String,
    transport: &'static str,
    admission: Admission,
    shutdown: CancellationToken,
    consumers: SignalConsumers,
    include_metadata: bool,
    metrics: ReceiverMetrics,
    /// success, refused, failure.
    requests: [Counter; 3],
    refusal_log: BurstLog,
}

/// Why a request was refused with backpressure, which decides between the
/// protocols' two throttling answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backpressure {
    /// The admission budget or the pipeline is full: HTTP 429, gRPC RESOURCE_EXHAUSTED.
    Full,
    /// The collector is shutting down: HTTP 503, gRPC UNAVAILABLE.
    ShuttingDown,
}

impl Core {
    fn new(
        ctx: &ComponentContext,
        transport: &'static str,
        consumers: SignalConsumers,
        include_metadata: bool,
    ) -> Core {
        let id = ctx.id.to_string();
        let metrics = ReceiverMetrics::new(&ctx.telemetry, &id, transport, consumers.signals());
        let request_counter = |outcome: &str| {
            ctx.telemetry.counter(
                "otelcol_receiver_requests",
                "Number of requests received, by outcome.",
                &[
                    ("receiver", &id),
                    ("transport", transport),
                    ("outcome", outcome),
                ],
            )
        };
        let requests = [
            request_counter("success"),
            request_counter("refused"),
            request_counter("failure"),
        ];
        Core {
            transport,
            admission: ctx.admission.clone(),
            shutdown: ctx.shutdown.clone(),
            consumers,
            include_metadata,
            metrics,
            requests,
            refusal_log: BurstLog::new(),
            id,
        }
    }

    fn count_request(&self, outcome: Outcome) {
        self.requests[outcome as usize].add(1);
    }

    /// Takes a request's bytes from the global budget before any
    /// decompression or decoding. `None` = answer with backpressure.
    pub(crate) fn admit(&self, kind: SignalKind, bytes: usize) -> Option<AdmissionPermit> {
        let permit = self.admission.try_admit(bytes);
        if permit.is_none() {
            self.count_request(Outcome::Refused);
            self.log_refusal(kind, 0, "admission budget exhausted");
        }
        permit
    }

    /// The retryable error an admission refusal turns into.
    pub(crate) fn admission_refused() -> ConsumeError {
        ConsumeError::Retryable {
            reason: "the collector is at its memory budget for requests in flight".into(),
            retry_after: Some(DEFAULT_RETRY_AFTER),
        }
    }

    /// Records a request that could not be decoded (bad protobuf/JSON,
    /// corrupt compression, over the size limit). Clients' bad data is logged
    /// at debug so that it cannot flood the collector's logs.
    pub(crate) fn bad_request(
        &self,
        kind: SignalKind,
        addr: Option<SocketAddr>,
        error: &dyn std::fmt::Display,
    ) {
        self.count_request(Outcome::Failure);
        tracing::debug!(
            event = "receiver_bad_request",
            receiver = %self.id,
            transport = self.transport,
            signal = %kind,
            client = ?addr,
            error = %error,
        );
    }

    pub(crate) fn backpressure_kind(&self, e: &ConsumeError) -> Backpressure {
        // The consumer contract has no "shutting down" variant, so the cause
        // is read from the service's shutdown token, and from the reason for
        // components that refuse while draining before the token is cancelled.
        let reason_says_shutdown = match e {
            ConsumeError::Retryable { reason, .. } => {
                let r = reason.to_ascii_lowercase();
                r.contains("shutting down") || r.contains("shutdown")
            }
            ConsumeError::Permanent { .. } => false,
        };
        if self.shutdown.is_cancelled() || reason_says_shutdown {
            Backpressure::ShuttingDown
        } else {
            Backpressure::Full
        }
    }

    /// Hands decoded data to the signal's pipeline and records the outcome.
    /// Empty requests succeed without bothering the pipeline.
    pub(crate) async fn deliver(
        &self,
        incoming: Incoming,
        client: ClientInfo,
        deadline: Option<Instant>,
        wire_bytes: usize,
    ) -> Result<(), ConsumeError> {
        let kind = incoming.kind();
        let items = incoming.item_count();
        if items == 0 {
            self.count_request(Outcome::Success);
            return Ok(());
        }
        let Some(consumer) = self.consumers.get(kind) else {
            // Unreachable in practice: services and routes exist only for
            // the signals that have a pipeline.
            self.count_request(Outcome::Refused);
            self.metrics.refused(kind, items);
            return Err(ConsumeError::permanent(format!(
                "this receiver is not in a {kind} pipeline"
            )));
        };
        let mut batch = match incoming {
            Incoming::Decoded(signal) => Batch::new(signal),
            Incoming::Validated { kind, bytes, items } => Batch::from_validated(kind, bytes, items),
        };
        batch.ctx = Arc::new(RequestContext { client, deadline });
        batch.wire_bytes = wire_bytes;
        match consumer.consume(batch).await {
            Ok(()) => {
                self.count_request(Outcome::Success);
                self.metrics.accepted(kind, items);
                Ok(())
            }
            Err(e) => {
                self.count_request(Outcome::Refused);
                self.metrics.refused(kind, items);
                self.log_refusal(kind, items, &e.to_string());
                Err(e)
            }
        }
    }

    fn log_refusal(&self, kind: SignalKind, items: usize, reason: &str) {
        // One line per burst: under sustained backpressure every request is
        // refused, and a line per request would cost more than the request.
        if let Some(suppressed) = self.refusal_log.allow() {
            tracing::warn!(
                event = "receiver_refused",
                receiver = %self.id,
                transport = self.transport,
                signal = %kind,
                items,
                reason,
                suppressed_since_last = suppressed,
            );
        }
    }

    /// Client metadata to keep, when `include_metadata` asked for it.
    pub(crate) fn metadata_from(&self, headers: &::http::HeaderMap) -> Vec<(String, String)> {
        if !self.include_metadata {
            return Vec::new();
        }
        headers
            .iter()
            .filter(|(name, _)| !name.as_str().ends_with("-bin"))
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
            .collect()
    }
}

/// What a transport hands to [`Core::deliver`].
pub(crate) enum Incoming {
    /// OTLP/JSON, decoded into the tree.
    Decoded(Signal),
    /// OTLP protobuf that `otlp_wire::validate` accepted with `items`
    /// items; decoded only if a component reads it.
    Validated {
        kind: SignalKind,
        bytes: bytes::Bytes,
        items: usize,
    },
}

impl Incoming {
    fn kind(&self) -> SignalKind {
        match self {
            Incoming::Decoded(s) => s.kind(),
            Incoming::Validated { kind, .. } => *kind,
        }
    }

    fn item_count(&self) -> usize {
        match self {
            Incoming::Decoded(s) => s.item_count(),
            Incoming::Validated { items, .. } => *items,
        }
    }
}

/// The Retry-After to suggest for a retryable error, in whole seconds (≥ 1).
pub(crate) fn retry_after(e: &ConsumeError) -> Duration {
    let d = e.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
    Duration::from_secs(d.as_secs_f64().ceil().max(1.0) as u64)
}
