//! The `jsonlog` receiver: applications' JSON log lines over HTTP (default
//! `localhost:8081`, `POST /v1/logs/json`) → OTLP log records.
//!
//! Bodies are NDJSON, one JSON object, or a JSON array of objects, optionally
//! gzip- or zstd-compressed. Each line is mapped on its own (see [`parse`]);
//! good lines are accepted even when others are bad, and the response lists
//! the rejected ones. There is no Collector component of this name.
//!
//! Per request: path, method, bearer token, Content-Type, declared length,
//! admission from the global budget (before reading further), body read under
//! the limit, decompression capped at the same limit, parsing, one batch into
//! the pipeline.

mod config;
mod parse;
#[cfg(test)]
mod tests;

pub use config::{
    HeaderAttribute, HeaderName, HeaderTarget, JsonLogConfig, MappingConfig, NumericLevels,
    DEFAULT_ENDPOINT, DEFAULT_MAX_LINE_SIZE, DEFAULT_MAX_REQUEST_BODY_SIZE, DEFAULT_URL_PATH,
};
pub use parse::{
    parse_level, parse_span_id, parse_time, parse_trace_id, parse_traceparent, Invalid, Line,
    LineError, Mapper, Scratch,
};

use async_trait::async_trait;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use confluo_config::{ConfigError, Node, Secret, SignalKind, SignalSet};
use confluo_pipeline::admission::Admission;
use confluo_pipeline::compression::{self, DecompressError};
use confluo_pipeline::proto::common::{InstrumentationScope, KeyValue};
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::telemetry::BurstLog;
use confluo_pipeline::telemetry::{Counter, ReceiverMetrics};
use confluo_pipeline::{
    attrs, Batch, ClientInfo, ComponentContext, ComponentError, ConsumeError, Consumer, Receiver,
    ReceiverFactory, RequestContext, Signal, SignalConsumers, Stability,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Rejected lines listed in a response; the count covers all of them.
pub const MAX_REPORTED_ERRORS: usize = 20;
/// The delay suggested to clients when the pipeline gives none.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Registered in the binary as the `jsonlog` receiver (logs only).
pub struct JsonLogReceiverFactory;

impl ReceiverFactory for JsonLogReceiverFactory {
    fn type_name(&self) -> &'static str {
        "jsonlog"
    }

    fn signals(&self) -> SignalSet {
        SignalSet {
            traces: false,
            metrics: false,
            logs: true,
        }
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        JsonLogConfig::from_node(node).err().unwrap_or_default()
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        let config = JsonLogConfig::from_node(node)
            .map_err(|mut errors| ComponentError::Config(errors.swap_remove(0)))?;
        Ok(Box::new(JsonLogReceiver::new(ctx, config)))
    }
}

/// One configured `jsonlog` receiver.
pub struct JsonLogReceiver {
    ctx: ComponentContext,
    config: JsonLogConfig,
    server: Option<Server>,
}

struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl JsonLogReceiver {
    pub fn new(ctx: ComponentContext, config: JsonLogConfig) -> JsonLogReceiver {
        JsonLogReceiver {
            ctx,
            config,
            server: None,
        }
    }

    /// The bound address once started (useful with port 0).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }
}

#[async_trait]
impl Receiver for JsonLogReceiver {
    async fn start(&mut self, consumers: SignalConsumers) -> Result<(), ComponentError> {
        let Some(consumer) = consumers.logs.clone() else {
            return Err(ComponentError::start(format!(
                "{}: the jsonlog receiver only feeds logs pipelines",
                self.ctx.id
            )));
        };
        let endpoint = self.config.endpoint.as_str();
        let listener = tokio::net::TcpListener::bind(endpoint)
            .await
            .map_err(|e| ComponentError::start(format!("{}: bind {endpoint}: {e}", self.ctx.id)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ComponentError::start(format!("{}: bind {endpoint}: {e}", self.ctx.id)))?;
        let stop = self.ctx.shutdown.child_token();
        let state = Arc::new(HttpState::new(&self.ctx, &self.config, consumer));
        let task = serve(state, listener, stop.clone());
        tracing::info!(event = "receiver_listening", receiver = %self.ctx.id, transport = "http", endpoint = %addr, path = self.config.url_path.as_str());
        self.server = Some(Server { addr, stop, task });
        Ok(())
    }

    async fn shutdown(&mut self, deadline: Instant) -> Result<(), ComponentError> {
        let Some(mut s) = self.server.take() else {
            return Ok(());
        };
        s.stop.cancel();
        if tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), &mut s.task)
            .await
            .is_err()
        {
            tracing::warn!(
                event = "receiver_shutdown_timeout",
                receiver = %self.ctx.id,
                transport = "http",
                "requests still in flight at the shutdown deadline were abandoned"
            );
            s.task.abort();
        }
        Ok(())
    }
}

impl Drop for JsonLogReceiver {
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            s.stop.cancel();
        }
    }
}

fn serve(
    state: Arc<HttpState>,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let id = state.id.clone();
    let app = axum::Router::new()
        .fallback(dispatch)
        .with_state(state)
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!(event = "receiver_server_failed", receiver = %id, transport = "http", error = %e);
        }
    })
}

/// How the body is split into lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `application/x-ndjson` and friends: one object per line.
    Ndjson,
    /// `application/json`, `text/plain` or none: an array, one object, or NDJSON.
    Auto,
}

const SUPPORTED_TYPES: &str =
    "application/json, application/x-ndjson, application/jsonl, application/jsonlines, text/plain";

fn framing(headers: &HeaderMap) -> Result<Framing, ()> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Framing::Auto);
    };
    let value = value.to_str().map_err(|_| ())?;
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonl"
        | "application/jsonlines"
        | "application/x-jsonlines"
        | "application/json-seq" => Ok(Framing::Ndjson),
        "" | "application/json" | "text/plain" | "text/json" => Ok(Framing::Auto),
        _ => Err(()),
    }
}

/// How a request ended, for `otelcol_receiver_requests{outcome}`.
#[derive(Clone, Copy)]
enum Outcome {
    Success = 0,
    Refused = 1,
    Failure = 2,
}

struct HttpState {
    id: String,
    path: String,
    max_body: usize,
    tokens: Vec<Secret>,
    mapper: Mapper,
    resource: Vec<KeyValue>,
    headers: Vec<(http::HeaderName, String, HeaderTarget)>,
    consumer: Arc<dyn Consumer>,
    admission: Admission,
    shutdown: CancellationToken,
    metrics: ReceiverMetrics,
    requests: [Counter; 3],
    /// too_large, invalid_json.
    rejected_lines: [Counter; 2],
    /// timestamp, trace_id, span_id.
    invalid_fields: [Counter; 3],
    reject_log: BurstLog,
    refusal_log: BurstLog,
}

impl HttpState {
    fn new(ctx: &ComponentContext, cfg: &JsonLogConfig, consumer: Arc<dyn Consumer>) -> HttpState {
        let id = ctx.id.to_string();
        let t = &ctx.telemetry;
        let logs_only = SignalSet {
            traces: false,
            metrics: false,
            logs: true,
        };
        let request_counter = |outcome: &str| {
            t.counter(
                "otelcol_receiver_requests",
                "Number of requests received, by outcome.",
                &[
                    ("receiver", &id),
                    ("transport", "http"),
                    ("outcome", outcome),
                ],
            )
        };
        let rejected = |reason: &str| {
            t.counter(
                "confluo_receiver_jsonlog_rejected_lines",
                "JSON log lines rejected (not parsed into a record), by reason.",
                &[("receiver", &id), ("reason", reason)],
            )
        };
        let invalid = |field: &str| {
            t.counter(
                "confluo_receiver_jsonlog_invalid_fields",
                "Accepted lines whose timestamp or trace/span id could not be parsed (kept as an attribute).",
                &[("receiver", &id), ("field", field)],
            )
        };
        let resource = cfg
            .resource
            .iter()
            .map(|(k, v)| attrs::key_value(k.clone(), attrs::string(v.clone())))
            .collect();
        let headers = cfg
            .header_attributes
            .iter()
            .filter_map(|h| {
                http::HeaderName::from_bytes(h.header.0.as_bytes())
                    .ok()
                    .map(|name| (name, h.attribute_key(), h.target))
            })
            .collect();
        HttpState {
            path: cfg.url_path.as_str().to_string(),
            max_body: cfg.max_request_body_size(),
            tokens: cfg.bearer_tokens.clone(),
            mapper: Mapper::new(&cfg.mapping, cfg.max_line_size()),
            resource,
            headers,
            consumer,
            admission: ctx.admission.clone(),
            shutdown: ctx.shutdown.clone(),
            metrics: ReceiverMetrics::new(t, &id, "http", logs_only),
            requests: [
                request_counter("success"),
                request_counter("refused"),
                request_counter("failure"),
            ],
            rejected_lines: [rejected("too_large"), rejected("invalid_json")],
            invalid_fields: [
                invalid("timestamp"),
                invalid("trace_id"),
                invalid("span_id"),
            ],
            reject_log: BurstLog::new(),
            refusal_log: BurstLog::new(),
            id,
        }
    }

    fn count(&self, outcome: Outcome) {
        self.requests[outcome as usize].add(1);
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.tokens.is_empty() {
            return true;
        }
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
        else {
            return false;
        };
        // Every configured token is compared in full, so the time taken
        // does not tell which one (or how much of one) matched.
        self.tokens.iter().fold(false, |ok, t| {
            constant_time_eq(t.expose().as_bytes(), given.as_bytes()) | ok
        })
    }

    /// Request headers listed in `header_attributes`: (record attributes, resource attributes).
    fn header_attrs(&self, headers: &HeaderMap) -> (Vec<KeyValue>, Vec<KeyValue>) {
        let mut record = Vec::new();
        let mut resource = Vec::new();
        for (name, key, target) in &self.headers {
            let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let kv = attrs::key_value(key.clone(), attrs::string(value));
            match target {
                HeaderTarget::Attributes => record.push(kv),
                HeaderTarget::Resource => resource.push(kv),
            }
        }
        (record, resource)
    }

    fn log_refusal(&self, items: usize, reason: &str) {
        if let Some(suppressed) = self.refusal_log.allow() {
            tracing::warn!(
                event = "receiver_refused",
                receiver = %self.id,
                transport = "http",
                signal = "logs",
                items,
                reason,
                suppressed_since_last = suppressed,
            );
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The outcome of parsing a body.
#[derive(Debug, Default)]
pub struct ParsedBody {
    pub lines: Vec<Line>,
    pub rejected: usize,
    /// (1-based line or array element number, error), the first [`MAX_REPORTED_ERRORS`].
    pub errors: Vec<(usize, LineError)>,
}

impl ParsedBody {
    fn push(&mut self, number: usize, result: Result<Line, LineError>) {
        match result {
            Ok(line) => self.lines.push(line),
            Err(e) => {
                self.rejected += 1;
                if self.errors.len() < MAX_REPORTED_ERRORS {
                    self.errors.push((number, e));
                }
            }
        }
    }
}

/// A body that is not even a sequence of lines (a broken JSON array).
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON array: {0}")]
pub struct BodyError(String);

/// Splits and parses a body. `errors` counts every rejected line, by reason,
/// into `on_reject`.
pub fn parse_body(
    mapper: &Mapper,
    body: &[u8],
    ndjson_only: bool,
    observed: u64,
    mut on_reject: impl FnMut(&LineError),
) -> Result<ParsedBody, BodyError> {
    let mut out = ParsedBody::default();
    let mut scratch = parse::Scratch::default();
    let trimmed = parse::trim(body);
    let mut push = |out: &mut ParsedBody, n: usize, r: Result<Line, LineError>| {
        if let Err(e) = &r {
            on_reject(e);
        }
        out.push(n, r);
    };
    if !ndjson_only {
        match trimmed.first() {
            Some(b'[') => {
                let elements = parse::split_array(trimmed).map_err(BodyError)?;
                for (i, el) in elements.into_iter().enumerate() {
                    push(
                        &mut out,
                        i + 1,
                        mapper.parse_line_with(parse::trim(el), observed, &mut scratch),
                    );
                }
                return Ok(out);
            }
            // A single (possibly pretty-printed) object spans lines; NDJSON
            // sent as application/json fails this and is split below.
            Some(b'{') if trimmed.contains(&b'\n') => {
                if let Ok(line) = mapper.parse_line(trimmed, observed) {
                    out.lines.push(line);
                    return Ok(out);
                }
            }
            _ => {}
        }
    }
    out.lines.reserve(parse::count_newlines(body) + 1);
    for (i, line) in parse::split_lines(body).enumerate() {
        let line = parse::trim(line);
        if line.is_empty() {
            continue;
        }
        push(
            &mut out,
            i + 1,
            mapper.parse_line_with(line, observed, &mut scratch),
        );
    }
    Ok(out)
}

/// Groups records by service (resource) and logger (scope) into OTLP logs.
pub fn group(
    lines: Vec<Line>,
    resource: &[KeyValue],
    record_attrs: &[KeyValue],
) -> Vec<ResourceLogs> {
    type Scopes = Vec<(Option<String>, Vec<LogRecord>, usize)>;
    let mut groups: Vec<(Option<String>, Scopes)> = Vec::new();
    // First where each line goes, then the records: every scope's vector is
    // allocated once at its size (grown by doubling, records were copied
    // about twice more).
    let mut place: Vec<(usize, usize)> = Vec::with_capacity(lines.len());
    for line in &lines {
        // Consecutive lines nearly always share service and logger: look at
        // the last group first.
        let gi = match groups.iter().rposition(|(s, _)| *s == line.service) {
            Some(i) => i,
            None => {
                groups.push((line.service.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[gi].1;
        let si = match scopes.iter().rposition(|(s, _, _)| *s == line.scope) {
            Some(i) => i,
            None => {
                scopes.push((line.scope.clone(), Vec::new(), 0));
                scopes.len() - 1
            }
        };
        scopes[si].2 += 1;
        place.push((gi, si));
    }
    for (_, scopes) in &mut groups {
        for (_, records, n) in scopes.iter_mut() {
            records.reserve_exact(*n);
        }
    }
    for (line, (gi, si)) in lines.into_iter().zip(place) {
        let mut record = line.record;
        if !record_attrs.is_empty() {
            for kv in record_attrs {
                attrs::set(
                    &mut record.attributes,
                    &kv.key,
                    kv.value.clone().unwrap_or_default(),
                );
            }
        }
        groups[gi].1[si].1.push(record);
    }
    groups
        .into_iter()
        .map(|(service, scopes)| {
            let mut attributes = resource.to_vec();
            if let Some(s) = service {
                attrs::set_str(&mut attributes, "service.name", s);
            }
            ResourceLogs {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_logs: scopes
                    .into_iter()
                    .map(|(scope, log_records, _)| ScopeLogs {
                        scope: scope.map(|name| InstrumentationScope {
                            name,
                            ..Default::default()
                        }),
                        log_records,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect()
}

/// Why a request was not accepted as a whole.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("failed to read the request body: {0}")]
    Read(String),
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("{0}")]
    Refused(ConsumeError),
}

async fn dispatch(State(st): State<Arc<HttpState>>, req: Request) -> Response {
    if req.uri().path() != st.path {
        return json_error(StatusCode::NOT_FOUND, "404 page not found");
    }
    if req.method() != Method::POST {
        let mut r = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a);
    if !st.authorized(req.headers()) {
        st.count(Outcome::Failure);
        tracing::debug!(event = "receiver_unauthorized", receiver = %st.id, client = ?addr);
        let mut r = json_error(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token (Authorization: Bearer <token>)",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"confluo\""),
        );
        return r;
    }
    let Ok(framing) = framing(req.headers()) else {
        st.count(Outcome::Failure);
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("415 unsupported media type, supported: [{SUPPORTED_TYPES}]"),
        );
    };
    match receive(&st, addr, framing, req).await {
        Ok(parsed) => parsed,
        Err(e) => {
            let status = match &e {
                HttpError::TooLarge { .. }
                | HttpError::Decompress(DecompressError::TooLarge { .. }) => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                HttpError::Decompress(DecompressError::Unsupported(_)) => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                HttpError::Read(_) | HttpError::Decompress(_) | HttpError::Body(_) => {
                    StatusCode::BAD_REQUEST
                }
                HttpError::Refused(ConsumeError::Permanent { .. }) => StatusCode::BAD_REQUEST,
                HttpError::Refused(r) => {
                    if st.shutdown.is_cancelled()
                        || r.to_string().to_ascii_lowercase().contains("shut")
                    {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::TOO_MANY_REQUESTS
                    }
                }
            };
            if !matches!(e, HttpError::Refused(_)) {
                st.count(Outcome::Failure);
                tracing::debug!(event = "receiver_bad_request", receiver = %st.id, transport = "http", client = ?addr, error = %e);
            }
            let mut response = json_error(status, &e.to_string());
            if let HttpError::Refused(r @ ConsumeError::Retryable { .. }) = &e {
                let d = r.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
                let secs = d.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

async fn receive(
    st: &HttpState,
    addr: Option<SocketAddr>,
    framing: Framing,
    req: Request,
) -> Result<Response, HttpError> {
    let observed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let (parts, body) = req.into_parts();
    let limit = st.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(HttpError::TooLarge { limit });
    }
    let refused = || {
        st.count(Outcome::Refused);
        st.log_refusal(0, "admission budget exhausted");
        HttpError::Refused(ConsumeError::Retryable {
            reason: "the collector is at its memory budget for requests in flight".into(),
            retry_after: Some(DEFAULT_RETRY_AFTER),
        })
    };
    let mut permit = match declared {
        Some(n) => Some(st.admission.try_admit(n as usize).ok_or_else(refused)?),
        None => None,
    };
    let raw = read_body(body, limit, declared).await?;
    if permit.is_none() {
        permit = Some(st.admission.try_admit(raw.len()).ok_or_else(refused)?);
    }
    let wire_bytes = raw.len();
    let content_encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(non-ASCII)"));
    let body = compression::decompress(content_encoding, raw, limit)?;

    let parsed = parse_body(
        &st.mapper,
        &body,
        framing == Framing::Ndjson,
        observed,
        |e| {
            st.rejected_lines[match e {
                LineError::TooLarge { .. } => 0,
                LineError::Json(_) => 1,
            }]
            .add(1);
        },
    )?;
    drop(body);
    let ParsedBody {
        lines,
        rejected,
        errors,
    } = parsed;
    let accepted = lines.len();
    let mut invalid = [0u64; 3];
    for l in &lines {
        invalid[0] += u64::from(l.invalid.timestamp);
        invalid[1] += u64::from(l.invalid.trace_id);
        invalid[2] += u64::from(l.invalid.span_id);
    }
    for (counter, n) in st.invalid_fields.iter().zip(invalid) {
        if n > 0 {
            counter.add(n);
        }
    }
    if let Some((line, first)) = errors.first() {
        if let Some(suppressed) = st.reject_log.allow() {
            tracing::warn!(
                event = "jsonlog_lines_rejected",
                receiver = %st.id,
                client = ?addr,
                rejected,
                accepted,
                first_line = line,
                first_error = %first,
                suppressed_since_last = suppressed,
            );
        }
    }

    if accepted > 0 {
        let (record_attrs, mut resource_attrs) = st.header_attrs(&parts.headers);
        let resource = if resource_attrs.is_empty() {
            st.resource.clone()
        } else {
            let mut r = st.resource.clone();
            for kv in resource_attrs.drain(..) {
                attrs::set(&mut r, &kv.key, kv.value.unwrap_or_default());
            }
            r
        };
        let signal = Signal::Logs(group(lines, &resource, &record_attrs));
        let client = ClientInfo {
            addr,
            ..ClientInfo::default()
        };
        let mut batch = Batch::with_context(
            signal,
            Arc::new(RequestContext {
                client,
                deadline: None,
            }),
        );
        batch.wire_bytes = wire_bytes;
        let result = st.consumer.consume(batch).await;
        drop(permit);
        if let Err(e) = result {
            st.count(Outcome::Refused);
            st.metrics.refused(SignalKind::Logs, accepted);
            st.log_refusal(accepted, &e.to_string());
            return Err(HttpError::Refused(e));
        }
        st.metrics.accepted(SignalKind::Logs, accepted);
    }
    let status = if accepted == 0 && rejected > 0 {
        st.count(Outcome::Failure);
        StatusCode::BAD_REQUEST
    } else {
        st.count(Outcome::Success);
        StatusCode::OK
    };
    let mut body = serde_json::json!({
        "accepted": accepted,
        "rejected": rejected,
        "errors": errors
            .iter()
            .map(|(line, e)| serde_json::json!({"line": line, "error": e.to_string()}))
            .collect::<Vec<_>>(),
    });
    if status == StatusCode::BAD_REQUEST {
        body["message"] = "no line of the body is a valid JSON log record".into();
    }
    Ok(json_response(status, body.to_string()))
}

/// Reads the whole body, failing as soon as it exceeds `limit`. A
/// declared length (already checked against `limit`) sizes the buffer
/// once, rather than doubling it (and copying) as frames arrive.
async fn read_body(body: Body, limit: usize, declared: Option<u64>) -> Result<Bytes, HttpError> {
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| HttpError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let so_far = first.as_ref().map_or(buf.len(), Bytes::len);
        if so_far + data.len() > limit {
            return Err(HttpError::TooLarge { limit });
        }
        // A single frame is kept without copying.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            Some(f) => {
                let hint = declared.map_or(0, |n| (n as usize).min(limit));
                buf.reserve(hint.max(f.len() + data.len()));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
            None => buf.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}
