//! OTLP/gRPC: hand-made `Export` services on a tonic server.
//!
//! The services are written by hand instead of using opentelemetry-proto's
//! generated `TraceServiceServer` & co. so that they can use their own codec:
//! the codec's decoder sees the message bytes before prost builds the tree,
//! which is where the admission permit is taken.
//!
//! What is bounded where (honestly):
//! - tonic reads the 5-byte gRPC frame header and refuses a frame longer than
//!   `max_recv_msg_size_mib` (OUT_OF_RANGE) before buffering it; it then
//!   buffers the (possibly compressed) frame and decompresses it into a
//!   second buffer, again capped at `max_recv_msg_size_mib`. Those two
//!   buffers (≤ 2 × the limit per request) exist *before* admission, so the
//!   admission budget does not bound them; only `max_concurrent_streams` ×
//!   connections does.
//! - The admission permit is taken in the decoder, with the decompressed
//!   message length, before prost decodes: the decoded tree (several times
//!   the wire size) and everything downstream until the consumer answers is
//!   covered by the budget. `Batch::wire_bytes` is that decompressed length,
//!   since the compressed size is not visible to a codec.

use super::{Backpressure, Core, Logs, Metrics, OtlpSignal, Traces};
use crate::otlp::config::GrpcConfig;
use confluo_pipeline::admission::AdmissionPermit;
use confluo_pipeline::{ClientInfo, ConsumeError, SignalConsumers};
use prost::bytes::Buf;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http as tonic_http, Body, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Starts serving on `listener` until `stop` is cancelled.
pub(super) fn serve(
    core: Arc<Core>,
    cfg: &GrpcConfig,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let max = cfg.max_recv_msg_size();
    let consumers: &SignalConsumers = &core.consumers;
    // Only the services of signals with a pipeline are registered, as in the
    // Collector; tonic answers UNIMPLEMENTED for the others.
    let traces = consumers
        .traces
        .as_ref()
        .map(|_| ExportService::<Traces>::new(core.clone(), max));
    let metrics = consumers
        .metrics
        .as_ref()
        .map(|_| ExportService::<Metrics>::new(core.clone(), max));
    let logs = consumers
        .logs
        .as_ref()
        .map(|_| ExportService::<Logs>::new(core.clone(), max));
    let streams = (cfg.max_concurrent_streams > 0).then_some(cfg.max_concurrent_streams);
    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(streams)
        .add_optional_service(traces)
        .add_optional_service(metrics)
        .add_optional_service(logs);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let id = core.id.clone();
    tokio::spawn(async move {
        // Graceful: on `stop`, stop accepting and let requests in flight finish.
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await
        {
            tracing::error!(event = "receiver_server_failed", receiver = %id, transport = "grpc", error = %e);
        }
    })
}

/// One signal's `Export` service.
pub(super) struct ExportService<S> {
    core: Arc<Core>,
    max_decoding_message_size: usize,
    _signal: PhantomData<fn() -> S>,
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        ExportService {
            core: self.core.clone(),
            max_decoding_message_size: self.max_decoding_message_size,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> ExportService<S> {
    fn new(core: Arc<Core>, max_decoding_message_size: usize) -> Self {
        ExportService {
            core,
            max_decoding_message_size,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> NamedService for ExportService<S> {
    const NAME: &'static str = S::GRPC_SERVICE;
}

impl<S, B> Service<tonic_http::Request<B>> for ExportService<S>
where
    S: OtlpSignal,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = tonic_http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic_http::Request<B>) -> Self::Future {
        if req.uri().path() != S::GRPC_PATH {
            return Box::pin(async { Ok(Status::unimplemented("unknown method").into_http()) });
        }
        let core = self.core.clone();
        let mut grpc = Grpc::new(AdmitCodec::<S> {
            core: core.clone(),
            _signal: PhantomData,
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(self.max_decoding_message_size);
        Box::pin(async move { Ok(grpc.unary(ExportCall::<S>::new(core), req).await) })
    }
}

/// A decoded request with the admission permit covering it.
pub(super) struct Admitted<M> {
    message: M,
    wire_bytes: usize,
    permit: AdmissionPermit,
    raw: bytes::Bytes,
}

/// Decodes with admission; encodes the (empty) responses.
struct AdmitCodec<S> {
    core: Arc<Core>,
    _signal: PhantomData<fn() -> S>,
}

impl<S: OtlpSignal> Codec for AdmitCodec<S> {
    type Encode = S::Response;
    type Decode = Admitted<S::Request>;
    type Encoder = ResponseEncoder<S::Response>;
    type Decoder = AdmitDecoder<S>;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        AdmitDecoder {
            core: self.core.clone(),
            _signal: PhantomData,
        }
    }
}

struct ResponseEncoder<M>(PhantomData<fn(M)>);

impl<M: prost::Message> Encoder for ResponseEncoder<M> {
    type Item = M;
    type Error = Status;

    fn encode(&mut self, item: M, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("failed to encode the response: {e}")))
    }
}

struct AdmitDecoder<S> {
    core: Arc<Core>,
    _signal: PhantomData<fn() -> S>,
}

impl<S: OtlpSignal> Decoder for AdmitDecoder<S> {
    type Item = Admitted<S::Request>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let wire_bytes = src.remaining();
        let Some(permit) = self.core.admit(S::KIND, wire_bytes) else {
            return Err(backpressure_status(
                Backpressure::Full,
                &Core::admission_refused(),
            ));
        };
        // Keep the bytes: an unchanged batch is re-sent as is by OTLP exporters.
        let raw = src.copy_to_bytes(wire_bytes);
        match <S::Request as prost::Message>::decode(&raw[..]) {
            Ok(message) => Ok(Some(Admitted {
                message,
                wire_bytes,
                permit,
                raw,
            })),
            Err(e) => {
                let msg = format!("failed to decode protobuf: {e}");
                self.core.bad_request(S::KIND, None, &msg);
                Err(Status::invalid_argument(msg))
            }
        }
    }
}

/// The unary handler: builds the batch and maps the consumer's answer.
struct ExportCall<S> {
    core: Arc<Core>,
    _signal: PhantomData<fn() -> S>,
}

impl<S> ExportCall<S> {
    fn new(core: Arc<Core>) -> Self {
        ExportCall {
            core,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> UnaryService<Admitted<S::Request>> for ExportCall<S> {
    type Response = S::Response;
    type Future = BoxFuture<tonic::Response<S::Response>, Status>;

    fn call(&mut self, req: tonic::Request<Admitted<S::Request>>) -> Self::Future {
        let core = self.core.clone();
        Box::pin(async move {
            let client = ClientInfo {
                addr: req.remote_addr(),
                metadata: core.metadata_from(req.metadata().as_ref()),
                ..ClientInfo::default()
            };
            let deadline = req
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout)
                .and_then(|d| Instant::now().checked_add(d));
            let Admitted {
                message,
                wire_bytes,
                permit,
                raw,
            } = req.into_inner();
            let result = core
                .deliver(
                    S::into_signal(message),
                    client,
                    deadline,
                    wire_bytes,
                    Some(raw),
                )
                .await;
            // The budget covers the data until the pipeline has answered.
            drop(permit);
            match result {
                Ok(()) => Ok(tonic::Response::new(S::Response::default())),
                Err(e @ ConsumeError::Retryable { .. }) => {
                    Err(backpressure_status(core.backpressure_kind(&e), &e))
                }
                Err(ConsumeError::Permanent { reason }) => Err(Status::invalid_argument(reason)),
            }
        })
    }
}

/// RESOURCE_EXHAUSTED (or UNAVAILABLE while shutting down) with a
/// `google.rpc.RetryInfo`: OTLP clients retry RESOURCE_EXHAUSTED only when
/// it carries RetryInfo.
pub(super) fn backpressure_status(kind: Backpressure, e: &ConsumeError) -> Status {
    let code = match kind {
        Backpressure::Full => Code::ResourceExhausted,
        Backpressure::ShuttingDown => Code::Unavailable,
    };
    Status::with_error_details(
        code,
        e.to_string(),
        ErrorDetails::with_retry_info(Some(super::retry_after(e))),
    )
}

/// Parses the `grpc-timeout` header (`<up to 8 digits><H|M|S|m|u|n>`).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
    }
}
