//! The HTTP client every HTTP exporter shares: hyper with rustls, HTTP/1.1
//! and HTTP/2, a capped response body.

use crate::tls::{TlsClientSettings, TlsError};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Responses larger than this are cut off (OTLP recommends 4 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 << 20;

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("reading the response failed: {0}")]
    Body(String),
    #[error("invalid request: {0}")]
    Request(String),
}

impl HttpClient {
    pub fn new(tls: &TlsClientSettings) -> Result<HttpClient, TlsError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        // Built by `tls` so that `server_name_override` applies and ALPN is
        // set the way hyper-rustls requires (it panics on a preset list).
        let connector = tls.https_connector(&[b"h2", b"http/1.1"], http)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(HttpClient { client })
    }

    /// POSTs `body`; the caller applies its own timeout around this call.
    pub async fn post(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, HttpError> {
        self.request(Method::POST, uri, headers, body, max_response_bytes)
            .await
    }

    /// GETs `uri` (scrapes, health probes).
    pub async fn get(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, HttpError> {
        self.request(Method::GET, uri, headers, Bytes::new(), max_response_bytes)
            .await
    }

    /// Any request; the body of the answer is read up to `max_response_bytes`
    /// (more is an error, not a silent cut).
    pub async fn request(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, HttpError> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri.clone())
            .body(Full::new(body))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        req.headers_mut().extend(headers.clone());
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| HttpError::Connect(error_chain(&e)))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, max_response_bytes)
            .collect()
            .await
            .map_err(|e| HttpError::Body(e.to_string()))?
            .to_bytes();
        Ok(HttpResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// The OTLP/HTTP spec's retryable statuses: 429, 502, 503, 504.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// The full cause chain of an error, for log lines ("connect: connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
