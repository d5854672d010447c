//! The `jaeger` exporter (traces only).
//!
//! - `protocol: otlp_grpc` (default): Jaeger ≥ 1.35 and Jaeger v2 take OTLP
//!   on 4317, so this is the `otlp_grpc` exporter's sender with Jaeger's
//!   default port.
//! - `protocol: grpc_api_v2`: `jaeger.api_v2.CollectorService/PostSpans`
//!   (port 14250) with the OTLP → Jaeger model mapping of [`encode`], over
//!   the same channel code (TLS, metadata, compression, `grpc-timeout`) and
//!   the same gRPC status rules: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED…
//!   and RESOURCE_EXHAUSTED with `RetryInfo` are retried, the rest is final.
//!
//! A batch is encoded once, when it enters the sending queue, into one
//! `PostSpansRequest` per resource, each under Jaeger's default 4 MiB gRPC
//! message limit. Requests of the same process merge at dequeue
//! (`sending_queue.batch`) by concatenating their span lists.

pub mod config;
pub mod encode;
pub mod proto;

pub use config::{JaegerConfig, Protocol};

use crate::otlp::grpc::{classify_status, GrpcSender};
use crate::util::{check_with, load_with};
use async_trait::async_trait;
use bytes::Bytes;
use confluo_config::{ConfigError, Node};
use confluo_pipeline::exporter_helper::{
    HelperSettings, QueuedExporter, Request, SendOutcome, Sender,
};
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, Exporter, ExporterFactory, Signal, SignalKind,
    SignalSet, Stability,
};
use encode::Encoded;
use std::sync::{Arc, OnceLock};

const POST_SPANS_PATH: &str = "/jaeger.api_v2.CollectorService/PostSpans";

/// Jaeger's collector refuses gRPC messages over 4 MiB by default
/// (`collector.grpc-server.max-message-size`); requests stay below that.
pub const MAX_REQUEST_BYTES: usize = (4 << 20) - 1024;

/// Factory of `jaeger`.
pub struct JaegerFactory;

fn validate(cfg: &JaegerConfig, node: &Node) -> Vec<ConfigError> {
    cfg.validate(node)
}

impl ExporterFactory for JaegerFactory {
    fn type_name(&self) -> &'static str {
        "jaeger"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::only(SignalKind::Traces)
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<JaegerConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: JaegerConfig = load_with(node, validate)?;
        let grpc_cfg = cfg.grpc_config();
        let grpc = GrpcSender::new(&grpc_cfg, ctx.id.to_string())?;
        let settings = HelperSettings::new(&cfg.timeout, &cfg.retry_on_failure, &cfg.sending_queue);
        Ok(match cfg.protocol {
            Protocol::OtlpGrpc => Arc::new(QueuedExporter::new(&ctx, grpc, settings, signals)?),
            Protocol::GrpcApiV2 => Arc::new(QueuedExporter::new(
                &ctx,
                ApiV2Sender::new(grpc),
                settings,
                signals,
            )?),
        })
    }
}

/// One `PostSpansRequest` (one process), encoded.
#[derive(Debug)]
pub struct JaegerRequest {
    encoded: Encoded,
    /// The wire body, built on the first attempt and reused by retries;
    /// building it lazily keeps requests mergeable while they wait.
    body: OnceLock<Bytes>,
}

impl JaegerRequest {
    pub fn new(encoded: Encoded) -> JaegerRequest {
        JaegerRequest {
            encoded,
            body: OnceLock::new(),
        }
    }

    /// The encoded `PostSpansRequest`.
    pub fn body(&self) -> Bytes {
        self.body.get_or_init(|| self.encoded.body().into()).clone()
    }
}

impl Request for JaegerRequest {
    fn item_count(&self) -> usize {
        self.encoded.items
    }

    fn byte_size(&self) -> usize {
        self.encoded.wire_len()
    }

    fn merge(&mut self, other: Self) -> Result<(), Self> {
        // Two batches concatenated would merge their processes field by
        // field (tags appended, last name wins): only equal processes merge.
        if self.encoded.process != other.encoded.process
            || self.encoded.wire_len() + other.encoded.spans.len() > MAX_REQUEST_BYTES
        {
            return Err(other);
        }
        self.encoded.spans.extend_from_slice(&other.encoded.spans);
        self.encoded.items += other.encoded.items;
        self.body = OnceLock::new();
        Ok(())
    }
}

/// `grpc_api_v2`: PostSpans over the `otlp_grpc` exporter's channel.
pub struct ApiV2Sender {
    grpc: GrpcSender,
}

impl ApiV2Sender {
    pub fn new(grpc: GrpcSender) -> ApiV2Sender {
        ApiV2Sender { grpc }
    }
}

#[async_trait]
impl Sender for ApiV2Sender {
    type Request = JaegerRequest;

    fn encode(&self, batch: &Batch) -> Result<Vec<JaegerRequest>, String> {
        match batch.signal() {
            Signal::Traces(rs) => Ok(encode::encode_requests(rs, MAX_REQUEST_BYTES)
                .into_iter()
                .map(JaegerRequest::new)
                .collect()),
            other => Err(format!("jaeger exports traces only, got {}", other.kind())),
        }
    }

    async fn send(&self, request: &JaegerRequest) -> SendOutcome<JaegerRequest> {
        match self
            .grpc
            .call::<proto::PostSpansResponse>(POST_SPANS_PATH, request.body())
            .await
        {
            Ok(_) => SendOutcome::Sent,
            Err(status) => classify_status(&status),
        }
    }
}

#[cfg(test)]
mod tests;
