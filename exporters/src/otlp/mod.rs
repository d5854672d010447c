//! The OTLP exporters: `otlp_grpc` (alias `otlp`) and `otlp_http` (alias
//! `otlphttp`), with the Collector's options and defaults.
//!
//! Both encode a batch once, when it enters the sending queue, into the
//! protobuf (or, for HTTP, JSON) export request; retries resend those bytes.
//! Protobuf requests of one signal merge by concatenation — a repeated field
//! concatenated with itself is still a valid export request — so
//! `sending_queue.batch` works without decoding anything; OTLP/JSON requests
//! merge by splicing their resource arrays.

pub mod config;
pub mod grpc;
pub mod http;

pub use config::{Compression, GrpcConfig, HttpConfig};
pub use grpc::OtlpGrpcFactory;
pub use http::OtlpHttpFactory;

use bytes::Bytes;
use confluo_pipeline::exporter_helper::Request;
use confluo_pipeline::proto::logs_service::ExportLogsServiceResponse;
use confluo_pipeline::proto::metrics_service::ExportMetricsServiceResponse;
use confluo_pipeline::proto::trace_service::ExportTraceServiceResponse;
use confluo_pipeline::SignalKind;
use std::sync::OnceLock;

/// One encoded OTLP export request.
#[derive(Debug)]
pub struct OtlpRequest {
    kind: SignalKind,
    items: usize,
    /// The uncompressed export request.
    body: Bytes,
    /// Protobuf (true) or OTLP/JSON (false): decides how two bodies merge.
    protobuf: bool,
    /// The compressed body, made on the first attempt and reused by retries.
    /// Compressing lazily (rather than at enqueue) keeps requests mergeable
    /// while they wait in the queue; merging happens before the first send.
    compressed: OnceLock<Bytes>,
}

impl OtlpRequest {
    /// `protobuf`: whether `body` is the protobuf export request (else
    /// OTLP/JSON, as `otlp_json` encodes it).
    pub fn new(kind: SignalKind, items: usize, body: Vec<u8>, protobuf: bool) -> OtlpRequest {
        OtlpRequest::from_bytes(kind, items, body.into(), protobuf)
    }

    pub fn from_bytes(kind: SignalKind, items: usize, body: Bytes, protobuf: bool) -> OtlpRequest {
        OtlpRequest {
            kind,
            items,
            body,
            protobuf,
            compressed: OnceLock::new(),
        }
    }

    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body compressed with `compression`, computed once.
    pub fn compressed(&self, compression: Compression) -> Bytes {
        match compression {
            Compression::None => self.body.clone(),
            Compression::Gzip => self
                .compressed
                .get_or_init(|| confluo_pipeline::compression::gzip(&self.body).into())
                .clone(),
            Compression::Zstd => self
                .compressed
                .get_or_init(|| confluo_pipeline::compression::zstd(&self.body).into())
                .clone(),
        }
    }
}

impl Request for OtlpRequest {
    fn item_count(&self) -> usize {
        self.items
    }

    fn byte_size(&self) -> usize {
        self.body.len()
    }

    fn merge(&mut self, other: Self) -> Result<(), Self> {
        if self.kind != other.kind || self.protobuf != other.protobuf {
            return Err(other);
        }
        let body = if self.protobuf {
            // Repeated field 1 concatenated: a valid request holding both.
            let mut body = Vec::with_capacity(self.body.len() + other.body.len());
            body.extend_from_slice(&self.body);
            body.extend_from_slice(&other.body);
            body
        } else {
            match merge_json(self.kind, &self.body, &other.body) {
                Some(body) => body,
                None => return Err(other),
            }
        };
        self.body = body.into();
        self.items += other.items;
        self.compressed = OnceLock::new();
        Ok(())
    }
}

/// Splices two canonical OTLP/JSON requests, `{"resourceSpans":[A]}` and
/// `{"resourceSpans":[B]}`, into `{"resourceSpans":[A,B]}`. The encoder
/// writes the resource list as the only key; anything else is left unmerged.
fn merge_json(kind: SignalKind, a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let prefix: &[u8] = match kind {
        SignalKind::Traces => br#"{"resourceSpans":["#,
        SignalKind::Metrics => br#"{"resourceMetrics":["#,
        SignalKind::Logs => br#"{"resourceLogs":["#,
    };
    let well_formed = |body: &[u8]| {
        body.len() > prefix.len() + 2 && body.starts_with(prefix) && body.ends_with(b"]}")
    };
    if !well_formed(a) || !well_formed(b) {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(&a[..a.len() - 2]);
    out.push(b',');
    out.extend_from_slice(&b[prefix.len()..]);
    Some(out)
}

/// The protobuf export request of a batch: the bytes it arrived as when the
/// data is unchanged (no copy, no encoding), else freshly encoded.
pub(crate) fn protobuf_request(batch: &confluo_pipeline::Batch) -> Bytes {
    if let Some(encoded) = batch.encoded() {
        return encoded.clone();
    }
    let mut body = Vec::new();
    batch.signal().encode_request(&mut body);
    body.into()
}

/// The `partial_success` of an export response: (rejected items, message).
pub(crate) trait PartialSuccess {
    fn partial(&self) -> (i64, String);
}

impl PartialSuccess for ExportTraceServiceResponse {
    fn partial(&self) -> (i64, String) {
        self.partial_success
            .as_ref()
            .map_or((0, String::new()), |p| {
                (p.rejected_spans, p.error_message.clone())
            })
    }
}

impl PartialSuccess for ExportMetricsServiceResponse {
    fn partial(&self) -> (i64, String) {
        self.partial_success
            .as_ref()
            .map_or((0, String::new()), |p| {
                (p.rejected_data_points, p.error_message.clone())
            })
    }
}

impl PartialSuccess for ExportLogsServiceResponse {
    fn partial(&self) -> (i64, String) {
        self.partial_success
            .as_ref()
            .map_or((0, String::new()), |p| {
                (p.rejected_log_records, p.error_message.clone())
            })
    }
}

/// Turns a successful response's `partial_success` into an outcome: rejected
/// items are never retried (the server refused them for good); a message
/// with nothing rejected is a warning from the server.
pub(crate) fn partial_outcome(
    exporter: &str,
    kind: SignalKind,
    (rejected, message): (i64, String),
) -> confluo_pipeline::exporter_helper::SendOutcome<OtlpRequest> {
    use confluo_pipeline::exporter_helper::SendOutcome;
    let message = crate::util::cap_text(&message, 1024);
    if rejected > 0 {
        return SendOutcome::Partial {
            retry: None,
            rejected: rejected as usize,
            error: if message.is_empty() {
                "the server rejected part of the request (partial_success)".into()
            } else {
                message
            },
        };
    }
    if !message.is_empty() {
        tracing::warn!(
            event = "export_partial_success_warning",
            exporter = %exporter,
            signal = %kind,
            message = %message,
            "the server accepted the request with a warning"
        );
    }
    SendOutcome::Sent
}

#[cfg(test)]
mod tests;
