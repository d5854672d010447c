//! The `probabilistic_sampler` processor: keeps a configured percentage of
//! spans and log records, deciding each item on its own from its trace id,
//! with the Collector's three modes and its exact arithmetic, so that a
//! confluo and a Go Collector with the same configuration keep the same items.
//!
//! - `hash_seed` (the default, as in the Collector's code): FNV-1a 32 over the
//!   seed (4 bytes, little-endian) then the 16 trace id bytes; the item is
//!   kept when `hash & 0x3fff < uint32(pct × 163.84)` (float32 arithmetic).
//!   The decision is expressed as a threshold and a randomness value in the
//!   spec's form (`randomnessFromBytes`), which are written to the item.
//! - `proportional` / `equalizing`: OpenTelemetry consistent probability
//!   sampling (spec "TraceState: Probability Sampling"): randomness is the
//!   `rv` sub-key of the `ot` tracestate entry or the low 56 bits of the trace
//!   id, the item is kept when `randomness ≥ threshold`, and the threshold
//!   written to `ot=th:` is the incoming one multiplied by the ratio
//!   (proportional) or the larger of the incoming and configured ones
//!   (equalizing).
//!
//! Logs carry the same information in the `sampling.threshold` and
//! `sampling.randomness` attributes. A log record with trace id X is decided
//! exactly as a span of trace X is, so a logs pipeline and a traces pipeline
//! with the same settings keep the logs of exactly the kept traces.

mod config;
pub mod sampling;
pub mod tracestate;

#[cfg(test)]
mod tests;

pub use config::{AttributeSource, ProbabilisticSamplerConfig, SamplerMode};
use sampling::{Randomness, Threshold, ValueError, MIN_SAMPLING_PROBABILITY, NUM_HASH_BUCKETS};
use tracestate::{TraceState, TraceStateError};

use async_trait::async_trait;
use confluo_config::{ConfigError, Node, SignalKind, SignalSet};
use confluo_pipeline::attrs;
use confluo_pipeline::batch::Settlement;
use confluo_pipeline::proto::common::{any_value::Value, KeyValue};
use confluo_pipeline::proto::logs::LogRecord;
use confluo_pipeline::proto::trace::Span;
use confluo_pipeline::telemetry::{Counter, ProcessorMetrics};
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Processor, ProcessorFactory,
    Signal, Stability, Telemetry,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Log record attributes the Collector writes (its `recordCarrier`).
pub const THRESHOLD_ATTRIBUTE: &str = "sampling.threshold";
pub const RANDOMNESS_ATTRIBUTE: &str = "sampling.randomness";
/// The span attribute the traces sampler honours (OpenTracing convention).
pub const SPAN_PRIORITY_ATTRIBUTE: &str = "sampling.priority";

pub struct ProbabilisticSamplerFactory;

impl ProcessorFactory for ProbabilisticSamplerFactory {
    fn type_name(&self) -> &'static str {
        "probabilistic_sampler"
    }
    fn signals(&self) -> SignalSet {
        SignalSet {
            traces: true,
            metrics: false,
            logs: true,
        }
    }
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        ProbabilisticSamplerConfig::check(node)
    }
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let config: ProbabilisticSamplerConfig = node.deserialize()?;
        Ok(Arc::new(ProbabilisticSampler::new(
            &ctx, &config, signal, next,
        )?))
    }
}

/// The sampling rule, resolved from the config once.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    /// 0%, or a `hash_seed` percentage that rounds to no bucket.
    Never,
    Hash {
        seed: u32,
        threshold: Threshold,
    },
    Equalizing {
        threshold: Threshold,
    },
    Proportional {
        ratio: f64,
        precision: usize,
    },
}

impl Mode {
    /// The Collector's `makeSampler`.
    fn build(cfg: &ProbabilisticSamplerConfig) -> Mode {
        let pct = cfg.sampling_percentage.min(100.0);
        if pct.is_nan() || pct <= 0.0 {
            return Mode::Never;
        }
        // Converted to f64 before dividing, as the Collector does.
        let ratio = (f64::from(pct) / 100.0).max(MIN_SAMPLING_PROBABILITY);
        match cfg.mode() {
            SamplerMode::Equalizing => Mode::Equalizing {
                threshold: Threshold::from_probability(ratio, cfg.precision())
                    .unwrap_or(Threshold::ALWAYS),
            },
            SamplerMode::Proportional => Mode::Proportional {
                ratio,
                precision: cfg.precision(),
            },
            SamplerMode::HashSeed => {
                let scaled = sampling::scaled_sampling_rate(pct);
                if scaled == 0 {
                    return Mode::Never;
                }
                let reject = u64::from(NUM_HASH_BUCKETS.saturating_sub(scaled));
                Mode::Hash {
                    seed: cfg.hash_seed,
                    threshold: Threshold::from_unsigned(reject << 42).unwrap_or(Threshold::ALWAYS),
                }
            }
        }
    }

    /// The threshold for an item that passed the checks, given the one it
    /// arrived with.
    fn decide(&self, incoming: Option<Threshold>) -> Threshold {
        match self {
            Mode::Never => Threshold::NEVER,
            Mode::Hash { threshold, .. } => *threshold,
            Mode::Equalizing { threshold } => match incoming {
                Some(t) if t > *threshold => t,
                _ => *threshold,
            },
            Mode::Proportional { ratio, precision } => {
                let p = incoming.map_or(1.0, Threshold::probability) * ratio;
                // Below 2^-56 the product is unsampled, not an error.
                Threshold::from_probability(p, *precision).unwrap_or(Threshold::NEVER)
            }
        }
    }
}

/// Where an item's randomness came from: the `policy` label of the
/// Collector's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    TraceIdHash,
    TraceIdW3c,
    SamplingRandomness,
    MissingRandomness,
    SamplingPriority,
    /// Hash of the `from_attribute` log attribute (label: the attribute name).
    Attribute,
}

const POLICIES: usize = 6;

impl Policy {
    fn index(self) -> usize {
        self as usize
    }
    fn label(self, attribute: &str) -> &str {
        match self {
            Policy::TraceIdHash => "trace_id_hash",
            Policy::TraceIdW3c => "trace_id_w3c",
            Policy::SamplingRandomness => "sampling_randomness",
            Policy::MissingRandomness => "missing_randomness",
            Policy::SamplingPriority => "sampling_priority",
            Policy::Attribute => attribute,
        }
    }
}

/// Why an item could not be sampled normally. With `fail_closed` it is
/// dropped, otherwise kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemError {
    TraceState(TraceStateError),
    Attribute(ValueError),
    MissingRandomness,
    /// The arriving threshold says the item should not have been kept.
    InconsistentThreshold,
    /// `hash_seed` mode on an item already carrying `rv` (use a consistent mode).
    RandomnessInUse,
    /// `hash_seed` mode on an item already carrying `th`.
    ThresholdInUse,
}

const REASONS: usize = 6;

impl ItemError {
    fn index(self) -> usize {
        match self {
            ItemError::TraceState(_) => 0,
            ItemError::Attribute(_) => 1,
            ItemError::MissingRandomness => 2,
            ItemError::InconsistentThreshold => 3,
            ItemError::RandomnessInUse => 4,
            ItemError::ThresholdInUse => 5,
        }
    }
}

const REASON_LABELS: [&str; REASONS] = [
    "invalid_tracestate",
    "invalid_sampling_attribute",
    "missing_randomness",
    "inconsistent_threshold",
    "randomness_in_use",
    "threshold_in_use",
];

/// An item's randomness and where it came from.
#[derive(Clone, Copy, Debug)]
struct Rnd {
    value: Randomness,
    policy: Policy,
    missing: bool,
}

impl Rnd {
    fn of(value: Randomness, policy: Policy) -> Rnd {
        Rnd {
            value,
            policy,
            missing: false,
        }
    }
    /// Missing randomness is kept at every threshold when failing open.
    fn missing() -> Rnd {
        Rnd {
            value: Randomness::ALL,
            policy: Policy::MissingRandomness,
            missing: true,
        }
    }
}

/// Where an item's sampling threshold is read from and written to.
trait Carrier {
    fn threshold(&self) -> Option<Threshold>;
    fn clear_threshold(&mut self);
    fn update_threshold(&mut self, t: Threshold) -> bool;
}

impl Carrier for TraceState<'_> {
    fn threshold(&self) -> Option<Threshold> {
        self.ot.threshold()
    }
    fn clear_threshold(&mut self) {
        self.ot.clear_threshold()
    }
    fn update_threshold(&mut self, t: Threshold) -> bool {
        self.ot.update_threshold(t)
    }
}

/// The `sampling.threshold` / `sampling.randomness` attributes of a log
/// record, parsed; changes are applied when the record is kept.
#[derive(Clone, Copy, Debug, Default)]
struct LogCarrier {
    th: Option<Threshold>,
    rv: Option<Randomness>,
    th_dirty: bool,
    rv_dirty: bool,
}

impl LogCarrier {
    fn parse(attributes: &[KeyValue]) -> Result<LogCarrier, ValueError> {
        let mut c = LogCarrier::default();
        // Only non-empty string values count, as in the Collector.
        if let Some(s) = attrs::get_str(attributes, THRESHOLD_ATTRIBUTE).filter(|s| !s.is_empty()) {
            c.th = Some(Threshold::parse_tvalue(s)?);
        }
        if let Some(s) = attrs::get_str(attributes, RANDOMNESS_ATTRIBUTE).filter(|s| !s.is_empty())
        {
            c.rv = Some(Randomness::parse_rvalue(s)?);
        }
        Ok(c)
    }

    fn set_randomness(&mut self, r: Randomness) {
        self.rv = Some(r);
        self.rv_dirty = true;
    }

    fn apply(&self, attributes: &mut Vec<KeyValue>) {
        if self.th_dirty {
            match self.th {
                Some(t) => attrs::set_str(attributes, THRESHOLD_ATTRIBUTE, t.tvalue()),
                None => {
                    attrs::remove(attributes, THRESHOLD_ATTRIBUTE);
                }
            }
        }
        if self.rv_dirty {
            if let Some(r) = self.rv {
                attrs::set_str(attributes, RANDOMNESS_ATTRIBUTE, r.rvalue());
            }
        }
    }
}

impl Carrier for LogCarrier {
    fn threshold(&self) -> Option<Threshold> {
        self.th
    }
    fn clear_threshold(&mut self) {
        self.th = None;
        self.th_dirty = true;
    }
    fn update_threshold(&mut self, t: Threshold) -> bool {
        if matches!(self.th, Some(existing) if t < existing) {
            return false;
        }
        self.th = (t < Threshold::NEVER).then_some(t);
        self.th_dirty = true;
        true
    }
}

/// Decisions and errors of one batch, added to the counters once.
#[derive(Default)]
struct Tally {
    decisions: [[u64; 2]; POLICIES],
    errors: [u64; REASONS],
    kept: u64,
}

impl Tally {
    fn record(&mut self, policy: Policy, sampled: bool, err: Option<ItemError>) {
        self.decisions[policy.index()][usize::from(sampled)] += 1;
        if let Some(e) = err {
            self.errors[e.index()] += 1;
        }
        self.kept += u64::from(sampled);
    }
}

/// The Collector's `count_*_sampled` counters per (policy, sampled),
/// registered on first use so that only occurring series show.
struct DecisionCounters {
    telemetry: Telemetry,
    processor: String,
    attribute: String,
    names: &'static [&'static str],
    slots: [[OnceLock<Vec<Counter>>; 2]; POLICIES],
    errors: [OnceLock<Counter>; REASONS],
}

const TRACES_METRICS: &[&str] = &[
    "otelcol_processor_probabilistic_sampler_count_traces_sampled",
    "otelcol_processor_probabilistic_sampler_count_spans_processed_total",
];
const LOGS_METRICS: &[&str] = &["otelcol_processor_probabilistic_sampler_count_logs_sampled"];
const POLICY_ORDER: [Policy; POLICIES] = [
    Policy::TraceIdHash,
    Policy::TraceIdW3c,
    Policy::SamplingRandomness,
    Policy::MissingRandomness,
    Policy::SamplingPriority,
    Policy::Attribute,
];

impl DecisionCounters {
    fn add(&self, tally: &Tally) {
        for (p, row) in tally.decisions.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                let counters = self.slots[p][s].get_or_init(|| {
                    let sampled = if s == 1 { "true" } else { "false" };
                    let policy = POLICY_ORDER[p].label(&self.attribute);
                    let labels = [
                        ("processor", self.processor.as_str()),
                        ("policy", policy),
                        ("sampled", sampled),
                    ];
                    self.names
                        .iter()
                        .map(|name| {
                            self.telemetry.counter(
                                name,
                                "Count of items that were sampled or not.",
                                &labels,
                            )
                        })
                        .collect()
                });
                for c in counters {
                    c.add(*n);
                }
            }
        }
        for (i, n) in tally.errors.iter().enumerate() {
            if *n > 0 {
                self.errors[i]
                    .get_or_init(|| {
                        self.telemetry.counter(
                            "otelcol_processor_probabilistic_sampler_item_errors",
                            "Items whose sampling information was missing, invalid or inconsistent (dropped when fail_closed).",
                            &[("processor", self.processor.as_str()), ("reason", REASON_LABELS[i])],
                        )
                    })
                    .add(*n);
            }
        }
    }
}

/// Logs item errors at most once per interval, with what was suppressed.
struct BurstLog {
    start: Instant,
    /// Milliseconds since `start` of the last line, +1 (0 = never logged).
    last: AtomicU64,
    suppressed: AtomicU64,
}

const BURST_INTERVAL_MS: u64 = 10_000;

pub struct ProbabilisticSampler {
    id: String,
    signal: SignalKind,
    next: Arc<dyn Consumer>,
    mode: Mode,
    fail_closed: bool,
    precision: usize,
    /// Logs: hash the trace id (`attribute_source: traceID`).
    logs_trace_id: bool,
    /// Logs, `hash_seed` mode: the attribute hashed when there is no trace id.
    logs_attribute: Option<String>,
    /// Logs: `sampling_priority`.
    priority_attribute: Option<String>,
    metrics: ProcessorMetrics,
    counters: DecisionCounters,
    burst: BurstLog,
}

impl ProbabilisticSampler {
    pub fn new(
        ctx: &ComponentContext,
        config: &ProbabilisticSamplerConfig,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<ProbabilisticSampler, ComponentError> {
        let problems = config.problems();
        if !problems.is_empty() {
            let msgs: Vec<String> = problems.into_iter().map(|(_, m)| m).collect();
            return Err(ComponentError::Other(msgs.join("; ")));
        }
        let names = match signal {
            SignalKind::Traces => TRACES_METRICS,
            SignalKind::Logs => LOGS_METRICS,
            SignalKind::Metrics => {
                return Err(ComponentError::Other(
                    "probabilistic_sampler supports traces and logs pipelines only".into(),
                ))
            }
        };
        let id = ctx.id.to_string();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(ProbabilisticSampler {
            metrics: ProcessorMetrics::new(&ctx.telemetry, &id, signal),
            counters: DecisionCounters {
                telemetry: ctx.telemetry.clone(),
                processor: id.clone(),
                attribute: config.from_attribute.clone(),
                names,
                slots: Default::default(),
                errors: Default::default(),
            },
            burst: BurstLog {
                start: Instant::now(),
                last: AtomicU64::new(0),
                suppressed: AtomicU64::new(0),
            },
            id,
            signal,
            next,
            mode: Mode::build(config),
            fail_closed: config.fail_closed,
            precision: config.precision(),
            logs_trace_id: config.attribute_source == AttributeSource::TraceId,
            logs_attribute: non_empty(&config.from_attribute),
            priority_attribute: non_empty(&config.sampling_priority),
        })
    }

    /// The Collector's `commonShouldSampleLogic`: consistency check, the
    /// mode's threshold (or the fail-open/closed one), the priority
    /// override, the decision, and the threshold update of kept items.
    fn decide<C: Carrier>(
        &self,
        mut rnd: Rnd,
        carrier: &mut Option<C>,
        mut err: Option<ItemError>,
        priority: Option<Threshold>,
    ) -> (bool, Policy, Option<ItemError>) {
        if err.is_none() {
            if rnd.missing {
                err = Some(ItemError::MissingRandomness);
            } else if let Some(c) = carrier.as_mut() {
                if let Some(t) = c.threshold() {
                    if !t.should_sample(rnd.value) {
                        // The spec: an inconsistent threshold is erased.
                        c.clear_threshold();
                        err = Some(ItemError::InconsistentThreshold);
                    }
                }
            }
        }
        let mut threshold = match err {
            Some(_) if self.fail_closed => Threshold::NEVER,
            Some(_) => Threshold::ALWAYS,
            None => self
                .mode
                .decide(carrier.as_ref().and_then(Carrier::threshold)),
        };
        if let Some(p) = priority {
            threshold = p;
            rnd.policy = Policy::SamplingPriority;
        }
        let sampled = threshold.should_sample(rnd.value);
        if sampled {
            if let Some(c) = carrier.as_mut() {
                // Refused when it would raise the item's probability: the
                // arriving threshold stays, as in the Collector.
                c.update_threshold(threshold);
            }
        }
        (sampled, rnd.policy, err)
    }

    fn span_randomness<'a>(
        &self,
        span: &'a Span,
    ) -> (Rnd, Option<TraceState<'a>>, Option<ItemError>) {
        let parsed = TraceState::parse(&span.trace_state).map_err(ItemError::TraceState);
        match &self.mode {
            Mode::Never => {
                let rnd = Rnd::of(Randomness::ALL, Policy::SamplingPriority);
                match parsed {
                    Ok(ts) => (rnd, Some(ts), None),
                    Err(e) => (rnd, None, Some(e)),
                }
            }
            Mode::Hash { seed, .. } => {
                let rnd = if attrs::is_valid_trace_id(&span.trace_id) {
                    Rnd::of(
                        Randomness::from_hash(&span.trace_id, *seed),
                        Policy::TraceIdHash,
                    )
                } else {
                    Rnd::missing()
                };
                match parsed {
                    Err(e) => (rnd, None, Some(e)),
                    Ok(ts) if ts.ot.rv.is_some() => (rnd, None, Some(ItemError::RandomnessInUse)),
                    Ok(ts) if ts.ot.th.is_some() => (rnd, None, Some(ItemError::ThresholdInUse)),
                    Ok(mut ts) => {
                        if !rnd.missing {
                            ts.ot.set_randomness(rnd.value);
                        }
                        (rnd, Some(ts), None)
                    }
                }
            }
            Mode::Equalizing { .. } | Mode::Proportional { .. } => match parsed {
                Err(e) => (Rnd::missing(), None, Some(e)),
                Ok(ts) => {
                    let rnd = match ts.ot.randomness() {
                        Some(r) => Rnd::of(r, Policy::SamplingRandomness),
                        None => trace_id_w3c(&span.trace_id),
                    };
                    (rnd, Some(ts), None)
                }
            },
        }
    }

    fn log_randomness(&self, rec: &LogRecord) -> (Rnd, Option<LogCarrier>, Option<ItemError>) {
        let parsed = LogCarrier::parse(&rec.attributes).map_err(ItemError::Attribute);
        match &self.mode {
            Mode::Never => {
                let rnd = Rnd::of(Randomness::ALL, Policy::SamplingPriority);
                match parsed {
                    Ok(c) => (rnd, Some(c), None),
                    Err(e) => (rnd, None, Some(e)),
                }
            }
            Mode::Hash { seed, .. } => {
                let mut rnd = Rnd::missing();
                if self.logs_trace_id && attrs::is_valid_trace_id(&rec.trace_id) {
                    rnd = Rnd::of(
                        Randomness::from_hash(&rec.trace_id, *seed),
                        Policy::TraceIdHash,
                    );
                }
                if rnd.missing {
                    if let Some(name) = &self.logs_attribute {
                        if let Some(r) = attribute_hash(&rec.attributes, name, *seed) {
                            rnd = Rnd::of(r, Policy::Attribute);
                        }
                    }
                }
                match parsed {
                    Err(e) => (rnd, None, Some(e)),
                    Ok(c) if c.rv.is_some() => (rnd, None, Some(ItemError::RandomnessInUse)),
                    Ok(c) if c.th.is_some() => (rnd, None, Some(ItemError::ThresholdInUse)),
                    Ok(mut c) => {
                        if !rnd.missing {
                            c.set_randomness(rnd.value);
                        }
                        (rnd, Some(c), None)
                    }
                }
            }
            Mode::Equalizing { .. } | Mode::Proportional { .. } => match parsed {
                Err(e) => (Rnd::missing(), None, Some(e)),
                Ok(c) => {
                    let rnd = match c.rv {
                        Some(r) => Rnd::of(r, Policy::SamplingRandomness),
                        None => trace_id_w3c(&rec.trace_id),
                    };
                    (rnd, Some(c), None)
                }
            },
        }
    }

    /// Logs' `sampling_priority`: a percentage that replaces the configured
    /// one for this record (0 = never, ≥ 100 = always, as the README says).
    fn log_priority(&self, attributes: &[KeyValue]) -> Option<Threshold> {
        let name = self.priority_attribute.as_deref()?;
        let pct = match attrs::get(attributes, name)?.value.as_ref()? {
            Value::IntValue(i) => *i as f64,
            Value::DoubleValue(d) => *d,
            _ => return None,
        };
        if pct.is_nan() || pct < 0.0 {
            None
        } else if pct == 0.0 {
            Some(Threshold::NEVER)
        } else if pct >= 100.0 {
            Some(Threshold::ALWAYS)
        } else {
            Threshold::from_probability(pct / 100.0, self.precision).ok()
        }
    }

    fn keep_span(&self, span: &mut Span, scratch: &mut String, tally: &mut Tally) -> bool {
        let priority = span_priority(&span.attributes);
        let (sampled, rewrite) = {
            let (rnd, mut carrier, err) = self.span_randomness(span);
            let (sampled, policy, err) = self.decide(rnd, &mut carrier, err, priority);
            tally.record(policy, sampled, err);
            let rewrite = match (sampled, &carrier) {
                (true, Some(ts)) => {
                    scratch.clear();
                    ts.serialize(scratch);
                    *scratch != span.trace_state
                }
                _ => false,
            };
            (sampled, rewrite)
        };
        if rewrite {
            span.trace_state.clear();
            span.trace_state.push_str(scratch);
        }
        sampled
    }

    fn keep_log(&self, rec: &mut LogRecord, tally: &mut Tally) -> bool {
        let priority = self.log_priority(&rec.attributes);
        let (rnd, mut carrier, err) = self.log_randomness(rec);
        let (sampled, policy, err) = self.decide(rnd, &mut carrier, err, priority);
        tally.record(policy, sampled, err);
        if sampled {
            if let Some(c) = carrier {
                c.apply(&mut rec.attributes);
            }
        }
        sampled
    }

    /// Samples the signal in place; returns the tally.
    fn sample(&self, signal: &mut Signal) -> Tally {
        let mut tally = Tally::default();
        match signal {
            Signal::Traces(resources) => {
                let mut scratch = String::new();
                for rs in resources.iter_mut() {
                    for ss in rs.scope_spans.iter_mut() {
                        ss.spans
                            .retain_mut(|span| self.keep_span(span, &mut scratch, &mut tally));
                    }
                    rs.scope_spans.retain(|ss| !ss.spans.is_empty());
                }
                resources.retain(|rs| !rs.scope_spans.is_empty());
            }
            Signal::Logs(resources) => {
                for rl in resources.iter_mut() {
                    for sl in rl.scope_logs.iter_mut() {
                        sl.log_records
                            .retain_mut(|rec| self.keep_log(rec, &mut tally));
                    }
                    rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
                }
                resources.retain(|rl| !rl.scope_logs.is_empty());
            }
            Signal::Metrics(_) => {}
        }
        tally
    }

    fn log_errors(&self, tally: &Tally) {
        let total: u64 = tally.errors.iter().sum();
        if total == 0 {
            return;
        }
        let now = self.burst.start.elapsed().as_millis() as u64 + 1;
        let last = self.burst.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < BURST_INTERVAL_MS
            || self
                .burst
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.burst.suppressed.fetch_add(total, Ordering::Relaxed);
            return;
        }
        let suppressed = self.burst.suppressed.swap(0, Ordering::Relaxed);
        let reasons: Vec<String> = tally
            .errors
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| format!("{}={n}", REASON_LABELS[i]))
            .collect();
        let reasons = reasons.join(",");
        if self.fail_closed {
            tracing::warn!(
                event = "probabilistic_sampler_items_dropped",
                processor = %self.id,
                signal = %self.signal,
                reasons = %reasons,
                count = total,
                suppressed_since_last = suppressed,
                "items without usable sampling randomness or threshold were dropped (fail_closed)"
            );
        } else {
            tracing::info!(
                event = "probabilistic_sampler_items_passed",
                processor = %self.id,
                signal = %self.signal,
                reasons = %reasons,
                count = total,
                suppressed_since_last = suppressed,
                "items without usable sampling randomness or threshold were kept (fail_closed: false)"
            );
        }
    }
}

/// Randomness from the low 56 bits of a valid trace id, or missing.
fn trace_id_w3c(trace_id: &[u8]) -> Rnd {
    match Randomness::from_trace_id(trace_id) {
        Some(r) if attrs::is_valid_trace_id(trace_id) => Rnd::of(r, Policy::TraceIdW3c),
        _ => Rnd::missing(),
    }
}

/// The legacy hash of a log attribute: bytes as they are, other values as
/// text; an absent or empty value has no randomness.
fn attribute_hash(attributes: &[KeyValue], name: &str, seed: u32) -> Option<Randomness> {
    let value = attrs::get(attributes, name)?;
    let r = match value.value.as_ref()? {
        Value::BytesValue(b) if !b.is_empty() => Randomness::from_hash(b, seed),
        Value::StringValue(s) if !s.is_empty() => Randomness::from_hash(s.as_bytes(), seed),
        Value::BytesValue(_) | Value::StringValue(_) => return None,
        _ => {
            let text = attrs::to_text(value);
            if text.is_empty() {
                return None;
            }
            Randomness::from_hash(text.as_bytes(), seed)
        }
    };
    Some(r)
}

/// The traces `sampling.priority` attribute: 0 drops the span, a positive
/// number keeps it (int, double, or a string holding a number).
fn span_priority(attributes: &[KeyValue]) -> Option<Threshold> {
    let v = match attrs::get(attributes, SPAN_PRIORITY_ATTRIBUTE)?
        .value
        .as_ref()?
    {
        Value::IntValue(i) => *i as f64,
        Value::DoubleValue(d) => *d,
        Value::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if v == 0.0 {
        Some(Threshold::NEVER)
    } else if v > 0.0 {
        Some(Threshold::ALWAYS)
    } else {
        None
    }
}

#[async_trait]
impl Consumer for ProbabilisticSampler {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let incoming = batch.item_count() as u64;
        self.metrics.incoming.add(incoming);
        if incoming == 0 || batch.kind() == SignalKind::Metrics {
            self.metrics.outgoing.add(incoming);
            return self.next.consume(batch).await;
        }
        let tally = self.sample(batch.signal_mut());
        self.counters.add(&tally);
        self.log_errors(&tally);
        self.metrics.outgoing.add(tally.kept);
        if tally.kept == 0 {
            // Dropped on purpose: the source's acknowledgement completes.
            batch.acks.take().settle(Settlement::Dropped);
            return Ok(());
        }
        self.next.consume(batch).await
    }
}

#[async_trait]
impl Processor for ProbabilisticSampler {
    fn mutates(&self) -> bool {
        true
    }
}
