//! Configuration of the `correlation` processor and the `correlation_store`
//! extension.

use confluo_config::{ByteSize, ComponentId, GoDuration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The value of a `resource_defaults` entry that means "find it out".
pub const DETECT: &str = "detect";

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// The `correlation_store` extension shared with the other pipelines;
    /// absent = the process-wide default store.
    pub store: Option<ComponentId>,
    /// Attribute (or structured body) keys holding a trace id, in order of preference.
    pub trace_id_keys: Vec<String>,
    /// Keys holding a span id, in order of preference.
    pub span_id_keys: Vec<String>,
    /// Keys holding a W3C `traceparent` header value.
    pub traceparent_keys: Vec<String>,
    /// Keys whose all-digit values are decimal 64-bit ids (Datadog's log
    /// injection); a decimal trace id fills the lower half of the trace id.
    pub decimal_id_keys: Vec<String>,
    /// Keys holding a request / correlation id, in order of preference.
    pub correlation_id_keys: Vec<String>,
    /// The one attribute key correlation ids are normalised into.
    pub correlation_id_attribute: String,
    /// Keep the attributes an id was promoted or normalised from.
    pub keep_original_keys: bool,
    /// Which span a correlation id points at when several spans carry it.
    pub span_selection: SpanSelection,
    pub hold: HoldConfig,
    /// Resource attributes set when a resource lacks them; `host.name: detect`
    /// uses this machine's host name.
    pub resource_defaults: BTreeMap<String, String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            store: None,
            trace_id_keys: strings(&["trace_id", "trace.id", "otelTraceID", "dd.trace_id"]),
            span_id_keys: strings(&["span_id", "span.id", "otelSpanID", "dd.span_id"]),
            traceparent_keys: strings(&["traceparent"]),
            decimal_id_keys: strings(&["dd.trace_id", "dd.span_id"]),
            correlation_id_keys: strings(&[
                "request_id",
                "correlation_id",
                "x-request-id",
                "x_request_id",
                "x-correlation-id",
                "requestId",
                "correlationId",
                "request.id",
                "correlation.id",
                "http.request.header.x-request-id",
                "http.request.header.x_request_id",
                "http.request.header.x-correlation-id",
            ]),
            correlation_id_attribute: "request_id".into(),
            keep_original_keys: false,
            span_selection: SpanSelection::ServerFirst,
            hold: HoldConfig::default(),
            resource_defaults: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SpanSelection {
    /// Prefer SERVER/CONSUMER spans, then root spans, then the first seen.
    ServerFirst,
    /// The first span seen with the id wins.
    First,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HoldConfig {
    /// How long a log waits for its span; 0 disables holding.
    pub max_wait: GoDuration,
    /// Bound on held log data (protobuf-encoded size).
    pub max_bytes: ByteSize,
    /// Bound on held log records.
    pub max_log_records: usize,
}

impl Default for HoldConfig {
    fn default() -> Self {
        HoldConfig {
            max_wait: GoDuration(Duration::from_secs(5)),
            max_bytes: ByteSize(64 << 20),
            max_log_records: 100_000,
        }
    }
}

impl CorrelationConfig {
    /// Every problem, as messages naming the option.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(id) = &self.store {
            if id.type_name() != super::store::STORE_TYPE {
                out.push(format!(
                    "store: \"{id}\" is not a {} extension",
                    super::store::STORE_TYPE
                ));
            }
        }
        if self.correlation_id_attribute.is_empty() {
            out.push("correlation_id_attribute must not be empty".into());
        }
        for (name, keys) in [
            ("trace_id_keys", &self.trace_id_keys),
            ("span_id_keys", &self.span_id_keys),
            ("traceparent_keys", &self.traceparent_keys),
            ("decimal_id_keys", &self.decimal_id_keys),
            ("correlation_id_keys", &self.correlation_id_keys),
        ] {
            if keys.iter().any(|k| k.is_empty()) {
                out.push(format!("{name} must not contain an empty key"));
            }
        }
        if !self.hold.max_wait.0.is_zero() {
            if self.hold.max_bytes.0 == 0 {
                out.push("hold.max_bytes must be greater than 0 (or set hold.max_wait: 0 to disable holding)".into());
            }
            if self.hold.max_log_records == 0 {
                out.push("hold.max_log_records must be greater than 0 (or set hold.max_wait: 0 to disable holding)".into());
            }
        }
        for (k, v) in &self.resource_defaults {
            if k.is_empty() {
                out.push("resource_defaults must not contain an empty key".into());
            }
            if v.is_empty() {
                out.push(format!("resource_defaults.{k} must not be empty"));
            }
            if v == DETECT && k != "host.name" {
                out.push(format!(
                    "resource_defaults.{k}: `detect` is only supported for host.name"
                ));
            }
        }
        out
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How long a span's correlation id is remembered.
    pub ttl: GoDuration,
    /// Bound on remembered correlation ids; the oldest go first.
    pub max_entries: usize,
    /// Bound on the store's estimated memory.
    pub max_bytes: ByteSize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            ttl: GoDuration(Duration::from_secs(120)),
            max_entries: 100_000,
            max_bytes: ByteSize(32 << 20),
        }
    }
}

impl StoreConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.ttl.0.is_zero() {
            out.push("ttl must be greater than 0".into());
        }
        if self.max_entries == 0 {
            out.push("max_entries must be greater than 0".into());
        }
        if self.max_bytes.0 == 0 {
            out.push("max_bytes must be greater than 0".into());
        }
        out
    }
}
