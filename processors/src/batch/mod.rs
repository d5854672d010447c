//! The `batch` processor, with the Collector's options and semantics:
//! accumulate until `send_batch_size` items or `timeout`, never send more
//! than `send_batch_max_size` items at once (splitting oversize batches), and
//! keep separate batches per `metadata_keys` values.
//!
//! Unlike the Collector's, it holds data in custody: what it accepted stays
//! in it until downstream accepts it. When downstream refuses retryably, the
//! data stays pending and is offered again on the next flush; once pending
//! data reaches its bound, new data is refused retryably (backpressure)
//! instead of growing memory.

use async_trait::async_trait;
use confluo_config::{ConfigError, GoDuration, Node, SignalKind, SignalSet};
use confluo_pipeline::batch::Settlement;
use confluo_pipeline::component::check_config;
use confluo_pipeline::telemetry::{Counter, ProcessorMetrics};
use confluo_pipeline::{
    Acks, Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Processor,
    ProcessorFactory, Signal, Stability,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Items that trigger a send (not a cap).
    pub send_batch_size: usize,
    /// Upper bound on items per send; 0 = no bound. Must be ≥ send_batch_size.
    pub send_batch_max_size: usize,
    /// Send a non-empty batch at the latest this long after its first item;
    /// 0 = send immediately (only `send_batch_max_size` applies).
    pub timeout: GoDuration,
    /// Client metadata keys whose values partition batches.
    pub metadata_keys: Vec<String>,
    pub metadata_cardinality_limit: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: GoDuration(Duration::from_millis(200)),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: 1000,
        }
    }
}

impl BatchConfig {
    fn validate(&self) -> Result<(), String> {
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            return Err(format!(
                "send_batch_max_size ({}) must be greater than or equal to send_batch_size ({})",
                self.send_batch_max_size, self.send_batch_size
            ));
        }
        Ok(())
    }

    /// Pending items beyond which new data is refused.
    fn pending_limit(&self) -> usize {
        (self.send_batch_size.max(self.send_batch_max_size) * 16).max(100_000)
    }
}

pub struct BatchFactory;

impl ProcessorFactory for BatchFactory {
    fn type_name(&self) -> &'static str {
        "batch"
    }
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = check_config::<BatchConfig>(node);
        if errors.is_empty() {
            if let Ok(cfg) = node.deserialize::<BatchConfig>() {
                if let Err(msg) = cfg.validate() {
                    errors.push(ConfigError::error(
                        Some(node.span().clone()),
                        node.path(),
                        msg,
                    ));
                }
            }
        }
        errors
    }
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let config: BatchConfig = node.deserialize()?;
        config.validate().map_err(ComponentError::Other)?;
        Ok(BatchProcessor::start(ctx, config, signal, next))
    }
}

/// The most a partition's protobuf buffer reserves up front.
const MAX_RESERVE: usize = 16 << 20;

/// A batch ready to go downstream: its data and its sources' acks.
type Piece = (Held, Acks);

/// The data of a partition.
enum Held {
    /// Concatenated protobuf export requests, while every part arrived as
    /// one (concatenated export requests are a valid export request). Such
    /// data is never decoded here: an OTLP exporter sends these bytes as
    /// they are, so a forwarding pipeline never builds the tree.
    Encoded {
        bytes: Vec<u8>,
        items: usize,
    },
    Decoded(Signal),
}

impl Held {
    fn decode(self, kind: SignalKind) -> Signal {
        match self {
            Held::Decoded(s) => s,
            Held::Encoded { bytes, items } => {
                Batch::from_validated(kind, bytes.into(), items).take_signal()
            }
        }
    }

    fn into_batch(self, kind: SignalKind) -> Batch {
        match self {
            Held::Decoded(s) => Batch::new(s),
            Held::Encoded { bytes, items } => Batch::from_validated(kind, bytes.into(), items),
        }
    }
}

/// Data waiting for one partition.
struct Pending {
    data: Held,
    items: usize,
    acks: Acks,
    since: Instant,
}

struct State {
    partitions: HashMap<Vec<String>, Pending>,
    total_items: usize,
}

pub struct BatchProcessor {
    config: BatchConfig,
    signal: SignalKind,
    next: Arc<dyn Consumer>,
    state: Mutex<State>,
    metrics: ProcessorMetrics,
    size_triggers: Counter,
    timeout_triggers: Counter,
    stop: CancellationToken,
    id: String,
}

impl BatchProcessor {
    pub fn start(
        ctx: ComponentContext,
        config: BatchConfig,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Arc<BatchProcessor> {
        let id = ctx.id.to_string();
        let labels = [("processor", id.as_str())];
        let p = Arc::new(BatchProcessor {
            metrics: ProcessorMetrics::new(&ctx.telemetry, &id, signal),
            size_triggers: ctx.telemetry.counter(
                "otelcol_processor_batch_batch_size_trigger_send",
                "Number of times the batch was sent due to a size trigger.",
                &labels,
            ),
            timeout_triggers: ctx.telemetry.counter(
                "otelcol_processor_batch_timeout_trigger_send",
                "Number of times the batch was sent due to a timeout trigger.",
                &labels,
            ),
            config,
            signal,
            next,
            state: Mutex::new(State {
                partitions: HashMap::new(),
                total_items: 0,
            }),
            stop: CancellationToken::new(),
            id,
        });
        if !p.config.timeout.0.is_zero() {
            let weak = Arc::downgrade(&p);
            let stop = p.stop.clone();
            let tick = p
                .config
                .timeout
                .0
                .min(Duration::from_millis(100))
                .max(Duration::from_millis(1));
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        _ = stop.cancelled() => return,
                    }
                    let Some(p) = weak.upgrade() else { return };
                    p.flush_expired().await;
                }
            });
        }
        p
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn partition_key(&self, batch: &Batch) -> Vec<String> {
        self.config
            .metadata_keys
            .iter()
            .map(|k| {
                batch
                    .ctx
                    .client
                    .metadata
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .collect()
    }

    /// Takes a partition's data out in pieces of at most `send_batch_max_size`.
    fn take_pieces(&self, pending: Pending) -> Vec<Piece> {
        let Pending {
            data,
            items,
            mut acks,
            ..
        } = pending;
        let max = self.config.send_batch_max_size;
        if max == 0 || items <= max {
            return vec![(data, acks)];
        }
        let mut data = data.decode(self.signal);
        let mut pieces = Vec::new();
        while data.item_count() > max {
            pieces.push((Held::Decoded(data.split_front(max)), acks.share()));
        }
        pieces.push((Held::Decoded(data), acks.take()));
        pieces
    }

    /// Sends pieces downstream; pieces refused retryably go back to pending.
    async fn send(&self, key: Vec<String>, pieces: Vec<Piece>) {
        let mut refused: Vec<(Signal, Acks)> = Vec::new();
        for (data, acks) in pieces {
            if !refused.is_empty() {
                refused.push((data.decode(self.signal), acks));
                continue;
            }
            // The acks stay here: downstream taking the batch is custody, and a
            // refused batch comes back to us rather than being lost.
            let batch = data.into_batch(self.signal);
            let items = batch.item_count();
            let keep = batch.share();
            match self.next.consume(batch).await {
                Ok(()) => {
                    self.metrics.outgoing.add(items as u64);
                    acks.settle(Settlement::Delivered);
                }
                Err(ConsumeError::Permanent { reason }) => {
                    tracing::error!(event = "batch_send_rejected", processor = %self.id, items, reason = %reason);
                    acks.settle(Settlement::Dropped);
                }
                Err(ConsumeError::Retryable { reason, .. }) => {
                    tracing::warn!(event = "batch_send_refused", processor = %self.id, items, reason = %reason, "downstream refused; keeping the batch for the next flush");
                    let mut keep = keep;
                    refused.push((keep.take_signal(), acks));
                }
            }
        }
        if refused.is_empty() {
            return;
        }
        let mut st = self.lock();
        for (data, acks) in refused.into_iter().rev() {
            let items = data.item_count();
            st.total_items += items;
            match st.partitions.remove(&key) {
                None => {
                    st.partitions.insert(
                        key.clone(),
                        Pending {
                            data: Held::Decoded(data),
                            items,
                            acks,
                            since: Instant::now() - self.config.timeout.0,
                        },
                    );
                }
                Some(newer) => {
                    // Put the refused data in front of what arrived meanwhile.
                    let mut data = data;
                    let _ = data.append(newer.data.decode(self.signal));
                    let mut merged = Pending {
                        data: Held::Decoded(data),
                        items: items + newer.items,
                        acks,
                        since: newer.since.min(Instant::now()),
                    };
                    merged.acks.merge(newer.acks);
                    st.partitions.insert(key.clone(), merged);
                }
            }
        }
    }

    async fn flush_expired(&self) {
        let timeout = self.config.timeout.0;
        let now = Instant::now();
        let due: Vec<(Vec<String>, Pending)> = {
            let mut st = self.lock();
            let keys: Vec<Vec<String>> = st
                .partitions
                .iter()
                .filter(|(_, p)| now.duration_since(p.since) >= timeout)
                .map(|(k, _)| k.clone())
                .collect();
            let mut out = Vec::new();
            for k in keys {
                if let Some(p) = st.partitions.remove(&k) {
                    st.total_items -= p.items;
                    out.push((k, p));
                }
            }
            out
        };
        for (key, pending) in due {
            self.timeout_triggers.add(1);
            let pieces = self.take_pieces(pending);
            self.send(key, pieces).await;
        }
    }
}

#[async_trait]
impl Consumer for BatchProcessor {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let items = batch.item_count();
        if items == 0 {
            batch.acks.take().settle(Settlement::Delivered);
            return Ok(());
        }
        self.metrics.incoming.add(items as u64);
        let key = self.partition_key(&batch);
        let ready = {
            let mut st = self.lock();
            if st.total_items + items > self.config.pending_limit() {
                return Err(ConsumeError::Retryable {
                    reason: format!(
                        "{}: batch processor is full, downstream is not keeping up",
                        self.id
                    ),
                    retry_after: Some(Duration::from_secs(1)),
                });
            }
            if !st.partitions.contains_key(&key)
                && st.partitions.len() >= self.config.metadata_cardinality_limit.max(1)
            {
                return Err(ConsumeError::permanent(format!(
                    "{}: too many distinct metadata_keys combinations (metadata_cardinality_limit {})",
                    self.id, self.config.metadata_cardinality_limit
                )));
            }
            let acks = batch.acks.take();
            st.total_items += items;
            let kind = self.signal;
            let pending = st.partitions.entry(key.clone()).or_insert_with(|| Pending {
                data: Held::Encoded {
                    bytes: Vec::new(),
                    items: 0,
                },
                items: 0,
                acks: Acks::none(),
                since: Instant::now(),
            });
            match (&mut pending.data, batch.take_encoded()) {
                (Held::Encoded { bytes, items: n }, Some(part)) => {
                    if bytes.is_empty() {
                        // Room for a whole batch of parts like this one, so
                        // the buffer is not regrown (and copied) per part.
                        let parts = self.config.send_batch_size.div_ceil(items).max(1);
                        bytes.reserve(part.len().saturating_mul(parts).min(MAX_RESERVE));
                    }
                    bytes.extend_from_slice(&part);
                    *n += items;
                }
                (Held::Decoded(all), _) => {
                    let _ = all.append(batch.take_signal());
                }
                (held @ Held::Encoded { .. }, None) => {
                    let placeholder = Held::Decoded(Signal::empty(kind));
                    let mut all = std::mem::replace(held, placeholder).decode(kind);
                    let _ = all.append(batch.take_signal());
                    *held = Held::Decoded(all);
                }
            }
            pending.items += items;
            pending.acks.merge(acks);
            let immediate = self.config.timeout.0.is_zero();
            if immediate || pending.items >= self.config.send_batch_size {
                let p = st.partitions.remove(&key).expect("just inserted");
                st.total_items -= p.items;
                Some(p)
            } else {
                None
            }
        };
        if let Some(pending) = ready {
            self.size_triggers.add(1);
            let pieces = self.take_pieces(pending);
            self.send(key, pieces).await;
        }
        Ok(())
    }
}

#[async_trait]
impl Processor for BatchProcessor {
    fn mutates(&self) -> bool {
        // It takes ownership to merge batches, which needs an unshared copy.
        true
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        // Offer everything pending a few times; exporters still run.
        for _ in 0..5 {
            let all: Vec<(Vec<String>, Pending)> = {
                let mut st = self.lock();
                st.total_items = 0;
                st.partitions.drain().collect()
            };
            if all.is_empty() {
                return Ok(());
            }
            for (key, pending) in all {
                let pieces = self.take_pieces(pending);
                self.send(key, pieces).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut st = self.lock();
        let lost: usize = st.partitions.values().map(|p| p.items).sum();
        st.partitions.clear();
        if lost > 0 {
            tracing::error!(event = "batch_shutdown_dropped", processor = %self.id, items = lost, "downstream kept refusing during shutdown");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
