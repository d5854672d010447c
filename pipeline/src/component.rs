//! Component contracts and factories, after the OpenTelemetry Collector's
//! `component` package: each component type has a factory that knows its
//! signals, checks its config and creates instances.

use crate::admission::Admission;
use crate::consumer::Consumer;
use crate::telemetry::Telemetry;
use async_trait::async_trait;
use confluo_config::{
    Catalog, ComponentId, ComponentKind, ConfigError, Node, SignalKind, SignalSet,
};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// A failure to create, start or stop a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    Other(String),
}

impl ComponentError {
    pub fn start(msg: impl std::fmt::Display) -> ComponentError {
        ComponentError::Start(msg.to_string())
    }
}

/// The Collector's stability levels, shown by `confluo components`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stability {
    Development,
    Alpha,
    Beta,
    Stable,
}

impl std::fmt::Display for Stability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stability::Development => "development",
            Stability::Alpha => "alpha",
            Stability::Beta => "beta",
            Stability::Stable => "stable",
        })
    }
}

/// What every component instance gets from the runtime.
#[derive(Clone)]
pub struct ComponentContext {
    pub id: ComponentId,
    pub kind: ComponentKind,
    pub telemetry: Telemetry,
    pub admission: Admission,
    /// Cancelled when the service starts shutting down.
    pub shutdown: CancellationToken,
    pub extensions: Extensions,
}

impl ComponentContext {
    /// A context for tests and tools: fresh telemetry, a generous admission budget.
    pub fn for_tests(kind: ComponentKind, id: &str) -> ComponentContext {
        ComponentContext {
            id: id.parse().expect("valid component id"),
            kind,
            telemetry: Telemetry::new(),
            admission: Admission::new(1 << 30),
            shutdown: CancellationToken::new(),
            extensions: Extensions::default(),
        }
    }
}

/// The consumers at the head of the pipelines a receiver feeds, per signal.
#[derive(Clone, Default)]
pub struct SignalConsumers {
    pub traces: Option<Arc<dyn Consumer>>,
    pub metrics: Option<Arc<dyn Consumer>>,
    pub logs: Option<Arc<dyn Consumer>>,
}

impl SignalConsumers {
    pub fn get(&self, kind: SignalKind) -> Option<&Arc<dyn Consumer>> {
        match kind {
            SignalKind::Traces => self.traces.as_ref(),
            SignalKind::Metrics => self.metrics.as_ref(),
            SignalKind::Logs => self.logs.as_ref(),
        }
    }

    pub fn set(&mut self, kind: SignalKind, consumer: Arc<dyn Consumer>) {
        let slot = match kind {
            SignalKind::Traces => &mut self.traces,
            SignalKind::Metrics => &mut self.metrics,
            SignalKind::Logs => &mut self.logs,
        };
        *slot = Some(consumer);
    }

    pub fn signals(&self) -> SignalSet {
        SignalSet {
            traces: self.traces.is_some(),
            metrics: self.metrics.is_some(),
            logs: self.logs.is_some(),
        }
    }
}

/// A source of data: listens on the network, scrapes, or reads a stream.
#[async_trait]
pub trait Receiver: Send + Sync {
    /// Binds and starts serving; returns once the receiver accepts data, so
    /// that bind errors fail the start.
    async fn start(&mut self, consumers: SignalConsumers) -> Result<(), ComponentError>;
    /// Stops accepting and waits for requests in flight to be answered until
    /// `deadline` (the service's shutdown deadline), then abandons them.
    async fn shutdown(&mut self, deadline: Instant) -> Result<(), ComponentError>;
}

/// A pipeline stage. One instance per pipeline, wrapping the next consumer.
#[async_trait]
pub trait Processor: Consumer {
    /// Whether it changes the data it is given (and so needs its own copy
    /// when a batch is shared).
    fn mutates(&self) -> bool;
    /// Flushes held data downstream. Called after the receivers stopped, in
    /// pipeline order.
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// A destination. Shared by every pipeline that names it.
#[async_trait]
pub trait Exporter: Consumer {
    async fn start(&self) -> Result<(), ComponentError> {
        Ok(())
    }
    /// Drains queued data until `deadline`, then drops (and counts) the rest.
    async fn shutdown(&self, deadline: Instant) -> Result<(), ComponentError>;
}

/// Shared state or a side service (health check, storage, correlation store).
#[async_trait]
pub trait Extension: Send + Sync {
    async fn start(&self) -> Result<(), ComponentError> {
        Ok(())
    }
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }
    /// For components that look an extension up by id and downcast it.
    fn as_any(&self) -> &dyn Any;
}

/// The extensions configured in `service.extensions`, for components to find by id.
#[derive(Clone, Default)]
pub struct Extensions(Arc<std::sync::RwLock<BTreeMap<ComponentId, Arc<dyn Extension>>>>);

impl Extensions {
    pub fn get(&self, id: &ComponentId) -> Option<Arc<dyn Extension>> {
        self.0.read().ok()?.get(id).cloned()
    }

    pub fn insert(&self, id: ComponentId, ext: Arc<dyn Extension>) {
        if let Ok(mut map) = self.0.write() {
            map.insert(id, ext);
        }
    }

    pub fn all(&self) -> Vec<(ComponentId, Arc<dyn Extension>)> {
        self.0
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// Deserializes a component's config, for the factories' `check`.
pub fn check_config<T: serde::de::DeserializeOwned>(node: &Node) -> Vec<ConfigError> {
    match node.deserialize::<T>() {
        Ok(_) => Vec::new(),
        Err(e) => vec![e],
    }
}

pub trait ReceiverFactory: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn signals(&self) -> SignalSet;
    fn stability(&self) -> Stability;
    fn check(&self, node: &Node) -> Vec<ConfigError>;
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
    ) -> Result<Box<dyn Receiver>, ComponentError>;
}

pub trait ProcessorFactory: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn signals(&self) -> SignalSet;
    fn stability(&self) -> Stability;
    fn check(&self, node: &Node) -> Vec<ConfigError>;
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Processor>, ComponentError>;
}

pub trait ExporterFactory: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn signals(&self) -> SignalSet;
    fn stability(&self) -> Stability;
    fn check(&self, node: &Node) -> Vec<ConfigError>;
    /// `signals` are the signals of the pipelines that use this instance.
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError>;
}

/// An exporter in one pipeline and a receiver in another.
pub trait ConnectorFactory: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn connects(&self, from: SignalKind, to: SignalKind) -> bool;
    fn stability(&self) -> Stability;
    fn check(&self, node: &Node) -> Vec<ConfigError>;
    /// The consumer the `from` pipelines export into; it feeds `to`.
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        from: SignalKind,
        to: SignalConsumers,
    ) -> Result<Arc<dyn Exporter>, ComponentError>;
}

pub trait ExtensionFactory: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn stability(&self) -> Stability;
    fn check(&self, node: &Node) -> Vec<ConfigError>;
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
    ) -> Result<Arc<dyn Extension>, ComponentError>;
}

/// Every component type the binary knows, by type name. Built from one
/// explicit list in the binary; aliases (`otlp` → `otlp_grpc`) point at the
/// same factory.
#[derive(Default, Clone)]
pub struct Registry {
    pub receivers: BTreeMap<&'static str, Arc<dyn ReceiverFactory>>,
    pub processors: BTreeMap<&'static str, Arc<dyn ProcessorFactory>>,
    pub exporters: BTreeMap<&'static str, Arc<dyn ExporterFactory>>,
    pub connectors: BTreeMap<&'static str, Arc<dyn ConnectorFactory>>,
    pub extensions: BTreeMap<&'static str, Arc<dyn ExtensionFactory>>,
    /// alias → canonical type name, per kind.
    pub aliases: BTreeMap<(ComponentKind, &'static str), &'static str>,
}

/// One line of `confluo components`.
#[derive(Clone, Debug)]
pub struct ComponentInfo {
    pub kind: ComponentKind,
    pub type_name: &'static str,
    pub signals: String,
    pub stability: Stability,
    pub aliases: Vec<&'static str>,
}

impl Registry {
    pub fn receiver(&mut self, f: impl ReceiverFactory + 'static) -> &mut Self {
        self.receivers.insert(f.type_name(), Arc::new(f));
        self
    }
    pub fn processor(&mut self, f: impl ProcessorFactory + 'static) -> &mut Self {
        self.processors.insert(f.type_name(), Arc::new(f));
        self
    }
    pub fn exporter(&mut self, f: impl ExporterFactory + 'static) -> &mut Self {
        self.exporters.insert(f.type_name(), Arc::new(f));
        self
    }
    pub fn connector(&mut self, f: impl ConnectorFactory + 'static) -> &mut Self {
        self.connectors.insert(f.type_name(), Arc::new(f));
        self
    }
    pub fn extension(&mut self, f: impl ExtensionFactory + 'static) -> &mut Self {
        self.extensions.insert(f.type_name(), Arc::new(f));
        self
    }
    pub fn alias(
        &mut self,
        kind: ComponentKind,
        alias: &'static str,
        canonical: &'static str,
    ) -> &mut Self {
        self.aliases.insert((kind, alias), canonical);
        self
    }

    /// The canonical type name for a (possibly aliased) type.
    pub fn canonical<'a>(&self, kind: ComponentKind, type_name: &'a str) -> &'a str
    where
        'static: 'a,
    {
        self.aliases
            .iter()
            .find(|((k, a), _)| *k == kind && *a == type_name)
            .map(|(_, c)| *c)
            .unwrap_or(type_name)
    }

    pub fn list(&self) -> Vec<ComponentInfo> {
        let aliases_of = |kind: ComponentKind, name: &str| -> Vec<&'static str> {
            self.aliases
                .iter()
                .filter(|((k, _), c)| *k == kind && **c == name)
                .map(|((_, a), _)| *a)
                .collect()
        };
        let mut out = Vec::new();
        for (name, f) in &self.receivers {
            out.push(ComponentInfo {
                kind: ComponentKind::Receiver,
                type_name: name,
                signals: signal_list(f.signals()),
                stability: f.stability(),
                aliases: aliases_of(ComponentKind::Receiver, name),
            });
        }
        for (name, f) in &self.processors {
            out.push(ComponentInfo {
                kind: ComponentKind::Processor,
                type_name: name,
                signals: signal_list(f.signals()),
                stability: f.stability(),
                aliases: aliases_of(ComponentKind::Processor, name),
            });
        }
        for (name, f) in &self.exporters {
            out.push(ComponentInfo {
                kind: ComponentKind::Exporter,
                type_name: name,
                signals: signal_list(f.signals()),
                stability: f.stability(),
                aliases: aliases_of(ComponentKind::Exporter, name),
            });
        }
        for (name, f) in &self.connectors {
            let pairs: Vec<String> = ALL_SIGNALS
                .iter()
                .flat_map(|a| ALL_SIGNALS.iter().map(move |b| (*a, *b)))
                .filter(|(a, b)| f.connects(*a, *b))
                .map(|(a, b)| format!("{a}->{b}"))
                .collect();
            out.push(ComponentInfo {
                kind: ComponentKind::Connector,
                type_name: name,
                signals: pairs.join(","),
                stability: f.stability(),
                aliases: aliases_of(ComponentKind::Connector, name),
            });
        }
        for (name, f) in &self.extensions {
            out.push(ComponentInfo {
                kind: ComponentKind::Extension,
                type_name: name,
                signals: "-".into(),
                stability: f.stability(),
                aliases: aliases_of(ComponentKind::Extension, name),
            });
        }
        out
    }
}

pub const ALL_SIGNALS: [SignalKind; 3] =
    [SignalKind::Traces, SignalKind::Metrics, SignalKind::Logs];

fn signal_list(s: SignalSet) -> String {
    ALL_SIGNALS
        .iter()
        .filter(|k| s.contains(**k))
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Catalog for Registry {
    fn signals(&self, kind: ComponentKind, type_name: &str) -> Option<SignalSet> {
        let t = self.canonical(kind, type_name);
        match kind {
            ComponentKind::Receiver => self.receivers.get(t).map(|f| f.signals()),
            ComponentKind::Processor => self.processors.get(t).map(|f| f.signals()),
            ComponentKind::Exporter => self.exporters.get(t).map(|f| f.signals()),
            ComponentKind::Connector => self.connectors.get(t).map(|f| SignalSet {
                traces: ALL_SIGNALS
                    .iter()
                    .any(|b| f.connects(SignalKind::Traces, *b)),
                metrics: ALL_SIGNALS
                    .iter()
                    .any(|b| f.connects(SignalKind::Metrics, *b)),
                logs: ALL_SIGNALS.iter().any(|b| f.connects(SignalKind::Logs, *b)),
            }),
            ComponentKind::Extension => self.extensions.get(t).map(|_| SignalSet::default()),
        }
    }

    fn connects(&self, type_name: &str, from: SignalKind, to: SignalKind) -> bool {
        let t = self.canonical(ComponentKind::Connector, type_name);
        self.connectors.get(t).is_some_and(|f| f.connects(from, to))
    }

    fn known_types(&self, kind: ComponentKind) -> Vec<String> {
        let mut names: Vec<String> = match kind {
            ComponentKind::Receiver => self.receivers.keys().map(|s| s.to_string()).collect(),
            ComponentKind::Processor => self.processors.keys().map(|s| s.to_string()).collect(),
            ComponentKind::Exporter => self.exporters.keys().map(|s| s.to_string()).collect(),
            ComponentKind::Connector => self.connectors.keys().map(|s| s.to_string()).collect(),
            ComponentKind::Extension => self.extensions.keys().map(|s| s.to_string()).collect(),
        };
        names.extend(
            self.aliases
                .keys()
                .filter(|(k, _)| *k == kind)
                .map(|(_, a)| a.to_string()),
        );
        names
    }

    fn check_config(&self, kind: ComponentKind, id: &ComponentId, node: &Node) -> Vec<ConfigError> {
        let t = self.canonical(kind, id.type_name());
        match kind {
            ComponentKind::Receiver => self.receivers.get(t).map(|f| f.check(node)),
            ComponentKind::Processor => self.processors.get(t).map(|f| f.check(node)),
            ComponentKind::Exporter => self.exporters.get(t).map(|f| f.check(node)),
            ComponentKind::Connector => self.connectors.get(t).map(|f| f.check(node)),
            ComponentKind::Extension => self.extensions.get(t).map(|f| f.check(node)),
        }
        .unwrap_or_default()
    }
}
