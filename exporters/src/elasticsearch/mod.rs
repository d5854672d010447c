//! The `elasticsearch` exporter: log records and spans as documents through
//! the `_bulk` API (NDJSON, gzip), after the Collector's
//! `elasticsearchexporter`.
//!
//! A batch is encoded once, when it enters the sending queue, into bulk
//! bodies of at most `flush.bytes`; each item's action and document lines
//! are remembered as a byte range. Bodies merge at dequeue
//! (`sending_queue.batch`, by bytes). A 200 answer with `errors: true` is
//! read item by item (`protocols.md` §2): statuses in `retry.retry_on_status`
//! (default 429) are resent as a subset cut from the original bytes; 409 on
//! `create` with a deterministic `_id` means "already indexed" and counts as
//! sent; every other failed item is dropped, counted by error type and
//! logged once per burst. Whole-request 429/5xx are retried; `max_retries`
//! bounds request and document retries alike.
//!
//! The HTTP client is the pipeline's shared one (hyper + rustls): the
//! official `elasticsearch` crate (9.x alpha) would add reqwest and, by
//! default, native-tls/OpenSSL, a second TLS stack beside rustls, for a
//! bulk helper we need item-level control over anyway.

pub mod config;
pub mod encode;

pub use config::EsConfig;

use crate::util::{cap_text, check_with, http_error, load_with, retry_after, USER_AGENT};
use async_trait::async_trait;
use bytes::Bytes;
use config::Compression;
use confluo_config::{ConfigError, Node};
use confluo_pipeline::exporter_helper::{QueuedExporter, Request, SendOutcome, Sender};
use confluo_pipeline::http_client::{HttpClient, HttpResponse};
use confluo_pipeline::otlp_json::base64_encode as base64;
use confluo_pipeline::telemetry::{Counter, Telemetry};
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, Exporter, ExporterFactory, SignalKind, SignalSet,
    Stability,
};
use encode::Encoder;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT as UA};
use http::{HeaderMap, HeaderValue, Uri};
use serde::Deserialize;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A bulk response lists every item; with `filter_path` they are small.
const MAX_RESPONSE_BYTES: usize = 32 << 20;
/// A burst of dropped documents logs one line per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Distinct `error_type` label values before further ones count as `other`.
const MAX_ERROR_TYPES: usize = 64;

/// Factory of `elasticsearch` (logs and traces).
pub struct ElasticsearchFactory;

fn validate(cfg: &EsConfig, node: &Node) -> Vec<ConfigError> {
    cfg.validate(node)
}

impl ExporterFactory for ElasticsearchFactory {
    fn type_name(&self) -> &'static str {
        "elasticsearch"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::only(SignalKind::Logs).with(SignalKind::Traces)
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<EsConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: EsConfig = load_with(node, validate)?;
        let sender = EsSender::new(&cfg, &ctx)?;
        Ok(Arc::new(QueuedExporter::new(
            &ctx,
            sender,
            cfg.helper(),
            signals,
        )?))
    }
}

/// One encoded bulk body.
#[derive(Debug)]
pub struct BulkRequest {
    kind: SignalKind,
    /// Uncompressed NDJSON, ending with `\n`.
    body: Vec<u8>,
    /// Each item's action + document lines within `body`.
    items: Vec<Range<usize>>,
    /// Merges stop at this many bytes (0 = no cap).
    max_bytes: usize,
    /// The bytes on the wire, made on the first attempt and reused by
    /// retries (merging happens before the first send).
    wire: OnceLock<Bytes>,
    /// Attempts so far, carried into retry subsets: `max_retries` bounds
    /// a document's attempts, not just one request's.
    attempts: AtomicU32,
}

impl BulkRequest {
    pub fn new(kind: SignalKind, encoded: encode::Encoded, max_bytes: usize) -> BulkRequest {
        BulkRequest {
            kind,
            body: encoded.body,
            items: encoded.items,
            max_bytes,
            wire: OnceLock::new(),
            attempts: AtomicU32::new(0),
        }
    }

    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The action and document lines of item `i`.
    pub fn item(&self, i: usize) -> &[u8] {
        self.items.get(i).map_or(&[][..], |r| &self.body[r.clone()])
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// A request holding only the items `keep` (indices into this one),
    /// copied byte for byte.
    pub fn subset(&self, keep: &[usize]) -> BulkRequest {
        let len = keep
            .iter()
            .filter_map(|i| self.items.get(*i))
            .map(|r| r.len())
            .sum();
        let mut body = Vec::with_capacity(len);
        let mut items = Vec::with_capacity(keep.len());
        for r in keep.iter().filter_map(|i| self.items.get(*i)) {
            let start = body.len();
            body.extend_from_slice(&self.body[r.clone()]);
            items.push(start..body.len());
        }
        BulkRequest {
            kind: self.kind,
            body,
            items,
            max_bytes: self.max_bytes,
            wire: OnceLock::new(),
            attempts: AtomicU32::new(self.attempts()),
        }
    }

    fn wire(&self, compression: Compression) -> Bytes {
        self.wire
            .get_or_init(|| match compression {
                Compression::Gzip => confluo_pipeline::compression::gzip(&self.body).into(),
                Compression::None => Bytes::copy_from_slice(&self.body),
            })
            .clone()
    }
}

impl Request for BulkRequest {
    fn item_count(&self) -> usize {
        self.items.len()
    }

    fn byte_size(&self) -> usize {
        self.body.len()
    }

    fn merge(&mut self, other: Self) -> Result<(), Self> {
        if self.kind != other.kind
            || (self.max_bytes > 0 && self.body.len() + other.body.len() > self.max_bytes)
        {
            return Err(other);
        }
        let offset = self.body.len();
        self.body.extend_from_slice(&other.body);
        self.items.extend(
            other
                .items
                .into_iter()
                .map(|r| r.start + offset..r.end + offset),
        );
        self.attempts
            .fetch_max(other.attempts.into_inner(), Ordering::Relaxed);
        self.wire = OnceLock::new();
        Ok(())
    }
}

/// One item of a bulk response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemStatus {
    pub status: u16,
    pub error_type: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<RawItem>,
}

/// Each item is a one-key object named after its action.
#[derive(Deserialize)]
struct RawItem {
    create: Option<RawResult>,
    index: Option<RawResult>,
    update: Option<RawResult>,
    delete: Option<RawResult>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    status: u16,
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `(errors, items)` of a bulk response body.
pub fn parse_response(body: &[u8]) -> Result<(bool, Vec<ItemStatus>), String> {
    let raw: RawResponse =
        serde_json::from_slice(body).map_err(|e| format!("unreadable bulk response: {e}"))?;
    let items = raw
        .items
        .into_iter()
        .map(|i| {
            let r = i.create.or(i.index).or(i.update).or(i.delete);
            match r {
                Some(r) => {
                    let (error_type, reason) = r
                        .error
                        .map(|e| (e.kind, e.reason.unwrap_or_default()))
                        .unwrap_or_default();
                    ItemStatus {
                        status: r.status,
                        error_type,
                        reason,
                    }
                }
                None => ItemStatus {
                    status: 0,
                    error_type: "unknown_action".into(),
                    reason: "the response item names no known action".into(),
                },
            }
        })
        .collect();
    Ok((raw.errors, items))
}

/// What becomes of one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Indexed,
    /// 409 on `create` with a deterministic `_id`: the same document is there.
    AlreadyIndexed,
    Retry,
    Drop,
}

pub fn classify(status: u16, deterministic_id: bool, retry_on_status: &[u16]) -> Verdict {
    match status {
        200..=299 => Verdict::Indexed,
        409 if deterministic_id => Verdict::AlreadyIndexed,
        s if retry_on_status.contains(&s) => Verdict::Retry,
        _ => Verdict::Drop,
    }
}

/// The per-item reading of one response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Classified {
    pub retry: Vec<usize>,
    pub already_indexed: usize,
    /// Dropped items: (index, error type, reason).
    pub dropped: Vec<(usize, String, String)>,
}

/// Classifies every item; `may_retry` false turns would-be retries into drops.
pub fn classify_items(
    items: &[ItemStatus],
    deterministic_id: bool,
    retry_on_status: &[u16],
    may_retry: bool,
) -> Classified {
    let mut c = Classified::default();
    for (i, it) in items.iter().enumerate() {
        match classify(it.status, deterministic_id, retry_on_status) {
            Verdict::Indexed => {}
            Verdict::AlreadyIndexed => c.already_indexed += 1,
            Verdict::Retry if may_retry => c.retry.push(i),
            v => {
                let ty = if it.error_type.is_empty() {
                    format!("status_{}", it.status)
                } else {
                    it.error_type.clone()
                };
                let reason = if v == Verdict::Retry {
                    format!(
                        "HTTP {} after the last retry{}{}",
                        it.status,
                        if it.reason.is_empty() { "" } else { ": " },
                        it.reason
                    )
                } else {
                    it.reason.clone()
                };
                c.dropped.push((i, ty, reason));
            }
        }
    }
    c
}

#[derive(Default)]
struct BurstState {
    last: Option<Instant>,
    suppressed: u64,
}

/// Sends bulk bodies to the endpoints in turn.
pub struct EsSender {
    client: HttpClient,
    urls: Vec<Uri>,
    next: AtomicUsize,
    headers: HeaderMap,
    compression: Compression,
    encoder: Encoder,
    retry_on_status: Vec<u16>,
    /// Attempts allowed after the first (0 when `retry.enabled` is false).
    max_retries: u32,
    id: String,
    telemetry: Telemetry,
    /// `otelcol_exporter_elasticsearch_dropped_documents{exporter, error_type}`.
    dropped: Mutex<HashMap<String, Counter>>,
    retried: Counter,
    already_indexed: Counter,
    burst: Mutex<BurstState>,
}

/// The `error.type: reason` of a whole-request failure body.
fn error_detail(resp: &HttpResponse) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
        let e = &v["error"];
        let ty = e["type"].as_str().or_else(|| e.as_str());
        if let Some(ty) = ty {
            let reason = e["reason"].as_str().unwrap_or("");
            return cap_text(&format!("{ty}: {reason}"), 1024);
        }
    }
    cap_text(String::from_utf8_lossy(&resp.body).trim(), 512)
}

impl EsSender {
    pub fn new(cfg: &EsConfig, ctx: &ComponentContext) -> Result<EsSender, ComponentError> {
        let id = ctx.id.to_string();
        let fail = |e: String| ComponentError::start(format!("{id}: {e}"));
        let urls = cfg.bulk_urls().map_err(fail)?;
        let client = HttpClient::new(&cfg.tls).map_err(|e| fail(e.to_string()))?;
        let mut headers = crate::otlp::config::header_map(&cfg.headers).map_err(fail)?;
        let auth = if let Some(user) = &cfg.user {
            let password = cfg.password.as_ref().map_or("", |p| p.expose());
            Some(format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            ))
        } else if let Some(key) = &cfg.api_key {
            Some(format!("ApiKey {}", key.expose()))
        } else {
            cfg.bearer_token
                .as_ref()
                .map(|t| format!("Bearer {}", t.expose()))
        };
        if let Some(auth) = auth {
            let mut v = HeaderValue::from_str(&auth).map_err(|_| {
                fail("the credentials contain characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        // The protocol's own headers win over configured ones.
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.remove(CONTENT_ENCODING);
        if cfg.compression == Compression::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers
            .entry(UA)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        let labels = [("exporter", id.as_str())];
        Ok(EsSender {
            client,
            urls,
            next: AtomicUsize::new(0),
            headers,
            compression: cfg.compression,
            encoder: Encoder {
                mode: cfg.mapping.mode,
                logs_index: cfg.logs_index().map(String::from),
                traces_index: cfg.traces_index().map(String::from),
                deterministic_id: cfg.id.deterministic,
                max_bytes: cfg.max_request_bytes(),
            },
            retry_on_status: cfg.retry.retry_on_status.clone(),
            max_retries: if cfg.retry.enabled {
                cfg.retry.max_retries
            } else {
                0
            },
            telemetry: ctx.telemetry.clone(),
            dropped: Mutex::new(HashMap::new()),
            retried: ctx.telemetry.counter(
                "otelcol_exporter_elasticsearch_retried_documents",
                "Documents resent after a retryable per-item status.",
                &labels,
            ),
            already_indexed: ctx.telemetry.counter(
                "otelcol_exporter_elasticsearch_already_indexed_documents",
                "Documents answered 409 on create with a deterministic _id: already indexed, counted as sent.",
                &labels,
            ),
            burst: Mutex::new(BurstState::default()),
            id,
        })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn count_dropped(&self, error_type: &str, n: u64) {
        let mut map = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        let key = if map.contains_key(error_type) || map.len() < MAX_ERROR_TYPES {
            error_type
        } else {
            "other"
        };
        if let Some(c) = map.get(key) {
            c.add(n);
            return;
        }
        let c = self.telemetry.counter(
            "otelcol_exporter_elasticsearch_dropped_documents",
            "Documents Elasticsearch rejected for good (not retried), by error type.",
            &[("exporter", self.id.as_str()), ("error_type", key)],
        );
        c.add(n);
        map.insert(key.to_string(), c);
    }

    /// Counts the dropped items and logs the first of a burst with its
    /// error type and reason.
    fn report_dropped(&self, kind: SignalKind, dropped: &[(usize, String, String)]) {
        let mut by_type: Vec<(&str, u64, &str)> = Vec::new();
        for (_, ty, reason) in dropped {
            match by_type.iter_mut().find(|(t, _, _)| t == ty) {
                Some(e) => e.1 += 1,
                None => by_type.push((ty, 1, reason)),
            }
        }
        for (ty, n, _) in &by_type {
            self.count_dropped(ty, *n);
        }
        let suppressed = {
            let mut s = self.burst.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if s.last.is_some_and(|t| now.duration_since(t) < LOG_INTERVAL) {
                s.suppressed += dropped.len() as u64;
                return;
            }
            s.last = Some(now);
            std::mem::take(&mut s.suppressed)
        };
        for (ty, n, reason) in by_type {
            tracing::warn!(
                event = "elasticsearch_documents_dropped",
                exporter = %self.id,
                signal = %kind,
                documents = n,
                error_type = ty,
                reason = %cap_text(reason, 512),
                suppressed_since_last_log = suppressed,
                "Elasticsearch rejected documents for good; they are not retried"
            );
        }
    }

    /// POSTs to the next endpoint, failing over to the others on a
    /// connection error.
    async fn post(&self, body: Bytes) -> Result<HttpResponse, String> {
        let n = self.urls.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut errors = Vec::new();
        for k in 0..n {
            let url = &self.urls[(start + k) % n];
            match self
                .client
                .post(url, &self.headers, body.clone(), MAX_RESPONSE_BYTES)
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) => {
                    if n > 1 {
                        tracing::debug!(event = "elasticsearch_endpoint_failed", exporter = %self.id, endpoint = %strip_query(url), error = %e);
                    }
                    errors.push(format!("{}: {e}", strip_query(url)));
                }
            }
        }
        Err(errors.join("; "))
    }

    /// Reads a 2xx bulk response item by item.
    fn read_items(
        &self,
        request: &BulkRequest,
        resp: &HttpResponse,
        may_retry: bool,
    ) -> SendOutcome<BulkRequest> {
        let (errors, items) = match parse_response(&resp.body) {
            Ok(r) => r,
            Err(e) => {
                // Elasticsearch took the request (2xx); an unreadable body
                // is no reason to index everything twice.
                tracing::warn!(event = "elasticsearch_response_unreadable", exporter = %self.id, error = %e);
                return SendOutcome::Sent;
            }
        };
        if !errors {
            return SendOutcome::Sent;
        }
        if items.len() != request.item_count() {
            let error = format!(
                "the bulk response lists {} items for {} sent",
                items.len(),
                request.item_count()
            );
            return self.whole_request_failure(error, None, may_retry);
        }
        let c = classify_items(
            &items,
            self.encoder.deterministic_id,
            &self.retry_on_status,
            may_retry,
        );
        if c.already_indexed > 0 {
            self.already_indexed.add(c.already_indexed as u64);
        }
        if c.retry.is_empty() && c.dropped.is_empty() {
            return SendOutcome::Sent;
        }
        if !c.dropped.is_empty() {
            self.report_dropped(request.kind(), &c.dropped);
        }
        let error = match (c.dropped.first(), c.retry.first()) {
            (Some((_, ty, reason)), _) => format!(
                "{} documents rejected ({ty}: {}), {} to retry",
                c.dropped.len(),
                cap_text(reason, 256),
                c.retry.len()
            ),
            (None, Some(i)) => format!(
                "{} documents to retry (HTTP {})",
                c.retry.len(),
                items[*i].status
            ),
            (None, None) => String::new(),
        };
        let retry = (!c.retry.is_empty()).then(|| {
            self.retried.add(c.retry.len() as u64);
            request.subset(&c.retry)
        });
        SendOutcome::Partial {
            retry,
            rejected: c.dropped.len(),
            error,
        }
    }

    fn whole_request_failure(
        &self,
        error: String,
        retry_after: Option<Duration>,
        may_retry: bool,
    ) -> SendOutcome<BulkRequest> {
        if may_retry {
            SendOutcome::Retry { error, retry_after }
        } else {
            SendOutcome::Permanent {
                error: format!(
                    "{error} (no retries left: retry.max_retries {})",
                    self.max_retries
                ),
            }
        }
    }
}

fn strip_query(url: &Uri) -> String {
    let s = url.to_string();
    match s.split_once('?') {
        Some((base, _)) => base.to_string(),
        None => s,
    }
}

#[async_trait]
impl Sender for EsSender {
    type Request = BulkRequest;

    fn encode(&self, batch: &Batch) -> Result<Vec<BulkRequest>, String> {
        let kind = batch.kind();
        if kind == SignalKind::Metrics {
            return Err("the elasticsearch exporter does not export metrics".into());
        }
        Ok(self
            .encoder
            .encode(batch.signal())
            .into_iter()
            .map(|e| BulkRequest::new(kind, e, self.encoder.max_bytes))
            .collect())
    }

    async fn send(&self, request: &BulkRequest) -> SendOutcome<BulkRequest> {
        let attempt = request.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let may_retry = attempt <= self.max_retries;
        let resp = match self.post(request.wire(self.compression)).await {
            Ok(r) => r,
            Err(e) => return self.whole_request_failure(e, None, may_retry),
        };
        let status = resp.status.as_u16();
        if resp.status.is_success() {
            return self.read_items(request, &resp, may_retry);
        }
        let detail = error_detail(&resp);
        let error = http_error(status, &detail);
        if status == 429 || status >= 500 || self.retry_on_status.contains(&status) {
            return self.whole_request_failure(error, retry_after(&resp), may_retry);
        }
        if status == 413 {
            return SendOutcome::Permanent {
                error: format!(
                    "{error} (the bulk body is larger than Elasticsearch accepts: lower flush.bytes / sending_queue.batch.max_size)"
                ),
            };
        }
        SendOutcome::Permanent { error }
    }
}

#[cfg(test)]
mod tests;
