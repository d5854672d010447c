//! `debug`: shows what reaches it, as the Collector's `debug` exporter does.
//!
//! - `basic` (default): one log line per batch with its counts;
//! - `normal`: one line per span / log record / metric;
//! - `detailed`: every field of every item (the Collector's `otlptext`).
//!
//! `normal` and `detailed` write to stdout through a locked writer, so that
//! the dump of one batch is never interleaved with another's. Not queued:
//! writing is synchronous, like the Collector's.

pub mod text;

use async_trait::async_trait;
use confluo_config::{ConfigError, Node};
use confluo_pipeline::batch::Settlement;
use confluo_pipeline::telemetry::ExporterMetrics;
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Exporter, ExporterFactory,
    Signal, SignalKind, SignalSet, Stability,
};
use serde::Deserialize;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `verbosity`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

/// The `debug` exporter's config (the Collector's names and defaults).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    pub verbosity: Verbosity,
    /// Per second, the first `sampling_initial` batches are shown…
    pub sampling_initial: u64,
    /// …then one in every `sampling_thereafter`.
    pub sampling_thereafter: u64,
    /// The Collector writes through its own logger when true (its default);
    /// here `basic` always goes through the log and `normal`/`detailed`
    /// always to stdout, so the option is accepted and has no effect.
    pub use_internal_logger: bool,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            verbosity: Verbosity::Basic,
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
        }
    }
}

fn validate(cfg: &DebugConfig, node: &Node) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if cfg.sampling_thereafter == 0 {
        errors.push(crate::util::field_error(
            node,
            "sampling_thereafter",
            "must be at least 1",
        ));
    }
    errors
}

/// Factory of `debug`.
pub struct DebugFactory;

impl ExporterFactory for DebugFactory {
    fn type_name(&self) -> &'static str {
        "debug"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn stability(&self) -> Stability {
        Stability::Development
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        crate::util::check_with::<DebugConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: DebugConfig = crate::util::load_with(node, validate)?;
        Ok(Arc::new(DebugExporter::new(&ctx, cfg, signals)))
    }
}

/// zap-style sampling: per one-second tick, the first `initial` events pass,
/// then every `thereafter`-th.
#[derive(Debug)]
struct Sampler {
    initial: u64,
    thereafter: u64,
    state: Mutex<(Instant, u64)>,
}

impl Sampler {
    fn new(initial: u64, thereafter: u64) -> Sampler {
        Sampler {
            initial,
            thereafter: thereafter.max(1),
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(state.0).as_secs() >= 1 {
            *state = (now, 0);
        }
        state.1 += 1;
        let n = state.1;
        n <= self.initial || (n - self.initial).is_multiple_of(self.thereafter)
    }
}

pub struct DebugExporter {
    id: String,
    verbosity: Verbosity,
    sampler: Sampler,
    metrics: ExporterMetrics,
}

impl DebugExporter {
    pub fn new(ctx: &ComponentContext, cfg: DebugConfig, signals: SignalSet) -> DebugExporter {
        DebugExporter {
            id: ctx.id.to_string(),
            verbosity: cfg.verbosity,
            sampler: Sampler::new(cfg.sampling_initial, cfg.sampling_thereafter),
            metrics: ExporterMetrics::new(&ctx.telemetry, &ctx.id.to_string(), signals),
        }
    }

    fn log_basic(&self, signal: &Signal) {
        let items = signal.item_count();
        match signal {
            Signal::Traces(rs) => tracing::info!(
                event = "debug_export",
                exporter = %self.id,
                signal = "traces",
                resource_spans = rs.len(),
                spans = items,
            ),
            Signal::Metrics(rm) => tracing::info!(
                event = "debug_export",
                exporter = %self.id,
                signal = "metrics",
                resource_metrics = rm.len(),
                metrics = rm.iter().flat_map(|r| &r.scope_metrics).map(|s| s.metrics.len()).sum::<usize>(),
                data_points = items,
            ),
            Signal::Logs(rl) => tracing::info!(
                event = "debug_export",
                exporter = %self.id,
                signal = "logs",
                resource_logs = rl.len(),
                log_records = items,
            ),
        }
    }
}

#[async_trait]
impl Consumer for DebugExporter {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let kind: SignalKind = batch.kind();
        let items = batch.item_count();
        if self.sampler.allow() {
            let signal = batch.signal();
            self.log_basic(signal);
            let text = match self.verbosity {
                Verbosity::Basic => None,
                Verbosity::Normal => Some(text::render_normal(signal)),
                Verbosity::Detailed => Some(text::render_detailed(signal)),
            };
            if let Some(text) = text {
                let mut out = std::io::stdout().lock();
                // A closed stdout must not fail the pipeline: this is a
                // diagnostic aid, not a destination anyone depends on.
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
        self.metrics.sent(kind, items);
        batch.acks.take().settle(Settlement::Delivered);
        Ok(())
    }
}

#[async_trait]
impl Exporter for DebugExporter {
    async fn shutdown(&self, _deadline: Instant) -> Result<(), ComponentError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_pipeline::ComponentKind;

    #[test]
    fn defaults_and_unknown_keys() {
        let cfg: DebugConfig = Node::from_yaml_str("t.yaml", "{}")
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(cfg, DebugConfig::default());
        let node =
            Node::from_yaml_str("t.yaml", "{verbosity: detailed, sampling_initial: 5}").unwrap();
        assert!(DebugFactory.check(&node).is_empty());
        let bad = Node::from_yaml_str("t.yaml", "{verbosity: loud}").unwrap();
        assert_eq!(DebugFactory.check(&bad).len(), 1);
        let bad = Node::from_yaml_str("t.yaml", "{verbosty: basic}").unwrap();
        assert_eq!(DebugFactory.check(&bad).len(), 1);
        let bad = Node::from_yaml_str("t.yaml", "{sampling_thereafter: 0}").unwrap();
        assert_eq!(DebugFactory.check(&bad).len(), 1);
    }

    #[test]
    fn sampler_passes_initial_then_every_nth() {
        let s = Sampler::new(2, 3);
        let passed: Vec<bool> = (0..8).map(|_| s.allow()).collect();
        assert_eq!(passed, [true, true, false, false, true, false, false, true]);
        let all = Sampler::new(2, 1);
        assert!((0..10).all(|_| all.allow()));
    }

    #[tokio::test]
    async fn consumes_and_counts() {
        let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "debug");
        let node = Node::from_yaml_str("t.yaml", "{verbosity: basic}").unwrap();
        let exp = DebugFactory
            .create(ctx.clone(), &node, SignalSet::ALL)
            .unwrap();
        exp.consume(Batch::new(crate::testdata::traces()))
            .await
            .unwrap();
        let rendered = ctx.telemetry.render();
        assert!(
            rendered.contains("otelcol_exporter_sent_spans{exporter=\"debug\"} 2"),
            "{rendered}"
        );
    }
}
