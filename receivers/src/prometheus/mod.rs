//! The `prometheus` receiver: scrapes Prometheus targets with a Prometheus
//! `scrape_configs` config, as the OpenTelemetry Collector's
//! `prometheusreceiver` does, and converts the samples to OTLP metrics.
//!
//! - [`config`]: the config (Prometheus YAML under `config:`), with every
//!   unsupported Prometheus option an error.
//! - [`relabel`]: every relabel action, as Prometheus.
//! - [`parser`]: text 0.0.4 and OpenMetrics 1.0 parser (zero-copy).
//! - [`sd`]: static and file-based discovery, target label population.
//! - [`scrape`]: one task per job and per target.
//! - [`convert`]: samples → OTLP, start times, staleness, scrape reports.
//!
//! Deliberate differences from the Collector (see
//! docs/components/prometheus-receiver.md): start-time adjustment stays in
//! the receiver and is on by default (`adjust_start_time`); series whose
//! `job`/`instance` differ from the target's keep them as point attributes
//! instead of getting a resource of their own.

pub mod config;
pub mod convert;
pub mod parser;
pub mod relabel;
pub mod scrape;
pub mod sd;
#[cfg(test)]
mod tests;

pub use config::PrometheusConfig;

use async_trait::async_trait;
use confluo_config::{ConfigError, Node, SignalKind, SignalSet};
use confluo_pipeline::http_client::HttpClient;
use confluo_pipeline::telemetry::ReceiverMetrics;
use confluo_pipeline::{
    ComponentContext, ComponentError, Receiver, ReceiverFactory, SignalConsumers, Stability,
};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Registered in the binary as the `prometheus` receiver (metrics only).
pub struct PrometheusReceiverFactory;

impl ReceiverFactory for PrometheusReceiverFactory {
    fn type_name(&self) -> &'static str {
        "prometheus"
    }

    fn signals(&self) -> SignalSet {
        SignalSet {
            traces: false,
            metrics: true,
            logs: false,
        }
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        PrometheusConfig::from_node(node).err().unwrap_or_default()
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        let config = PrometheusConfig::from_node(node)
            .map_err(|mut errors| ComponentError::Config(errors.swap_remove(0)))?;
        Ok(Box::new(PrometheusReceiver::new(ctx, config)))
    }
}

/// One configured `prometheus` receiver.
pub struct PrometheusReceiver {
    ctx: ComponentContext,
    config: PrometheusConfig,
    stop: CancellationToken,
    jobs: Vec<JoinHandle<()>>,
}

impl PrometheusReceiver {
    pub fn new(ctx: ComponentContext, config: PrometheusConfig) -> PrometheusReceiver {
        let stop = ctx.shutdown.child_token();
        PrometheusReceiver {
            ctx,
            config,
            stop,
            jobs: Vec::new(),
        }
    }
}

#[async_trait]
impl Receiver for PrometheusReceiver {
    async fn start(&mut self, consumers: SignalConsumers) -> Result<(), ComponentError> {
        let Some(consumer) = consumers.get(SignalKind::Metrics).cloned() else {
            return Err(ComponentError::start(format!(
                "{}: the prometheus receiver produces metrics only; use it in a metrics pipeline",
                self.ctx.id
            )));
        };
        let id = self.ctx.id.to_string();
        let shared = Arc::new(scrape::Shared {
            id: id.clone(),
            consumer,
            metrics: ReceiverMetrics::new(&self.ctx.telemetry, &id, "http", self.signals()),
            admission: self.ctx.admission.clone(),
            adjust_start_time: self.config.adjust_start_time,
        });
        // Build every client before starting anything, so a TLS error fails
        // the start cleanly.
        let mut clients = Vec::new();
        for sc in &self.config.scrape_configs {
            let client = HttpClient::new(&sc.tls)
                .map_err(|e| ComponentError::start(format!("{id}: job {:?}: {e}", sc.job_name)))?;
            clients.push(client);
        }
        for (sc, client) in self.config.scrape_configs.iter().zip(clients) {
            self.jobs.push(tokio::spawn(scrape::run_job(
                shared.clone(),
                Arc::new(sc.clone()),
                client,
                self.stop.clone(),
            )));
        }
        tracing::info!(event = "receiver_started", receiver = %id, jobs = self.config.scrape_configs.len(), "scraping");
        Ok(())
    }

    async fn shutdown(&mut self, deadline: Instant) -> Result<(), ComponentError> {
        self.stop.cancel();
        let deadline = tokio::time::Instant::from_std(deadline);
        for mut j in self.jobs.drain(..) {
            // Jobs stop at their next await on the token; a scrape blocked in
            // a consumer past the deadline is abandoned.
            if tokio::time::timeout_at(deadline, &mut j).await.is_err() {
                tracing::warn!(
                    event = "receiver_shutdown_timeout",
                    receiver = %self.ctx.id,
                    "a scrape still in flight at the shutdown deadline was abandoned"
                );
                j.abort();
            }
        }
        Ok(())
    }
}

impl PrometheusReceiver {
    fn signals(&self) -> SignalSet {
        PrometheusReceiverFactory.signals()
    }
}

impl Drop for PrometheusReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
