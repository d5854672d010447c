//! The `redaction` processor, after the Collector's contrib
//! `redactionprocessor`: an allow-list of attribute keys that fails closed,
//! ignored keys, masking of blocked keys and of blocked values (regexes,
//! `****` or a hash), allowed values, a summary in the data — extended to
//! every attribute level, log bodies, span names, status messages and event
//! names, with built-in detectors and URL / SQL sanitizers.
//!
//! All value patterns (the user's and the detectors') are compiled into one
//! `regex-automata` meta regex that reports the position and pattern of each
//! leftmost-first match in one linear-time pass (lazy DFA with literal
//! prefilters, PikeVM fallback; no backtracking engine is compiled in), so a
//! string without matches costs one scan and no allocation.

pub mod config;
pub mod db;
pub mod detectors;
pub mod engine;
pub mod sanitize;
#[cfg(test)]
mod tests;
pub mod wire;

use async_trait::async_trait;
pub use config::{Detector, HashFunction, RedactionConfig, Summary};
use confluo_config::{ConfigError, Node, SignalKind, SignalSet};
use confluo_pipeline::component::check_config;
use confluo_pipeline::telemetry::{Counter, ProcessorMetrics};
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Processor, ProcessorFactory,
    Stability,
};
pub use engine::{Redactor, Stats};
use std::sync::Arc;

pub struct RedactionFactory;

impl RedactionFactory {
    /// The config's problems: serde's, then the ones found while compiling
    /// (regexes, hmac_key), each at the option it concerns.
    fn problems(node: &Node) -> Vec<ConfigError> {
        let mut errors = check_config::<RedactionConfig>(node);
        if !errors.is_empty() {
            return errors;
        }
        let Ok(cfg) = node.deserialize::<RedactionConfig>() else {
            return errors;
        };
        if let Err(build) = Redactor::new(&cfg) {
            for e in build {
                let top = e.option.split('[').next().unwrap_or(&e.option);
                let at = node.get(top).unwrap_or(node);
                errors.push(ConfigError::error(
                    Some(at.span().clone()),
                    format!("{}.{}", node.path(), e.option),
                    e.message,
                ));
            }
        }
        errors
    }
}

impl ProcessorFactory for RedactionFactory {
    fn type_name(&self) -> &'static str {
        "redaction"
    }
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        RedactionFactory::problems(node)
    }
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let config: RedactionConfig = node.deserialize()?;
        let redactor = Redactor::new(&config).map_err(|errs| {
            ComponentError::Other(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(Arc::new(RedactionProcessor::new(
            &ctx, redactor, signal, next,
        )))
    }
}

pub struct RedactionProcessor {
    redactor: Redactor,
    next: Arc<dyn Consumer>,
    metrics: ProcessorMetrics,
    redacted: Counter,
    masked: Counter,
    allowed: Counter,
    ignored: Counter,
}

impl RedactionProcessor {
    pub fn new(
        ctx: &ComponentContext,
        redactor: Redactor,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> RedactionProcessor {
        let id = ctx.id.to_string();
        let signal_name = signal.to_string();
        let labels = [
            ("processor", id.as_str()),
            ("otel_signal", signal_name.as_str()),
        ];
        let t = &ctx.telemetry;
        RedactionProcessor {
            redactor,
            next,
            metrics: ProcessorMetrics::new(t, &id, signal),
            redacted: t.counter(
                "otelcol_processor_redaction_redacted_attributes",
                "Attributes removed because their key is not allowed.",
                &labels,
            ),
            masked: t.counter(
                "otelcol_processor_redaction_masked_values",
                "Values (attributes, bodies, names, messages) masked in whole or in part.",
                &labels,
            ),
            allowed: t.counter(
                "otelcol_processor_redaction_allowed_values",
                "Attribute values kept because a blocked match was in allowed_values.",
                &labels,
            ),
            ignored: t.counter(
                "otelcol_processor_redaction_ignored_attributes",
                "Attributes left untouched because their key is ignored.",
                &labels,
            ),
        }
    }
}

#[async_trait]
impl Consumer for RedactionProcessor {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let items = batch.item_count() as u64;
        self.metrics.incoming.add(items);
        // Data nothing has decoded yet is redacted on its protobuf form
        // (wire.rs says why); the rest, and shapes the walk leaves to the
        // tree, through the decoded path.
        let in_place = batch
            .undecoded()
            .and_then(|bytes| wire::process_encoded(&self.redactor, batch.kind(), bytes).ok());
        let stats = match in_place {
            Some((stats, rewritten)) => {
                if let Some(bytes) = rewritten {
                    batch.replace_undecoded(bytes.into());
                }
                stats
            }
            // When nothing was redacted, masked or summarised, the data is as
            // it arrived, and its protobuf form may go on to the exporter as is.
            None => batch.modify(|signal| {
                let stats = self.redactor.process(signal);
                (stats, self.redactor.changed(&stats))
            }),
        };
        self.redacted.add(stats.redacted);
        self.masked.add(stats.masked);
        self.allowed.add(stats.allowed);
        self.ignored.add(stats.ignored);
        self.metrics.outgoing.add(items);
        self.next.consume(batch).await
    }
}

#[async_trait]
impl Processor for RedactionProcessor {
    fn mutates(&self) -> bool {
        true
    }
}
