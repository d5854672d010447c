//! Small helpers shared by the exporters.

use confluo_config::{ConfigError, Node};
use confluo_pipeline::otlp_json;
use confluo_pipeline::proto::logs_service::ExportLogsServiceRequest;
use confluo_pipeline::proto::metrics_service::ExportMetricsServiceRequest;
use confluo_pipeline::proto::trace_service::ExportTraceServiceRequest;
use confluo_pipeline::{ComponentError, Signal};

/// Sent as `User-Agent` by the network exporters.
pub(crate) const USER_AGENT: &str = concat!("confluo/", env!("CARGO_PKG_VERSION"));

/// An error about `key` of a component's config, pointing at the key when it
/// is present and at the component otherwise (a missing required option).
pub(crate) fn field_error(node: &Node, key: &str, message: impl Into<String>) -> ConfigError {
    let span = node
        .get(key)
        .map(|n| n.key_span().clone())
        .unwrap_or_else(|| node.key_span().clone());
    let path = if node.path().is_empty() {
        key.to_string()
    } else {
        format!("{}.{key}", node.path())
    };
    ConfigError::error(span, path, message)
}

/// Deserializes and semantically checks a config: every problem, for `check`.
pub(crate) fn check_with<T: serde::de::DeserializeOwned>(
    node: &Node,
    validate: impl FnOnce(&T, &Node) -> Vec<ConfigError>,
) -> Vec<ConfigError> {
    match node.deserialize::<T>() {
        Ok(cfg) => validate(&cfg, node),
        Err(e) => vec![e],
    }
}

/// Deserializes a config for `create`, failing on the first error (warnings
/// were already reported by `check`).
pub(crate) fn load_with<T: serde::de::DeserializeOwned>(
    node: &Node,
    validate: impl FnOnce(&T, &Node) -> Vec<ConfigError>,
) -> Result<T, ComponentError> {
    let cfg = node.deserialize::<T>()?;
    if let Some(e) = validate(&cfg, node).into_iter().find(ConfigError::is_error) {
        return Err(e.into());
    }
    Ok(cfg)
}

/// Appends `signal` as an OTLP/JSON export request (borrowed, no copy).
pub(crate) fn encode_json(signal: &Signal, out: &mut Vec<u8>) {
    otlp_json::encode_signal(signal, out)
}

/// Appends `signal` as an OTLP/JSON export request without copying it.
pub(crate) fn encode_json_owned(signal: Signal, out: &mut Vec<u8>) {
    match signal {
        Signal::Traces(resource_spans) => {
            otlp_json::encode_traces(&ExportTraceServiceRequest { resource_spans }, out)
        }
        Signal::Metrics(resource_metrics) => {
            otlp_json::encode_metrics(&ExportMetricsServiceRequest { resource_metrics }, out)
        }
        Signal::Logs(resource_logs) => {
            otlp_json::encode_logs(&ExportLogsServiceRequest { resource_logs }, out)
        }
    }
}

/// At most `max` bytes of `s` (on a char boundary), marked when cut: server
/// error texts end up in log lines and must not flood them.
pub(crate) fn cap_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// The error text of a refused HTTP request: `HTTP 503` or `HTTP 503: detail`.
pub(crate) fn http_error(status: impl std::fmt::Display, detail: &str) -> String {
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// A response's `Retry-After` (seconds or an HTTP date), when it has a valid one.
pub(crate) fn retry_after(
    resp: &confluo_pipeline::http_client::HttpResponse,
) -> Option<std::time::Duration> {
    resp.headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(confluo_pipeline::exporter_helper::parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_text_cuts_on_char_boundaries() {
        assert_eq!(cap_text("short", 10), "short");
        let cut = cap_text("ééééé", 3);
        assert!(cut.starts_with('é') && cut.contains("10 bytes"), "{cut}");
    }
}
