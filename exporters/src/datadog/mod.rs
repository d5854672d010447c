//! The `datadog` exporter: metrics to Datadog's series (v2 or v1) and
//! sketches APIs, logs to the logs intake v2, traces to the trace intake
//! (`/api/v0.2/traces` + APM stats) or to a local Agent (`/v0.4/traces`).
//!
//! Layout: `config` (options), `payload` (one request: encoded parts in an
//! envelope, so it merges at dequeue and splits on 413), `metrics`, `logs`
//! and `traces` (OTLP → Datadog conversion and encoding, one per signal),
//! and here the factory plus the one [`Sender`] that posts any request and
//! reads Datadog's answer the same way for every endpoint:
//! 2xx sent; 413 split in two and resent; 400/401/403 permanent with the
//! reason counted; 408/429/5xx retried (`Retry-After` honoured).

pub mod attributes;
pub mod config;
pub mod logs;
pub mod metrics;
pub mod payload;
pub mod traces;

#[cfg(test)]
mod tests;

pub use config::DatadogConfig;
pub use payload::{DatadogRequest, Framing, Route};

use crate::util::{cap_text, check_with, http_error, load_with, retry_after, USER_AGENT};
use async_trait::async_trait;
use bytes::Bytes;
use config::MetricsCompression;
use confluo_config::{ConfigError, Node};
use confluo_pipeline::exporter_helper::{HelperSettings, QueuedExporter, SendOutcome, Sender};
use confluo_pipeline::http_client::HttpClient;
use confluo_pipeline::telemetry::Counter;
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, Exporter, ExporterFactory, Signal, SignalSet,
    Stability,
};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT as UA};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Datadog's answers are short JSON documents; more is cut.
const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// A 413 halves the request; this many halvings at most (2^12 parts).
const MAX_SPLIT_DEPTH: u32 = 12;

static DD_API_KEY: HeaderName = HeaderName::from_static("dd-api-key");

/// Factory of `datadog` (traces, metrics, logs).
pub struct DatadogFactory;

fn validate(cfg: &DatadogConfig, node: &Node) -> Vec<ConfigError> {
    cfg.validate(node)
}

impl ExporterFactory for DatadogFactory {
    fn type_name(&self) -> &'static str {
        "datadog"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<DatadogConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: DatadogConfig = load_with(node, validate)?;
        let sender = DatadogSender::new(&cfg, &ctx)?;
        let settings = HelperSettings::new(&cfg.timeout, &cfg.retry_on_failure, &cfg.sending_queue);
        Ok(Arc::new(QueuedExporter::new(
            &ctx, sender, settings, signals,
        )?))
    }
}

/// This machine's host name, the fallback `host` of every payload.
pub fn detect_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Body compression of one route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    /// gzip at a level 1–9.
    Gzip(u32),
    /// zlib (HTTP `deflate`).
    Deflate,
    /// Datadog's `zstd1`.
    Zstd1,
}

impl BodyEncoding {
    fn header(self) -> Option<&'static str> {
        match self {
            BodyEncoding::Identity => None,
            BodyEncoding::Gzip(_) => Some("gzip"),
            BodyEncoding::Deflate => Some("deflate"),
            BodyEncoding::Zstd1 => Some("zstd1"),
        }
    }

    pub fn encode(self, body: Vec<u8>) -> Vec<u8> {
        match self {
            BodyEncoding::Identity => body,
            BodyEncoding::Gzip(level) => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4 + 64),
                    flate2::Compression::new(level),
                );
                // Writing into a Vec cannot fail.
                let _ = enc.write_all(&body);
                enc.finish().unwrap_or_default()
            }
            BodyEncoding::Deflate => {
                let mut enc = flate2::write::ZlibEncoder::new(
                    Vec::with_capacity(body.len() / 4 + 64),
                    flate2::Compression::new(6),
                );
                let _ = enc.write_all(&body);
                enc.finish().unwrap_or_default()
            }
            BodyEncoding::Zstd1 => confluo_pipeline::compression::zstd(&body),
        }
    }
}

/// Where each route goes and how its body is compressed.
struct Endpoints {
    metrics_base: String,
    logs_base: String,
    traces_base: String,
    metrics_encoding: BodyEncoding,
    logs_encoding: BodyEncoding,
}

impl Endpoints {
    fn new(cfg: &DatadogConfig) -> Endpoints {
        Endpoints {
            metrics_base: cfg.metrics_base(),
            logs_base: cfg.logs_base(),
            traces_base: cfg.traces_base(),
            metrics_encoding: match cfg.metrics.compression {
                MetricsCompression::Deflate => BodyEncoding::Deflate,
                MetricsCompression::Gzip => BodyEncoding::Gzip(6),
                MetricsCompression::Zstd1 => BodyEncoding::Zstd1,
                MetricsCompression::None => BodyEncoding::Identity,
            },
            logs_encoding: if cfg.logs.use_compression {
                BodyEncoding::Gzip(cfg.logs.compression_level)
            } else {
                BodyEncoding::Identity
            },
        }
    }

    fn base(&self, route: Route) -> &str {
        match route {
            Route::SeriesV2 | Route::SeriesV1 | Route::Sketches => &self.metrics_base,
            Route::Logs => &self.logs_base,
            Route::TracesIntake | Route::TracesAgent | Route::StatsIntake | Route::StatsAgent => {
                &self.traces_base
            }
        }
    }

    fn encoding(&self, route: Route) -> BodyEncoding {
        match route {
            Route::SeriesV2 | Route::SeriesV1 | Route::Sketches => self.metrics_encoding,
            Route::Logs => self.logs_encoding,
            Route::TracesIntake | Route::StatsIntake => BodyEncoding::Gzip(6),
            // A local Agent: no point spending CPU on loopback.
            Route::TracesAgent | Route::StatsAgent => BodyEncoding::Identity,
        }
    }
}

/// Why Datadog refused something for good: the label of
/// `otelcol_exporter_datadog_rejected_items`.
pub const REASONS: &[&str] = &[
    "bad_request",
    "unauthorized",
    "forbidden",
    "too_large",
    "other",
];

fn reason_of(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        413 => "too_large",
        _ => "other",
    }
}

/// Encodes batches per signal and posts them.
pub struct DatadogSender {
    client: HttpClient,
    api_key: HeaderValue,
    endpoints: Endpoints,
    /// One URL per route, built once.
    urls: Vec<(Route, Uri)>,
    metrics: metrics::MetricsEncoder,
    logs: logs::LogsEncoder,
    traces: traces::TracesEncoder,
    /// `otelcol_exporter_datadog_rejected_items{exporter, reason}`.
    rejected: Vec<(&'static str, Counter)>,
    id: String,
}

impl DatadogSender {
    pub fn new(
        cfg: &DatadogConfig,
        ctx: &ComponentContext,
    ) -> Result<DatadogSender, ComponentError> {
        let id = ctx.id.to_string();
        let fail = |e: String| ComponentError::start(format!("{id}: {e}"));
        let client = HttpClient::new(&cfg.tls).map_err(|e| fail(e.to_string()))?;
        let mut api_key = HeaderValue::from_str(cfg.api.key.expose().trim())
            .map_err(|_| fail("api.key contains characters not allowed in a header".into()))?;
        api_key.set_sensitive(true);
        let endpoints = Endpoints::new(cfg);
        let mut urls = Vec::new();
        for route in [
            Route::SeriesV2,
            Route::SeriesV1,
            Route::Sketches,
            Route::Logs,
            Route::TracesIntake,
            Route::TracesAgent,
            Route::StatsIntake,
            Route::StatsAgent,
        ] {
            let url = config::join_url(endpoints.base(route), route.path()).map_err(&fail)?;
            urls.push((route, url));
        }
        let hostname = cfg.hostname.clone().unwrap_or_else(detect_hostname);
        let rejected = REASONS
            .iter()
            .map(|r| {
                (
                    *r,
                    ctx.telemetry.counter(
                        "otelcol_exporter_datadog_rejected_items",
                        "Items (points, log records, spans) Datadog refused for good, by reason.",
                        &[("exporter", id.as_str()), ("reason", r)],
                    ),
                )
            })
            .collect();
        Ok(DatadogSender {
            client,
            api_key,
            metrics: metrics::MetricsEncoder::new(cfg, &hostname).map_err(&fail)?,
            logs: logs::LogsEncoder::new(cfg, &hostname).map_err(&fail)?,
            traces: traces::TracesEncoder::new(cfg, &hostname).map_err(&fail)?,
            endpoints,
            urls,
            rejected,
            id,
        })
    }

    fn url(&self, route: Route) -> &Uri {
        // Every route was inserted in `new`.
        &self
            .urls
            .iter()
            .find(|(r, _)| *r == route)
            .expect("a URL per route")
            .1
    }

    fn count_rejected(&self, reason: &str, n: usize) {
        if let Some((_, c)) = self.rejected.iter().find(|(r, _)| *r == reason) {
            c.add(n as u64);
        }
    }

    fn headers(&self, request: &DatadogRequest, encoding: BodyEncoding) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(DD_API_KEY.clone(), self.api_key.clone());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(request.route.content_type()),
        );
        if let Some(e) = encoding.header() {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        h.insert(UA, HeaderValue::from_static(USER_AGENT));
        self.traces.route_headers(request, &mut h);
        h
    }

    /// One HTTP attempt for one request.
    async fn attempt(&self, request: &DatadogRequest) -> Attempt {
        let encoding = self.endpoints.encoding(request.route);
        let body = Bytes::from(encoding.encode(request.body()));
        let headers = self.headers(request, encoding);
        let resp = match self
            .client
            .request(
                request.route.method(),
                self.url(request.route),
                &headers,
                body,
                MAX_RESPONSE_BYTES,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    error: e.to_string(),
                    retry_after: None,
                }
            }
        };
        let status = resp.status.as_u16();
        if resp.status.is_success() {
            return Attempt::Sent;
        }
        let text = String::from_utf8_lossy(&resp.body);
        let detail = cap_text(text.trim(), 1024);
        let error = format!("{}: {}", request.route.path(), http_error(status, &detail));
        match status {
            413 => Attempt::TooLarge { error },
            408 | 429 | 500..=599 => Attempt::Retry {
                error,
                retry_after: retry_after(&resp),
            },
            _ => Attempt::Permanent {
                error,
                reason: reason_of(status),
            },
        }
    }
}

enum Attempt {
    Sent,
    TooLarge {
        error: String,
    },
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        error: String,
        reason: &'static str,
    },
}

#[async_trait]
impl Sender for DatadogSender {
    type Request = DatadogRequest;

    fn encode(&self, batch: &Batch) -> Result<Vec<DatadogRequest>, String> {
        match batch.signal() {
            Signal::Metrics(rm) => self.metrics.encode(rm),
            Signal::Logs(rl) => self.logs.encode(rl),
            Signal::Traces(rs) => self.traces.encode(rs),
        }
    }

    /// Sends `request`; on 413 halves it and sends the halves, down to single
    /// parts. What failed for good is counted; what may succeed later goes
    /// back to the helper as one request.
    async fn send(&self, request: &DatadogRequest) -> SendOutcome<DatadogRequest> {
        let mut work: Vec<(DatadogRequest, u32)> = Vec::new();
        let mut sent_any = false;
        let mut retry: Option<DatadogRequest> = None;
        let mut retry_after = None;
        let mut rejected = 0usize;
        let mut first_error: Option<String> = None;
        let mut pending = Some(request);
        loop {
            let (owned, depth, attempt) = match pending.take() {
                Some(first) => (None, 0, self.attempt(first).await),
                None => match work.pop() {
                    Some((r, d)) => {
                        let a = self.attempt(&r).await;
                        (Some(r), d, a)
                    }
                    None => break,
                },
            };
            let items = |owned: &Option<DatadogRequest>| {
                use confluo_pipeline::exporter_helper::Request as _;
                owned
                    .as_ref()
                    .map_or(request.item_count(), |r| r.item_count())
            };
            match attempt {
                Attempt::Sent => sent_any = true,
                Attempt::TooLarge { error } => {
                    let whole = owned.unwrap_or_else(|| copy_request(request));
                    match whole.split() {
                        Ok((a, b)) if depth < MAX_SPLIT_DEPTH => {
                            work.push((b, depth + 1));
                            work.push((a, depth + 1));
                        }
                        Ok((a, b)) => {
                            let n = a
                                .part_items
                                .iter()
                                .chain(&b.part_items)
                                .map(|&n| n as usize)
                                .sum();
                            rejected += n;
                            self.count_rejected("too_large", n);
                            first_error.get_or_insert(error);
                        }
                        Err(single) => {
                            let n = single.part_items.iter().map(|&n| n as usize).sum();
                            rejected += n;
                            self.count_rejected("too_large", n);
                            first_error.get_or_insert(format!(
                                "{error} (a single element is larger than the intake accepts)"
                            ));
                        }
                    }
                }
                Attempt::Retry {
                    error,
                    retry_after: ra,
                } => {
                    let r = owned.unwrap_or_else(|| copy_request(request));
                    match &mut retry {
                        Some(acc) => acc.absorb(r),
                        None => retry = Some(r),
                    }
                    retry_after = retry_after.or(ra);
                    first_error.get_or_insert(error);
                }
                Attempt::Permanent { error, reason } => {
                    let n = items(&owned);
                    rejected += n;
                    self.count_rejected(reason, n);
                    first_error.get_or_insert(error);
                }
            }
        }
        let error = first_error.unwrap_or_default();
        match (sent_any, retry, rejected) {
            (_, None, 0) => SendOutcome::Sent,
            (false, Some(r), 0) if r.parts.len() == request.parts.len() => {
                SendOutcome::Retry { error, retry_after }
            }
            (false, None, _) => SendOutcome::Permanent { error },
            (_, retry, rejected) => SendOutcome::Partial {
                retry,
                rejected,
                error,
            },
        }
    }
}

/// A copy of a request's parts (cheap: `Bytes` are reference-counted), for
/// when the first attempt of the borrowed request needs splitting or retrying.
fn copy_request(r: &DatadogRequest) -> DatadogRequest {
    let mut out = DatadogRequest::new(r.route, r.framing.clone());
    for (p, n) in r.parts.iter().zip(&r.part_items) {
        out.push(p.clone(), *n);
    }
    out
}

impl DatadogSender {
    pub fn id(&self) -> &str {
        &self.id
    }
}
