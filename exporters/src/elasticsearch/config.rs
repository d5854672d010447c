//! Config of `elasticsearch`, with the Collector's option names and defaults
//! (`exporter/elasticsearchexporter/config.go`, README).
//!
//! The Collector's exporter has its own `retry` block (document- and
//! request-level retries bounded by `max_retries`) instead of the helper's
//! `retry_on_failure`; it is mapped onto the helper in [`EsConfig::helper`].
//! `sending_queue` has the exporter's own defaults (10 requests, blocking,
//! batching by bytes), so it is a separate struct whose missing fields fall
//! back to those rather than to the generic helper defaults.

use crate::util::field_error;
use confluo_config::{ByteSize, ConfigError, GoDuration, Node, Secret};
use confluo_pipeline::exporter_helper::{
    HelperSettings, QueueBatchSettings, QueueSettings, RetrySettings, Sizer,
};
use confluo_pipeline::tls::TlsClientSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The Collector's default HTTP timeout for this exporter.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
/// `flush.bytes` / `sending_queue.batch.max_size`.
pub const DEFAULT_FLUSH_BYTES: u64 = 5_000_000;
pub const DEFAULT_MIN_BYTES: u64 = 1_000_000;
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// `mapping.mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MappingMode {
    /// OTel-native documents, as the Collector's default mode writes them.
    #[default]
    Otel,
    /// Elastic Common Schema field names.
    Ecs,
    /// Accepted by name so that the error can say it is not available.
    None,
    Raw,
    Bodymap,
}

/// `compression`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    #[serde(alias = "")]
    None,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MappingSettings {
    pub mode: MappingMode,
}

/// `flush`: the Collector's older bulk-indexer knobs; when set they
/// override `sending_queue.batch.max_size` / `flush_timeout`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlushSettings {
    pub bytes: Option<ByteSize>,
    pub interval: Option<GoDuration>,
}

/// The Collector's `retry` block of this exporter.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EsRetrySettings {
    pub enabled: bool,
    /// Retries after the first attempt, per request and per document.
    pub max_retries: u32,
    pub initial_interval: GoDuration,
    pub max_interval: GoDuration,
    /// Item (and request) statuses worth sending again.
    pub retry_on_status: Vec<u16>,
}

impl Default for EsRetrySettings {
    fn default() -> Self {
        EsRetrySettings {
            enabled: true,
            max_retries: 2,
            initial_interval: GoDuration(Duration::from_millis(100)),
            max_interval: GoDuration(Duration::from_secs(60)),
            retry_on_status: vec![429],
        }
    }
}

/// `sending_queue.batch`, missing fields taking this exporter's defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EsQueueBatch {
    pub flush_timeout: Option<GoDuration>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub sizer: Option<Sizer>,
}

/// `sending_queue`, missing fields taking this exporter's defaults
/// (`enabled`, `requests`, 10 consumers, 10 requests, blocking, batching by
/// bytes 1 MB..5 MB / 10 s).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EsQueueSettings {
    pub enabled: Option<bool>,
    pub num_consumers: Option<usize>,
    pub queue_size: Option<u64>,
    pub sizer: Option<Sizer>,
    pub block_on_overflow: Option<bool>,
    pub wait_for_result: Option<bool>,
    pub storage: Option<String>,
    pub batch: Option<EsQueueBatch>,
}

/// `id`: how documents get their `_id` (a confluo option; the Collector
/// lets Elasticsearch generate ids).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IdSettings {
    /// `_id` = SHA-256 (first 128 bits, hex) of the document: a resent
    /// document answers 409 and is counted as already indexed.
    pub deterministic: bool,
}

/// `elasticsearch`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsConfig {
    pub endpoint: Option<String>,
    pub endpoints: Vec<String>,
    /// Accepted by name to give a clear error: Elastic Cloud ids are not supported.
    pub cloudid: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Sent as `Authorization: ApiKey <api_key>` (the base64 `id:key`).
    pub api_key: Option<Secret>,
    /// Sent as `Authorization: Bearer <token>` (confluo; the Collector uses an auth extension).
    pub bearer_token: Option<Secret>,
    pub headers: BTreeMap<String, Secret>,
    pub tls: TlsClientSettings,
    /// A fixed index for logs; empty = data stream routing.
    pub logs_index: Option<String>,
    pub traces_index: Option<String>,
    /// Ingest pipeline for every document (`?pipeline=`).
    pub pipeline: Option<String>,
    pub mapping: MappingSettings,
    pub id: IdSettings,
    pub compression: Compression,
    pub flush: FlushSettings,
    pub retry: EsRetrySettings,
    pub timeout: GoDuration,
    pub sending_queue: EsQueueSettings,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            endpoint: None,
            endpoints: Vec::new(),
            cloudid: None,
            user: None,
            password: None,
            api_key: None,
            bearer_token: None,
            headers: BTreeMap::new(),
            tls: TlsClientSettings::default(),
            logs_index: None,
            traces_index: None,
            pipeline: None,
            mapping: MappingSettings::default(),
            id: IdSettings::default(),
            compression: Compression::Gzip,
            flush: FlushSettings::default(),
            retry: EsRetrySettings::default(),
            timeout: GoDuration(DEFAULT_TIMEOUT),
            sending_queue: EsQueueSettings::default(),
        }
    }
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Characters Elasticsearch refuses in an index name.
const BAD_INDEX_CHARS: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ' ', ':'];

fn check_index(name: &str) -> Result<(), String> {
    if name != name.to_lowercase() {
        return Err("index names must be lower case".into());
    }
    if name.starts_with(['-', '_', '+']) {
        return Err("index names cannot start with `-`, `_` or `+`".into());
    }
    if name.contains(BAD_INDEX_CHARS) {
        return Err("index names cannot contain \\ / * ? \" < > | , # : or spaces".into());
    }
    Ok(())
}

fn parse_base_url(s: &str) -> Result<http::Uri, String> {
    // Credentials in the URL would end up in log lines and errors; never echo it.
    if s.split_once("://")
        .is_some_and(|(_, rest)| rest.split('/').next().unwrap_or("").contains('@'))
    {
        return Err(
            "credentials in the URL are not supported: use `user`/`password` or `api_key`".into(),
        );
    }
    let uri: http::Uri = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "`{s}`: the URL must start with http:// or https://"
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{s}`: the URL has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("`{s}`: the URL must not have a query"));
    }
    Ok(uri)
}

impl EsConfig {
    /// The configured base URLs, else `ELASTICSEARCH_URL` (comma-separated),
    /// as the Collector falls back to it.
    pub fn endpoint_strings(&self) -> Vec<String> {
        if let Some(e) = nonempty(&self.endpoint) {
            return vec![e.to_string()];
        }
        if !self.endpoints.is_empty() {
            return self.endpoints.clone();
        }
        std::env::var("ELASTICSEARCH_URL")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `_bulk` URL of every endpoint (with `?pipeline=` and the
    /// `filter_path` that keeps the response to what is read).
    pub fn bulk_urls(&self) -> Result<Vec<http::Uri>, String> {
        let bases = self.endpoint_strings();
        if bases.is_empty() {
            return Err(
                "`endpoint` or `endpoints` is required (or the ELASTICSEARCH_URL environment variable)"
                    .into(),
            );
        }
        let mut query = String::from(
            "filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason",
        );
        if let Some(p) = nonempty(&self.pipeline) {
            if !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err("`pipeline`: use letters, digits, `-`, `_` and `.` only".into());
            }
            query.push_str("&pipeline=");
            query.push_str(p);
        }
        bases
            .iter()
            .map(|b| {
                parse_base_url(b)?;
                let base = b.trim().trim_end_matches('/');
                format!("{base}/_bulk?{query}")
                    .parse::<http::Uri>()
                    .map_err(|_| format!("`{b}` is not a valid URL"))
            })
            .collect()
    }

    pub fn logs_index(&self) -> Option<&str> {
        nonempty(&self.logs_index)
    }

    pub fn traces_index(&self) -> Option<&str> {
        nonempty(&self.traces_index)
    }

    /// The effective `sending_queue`, with `flush` applied.
    pub fn queue(&self) -> QueueSettings {
        let q = &self.sending_queue;
        let b = q.batch.clone().unwrap_or_default();
        let max_size = self
            .flush
            .bytes
            .map(|b| b.0)
            .or(b.max_size)
            .unwrap_or(DEFAULT_FLUSH_BYTES);
        let min_size = b.min_size.unwrap_or(DEFAULT_MIN_BYTES);
        let min_size = if max_size == 0 {
            min_size
        } else {
            min_size.min(max_size)
        };
        QueueSettings {
            enabled: q.enabled.unwrap_or(true),
            num_consumers: q.num_consumers.unwrap_or(10),
            queue_size: q.queue_size.unwrap_or(10),
            sizer: q.sizer.unwrap_or(Sizer::Requests),
            block_on_overflow: q.block_on_overflow.unwrap_or(true),
            wait_for_result: q.wait_for_result.unwrap_or(false),
            storage: q.storage.clone(),
            batch: Some(QueueBatchSettings {
                flush_timeout: self
                    .flush
                    .interval
                    .or(b.flush_timeout)
                    .unwrap_or(GoDuration(DEFAULT_FLUSH_INTERVAL)),
                min_size,
                max_size,
                sizer: b.sizer.unwrap_or(Sizer::Bytes),
            }),
        }
    }

    /// The largest bulk body the encoder builds (one document may exceed it
    /// alone); 0 = unbounded.
    pub fn max_request_bytes(&self) -> usize {
        let q = self.queue();
        match q.batch {
            Some(b) if b.sizer == Sizer::Bytes => b.max_size as usize,
            _ => self.flush.bytes.map_or(DEFAULT_FLUSH_BYTES, |b| b.0) as usize,
        }
    }

    /// The helper's settings. The `retry` block maps onto `retry_on_failure`
    /// (multiplier 2, jitter 0.2, no elapsed-time bound): `max_retries` is
    /// enforced by the exporter itself, per request and per document.
    pub fn helper(&self) -> HelperSettings {
        let retry = RetrySettings {
            enabled: self.retry.enabled && self.retry.max_retries > 0,
            initial_interval: self.retry.initial_interval,
            randomization_factor: 0.2,
            multiplier: 2.0,
            max_interval: self.retry.max_interval,
            max_elapsed_time: GoDuration(Duration::ZERO),
        };
        HelperSettings::new(&self.timeout, &retry, &self.queue())
    }

    pub fn validate(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let has_endpoint = nonempty(&self.endpoint).is_some();
        if has_endpoint && !self.endpoints.is_empty() {
            errors.push(field_error(
                node,
                "endpoints",
                "set only one of `endpoint` and `endpoints`",
            ));
        }
        if nonempty(&self.cloudid).is_some() {
            errors.push(
                field_error(node, "cloudid", "`cloudid` is not supported")
                    .with_hint("use `endpoint` with the deployment's Elasticsearch URL"),
            );
        } else {
            let key = if has_endpoint || self.endpoints.is_empty() {
                "endpoint"
            } else {
                "endpoints"
            };
            if let Err(e) = self.bulk_urls() {
                let key = if e.starts_with("`pipeline`") {
                    "pipeline"
                } else {
                    key
                };
                errors.push(field_error(node, key, e));
            }
        }
        let basic = self.user.is_some() || self.password.is_some();
        let schemes = [basic, self.api_key.is_some(), self.bearer_token.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if schemes > 1 {
            errors.push(field_error(
                node,
                "api_key",
                "set only one of `user`/`password`, `api_key` and `bearer_token`",
            ));
        }
        if self.password.is_some() && self.user.is_none() {
            errors.push(field_error(
                node,
                "user",
                "`password` is set without `user`",
            ));
        }
        if self.user.as_deref().is_some_and(|u| u.contains(':')) {
            errors.push(field_error(node, "user", "`user` cannot contain `:`"));
        }
        for (key, value) in [
            ("api_key", &self.api_key),
            ("bearer_token", &self.bearer_token),
            ("password", &self.password),
        ] {
            if let Some(v) = value {
                if http::HeaderValue::from_str(v.expose()).is_err() || v.is_empty() {
                    errors.push(field_error(
                        node,
                        key,
                        format!("`{key}` is empty or contains characters not allowed in a header"),
                    ));
                }
            }
        }
        for (key, index) in [
            ("logs_index", self.logs_index()),
            ("traces_index", self.traces_index()),
        ] {
            if let Some(Err(e)) = index.map(check_index) {
                errors.push(field_error(node, key, e));
            }
        }
        if !matches!(self.mapping.mode, MappingMode::Otel | MappingMode::Ecs) {
            errors.push(
                field_error(
                    node,
                    "mapping",
                    "mapping.mode: only `otel` and `ecs` are available in this version",
                )
                .with_hint("use `otel` (the default) or `ecs`"),
            );
        }
        if self
            .retry
            .retry_on_status
            .iter()
            .any(|s| !(100..=599).contains(s))
        {
            errors.push(field_error(
                node,
                "retry",
                "retry.retry_on_status: statuses must be between 100 and 599",
            ));
        }
        if let Some(storage) = &self.sending_queue.storage {
            errors.push(field_error(
                node,
                "sending_queue",
                format!("sending_queue.storage `{storage}`: the persistent queue is not available in this version"),
            ));
        }
        if self.flush.bytes.is_some_and(|b| b.0 == 0) {
            errors.push(field_error(
                node,
                "flush",
                "flush.bytes must be greater than 0",
            ));
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(field_error(
                    node,
                    "headers",
                    format!("header `{name}`: not a valid header name"),
                ));
            } else if http::HeaderValue::from_str(value.expose()).is_err() {
                errors.push(field_error(
                    node,
                    "headers",
                    format!(
                        "header `{name}`: the value contains characters not allowed in a header"
                    ),
                ));
            }
        }
        errors
    }
}
