//! OTLP/HTTP: `POST` protobuf or JSON export requests on an axum server.
//!
//! Routing is done here rather than with axum's router: the three paths are
//! user-configured, and axum's path syntax (`{param}`, `*`) would give some
//! configured paths a meaning the user did not intend (or panic).
//!
//! Order of work per request, cheapest refusal first: path, method,
//! Content-Type, declared Content-Length against the limit, admission (with
//! the declared length), reading the body under the limit, admission (with
//! the read length, for bodies without Content-Length), decompression capped
//! at the same limit, decoding, delivery.

use super::{
    Backpressure, Core, CorsConfig, HttpConfig, Incoming, Logs, Metrics, OtlpSignal, Traces,
};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use confluo_config::SignalKind;
use confluo_pipeline::compression::{self, DecompressError};
use confluo_pipeline::otlp_json::JsonError;
use confluo_pipeline::otlp_wire;
use confluo_pipeline::{ClientInfo, ConsumeError, SignalConsumers};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Starts serving on `listener` until `stop` is cancelled.
pub(super) fn serve(
    core: Arc<Core>,
    cfg: &HttpConfig,
    consumers: &SignalConsumers,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> JoinHandle<()> {
    // Only the paths of signals with a pipeline exist (404 otherwise), as
    // the Collector registers only those handlers.
    let mut routes = Vec::new();
    if consumers.traces.is_some() {
        routes.push((cfg.traces_url_path.as_str().to_string(), SignalKind::Traces));
    }
    if consumers.metrics.is_some() {
        routes.push((
            cfg.metrics_url_path.as_str().to_string(),
            SignalKind::Metrics,
        ));
    }
    if consumers.logs.is_some() {
        routes.push((cfg.logs_url_path.as_str().to_string(), SignalKind::Logs));
    }
    let state = Arc::new(HttpState {
        id: core.id.clone(),
        core,
        routes,
        max_body: cfg.max_request_body_size(),
        cors: cfg.cors.as_ref().and_then(Cors::new),
    });
    let id = state.id.clone();
    let app = axum::Router::new()
        .fallback(dispatch)
        .with_state(state)
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        // Graceful: on `stop`, stop accepting, close idle connections and let
        // requests in flight finish.
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!(event = "receiver_server_failed", receiver = %id, transport = "http", error = %e);
        }
    })
}

struct HttpState {
    id: String,
    core: Arc<Core>,
    routes: Vec<(String, SignalKind)>,
    max_body: usize,
    cors: Option<Cors>,
}

/// The body encodings OTLP/HTTP allows; the response mirrors the request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a Content-Type, ignoring parameters such as `; charset=utf-8`.
    fn from_headers(headers: &HeaderMap) -> Option<Encoding> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(PROTOBUF) {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case(JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("failed to read the request body: {0}")]
    Read(String),
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error("failed to decode protobuf: {0}")]
    Protobuf(#[from] otlp_wire::WireError),
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error("{0}")]
    Refused(ConsumeError),
}

impl HttpError {
    fn status(&self, core: &Core) -> StatusCode {
        match self {
            HttpError::TooLarge { .. }
            | HttpError::Decompress(DecompressError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            HttpError::Read(_)
            | HttpError::Decompress(_)
            | HttpError::Protobuf(_)
            | HttpError::Json(_) => StatusCode::BAD_REQUEST,
            HttpError::Refused(e @ ConsumeError::Retryable { .. }) => {
                match core.backpressure_kind(e) {
                    Backpressure::Full => StatusCode::TOO_MANY_REQUESTS,
                    Backpressure::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
            HttpError::Refused(ConsumeError::Permanent { .. }) => StatusCode::BAD_REQUEST,
        }
    }
}

async fn dispatch(State(st): State<Arc<HttpState>>, req: Request) -> Response {
    let Some(kind) = st
        .routes
        .iter()
        .find(|(path, _)| path == req.uri().path())
        .map(|(_, kind)| *kind)
    else {
        return text(StatusCode::NOT_FOUND, "404 page not found".to_string());
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut response = match *req.method() {
        Method::POST => match kind {
            SignalKind::Traces => export::<Traces>(&st, req).await,
            SignalKind::Metrics => export::<Metrics>(&st, req).await,
            SignalKind::Logs => export::<Logs>(&st, req).await,
        },
        Method::OPTIONS if st.cors.is_some() => {
            return st
                .cors
                .as_ref()
                .map(|c| c.preflight(req.headers()))
                .unwrap_or_else(|| StatusCode::NO_CONTENT.into_response());
        }
        _ => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 method not allowed, supported: [POST]".to_string(),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
    };
    if let (Some(cors), Some(origin)) = (&st.cors, origin) {
        cors.decorate(&origin, response.headers_mut());
    }
    response
}

async fn export<S: OtlpSignal>(st: &HttpState, req: Request) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a);
    let Some(encoding) = Encoding::from_headers(req.headers()) else {
        st.core
            .bad_request(S::KIND, addr, &"unsupported Content-Type");
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("415 unsupported media type, supported: [{JSON}, {PROTOBUF}]"),
        );
    };
    match receive::<S>(st, addr, encoding, req).await {
        Ok(()) => {
            let response = S::Response::default();
            let body = match encoding {
                Encoding::Protobuf => prost::Message::encode_to_vec(&response),
                Encoding::Json => {
                    let mut out = Vec::with_capacity(2);
                    S::encode_json_response(&response, &mut out);
                    out
                }
            };
            with_type(StatusCode::OK, encoding.content_type(), body)
        }
        Err(e) => {
            let status = e.status(&st.core);
            if !matches!(e, HttpError::Refused(_)) {
                st.core.bad_request(S::KIND, addr, &e);
            }
            let mut response = error_body(status, encoding, &e.to_string());
            if let HttpError::Refused(refusal @ ConsumeError::Retryable { .. }) = &e {
                let secs = super::retry_after(refusal).as_secs();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

async fn receive<S: OtlpSignal>(
    st: &HttpState,
    addr: Option<SocketAddr>,
    encoding: Encoding,
    req: Request,
) -> Result<(), HttpError> {
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
    // Admission before reading when the size is declared; otherwise after
    // reading (the read itself is capped at `limit`), still before
    // decompression and decoding.
    let refused = || HttpError::Refused(Core::admission_refused());
    let mut permit = match declared {
        Some(n) => Some(st.core.admit(S::KIND, n as usize).ok_or_else(refused)?),
        None => None,
    };
    let raw = read_body(body, limit, declared.map(|n| n as usize)).await?;
    if permit.is_none() {
        permit = Some(st.core.admit(S::KIND, raw.len()).ok_or_else(refused)?);
    }
    let wire_bytes = raw.len();
    let content_encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(non-ASCII)"));
    let body = compression::decompress(content_encoding, raw, limit)?;
    let incoming = match encoding {
        Encoding::Protobuf => {
            let items = otlp_wire::validate(S::KIND, &body)?;
            Incoming::Validated {
                kind: S::KIND,
                bytes: body,
                items,
            }
        }
        Encoding::Json => Incoming::Decoded(S::into_signal(S::decode_json(&body)?)),
    };
    let client = ClientInfo {
        addr,
        metadata: st.core.metadata_from(&parts.headers),
        ..ClientInfo::default()
    };
    let result = st.core.deliver(incoming, client, None, wire_bytes).await;
    // The budget covers the data until the pipeline has answered.
    drop(permit);
    result.map_err(HttpError::Refused)
}

/// Reads the whole body, failing as soon as it exceeds `limit`.
async fn read_body(body: Body, limit: usize, hint: Option<usize>) -> Result<Bytes, HttpError> {
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| HttpError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing OTLP uses
        };
        let so_far = first.as_ref().map_or(buf.len(), Bytes::len);
        if so_far + data.len() > limit {
            return Err(HttpError::TooLarge { limit });
        }
        // The common case is a single frame: keep it without copying.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            Some(f) => {
                buf.reserve(hint.unwrap_or(0).max(f.len() + data.len()).min(limit));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
            None => buf.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

fn text(status: StatusCode, message: String) -> Response {
    with_type(status, "text/plain; charset=utf-8", message.into_bytes())
}

/// A `google.rpc.Status` body in the request's encoding, as OTLP/HTTP asks.
fn error_body(status: StatusCode, encoding: Encoding, message: &str) -> Response {
    let code = grpc_code(status) as i32;
    let body = match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(&tonic_types::Status {
            code,
            message: message.to_string(),
            details: Vec::new(),
        }),
        Encoding::Json => {
            serde_json::to_vec(&serde_json::json!({ "code": code, "message": message }))
                .unwrap_or_default()
        }
    };
    with_type(status, encoding.content_type(), body)
}

/// The gRPC code matching an HTTP status (the Collector's mapping).
fn grpc_code(status: StatusCode) -> tonic::Code {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::InvalidArgument,
        StatusCode::TOO_MANY_REQUESTS => tonic::Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    }
}

/// CORS for browser clients (the JavaScript SDK's OTLP/HTTP exporters).
struct Cors {
    origins: Vec<String>,
    /// Lower-case; always includes the safelist the Collector allows.
    headers: Vec<String>,
    any_header: bool,
    max_age: u64,
}

impl Cors {
    /// `None` when no origin is allowed: CORS is then off, as in the Collector.
    fn new(cfg: &CorsConfig) -> Option<Cors> {
        if cfg.allowed_origins.is_empty() {
            return None;
        }
        let mut headers: Vec<String> = ["accept", "content-type", "x-requested-with", "origin"]
            .into_iter()
            .map(String::from)
            .collect();
        headers.extend(cfg.allowed_headers.iter().map(|h| h.to_ascii_lowercase()));
        Some(Cors {
            origins: cfg.allowed_origins.clone(),
            any_header: cfg.allowed_headers.iter().any(|h| h == "*"),
            headers,
            max_age: cfg.max_age,
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|pattern| wildcard_match(pattern, origin))
    }

    /// Answers an `OPTIONS` preflight. A refused preflight is a 204 without
    /// the allow headers: the browser then blocks the request.
    fn preflight(&self, headers: &HeaderMap) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let out = response.headers_mut();
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        let Some(origin) = headers.get(header::ORIGIN) else {
            return response;
        };
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            return response;
        }
        let method_ok = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"POST"));
        if !method_ok {
            return response;
        }
        let requested = headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let headers_ok = self.any_header
            || requested
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .all(|h| self.headers.contains(&h));
        if !headers_ok {
            return response;
        }
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        if !requested.is_empty() {
            if let Ok(v) = HeaderValue::from_str(requested) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        if self.max_age > 0 {
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(self.max_age),
            );
        }
        response
    }

    /// Adds the allow-origin header to an actual (non-preflight) response.
    fn decorate(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        out.append(header::VARY, HeaderValue::from_static("Origin"));
        if origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
    }
}

/// Matches `text` against a pattern where `*` stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty(); // no `*`: exact match
    };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn content_types_ignore_parameters_and_case() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/JSON; charset=utf-8"),
        );
        assert_eq!(Encoding::from_headers(&h), Some(Encoding::Json));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert_eq!(Encoding::from_headers(&h), Some(Encoding::Protobuf));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(Encoding::from_headers(&h), None);
        assert_eq!(Encoding::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn origin_wildcards() {
        assert!(wildcard_match("*", "https://a.example.com"));
        assert!(wildcard_match(
            "https://*.example.com",
            "https://a.example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "https://example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "https://a.example.com.evil.org"
        ));
        assert!(wildcard_match(
            "https://app.example.com",
            "https://app.example.com"
        ));
        assert!(!wildcard_match(
            "https://app.example.com",
            "https://app.example.co"
        ));
        assert!(wildcard_match("http://*:*", "http://localhost:3000"));
    }
}
