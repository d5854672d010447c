//! The `jsonlog` receiver's configuration. There is no Collector component of
//! this name; the listener options (`endpoint`, `max_request_body_size`)
//! carry the names and meaning of the Collector's `confighttp` server block.

use crate::otlp::{Endpoint, UrlPath};
use confluo_config::{error_with_hint, ByteSize, ConfigError, Node, Secret};
use serde::de::Deserializer;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const DEFAULT_ENDPOINT: &str = "localhost:8081";
pub const DEFAULT_URL_PATH: &str = "/v1/logs/json";
/// Half the OTLP receiver's 20 MiB: JSON log batches from shippers are
/// small, and this bounds the memory one request can pin.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 10 << 20;
pub const DEFAULT_MAX_LINE_SIZE: u64 = 1 << 20;

pub const DEFAULT_TIMESTAMP_KEYS: &[&str] = &["timestamp", "@timestamp", "time", "ts", "asctime"];
pub const DEFAULT_LEVEL_KEYS: &[&str] = &["level", "levelname", "severity", "log.level", "levelno"];
pub const DEFAULT_BODY_KEYS: &[&str] = &["message", "msg", "event"];
pub const DEFAULT_TRACE_ID_KEYS: &[&str] = &[
    "trace_id",
    "trace.id",
    "otelTraceID",
    "traceparent",
    "dd.trace_id",
];
pub const DEFAULT_SPAN_ID_KEYS: &[&str] = &["span_id", "span.id", "otelSpanID", "dd.span_id"];
pub const DEFAULT_SERVICE_KEYS: &[&str] = &["service.name", "service", "otelServiceName"];
pub const DEFAULT_SCOPE_KEYS: &[&str] = &["logger", "log.logger", "logger_name", "name"];

/// `receivers.jsonlog`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonLogConfig {
    pub endpoint: Endpoint,
    pub url_path: UrlPath,
    /// Largest accepted body, both as sent and after decompression.
    pub max_request_body_size: ByteSize,
    /// Largest accepted line (NDJSON) or array element; a longer one is
    /// rejected on its own.
    pub max_line_size: ByteSize,
    /// When not empty, requests must carry `Authorization: Bearer <one of these>`.
    pub bearer_tokens: Vec<Secret>,
    /// Resource attributes added to every record.
    pub resource: BTreeMap<String, String>,
    /// Request headers to copy into the data (none by default).
    pub header_attributes: Vec<HeaderAttribute>,
    pub mapping: MappingConfig,
}

impl Default for JsonLogConfig {
    fn default() -> Self {
        JsonLogConfig {
            endpoint: Endpoint(DEFAULT_ENDPOINT.to_string()),
            url_path: UrlPath(DEFAULT_URL_PATH.to_string()),
            max_request_body_size: ByteSize(DEFAULT_MAX_REQUEST_BODY_SIZE),
            max_line_size: ByteSize(DEFAULT_MAX_LINE_SIZE),
            bearer_tokens: Vec::new(),
            resource: BTreeMap::new(),
            header_attributes: Vec::new(),
            mapping: MappingConfig::default(),
        }
    }
}

/// One `header_attributes` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderAttribute {
    /// The request header (case-insensitive).
    pub header: HeaderName,
    /// The attribute key; default `http.request.header.<lower-case header>`.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub target: HeaderTarget,
}

impl HeaderAttribute {
    pub fn attribute_key(&self) -> String {
        match &self.key {
            Some(k) => k.clone(),
            None => format!("http.request.header.{}", self.header.0),
        }
    }
}

/// A valid HTTP header name, stored lower-case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderName(pub String);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match http::HeaderName::from_bytes(s.trim().as_bytes()) {
            Ok(h) => Ok(HeaderName(h.as_str().to_string())),
            Err(_) => Err(error_with_hint(
                "invalid HTTP header name",
                "a header name such as `X-Request-Id`",
            )),
        }
    }
}

/// Where a copied header goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderTarget {
    /// Every log record's attributes.
    #[default]
    Attributes,
    /// The resource of every record in the request.
    Resource,
}

/// How numeric levels of keys other than `levelno` are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericLevels {
    /// pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    #[default]
    Pino,
    /// Python logging: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL.
    Python,
}

/// `mapping`: which JSON keys fill which log record fields. Each list is in
/// priority order (the first key present with a usable value wins); a dotted
/// key (`log.level`) matches the flat key or the nested path.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    pub timestamp_keys: Vec<String>,
    pub level_keys: Vec<String>,
    pub body_keys: Vec<String>,
    pub trace_id_keys: Vec<String>,
    pub span_id_keys: Vec<String>,
    pub service_keys: Vec<String>,
    pub scope_keys: Vec<String>,
    pub numeric_levels: NumericLevels,
    /// Keep the fields used for the time, level, body, ids, service and
    /// scope in the attributes too.
    pub keep_mapped_fields: bool,
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            timestamp_keys: owned(DEFAULT_TIMESTAMP_KEYS),
            level_keys: owned(DEFAULT_LEVEL_KEYS),
            body_keys: owned(DEFAULT_BODY_KEYS),
            trace_id_keys: owned(DEFAULT_TRACE_ID_KEYS),
            span_id_keys: owned(DEFAULT_SPAN_ID_KEYS),
            service_keys: owned(DEFAULT_SERVICE_KEYS),
            scope_keys: owned(DEFAULT_SCOPE_KEYS),
            numeric_levels: NumericLevels::Pino,
            keep_mapped_fields: false,
        }
    }
}

impl MappingConfig {
    pub(crate) fn lists(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("timestamp_keys", &self.timestamp_keys),
            ("level_keys", &self.level_keys),
            ("body_keys", &self.body_keys),
            ("trace_id_keys", &self.trace_id_keys),
            ("span_id_keys", &self.span_id_keys),
            ("service_keys", &self.service_keys),
            ("scope_keys", &self.scope_keys),
        ]
    }
}

impl JsonLogConfig {
    /// Parses and checks a `receivers.jsonlog` node, returning every problem.
    pub fn from_node(node: &Node) -> Result<JsonLogConfig, Vec<ConfigError>> {
        let config: JsonLogConfig = node.deserialize().map_err(|e| vec![e])?;
        let errors = config.validate(node);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    pub fn max_request_body_size(&self) -> usize {
        usize::try_from(self.max_request_body_size.as_u64()).unwrap_or(usize::MAX)
    }

    pub fn max_line_size(&self) -> usize {
        usize::try_from(self.max_line_size.as_u64()).unwrap_or(usize::MAX)
    }

    fn validate(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let at = |key: &[&str]| {
            let mut n = node;
            for k in key {
                match n.get(k) {
                    Some(child) => n = child,
                    None => break,
                }
            }
            (n.span().clone(), n.path().to_string())
        };
        for key in ["max_request_body_size", "max_line_size"] {
            let v = if key == "max_line_size" {
                self.max_line_size
            } else {
                self.max_request_body_size
            };
            if v.as_u64() == 0 {
                let (span, path) = at(&[key]);
                errors.push(ConfigError::error(
                    span,
                    path,
                    format!("{key} must be greater than 0"),
                ));
            }
        }
        if self.bearer_tokens.iter().any(Secret::is_empty) {
            let (span, path) = at(&["bearer_tokens"]);
            errors.push(
                ConfigError::error(span, path, "bearer_tokens must not contain an empty token")
                    .with_hint("an unset environment variable expands to an empty string"),
            );
        }
        for (name, list) in self.mapping.lists() {
            if list
                .iter()
                .any(|k| k.is_empty() || k.starts_with('.') || k.ends_with('.'))
            {
                let (span, path) = at(&["mapping", name]);
                errors.push(
                    ConfigError::error(span, path, format!("{name} contains an empty key"))
                        .with_hint(
                            "keys are JSON field names; `a.b` also matches the nested field b of a",
                        ),
                );
            }
        }
        let mut seen: Vec<(&str, HeaderTarget)> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for h in &self.header_attributes {
            let key = h.attribute_key();
            if seen.iter().any(|(n, t)| *n == h.header.0 && *t == h.target) || keys.contains(&key) {
                let (span, path) = at(&["header_attributes"]);
                errors.push(ConfigError::error(
                    span,
                    path,
                    format!(
                        "header_attributes lists the header `{}` or the key `{key}` twice",
                        h.header.0
                    ),
                ));
            }
            if key.is_empty() {
                let (span, path) = at(&["header_attributes"]);
                errors.push(ConfigError::error(
                    span,
                    path,
                    "header_attributes: key must not be empty",
                ));
            }
            seen.push((&h.header.0, h.target));
            keys.push(key);
        }
        errors
    }
}
