//! The OTLP exporters: `otlp_grpc` (alias `otlp`) and `otlp_http` (alias
//! `otlphttp`), with the Collector's options and defaults.
//!
//! Both encode a batch once, when it enters the sending queue, into the
//! protobuf (or, for HTTP, JSON) export request; retries resend those bytes.
//! Protobuf requests of one signal merge by concatenation — a repeated field
//! concatenated with itself is still a valid export request — so
//! `sending_queue.batch` works without decoding anything.

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
    /// Protobuf bodies concatenate into a valid request; JSON ones do not.
    mergeable: bool,
    /// The compressed body, made on the first attempt and reused by retries.
    /// Compressing lazily (rather than at enqueue) keeps requests mergeable
    /// while they wait in the queue; merging happens before the first send.
    compressed: OnceLock<Bytes>,
}

impl OtlpRequest {
    pub fn new(kind: SignalKind, items: usize, body: Vec<u8>, mergeable: bool) -> OtlpRequest {
        OtlpRequest {
            kind,
            items,
            body: body.into(),
            mergeable,
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
        if self.kind != other.kind || !self.mergeable || !other.mergeable {
            return Err(other);
        }
        let mut body = Vec::with_capacity(self.body.len() + other.body.len());
        body.extend_from_slice(&self.body);
        body.extend_from_slice(&other.body);
        self.body = body.into();
        self.items += other.items;
        self.compressed = OnceLock::new();
        Ok(())
    }
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
