//! Whole-config validation: component configs, references, signals and the
//! connector graph. Every problem is reported, not only the first.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;

use crate::error::{did_you_mean, ConfigError, Diagnostics, Quote};
use crate::ids::{ComponentId, ComponentKind, PipelineId, SignalKind, SignalSet, Spanned};
use crate::node::Node;
use crate::service::RawConfig;

/// What the binary's component registry tells validation.
pub trait Catalog {
    /// Signals the component type supports, or `None` when the type is unknown.
    /// Extensions should return `Some(SignalSet::NONE)` for known types.
    fn signals(&self, kind: ComponentKind, type_name: &str) -> Option<SignalSet>;
    /// For connectors: can it go from `from` (the pipeline where it is an
    /// exporter) to `to` (where it is a receiver)?
    fn connects(&self, type_name: &str, from: SignalKind, to: SignalKind) -> bool;
    fn known_types(&self, kind: ComponentKind) -> Vec<String>;
    /// Deserialize/validate one component's config; return all problems found.
    fn check_config(&self, kind: ComponentKind, id: &ComponentId, node: &Node) -> Vec<ConfigError>;
}

struct Use<'a> {
    pipeline: &'a PipelineId,
    at: &'a Spanned<ComponentId>,
}

struct Validator<'a> {
    raw: &'a RawConfig,
    catalog: &'a dyn Catalog,
    out: Vec<ConfigError>,
    used: HashSet<(ComponentKind, &'a ComponentId)>,
    connector_as_exporter: IndexMap<&'a ComponentId, Vec<Use<'a>>>,
    connector_as_receiver: IndexMap<&'a ComponentId, Vec<Use<'a>>>,
}

fn ids_of(map: &IndexMap<ComponentId, Node>) -> Vec<String> {
    map.keys().map(ToString::to_string).collect()
}

impl<'a> Validator<'a> {
    fn check_components(&mut self) {
        for kind in ComponentKind::ALL {
            let mut known: Option<Vec<String>> = None;
            for (id, node) in self.raw.components(kind) {
                if self.catalog.signals(kind, id.type_name()).is_some() {
                    self.out.extend(self.catalog.check_config(kind, id, node));
                    continue;
                }
                let known = known.get_or_insert_with(|| self.catalog.known_types(kind));
                let hint =
                    did_you_mean(id.type_name(), known.iter(), Quote::Double).or_else(|| {
                        (!known.is_empty())
                            .then(|| format!("known {kind} types: {}", known.join(", ")))
                    });
                self.out.push(
                    ConfigError::error(
                        node.key_span().clone(),
                        node.path(),
                        format!("unknown {kind} type \"{}\"", id.type_name()),
                    )
                    .with_hint_opt(hint),
                );
            }
        }
    }

    fn check_ambiguous_ids(&mut self) {
        for (id, node) in &self.raw.connectors {
            for (kind, map) in [
                (ComponentKind::Receiver, &self.raw.receivers),
                (ComponentKind::Exporter, &self.raw.exporters),
            ] {
                if map.contains_key(id) {
                    self.out.push(
                        ConfigError::error(
                            node.key_span().clone(),
                            node.path(),
                            format!(
                                "ambiguous id \"{id}\": it is configured both as a connector and as a {kind}"
                            ),
                        )
                        .with_hint(format!(
                            "rename one of them, e.g. \"{}/connector\"",
                            id.type_name()
                        )),
                    );
                }
            }
        }
    }

    fn check_duplicates(&mut self, list: &[Spanned<ComponentId>], what: &str) {
        let mut seen = HashSet::new();
        for item in list {
            if !seen.insert(&item.value) {
                self.out.push(ConfigError::error(
                    item.span.clone(),
                    item.path.clone(),
                    format!("{what} \"{}\" is listed more than once", item.value),
                ));
            }
        }
    }

    fn check_signal(
        &mut self,
        kind: ComponentKind,
        item: &Spanned<ComponentId>,
        signal: SignalKind,
    ) {
        let Some(set) = self.catalog.signals(kind, item.value.type_name()) else {
            return;
        };
        if !set.contains(signal) {
            let mut e = ConfigError::error(
                item.span.clone(),
                item.path.clone(),
                format!("{kind} \"{}\" does not support {signal}", item.value),
            );
            if set != SignalSet::NONE {
                e = e.with_hint(format!(
                    "it supports {set}; use it in a pipeline of one of those"
                ));
            }
            self.out.push(e);
        }
    }

    fn not_configured(
        &mut self,
        item: &Spanned<ComponentId>,
        kind: ComponentKind,
        candidates: Vec<String>,
    ) {
        let hint = did_you_mean(&item.value.to_string(), candidates.iter(), Quote::Double)
            .unwrap_or_else(|| format!("add it under `{}`", kind.section()));
        self.out.push(
            ConfigError::error(
                item.span.clone(),
                item.path.clone(),
                format!("{kind} \"{}\" is not configured", item.value),
            )
            .with_hint(hint),
        );
    }

    fn check_pipelines(&mut self) {
        let raw = self.raw;
        if raw.service.pipelines.is_empty() {
            self.out.push(
                ConfigError::error(
                    raw.service.span.clone(),
                    "service.pipelines",
                    "no pipelines are configured",
                )
                .with_hint("add one, e.g. `service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}`"),
            );
        }
        for (pid, p) in &raw.service.pipelines {
            let path = format!("service.pipelines.{pid}");
            let signal = pid.signal;
            if p.receivers.is_empty() {
                self.out.push(
                    ConfigError::error(
                        p.span.clone(),
                        path.clone(),
                        "the pipeline has no receivers",
                    )
                    .with_hint("list at least one under `receivers`"),
                );
            }
            if p.exporters.is_empty() {
                self.out.push(
                    ConfigError::error(
                        p.span.clone(),
                        path.clone(),
                        "the pipeline has no exporters",
                    )
                    .with_hint("list at least one under `exporters`"),
                );
            }
            self.check_duplicates(&p.receivers, "receiver");
            self.check_duplicates(&p.processors, "processor");
            self.check_duplicates(&p.exporters, "exporter");

            for r in &p.receivers {
                if raw.receivers.contains_key(&r.value) {
                    self.used.insert((ComponentKind::Receiver, &r.value));
                    self.check_signal(ComponentKind::Receiver, r, signal);
                } else if raw.connectors.contains_key(&r.value) {
                    self.used.insert((ComponentKind::Connector, &r.value));
                    self.connector_as_receiver
                        .entry(&r.value)
                        .or_default()
                        .push(Use {
                            pipeline: pid,
                            at: r,
                        });
                } else {
                    let mut c = ids_of(&raw.receivers);
                    c.extend(ids_of(&raw.connectors));
                    self.not_configured(r, ComponentKind::Receiver, c);
                }
            }
            for pr in &p.processors {
                if raw.processors.contains_key(&pr.value) {
                    self.used.insert((ComponentKind::Processor, &pr.value));
                    self.check_signal(ComponentKind::Processor, pr, signal);
                } else {
                    self.not_configured(pr, ComponentKind::Processor, ids_of(&raw.processors));
                }
            }
            for e in &p.exporters {
                if raw.exporters.contains_key(&e.value) {
                    self.used.insert((ComponentKind::Exporter, &e.value));
                    self.check_signal(ComponentKind::Exporter, e, signal);
                } else if raw.connectors.contains_key(&e.value) {
                    self.used.insert((ComponentKind::Connector, &e.value));
                    self.connector_as_exporter
                        .entry(&e.value)
                        .or_default()
                        .push(Use {
                            pipeline: pid,
                            at: e,
                        });
                } else {
                    let mut c = ids_of(&raw.exporters);
                    c.extend(ids_of(&raw.connectors));
                    self.not_configured(e, ComponentKind::Exporter, c);
                }
            }
        }
    }

    fn check_connectors(&mut self) {
        let empty = Vec::new();
        for id in self.raw.connectors.keys() {
            let as_exp = self.connector_as_exporter.get(id).unwrap_or(&empty);
            let as_rcv = self.connector_as_receiver.get(id).unwrap_or(&empty);
            let hint = "a connector joins two pipelines: list it under `exporters` in one and under `receivers` in another";
            let mut errs = Vec::new();
            match (as_exp.is_empty(), as_rcv.is_empty()) {
                (true, true) => {}
                (false, true) => {
                    for u in as_exp {
                        errs.push(
                            ConfigError::error(
                                u.at.span.clone(),
                                u.at.path.clone(),
                                format!("connector \"{id}\" is used as an exporter but not as a receiver in any pipeline"),
                            )
                            .with_hint(hint),
                        );
                    }
                }
                (true, false) => {
                    for u in as_rcv {
                        errs.push(
                            ConfigError::error(
                                u.at.span.clone(),
                                u.at.path.clone(),
                                format!("connector \"{id}\" is used as a receiver but not as an exporter in any pipeline"),
                            )
                            .with_hint(hint),
                        );
                    }
                }
                (false, false)
                    if self
                        .catalog
                        .signals(ComponentKind::Connector, id.type_name())
                        .is_some() =>
                {
                    let t = id.type_name();
                    for u in as_exp {
                        if !as_rcv.iter().any(|r| {
                            self.catalog
                                .connects(t, u.pipeline.signal, r.pipeline.signal)
                        }) {
                            errs.push(ConfigError::error(
                                u.at.span.clone(),
                                u.at.path.clone(),
                                format!(
                                    "connector \"{id}\" cannot take {} to any pipeline where it is a receiver ({})",
                                    u.pipeline.signal,
                                    signals_of(as_rcv)
                                ),
                            ));
                        }
                    }
                    for r in as_rcv {
                        if !as_exp.iter().any(|u| {
                            self.catalog
                                .connects(t, u.pipeline.signal, r.pipeline.signal)
                        }) {
                            errs.push(ConfigError::error(
                                r.at.span.clone(),
                                r.at.path.clone(),
                                format!(
                                    "connector \"{id}\" cannot produce {} from any pipeline where it is an exporter ({})",
                                    r.pipeline.signal,
                                    signals_of(as_exp)
                                ),
                            ));
                        }
                    }
                }
                (false, false) => {}
            }
            self.out.extend(errs);
        }
    }

    /// Pipelines joined through connectors must not loop: data would circulate forever.
    fn check_cycles(&mut self) {
        let pipelines: Vec<&PipelineId> = self.raw.service.pipelines.keys().collect();
        let index: HashMap<&PipelineId, usize> =
            pipelines.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        // edges[from] = (to, the receiver entry that closes the edge)
        let mut edges: Vec<Vec<(usize, &Spanned<ComponentId>)>> = vec![Vec::new(); pipelines.len()];
        for (id, exps) in &self.connector_as_exporter {
            let Some(rcvs) = self.connector_as_receiver.get(id) else {
                continue;
            };
            for e in exps {
                for r in rcvs {
                    if self
                        .catalog
                        .connects(id.type_name(), e.pipeline.signal, r.pipeline.signal)
                    {
                        if let (Some(&f), Some(&t)) = (index.get(e.pipeline), index.get(r.pipeline))
                        {
                            edges[f].push((t, r.at));
                        }
                    }
                }
            }
        }
        for list in &mut edges {
            list.sort_by_key(|(t, _)| *t);
        }
        // 0 = unvisited, 1 = on the stack, 2 = done
        let mut state = vec![0u8; pipelines.len()];
        let mut stack = Vec::new();
        for start in 0..pipelines.len() {
            if state[start] == 0 {
                self.dfs(start, &edges, &mut state, &mut stack, &pipelines);
            }
        }
    }

    fn dfs(
        &mut self,
        at: usize,
        edges: &[Vec<(usize, &Spanned<ComponentId>)>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
        pipelines: &[&PipelineId],
    ) {
        state[at] = 1;
        stack.push(at);
        for (to, via) in &edges[at] {
            match state[*to] {
                0 => self.dfs(*to, edges, state, stack, pipelines),
                1 => {
                    let from = stack.iter().position(|p| p == to).unwrap_or(0);
                    let mut names: Vec<String> = stack[from..]
                        .iter()
                        .map(|p| pipelines[*p].to_string())
                        .collect();
                    names.push(pipelines[*to].to_string());
                    self.out.push(
                        ConfigError::error(
                            via.span.clone(),
                            via.path.clone(),
                            format!(
                                "pipelines form a cycle through connectors: {}",
                                names.join(" -> ")
                            ),
                        )
                        .with_hint("data would loop forever; break the cycle"),
                    );
                }
                _ => {}
            }
        }
        stack.pop();
        state[at] = 2;
    }

    fn check_extensions(&mut self) {
        let raw = self.raw;
        self.check_duplicates(&raw.service.extensions, "extension");
        for e in &raw.service.extensions {
            if raw.extensions.contains_key(&e.value) {
                self.used.insert((ComponentKind::Extension, &e.value));
            } else {
                self.not_configured(e, ComponentKind::Extension, ids_of(&raw.extensions));
            }
        }
    }

    fn warn_unused(&mut self) {
        for kind in ComponentKind::ALL {
            for (id, node) in self.raw.components(kind) {
                if self.used.contains(&(kind, id)) {
                    continue;
                }
                let (msg, hint) = if kind == ComponentKind::Extension {
                    (
                        format!(
                            "extension \"{id}\" is configured but not enabled, so it will not run"
                        ),
                        "list it in `service.extensions`, or remove it".to_string(),
                    )
                } else {
                    (
                        format!("{kind} \"{id}\" is configured but not used in any pipeline, so it will not run"),
                        "add it to a pipeline in `service.pipelines`, or remove it".to_string(),
                    )
                };
                self.out.push(
                    ConfigError::warning(node.key_span().clone(), node.path(), msg).with_hint(hint),
                );
            }
        }
    }
}

fn signals_of(uses: &[Use<'_>]) -> String {
    let mut s: Vec<SignalKind> = uses.iter().map(|u| u.pipeline.signal).collect();
    s.sort();
    s.dedup();
    s.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// Everything wrong with the config: errors first, then warnings, each in
/// the order found.
pub fn validate(raw: &RawConfig, catalog: &dyn Catalog) -> Diagnostics {
    let mut v = Validator {
        raw,
        catalog,
        out: Vec::new(),
        used: HashSet::new(),
        connector_as_exporter: IndexMap::new(),
        connector_as_receiver: IndexMap::new(),
    };
    v.check_components();
    v.check_ambiguous_ids();
    v.check_pipelines();
    v.check_connectors();
    v.check_cycles();
    v.check_extensions();
    v.warn_unused();
    let mut out = v.out;
    out.extend(raw.warnings.iter().cloned());
    // Stable: keeps discovery order within each severity.
    out.sort_by_key(|e| e.severity);
    Diagnostics(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{GoDuration, Secret};
    use crate::{load_str, load_strs};
    use serde::Deserialize;

    /// A registry like the binary's: a few types with real config structs.
    struct TestCatalog;

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    #[allow(dead_code)]
    #[derive(Default)]
    struct BatchConfig {
        timeout: Option<GoDuration>,
        send_batch_size: u32,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct OtlpExporterConfig {
        endpoint: String,
        api_key: Option<Secret>,
        timeout: Option<GoDuration>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    #[allow(dead_code)]
    struct Empty {}

    fn check<T: serde::de::DeserializeOwned>(node: &Node) -> Vec<ConfigError> {
        node.deserialize::<T>().err().into_iter().collect()
    }

    impl Catalog for TestCatalog {
        fn signals(&self, kind: ComponentKind, type_name: &str) -> Option<SignalSet> {
            use ComponentKind::*;
            Some(match (kind, type_name) {
                (Receiver, "otlp") => SignalSet::ALL,
                (Receiver, "prometheus") => SignalSet::only(SignalKind::Metrics),
                (Processor, "batch") => SignalSet::ALL,
                (Exporter, "debug" | "otlp") => SignalSet::ALL,
                (Exporter, "loki") => SignalSet::only(SignalKind::Logs),
                (Connector, "forward") => SignalSet::ALL,
                (Connector, "count") => SignalSet::ALL,
                (Extension, "health_check") => SignalSet::NONE,
                _ => return None,
            })
        }

        fn connects(&self, type_name: &str, from: SignalKind, to: SignalKind) -> bool {
            match type_name {
                "forward" => from == to,
                "count" => to == SignalKind::Metrics,
                _ => false,
            }
        }

        fn known_types(&self, kind: ComponentKind) -> Vec<String> {
            use ComponentKind::*;
            let v: &[&str] = match kind {
                Receiver => &["otlp", "prometheus"],
                Processor => &["batch"],
                Exporter => &["debug", "loki", "otlp"],
                Connector => &["count", "forward"],
                Extension => &["health_check"],
            };
            v.iter().map(ToString::to_string).collect()
        }

        fn check_config(
            &self,
            kind: ComponentKind,
            id: &ComponentId,
            node: &Node,
        ) -> Vec<ConfigError> {
            match (kind, id.type_name()) {
                (ComponentKind::Processor, "batch") => check::<BatchConfig>(node),
                (ComponentKind::Exporter, "otlp") => check::<OtlpExporterConfig>(node),
                _ => check::<Empty>(node),
            }
        }
    }

    fn run(text: &str) -> Vec<String> {
        let raw = match load_str("c.yaml", text, &|_| None) {
            Ok(r) => r,
            Err(d) => panic!("load failed: {d}"),
        };
        validate(&raw, &TestCatalog)
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const GOOD: &str = "\
receivers:
  otlp:
processors:
  batch:
    timeout: 1s
exporters:
  otlp:
    endpoint: up:4317
    api_key: k
extensions:
  health_check:
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
";

    #[test]
    fn good_config_is_clean() {
        assert_eq!(run(GOOD), Vec::<String>::new());
    }

    #[test]
    fn dangling_reference_with_hint() {
        let text = GOOD.replace("processors: [batch]", "processors: [batchh]");
        assert_eq!(
            run(&text),
            [
                "c.yaml:17:20: error: service.pipelines.traces.processors[0]: processor \"batchh\" is not configured (hint: did you mean \"batch\"?)",
                "c.yaml:4:3: warning: processors.batch: processor \"batch\" is configured but not used in any pipeline, so it will not run (hint: add it to a pipeline in `service.pipelines`, or remove it)",
            ]
        );
        let text = GOOD.replace("exporters: [otlp]", "exporters: [kafka]");
        let out = run(&text);
        assert_eq!(
            out[0],
            "c.yaml:18:19: error: service.pipelines.traces.exporters[0]: exporter \"kafka\" is not configured (hint: add it under `exporters`)"
        );
    }

    #[test]
    fn every_component_config_checked() {
        let text = GOOD
            .replace("timeout: 1s", "timeout: 5")
            .replace("endpoint: up:4317", "endpont: up:4317");
        assert_eq!(
            run(&text),
            [
                "c.yaml:5:14: error: processors.batch.timeout: invalid type: expected a duration, found an integer (hint: durations need a unit, e.g. `5s`)",
                "c.yaml:8:5: error: exporters.otlp: unknown field `endpont`, expected one of `endpoint`, `api_key`, `timeout` (hint: did you mean `endpoint`?)",
            ]
        );
    }

    #[test]
    fn secret_in_wrong_field_not_shown() {
        let text = GOOD.replace(
            "api_key: k",
            "api_key: [sk-live-0123456789]\n    timeout: sk-live-0123456789",
        );
        let out = run(&text).join("\n");
        assert!(out.contains("exporters.otlp.api_key: invalid type: expected a string (secret), found a sequence"), "{out}");
        assert!(!out.contains("sk-live"), "{out}");
        let text = GOOD.replace("api_key: k", "timeout: sk-live-0123456789");
        let out = run(&text).join("\n");
        assert_eq!(
            out,
            "c.yaml:9:14: error: exporters.otlp.timeout: invalid duration: expected a number followed by a unit (hint: e.g. `5s`, `1m30s` or `100ms`)"
        );
    }

    #[test]
    fn unknown_type_with_hint() {
        let text = GOOD.replace(
            "receivers:\n  otlp:\n",
            "receivers:\n  otlp:\n  otlpp/x:\n  zzz:\n",
        );
        let out = run(&text);
        assert_eq!(
            &out[..2],
            [
                "c.yaml:3:3: error: receivers.otlpp/x: unknown receiver type \"otlpp\" (hint: did you mean \"otlp\"?)",
                "c.yaml:4:3: error: receivers.zzz: unknown receiver type \"zzz\" (hint: known receiver types: otlp, prometheus)",
            ]
        );
        // unknown types are not also reported as unused errors, only warned
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn unsupported_signal() {
        let text = GOOD
            .replace(
                "receivers:\n  otlp:\n",
                "receivers:\n  otlp:\n  prometheus:\n",
            )
            .replace("receivers: [otlp]", "receivers: [otlp, prometheus]");
        assert_eq!(
            run(&text),
            ["c.yaml:17:25: error: service.pipelines.traces.receivers[1]: receiver \"prometheus\" does not support traces (hint: it supports metrics; use it in a pipeline of one of those)"]
        );
    }

    #[test]
    fn unused_components_warned() {
        let text = GOOD
            .replace("exporters:\n  otlp:", "exporters:\n  debug:\n  otlp:")
            .replace("  extensions: [health_check]\n", "");
        assert_eq!(
            run(&text),
            [
                "c.yaml:7:3: warning: exporters.debug: exporter \"debug\" is configured but not used in any pipeline, so it will not run (hint: add it to a pipeline in `service.pipelines`, or remove it)",
                "c.yaml:12:3: warning: extensions.health_check: extension \"health_check\" is configured but not enabled, so it will not run (hint: list it in `service.extensions`, or remove it)",
            ]
        );
    }

    #[test]
    fn empty_and_duplicate_lists() {
        let out = run("receivers: {otlp: }\nexporters: {debug: }\nservice:\n  extensions: [nope]\n  pipelines:\n    logs:\n      receivers: [otlp, otlp]\n    metrics:\n      exporters: [debug]\n");
        assert_eq!(
            out,
            [
                "c.yaml:6:5: error: service.pipelines.logs: the pipeline has no exporters (hint: list at least one under `exporters`)",
                "c.yaml:7:25: error: service.pipelines.logs.receivers[1]: receiver \"otlp\" is listed more than once",
                "c.yaml:8:5: error: service.pipelines.metrics: the pipeline has no receivers (hint: list at least one under `receivers`)",
                "c.yaml:4:16: error: service.extensions[0]: extension \"nope\" is not configured (hint: add it under `extensions`)",
            ]
        );
    }

    #[test]
    fn no_pipelines() {
        assert_eq!(
            run("receivers: {otlp: }\n"),
            [
                "error: service.pipelines: no pipelines are configured (hint: add one, e.g. `service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}`)",
                "c.yaml:1:13: warning: receivers.otlp: receiver \"otlp\" is configured but not used in any pipeline, so it will not run (hint: add it to a pipeline in `service.pipelines`, or remove it)",
            ]
        );
        assert_eq!(
            run("service:\n  telemetry: {}\n")[0],
            "c.yaml:1:1: error: service.pipelines: no pipelines are configured (hint: add one, e.g. `service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}`)"
        );
    }

    #[test]
    fn connectors() {
        let good = "receivers: {otlp: }\nexporters: {debug: }\nconnectors: {count: , forward: }\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [count, forward]}\n    traces/2: {receivers: [forward], exporters: [debug]}\n    metrics: {receivers: [count], exporters: [debug]}\n";
        assert_eq!(run(good), Vec::<String>::new());

        // count cannot produce logs; forward only used on one side
        let bad = "receivers: {otlp: }\nexporters: {debug: }\nconnectors: {count: , forward: }\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [count, forward]}\n    logs: {receivers: [count], exporters: [debug]}\n";
        assert_eq!(
            run(bad),
            [
                "c.yaml:6:45: error: service.pipelines.traces.exporters[0]: connector \"count\" cannot take traces to any pipeline where it is a receiver (logs)",
                "c.yaml:7:24: error: service.pipelines.logs.receivers[0]: connector \"count\" cannot produce logs from any pipeline where it is an exporter (traces)",
                "c.yaml:6:52: error: service.pipelines.traces.exporters[1]: connector \"forward\" is used as an exporter but not as a receiver in any pipeline (hint: a connector joins two pipelines: list it under `exporters` in one and under `receivers` in another)",
            ]
        );
    }

    #[test]
    fn connector_cycle_and_ambiguity() {
        let text = "receivers: {otlp: , forward: }\nexporters: {debug: }\nconnectors: {forward: }\nservice:\n  pipelines:\n    logs: {receivers: [otlp, forward], exporters: [debug, forward]}\n";
        let out = run(text);
        assert_eq!(
            out[1],
            "c.yaml:3:14: error: connectors.forward: ambiguous id \"forward\": it is configured both as a connector and as a receiver (hint: rename one of them, e.g. \"forward/connector\")"
        );
        let text = "receivers: {otlp: }\nexporters: {debug: }\nconnectors: {forward/a: , forward/b: }\nservice:\n  pipelines:\n    logs: {receivers: [otlp, forward/b], exporters: [forward/a]}\n    logs/2: {receivers: [forward/a], exporters: [debug, forward/b]}\n";
        assert_eq!(
            run(text),
            ["c.yaml:6:30: error: service.pipelines.logs.receivers[1]: pipelines form a cycle through connectors: logs -> logs/2 -> logs (hint: data would loop forever; break the cycle)"]
        );
    }

    #[test]
    fn load_warnings_flow_into_validate() {
        let text = format!("{GOOD}  telemetry:\n    traces: {{}}\n");
        assert_eq!(
            run(&text),
            ["c.yaml:20:5: warning: service.telemetry.traces: confluo does not export its own traces; this section is ignored (hint: remove `service.telemetry.traces`)"]
        );
    }

    #[test]
    fn multi_file_validation_points_at_the_right_file() {
        let over = "processors:\n  batch:\n    timeout: soon\n";
        let raw = load_strs(&[("base.yaml", GOOD), ("prod.yaml", over)], &|_| None).unwrap();
        let d = validate(&raw, &TestCatalog);
        assert_eq!(
            d.to_string(),
            "prod.yaml:3:14: error: processors.batch.timeout: invalid duration: expected a number followed by a unit (hint: e.g. `5s`, `1m30s` or `100ms`)"
        );
    }
}
