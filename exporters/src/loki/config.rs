//! Config of the `loki` exporter.
//!
//! The Collector removed its Loki exporter in 2025 (in favour of Loki 3's
//! native OTLP endpoint), so there is no option set to copy. The options are
//! designed for Loki users, after Promtail (`clients[].url`, `tenant_id`,
//! `batchsize`, `basic_auth`, `bearer_token`) and Vector's `loki` sink
//! (`labels`, `encoding`, `tenant_id`, `out_of_order_action`), expressed with
//! the Collector's helper blocks (`timeout`, `retry_on_failure`,
//! `sending_queue`) which are repeated here rather than flattened, because
//! `#[serde(flatten)]` would silently switch off `deny_unknown_fields`.

use crate::util::field_error;
use confluo_config::{ByteSize, ConfigError, GoDuration, Node, Secret};
use confluo_pipeline::exporter_helper::{QueueSettings, RetrySettings};
use confluo_pipeline::tls::TlsClientSettings;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Loki's own limit on label names per stream (`max_label_names_per_series`).
pub const DEFAULT_MAX_LABELS: usize = 15;

/// Pushes are cut below this many uncompressed bytes. Loki's default tenant
/// ingestion burst is 6 MB: a bigger push could never pass the rate limiter.
pub const DEFAULT_MAX_PUSH_BYTES: u64 = 4 << 20;

/// Tenant IDs are at most 150 bytes (`docs/sources/operations/multi-tenancy.md`).
pub const MAX_TENANT_LEN: usize = 150;

/// Loki's default OTLP index labels
/// (`-distributor.otlp.default_resource_attributes_as_index_labels`,
/// `pkg/loghttp/push/otlplabels`), so that streams pushed through this
/// exporter look like the ones Loki builds from OTLP itself.
pub const DEFAULT_RESOURCE_LABELS: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// `protocol`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `POST /loki/api/v1/push`, snappy-compressed `logproto.PushRequest`.
    #[default]
    PushProtobuf,
    /// `POST /loki/api/v1/push` with the JSON body.
    PushJson,
    /// Loki 3's native OTLP endpoint: `<endpoint>/v1/logs`.
    Otlp,
}

/// `compression`. The protobuf push is always raw snappy: Loki decodes every
/// non-JSON body that way (`pkg/loghttp/push/push.go`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Snappy,
    Gzip,
    #[serde(alias = "")]
    None,
}

/// `line_format`: what the log line holds.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// A JSON object: the body (its keys when it is a map, else `"body"`)
    /// plus the record attributes that are not labels.
    #[default]
    Json,
    /// `msg=<body> key=value …`, the same content as `json`.
    Logfmt,
    /// The body as text; record attributes go to structured metadata.
    Raw,
}

/// Attribute → label name, in priority order. Written as a map
/// (`{service.name: service, k8s.pod.name: }`; an empty name means the
/// sanitised attribute name) or a list (`[service.name, k8s.pod.name]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelMap(pub Vec<(String, Option<String>)>);

impl<'de> Deserialize<'de> for LabelMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LabelMap, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LabelMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute name to label name, or a list of attribute names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LabelMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Option<String>>()? {
                    out.push((k, v.filter(|s| !s.is_empty())));
                }
                Ok(LabelMap(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<LabelMap, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = s.next_element::<String>()? {
                    out.push((k, None));
                }
                Ok(LabelMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LabelMap, E> {
                Ok(LabelMap::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// `labels`: what becomes a stream label.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Resource attributes promoted to labels. Absent: Loki's OTLP defaults.
    pub resource: Option<LabelMap>,
    /// Log record attributes promoted to labels (none by default: record
    /// attributes are usually high-cardinality).
    pub attributes: LabelMap,
    /// Fixed labels on every stream.
    #[serde(rename = "static")]
    pub static_labels: BTreeMap<String, String>,
    /// A `level` label from the record's severity.
    pub level: bool,
}

impl Default for LabelsConfig {
    fn default() -> Self {
        LabelsConfig {
            resource: None,
            attributes: LabelMap::default(),
            static_labels: BTreeMap::new(),
            level: true,
        }
    }
}

impl LabelsConfig {
    pub fn resource_labels(&self) -> LabelMap {
        match &self.resource {
            Some(m) => m.clone(),
            None => LabelMap(
                DEFAULT_RESOURCE_LABELS
                    .iter()
                    .map(|k| (k.to_string(), None))
                    .collect(),
            ),
        }
    }
}

/// `structured_metadata`: what rides along each entry besides the line.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// `trace_id` and `span_id` (hex), as Loki's OTLP ingestion stores them.
    pub trace_context: bool,
    /// Resource attributes that are not labels (Loki's OTLP default).
    pub resource_attributes: bool,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            trace_context: true,
            resource_attributes: true,
        }
    }
}

/// `tenant`: the `X-Scope-OrgID` of each push.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// A fixed tenant, or the fallback for records without `from_attribute`.
    pub id: Option<String>,
    /// Record attribute (then resource attribute) naming the tenant; pushes
    /// are partitioned by it.
    pub from_attribute: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

/// `auth`: one of basic or bearer.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub basic: Option<BasicAuth>,
    pub bearer_token: Option<Secret>,
}

/// Promtail's default client timeout is 10s; a 4 MiB push needs more than
/// the helper's 5s on a slow link.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `loki`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LokiConfig {
    /// The full push URL (`http://loki:3100/loki/api/v1/push`), or for
    /// `protocol: otlp` the base URL (`http://loki:3100/otlp`) to which
    /// `/v1/logs` is appended.
    pub endpoint: Option<String>,
    pub protocol: Protocol,
    /// Absent: snappy for `push_protobuf`, gzip otherwise.
    pub compression: Option<Compression>,
    pub labels: LabelsConfig,
    /// Labels per stream beyond this many (not counting `service_name`, as
    /// Loki does not) are demoted to structured metadata.
    pub max_labels: usize,
    pub line_format: LineFormat,
    pub structured_metadata: MetadataConfig,
    pub tenant: Option<TenantConfig>,
    /// Sent on every push. Values may be credentials.
    pub headers: BTreeMap<String, Secret>,
    pub auth: Option<AuthConfig>,
    pub tls: TlsClientSettings,
    /// Uncompressed size cap of one push (split before, merged up to).
    pub max_push_bytes: ByteSize,
    pub timeout: GoDuration,
    pub retry_on_failure: RetrySettings,
    pub sending_queue: QueueSettings,
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            endpoint: None,
            protocol: Protocol::PushProtobuf,
            compression: None,
            labels: LabelsConfig::default(),
            max_labels: DEFAULT_MAX_LABELS,
            line_format: LineFormat::Json,
            structured_metadata: MetadataConfig::default(),
            tenant: None,
            headers: BTreeMap::new(),
            auth: None,
            tls: TlsClientSettings::default(),
            max_push_bytes: ByteSize(DEFAULT_MAX_PUSH_BYTES),
            timeout: GoDuration(DEFAULT_TIMEOUT),
            retry_on_failure: RetrySettings::default(),
            sending_queue: QueueSettings::default(),
        }
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

/// `[a-zA-Z_][a-zA-Z0-9_]*`: the legacy Prometheus label charset Loki uses.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// dskit's `tenant.ValidTenantID`: alphanumerics and `!-_.*'()`, at most
/// 150 bytes, not `.` or `..` (a tenant is a path segment in object storage).
pub fn is_valid_tenant(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TENANT_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
}

impl LokiConfig {
    /// Where pushes go.
    pub fn url(&self) -> Result<http::Uri, String> {
        let endpoint = self
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or("`endpoint` is required (e.g. http://loki:3100/loki/api/v1/push)")?;
        parse_http_url(endpoint)?;
        match self.protocol {
            Protocol::Otlp => {
                let sep = if endpoint.ends_with('/') { "" } else { "/" };
                parse_http_url(&format!("{endpoint}{sep}v1/logs"))
            }
            _ => parse_http_url(endpoint),
        }
    }

    pub fn effective_compression(&self) -> Compression {
        match (self.compression, self.protocol) {
            (Some(c), _) => c,
            (None, Protocol::PushProtobuf) => Compression::Snappy,
            (None, _) => Compression::Gzip,
        }
    }

    /// Semantic checks beyond deserialization, for `check` and `create`.
    pub fn validate(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if let Err(e) = self.url() {
            errors.push(field_error(node, "endpoint", e));
        }
        if let Some(endpoint) = self.endpoint.as_deref() {
            let path_is_push = endpoint.trim_end_matches('/').ends_with("/push");
            if self.protocol == Protocol::Otlp && path_is_push {
                errors.push(
                    field_error(node, "endpoint", "protocol otlp takes the base URL of Loki's OTLP endpoint, not the push URL")
                        .with_hint("e.g. http://loki:3100/otlp (/v1/logs is appended)"),
                );
            }
        }
        match (self.protocol, self.compression) {
            (Protocol::PushProtobuf, Some(c)) if c != Compression::Snappy => errors.push(
                field_error(
                    node,
                    "compression",
                    "the protobuf push is always snappy-compressed (Loki decodes it that way)",
                )
                .with_hint("remove `compression`, or use protocol push_json for gzip"),
            ),
            (Protocol::PushJson | Protocol::Otlp, Some(Compression::Snappy)) => errors.push(
                field_error(
                    node,
                    "compression",
                    "snappy applies only to protocol push_protobuf",
                )
                .with_hint("use gzip or none"),
            ),
            _ => {}
        }
        if self.max_labels == 0 {
            errors.push(field_error(node, "max_labels", "must be at least 1"));
        }
        if self.max_push_bytes.0 < 1024 {
            errors.push(field_error(node, "max_push_bytes", "must be at least 1KiB"));
        }
        if self.protocol == Protocol::Otlp {
            // Loki's own OTLP config decides labels and metadata there.
            for key in ["labels", "line_format", "structured_metadata", "max_labels"] {
                if node.get(key).is_some() {
                    errors.push(
                        ConfigError::warning(
                            field_error(node, key, "").span,
                            format!("{}.{key}", node.path()),
                            format!("`{key}` has no effect with protocol otlp: Loki maps OTLP attributes itself"),
                        )
                        .with_hint("configure Loki's limits_config.otlp_config instead"),
                    );
                }
            }
        }
        for name in self.labels.static_labels.keys() {
            if !is_valid_label_name(name) {
                errors.push(
                    field_error(
                        node,
                        "labels",
                        format!("static label `{name}`: not a valid label name"),
                    )
                    .with_hint("label names match [a-zA-Z_][a-zA-Z0-9_]*"),
                );
            }
        }
        let renamed = self
            .labels
            .resource
            .iter()
            .flat_map(|m| m.0.iter())
            .chain(self.labels.attributes.0.iter());
        for (attr, label) in renamed {
            if let Some(label) = label {
                if !is_valid_label_name(label) {
                    errors.push(
                        field_error(
                            node,
                            "labels",
                            format!("attribute `{attr}` → label `{label}`: not a valid label name"),
                        )
                        .with_hint("label names match [a-zA-Z_][a-zA-Z0-9_]*"),
                    );
                }
            }
        }
        if self.labels.static_labels.len() > self.max_labels {
            errors.push(field_error(
                node,
                "labels",
                format!(
                    "{} static labels exceed max_labels ({})",
                    self.labels.static_labels.len(),
                    self.max_labels
                ),
            ));
        }
        if let Some(t) = &self.tenant {
            if t.id.is_none() && t.from_attribute.is_none() {
                errors.push(field_error(
                    node,
                    "tenant",
                    "set `id` (a fixed tenant) and/or `from_attribute`",
                ));
            }
            if let Some(id) = &t.id {
                if !is_valid_tenant(id) {
                    errors.push(
                        field_error(node, "tenant", "tenant.id is not a valid Loki tenant ID")
                            .with_hint("at most 150 bytes of letters, digits and !-_.*'()"),
                    );
                }
            }
            if self
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("x-scope-orgid"))
            {
                errors.push(field_error(
                    node,
                    "headers",
                    "X-Scope-OrgID is set both in `headers` and by `tenant`: keep one",
                ));
            }
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
        if let Some(auth) = &self.auth {
            if auth.basic.is_some() && auth.bearer_token.is_some() {
                errors.push(field_error(
                    node,
                    "auth",
                    "set one of `basic` and `bearer_token`, not both",
                ));
            }
            if self
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("authorization"))
            {
                errors.push(field_error(
                    node,
                    "headers",
                    "Authorization is set both in `headers` and by `auth`: keep one",
                ));
            }
            if let Some(b) = &auth.bearer_token {
                if http::HeaderValue::from_str(b.expose()).is_err() {
                    errors.push(field_error(
                        node,
                        "auth",
                        "bearer_token contains characters not allowed in a header",
                    ));
                }
            }
        }
        errors
    }
}
