//! Builds the running service from a validated config: one shared instance
//! per receiver and exporter, processor instances per pipeline, fan-out where
//! a receiver feeds several pipelines or a pipeline several exporters, and
//! connectors linking pipelines. Starts and stops it in the documented order.

use crate::admission::Admission;
use crate::component::{
    ComponentContext, ComponentError, Exporter, Extension, Extensions, Processor, Receiver,
    Registry, SignalConsumers,
};
use crate::consumer::{Consumer, FanOut};
use crate::telemetry::Telemetry;
use confluo_config::{ComponentId, ComponentKind, PipelineId, RawConfig, SignalKind, SignalSet};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A pipeline's processor instances, in pipeline order.
type ProcessorChain = Vec<(ComponentId, Arc<dyn Processor>)>;

/// A built service, ready to start.
pub struct Service {
    telemetry: Telemetry,
    shutdown: CancellationToken,
    extensions: Vec<(ComponentId, Arc<dyn Extension>)>,
    /// Receivers with the consumers they feed.
    receivers: Vec<(ComponentId, Box<dyn Receiver>, SignalConsumers)>,
    /// Processors per pipeline, in pipeline order; pipelines in build order
    /// (a pipeline fed by a connector comes after the one feeding it).
    processors: Vec<(PipelineId, ProcessorChain)>,
    connectors: Vec<(ComponentId, Arc<dyn Exporter>)>,
    exporters: Vec<(ComponentId, Arc<dyn Exporter>)>,
}

struct Builder<'a> {
    raw: &'a RawConfig,
    registry: &'a Registry,
    base: ComponentContext,
    exporters: BTreeMap<ComponentId, Arc<dyn Exporter>>,
    connectors: BTreeMap<(ComponentId, SignalKind), Arc<dyn Exporter>>,
    heads: BTreeMap<PipelineId, Arc<dyn Consumer>>,
    processors: Vec<(PipelineId, ProcessorChain)>,
    visiting: BTreeSet<PipelineId>,
}

fn err(msg: impl std::fmt::Display) -> ComponentError {
    ComponentError::Other(msg.to_string())
}

impl Builder<'_> {
    fn ctx(&self, kind: ComponentKind, id: &ComponentId) -> ComponentContext {
        ComponentContext {
            id: id.clone(),
            kind,
            ..self.base.clone()
        }
    }

    fn is_connector(&self, id: &ComponentId) -> bool {
        self.raw.connectors.contains_key(id)
    }

    /// Signals of the pipelines that list `id` among their exporters.
    fn exporter_signals(&self, id: &ComponentId) -> SignalSet {
        let mut set = SignalSet::default();
        for (pid, p) in &self.raw.service.pipelines {
            if p.exporters.iter().any(|e| &e.value == id) {
                set = set.with(pid.signal);
            }
        }
        set
    }

    fn exporter(&mut self, id: &ComponentId) -> Result<Arc<dyn Exporter>, ComponentError> {
        if let Some(e) = self.exporters.get(id) {
            return Ok(e.clone());
        }
        let node = self
            .raw
            .exporters
            .get(id)
            .ok_or_else(|| err(format!("exporter \"{id}\" is not configured")))?;
        let type_name = self
            .registry
            .canonical(ComponentKind::Exporter, id.type_name());
        let factory = self
            .registry
            .exporters
            .get(type_name)
            .ok_or_else(|| err(format!("unknown exporter type \"{}\"", id.type_name())))?
            .clone();
        let exporter = factory.create(
            self.ctx(ComponentKind::Exporter, id),
            node,
            self.exporter_signals(id),
        )?;
        self.exporters.insert(id.clone(), exporter.clone());
        Ok(exporter)
    }

    fn connector(
        &mut self,
        id: &ComponentId,
        from: SignalKind,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        if let Some(c) = self.connectors.get(&(id.clone(), from)) {
            return Ok(c.clone());
        }
        let mut to = SignalConsumers::default();
        for kind in crate::component::ALL_SIGNALS {
            let targets: Vec<PipelineId> = self
                .raw
                .service
                .pipelines
                .iter()
                .filter(|(pid, p)| pid.signal == kind && p.receivers.iter().any(|r| &r.value == id))
                .map(|(pid, _)| pid.clone())
                .collect();
            let mut heads = Vec::new();
            for pid in targets {
                if !self.registry.connects_type(id.type_name(), from, kind) {
                    continue;
                }
                heads.push(self.pipeline(&pid)?);
            }
            if !heads.is_empty() {
                to.set(kind, FanOut::build(heads));
            }
        }
        let node = self
            .raw
            .connectors
            .get(id)
            .ok_or_else(|| err(format!("connector \"{id}\" is not configured")))?;
        let type_name = self
            .registry
            .canonical(ComponentKind::Connector, id.type_name());
        let factory = self
            .registry
            .connectors
            .get(type_name)
            .ok_or_else(|| err(format!("unknown connector type \"{}\"", id.type_name())))?
            .clone();
        let c = factory.create(self.ctx(ComponentKind::Connector, id), node, from, to)?;
        self.connectors.insert((id.clone(), from), c.clone());
        Ok(c)
    }

    /// The consumer at the head of a pipeline: its processors wrapping the
    /// fan-out to its exporters.
    fn pipeline(&mut self, pid: &PipelineId) -> Result<Arc<dyn Consumer>, ComponentError> {
        if let Some(h) = self.heads.get(pid) {
            return Ok(h.clone());
        }
        if !self.visiting.insert(pid.clone()) {
            return Err(err(format!(
                "pipeline \"{pid}\" is part of a cycle through connectors"
            )));
        }
        let p = &self.raw.service.pipelines[pid];
        let mut branches: Vec<Arc<dyn Consumer>> = Vec::new();
        for e in &p.exporters {
            let exporter: Arc<dyn Consumer> = if self.is_connector(&e.value) {
                self.connector(&e.value, pid.signal)?
            } else {
                self.exporter(&e.value)?
            };
            branches.push(exporter);
        }
        let mut next = FanOut::build(branches);
        let mut chain = Vec::new();
        for proc_id in p.processors.iter().rev() {
            let id = &proc_id.value;
            let node = self
                .raw
                .processors
                .get(id)
                .ok_or_else(|| err(format!("processor \"{id}\" is not configured")))?;
            let type_name = self
                .registry
                .canonical(ComponentKind::Processor, id.type_name());
            let factory = self
                .registry
                .processors
                .get(type_name)
                .ok_or_else(|| err(format!("unknown processor type \"{}\"", id.type_name())))?
                .clone();
            let processor = factory.create(
                self.ctx(ComponentKind::Processor, id),
                node,
                pid.signal,
                next,
            )?;
            next = processor.clone();
            chain.push((id.clone(), processor));
        }
        chain.reverse();
        self.processors.push((pid.clone(), chain));
        self.visiting.remove(pid);
        self.heads.insert(pid.clone(), next.clone());
        Ok(next)
    }
}

impl Registry {
    fn connects_type(&self, type_name: &str, from: SignalKind, to: SignalKind) -> bool {
        confluo_config::Catalog::connects(self, type_name, from, to)
    }
}

impl Service {
    /// Creates every component of a config that `confluo_config::validate`
    /// accepted. Nothing is started yet.
    pub fn build(
        raw: &RawConfig,
        registry: &Registry,
        telemetry: Telemetry,
        admission: Admission,
    ) -> Result<Service, ComponentError> {
        let shutdown = CancellationToken::new();
        let base = ComponentContext {
            id: "service".parse().map_err(err)?,
            kind: ComponentKind::Extension,
            telemetry: telemetry.clone(),
            admission,
            shutdown: shutdown.clone(),
            extensions: Extensions::default(),
        };
        let mut extensions = Vec::new();
        for ext in &raw.service.extensions {
            let id = &ext.value;
            let node = raw
                .extensions
                .get(id)
                .ok_or_else(|| err(format!("extension \"{id}\" is not configured")))?;
            let type_name = registry.canonical(ComponentKind::Extension, id.type_name());
            let factory = registry
                .extensions
                .get(type_name)
                .ok_or_else(|| err(format!("unknown extension type \"{}\"", id.type_name())))?;
            let mut ctx = base.clone();
            ctx.id = id.clone();
            let instance = factory.create(ctx, node)?;
            base.extensions.insert(id.clone(), instance.clone());
            extensions.push((id.clone(), instance));
        }

        let mut b = Builder {
            raw,
            registry,
            base,
            exporters: BTreeMap::new(),
            connectors: BTreeMap::new(),
            heads: BTreeMap::new(),
            processors: Vec::new(),
            visiting: BTreeSet::new(),
        };
        // Pipelines are built as their receivers need them; build in config
        // order so that the shutdown order follows data flow.
        let pipeline_ids: Vec<PipelineId> = raw.service.pipelines.keys().cloned().collect();
        let mut receivers = Vec::new();
        let mut receiver_ids: Vec<ComponentId> = Vec::new();
        for pid in &pipeline_ids {
            for r in &raw.service.pipelines[pid].receivers {
                if !b.is_connector(&r.value) && !receiver_ids.contains(&r.value) {
                    receiver_ids.push(r.value.clone());
                }
            }
        }
        for id in receiver_ids {
            let mut consumers = SignalConsumers::default();
            for kind in crate::component::ALL_SIGNALS {
                let mut heads = Vec::new();
                for pid in &pipeline_ids {
                    let p = &raw.service.pipelines[pid];
                    if pid.signal == kind && p.receivers.iter().any(|r| r.value == id) {
                        heads.push(b.pipeline(pid)?);
                    }
                }
                if !heads.is_empty() {
                    consumers.set(kind, FanOut::build(heads));
                }
            }
            let node = raw
                .receivers
                .get(&id)
                .ok_or_else(|| err(format!("receiver \"{id}\" is not configured")))?;
            let type_name = registry.canonical(ComponentKind::Receiver, id.type_name());
            let factory = registry
                .receivers
                .get(type_name)
                .ok_or_else(|| err(format!("unknown receiver type \"{}\"", id.type_name())))?;
            let receiver = factory.create(b.ctx(ComponentKind::Receiver, &id), node)?;
            receivers.push((id, receiver, consumers));
        }
        // Pipelines fed only by connectors are built through them; any left
        // (no receivers at all would be a validation error) are built here.
        for pid in &pipeline_ids {
            b.pipeline(pid)?;
        }
        // Reverse build order = data-flow order (upstream pipelines were
        // finished last because they recurse into downstream ones).
        let mut processors = b.processors;
        processors.reverse();
        Ok(Service {
            telemetry,
            shutdown,
            extensions,
            receivers,
            processors,
            connectors: b
                .connectors
                .into_iter()
                .map(|((id, _), c)| (id, c))
                .collect(),
            exporters: b.exporters.into_iter().collect(),
        })
    }

    /// Starts extensions, exporters, then receivers; ready once all run.
    pub async fn start(&mut self) -> Result<(), ComponentError> {
        for (id, e) in &self.extensions {
            e.start()
                .await
                .map_err(|e| err(format!("extension \"{id}\": {e}")))?;
        }
        for (id, e) in self.exporters.iter().chain(self.connectors.iter()) {
            e.start()
                .await
                .map_err(|e| err(format!("exporter \"{id}\": {e}")))?;
        }
        for (id, r, consumers) in &mut self.receivers {
            r.start(consumers.clone())
                .await
                .map_err(|e| err(format!("receiver \"{id}\": {e}")))?;
            tracing::info!(event = "receiver_started", receiver = %id);
        }
        self.telemetry.set_ready(true);
        tracing::info!(
            event = "service_started",
            receivers = self.receivers.len(),
            exporters = self.exporters.len(),
            pipelines = self.processors.len()
        );
        Ok(())
    }

    /// Stops in the documented order within `deadline`: stop accepting;
    /// refuse consumes blocked on full queues; flush processors in data-flow
    /// order; drain connectors then exporters; stop extensions.
    pub async fn shutdown(mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.telemetry.set_ready(false);
        tracing::info!(event = "service_stopping", grace_s = grace.as_secs_f64());
        self.shutdown.cancel();
        for (id, r, _) in &mut self.receivers {
            if let Err(e) = r.shutdown(deadline).await {
                tracing::warn!(event = "receiver_shutdown_failed", receiver = %id, error = %e);
            }
        }
        for (pid, chain) in &self.processors {
            for (id, p) in chain {
                if let Err(e) = p.shutdown().await {
                    tracing::warn!(event = "processor_shutdown_failed", pipeline = %pid, processor = %id, error = %e);
                }
            }
        }
        for (id, e) in self.connectors.iter().chain(self.exporters.iter()) {
            if let Err(e) = e.shutdown(deadline).await {
                tracing::warn!(event = "exporter_shutdown_failed", exporter = %id, error = %e);
            }
        }
        for (id, e) in &self.extensions {
            if let Err(e) = e.shutdown().await {
                tracing::warn!(event = "extension_shutdown_failed", extension = %id, error = %e);
            }
        }
        tracing::info!(event = "service_stopped");
    }
}
