//! A stand-in for confluo used to self-test the harness (and as a floor for
//! what a zero-processing tonic pass-through costs): forwards OTLP/gRPC trace
//! requests byte-for-byte, serves /health/ready and /metrics. It reads only
//! the three addresses from a config written by `run`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, Body, BoxFuture, Context as TaskContext, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::codec::{Signal, Traces};

/// Bytes in, bytes out.
#[derive(Default)]
struct PassCodec;
struct PassEncoder;
struct PassDecoder;

impl Encoder for PassEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PassDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

impl Codec for PassCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = PassEncoder;
    type Decoder = PassDecoder;
    fn encoder(&mut self) -> PassEncoder {
        PassEncoder
    }
    fn decoder(&mut self) -> PassDecoder {
        PassDecoder
    }
}

#[derive(Default)]
struct Stats {
    received: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
}

#[derive(Clone)]
struct Relay {
    channel: Channel,
    stats: Arc<Stats>,
}

impl NamedService for Relay {
    const NAME: &'static str = Traces::SERVICE;
}

struct Forward(Relay);

impl UnaryService<Bytes> for Forward {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, Status>;
    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let relay = self.0.clone();
        Box::pin(async move {
            let body = request.into_inner();
            let spans = Traces::count(&body).map_err(|_| Status::invalid_argument("malformed"))?;
            relay.stats.received.fetch_add(spans, Relaxed);
            let mut grpc = tonic::client::Grpc::new(relay.channel);
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let result = grpc
                .unary(
                    tonic::Request::new(body),
                    PathAndQuery::from_static(Traces::PATH),
                    PassCodec,
                )
                .await;
            match &result {
                Ok(_) => relay.stats.sent.fetch_add(spans, Relaxed),
                Err(_) => relay.stats.failed.fetch_add(spans, Relaxed),
            };
            result
        })
    }
}

impl<B> Service<http::Request<B>> for Relay
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let relay = self.clone();
        Box::pin(async move {
            if req.uri().path() != Traces::PATH {
                let mut response = http::Response::new(tonic::body::Body::default());
                response.headers_mut().insert(
                    Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                return Ok(response);
            }
            Ok(tonic::server::Grpc::new(PassCodec)
                .unary(Forward(relay), req)
                .await)
        })
    }
}

/// (receiver, exporter, telemetry) from a config written by `run`: the first
/// `endpoint:` is the receiver's, the second the exporter's.
fn addresses(config: &str) -> anyhow::Result<(SocketAddr, SocketAddr, SocketAddr)> {
    let value = |key: &str, nth: usize| -> anyhow::Result<SocketAddr> {
        config
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .nth(nth)
            .with_context(|| format!("no {key} #{nth} in config"))?
            .trim()
            .parse()
            .context("bad address")
    };
    Ok((
        value("endpoint:", 0)?,
        value("endpoint:", 1)?,
        value("address:", 0)?,
    ))
}

async fn serve_http(listener: tokio::net::TcpListener, stats: Arc<Stats>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => n += k,
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/health/ready" | "/health/live" => ("200 OK", "ok\n".to_string()),
                "/metrics" => (
                    "200 OK",
                    format!(
                        "otelcol_receiver_accepted_spans{{receiver=\"otlp\",transport=\"grpc\"}} {}\n\
                         otelcol_exporter_sent_spans{{exporter=\"otlp_grpc\"}} {}\n\
                         otelcol_exporter_send_failed_spans{{exporter=\"otlp_grpc\"}} {}\n",
                        stats.received.load(Relaxed),
                        stats.sent.load(Relaxed),
                        stats.failed.load(Relaxed)
                    ),
                ),
                _ => ("404 Not Found", String::new()),
            };
            let resp = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

pub async fn relay(config: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let (receiver, exporter, telemetry) = addresses(&text)?;
    let stats = Arc::new(Stats::default());
    let channel = Endpoint::from_shared(format!("http://{exporter}"))?
        .tcp_nodelay(true)
        .connect_lazy();
    let relay = Relay {
        channel,
        stats: stats.clone(),
    };
    let grpc = tokio::net::TcpListener::bind(receiver).await?;
    let http = tokio::net::TcpListener::bind(telemetry).await?;
    tokio::spawn(serve_http(http, stats));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tonic::transport::Server::builder()
        .add_service(relay)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            async move {
                term.recv().await;
            },
        )
        .await?;
    Ok(())
}
