//! Configs of `otlp_grpc` and `otlp_http`, with the Collector's option names
//! and defaults (`exporter/otlpexporter`, `exporter/otlphttpexporter`,
//! `config/configgrpc`, `config/confighttp`).
//!
//! The exporter-helper blocks (`timeout`, `retry_on_failure`,
//! `sending_queue`) are repeated here rather than flattened, because
//! `#[serde(flatten)]` would silently switch off `deny_unknown_fields`.

use crate::util::field_error;
use confluo_config::{ConfigError, GoDuration, Node, Secret};
use confluo_pipeline::exporter_helper::{default_timeout, QueueSettings, RetrySettings};
use confluo_pipeline::tls::TlsClientSettings;
use confluo_pipeline::SignalKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `compression`: the Collector's default for both OTLP exporters is gzip.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    /// `none`, or an empty string as the Collector also accepts.
    #[serde(alias = "")]
    None,
}

impl Compression {
    /// The `Content-Encoding` / `grpc-encoding` token.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        }
    }
}

/// `keepalive` of a gRPC client: HTTP/2 PINGs on the connection.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveSettings {
    /// Interval between PINGs.
    pub time: Option<GoDuration>,
    /// How long to wait for a PING's answer before closing the connection.
    pub timeout: Option<GoDuration>,
    /// Also PING while no call is in flight.
    pub permit_without_stream: bool,
}

/// `otlp_grpc` (alias `otlp`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// `host:port`, optionally with `http://` (plaintext) or `https://` (TLS).
    pub endpoint: Option<String>,
    pub tls: TlsClientSettings,
    /// Sent as gRPC metadata on every call. Values may be credentials.
    pub headers: BTreeMap<String, Secret>,
    pub compression: Compression,
    pub keepalive: Option<KeepaliveSettings>,
    /// Accepted for compatibility: `pick_first`, or `round_robin` (with a
    /// warning: the channel keeps one connection).
    pub balancer_name: Option<String>,
    pub timeout: GoDuration,
    pub retry_on_failure: RetrySettings,
    pub sending_queue: QueueSettings,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: None,
            tls: TlsClientSettings::default(),
            headers: BTreeMap::new(),
            compression: Compression::Gzip,
            keepalive: None,
            balancer_name: None,
            timeout: default_timeout(),
            retry_on_failure: RetrySettings::default(),
            sending_queue: QueueSettings::default(),
        }
    }
}

/// Where and how a gRPC channel connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcTarget {
    /// Always `http://host:port`: tonic must not try TLS itself (our
    /// connector does it), so the scheme carries no meaning here.
    pub uri: http::Uri,
    pub tls: bool,
}

impl GrpcConfig {
    /// Resolves `endpoint` and `tls` the Collector's way: TLS unless
    /// `tls.insecure` is set; `http://` forces plaintext and `https://` TLS;
    /// a missing port is 443, as grpc-go assumes.
    pub fn target(&self) -> Result<GrpcTarget, String> {
        let endpoint = self
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or("`endpoint` is required (host:port of the OTLP/gRPC server)")?;
        let (rest, scheme_tls) = if let Some(r) = endpoint.strip_prefix("https://") {
            (r, Some(true))
        } else if let Some(r) = endpoint.strip_prefix("http://") {
            (r, Some(false))
        } else if let Some(r) = endpoint.strip_prefix("dns:///") {
            (r, None)
        } else {
            (endpoint, None)
        };
        if rest.contains("://") {
            return Err(
                "unsupported endpoint scheme: use host:port, http://host:port or https://host:port"
                    .into(),
            );
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err("a gRPC endpoint has no path: use host:port".into());
        }
        let authority: http::uri::Authority = rest
            .parse()
            .map_err(|_| "the endpoint is not a valid host:port".to_string())?;
        if authority.host().is_empty() {
            return Err("the endpoint has no host".into());
        }
        let authority = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:443"),
        };
        let uri = format!("http://{authority}")
            .parse()
            .map_err(|_| "the endpoint is not a valid host:port".to_string())?;
        Ok(GrpcTarget {
            uri,
            tls: scheme_tls.unwrap_or(!self.tls.insecure),
        })
    }

    /// Semantic checks beyond deserialization, for `check` and `create`.
    pub fn validate(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if let Err(e) = self.target() {
            errors.push(field_error(node, "endpoint", e));
        }
        match self.balancer_name.as_deref() {
            None | Some("") | Some("pick_first") => {}
            Some("round_robin") => errors.push(
                ConfigError::warning(
                    field_error(node, "balancer_name", "").span,
                    format!("{}.balancer_name", node.path()),
                    "round_robin is not supported: the exporter keeps one connection (pick_first)",
                )
                .with_hint("put a load balancer in front, or use several exporters"),
            ),
            Some(_) => errors.push(
                field_error(node, "balancer_name", "unsupported balancer")
                    .with_hint("supported: pick_first"),
            ),
        }
        errors.extend(validate_headers(node, &self.headers, true));
        errors
    }
}

/// `encoding` of `otlp_http`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Proto,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Proto => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// The Collector's `otlphttp` default timeout (confighttp client: 30s).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `otlp_http` (alias `otlphttp`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Base URL; `/v1/traces`, `/v1/metrics`, `/v1/logs` are appended.
    pub endpoint: Option<String>,
    /// Full URLs that override `endpoint` for one signal.
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
    pub encoding: Encoding,
    pub compression: Compression,
    /// Sent on every request. Values may be credentials.
    pub headers: BTreeMap<String, Secret>,
    pub tls: TlsClientSettings,
    pub timeout: GoDuration,
    pub retry_on_failure: RetrySettings,
    pub sending_queue: QueueSettings,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: None,
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            encoding: Encoding::Proto,
            compression: Compression::Gzip,
            headers: BTreeMap::new(),
            tls: TlsClientSettings::default(),
            timeout: GoDuration(DEFAULT_HTTP_TIMEOUT),
            retry_on_failure: RetrySettings::default(),
            sending_queue: QueueSettings::default(),
        }
    }
}

fn signal_key(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::Traces => "traces_endpoint",
        SignalKind::Metrics => "metrics_endpoint",
        SignalKind::Logs => "logs_endpoint",
    }
}

fn parse_http_url(url: &str) -> Result<http::Uri, String> {
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
    Ok(uri)
}

impl HttpConfig {
    fn signal_override(&self, kind: SignalKind) -> Option<&str> {
        match kind {
            SignalKind::Traces => self.traces_endpoint.as_deref(),
            SignalKind::Metrics => self.metrics_endpoint.as_deref(),
            SignalKind::Logs => self.logs_endpoint.as_deref(),
        }
        .filter(|s| !s.trim().is_empty())
    }

    /// The URL one signal is POSTed to: its own `*_endpoint`, else
    /// `endpoint` + `/v1/<signal>` (the Collector's composition).
    pub fn url(&self, kind: SignalKind) -> Result<http::Uri, String> {
        if let Some(url) = self.signal_override(kind) {
            return parse_http_url(url).map_err(|e| format!("{}: {e}", signal_key(kind)));
        }
        let base = self
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                format!(
                    "no URL for {kind}: set `endpoint` (base URL) or `{}`",
                    signal_key(kind)
                )
            })?;
        parse_http_url(base).map_err(|e| format!("endpoint: {e}"))?;
        let sep = if base.ends_with('/') { "" } else { "/" };
        parse_http_url(&format!("{base}{sep}v1/{kind}")).map_err(|e| format!("endpoint: {e}"))
    }

    /// Semantic checks. Every signal's URL is checked when `endpoint` is
    /// set; otherwise the overrides that are set must parse, and `create`
    /// checks that each signal actually used has one.
    pub fn validate(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let any_override = SignalKind::ALL
            .iter()
            .any(|k| self.signal_override(*k).is_some());
        let has_base = self
            .endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty());
        if !has_base && !any_override {
            errors.push(field_error(
                node,
                "endpoint",
                "`endpoint` (or traces_endpoint / metrics_endpoint / logs_endpoint) is required",
            ));
        }
        for kind in SignalKind::ALL {
            if self.signal_override(kind).is_none() && !has_base {
                continue;
            }
            if let Err(e) = self.url(kind) {
                let key = if self.signal_override(kind).is_some() {
                    signal_key(kind)
                } else {
                    "endpoint"
                };
                errors.push(field_error(node, key, e));
            }
        }
        errors.dedup();
        errors.extend(validate_headers(node, &self.headers, false));
        errors
    }
}

/// Header names must be valid HTTP names (lower-case ASCII for gRPC
/// metadata) and values visible ASCII. Messages name the header, never the
/// value, which may be a credential.
fn validate_headers(
    node: &Node,
    headers: &BTreeMap<String, Secret>,
    grpc: bool,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, value) in headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || (grpc && name.to_ascii_lowercase().ends_with("-bin"))
        {
            errors.push(field_error(
                node,
                "headers",
                format!("header `{name}`: not a valid header name (binary `-bin` metadata is not supported)"),
            ));
        } else if http::HeaderValue::from_str(value.expose()).is_err() {
            errors.push(field_error(
                node,
                "headers",
                format!("header `{name}`: the value contains characters not allowed in a header"),
            ));
        }
    }
    errors
}

/// The `headers` map as an HTTP header map (values marked sensitive so that
/// hyper never logs them). Call after `validate`.
pub(crate) fn header_map(headers: &BTreeMap<String, Secret>) -> Result<http::HeaderMap, String> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let n = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header `{name}`: invalid name"))?;
        let mut v = http::HeaderValue::from_str(value.expose())
            .map_err(|_| format!("header `{name}`: invalid value"))?;
        v.set_sensitive(true);
        map.append(n, v);
    }
    Ok(map)
}
