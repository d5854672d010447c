//! Connectors: an exporter in one pipeline, a receiver in another.

use crate::batch::Batch;
use crate::component::{
    ComponentContext, ComponentError, ConnectorFactory, Exporter, SignalConsumers, Stability,
};
use crate::consumer::{ConsumeError, Consumer};
use async_trait::async_trait;
use confluo_config::{ConfigError, Node, SignalKind};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

/// The Collector's `forward` connector: passes data unchanged from the
/// pipelines where it is an exporter to those of the same signal where it is
/// a receiver.
pub struct ForwardFactory;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardConfig {}

impl ConnectorFactory for ForwardFactory {
    fn type_name(&self) -> &'static str {
        "forward"
    }
    fn connects(&self, from: SignalKind, to: SignalKind) -> bool {
        from == to
    }
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        crate::component::check_config::<ForwardConfig>(node)
    }
    fn create(
        &self,
        _ctx: ComponentContext,
        node: &Node,
        from: SignalKind,
        to: SignalConsumers,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let _: ForwardConfig = node.deserialize()?;
        let next = to.get(from).cloned();
        Ok(Arc::new(Forward { next }))
    }
}

struct Forward {
    next: Option<Arc<dyn Consumer>>,
}

#[async_trait]
impl Consumer for Forward {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        match &self.next {
            Some(next) => next.consume(batch).await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Exporter for Forward {
    async fn shutdown(&self, _deadline: Instant) -> Result<(), ComponentError> {
        Ok(())
    }
}
