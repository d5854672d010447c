//! The `tail_sampling` processor: holds the spans of each trace for
//! `decision_wait` after its first span, then keeps or drops the whole trace
//! according to the Collector's policies and their precedence.
//!
//! - Held spans are protobuf bytes (see [`encode`]), with a small summary per
//!   trace that the policies read (span count, time range, status bits,
//!   attribute-condition bits extracted at ingest): deciding decodes nothing;
//!   only sampled traces are decoded, once, when emitted.
//! - Traces are sharded by trace id (`num_shards`), each shard its own lock,
//!   timer slots and ticker task, so ingest is not serialized and decisions
//!   are not starved by one event loop (contrib #48699).
//! - Memory is bounded by `num_traces`, `maximum_trace_size_bytes` and
//!   `max_bytes`; when full, the oldest undecided trace is evicted and counted
//!   in `otelcol_processor_tail_sampling_sampling_trace_dropped_too_early`,
//!   as in the Collector (or, with `block_on_overflow`, new data is refused
//!   retryably).
//! - Custody: what `consume` accepted is held until it is decided; sampled
//!   data stays in the shard's outbox until downstream accepts it (a
//!   retryable refusal keeps it for the next tick). While the outboxes hold
//!   more than half of `max_bytes`, new data is refused retryably.

pub mod config;
mod encode;
mod ottl;
mod policy;
mod store;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
pub use config::TailSamplingConfig;
use confluo_config::{ConfigError, Node, SignalKind, SignalSet};
use confluo_pipeline::batch::Settlement;
use confluo_pipeline::telemetry::{Counter, Gauge, ProcessorMetrics};
use confluo_pipeline::{
    Acks, Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Processor,
    ProcessorFactory, Signal, Stability, Telemetry,
};
use encode::Splitter;
use policy::{Policies, TraceId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::{IngestReport, Limits, Shard, ShardMetrics};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use store::TRACE_OVERHEAD;

pub struct TailSamplingFactory;

impl ProcessorFactory for TailSamplingFactory {
    fn type_name(&self) -> &'static str {
        "tail_sampling"
    }
    fn signals(&self) -> SignalSet {
        SignalSet::only(SignalKind::Traces)
    }
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        config::check(node)
    }
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        if signal != SignalKind::Traces {
            return Err(ComponentError::Other(format!(
                "{}: tail_sampling supports traces only, not {signal}",
                ctx.id
            )));
        }
        let config: TailSamplingConfig = node.deserialize()?;
        if let Some((path, msg)) = config.problems().into_iter().next() {
            return Err(ComponentError::Other(format!("{}: {path}: {msg}", ctx.id)));
        }
        let p = TailSamplingProcessor::start(ctx, config, next).map_err(ComponentError::Other)?;
        Ok(p)
    }
}

/// Spans per downstream batch when emitting sampled traces.
const EMIT_MAX_SPANS: u64 = 8192;
/// Traces decided per lock acquisition, so ingest is not stalled by a big slot.
const DECIDE_CHUNK: usize = 1024;

struct Metrics {
    proc: ProcessorMetrics,
    shard: ShardMetrics,
    timer_latency_ms: Gauge,
    dropped_spans_rejected: Counter,
}

impl Metrics {
    fn new(t: &Telemetry, id: &str) -> Metrics {
        let l = [("processor", id)];
        let c = |name: &'static str, help: &'static str| t.counter(name, help, &l);
        let dropped = |reason: &str| {
            t.counter(
                "otelcol_processor_tail_sampling_dropped_spans",
                "Spans dropped by the processor, by reason (confluo).",
                &[("processor", id), ("reason", reason)],
            )
        };
        let early = |sampled: &str| {
            t.counter(
                "otelcol_processor_tail_sampling_early_releases_from_cache_decision",
                "Spans released at once because their trace's decision was cached.",
                &[("processor", id), ("sampled", sampled)],
            )
        };
        Metrics {
            proc: ProcessorMetrics::new(t, id, SignalKind::Traces),
            shard: ShardMetrics {
                new_trace_id_received: c(
                    "otelcol_processor_tail_sampling_new_trace_id_received",
                    "Counts the arrival of new traces.",
                ),
                dropped_too_early: c(
                    "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
                    "Count of traces that needed to be dropped before the configured wait time.",
                ),
                traces_too_large: c(
                    "otelcol_processor_tail_sampling_traces_dropped_too_large",
                    "Traces dropped for exceeding maximum_trace_size_bytes (confluo).",
                ),
                traces_on_memory: t.gauge(
                    "otelcol_processor_tail_sampling_sampling_traces_on_memory",
                    "Tracks the number of traces current on memory.",
                    &l,
                ),
                held_bytes: t.gauge(
                    "otelcol_processor_tail_sampling_held_bytes",
                    "Accounted bytes of held traces and unsent sampled data (confluo).",
                    &l,
                ),
                outbox_bytes: Gauge::default(),
                early_release_sampled: early("true"),
                early_release_not_sampled: early("false"),
                dropped_spans_not_sampled: dropped("not_sampled"),
                dropped_spans_too_early: dropped("dropped_too_early"),
                dropped_spans_too_large: dropped("too_large"),
                dropped_spans_shutdown: dropped("shutdown"),
            },
            timer_latency_ms: t.gauge(
                "otelcol_processor_tail_sampling_sampling_decision_timer_latency",
                "Latency (in milliseconds) of the last run of a sampling decision timer.",
                &l,
            ),
            dropped_spans_rejected: dropped("rejected_downstream"),
        }
    }
}

/// Logs a failure at most once per interval (once per burst).
struct BurstLog {
    last_ms: AtomicU64,
}

impl BurstLog {
    const INTERVAL_MS: u64 = 10_000;
    fn ready(&self, now_ms: u64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        (last == 0 || now_ms.saturating_sub(last) >= Self::INTERVAL_MS)
            && self
                .last_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

pub struct TailSamplingProcessor {
    id: String,
    shards: Vec<Mutex<Shard>>,
    policies: Policies,
    limits: Limits,
    next: Arc<dyn Consumer>,
    metrics: Metrics,
    base: Instant,
    tick: Duration,
    wait: Duration,
    drop_on_shutdown: bool,
    block_on_overflow: bool,
    num_traces: usize,
    max_bytes: usize,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    splitters: Mutex<Vec<Splitter>>,
    evict_log: BurstLog,
    emit_log: BurstLog,
    shut_down: AtomicBool,
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shard of a trace: a mix of the id's low half (random in W3C ids).
fn shard_of(id: &TraceId, n: usize) -> usize {
    let mut low = [0u8; 8];
    low.copy_from_slice(&id[8..]);
    let h = u64::from_le_bytes(low).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) % n as u64) as usize
}

impl TailSamplingProcessor {
    pub fn start(
        ctx: ComponentContext,
        config: TailSamplingConfig,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<TailSamplingProcessor>, String> {
        let id = ctx.id.to_string();
        let policies = Policies::build(&config, &ctx.telemetry, &id)?;
        let num_traces = usize::try_from(config.num_traces)
            .unwrap_or(usize::MAX)
            .max(1);
        let shards_n = if config.num_shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.num_shards
        }
        .clamp(1, num_traces);
        let max_bytes = match config.max_bytes.0 {
            0 => usize::MAX,
            b => usize::try_from(b).unwrap_or(usize::MAX),
        };
        let limits = Limits {
            traces: num_traces.div_ceil(shards_n),
            bytes: max_bytes / shards_n,
            max_trace_bytes: usize::try_from(config.maximum_trace_size_bytes.0)
                .unwrap_or(usize::MAX),
            sampled_cache: config.decision_cache.sampled_cache_size.div_ceil(shards_n),
            non_sampled_cache: config
                .decision_cache
                .non_sampled_cache_size
                .div_ceil(shards_n),
            first_wins: policies.conditions.first_wins(),
        };
        let wait = config.decision_wait.0;
        // The Collector ticks once a second; shorter waits get finer ticks so
        // a trace is decided at most a tenth of the wait late.
        let tick = (wait / 10).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let expected = usize::try_from(
            config
                .expected_new_traces_per_sec
                .saturating_mul(wait.as_secs().max(1)),
        )
        .unwrap_or(usize::MAX)
            / shards_n;
        let metrics = Metrics::new(&ctx.telemetry, &id);
        let shards = (0..shards_n)
            .map(|_| Mutex::new(Shard::new(&limits, expected, metrics.shard.clone())))
            .collect();
        let p = Arc::new(TailSamplingProcessor {
            id,
            shards,
            policies,
            limits,
            next,
            metrics,
            base: Instant::now(),
            tick,
            wait,
            drop_on_shutdown: config.drop_pending_traces_on_shutdown,
            block_on_overflow: config.block_on_overflow,
            num_traces,
            max_bytes,
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            splitters: Mutex::new(Vec::new()),
            evict_log: BurstLog {
                last_ms: AtomicU64::new(0),
            },
            emit_log: BurstLog {
                last_ms: AtomicU64::new(0),
            },
            shut_down: AtomicBool::new(false),
        });
        let mut tasks = Vec::new();
        for shard in 0..shards_n {
            let weak = Arc::downgrade(&p);
            let stop = p.stop.clone();
            let tick = p.tick;
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        _ = stop.cancelled() => return,
                    }
                    let Some(p) = weak.upgrade() else { return };
                    p.run_tick(shard).await;
                }
            }));
        }
        *p.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        Ok(p)
    }

    /// Accounted bytes held (traces, summaries, unsent sampled data).
    pub fn held_bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).bytes()).sum()
    }

    pub fn traces_in_memory(&self) -> usize {
        self.shards.iter().map(|s| lock(s).traces()).sum()
    }

    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.base)
    }

    fn now_tick(&self) -> u64 {
        (self.elapsed().as_nanos() / self.tick.as_nanos().max(1)) as u64
    }

    /// The first tick at or after now + decision_wait.
    fn due_tick(&self) -> u64 {
        let at = (self.elapsed() + self.wait).as_nanos();
        at.div_ceil(self.tick.as_nanos().max(1)) as u64
    }

    async fn run_tick(&self, shard: usize) {
        let started = std::time::Instant::now();
        self.decide_due(shard, Some(self.now_tick()));
        self.flush(shard).await;
        self.metrics
            .timer_latency_ms
            .set(started.elapsed().as_millis() as i64);
    }

    /// Decides the shard's due traces (all pending ones with `None`).
    fn decide_due(&self, shard: usize, now_tick: Option<u64>) {
        let slots = lock(&self.shards[shard]).take_due(now_tick);
        for (due, ids) in slots {
            for chunk in ids.chunks(DECIDE_CHUNK) {
                let now = self.elapsed();
                lock(&self.shards[shard]).decide(due, chunk, &self.policies, now);
            }
        }
    }

    /// Sends the shard's outbox downstream until it is empty or refused.
    async fn flush(&self, shard: usize) -> bool {
        loop {
            let items = lock(&self.shards[shard]).take_out(EMIT_MAX_SPANS);
            if items.is_empty() {
                return true;
            }
            // The sampled traces' fragments, concatenated, are the export
            // request of the emitted batch: decoded once for the tree and
            // attached so that an OTLP exporter sends them without encoding.
            let mut request = Vec::with_capacity(items.iter().map(|i| i.buf.len()).sum());
            let mut spans = 0;
            let mut cost = 0;
            for item in &items {
                cost += item.cost();
                spans += item.spans;
                request.extend_from_slice(&item.buf);
            }
            let data = match encode::decode(&request) {
                Ok(d) => d,
                Err(e) => {
                    // Cannot happen for bytes we encoded; never loop on it.
                    tracing::error!(event = "tail_sampling_decode_failed", processor = %self.id, spans, error = %e);
                    self.metrics.dropped_spans_rejected.add(spans);
                    lock(&self.shards[shard]).release_out(cost);
                    for item in items {
                        item.acks.settle(Settlement::Failed);
                    }
                    continue;
                }
            };
            let batch = Batch::new(Signal::Traces(data)).with_encoded(bytes::Bytes::from(request));
            match self.next.consume(batch).await {
                Ok(()) => {
                    self.metrics.proc.outgoing.add(spans);
                    lock(&self.shards[shard]).release_out(cost);
                    for item in items {
                        item.acks.settle(Settlement::Delivered);
                    }
                }
                Err(ConsumeError::Permanent { reason }) => {
                    self.metrics.dropped_spans_rejected.add(spans);
                    tracing::error!(event = "tail_sampling_emit_rejected", processor = %self.id, spans, reason = %reason, "downstream rejected sampled spans permanently; dropped");
                    lock(&self.shards[shard]).release_out(cost);
                    for item in items {
                        item.acks.settle(Settlement::Dropped);
                    }
                }
                Err(ConsumeError::Retryable { reason, .. }) => {
                    if self.emit_log.ready(self.elapsed().as_millis() as u64) {
                        tracing::warn!(event = "tail_sampling_emit_refused", processor = %self.id, spans, reason = %reason, "downstream refused; keeping sampled spans for the next tick");
                    }
                    lock(&self.shards[shard]).put_back(items);
                    return false;
                }
            }
        }
    }

    fn refuse(&self, reason: String) -> ConsumeError {
        ConsumeError::Retryable {
            reason,
            retry_after: Some(self.tick.max(Duration::from_secs(1))),
        }
    }

    fn take_splitter(&self) -> Splitter {
        self.splitters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, mut s: Splitter) {
        // Keep big arenas from pinning memory after a burst of huge batches.
        if s.arena.capacity() > 16 << 20 {
            s = Splitter::default();
        }
        s.clear();
        let mut pool = self.splitters.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 8 {
            pool.push(s);
        }
    }
}

#[async_trait]
impl Consumer for TailSamplingProcessor {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let items = batch.item_count();
        if items == 0 {
            batch.acks.take().settle(Settlement::Delivered);
            return Ok(());
        }
        let Signal::Traces(resource_spans) = batch.signal() else {
            return Err(ConsumeError::permanent(format!(
                "{}: tail_sampling accepts traces only",
                self.id
            )));
        };
        if self.shut_down.load(Ordering::Acquire) {
            return Err(self.refuse(format!("{}: shutting down", self.id)));
        }
        let m = &self.metrics.shard;
        if m.outbox_bytes.get() as u64 > (self.max_bytes / 2) as u64 {
            return Err(self.refuse(format!(
                "{}: tail_sampling holds too much sampled data that downstream has not accepted",
                self.id
            )));
        }
        if self.block_on_overflow
            && (m.traces_on_memory.get() as u64 >= self.num_traces as u64
                || m.held_bytes.get() as u64 >= self.max_bytes as u64)
        {
            return Err(self.refuse(format!(
                "{}: tail_sampling is full (num_traces / max_bytes) and block_on_overflow is set",
                self.id
            )));
        }
        self.metrics.proc.incoming.add(items as u64);
        let mut splitter = self.take_splitter();
        splitter.split(resource_spans, &self.policies.conditions);
        let n = self.shards.len();
        let mut order: Vec<(usize, usize)> = splitter
            .fragments
            .iter()
            .enumerate()
            .map(|(i, f)| (shard_of(&f.trace, n), i))
            .collect();
        order.sort_unstable();
        let acks = batch.acks.take();
        let tracked = acks.is_tracked();
        let due = self.due_tick();
        let mut report = IngestReport::default();
        let mut i = 0;
        while i < order.len() {
            let shard = order[i].0;
            let mut guard = lock(&self.shards[shard]);
            while i < order.len() && order[i].0 == shard {
                let f = &splitter.fragments[order[i].1];
                let share = if tracked { acks.share() } else { Acks::none() };
                guard.ingest(
                    f,
                    &splitter.arena[f.start..f.end],
                    share,
                    due,
                    &self.limits,
                    &mut report,
                );
                i += 1;
            }
        }
        acks.settle(Settlement::Delivered);
        self.give_back(splitter);
        if report.evicted_traces > 0 && self.evict_log.ready(self.elapsed().as_millis() as u64) {
            tracing::warn!(
                event = "tail_sampling_trace_dropped_too_early",
                processor = %self.id,
                traces = report.evicted_traces,
                total = m.dropped_too_early.get(),
                "trace table full (num_traces or max_bytes): evicted the oldest undecided traces; raise num_traces / max_bytes or lower decision_wait"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Processor for TailSamplingProcessor {
    fn mutates(&self) -> bool {
        // It encodes from the borrowed batch; the batch itself is never changed.
        false
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        if self.drop_on_shutdown {
            let (mut traces, mut spans) = (0, 0);
            for s in &self.shards {
                let (t, sp) = lock(s).drop_pending();
                traces += t;
                spans += sp;
            }
            if traces > 0 {
                tracing::info!(event = "tail_sampling_pending_dropped_on_shutdown", processor = %self.id, traces, spans);
            }
        } else {
            for shard in 0..self.shards.len() {
                self.decide_due(shard, None);
            }
        }
        // Offer sampled data a few times; exporters still run.
        for attempt in 0..5 {
            let mut all_sent = true;
            for shard in 0..self.shards.len() {
                all_sent &= self.flush(shard).await;
            }
            if all_sent {
                return Ok(());
            }
            if attempt < 4 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut lost = 0;
        for s in &self.shards {
            lost += lock(s).drop_outbox();
        }
        if lost > 0 {
            self.metrics.dropped_spans_rejected.add(lost);
            tracing::error!(event = "tail_sampling_shutdown_dropped", processor = %self.id, spans = lost, "downstream kept refusing sampled spans during shutdown");
        }
        Ok(())
    }
}

impl Drop for TailSamplingProcessor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
