//! `otlp_grpc`: OTLP over gRPC, sending pre-encoded protobuf requests with
//! tonic's low-level unary call and retrying per the OTLP spec.

use super::config::{header_map, Compression, GrpcConfig};
use super::{partial_outcome, protobuf_request, OtlpRequest, PartialSuccess};
use crate::util::{cap_text, check_with, load_with, USER_AGENT};
use async_trait::async_trait;
use bytes::{BufMut, Bytes};
use confluo_config::{ConfigError, Node};
use confluo_pipeline::exporter_helper::{HelperSettings, QueuedExporter, SendOutcome, Sender};
use confluo_pipeline::proto::logs_service::ExportLogsServiceResponse;
use confluo_pipeline::proto::metrics_service::ExportMetricsServiceResponse;
use confluo_pipeline::proto::trace_service::ExportTraceServiceResponse;
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, Exporter, ExporterFactory, SignalKind, SignalSet,
    Stability,
};
use http::uri::PathAndQuery;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Service;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Responses are tiny; a server answering more than this is misbehaving.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Factory of `otlp_grpc` (the binary registers the alias `otlp`).
pub struct OtlpGrpcFactory;

fn validate(cfg: &GrpcConfig, node: &Node) -> Vec<ConfigError> {
    cfg.validate(node)
}

impl ExporterFactory for OtlpGrpcFactory {
    fn type_name(&self) -> &'static str {
        "otlp_grpc"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn stability(&self) -> Stability {
        Stability::Beta
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<GrpcConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: GrpcConfig = load_with(node, validate)?;
        let sender = GrpcSender::new(&cfg, ctx.id.to_string())?;
        let settings = HelperSettings::new(&cfg.timeout, &cfg.retry_on_failure, &cfg.sending_queue);
        Ok(Arc::new(QueuedExporter::new(
            &ctx, sender, settings, signals,
        )?))
    }
}

/// Sends encoded export requests over one lazily connected channel.
pub struct GrpcSender {
    channel: Channel,
    metadata: MetadataMap,
    compression: Option<CompressionEncoding>,
    timeout: Duration,
    id: String,
}

impl GrpcSender {
    pub fn new(cfg: &GrpcConfig, id: String) -> Result<GrpcSender, ComponentError> {
        let target = cfg
            .target()
            .map_err(|e| ComponentError::start(format!("{id}: {e}")))?;
        let mut endpoint = Endpoint::from(target.uri.clone())
            .user_agent(USER_AGENT)
            .map_err(|e| ComponentError::start(format!("{id}: {e}")))?
            .tcp_nodelay(true);
        if let Some(ka) = &cfg.keepalive {
            if let Some(time) = ka.time {
                endpoint = endpoint.http2_keep_alive_interval(time.0);
            }
            if let Some(timeout) = ka.timeout {
                endpoint = endpoint.keep_alive_timeout(timeout.0);
            }
            endpoint = endpoint.keep_alive_while_idle(ka.permit_without_stream);
        }
        let channel = if target.tls {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            let https = cfg
                .tls
                .https_connector(&[b"h2"], http)
                .map_err(|e| ComponentError::start(format!("{id}: {e}")))?;
            endpoint.connect_with_connector_lazy(ForceTls(https))
        } else {
            endpoint.connect_lazy()
        };
        let mut metadata = MetadataMap::new();
        for (name, value) in header_map(&cfg.headers)
            .map_err(|e| ComponentError::start(format!("{id}: headers: {e}")))?
            .iter()
        {
            let key = MetadataKey::from_bytes(name.as_str().as_bytes())
                .map_err(|_| ComponentError::start(format!("{id}: header `{name}`: invalid")))?;
            let value = MetadataValue::try_from(value.as_bytes()).map_err(|_| {
                ComponentError::start(format!("{id}: header `{name}`: invalid value"))
            })?;
            metadata.append(key, value);
        }
        Ok(GrpcSender {
            channel,
            metadata,
            compression: match cfg.compression {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::None => None,
            },
            timeout: cfg.timeout.0,
            id,
        })
    }

    /// One unary call of pre-encoded `body` to `path` (also used by the
    /// `jaeger` exporter's `grpc_api_v2`, over the same channel code).
    pub(crate) async fn call<R>(&self, path: &'static str, body: Bytes) -> Result<R, Status>
    where
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        if let Some(c) = self.compression {
            grpc = grpc.send_compressed(c);
        }
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection failed: {}", error_chain(&e))))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        // Tell the server our deadline (`grpc-timeout`), as grpc-go does.
        request.set_timeout(self.timeout);
        let response = grpc
            .unary(
                request,
                PathAndQuery::from_static(path),
                RawCodec::<R>::default(),
            )
            .await?;
        Ok(response.into_inner())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    confluo_pipeline::http_client::error_chain(e)
}

/// Classifies a failed call per the OTLP spec's gRPC rules.
pub(crate) fn classify(status: &Status) -> SendOutcome<OtlpRequest> {
    classify_status(status)
}

/// [`classify`] for any request type (the `jaeger` exporter's too).
pub(crate) fn classify_status<R>(status: &Status) -> SendOutcome<R> {
    let error = format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        cap_text(status.message(), 1024)
    );
    // A status built locally from a transport error (connection reset,
    // refused stream, h2 protocol error) carries its cause; the server's
    // statuses arrive as trailers and never do. No response means retry.
    if std::error::Error::source(status).is_some()
        && matches!(status.code(), Code::Unknown | Code::Internal)
    {
        return SendOutcome::Retry {
            error,
            retry_after: None,
        };
    }
    let retry_info = || status.get_details_retry_info();
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => SendOutcome::Retry {
            error,
            retry_after: retry_info().and_then(|r| r.retry_delay),
        },
        // Only retryable when the server says when: otherwise it is a
        // permanent limit (a message too large, a quota exhausted for good).
        Code::ResourceExhausted => match retry_info() {
            Some(info) => SendOutcome::Retry {
                error,
                retry_after: info.retry_delay,
            },
            None => SendOutcome::Permanent { error },
        },
        _ => SendOutcome::Permanent { error },
    }
}

#[async_trait]
impl Sender for GrpcSender {
    type Request = OtlpRequest;

    fn encode(&self, batch: &Batch) -> Result<Vec<OtlpRequest>, String> {
        // Kind and count come from the batch: reading the signal would
        // decode data that arrived as protobuf and leaves as the same bytes.
        Ok(vec![OtlpRequest::from_bytes(
            batch.kind(),
            batch.item_count(),
            protobuf_request(batch),
            true,
        )])
    }

    async fn send(&self, request: &OtlpRequest) -> SendOutcome<OtlpRequest> {
        let kind = request.kind();
        let body = request.body().clone();
        let result = match kind {
            SignalKind::Traces => self
                .call::<ExportTraceServiceResponse>(TRACES_PATH, body)
                .await
                .map(|r| r.partial()),
            SignalKind::Metrics => self
                .call::<ExportMetricsServiceResponse>(METRICS_PATH, body)
                .await
                .map(|r| r.partial()),
            SignalKind::Logs => self
                .call::<ExportLogsServiceResponse>(LOGS_PATH, body)
                .await
                .map(|r| r.partial()),
        };
        match result {
            Ok(partial) => partial_outcome(&self.id, kind, partial),
            Err(status) => classify(&status),
        }
    }
}

/// Writes pre-encoded request bytes as they are and decodes the prost
/// response: the request was encoded once, at enqueue.
struct RawCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<R> {
        ProstDecoder(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

struct ProstDecoder<R>(PhantomData<fn() -> R>);

impl<R: prost::Message + Default> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        // The server answered OK, so it has the data: an undecodable response
        // body must not turn into a retry (duplicates) or a drop. Read it as
        // "no partial success".
        Ok(Some(R::decode(src).unwrap_or_default()))
    }
}

/// Makes every connection TLS. tonic refuses `https://` URIs when its own TLS
/// is not configured, so the channel is given `http://` and this wrapper
/// upgrades the scheme before the rustls connector sees it.
#[derive(Clone)]
struct ForceTls(HttpsConnector<HttpConnector>);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TlsStream = <HttpsConnector<HttpConnector> as Service<http::Uri>>::Response;

impl Service<http::Uri> for ForceTls {
    type Response = TlsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mut parts = uri.into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTPS);
        match http::Uri::from_parts(parts) {
            Ok(uri) => Box::pin(self.0.call(uri)),
            Err(e) => Box::pin(std::future::ready(Err(Box::new(e) as BoxError))),
        }
    }
}

#[cfg(test)]
mod tests;
