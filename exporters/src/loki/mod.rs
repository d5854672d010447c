//! The `loki` exporter: log records to Grafana Loki's push API
//! (`POST /loki/api/v1/push`, snappy-compressed protobuf or JSON) or to
//! Loki 3's native OTLP endpoint (`protocol: otlp`).
//!
//! Protocol facts (`grafana/loki:docs/sources/reference/loki-http-api.md`,
//! `pkg/loghttp/push/push.go`, `pkg/distributor/http.go`, `pkg/ingester/stream.go`):
//! success is 204 on both endpoints; 429 and 5xx are worth retrying
//! (`Retry-After` honoured); a 400 is final *and partial* — Loki has already
//! stored the valid entries of that push — so it is never retried: the
//! rejected lines are counted (from Loki's error text) and logged once per
//! burst.
//!
//! A batch is encoded once, when it enters the sending queue, into pushes of
//! at most `max_push_bytes` (uncompressed), one tenant each. Pushes of the
//! same tenant merge at dequeue (`sending_queue.batch`) up to that cap: two
//! `PushRequest`s concatenated are one (repeated field 1), and JSON bodies
//! splice their `streams` arrays. Compression happens on the first attempt
//! and is reused by retries.

pub mod config;
pub mod encode;
pub mod proto;

pub use config::LokiConfig;

use crate::util::{cap_text, check_with, http_error, load_with, retry_after, USER_AGENT};
use async_trait::async_trait;
use bytes::Bytes;
use config::{Compression, Protocol};
use confluo_config::{ConfigError, Node};
use confluo_pipeline::exporter_helper::{
    HelperSettings, QueuedExporter, Request, SendOutcome, Sender,
};
use confluo_pipeline::http_client::HttpClient;
use confluo_pipeline::otlp_json::base64_encode as base64;
use confluo_pipeline::telemetry::{Counter, ExporterMetrics};
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, Exporter, ExporterFactory, SignalKind, SignalSet,
    Stability,
};
use encode::{Encoder, Push, JSON_PREFIX, JSON_SUFFIX};
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT as UA};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Loki's answers are short texts; more is cut.
const MAX_RESPONSE_BYTES: usize = 64 << 10;
/// A burst of rejections logs one line per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

static X_SCOPE_ORGID: HeaderName = HeaderName::from_static("x-scope-orgid");

/// Factory of `loki` (logs only).
pub struct LokiFactory;

fn validate(cfg: &LokiConfig, node: &Node) -> Vec<ConfigError> {
    cfg.validate(node)
}

impl ExporterFactory for LokiFactory {
    fn type_name(&self) -> &'static str {
        "loki"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::only(SignalKind::Logs)
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<LokiConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: LokiConfig = load_with(node, validate)?;
        let sender = LokiSender::new(&cfg, &ctx, signals)?;
        let settings = HelperSettings::new(&cfg.timeout, &cfg.retry_on_failure, &cfg.sending_queue);
        Ok(Arc::new(QueuedExporter::new(
            &ctx, sender, settings, signals,
        )?))
    }
}

/// One push, encoded and ready for the wire.
#[derive(Debug)]
pub struct LokiRequest {
    tenant: Option<Arc<str>>,
    items: usize,
    /// Uncompressed.
    body: Bytes,
    protocol: Protocol,
    /// Merges stop at this many bytes.
    max_bytes: usize,
    compressed: OnceLock<Result<Bytes, String>>,
}

impl LokiRequest {
    pub fn new(push: Push, protocol: Protocol, max_bytes: usize) -> LokiRequest {
        LokiRequest {
            tenant: push.tenant,
            items: push.items,
            body: push.body.into(),
            protocol,
            max_bytes,
            compressed: OnceLock::new(),
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as sent, compressed once.
    pub fn compressed(&self, compression: Compression) -> Result<Bytes, String> {
        match compression {
            Compression::None => Ok(self.body.clone()),
            Compression::Gzip => self
                .compressed
                .get_or_init(|| Ok(confluo_pipeline::compression::gzip(&self.body).into()))
                .clone(),
            // Block (raw) snappy, not the framed format: Loki decodes with
            // snappy.Decode (`pkg/util/http.go`, `RawSnappy`).
            Compression::Snappy => self
                .compressed
                .get_or_init(|| {
                    snap::raw::Encoder::new()
                        .compress_vec(&self.body)
                        .map(Bytes::from)
                        .map_err(|e| format!("snappy: {e}"))
                })
                .clone(),
        }
    }
}

impl Request for LokiRequest {
    fn item_count(&self) -> usize {
        self.items
    }

    fn byte_size(&self) -> usize {
        self.body.len()
    }

    fn merge(&mut self, other: Self) -> Result<(), Self> {
        if self.protocol != other.protocol
            || self.tenant != other.tenant
            || self.body.len() + other.body.len() > self.max_bytes
        {
            return Err(other);
        }
        let body = match self.protocol {
            // Repeated field 1 concatenated: one request holding both.
            Protocol::PushProtobuf | Protocol::Otlp => {
                let mut body = Vec::with_capacity(self.body.len() + other.body.len());
                body.extend_from_slice(&self.body);
                body.extend_from_slice(&other.body);
                body
            }
            Protocol::PushJson => match merge_json(&self.body, &other.body) {
                Some(b) => b,
                None => return Err(other),
            },
        };
        self.body = body.into();
        self.items += other.items;
        self.compressed = OnceLock::new();
        Ok(())
    }
}

/// `{"streams":[A]}` + `{"streams":[B]}` → `{"streams":[A,B]}`.
fn merge_json(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let well_formed = |body: &[u8]| {
        body.len() >= JSON_PREFIX.len() + JSON_SUFFIX.len()
            && body.starts_with(JSON_PREFIX)
            && body.ends_with(JSON_SUFFIX)
    };
    if !well_formed(a) || !well_formed(b) {
        return None;
    }
    let a_inner = &a[JSON_PREFIX.len()..a.len() - JSON_SUFFIX.len()];
    let b_inner = &b[JSON_PREFIX.len()..b.len() - JSON_SUFFIX.len()];
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(JSON_PREFIX);
    out.extend_from_slice(a_inner);
    if !a_inner.is_empty() && !b_inner.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b_inner);
    out.extend_from_slice(JSON_SUFFIX);
    Some(out)
}

/// Low-cardinality reasons for `otelcol_exporter_loki_rejected_log_records`.
pub const REASONS: &[&str] = &[
    "out_of_order",
    "too_old",
    "too_new",
    "line_too_long",
    "structured_metadata",
    "invalid_labels",
    "invalid_tenant",
    "other",
];

/// The reason of a Loki 400, from its text (`pkg/validation/validate.go`,
/// `pkg/ingester/stream.go` messages).
pub fn classify(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if t.contains("too far behind") || t.contains("out of order") {
        "out_of_order"
    } else if t.contains("too old") {
        "too_old"
    } else if t.contains("too new") {
        "too_new"
    } else if t.contains("line too long") || t.contains("max entry size") {
        "line_too_long"
    } else if t.contains("structured metadata") {
        "structured_metadata"
    } else if t.contains("label") {
        "invalid_labels"
    } else {
        "other"
    }
}

/// How many lines of a push of `items` a 400 rejected. The ingester ends
/// its message with `total ignored: N out of M` per stream; the distributor
/// writes one line per rejected entry. Anything else (a parse error, an
/// unknown message) is taken to reject the whole push.
pub fn rejected_count(text: &str, items: usize) -> usize {
    let mut n = 0usize;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(pos) = line.find("total ignored: ") {
            let rest = &line[pos + "total ignored: ".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            match digits.parse::<usize>() {
                Ok(k) => n += k,
                Err(_) => return items,
            }
        } else if line.starts_with("entry with timestamp") {
            // Detail of an ingester error; counted by its total.
        } else if per_entry_message(line) {
            n += 1;
        } else {
            return items;
        }
    }
    if n == 0 {
        items
    } else {
        n.min(items)
    }
}

fn per_entry_message(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    (l.contains("entry for stream") && (l.contains("too old") || l.contains("too new")))
        || l.contains("max entry size")
        || l.contains("line too long")
        || l.contains("structured metadata")
}

/// Rate-limited logging of rejections: the first of a burst at once, then
/// one summary per [`LOG_INTERVAL`].
#[derive(Default)]
struct BurstLog {
    state: Mutex<BurstState>,
}

#[derive(Default)]
struct BurstState {
    last: Option<Instant>,
    suppressed_events: u64,
    suppressed_lines: u64,
}

impl BurstLog {
    /// `Some((events, lines))` suppressed since the last line when this one
    /// should be logged.
    fn admit(&self, lines: usize) -> Option<(u64, u64)> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if s.last.is_some_and(|t| now.duration_since(t) < LOG_INTERVAL) {
            s.suppressed_events += 1;
            s.suppressed_lines += lines as u64;
            return None;
        }
        s.last = Some(now);
        Some((
            std::mem::take(&mut s.suppressed_events),
            std::mem::take(&mut s.suppressed_lines),
        ))
    }
}

/// Encodes batches into pushes and POSTs them.
pub struct LokiSender {
    client: HttpClient,
    url: Uri,
    headers: HeaderMap,
    encoder: Encoder,
    protocol: Protocol,
    compression: Compression,
    max_bytes: usize,
    id: String,
    /// The helper's own counters (same series), for records the encoder
    /// drops before anything is queued.
    metrics: ExporterMetrics,
    /// `otelcol_exporter_loki_rejected_log_records{exporter, reason}`.
    rejected: Vec<(&'static str, Counter)>,
    burst: BurstLog,
}

impl LokiSender {
    pub fn new(
        cfg: &LokiConfig,
        ctx: &ComponentContext,
        signals: SignalSet,
    ) -> Result<LokiSender, ComponentError> {
        let id = ctx.id.to_string();
        let fail = |e: String| ComponentError::start(format!("{id}: {e}"));
        let url = cfg.url().map_err(fail)?;
        let client = HttpClient::new(&cfg.tls).map_err(|e| fail(e.to_string()))?;
        let mut headers = crate::otlp::config::header_map(&cfg.headers).map_err(fail)?;
        if let Some(auth) = &cfg.auth {
            let value = match (&auth.basic, &auth.bearer_token) {
                (Some(b), _) => Some(format!(
                    "Basic {}",
                    base64(format!("{}:{}", b.username, b.password.expose()).as_bytes())
                )),
                (None, Some(t)) => Some(format!("Bearer {}", t.expose())),
                (None, None) => None,
            };
            if let Some(value) = value {
                let mut v = HeaderValue::from_str(&value).map_err(|_| {
                    fail("auth: the credentials contain characters not allowed in a header".into())
                })?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
        }
        let compression = cfg.effective_compression();
        // The protocol's own headers win over configured ones.
        let content_type = match cfg.protocol {
            Protocol::PushJson => "application/json",
            Protocol::PushProtobuf | Protocol::Otlp => "application/x-protobuf",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.remove(CONTENT_ENCODING);
        if compression == Compression::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers
            .entry(UA)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        let rejected = REASONS
            .iter()
            .map(|r| {
                (
                    *r,
                    ctx.telemetry.counter(
                        "otelcol_exporter_loki_rejected_log_records",
                        "Log records Loki (or the exporter) rejected for good, by reason.",
                        &[("exporter", id.as_str()), ("reason", r)],
                    ),
                )
            })
            .collect();
        Ok(LokiSender {
            client,
            url,
            headers,
            encoder: Encoder::new(cfg),
            protocol: cfg.protocol,
            compression,
            max_bytes: cfg.max_push_bytes.0 as usize,
            metrics: ExporterMetrics::new(&ctx.telemetry, &id, signals),
            rejected,
            burst: BurstLog::default(),
            id,
        })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn count_rejected(&self, reason: &str, n: usize) {
        if let Some((_, c)) = self.rejected.iter().find(|(r, _)| *r == reason) {
            c.add(n as u64);
        }
    }

    fn log_rejected(&self, reason: &str, lines: usize, error: &str) {
        if let Some((events, suppressed)) = self.burst.admit(lines) {
            tracing::warn!(
                event = "loki_lines_rejected",
                exporter = %self.id,
                reason,
                lines,
                suppressed_events = events,
                suppressed_lines = suppressed,
                error = %error,
                "Loki rejected log lines for good; they are not retried"
            );
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[async_trait]
impl Sender for LokiSender {
    type Request = LokiRequest;

    fn encode(&self, batch: &Batch) -> Result<Vec<LokiRequest>, String> {
        let (pushes, dropped) = self.encoder.encode(batch.signal(), now_ns());
        if dropped.invalid_tenant > 0 {
            let error = "tenant.from_attribute holds a value that is not a valid Loki tenant ID, and tenant.id gives no fallback";
            if pushes.is_empty() {
                // The helper counts and logs the whole batch.
                self.count_rejected("invalid_tenant", dropped.invalid_tenant);
                return Err(error.into());
            }
            self.metrics
                .send_failed(SignalKind::Logs, dropped.invalid_tenant);
            self.count_rejected("invalid_tenant", dropped.invalid_tenant);
            self.log_rejected("invalid_tenant", dropped.invalid_tenant, error);
        }
        Ok(pushes
            .into_iter()
            .map(|p| LokiRequest::new(p, self.protocol, self.max_bytes))
            .collect())
    }

    async fn send(&self, request: &LokiRequest) -> SendOutcome<LokiRequest> {
        let body = match request.compressed(self.compression) {
            Ok(b) => b,
            Err(error) => return SendOutcome::Permanent { error },
        };
        let mut headers = self.headers.clone();
        if let Some(t) = request.tenant() {
            match HeaderValue::from_str(t) {
                Ok(v) => {
                    headers.insert(X_SCOPE_ORGID.clone(), v);
                }
                Err(_) => {
                    return SendOutcome::Permanent {
                        error: "tenant is not a valid header value".into(),
                    }
                }
            }
        }
        let resp = match self
            .client
            .post(&self.url, &headers, body, MAX_RESPONSE_BYTES)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return SendOutcome::Retry {
                    error: e.to_string(),
                    retry_after: None,
                }
            }
        };
        let status = resp.status.as_u16();
        if resp.status.is_success() {
            return SendOutcome::Sent;
        }
        let text = String::from_utf8_lossy(&resp.body);
        let detail = cap_text(text.trim(), 1024);
        let error = http_error(status, &detail);
        match status {
            400 => {
                // Final and partial: the valid entries are stored.
                let rejected = rejected_count(&text, request.items);
                let reason = classify(&text);
                self.count_rejected(reason, rejected);
                self.log_rejected(reason, rejected, &detail);
                SendOutcome::Partial {
                    retry: None,
                    rejected,
                    error,
                }
            }
            429 | 500..=599 => SendOutcome::Retry {
                error,
                retry_after: retry_after(&resp),
            },
            413 => SendOutcome::Permanent {
                error: format!(
                    "{error} (the push is larger than Loki accepts: lower max_push_bytes)"
                ),
            },
            _ => SendOutcome::Permanent { error },
        }
    }
}

#[cfg(test)]
mod tests;
