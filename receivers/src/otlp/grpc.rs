//! OTLP/gRPC: hand-made `Export` services on a tonic server.
//!
//! The services are written by hand instead of using opentelemetry-proto's
//! generated `TraceServiceServer` & co. so that they can wrap the request body
//! and use their own codec (which keeps the message bytes for pass-through).
//!
//! What is bounded where:
//! - [`AdmitBody`] wraps the HTTP/2 request body in front of tonic. As the
//!   5-byte gRPC message header streams in, it takes the message's declared
//!   (wire, possibly compressed) length from the admission budget, before
//!   tonic buffers the message, let alone decompresses it. When the budget is
//!   exhausted the body fails with RESOURCE_EXHAUSTED + RetryInfo, which tonic
//!   answers as is. The permits are held until the pipeline has answered.
//! - tonic refuses a message whose declared length exceeds
//!   `max_recv_msg_size_mib` (OUT_OF_RANGE) before buffering it, and stops
//!   decompression at the same limit (RESOURCE_EXHAUSTED without RetryInfo):
//!   the decompressed buffer is bounded per request by that limit, as the
//!   HTTP side's is by `max_request_body_size`.
//! - `Batch::wire_bytes` is the wire length, as on the HTTP side.

use super::{Backpressure, Core, Incoming, Logs, Metrics, OtlpSignal, Traces};
use crate::otlp::config::GrpcConfig;
use bytes::Bytes;
use confluo_config::SignalKind;
use confluo_pipeline::admission::AdmissionPermit;
use confluo_pipeline::otlp_wire;
use confluo_pipeline::{ClientInfo, ConsumeError, SignalConsumers};
use http_body::{Frame, SizeHint};
use prost::bytes::Buf;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
    B: Body<Data = Bytes> + Unpin + Send + 'static,
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
        let reservation = Arc::new(Mutex::new(Reservation::default()));
        let max = self.max_decoding_message_size;
        let req = req.map(|body| AdmitBody {
            inner: body,
            core: core.clone(),
            kind: S::KIND,
            max_message: max,
            scan: FrameScan::default(),
            reservation: reservation.clone(),
        });
        let mut grpc = Grpc::new(PassCodec::<S> {
            core: core.clone(),
            _signal: PhantomData,
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max);
        // `reservation` lives in the call too, so the permits are released
        // on every path (refusal, decode error, answer) once it is done.
        Box::pin(async move {
            Ok(grpc
                .unary(ExportCall::<S>::new(core, reservation), req)
                .await)
        })
    }
}

/// The admission taken for one request's messages, shared by its body (which
/// takes it) and its handler (which releases it after the pipeline answered).
#[derive(Default)]
struct Reservation {
    permits: Vec<AdmissionPermit>,
    wire_bytes: usize,
}

fn lock(r: &Mutex<Reservation>) -> std::sync::MutexGuard<'_, Reservation> {
    // Nothing can panic while it is held, but a poisoned lock must not
    // leak permits either.
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// Follows the gRPC length-prefixed framing (1-byte compressed flag, 4-byte
/// big-endian length, message) across arbitrary data-frame boundaries and
/// reports each message's declared length as soon as its header is complete.
#[derive(Default)]
struct FrameScan {
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message still to skip.
    message_left: usize,
}

impl FrameScan {
    /// Feeds a chunk; calls `on_header(len)` for every message header
    /// completed in it, stopping at the first error.
    fn feed<E>(
        &mut self,
        mut data: &[u8],
        mut on_header: impl FnMut(usize) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() {
            if self.message_left > 0 {
                let n = self.message_left.min(data.len());
                self.message_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                self.header_len = 0;
                let [_, a, b, c, d] = self.header;
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                self.message_left = len;
                on_header(len)?;
            }
        }
        Ok(())
    }
}

/// The request body as tonic sees it: the same frames, with admission taken
/// for each message as soon as its header arrives.
struct AdmitBody<B> {
    inner: B,
    core: Arc<Core>,
    kind: SignalKind,
    max_message: usize,
    scan: FrameScan,
    reservation: Arc<Mutex<Reservation>>,
}

impl<B> AdmitBody<B> {
    fn admit(&mut self, data: &[u8]) -> Result<(), Status> {
        let AdmitBody {
            core,
            kind,
            max_message,
            scan,
            reservation,
            ..
        } = self;
        scan.feed(data, |len| {
            // Over the limit: tonic refuses it with OUT_OF_RANGE right after
            // reading the same header, without buffering the message.
            if len > *max_message {
                return Ok(());
            }
            let permit = core.admit(*kind, len).ok_or_else(|| {
                backpressure_status(Backpressure::Full, &Core::admission_refused())
            })?;
            let mut r = lock(reservation);
            r.permits.push(permit);
            r.wire_bytes += len;
            Ok(())
        })
    }
}

impl<B> Body for AdmitBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            // As tonic itself maps body errors (a Status inside is kept).
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Some(Err(Status::from_error(e.into()))))
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            if let Err(status) = this.admit(data) {
                return Poll::Ready(Some(Err(status)));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A decoded request with the bytes it was decoded from.
pub(super) struct Decoded<M> {
    /// A validated export request, decoded later only if a component reads it.
    raw: bytes::Bytes,
    items: usize,
    _message: PhantomData<fn() -> M>,
}

/// Decodes keeping the message bytes; encodes the (empty) responses.
struct PassCodec<S> {
    core: Arc<Core>,
    _signal: PhantomData<fn() -> S>,
}

impl<S: OtlpSignal> Codec for PassCodec<S> {
    type Encode = S::Response;
    type Decode = Decoded<S::Request>;
    type Encoder = ResponseEncoder<S::Response>;
    type Decoder = RequestDecoder<S>;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder {
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

struct RequestDecoder<S> {
    core: Arc<Core>,
    _signal: PhantomData<fn() -> S>,
}

impl<S: OtlpSignal> Decoder for RequestDecoder<S> {
    type Item = Decoded<S::Request>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        // Keep the bytes: an unchanged batch is re-sent as is by OTLP exporters.
        let raw = src.copy_to_bytes(src.remaining());
        match otlp_wire::validate(S::KIND, &raw) {
            Ok(items) => Ok(Some(Decoded {
                raw,
                items,
                _message: PhantomData,
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
    reservation: Arc<Mutex<Reservation>>,
    _signal: PhantomData<fn() -> S>,
}

impl<S> ExportCall<S> {
    fn new(core: Arc<Core>, reservation: Arc<Mutex<Reservation>>) -> Self {
        ExportCall {
            core,
            reservation,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> UnaryService<Decoded<S::Request>> for ExportCall<S> {
    type Response = S::Response;
    type Future = BoxFuture<tonic::Response<S::Response>, Status>;

    fn call(&mut self, req: tonic::Request<Decoded<S::Request>>) -> Self::Future {
        let core = self.core.clone();
        let reservation = self.reservation.clone();
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
            let Decoded { raw, items, .. } = req.into_inner();
            let wire_bytes = lock(&reservation).wire_bytes;
            let result = core
                .deliver(
                    Incoming::Validated {
                        kind: S::KIND,
                        bytes: raw,
                        items,
                    },
                    client,
                    deadline,
                    wire_bytes,
                )
                .await;
            // The budget covers the data until the pipeline has answered.
            lock(&reservation).permits.clear();
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

    /// Declared lengths seen by a scan fed `chunks`.
    fn scan(chunks: &[&[u8]]) -> Vec<usize> {
        let mut scan = FrameScan::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            scan.feed::<()>(chunk, |len| {
                seen.push(len);
                Ok(())
            })
            .unwrap();
        }
        seen
    }

    #[test]
    fn frame_scan_finds_every_header_across_chunk_boundaries() {
        let mut stream = vec![0, 0, 0, 0, 3, b'a', b'b', b'c'];
        stream.extend_from_slice(&[1, 0, 0, 1, 0]);
        stream.extend(std::iter::repeat_n(7u8, 256));
        stream.extend_from_slice(&[0, 0, 0, 0, 0]); // an empty message
        stream.extend_from_slice(&[0, 0, 0, 0, 2, 9, 9]);
        // Whole, then cut at every position, then byte by byte.
        assert_eq!(scan(&[&stream]), [3, 256, 0, 2]);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(scan(&[a, b]), [3, 256, 0, 2], "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(scan(&bytes), [3, 256, 0, 2]);
        // A header still incomplete reports nothing yet.
        assert_eq!(scan(&[&[0, 0, 1]]), Vec::<usize>::new());
    }

    proptest::proptest! {
        /// Any sequence of messages, cut into any chunks: every declared
        /// length is reported once, in order.
        #[test]
        fn frame_scan_reports_every_length_however_chunked(
            lens in proptest::collection::vec(0usize..600, 0..8),
            cuts in proptest::collection::vec(1usize..700, 0..20),
        ) {
            let mut stream = Vec::new();
            for (i, &len) in lens.iter().enumerate() {
                stream.push((i % 2) as u8);
                stream.extend_from_slice(&(len as u32).to_be_bytes());
                stream.extend(std::iter::repeat_n(i as u8, len));
            }
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest = &stream[..];
            for cut in cuts {
                let (a, b) = rest.split_at(cut.min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            chunks.push(rest);
            proptest::prop_assert_eq!(scan(&chunks), lens);
        }
    }

    #[test]
    fn frame_scan_stops_at_the_first_refusal() {
        let mut scan = FrameScan::default();
        let stream = [0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 1, 6];
        let mut calls = 0;
        let r = scan.feed(&stream, |_| {
            calls += 1;
            Err("refused")
        });
        assert_eq!((r, calls), (Err("refused"), 1));
    }

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
