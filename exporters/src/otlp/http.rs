//! `otlp_http`: OTLP over HTTP (protobuf or JSON), per the OTLP/HTTP spec's
//! status and retry rules.

use super::config::{header_map, Compression, Encoding, HttpConfig};
use super::{partial_outcome, protobuf_request, OtlpRequest, PartialSuccess};
use crate::util::{
    cap_text, check_with, encode_json, http_error, load_with, retry_after, USER_AGENT,
};
use async_trait::async_trait;
use confluo_config::{ConfigError, Node};
use confluo_pipeline::exporter_helper::{HelperSettings, QueuedExporter, SendOutcome, Sender};
use confluo_pipeline::http_client::{is_retryable_status, HttpClient, HttpResponse};
use confluo_pipeline::otlp_json;
use confluo_pipeline::proto::logs_service::ExportLogsServiceResponse;
use confluo_pipeline::proto::metrics_service::ExportMetricsServiceResponse;
use confluo_pipeline::proto::trace_service::ExportTraceServiceResponse;
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, Exporter, ExporterFactory, SignalKind, SignalSet,
    Stability,
};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT as UA};
use http::{HeaderMap, HeaderValue, Uri};
use prost::Message;
use std::sync::Arc;

/// The spec's recommended cap on a response body.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Factory of `otlp_http` (the binary registers the alias `otlphttp`).
pub struct OtlpHttpFactory;

fn validate(cfg: &HttpConfig, node: &Node) -> Vec<ConfigError> {
    cfg.validate(node)
}

impl ExporterFactory for OtlpHttpFactory {
    fn type_name(&self) -> &'static str {
        "otlp_http"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn stability(&self) -> Stability {
        Stability::Beta
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<HttpConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: HttpConfig = load_with(node, validate)?;
        let sender = HttpSender::new(&cfg, signals, ctx.id.to_string())?;
        let settings = HelperSettings::new(&cfg.timeout, &cfg.retry_on_failure, &cfg.sending_queue);
        Ok(Arc::new(QueuedExporter::new(
            &ctx, sender, settings, signals,
        )?))
    }
}

/// POSTs encoded export requests to the per-signal URLs.
pub struct HttpSender {
    client: HttpClient,
    /// Per signal (traces, metrics, logs); `None` for signals not exported.
    urls: [Option<Uri>; 3],
    headers: HeaderMap,
    encoding: Encoding,
    compression: Compression,
    id: String,
}

fn index(kind: SignalKind) -> usize {
    match kind {
        SignalKind::Traces => 0,
        SignalKind::Metrics => 1,
        SignalKind::Logs => 2,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

impl HttpSender {
    pub fn new(
        cfg: &HttpConfig,
        signals: SignalSet,
        id: String,
    ) -> Result<HttpSender, ComponentError> {
        let mut urls = [None, None, None];
        for kind in signals.iter() {
            urls[index(kind)] = Some(
                cfg.url(kind)
                    .map_err(|e| ComponentError::start(format!("{id}: {e}")))?,
            );
        }
        let client =
            HttpClient::new(&cfg.tls).map_err(|e| ComponentError::start(format!("{id}: {e}")))?;
        let mut headers =
            header_map(&cfg.headers).map_err(|e| ComponentError::start(format!("{id}: {e}")))?;
        // The configured headers may not override the protocol's own.
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(cfg.encoding.content_type()),
        );
        headers.remove(CONTENT_ENCODING);
        if let Some(token) = cfg.compression.token() {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        headers
            .entry(UA)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        Ok(HttpSender {
            client,
            urls,
            headers,
            encoding: cfg.encoding,
            compression: cfg.compression,
            id,
        })
    }

    /// A 2xx: read `partial_success` from the body, in the response's own
    /// encoding (the spec says it matches the request's; trust the header).
    fn success(&self, kind: SignalKind, resp: &HttpResponse) -> SendOutcome<OtlpRequest> {
        if resp.body.is_empty() {
            return SendOutcome::Sent;
        }
        let body = &resp.body[..];
        let partial = if is_json(&resp.headers) {
            match kind {
                SignalKind::Traces => otlp_json::decode_trace_response(body)
                    .map(|r| r.partial())
                    .ok(),
                SignalKind::Metrics => otlp_json::decode_metrics_response(body)
                    .map(|r| r.partial())
                    .ok(),
                SignalKind::Logs => otlp_json::decode_logs_response(body)
                    .map(|r| r.partial())
                    .ok(),
            }
        } else {
            match kind {
                SignalKind::Traces => ExportTraceServiceResponse::decode(body)
                    .map(|r| r.partial())
                    .ok(),
                SignalKind::Metrics => ExportMetricsServiceResponse::decode(body)
                    .map(|r| r.partial())
                    .ok(),
                SignalKind::Logs => ExportLogsServiceResponse::decode(body)
                    .map(|r| r.partial())
                    .ok(),
            }
        };
        match partial {
            Some(p) => partial_outcome(&self.id, kind, p),
            None => {
                // The server took the data (2xx); a body we cannot read is
                // not a reason to resend it.
                tracing::debug!(
                    event = "export_response_undecodable",
                    exporter = %self.id,
                    status = resp.status.as_u16()
                );
                SendOutcome::Sent
            }
        }
    }
}

/// The error text of a failed response: the `google.rpc.Status` message
/// when the body is one (protobuf or JSON), else the start of the body.
pub(crate) fn error_detail(resp: &HttpResponse) -> String {
    let body = &resp.body[..];
    if body.is_empty() {
        return String::new();
    }
    if is_json(&resp.headers) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
                return cap_text(m, 1024);
            }
        }
    } else if let Ok(status) = tonic_types::pb::Status::decode(body) {
        if !status.message.is_empty() {
            return cap_text(&status.message, 1024);
        }
    }
    cap_text(&String::from_utf8_lossy(body), 512)
}

#[async_trait]
impl Sender for HttpSender {
    type Request = OtlpRequest;

    fn encode(&self, batch: &Batch) -> Result<Vec<OtlpRequest>, String> {
        let (body, protobuf) = match self.encoding {
            Encoding::Proto => (protobuf_request(batch), true),
            Encoding::Json => {
                let mut body = Vec::with_capacity(batch.wire_bytes.saturating_mul(2));
                encode_json(batch.signal(), &mut body);
                (body.into(), false)
            }
        };
        // Not `batch.signal()`: protobuf that passes through stays undecoded.
        Ok(vec![OtlpRequest::from_bytes(
            batch.kind(),
            batch.item_count(),
            body,
            protobuf,
        )])
    }

    async fn send(&self, request: &OtlpRequest) -> SendOutcome<OtlpRequest> {
        let kind = request.kind();
        let Some(url) = &self.urls[index(kind)] else {
            return SendOutcome::Permanent {
                error: format!("no URL configured for {kind}"),
            };
        };
        let body = request.compressed(self.compression);
        let resp = match self
            .client
            .post(url, &self.headers, body, MAX_RESPONSE_BYTES)
            .await
        {
            Ok(r) => r,
            // No response: the spec says retry with backoff.
            Err(e) => {
                return SendOutcome::Retry {
                    error: e.to_string(),
                    retry_after: None,
                }
            }
        };
        if resp.status.is_success() {
            return self.success(kind, &resp);
        }
        let detail = error_detail(&resp);
        let error = http_error(resp.status, &detail);
        if is_retryable_status(resp.status) {
            SendOutcome::Retry {
                error,
                retry_after: retry_after(&resp),
            }
        } else {
            SendOutcome::Permanent { error }
        }
    }
}

#[cfg(test)]
mod tests;
