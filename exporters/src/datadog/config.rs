//! Config of the `datadog` exporter.
//!
//! Option names follow the Collector-contrib `datadog` exporter
//! (`exporter/datadogexporter`, `pkg/datadog/config`) where it has them:
//! `api.{key,site,fail_on_invalid_key}`, `hostname`, `metrics.{endpoint,
//! resource_attributes_as_tags, instrumentation_scope_metadata_as_tags,
//! delta_ttl, sums, histograms, summaries}`, `logs.{endpoint,
//! use_compression, compression_level}`, `traces.{endpoint,
//! ignore_resources, span_name_as_resource_name, span_name_remappings,
//! compute_stats_by_span_kind}`. confluo's own options, which the Collector
//! has no equivalent for, are marked so: `metrics.api_version`,
//! `metrics.compression`, `traces.protocol`, `traces.send_stats`.
//! The helper blocks (`timeout`, `retry_on_failure`, `sending_queue`) are
//! spelled out rather than flattened: `#[serde(flatten)]` would silently
//! switch off `deny_unknown_fields`.

use crate::util::field_error;
use confluo_config::{ConfigError, GoDuration, Node, Secret};
use confluo_pipeline::exporter_helper::{QueueSettings, RetrySettings};
use confluo_pipeline::tls::TlsClientSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The Collector's `datadog` exporter default (`timeout: 15s`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a local Datadog Agent listens for traces (`apm_config.receiver_port`).
pub const DEFAULT_AGENT_ENDPOINT: &str = "http://localhost:8126";

/// The sites Datadog serves (API docs' site table); another value is an
/// error unless it is a full host name the user clearly means (a proxy).
pub const KNOWN_SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
];

/// `api`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `DD-API-KEY`.
    pub key: Secret,
    #[serde(default = "default_site")]
    pub site: String,
    /// The Collector checks the key at start and fails when this is set.
    /// confluo checks it on the first answer instead: a 403 is permanent and
    /// counted either way.
    #[serde(default)]
    pub fail_on_invalid_key: bool,
}

fn default_site() -> String {
    "datadoghq.com".into()
}

/// `metrics.api_version` (confluo's own): which series API carries
/// counts, rates and gauges.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricsApiVersion {
    /// `POST /api/v2/series` (protobuf-free JSON, `resources`, types 1–3).
    #[default]
    V2,
    /// `POST /api/v1/series` (JSON, `host`, `type` as a string).
    V1,
}

/// `metrics.compression` (confluo's own): the series' `Content-Encoding`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricsCompression {
    /// zlib, Datadog's API client default.
    Deflate,
    #[default]
    Gzip,
    /// Datadog names its zstd encoding `zstd1`.
    Zstd1,
    #[serde(alias = "")]
    None,
}

/// `metrics.sums.cumulative_monotonic_mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CumulativeMonotonicMode {
    /// Stateful deltas between consecutive points, reset-aware, sent as counts.
    #[default]
    ToDelta,
    /// The cumulative value itself, as a gauge.
    RawValue,
}

/// `metrics.sums.initial_cumulative_monotonic_value`: what the first point
/// of a cumulative series becomes in `to_delta` mode.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InitialCumulativeValue {
    /// `keep` when the series started after the exporter (start time after
    /// the exporter's own start), otherwise `drop`.
    #[default]
    Auto,
    Drop,
    Keep,
}

/// `metrics.sums`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SumsConfig {
    pub cumulative_monotonic_mode: CumulativeMonotonicMode,
    pub initial_cumulative_monotonic_value: InitialCumulativeValue,
}

/// `metrics.histograms.mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HistogramMode {
    /// DDSketch sketches to the sketches endpoint (the Collector's default).
    #[default]
    Distributions,
    /// One count per bucket, tagged with its bounds.
    Counters,
    /// No bucket metrics (only the aggregations, when enabled).
    Nobuckets,
}

/// `metrics.histograms`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramsConfig {
    pub mode: HistogramMode,
    /// `.count`, `.sum` (and `.min`/`.max` when known) metrics beside the buckets.
    pub send_aggregation_metrics: bool,
}

impl Default for HistogramsConfig {
    fn default() -> Self {
        HistogramsConfig {
            mode: HistogramMode::Distributions,
            send_aggregation_metrics: false,
        }
    }
}

/// `metrics.summaries.mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SummaryMode {
    /// `.quantile` gauges tagged `quantile:<q>`, plus `.count` and `.sum`.
    #[default]
    Gauges,
    /// Only `.count` and `.sum`.
    Noquantiles,
}

/// `metrics.summaries`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummariesConfig {
    pub mode: SummaryMode,
}

/// `metrics`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Base URL; `/api/v2/series`, `/api/v1/series` or `/api/beta/sketches`
    /// is appended. Default `https://api.<site>`.
    pub endpoint: Option<String>,
    pub api_version: MetricsApiVersion,
    pub compression: MetricsCompression,
    pub resource_attributes_as_tags: bool,
    pub instrumentation_scope_metadata_as_tags: bool,
    /// Seconds a cumulative series' last point is kept for delta computation.
    pub delta_ttl: u64,
    pub sums: SumsConfig,
    pub histograms: HistogramsConfig,
    pub summaries: SummariesConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            endpoint: None,
            api_version: MetricsApiVersion::V2,
            compression: MetricsCompression::Gzip,
            resource_attributes_as_tags: false,
            instrumentation_scope_metadata_as_tags: false,
            delta_ttl: 3600,
            sums: SumsConfig::default(),
            histograms: HistogramsConfig::default(),
            summaries: SummariesConfig::default(),
        }
    }
}

/// `logs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Base URL; `/api/v2/logs` is appended. Default `https://http-intake.logs.<site>`.
    pub endpoint: Option<String>,
    /// gzip the payloads (the Collector's option).
    pub use_compression: bool,
    /// gzip level 1–9.
    pub compression_level: u32,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            endpoint: None,
            use_compression: true,
            compression_level: 6,
        }
    }
}

/// `traces.protocol` (confluo's own).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TracesProtocol {
    /// Datadog's intake: `/api/v0.2/traces` (AgentPayload protobuf, gzip)
    /// plus APM stats to `/api/v0.2/stats`, as the Agent sends them.
    #[default]
    Intake,
    /// A Datadog Agent's trace API: `/v0.4/traces` (msgpack).
    Agent,
}

/// `traces`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Base URL. Default `https://trace.agent.<site>` for `intake`,
    /// `http://localhost:8126` for `agent`.
    pub endpoint: Option<String>,
    pub protocol: TracesProtocol,
    /// Regexes over the resource name; matching root spans' traces are dropped.
    pub ignore_resources: Vec<String>,
    pub span_name_as_resource_name: bool,
    /// Span (operation) name → replacement name.
    pub span_name_remappings: BTreeMap<String, String>,
    /// Stats also for spans of kind server/consumer/client/producer that are
    /// not top-level (the Collector's option).
    pub compute_stats_by_span_kind: bool,
    /// Compute APM stats from the spans and send them (confluo's own: the
    /// Collector moved stats to its `datadog` connector). Without stats,
    /// Datadog's service pages stay empty.
    pub send_stats: bool,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            endpoint: None,
            protocol: TracesProtocol::Intake,
            ignore_resources: Vec::new(),
            span_name_as_resource_name: false,
            span_name_remappings: BTreeMap::new(),
            compute_stats_by_span_kind: true,
            send_stats: true,
        }
    }
}

/// The whole `datadog` block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatadogConfig {
    pub api: ApiConfig,
    /// The host name reported when a resource names none. Default: this
    /// machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub logs: LogsConfig,
    #[serde(default)]
    pub traces: TracesConfig,
    #[serde(default)]
    pub tls: TlsClientSettings,
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    #[serde(default)]
    pub retry_on_failure: RetrySettings,
    #[serde(default)]
    pub sending_queue: QueueSettings,
}

fn default_timeout() -> GoDuration {
    GoDuration(DEFAULT_TIMEOUT)
}

/// Parses a base URL: http(s), a host, no query.
pub fn parse_base_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|_| "not a valid URL".to_string())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("the URL must start with http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if uri.query().is_some() {
        return Err("the base URL must not have a query".into());
    }
    Ok(uri)
}

/// `base` + `path`, without doubling the slash.
pub fn join_url(base: &str, path: &str) -> Result<http::Uri, String> {
    let base = base.trim().trim_end_matches('/');
    parse_base_url(&format!("{base}{path}"))
}

impl DatadogConfig {
    fn site(&self) -> &str {
        self.api.site.trim()
    }

    /// Base URL of the metrics API.
    pub fn metrics_base(&self) -> String {
        self.metrics
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://api.{}", self.site()))
    }

    /// Base URL of the logs intake.
    pub fn logs_base(&self) -> String {
        self.logs
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://http-intake.logs.{}", self.site()))
    }

    /// Base URL of the trace intake or Agent.
    pub fn traces_base(&self) -> String {
        match (&self.traces.endpoint, self.traces.protocol) {
            (Some(e), _) => e.clone(),
            (None, TracesProtocol::Intake) => format!("https://trace.agent.{}", self.site()),
            (None, TracesProtocol::Agent) => DEFAULT_AGENT_ENDPOINT.into(),
        }
    }

    pub fn validate(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let api = node.get("api");
        let api_node = api.unwrap_or(node);
        if self.api.key.expose().trim().is_empty() {
            errors.push(
                field_error(api_node, "key", "`api.key` is empty")
                    .with_hint("set it from the environment: key: ${env:DD_API_KEY}"),
            );
        }
        let site = self.site();
        if !KNOWN_SITES.contains(&site) {
            errors.push(
                field_error(api_node, "site", format!("unknown Datadog site `{site}`")).with_hint(
                    format!(
                    "one of {}; to reach a proxy or a local Agent set the per-signal `endpoint`",
                    KNOWN_SITES.join(", ")
                ),
                ),
            );
        }
        for (block, endpoint) in [
            ("metrics", &self.metrics.endpoint),
            ("logs", &self.logs.endpoint),
            ("traces", &self.traces.endpoint),
        ] {
            if let Some(e) = endpoint {
                if let Err(msg) = parse_base_url(e) {
                    let n = node.get(block).unwrap_or(node);
                    errors.push(field_error(n, "endpoint", msg));
                }
            }
        }
        if !(1..=9).contains(&self.logs.compression_level) {
            let n = node.get("logs").unwrap_or(node);
            errors.push(field_error(
                n,
                "compression_level",
                "must be between 1 and 9",
            ));
        }
        if self.metrics.delta_ttl == 0 {
            let n = node.get("metrics").unwrap_or(node);
            errors.push(field_error(n, "delta_ttl", "must be at least 1 (seconds)"));
        }
        let h = &self.metrics.histograms;
        if h.mode == HistogramMode::Nobuckets && !h.send_aggregation_metrics {
            // The Collector refuses this too: such histograms would send nothing.
            let n = node
                .get("metrics")
                .and_then(|m| m.get("histograms"))
                .unwrap_or(node);
            errors.push(
                field_error(n, "mode", "`nobuckets` without `send_aggregation_metrics: true` sends nothing for histograms")
                    .with_hint("set metrics.histograms.send_aggregation_metrics: true, or use mode: distributions"),
            );
        }
        for (i, re) in self.traces.ignore_resources.iter().enumerate() {
            if let Err(e) = regex_lite_check(re) {
                let n = node.get("traces").unwrap_or(node);
                errors.push(field_error(
                    n,
                    "ignore_resources",
                    format!("entry {i}: not a valid regular expression: {e}"),
                ));
            }
        }
        errors
    }
}

/// Compiles a regex once to report its error at config time.
fn regex_lite_check(re: &str) -> Result<(), String> {
    regex::Regex::new(re).map(|_| ()).map_err(|e| e.to_string())
}
