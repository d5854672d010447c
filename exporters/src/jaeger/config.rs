//! Config of the `jaeger` exporter. The Collector removed its `jaeger`
//! exporter in v0.85, so these options are confluo's own, modelled on
//! `otlp_grpc` (same `endpoint`/`tls`/`headers` meaning and the exporter
//! helper's `timeout`, `retry_on_failure`, `sending_queue`), plus
//! `protocol` to pick the wire.

use crate::otlp::config::{Compression as OtlpCompression, GrpcConfig};
use confluo_config::{ConfigError, GoDuration, Node, Secret};
use confluo_pipeline::exporter_helper::{default_timeout, QueueSettings, RetrySettings};
use confluo_pipeline::tls::TlsClientSettings;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Port of Jaeger's OTLP/gRPC receiver (Jaeger ≥ 1.35, and v2).
pub const OTLP_GRPC_PORT: u16 = 4317;
/// Port of Jaeger's `api_v2` gRPC collector.
pub const GRPC_API_V2_PORT: u16 = 14250;

/// `protocol`: how spans reach Jaeger.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP over gRPC: what Jaeger ≥ 1.35 and Jaeger v2 accept natively.
    #[default]
    OtlpGrpc,
    /// `jaeger.api_v2.CollectorService/PostSpans`, for older collectors.
    GrpcApiV2,
}

impl Protocol {
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::OtlpGrpc => OTLP_GRPC_PORT,
            Protocol::GrpcApiV2 => GRPC_API_V2_PORT,
        }
    }
}

/// `compression`: gzip or none.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    /// `none`, or an empty string as `otlp_grpc` also accepts.
    #[serde(alias = "")]
    None,
}

/// `jaeger`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JaegerConfig {
    pub protocol: Protocol,
    /// `host:port`, optionally with `http://` (plaintext) or `https://`
    /// (TLS). Without a port: 4317 for `otlp_grpc`, 14250 for `grpc_api_v2`.
    pub endpoint: Option<String>,
    /// TLS unless `tls.insecure: true`, as `otlp_grpc`.
    pub tls: TlsClientSettings,
    /// Sent as gRPC metadata on every call. Values may be credentials.
    pub headers: BTreeMap<String, Secret>,
    /// Default: gzip for `otlp_grpc` (as that exporter), none for
    /// `grpc_api_v2` (as the Collector's former jaeger exporter).
    pub compression: Option<Compression>,
    pub timeout: GoDuration,
    pub retry_on_failure: RetrySettings,
    pub sending_queue: QueueSettings,
}

impl Default for JaegerConfig {
    fn default() -> Self {
        JaegerConfig {
            protocol: Protocol::OtlpGrpc,
            endpoint: None,
            tls: TlsClientSettings::default(),
            headers: BTreeMap::new(),
            compression: None,
            timeout: default_timeout(),
            retry_on_failure: RetrySettings::default(),
            sending_queue: QueueSettings::default(),
        }
    }
}

impl JaegerConfig {
    pub fn compression(&self) -> Compression {
        self.compression.unwrap_or(match self.protocol {
            Protocol::OtlpGrpc => Compression::Gzip,
            Protocol::GrpcApiV2 => Compression::None,
        })
    }

    /// The same channel settings as an `otlp_grpc` config, with the
    /// protocol's default port filled in: both protocols share that
    /// exporter's channel, TLS and metadata code.
    pub fn grpc_config(&self) -> GrpcConfig {
        GrpcConfig {
            endpoint: self
                .endpoint
                .as_deref()
                .map(|e| with_default_port(e, self.protocol.default_port())),
            tls: self.tls.clone(),
            headers: self.headers.clone(),
            compression: match self.compression() {
                Compression::Gzip => OtlpCompression::Gzip,
                Compression::None => OtlpCompression::None,
            },
            keepalive: None,
            balancer_name: None,
            timeout: self.timeout,
            retry_on_failure: self.retry_on_failure.clone(),
            sending_queue: self.sending_queue.clone(),
        }
    }

    /// Endpoint and header checks, reported at this exporter's keys.
    pub fn validate(&self, node: &Node) -> Vec<ConfigError> {
        self.grpc_config().validate(node)
    }
}

/// Appends `:port` to an endpoint that names only a host; anything else is
/// returned as written, for the `otlp_grpc` parser to accept or explain.
pub fn with_default_port(endpoint: &str, port: u16) -> String {
    let endpoint = endpoint.trim();
    let (scheme, rest) = ["https://", "http://", "dns:///"]
        .iter()
        .find_map(|p| endpoint.strip_prefix(p).map(|r| (*p, r)))
        .unwrap_or(("", endpoint));
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains("://") {
        return endpoint.to_string();
    }
    match host.parse::<http::uri::Authority>() {
        Ok(a) if a.port().is_none() && !a.host().is_empty() => format!("{scheme}{host}:{port}"),
        _ => endpoint.to_string(),
    }
}
