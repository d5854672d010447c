//! OTLP/gRPC trace load generator: pre-encoded requests, a token bucket per
//! sender, several HTTP/2 connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::codec::RawRequestCodec;
use crate::gen::{build_pool, build_pool_entries, PoolEntry, Shape};

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A token bucket driven by an explicit clock, so its arithmetic is testable.
/// Tokens are spans. `reserve` always grants the tokens and says how long the
/// caller must wait before using them (the balance may go negative).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, initial: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: initial.min(burst),
            last: Duration::ZERO,
        }
    }

    /// Takes `n` tokens at time `now` (since the bucket's epoch) and returns the
    /// delay after which they are covered.
    pub fn reserve(&mut self, now: Duration, n: f64) -> Duration {
        if now > self.last {
            let dt = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
            self.last = now;
        }
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: SocketAddr,
    pub shape: Shape,
    /// Spans per second over all senders; 0 = as fast as possible.
    pub rate: u64,
    pub duration: Duration,
    pub connections: usize,
    /// Concurrent requests per connection.
    pub inflight: usize,
    /// Distinct pre-encoded requests.
    pub pool: usize,
    pub timeout: Duration,
    /// Give every trace of every request a fresh random id (an unbounded id
    /// pool), for stateful processors keyed by trace id.
    pub fresh_trace_ids: bool,
    /// With fresh ids: the tail-sampling decision to predict per trace.
    pub sampling: Option<SamplingModel>,
}

/// The decision of a `tail_sampling` processor with two policies, a
/// `status_code: [ERROR]` one (when `keep_errors`) and a `probabilistic` one
/// (FNV-1a 64 of salt then trace id ≤ threshold, the Collector's hash), so
/// the run knows how many spans the sink must receive.
#[derive(Debug, Clone)]
pub struct SamplingModel {
    pub salt: Vec<u8>,
    pub percentage: f64,
    pub keep_errors: bool,
}

impl SamplingModel {
    fn threshold(&self) -> u64 {
        let ratio = self.percentage / 100.0;
        if ratio >= 1.0 {
            u64::MAX
        } else if ratio <= 0.0 {
            0
        } else {
            (u64::MAX as f64 * ratio) as u64
        }
    }

    pub fn sampled(&self, trace_id: &[u8], error: bool) -> bool {
        (self.keep_errors && error) || fnv1a(&self.salt, trace_id) <= self.threshold()
    }
}

fn fnv1a(salt: &[u8], id: &[u8]) -> u64 {
    salt.iter().chain(id).fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[derive(Debug, Default)]
struct Counters {
    requests_ok: AtomicU64,
    spans_ok: AtomicU64,
    spans_rejected: AtomicU64,
    spans_failed: AtomicU64,
    bytes_ok: AtomicU64,
    sampled_expected: AtomicU64,
    traces_ok: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn error(&self, kind: String, spans: u64) {
        self.spans_failed.fetch_add(spans, Relaxed);
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests_ok: u64,
    /// Spans acknowledged by the target (minus partial-success rejections).
    pub spans_sent: u64,
    pub spans_rejected: u64,
    pub spans_failed: u64,
    pub bytes_sent: u64,
    /// Failed requests by gRPC code.
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub request_bytes_avg: u64,
    /// Traces in acknowledged requests (fresh-id runs only).
    pub traces_sent: u64,
    /// Spans the sampling model keeps out of the acknowledged ones.
    pub spans_expected_sampled: Option<u64>,
}

impl LoadReport {
    pub fn spans_per_sec(&self) -> f64 {
        self.spans_sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn print(&self) {
        println!(
            "load: {} spans acknowledged in {} requests over {:.2}s = {:.0} spans/s, {:.1} MiB/s ({} B/request)",
            self.spans_sent,
            self.requests_ok,
            self.elapsed.as_secs_f64(),
            self.spans_per_sec(),
            self.bytes_sent as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1048576.0,
            self.request_bytes_avg,
        );
        if self.spans_rejected > 0 {
            println!(
                "load: {} spans rejected (partial success)",
                self.spans_rejected
            );
        }
        if !self.errors.is_empty() {
            println!(
                "load: {} failed requests ({} spans): {:?}",
                self.error_count(),
                self.spans_failed,
                self.errors
            );
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "spans_sent": self.spans_sent,
            "requests_ok": self.requests_ok,
            "spans_rejected": self.spans_rejected,
            "spans_failed": self.spans_failed,
            "bytes_sent": self.bytes_sent,
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "spans_per_sec": self.spans_per_sec(),
            "traces_sent": self.traces_sent,
            "spans_expected_sampled": self.spans_expected_sampled,
        })
    }
}

async fn connect(target: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{target}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// Runs the load to completion: stops starting requests at `duration` and
/// waits for the ones in flight.
pub async fn run(cfg: &LoadConfig) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(
        cfg.connections > 0 && cfg.inflight > 0,
        "need at least one sender"
    );
    anyhow::ensure!(
        cfg.shape.spans_per_request > 0,
        "spans per request must be > 0"
    );
    let seed = fastrand::u64(..);
    let entries: Arc<[PoolEntry]> = if cfg.fresh_trace_ids {
        build_pool_entries(cfg.shape, cfg.pool, seed)?.into()
    } else {
        Arc::new([])
    };
    let pool: Arc<[Bytes]> = if cfg.fresh_trace_ids {
        entries.iter().map(|e| e.bytes.clone()).collect()
    } else {
        build_pool(cfg.shape, cfg.pool, seed).into()
    };
    let request_bytes_avg = pool.iter().map(|b| b.len() as u64).sum::<u64>() / pool.len() as u64;
    let sampling = Arc::new(cfg.sampling.clone());
    let mut channels = Vec::with_capacity(cfg.connections);
    for _ in 0..cfg.connections {
        channels.push(connect(cfg.target).await?);
    }
    let counters = Arc::new(Counters::default());
    let workers = cfg.connections * cfg.inflight;
    let n = cfg.shape.spans_per_request as f64;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let channel = channels[w % cfg.connections].clone();
        let pool = pool.clone();
        let entries = entries.clone();
        let sampling = sampling.clone();
        let mut rng =
            fastrand::Rng::with_seed(seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let counters = counters.clone();
        let timeout = cfg.timeout;
        // Per-sender bucket. A sender that fell behind (slow response) may
        // catch up by at most 50 ms worth of requests. The first requests are
        // staggered across one interval.
        let mut bucket = (cfg.rate > 0).then(|| {
            let rate = cfg.rate as f64 / workers as f64;
            TokenBucket::new(
                rate,
                (2.0 * n).max(rate * 0.05),
                n * (workers - w) as f64 / workers as f64,
            )
        });
        tasks.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            let path = PathAndQuery::from_static(TRACE_EXPORT);
            let mut i = w;
            loop {
                if let Some(b) = bucket.as_mut() {
                    let wait = b.reserve(start.elapsed(), n);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
                let (mut traces, mut kept) = (0u64, 0u64);
                let body = if entries.is_empty() {
                    pool[i % pool.len()].clone()
                } else {
                    entries[i % entries.len()].with_fresh_ids(&mut rng, |id, slot| {
                        traces += 1;
                        if sampling
                            .as_ref()
                            .as_ref()
                            .is_some_and(|m| m.sampled(id, slot.error))
                        {
                            kept += slot.offsets.len() as u64;
                        }
                    })
                };
                i += workers;
                let len = body.len() as u64;
                let spans = n as u64;
                let call = async {
                    grpc.ready()
                        .await
                        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                    grpc.unary(
                        tonic::Request::new(body),
                        path.clone(),
                        RawRequestCodec::<ExportTraceServiceResponse>::default(),
                    )
                    .await
                };
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(resp)) => {
                        let rejected = resp
                            .get_ref()
                            .partial_success
                            .as_ref()
                            .map_or(0, |p| p.rejected_spans.max(0) as u64)
                            .min(spans);
                        counters.requests_ok.fetch_add(1, Relaxed);
                        counters.spans_ok.fetch_add(spans - rejected, Relaxed);
                        counters.spans_rejected.fetch_add(rejected, Relaxed);
                        counters.bytes_ok.fetch_add(len, Relaxed);
                        counters.traces_ok.fetch_add(traces, Relaxed);
                        // A partial rejection would make the prediction
                        // unknowable; the run reports rejections anyway.
                        counters.sampled_expected.fetch_add(kept, Relaxed);
                    }
                    Ok(Err(status)) => counters.error(format!("{:?}", status.code()), spans),
                    Err(_) => counters.error("ClientTimeout".into(), spans),
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed();
    let errors = counters
        .errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(LoadReport {
        requests_ok: counters.requests_ok.load(Relaxed),
        spans_sent: counters.spans_ok.load(Relaxed),
        spans_rejected: counters.spans_rejected.load(Relaxed),
        spans_failed: counters.spans_failed.load(Relaxed),
        bytes_sent: counters.bytes_ok.load(Relaxed),
        errors,
        elapsed,
        request_bytes_avg,
        traces_sent: counters.traces_ok.load(Relaxed),
        spans_expected_sampled: cfg
            .sampling
            .as_ref()
            .map(|_| counters.sampled_expected.load(Relaxed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn bucket_spaces_requests_at_the_configured_rate() {
        // 1000 spans/s, 100-span requests → one request per 100 ms.
        let mut b = TokenBucket::new(1000.0, 200.0, 100.0);
        assert_eq!(b.reserve(ms(0), 100.0), Duration::ZERO);
        assert_eq!(b.reserve(ms(0), 100.0), ms(100));
        // The caller slept 100 ms: the next one is again 100 ms away.
        assert_eq!(b.reserve(ms(100), 100.0), ms(100));
    }

    #[test]
    fn sampling_model_uses_the_collectors_fnv_hash() {
        // FNV-1a 64 test vectors: "" and "a".
        assert_eq!(fnv1a(b"", b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"", b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"a", b""), fnv1a(b"", b"a"));
        let m = SamplingModel {
            salt: b"default-hash-seed".to_vec(),
            percentage: 10.0,
            keep_errors: true,
        };
        let mut rng = fastrand::Rng::with_seed(3);
        let kept = (0..100_000)
            .filter(|_| m.sampled(&rng.u128(..).to_le_bytes(), false))
            .count();
        assert!((9_500..10_500).contains(&kept), "{kept}");
        assert!(m.sampled(&[7; 16], true));
    }

    #[test]
    fn bucket_caps_idle_credit_at_burst() {
        let mut b = TokenBucket::new(1000.0, 200.0, 0.0);
        // A long stall earns at most `burst` tokens: two requests, then waits.
        assert_eq!(b.reserve(ms(10_000), 100.0), Duration::ZERO);
        assert_eq!(b.reserve(ms(10_000), 100.0), Duration::ZERO);
        assert_eq!(b.reserve(ms(10_000), 100.0), ms(100));
    }

    #[test]
    fn simulated_sender_achieves_the_rate() {
        // 25,000 spans/s per sender, sleeping exactly as told (plus 1 ms of
        // send time per request, less than the 4 ms interval).
        let mut b = TokenBucket::new(25_000.0, 200.0, 0.0);
        let mut now = Duration::ZERO;
        let mut sent = 0u64;
        while now < Duration::from_secs(10) {
            now += b.reserve(now, 100.0);
            sent += 100;
            now += ms(1);
        }
        let rate = sent as f64 / now.as_secs_f64();
        assert!((rate - 25_000.0).abs() / 25_000.0 < 0.01, "rate {rate}");
    }
}
