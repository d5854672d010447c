//! A counting OTLP/gRPC backend: accepts traces, metrics and logs, counts the
//! items and answers OK immediately.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use tonic::codec::CompressionEncoding;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;

use crate::codec::{CountCodec, Counted, Logs, Metrics, Signal, Traces};

/// Largest request the sink accepts (uncompressed).
const MAX_MESSAGE: usize = 64 << 20;

/// Counters shared between the sink's services and whoever reads them.
#[derive(Debug)]
pub struct SinkStats {
    started: Instant,
    pub spans: AtomicU64,
    pub points: AtomicU64,
    pub records: AtomicU64,
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    /// Nanoseconds after `started` of the last accepted request (0 = none).
    last_nanos: AtomicU64,
}

impl Default for SinkStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            spans: AtomicU64::new(0),
            points: AtomicU64::new(0),
            records: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_nanos: AtomicU64::new(0),
        }
    }
}

impl SinkStats {
    /// When the last request arrived, if any did.
    pub fn last_request(&self) -> Option<Instant> {
        match self.last_nanos.load(Relaxed) {
            0 => None,
            n => Some(self.started + std::time::Duration::from_nanos(n)),
        }
    }

    fn record(&self, counter: &AtomicU64, c: &Counted) {
        counter.fetch_add(c.items, Relaxed);
        self.requests.fetch_add(1, Relaxed);
        self.bytes.fetch_add(c.bytes, Relaxed);
        let now = self.started.elapsed().as_nanos().max(1) as u64;
        self.last_nanos.fetch_max(now, Relaxed);
    }

    pub fn summary(&self) -> String {
        format!(
            "spans={} points={} records={} requests={} bytes={}",
            self.spans.load(Relaxed),
            self.points.load(Relaxed),
            self.records.load(Relaxed),
            self.requests.load(Relaxed),
            self.bytes.load(Relaxed),
        )
    }
}

trait Counter: Signal {
    fn counter(stats: &SinkStats) -> &AtomicU64;
}
impl Counter for Traces {
    fn counter(stats: &SinkStats) -> &AtomicU64 {
        &stats.spans
    }
}
impl Counter for Metrics {
    fn counter(stats: &SinkStats) -> &AtomicU64 {
        &stats.points
    }
}
impl Counter for Logs {
    fn counter(stats: &SinkStats) -> &AtomicU64 {
        &stats.records
    }
}

/// A tonic service for one signal's `Export` method using the counting codec.
struct RawSink<S> {
    stats: Arc<SinkStats>,
    _s: PhantomData<fn() -> S>,
}

impl<S> Clone for RawSink<S> {
    fn clone(&self) -> Self {
        Self {
            stats: self.stats.clone(),
            _s: PhantomData,
        }
    }
}

impl<S: Signal> NamedService for RawSink<S> {
    const NAME: &'static str = S::SERVICE;
}

struct Export<S>(Arc<SinkStats>, PhantomData<fn() -> S>);

impl<S: Counter> UnaryService<Counted> for Export<S> {
    type Response = ();
    type Future = std::future::Ready<Result<tonic::Response<()>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<Counted>) -> Self::Future {
        self.0.record(S::counter(&self.0), request.get_ref());
        std::future::ready(Ok(tonic::Response::new(())))
    }
}

impl<S: Counter, B> Service<http::Request<B>> for RawSink<S>
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == S::PATH {
            let stats = self.stats.clone();
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(CountCodec::<S>::default())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .max_decoding_message_size(MAX_MESSAGE);
                Ok(grpc.unary(Export::<S>(stats, PhantomData), req).await)
            })
        } else {
            Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    tonic::Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            })
        }
    }
}

/// Binds the sink. Returns the bound address and a future that serves until
/// dropped or failed.
pub async fn bind(
    listen: SocketAddr,
    stats: Arc<SinkStats>,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = anyhow::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let traces = RawSink::<Traces> {
        stats: stats.clone(),
        _s: PhantomData,
    };
    let metrics = RawSink::<Metrics> {
        stats: stats.clone(),
        _s: PhantomData,
    };
    let logs = RawSink::<Logs> {
        stats: stats.clone(),
        _s: PhantomData,
    };
    let serve = async move {
        tonic::transport::Server::builder()
            .add_service(traces)
            .add_service(metrics)
            .add_service(logs)
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    };
    Ok((addr, serve))
}
