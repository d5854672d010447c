//! The top level of the config (`receivers` … `service`) and loading it.

use std::path::PathBuf;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::error::{did_you_mean, ConfigError, Diagnostics, Quote, Span};
use crate::ids::{ComponentId, ComponentKind, PipelineId, Spanned};
use crate::node::{self, Node};

/// The config after loading: component configs are still raw [`Node`]s, which
/// each component deserializes itself (see [`crate::Catalog::check_config`]).
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    pub receivers: IndexMap<ComponentId, Node>,
    pub processors: IndexMap<ComponentId, Node>,
    pub exporters: IndexMap<ComponentId, Node>,
    pub connectors: IndexMap<ComponentId, Node>,
    pub extensions: IndexMap<ComponentId, Node>,
    pub service: ServiceConfig,
    /// Warnings found while loading (e.g. ignored `service.telemetry.traces`);
    /// [`crate::validate`] reports them with its own findings.
    pub warnings: Vec<ConfigError>,
}

impl RawConfig {
    pub fn components(&self, kind: ComponentKind) -> &IndexMap<ComponentId, Node> {
        match kind {
            ComponentKind::Receiver => &self.receivers,
            ComponentKind::Processor => &self.processors,
            ComponentKind::Exporter => &self.exporters,
            ComponentKind::Connector => &self.connectors,
            ComponentKind::Extension => &self.extensions,
        }
    }

    fn components_mut(&mut self, kind: ComponentKind) -> &mut IndexMap<ComponentId, Node> {
        match kind {
            ComponentKind::Receiver => &mut self.receivers,
            ComponentKind::Processor => &mut self.processors,
            ComponentKind::Exporter => &mut self.exporters,
            ComponentKind::Connector => &mut self.connectors,
            ComponentKind::Extension => &mut self.extensions,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    pub extensions: Vec<Spanned<ComponentId>>,
    pub pipelines: IndexMap<PipelineId, PipelineConfig>,
    pub telemetry: TelemetryConfig,
    /// Where `service:` is, for errors about the section as a whole; `None` when absent.
    pub span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub span: Span,
    pub receivers: Vec<Spanned<ComponentId>>,
    pub processors: Vec<Spanned<ComponentId>>,
    pub exporters: Vec<Spanned<ComponentId>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetryConfig {
    pub logs: TelemetryLogs,
    pub metrics: TelemetryMetrics,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryLogs {
    pub level: LogLevel,
    /// Defaults to JSON, unlike the Collector (console): confluo's own logs are structured.
    pub encoding: LogEncoding,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    #[default]
    Json,
    Console,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryMetrics {
    pub level: MetricsLevel,
    /// `host:port` of the self-telemetry endpoint.
    pub address: String,
}

pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:8888";

impl Default for TelemetryMetrics {
    fn default() -> Self {
        TelemetryMetrics {
            level: MetricsLevel::default(),
            address: DEFAULT_METRICS_ADDRESS.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsLevel {
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTelemetry {
    logs: TelemetryLogs,
    metrics: RawMetrics,
    #[allow(dead_code)]
    resource: Option<std::collections::BTreeMap<String, IgnoredAny>>,
    #[allow(dead_code)]
    traces: Option<IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMetrics {
    level: MetricsLevel,
    address: Option<String>,
    readers: Option<Vec<RawReader>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReader {
    pull: RawPull,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPull {
    exporter: RawPullExporter,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPullExporter {
    prometheus: RawPrometheus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawPrometheus {
    #[serde(default = "default_prometheus_host")]
    host: String,
    port: u16,
    // Accepted for compatibility with Collector configs; confluo's exposition
    // already follows these choices.
    without_type_suffix: Option<bool>,
    without_units: Option<bool>,
    without_scope_info: Option<bool>,
}

fn default_prometheus_host() -> String {
    "localhost".to_string()
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn parse_telemetry(node: &Node, errors: &mut Vec<ConfigError>) -> TelemetryConfig {
    let raw: RawTelemetry = match node.deserialize() {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            return TelemetryConfig::default();
        }
    };
    let mut out = TelemetryConfig {
        logs: raw.logs,
        metrics: TelemetryMetrics {
            level: raw.metrics.level,
            address: DEFAULT_METRICS_ADDRESS.to_string(),
        },
    };
    if let Some(t) = node.get("traces") {
        errors.push(
            ConfigError::warning(
                t.key_span().clone(),
                t.path(),
                "confluo does not export its own traces; this section is ignored",
            )
            .with_hint("remove `service.telemetry.traces`"),
        );
    }
    let metrics = node.get("metrics");
    let readers_node = metrics.and_then(|m| m.get("readers"));
    match (raw.metrics.address, raw.metrics.readers) {
        (Some(_), Some(_)) => {
            if let Some(r) = readers_node {
                errors.push(
                    ConfigError::error(
                        r.key_span().clone(),
                        metrics.map(Node::path).unwrap_or_default(),
                        "set either `address` or `readers`, not both",
                    )
                    .with_hint("`address` is the older form of a pull prometheus reader"),
                );
            }
        }
        (Some(a), None) => out.metrics.address = a,
        (None, Some(readers)) => {
            if readers.len() > 1 {
                if let Some(r) = readers_node.and_then(|r| r.as_seq()).and_then(|s| s.get(1)) {
                    errors.push(ConfigError::error(
                        r.span().clone(),
                        r.path(),
                        "only one metrics reader (a pull prometheus exporter) is supported",
                    ));
                }
            }
            if let Some(first) = readers.first() {
                let p = &first.pull.exporter.prometheus;
                out.metrics.address = host_port(&p.host, p.port);
            }
        }
        (None, None) => {}
    }
    out
}

fn component_list(node: Option<&Node>, errors: &mut Vec<ConfigError>) -> Vec<Spanned<ComponentId>> {
    let Some(node) = node else {
        return Vec::new();
    };
    if node.is_null() {
        return Vec::new();
    }
    let Some(items) = node.as_seq() else {
        errors.push(
            ConfigError::error(
                node.span().clone(),
                node.path(),
                format!(
                    "expected a list of component ids, found {}",
                    node.kind_name()
                ),
            )
            .with_hint("write `[a, b]` or one `- id` per line"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_str() {
            Some(text) => match ComponentId::from_str(text) {
                Ok(id) => out.push(Spanned {
                    value: id,
                    span: item.span().clone(),
                    path: item.path().to_string(),
                }),
                Err(e) => errors.push(
                    ConfigError::error(item.span().clone(), item.path(), e.message)
                        .with_hint_opt(e.hint),
                ),
            },
            None => errors.push(ConfigError::error(
                item.span().clone(),
                item.path(),
                format!("expected a component id, found {}", item.kind_name()),
            )),
        }
    }
    out
}

/// Checks that `node` is a map (null counts as empty) and reports unknown keys.
fn map_with_keys<'a>(
    node: &'a Node,
    allowed: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Option<&'a IndexMap<String, Node>> {
    if node.is_null() {
        return None;
    }
    let Some(map) = node.as_map() else {
        errors.push(ConfigError::error(
            node.span().clone(),
            node.path(),
            format!("expected a map, found {}", node.kind_name()),
        ));
        return None;
    };
    for (k, v) in map {
        if !allowed.contains(&k.as_str()) {
            let expected: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
            errors.push(
                ConfigError::error(
                    v.key_span().clone(),
                    node.path(),
                    format!(
                        "unknown field `{k}`, expected one of {}",
                        expected.join(", ")
                    ),
                )
                .with_hint_opt(did_you_mean(k, allowed.iter(), Quote::Backtick)),
            );
        }
    }
    Some(map)
}

fn parse_pipeline(node: &Node, errors: &mut Vec<ConfigError>) -> PipelineConfig {
    let map = map_with_keys(node, &["receivers", "processors", "exporters"], errors);
    let get = |k: &str| map.and_then(|m| m.get(k));
    PipelineConfig {
        span: node.key_span().clone(),
        receivers: component_list(get("receivers"), errors),
        processors: component_list(get("processors"), errors),
        exporters: component_list(get("exporters"), errors),
    }
}

fn parse_service(node: &Node, errors: &mut Vec<ConfigError>) -> ServiceConfig {
    let mut out = ServiceConfig {
        span: Some(node.key_span().clone()),
        ..ServiceConfig::default()
    };
    let Some(map) = map_with_keys(node, &["extensions", "pipelines", "telemetry"], errors) else {
        return out;
    };
    out.extensions = component_list(map.get("extensions"), errors);
    if let Some(p) = map.get("pipelines") {
        if let Some(pipes) = p.as_map() {
            for (key, pnode) in pipes {
                match PipelineId::from_str(key) {
                    Ok(id) => {
                        let pc = parse_pipeline(pnode, errors);
                        out.pipelines.insert(id, pc);
                    }
                    Err(e) => errors.push(
                        ConfigError::error(pnode.key_span().clone(), p.path(), e.message)
                            .with_hint_opt(e.hint),
                    ),
                }
            }
        } else if !p.is_null() {
            errors.push(ConfigError::error(
                p.span().clone(),
                p.path(),
                format!("expected a map of pipelines, found {}", p.kind_name()),
            ));
        }
    }
    if let Some(t) = map.get("telemetry") {
        out.telemetry = parse_telemetry(t, errors);
    }
    out
}

const TOP_LEVEL: [&str; 6] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];

/// Builds a [`RawConfig`] from a merged, expanded tree, collecting every problem.
pub fn parse_raw(root: &Node) -> Result<RawConfig, Diagnostics> {
    let mut errors = Vec::new();
    let mut raw = RawConfig::default();
    if let Some(map) = map_with_keys(root, &TOP_LEVEL, &mut errors) {
        for kind in ComponentKind::ALL {
            let Some(section) = map.get(kind.section()) else {
                continue;
            };
            let Some(components) = section.as_map() else {
                if !section.is_null() {
                    errors.push(ConfigError::error(
                        section.span().clone(),
                        section.path(),
                        format!(
                            "expected a map of {} by id, found {}",
                            kind.section(),
                            section.kind_name()
                        ),
                    ));
                }
                continue;
            };
            for (key, node) in components {
                match ComponentId::from_str(key) {
                    Ok(id) => {
                        raw.components_mut(kind).insert(id, node.clone());
                    }
                    Err(e) => errors.push(
                        ConfigError::error(node.key_span().clone(), section.path(), e.message)
                            .with_hint_opt(e.hint),
                    ),
                }
            }
        }
        if let Some(s) = map.get("service") {
            raw.service = parse_service(s, &mut errors);
        }
    }
    let (warnings, errors): (Vec<_>, Vec<_>) = errors.into_iter().partition(|e| !e.is_error());
    raw.warnings = warnings;
    if errors.is_empty() {
        Ok(raw)
    } else {
        let mut all = errors;
        all.extend(raw.warnings);
        Err(Diagnostics(all))
    }
}

/// Several named documents merged in order, then expanded and parsed.
pub fn load_strs(
    docs: &[(&str, &str)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawConfig, Diagnostics> {
    let mut errors = Vec::new();
    let mut merged: Option<Node> = None;
    for (name, text) in docs {
        match node::parse(name, text) {
            Ok(n) => {
                merged = Some(match merged {
                    Some(m) => crate::merge::merge(m, n),
                    None => n,
                });
            }
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let mut root =
        merged.unwrap_or_else(|| Node::empty_map(Span::new("<empty>", 1, 1), String::new()));
    crate::expand::expand_tree(&mut root, env, &mut errors);
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    parse_raw(&root)
}

pub fn load_str(
    file_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawConfig, Diagnostics> {
    load_strs(&[(file_name, text)], env)
}

/// Loads and merges config files in order. Files are size-checked before
/// they are read.
pub fn load_files(
    paths: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawConfig, Diagnostics> {
    let mut errors = Vec::new();
    let mut texts = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Ok(m) if m.len() > node::MAX_FILE_SIZE as u64 => {
                errors.push(ConfigError::error(
                    Span::new(shown.as_str(), 1, 1),
                    "",
                    format!(
                        "the config is too large ({} bytes; the limit is {} MiB)",
                        m.len(),
                        node::MAX_FILE_SIZE / (1024 * 1024)
                    ),
                ));
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                errors.push(ConfigError::error(
                    None,
                    shown,
                    format!("cannot read the config file: {e}"),
                ));
                continue;
            }
        }
        match std::fs::read_to_string(path) {
            Ok(t) => texts.push((shown, t)),
            Err(e) => errors.push(ConfigError::error(
                None,
                shown,
                format!("cannot read the config file: {e}"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let docs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    load_strs(&docs, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(text: &str) -> Result<RawConfig, Diagnostics> {
        load_str("c.yaml", text, &no_env)
    }

    const BASIC: &str = "\
receivers:
  otlp:
    protocols:
      grpc:
processors:
  batch:
exporters:
  debug: {}
  otlp/upstream:
    endpoint: up:4317
extensions:
  health_check:
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug, otlp/upstream]
    logs/2:
      receivers: [otlp]
      exporters:
        - debug
";

    #[test]
    fn basic_config() {
        let raw = load(BASIC).unwrap();
        assert_eq!(raw.receivers.len(), 1);
        let up: ComponentId = "otlp/upstream".parse().unwrap();
        assert_eq!(
            raw.exporters[&up].get("endpoint").and_then(Node::as_str),
            Some("up:4317")
        );
        assert_eq!(raw.service.extensions[0].value.to_string(), "health_check");
        let traces = &raw.service.pipelines[&"traces".parse::<PipelineId>().unwrap()];
        assert_eq!(traces.span.to_string(), "c.yaml:16:5");
        assert_eq!(traces.exporters[1].value.to_string(), "otlp/upstream");
        assert_eq!(traces.exporters[1].span.to_string(), "c.yaml:19:26");
        assert_eq!(
            traces.exporters[1].path,
            "service.pipelines.traces.exporters[1]"
        );
        let logs = &raw.service.pipelines[&"logs/2".parse::<PipelineId>().unwrap()];
        assert!(logs.processors.is_empty());
        assert_eq!(logs.exporters[0].span.to_string(), "c.yaml:23:11");
        assert_eq!(raw.service.telemetry, TelemetryConfig::default());
        assert_eq!(raw.service.telemetry.logs.encoding, LogEncoding::Json);
        assert_eq!(raw.service.telemetry.metrics.address, "127.0.0.1:8888");
        assert!(raw.warnings.is_empty());
    }

    #[test]
    fn unknown_top_level_and_bad_ids() {
        let e = load("recievers: {}\nexporters:\n  otlp/: {}\n  9x: {}\nservice:\n  pipeline: {}\n  pipelines:\n    trace: {}\n")
            .unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "c.yaml:1:1: error: unknown field `recievers`, expected one of `receivers`, `processors`, `exporters`, `connectors`, `extensions`, `service` (hint: did you mean `receivers`?)",
                "c.yaml:3:3: error: exporters: the name after `/` is empty; write `type` or `type/name`",
                "c.yaml:4:3: error: exporters: invalid component type `9x`: it must start with a letter",
                "c.yaml:6:3: error: service: unknown field `pipeline`, expected one of `extensions`, `pipelines`, `telemetry` (hint: did you mean `pipelines`?)",
                "c.yaml:8:5: error: service.pipelines: unknown signal `trace`, expected one of `traces`, `metrics`, `logs` (hint: did you mean `traces`?)",
            ]
        );
    }

    #[test]
    fn pipeline_shape_errors() {
        let e = load("service:\n  pipelines:\n    traces:\n      receivers: otlp\n      exporter: [x]\n      processors: [{a: b}, 'bad/']\n")
            .unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "c.yaml:5:7: error: service.pipelines.traces: unknown field `exporter`, expected one of `receivers`, `processors`, `exporters` (hint: did you mean `exporters`?)",
                "c.yaml:4:18: error: service.pipelines.traces.receivers: expected a list of component ids, found a scalar (hint: write `[a, b]` or one `- id` per line)",
                "c.yaml:6:20: error: service.pipelines.traces.processors[0]: expected a component id, found a map",
                "c.yaml:6:28: error: service.pipelines.traces.processors[1]: the name after `/` is empty; write `type` or `type/name`",
            ]
        );
    }

    #[test]
    fn telemetry_forms() {
        let raw = load("service:\n  telemetry:\n    logs: {level: debug, encoding: console}\n    metrics: {level: detailed, address: '0.0.0.0:9999'}\n    resource: {service.name: x}\n")
            .unwrap();
        let t = &raw.service.telemetry;
        assert_eq!(t.logs.level, LogLevel::Debug);
        assert_eq!(t.logs.encoding, LogEncoding::Console);
        assert_eq!(t.metrics.level, MetricsLevel::Detailed);
        assert_eq!(t.metrics.address, "0.0.0.0:9999");

        let raw = load("service:\n  telemetry:\n    metrics:\n      readers:\n        - pull: { exporter: { prometheus: { host: 0.0.0.0, port: 8889, without_units: true } } }\n")
            .unwrap();
        assert_eq!(raw.service.telemetry.metrics.address, "0.0.0.0:8889");
        assert_eq!(raw.service.telemetry.metrics.level, MetricsLevel::Normal);
        let raw = load("service:\n  telemetry:\n    metrics:\n      readers:\n        - pull: { exporter: { prometheus: { host: '::1', port: 1 } } }\n")
            .unwrap();
        assert_eq!(raw.service.telemetry.metrics.address, "[::1]:1");

        let raw = load("service:\n  telemetry:\n    traces:\n      processors: []\n").unwrap();
        assert_eq!(raw.warnings.len(), 1);
        assert_eq!(
            raw.warnings[0].to_string(),
            "c.yaml:3:5: warning: service.telemetry.traces: confluo does not export its own traces; this section is ignored (hint: remove `service.telemetry.traces`)"
        );
    }

    #[test]
    fn telemetry_errors() {
        let e = load("service:\n  telemetry:\n    logs: {level: verbose}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:3:19: error: service.telemetry.logs.level: unknown value, expected one of `debug`, `info`, `warn`, `error`"
        );
        let e = load("service:\n  telemetry:\n    metrics:\n      adress: x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:4:7: error: service.telemetry.metrics: unknown field `adress`, expected one of `level`, `address`, `readers` (hint: did you mean `address`?)"
        );
        let e =
            load("service:\n  telemetry:\n    metrics:\n      readers:\n        - periodic: {}\n")
                .unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown field `periodic`, expected `pull`"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("c.yaml:5:11: error: service.telemetry.metrics.readers[0]: "),
            "{e}"
        );
        let e =
            load("service:\n  telemetry:\n    metrics:\n      address: a:1\n      readers: []\n")
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:5:7: error: service.telemetry.metrics: set either `address` or `readers`, not both (hint: `address` is the older form of a pull prometheus reader)"
        );
    }

    #[test]
    fn env_expansion_in_config() {
        let env = |k: &str| match k {
            "PORT" => Some("4317".to_string()),
            "LEVEL" => Some("debug".to_string()),
            _ => None,
        };
        let raw = load_str(
            "c.yaml",
            "exporters:\n  otlp:\n    endpoint: host:${env:PORT}\n    port: ${PORT}\n    quoted: '${PORT}'\n    def: ${env:NOPE:-fallback}\n    lit: $$HOME\n    cost: $5\nservice:\n  telemetry:\n    logs: {level: '${LEVEL}'}\n",
            &env,
        )
        .unwrap();
        let otlp = &raw.exporters[&"otlp".parse::<ComponentId>().unwrap()];
        assert_eq!(
            otlp.get("endpoint").and_then(Node::as_str),
            Some("host:4317")
        );
        #[derive(Deserialize)]
        struct P {
            port: u16,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Q {
            quoted: u16,
        }
        #[derive(Deserialize)]
        struct QS {
            quoted: String,
        }
        let port = otlp.get("port").unwrap();
        assert!(!port.is_quoted());
        let p: P = Node::from_yaml_str("x", "port: 1")
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(p.port, 1);
        // the expanded plain scalar can fill an int field
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Whole {
            endpoint: String,
            port: u16,
            quoted: String,
            def: String,
            lit: String,
            cost: String,
        }
        let w: Whole = otlp.deserialize().unwrap();
        assert_eq!(w.port, 4317);
        assert_eq!(w.quoted, "4317");
        assert_eq!(w.def, "fallback");
        assert_eq!(w.lit, "$HOME");
        assert_eq!(w.cost, "$5");
        // ...but a quoted one stays a string
        let sub = Node::from_yaml_str("x", "quoted: '4317'").unwrap();
        assert!(sub.deserialize::<Q>().is_err());
        assert_eq!(sub.deserialize::<QS>().unwrap().quoted, "4317");
        assert_eq!(raw.service.telemetry.logs.level, LogLevel::Debug);
    }

    #[test]
    fn env_errors_collected() {
        let e = load(
            "exporters:\n  otlp:\n    endpoint: ${env:MISSING}\n    key: ${file:/x}\n    ok: $$\n",
        )
        .unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "c.yaml:3:15: error: exporters.otlp.endpoint: environment variable `MISSING` is not set (hint: set it, or give a default: `${env:MISSING:-value}`)",
                "c.yaml:4:10: error: exporters.otlp.key: unsupported config provider `file` (hint: only `${env:NAME}` references are supported)",
            ]
        );
    }

    #[test]
    fn multi_file_merge() {
        let base = "receivers:\n  otlp:\n    protocols: {grpc: {endpoint: 'a:1'}}\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n";
        let over = "exporters:\n  otlp: {endpoint: '${env:UP}'}\nservice:\n  pipelines:\n    traces: {exporters: [otlp]}\n";
        let env = |k: &str| (k == "UP").then(|| "upstream:4317".to_string());
        let raw = load_strs(&[("base.yaml", base), ("over.yaml", over)], &env).unwrap();
        assert_eq!(raw.exporters.len(), 2);
        let traces = &raw.service.pipelines[&"traces".parse::<PipelineId>().unwrap()];
        assert_eq!(traces.receivers[0].span.to_string(), "base.yaml:8:26");
        assert_eq!(traces.exporters.len(), 1);
        assert_eq!(traces.exporters[0].value.to_string(), "otlp");
        assert_eq!(traces.exporters[0].span.to_string(), "over.yaml:5:26");
        let otlp = &raw.exporters[&"otlp".parse::<ComponentId>().unwrap()];
        assert_eq!(
            otlp.get("endpoint").and_then(Node::as_str),
            Some("upstream:4317")
        );
        // a variable only referenced by an overridden value is not needed
        let over2 = "exporters:\n  debug: {verbosity: '${env:GONE}'}\n";
        let over3 = "exporters:\n  debug: {verbosity: basic}\n";
        assert!(load_strs(&[("a", base), ("b", over2), ("c", over3)], &no_env).is_ok());
    }

    #[test]
    fn syntax_errors_from_every_file() {
        let e = load_strs(&[("a.yaml", "a: [\n"), ("b.yaml", "b: {\n")], &no_env).unwrap_err();
        assert_eq!(e.0.len(), 2);
        assert!(e.0[0].to_string().starts_with("a.yaml:"), "{e}");
        assert!(e.0[1].to_string().starts_with("b.yaml:"), "{e}");
    }

    #[test]
    fn files() {
        let dir = std::env::temp_dir().join(format!("confluo-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.yaml");
        std::fs::write(&a, "receivers:\n  otlp:\n").unwrap();
        let raw = load_files(std::slice::from_ref(&a), &no_env).unwrap();
        assert_eq!(raw.receivers.len(), 1);
        let missing = dir.join("missing.yaml");
        let e = load_files(&[a.clone(), missing.clone()], &no_env).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(
            e.to_string().starts_with(&format!(
                "error: {}: cannot read the config file",
                missing.display()
            )),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn root_must_be_a_map() {
        let e = load("- a\n- b\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:1:1: error: expected a map, found a sequence"
        );
        let raw = load("").unwrap();
        assert!(raw.service.pipelines.is_empty());
        let e = load("receivers: [otlp]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:1:12: error: receivers: expected a map of receivers by id, found a sequence"
        );
    }

    proptest::proptest! {
        #[test]
        fn loader_never_panics(text in "\\PC{0,200}") {
            let _ = load_str("p.yaml", &text, &|_| Some("1".into()));
        }

        #[test]
        fn yamlish_text_never_panics(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a:", " b", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "<<: ",
                    "'q'", "\"d\"", "${env:A}", "$$", "${", "~", "? ", "|\n  t", "#c", "---\n",
                    "receivers:", "service:", "pipelines:", "traces:", "otlp/1",
                ]),
                0..60,
            )
        ) {
            let text: String = parts.concat();
            let _ = load_str("p.yaml", &text, &|_| None);
        }
    }
}
