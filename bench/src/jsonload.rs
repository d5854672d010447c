//! NDJSON load for the jsonlog receiver: structlog-shaped lines, pre-built
//! into request bodies, POSTed over keep-alive HTTP/1.1 connections.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::Client;
use crate::load::TokenBucket;

const LOGGERS: [&str; 4] = ["app.http", "app.db", "app.payments", "app.worker"];
const EVENTS: [&str; 5] = [
    "request finished",
    "query executed",
    "payment authorised",
    "cache miss",
    "job completed",
];
const PATHS: [&str; 4] = [
    "/api/v1/orders",
    "/api/v1/users/me",
    "/api/v1/cart/items",
    "/api/v1/checkout",
];

/// One line as structlog's `JSONRenderer` writes it after `merge_contextvars`,
/// `add_log_level`, `add_logger_name` and `TimeStamper(fmt="iso", utc=True)`:
/// about 300 bytes.
pub fn structlog_line(out: &mut String, rng: &mut fastrand::Rng, now_us: u64) {
    let level = match rng.u8(..) {
        0..=219 => "info",
        220..=244 => "warning",
        245..=250 => "error",
        _ => "debug",
    };
    let ts = now_us - rng.u64(0..2_000_000);
    let (secs, micros) = (ts / 1_000_000, ts % 1_000_000);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let _ = writeln!(
        out,
        "{{\"timestamp\": \"2026-11-26T{h:02}:{m:02}:{s:02}.{micros:06}Z\", \"level\": \"{level}\", \
         \"event\": \"{event}\", \"logger\": \"{logger}\", \
         \"request_id\": \"{a:08x}-{b:04x}-4{c:03x}-a{d:03x}-{e:012x}\", \
         \"user_id\": {user}, \"path\": \"{path}\", \"method\": \"GET\", \"status\": {status}, \
         \"duration_ms\": {dur}.{dur_frac}, \"client_ip\": \"10.{o2}.{o3}.{o4}\"}}",
        event = EVENTS[rng.usize(..EVENTS.len())],
        logger = LOGGERS[rng.usize(..LOGGERS.len())],
        a = rng.u32(..),
        b = rng.u16(..),
        c = rng.u16(..0x1000),
        d = rng.u16(..0x1000),
        e = rng.u64(..1 << 48),
        user = rng.u32(1..1_000_000),
        path = PATHS[rng.usize(..PATHS.len())],
        status = [200, 200, 200, 201, 404, 500][rng.usize(..6)],
        dur = rng.u32(0..900),
        dur_frac = rng.u8(0..100),
        o2 = rng.u8(..),
        o3 = rng.u8(..),
        o4 = rng.u8(1..255),
    );
}

/// `pool` distinct NDJSON bodies of `lines` lines each.
pub fn build_bodies(lines: usize, pool: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1_800_000_000_000_000, |d| d.as_micros() as u64);
    (0..pool.max(1))
        .map(|_| {
            let mut s = String::with_capacity(lines * 320);
            for _ in 0..lines {
                structlog_line(&mut s, &mut rng, now_us);
            }
            Bytes::from(s)
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct JsonLoadConfig {
    pub target: SocketAddr,
    pub path: String,
    pub lines_per_request: usize,
    /// Lines per second over all connections; 0 = as fast as possible.
    pub rate: u64,
    pub duration: Duration,
    pub connections: usize,
    pub pool: usize,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct JsonLoadReport {
    pub requests_ok: u64,
    /// Lines the receiver said it accepted.
    pub lines_accepted: u64,
    pub lines_rejected: u64,
    pub bytes_sent: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub line_bytes_avg: f64,
}

impl JsonLoadReport {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "lines_accepted": self.lines_accepted,
            "lines_rejected": self.lines_rejected,
            "requests_ok": self.requests_ok,
            "bytes_sent": self.bytes_sent,
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "line_bytes_avg": self.line_bytes_avg,
        })
    }
}

/// Runs the load: each connection sends one request at a time.
pub async fn run(cfg: &JsonLoadConfig) -> anyhow::Result<JsonLoadReport> {
    anyhow::ensure!(cfg.connections > 0, "need at least one connection");
    anyhow::ensure!(cfg.lines_per_request > 0, "lines per request must be > 0");
    let bodies: Arc<[Bytes]> =
        build_bodies(cfg.lines_per_request, cfg.pool, fastrand::u64(..)).into();
    let total_bytes: usize = bodies.iter().map(Bytes::len).sum();
    let line_bytes_avg = total_bytes as f64 / (bodies.len() * cfg.lines_per_request) as f64 - 1.0;
    let accepted = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let requests_ok = Arc::new(AtomicU64::new(0));
    let bytes_ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let n = cfg.lines_per_request as f64;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = Vec::new();
    for w in 0..cfg.connections {
        let mut client = Client::connect(cfg.target).await?;
        let bodies = bodies.clone();
        let (accepted, rejected, requests_ok, bytes_ok, errors) = (
            accepted.clone(),
            rejected.clone(),
            requests_ok.clone(),
            bytes_ok.clone(),
            errors.clone(),
        );
        let path = cfg.path.clone();
        let timeout = cfg.timeout;
        let target = cfg.target;
        let mut bucket = (cfg.rate > 0).then(|| {
            let rate = cfg.rate as f64 / cfg.connections as f64;
            TokenBucket::new(
                rate,
                (2.0 * n).max(rate * 0.05),
                n * (cfg.connections - w) as f64 / cfg.connections as f64,
            )
        });
        let workers = cfg.connections;
        tasks.push(tokio::spawn(async move {
            let error = |kind: String| {
                *errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(kind)
                    .or_default() += 1
            };
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
                let body = bodies[i % bodies.len()].clone();
                i += workers;
                let len = body.len() as u64;
                match tokio::time::timeout(
                    timeout,
                    client.post(&path, "application/x-ndjson", body),
                )
                .await
                {
                    Ok(Ok((status, answer))) if status.is_success() => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&answer).unwrap_or_default();
                        accepted.fetch_add(v["accepted"].as_u64().unwrap_or(0), Relaxed);
                        rejected.fetch_add(v["rejected"].as_u64().unwrap_or(0), Relaxed);
                        requests_ok.fetch_add(1, Relaxed);
                        bytes_ok.fetch_add(len, Relaxed);
                    }
                    Ok(Ok((status, _))) => error(format!("HTTP {}", status.as_u16())),
                    Ok(Err(e)) => {
                        error(format!("{e}"));
                        // The connection may be dead: open a new one.
                        match Client::connect(target).await {
                            Ok(c) => client = c,
                            Err(_) => break,
                        }
                    }
                    Err(_) => {
                        error("ClientTimeout".into());
                        match Client::connect(target).await {
                            Ok(c) => client = c,
                            Err(_) => break,
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let errors = errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(JsonLoadReport {
        requests_ok: requests_ok.load(Relaxed),
        lines_accepted: accepted.load(Relaxed),
        lines_rejected: rejected.load(Relaxed),
        bytes_sent: bytes_ok.load(Relaxed),
        errors,
        elapsed: start.elapsed(),
        line_bytes_avg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_structlog_json_of_about_300_bytes() {
        let bodies = build_bodies(200, 2, 5);
        let mut total = 0;
        for body in bodies.iter() {
            for line in std::str::from_utf8(body).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                for k in ["timestamp", "level", "event", "logger", "request_id"] {
                    assert!(v[k].is_string(), "{k} in {line}");
                }
                assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
                total += line.len();
            }
        }
        let avg = total as f64 / 400.0;
        assert!((270.0..330.0).contains(&avg), "average line {avg} bytes");
    }
}
