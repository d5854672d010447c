//! The `otlp` receiver's configuration: the Collector's
//! `receiver/otlpreceiver` shape (`protocols.grpc`, `protocols.http`) with the
//! same option names and defaults.

use confluo_config::{error_with_hint, ByteSize, ConfigError, Node};
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;

/// The Collector's default gRPC endpoint (loopback only, as the Collector's is).
pub const DEFAULT_GRPC_ENDPOINT: &str = "localhost:4317";
/// The Collector's default HTTP endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "localhost:4318";
/// The Collector's default `max_request_body_size`: 20 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 20 << 20;
/// grpc-go's (and so the Collector's) default receive limit.
pub const DEFAULT_MAX_RECV_MSG_SIZE_MIB: u64 = 4;

/// `receivers.otlp`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    pub protocols: Protocols,
}

/// `receivers.otlp.protocols`: an absent protocol is not started; a present
/// one with no value (`grpc:`) runs with its defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    #[serde(deserialize_with = "present_means_enabled")]
    pub grpc: Option<GrpcConfig>,
    #[serde(deserialize_with = "present_means_enabled")]
    pub http: Option<HttpConfig>,
}

/// `protocols.grpc`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    pub endpoint: Endpoint,
    /// Largest accepted message, both as sent and after decompression, in MiB
    /// (0 = the default 4).
    pub max_recv_msg_size_mib: u64,
    /// HTTP/2 streams per connection (0 = no limit of our own).
    pub max_concurrent_streams: u32,
    /// Copy the request's gRPC metadata into the batch's client info.
    pub include_metadata: bool,
    #[serde(rename = "tls", deserialize_with = "reject_tls")]
    tls: (),
    #[serde(rename = "auth", deserialize_with = "reject_auth")]
    auth: (),
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: Endpoint(DEFAULT_GRPC_ENDPOINT.to_string()),
            max_recv_msg_size_mib: DEFAULT_MAX_RECV_MSG_SIZE_MIB,
            max_concurrent_streams: 0,
            include_metadata: false,
            tls: (),
            auth: (),
        }
    }
}

impl GrpcConfig {
    pub fn max_recv_msg_size(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 {
            DEFAULT_MAX_RECV_MSG_SIZE_MIB
        } else {
            self.max_recv_msg_size_mib
        };
        usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// `protocols.http`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub endpoint: Endpoint,
    /// Largest accepted body, both as sent and after decompression.
    pub max_request_body_size: ByteSize,
    /// Copy the request headers into the batch's client info.
    pub include_metadata: bool,
    pub traces_url_path: UrlPath,
    pub metrics_url_path: UrlPath,
    pub logs_url_path: UrlPath,
    #[serde(deserialize_with = "present_means_enabled")]
    pub cors: Option<CorsConfig>,
    #[serde(rename = "tls", deserialize_with = "reject_tls")]
    tls: (),
    #[serde(rename = "auth", deserialize_with = "reject_auth")]
    auth: (),
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: Endpoint(DEFAULT_HTTP_ENDPOINT.to_string()),
            max_request_body_size: ByteSize(DEFAULT_MAX_REQUEST_BODY_SIZE),
            include_metadata: false,
            traces_url_path: UrlPath("/v1/traces".into()),
            metrics_url_path: UrlPath("/v1/metrics".into()),
            logs_url_path: UrlPath("/v1/logs".into()),
            cors: None,
            tls: (),
            auth: (),
        }
    }
}

impl HttpConfig {
    pub fn max_request_body_size(&self) -> usize {
        usize::try_from(self.max_request_body_size.as_u64()).unwrap_or(usize::MAX)
    }
}

/// `protocols.http.cors`. CORS is only enabled when `allowed_origins` is not
/// empty, as in the Collector.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins, possibly with `*` wildcards (`https://*.example.com`, `*`).
    pub allowed_origins: Vec<String>,
    /// Request headers allowed beyond the always-allowed safelist.
    pub allowed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer (0 = not sent).
    pub max_age: u64,
}

/// A `host:port` listen address. Validated when the config is read so that a
/// typo is reported with its position instead of as a bind failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint(pub String);

impl Endpoint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = s
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(error_with_hint(
                "invalid endpoint: expected host:port",
                "e.g. `localhost:4317`, `0.0.0.0:4318` or `[::1]:4317`; port 0 picks a free port",
            ));
        }
        Ok(Endpoint(s))
    }
}

/// An HTTP path for one signal; a missing leading `/` is added, as the
/// Collector does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlPath(pub String);

impl UrlPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UrlPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
            return Err(error_with_hint(
                "invalid URL path",
                "a path such as `/v1/traces`, without spaces, query or fragment",
            ));
        }
        Ok(UrlPath(if s.starts_with('/') {
            s
        } else {
            format!("/{s}")
        }))
    }
}

/// `grpc:` with no value means "enabled with defaults", unlike serde's usual
/// reading of null as `None`. The config deserializer reads a null node as an
/// empty map, so deserializing the struct itself gives the defaults.
fn present_means_enabled<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// TLS for receivers is a later issue. Silently ignoring a `tls` block would
/// serve plaintext to a user who asked for encryption, so it is an error.
fn reject_tls<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    IgnoredAny::deserialize(d)?;
    Err(error_with_hint(
        "`tls` is not supported yet by the otlp receiver",
        "remove it and terminate TLS in front of confluo (a proxy or sidecar) until receiver TLS lands",
    ))
}

/// Same reasoning as [`reject_tls`]: ignoring `auth` would accept
/// unauthenticated data.
fn reject_auth<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    IgnoredAny::deserialize(d)?;
    Err(error_with_hint(
        "`auth` is not supported yet by the otlp receiver",
        "remove it and authenticate in front of confluo until receiver authenticators land",
    ))
}

impl OtlpConfig {
    /// Parses and checks a `receivers.otlp` node, returning every problem.
    pub fn from_node(node: &Node) -> Result<OtlpConfig, Vec<ConfigError>> {
        let config: OtlpConfig = node.deserialize().map_err(|e| vec![e])?;
        let errors = config.validate(node);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Checks that need the whole struct (the per-field ones run while
    /// deserializing, with the field's position).
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
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            let (span, path) = at(&["protocols"]);
            errors.push(
                ConfigError::error(
                    span,
                    path,
                    "must specify at least one protocol when using the otlp receiver",
                )
                .with_hint("add `protocols: { grpc: }` and/or `protocols: { http: }`"),
            );
        }
        if let Some(http) = &self.protocols.http {
            if http.max_request_body_size.as_u64() == 0 {
                let (span, path) = at(&["protocols", "http", "max_request_body_size"]);
                errors.push(ConfigError::error(
                    span,
                    path,
                    "max_request_body_size must be greater than 0",
                ));
            }
            let paths = [
                ("traces_url_path", &http.traces_url_path),
                ("metrics_url_path", &http.metrics_url_path),
                ("logs_url_path", &http.logs_url_path),
            ];
            for (i, (key, path)) in paths.iter().enumerate() {
                if let Some((other, _)) = paths[..i].iter().find(|(_, p)| p == path) {
                    let (span, yaml_path) = at(&["protocols", "http", key]);
                    errors.push(ConfigError::error(
                        span,
                        yaml_path,
                        format!("{key} is the same path as {other}"),
                    ));
                }
            }
        }
        errors
    }
}
