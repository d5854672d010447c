//! HTTP/1.1 pieces of the harness: a counting Loki push sink, a scrape
//! target serving a fixed exposition, and a minimal keep-alive client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::codec::loki_entries;

/// Largest push the Loki sink reads (compressed and decompressed).
const MAX_PUSH: usize = 64 << 20;

type Handler = Arc<dyn Fn(&Request<()>, Bytes) -> Response<Full<Bytes>> + Send + Sync>;

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// Serves HTTP/1.1 with keep-alive on `listener` until the future is dropped.
async fn serve(listener: tokio::net::TcpListener, handler: Handler) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = match Limited::new(body, MAX_PUSH).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(e) => {
                            return Ok::<_, Infallible>(respond(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                e.to_string(),
                            ))
                        }
                    };
                    Ok(handler(&Request::from_parts(parts, ()), body))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Nanoseconds since `epoch`, at least 1 (0 means "never").
fn stamp(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos().max(1) as u64
}

/// What the Loki sink has received.
#[derive(Debug)]
pub struct LokiStats {
    epoch: Instant,
    pub entries: AtomicU64,
    pub pushes: AtomicU64,
    /// Decompressed protobuf bytes.
    pub bytes: AtomicU64,
    pub malformed: AtomicU64,
    last_nanos: AtomicU64,
}

impl Default for LokiStats {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            entries: AtomicU64::new(0),
            pushes: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            last_nanos: AtomicU64::new(0),
        }
    }
}

impl LokiStats {
    pub fn last_push(&self) -> Option<Instant> {
        match self.last_nanos.load(Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n)),
        }
    }
}

/// Loki's push endpoint as the protobuf client sees it: `POST
/// /loki/api/v1/push`, raw snappy `logproto.PushRequest`, 204 on success,
/// 400 for a body Loki could not decode, 415 for a non-protobuf body.
fn loki_push(stats: &LokiStats, req: &Request<()>, body: Bytes) -> Response<Full<Bytes>> {
    if req.uri().path() != "/loki/api/v1/push" {
        return respond(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if req.method() != hyper::Method::POST {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let ctype = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype != "application/x-protobuf" {
        return respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("this sink takes only protobuf pushes, got {ctype:?}\n"),
        );
    }
    let decoded = snap::raw::decompress_len(&body)
        .ok()
        .filter(|n| *n <= MAX_PUSH)
        .and_then(|_| snap::raw::Decoder::new().decompress_vec(&body).ok());
    let Some(raw) = decoded else {
        stats.malformed.fetch_add(1, Relaxed);
        return respond(StatusCode::BAD_REQUEST, "snappy: corrupt input\n");
    };
    match loki_entries(&raw) {
        Ok(n) => {
            stats.entries.fetch_add(n, Relaxed);
            stats.pushes.fetch_add(1, Relaxed);
            stats.bytes.fetch_add(raw.len() as u64, Relaxed);
            stats.last_nanos.fetch_max(stamp(stats.epoch), Relaxed);
            respond(StatusCode::NO_CONTENT, Bytes::new())
        }
        Err(_) => {
            stats.malformed.fetch_add(1, Relaxed);
            respond(
                StatusCode::BAD_REQUEST,
                "proto: PushRequest: illegal wire format\n",
            )
        }
    }
}

/// Binds the Loki sink; returns its address and the serving future.
pub async fn bind_loki(
    stats: Arc<LokiStats>,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = anyhow::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handler: Handler = Arc::new(move |req, body| loki_push(&stats, req, body));
    Ok((addr, serve(listener, handler)))
}

/// Scrapes a target has served.
#[derive(Debug, Default)]
pub struct TargetStats {
    pub scrapes: AtomicU64,
}

/// A scrape target: `GET /metrics` answers `body` as the Prometheus text
/// format 0.0.4, uncompressed whatever the Accept-Encoding (allowed by
/// HTTP, and it keeps gzip out of both scrapers' figures).
pub async fn bind_target(
    body: Bytes,
    stats: Arc<TargetStats>,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = anyhow::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handler: Handler = Arc::new(move |req, _| {
        if req.uri().path() != "/metrics" {
            return respond(StatusCode::NOT_FOUND, "");
        }
        stats.scrapes.fetch_add(1, Relaxed);
        let mut r = respond(StatusCode::OK, body.clone());
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    });
    Ok((addr, serve(listener, handler)))
}

/// One keep-alive HTTP/1.1 connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// POSTs `body`; returns the status and up to 1 MiB of the answer.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = Request::post(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loki_sink_counts_entries_and_answers_like_loki() {
        let stats = Arc::new(LokiStats::default());
        let (addr, serve) = bind_loki(stats.clone()).await.unwrap();
        let task = tokio::spawn(serve);
        let mut c = Client::connect(addr).await.unwrap();
        // One stream with two entries: streams(1){labels(1), entries(2)×2}.
        let entry = [0x12u8, 2, b'h', b'i'];
        let mut stream = vec![0x0a, 5];
        stream.extend_from_slice(b"{a=1}");
        for _ in 0..2 {
            stream.push(0x12);
            stream.push(entry.len() as u8);
            stream.extend_from_slice(&entry);
        }
        let mut push = vec![0x0a, stream.len() as u8];
        push.extend_from_slice(&stream);
        let body = snap::raw::Encoder::new().compress_vec(&push).unwrap();
        let (status, _) = c
            .post(
                "/loki/api/v1/push",
                "application/x-protobuf",
                body.clone().into(),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(stats.entries.load(Relaxed), 2);
        let (status, _) = c
            .post(
                "/loki/api/v1/push",
                "application/x-protobuf",
                Bytes::from_static(b"not snappy"),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = c
            .post("/loki/api/v1/push", "application/json", body.into())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(stats.entries.load(Relaxed), 2);
        assert_eq!(stats.malformed.load(Relaxed), 1);
        task.abort();
    }
}
