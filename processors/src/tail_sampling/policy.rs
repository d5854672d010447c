//! Sampling policies, evaluated on a trace's summary.
//!
//! Every attribute condition the Collector evaluates by walking the trace at
//! decision time ("does any resource or span carry key K with a matching
//! value?") is existential, so it is evaluated once per span at ingest and
//! kept as one bit per held trace; fragments of a trace OR their bits. The
//! decision then needs no decoding of the held spans.

use super::config::{
    CompositeConfig, ErrorMode, PolicyConfig, PolicyType, StatusCodeName, TailSamplingConfig,
};
use super::ottl;
use confluo_pipeline::proto::common::{any_value::Value, InstrumentationScope, KeyValue};
use confluo_pipeline::proto::trace::{status::StatusCode, Span};
use confluo_pipeline::telemetry::Counter;
use confluo_pipeline::Telemetry;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub type TraceId = [u8; 16];

/// What the policies need to know about a held trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSummary {
    pub span_count: u64,
    /// Earliest span start and latest span end, Unix nanoseconds.
    pub min_start: u64,
    pub max_end: u64,
    /// Bit 0: some span UNSET, bit 1: OK, bit 2: ERROR.
    pub status: u8,
    /// Some span has the W3C sampled flag in its `flags`.
    pub sampled_flag: bool,
    /// Bit i: attribute condition i matched some resource or span.
    pub matched: u64,
}

impl TraceSummary {
    /// Adds a later part of the trace. `first_wins` marks the match bit of
    /// each `ottl_condition` (propagate) pair whose next bit is its error
    /// bit: as in the Collector, which stops at the first span that matches
    /// or fails, a pair keeps whichever of its bits was set first.
    pub fn merge(&mut self, o: &TraceSummary, first_wins: u64) {
        if o.span_count == 0 {
            return;
        }
        if self.span_count == 0 {
            *self = *o;
            return;
        }
        let settled = (self.matched & first_wins) | ((self.matched >> 1) & first_wins);
        let blocked = settled | (settled << 1);
        self.span_count += o.span_count;
        self.min_start = self.min_start.min(o.min_start);
        self.max_end = self.max_end.max(o.max_end);
        self.status |= o.status;
        self.sampled_flag |= o.sampled_flag;
        self.matched |= o.matched & !blocked;
    }

    pub fn add_span(&mut self, span: &Span, matched: u64, first_wins: u64) {
        let status = match span.status.as_ref().map(|s| s.code()) {
            Some(StatusCode::Ok) => 2,
            Some(StatusCode::Error) => 4,
            _ => 1,
        };
        let one = TraceSummary {
            span_count: 1,
            min_start: span.start_time_unix_nano,
            max_end: span.end_time_unix_nano,
            status,
            // The low byte of span flags is the W3C trace flags byte.
            sampled_flag: span.flags & 0x01 != 0,
            matched,
        };
        self.merge(&one, first_wins);
    }
}

/// The Collector's sampling decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    NotSampled,
    Sampled,
    InvertSampled,
    InvertNotSampled,
    Dropped,
    /// The evaluation failed (ottl_condition with `error_mode: propagate`):
    /// the policy takes no part in the decision, as in the Collector.
    Error,
}

impl Decision {
    fn is_sampled(self) -> bool {
        matches!(self, Decision::Sampled | Decision::InvertSampled)
    }
}

enum StrMatcher {
    Exact(HashSet<String>),
    Regex(regex_automata::meta::Regex),
}

enum Condition {
    Str {
        key: String,
        matcher: StrMatcher,
    },
    Num {
        key: String,
        min: i64,
        max: i64,
    },
    Bool {
        key: String,
        value: bool,
    },
    TraceState {
        key: String,
        values: HashSet<String>,
    },
    /// Sets its own bit on a match and, with `propagate`, the next bit
    /// (an `OttlError` slot) on an evaluation error.
    Ottl(Box<OttlPolicy>),
    OttlError,
}

/// The compiled conditions of one `ottl_condition` policy.
pub struct OttlPolicy {
    name: String,
    span: Vec<ottl::Condition>,
    spanevent: Vec<ottl::Condition>,
    mode: ErrorMode,
    errors: AtomicU64,
}

impl OttlPolicy {
    fn build(p: &PolicyConfig) -> Result<OttlPolicy, String> {
        let c = p.ottl_condition.clone().unwrap_or_default();
        let compile = |list: &[String], ctx| {
            list.iter()
                .map(|s| {
                    ottl::Condition::parse(s, ctx)
                        .map_err(|e| format!("policy `{}`: {e}: {s}", p.name))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(OttlPolicy {
            name: p.name.clone(),
            span: compile(&c.span, ottl::Context::Span)?,
            spanevent: compile(&c.spanevent, ottl::Context::SpanEvent)?,
            mode: c.error_mode,
            errors: AtomicU64::new(0),
        })
    }

    /// The Collector's order: a span's conditions, then its events'.
    fn eval(
        &self,
        resource: &[KeyValue],
        scope: Option<&InstrumentationScope>,
        span: &Span,
    ) -> Result<bool, ottl::EvalError> {
        let mut rec = ottl::Record {
            resource,
            scope,
            span,
            event: None,
        };
        for c in &self.span {
            if self.outcome(c.eval(&rec))? {
                return Ok(true);
            }
        }
        if self.spanevent.is_empty() {
            return Ok(false);
        }
        for e in &span.events {
            rec.event = Some(e);
            for c in &self.spanevent {
                if self.outcome(c.eval(&rec))? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn outcome(&self, r: Result<bool, ottl::EvalError>) -> Result<bool, ottl::EvalError> {
        match r {
            Ok(b) => Ok(b),
            Err(e) => {
                let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
                match self.mode {
                    ErrorMode::Propagate => Err(e),
                    ErrorMode::Silent => Ok(false),
                    ErrorMode::Ignore => {
                        // Per span, so back off: the 1st, 2nd, 4th, 8th… error.
                        if n.is_power_of_two() {
                            tracing::warn!(event = "tail_sampling_ottl_error", policy = %self.name, errors = n, error = %e.0, "OTTL condition failed; treated as false (error_mode: ignore)");
                        }
                        Ok(false)
                    }
                }
            }
        }
    }
}

impl Condition {
    fn key(&self) -> &str {
        match self {
            Condition::Str { key, .. }
            | Condition::Num { key, .. }
            | Condition::Bool { key, .. }
            | Condition::TraceState { key, .. } => key,
            Condition::Ottl(_) | Condition::OttlError => "",
        }
    }

    fn check_value(&self, v: &Value) -> bool {
        match (self, v) {
            (Condition::Str { matcher, .. }, Value::StringValue(s)) => match matcher {
                StrMatcher::Exact(set) => set.contains(s.as_str()),
                StrMatcher::Regex(re) => re.is_match(s.as_str()),
            },
            (Condition::Num { min, max, .. }, Value::IntValue(i)) => *min <= *i && *i <= *max,
            (Condition::Bool { value, .. }, Value::BoolValue(b)) => b == value,
            _ => false,
        }
    }

    fn matches_attrs(&self, attrs: &[KeyValue]) -> bool {
        if matches!(
            self,
            Condition::TraceState { .. } | Condition::Ottl(_) | Condition::OttlError
        ) {
            return false;
        }
        let key = self.key();
        attrs.iter().any(|kv| {
            kv.key == key
                && kv
                    .value
                    .as_ref()
                    .and_then(|v| v.value.as_ref())
                    .is_some_and(|v| self.check_value(v))
        })
    }

    fn matches_span(&self, span: &Span) -> bool {
        match self {
            Condition::TraceState { key, values } => span.trace_state.split(',').any(|member| {
                member
                    .trim()
                    .split_once('=')
                    .is_some_and(|(k, v)| k == key && values.contains(v))
            }),
            _ => self.matches_attrs(&span.attributes),
        }
    }
}

/// The leaf attribute conditions of every policy, one bit each.
#[derive(Default)]
pub struct Conditions(Vec<Condition>);

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The match bits of `ottl_condition` policies with an error bit.
    pub fn first_wins(&self) -> u64 {
        let mut mask = 0;
        for (i, c) in self.0.iter().enumerate() {
            if matches!(c, Condition::Ottl(_))
                && matches!(self.0.get(i + 1), Some(Condition::OttlError))
            {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Bits of the conditions a resource's attributes satisfy.
    pub fn resource_bits(&self, attrs: &[KeyValue]) -> u64 {
        let mut bits = 0;
        for (i, c) in self.0.iter().enumerate() {
            if c.matches_attrs(attrs) {
                bits |= 1 << i;
            }
        }
        bits
    }

    pub fn span_bits(
        &self,
        resource: &[KeyValue],
        scope: Option<&InstrumentationScope>,
        span: &Span,
    ) -> u64 {
        let mut bits = 0;
        for (i, c) in self.0.iter().enumerate() {
            match c {
                Condition::Ottl(o) => match o.eval(resource, scope, span) {
                    Ok(true) => bits |= 1 << i,
                    Ok(false) => {}
                    // Only `propagate` reports errors; its error bit follows.
                    Err(_) => bits |= 1u64.checked_shl(i as u32 + 1).unwrap_or(0),
                },
                Condition::OttlError => {}
                _ => {
                    if c.matches_span(span) {
                        bits |= 1 << i;
                    }
                }
            }
        }
        bits
    }

    fn push(&mut self, c: Condition) -> u32 {
        self.0.push(c);
        (self.0.len() - 1) as u32
    }
}

struct RateWindow {
    second: u64,
    spans: i64,
}

struct CompositeSub {
    eval: Evaluator,
    allocated: i64,
}

struct CompositeState {
    second: u64,
    spans: Vec<i64>,
}

/// golang.org/x/time/rate's token bucket, as the Collector's bytes_limiting
/// uses it: starts full, refills continuously, never goes into debt.
struct Bucket {
    tokens: f64,
    last: Option<Duration>,
}

/// What a policy sees of a trace at decision time.
pub struct TraceInfo<'a> {
    pub id: &'a TraceId,
    pub summary: &'a TraceSummary,
    /// The held protobuf bytes: the size of the trace as an export request.
    pub bytes: u64,
    /// Time since the processor started.
    pub now: Duration,
}

enum Evaluator {
    Always,
    Latency {
        lower_ms: i64,
        upper_ms: i64,
    },
    Status {
        mask: u8,
    },
    Attr {
        bit: u32,
        invert: bool,
    },
    Probabilistic {
        salt: Vec<u8>,
        threshold: u64,
    },
    RateLimiting {
        per_second: i64,
        window: Mutex<RateWindow>,
    },
    SpanCount {
        min: i64,
        max: i64,
    },
    TraceFlags,
    BytesLimiting {
        per_second: f64,
        burst: f64,
        bucket: Mutex<Bucket>,
    },
    Ottl {
        bit: u32,
        error_bit: Option<u32>,
    },
    And(Vec<Evaluator>),
    Drop(Vec<Evaluator>),
    Composite {
        max_total: i64,
        subs: Vec<CompositeSub>,
        state: Mutex<CompositeState>,
    },
}

/// FNV-1a 64 of salt then trace id: the Collector's `hashTraceID`.
pub fn fnv1a(salt: &[u8], id: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.iter().chain(id) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The Collector's default salt when `hash_salt` is empty.
const DEFAULT_HASH_SALT: &str = "default-hash-seed";

impl Evaluator {
    fn build(p: &PolicyConfig, conds: &mut Conditions) -> Result<Evaluator, String> {
        Ok(match p.kind {
            PolicyType::AlwaysSample => Evaluator::Always,
            PolicyType::Latency => {
                let l = p.latency.clone().unwrap_or_default();
                Evaluator::Latency {
                    lower_ms: l.threshold_ms,
                    upper_ms: l.upper_threshold_ms,
                }
            }
            PolicyType::StatusCode => {
                let mut mask = 0;
                for c in p.status_code.iter().flat_map(|s| &s.status_codes) {
                    mask |= match c {
                        StatusCodeName::Unset => 1,
                        StatusCodeName::Ok => 2,
                        StatusCodeName::Error => 4,
                    };
                }
                Evaluator::Status { mask }
            }
            PolicyType::StringAttribute => {
                let s = p.string_attribute.clone().unwrap_or_default();
                let matcher = if s.enabled_regex_matching {
                    StrMatcher::Regex(
                        regex_automata::meta::Regex::new_many(&s.values)
                            .map_err(|e| format!("policy `{}`: {e}", p.name))?,
                    )
                } else {
                    StrMatcher::Exact(s.values.iter().cloned().collect())
                };
                let bit = conds.push(Condition::Str {
                    key: s.key,
                    matcher,
                });
                Evaluator::Attr {
                    bit,
                    invert: s.invert_match,
                }
            }
            PolicyType::NumericAttribute => {
                let n = p.numeric_attribute.clone().unwrap_or_default();
                let bit = conds.push(Condition::Num {
                    key: n.key,
                    min: n.min_value.unwrap_or(i64::MIN),
                    max: n.max_value.unwrap_or(i64::MAX),
                });
                Evaluator::Attr {
                    bit,
                    invert: n.invert_match,
                }
            }
            PolicyType::BooleanAttribute => {
                let b = p.boolean_attribute.clone().unwrap_or_default();
                let bit = conds.push(Condition::Bool {
                    key: b.key,
                    value: b.value,
                });
                Evaluator::Attr {
                    bit,
                    invert: b.invert_match,
                }
            }
            PolicyType::TraceState => {
                let t = p.trace_state.clone().unwrap_or_default();
                let bit = conds.push(Condition::TraceState {
                    key: t.key,
                    values: t.values.into_iter().collect(),
                });
                Evaluator::Attr { bit, invert: false }
            }
            PolicyType::Probabilistic => {
                let c = p.probabilistic.clone().unwrap_or_default();
                let salt = if c.hash_salt.is_empty() {
                    DEFAULT_HASH_SALT.to_string()
                } else {
                    c.hash_salt
                };
                Evaluator::Probabilistic {
                    salt: salt.into_bytes(),
                    threshold: threshold(c.sampling_percentage / 100.0),
                }
            }
            PolicyType::RateLimiting => Evaluator::RateLimiting {
                per_second: p.rate_limiting.as_ref().map_or(0, |r| r.spans_per_second),
                window: Mutex::new(RateWindow {
                    second: u64::MAX,
                    spans: 0,
                }),
            },
            PolicyType::SpanCount => {
                let s = p.span_count.clone().unwrap_or_default();
                Evaluator::SpanCount {
                    min: s.min_spans,
                    max: s.max_spans,
                }
            }
            PolicyType::TraceFlags => Evaluator::TraceFlags,
            PolicyType::BytesLimiting => {
                let b = p.bytes_limiting.clone().unwrap_or_default();
                let burst = if b.burst_capacity > 0 {
                    b.burst_capacity
                } else {
                    b.bytes_per_second.saturating_mul(2)
                };
                Evaluator::BytesLimiting {
                    per_second: b.bytes_per_second as f64,
                    burst: burst as f64,
                    bucket: Mutex::new(Bucket {
                        tokens: burst as f64,
                        last: None,
                    }),
                }
            }
            PolicyType::OttlCondition => {
                let o = OttlPolicy::build(p)?;
                let propagate = o.mode == ErrorMode::Propagate;
                let bit = conds.push(Condition::Ottl(Box::new(o)));
                let error_bit = propagate.then(|| conds.push(Condition::OttlError));
                Evaluator::Ottl { bit, error_bit }
            }
            PolicyType::And => Evaluator::And(
                p.and
                    .iter()
                    .flat_map(|a| &a.and_sub_policy)
                    .map(|s| Evaluator::build(s, conds))
                    .collect::<Result<_, _>>()?,
            ),
            PolicyType::Drop => Evaluator::Drop(
                p.drop
                    .iter()
                    .flat_map(|a| &a.drop_sub_policy)
                    .map(|s| Evaluator::build(s, conds))
                    .collect::<Result<_, _>>()?,
            ),
            PolicyType::Composite => {
                let c = p.composite.clone().unwrap_or_default();
                build_composite(&c, conds)?
            }
        })
    }

    fn evaluate(&self, info: &TraceInfo<'_>) -> Decision {
        use Decision::*;
        let (id, t) = (info.id, info.summary);
        let now_sec = info.now.as_secs();
        let yes = |b: bool| if b { Sampled } else { NotSampled };
        match self {
            Evaluator::Always => Sampled,
            Evaluator::Latency { lower_ms, upper_ms } => {
                let ms = (t.max_end.saturating_sub(t.min_start) / 1_000_000) as i64;
                if *upper_ms == 0 {
                    yes(ms >= *lower_ms)
                } else {
                    yes(*lower_ms < ms && ms <= *upper_ms)
                }
            }
            Evaluator::Status { mask } => yes(t.status & mask != 0),
            Evaluator::Attr { bit, invert } => {
                let hit = t.matched & (1 << bit) != 0;
                match (invert, hit) {
                    (false, h) => yes(h),
                    (true, true) => InvertNotSampled,
                    (true, false) => InvertSampled,
                }
            }
            Evaluator::Probabilistic { salt, threshold } => yes(fnv1a(salt, id) <= *threshold),
            Evaluator::RateLimiting { per_second, window } => {
                let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
                if w.second != now_sec {
                    w.second = now_sec;
                    w.spans = 0;
                }
                let if_sampled = w.spans + t.span_count as i64;
                if if_sampled < *per_second {
                    w.spans = if_sampled;
                    Sampled
                } else {
                    NotSampled
                }
            }
            Evaluator::SpanCount { min, max } => {
                let n = t.span_count as i64;
                yes(n >= *min && (*max == 0 || n <= *max))
            }
            Evaluator::TraceFlags => yes(t.sampled_flag),
            Evaluator::BytesLimiting {
                per_second,
                burst,
                bucket,
            } => {
                let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(last) = b.last {
                    let elapsed = info.now.saturating_sub(last).as_secs_f64();
                    b.tokens = (b.tokens + elapsed * per_second).min(*burst);
                }
                b.last = Some(info.now.max(b.last.unwrap_or_default()));
                let need = info.bytes as f64;
                if need <= b.tokens {
                    b.tokens -= need;
                    Sampled
                } else {
                    NotSampled
                }
            }
            Evaluator::Ottl { bit, error_bit } => {
                if t.matched & (1 << bit) != 0 {
                    Sampled
                } else if error_bit.is_some_and(|e| t.matched & (1 << e) != 0) {
                    Error
                } else {
                    NotSampled
                }
            }
            Evaluator::And(subs) => {
                for s in subs {
                    match s.evaluate(info) {
                        Error => return Error,
                        NotSampled | InvertNotSampled => return NotSampled,
                        _ => {}
                    }
                }
                Sampled
            }
            Evaluator::Drop(subs) => {
                for s in subs {
                    match s.evaluate(info) {
                        Error => return Error,
                        NotSampled | InvertNotSampled => return NotSampled,
                        _ => {}
                    }
                }
                Dropped
            }
            Evaluator::Composite {
                max_total,
                subs,
                state,
            } => {
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                if st.second != now_sec {
                    st.second = now_sec;
                    st.spans.iter_mut().for_each(|s| *s = 0);
                }
                for (i, sub) in subs.iter().enumerate() {
                    let d = sub.eval.evaluate(info);
                    if d == Error {
                        return Error;
                    }
                    if d.is_sampled() {
                        let if_sampled = st.spans[i] + t.span_count as i64;
                        if if_sampled <= sub.allocated && if_sampled <= *max_total {
                            st.spans[i] = if_sampled;
                            return Sampled;
                        }
                        return NotSampled;
                    }
                }
                NotSampled
            }
        }
    }
}

/// `ratio` of the u64 range: the Collector's `calculateThreshold`.
fn threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio <= 0.0 {
        0
    } else {
        (u64::MAX as f64 * ratio) as u64
    }
}

fn build_composite(c: &CompositeConfig, conds: &mut Conditions) -> Result<Evaluator, String> {
    let max_total = c.max_total_spans_per_second;
    let default_sps = max_total as f64 / c.composite_sub_policy.len().max(1) as f64;
    let allocation = |name: &str| -> i64 {
        c.rate_allocation
            .iter()
            .find(|a| a.policy == name)
            .map_or(0.0, |a| {
                if a.percent > 0 {
                    a.percent as f64 / 100.0 * max_total as f64
                } else {
                    default_sps
                }
            }) as i64
    };
    // The Collector evaluates the sub-policies in `policy_order`; with no
    // order given, confluo uses the order they are listed in.
    let order: Vec<&str> = if c.policy_order.is_empty() {
        c.composite_sub_policy
            .iter()
            .map(|p| p.name.as_str())
            .collect()
    } else {
        c.policy_order.iter().map(String::as_str).collect()
    };
    let mut subs = Vec::new();
    for name in order {
        let Some(cfg) = c.composite_sub_policy.iter().find(|p| p.name == name) else {
            return Err(format!(
                "composite policy_order names unknown policy `{name}`"
            ));
        };
        subs.push(CompositeSub {
            eval: Evaluator::build(cfg, conds)?,
            allocated: allocation(name),
        });
    }
    let n = subs.len();
    Ok(Evaluator::Composite {
        max_total,
        subs,
        state: Mutex::new(CompositeState {
            second: u64::MAX,
            spans: vec![0; n],
        }),
    })
}

struct Policy {
    eval: Evaluator,
    sampled: Counter,
    not_sampled: Counter,
}

/// The configured policies and how their decisions combine.
pub struct Policies {
    policies: Vec<Policy>,
    pub conditions: Conditions,
    sample_on_first_match: bool,
    global_sampled: Counter,
    global_not_sampled: Counter,
    evaluation_errors: Counter,
}

/// The final decision and the policy that sampled, when one did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub sampled: bool,
    pub policy: Option<usize>,
}

impl Policies {
    pub fn build(
        cfg: &TailSamplingConfig,
        telemetry: &Telemetry,
        processor: &str,
    ) -> Result<Policies, String> {
        let mut conditions = Conditions::default();
        let mut policies = Vec::new();
        for p in &cfg.policies {
            let eval = Evaluator::build(p, &mut conditions)?;
            let counter = |sampled: &str| {
                telemetry.counter(
                    "otelcol_processor_tail_sampling_count_traces_sampled",
                    "Count of traces that were sampled or not per sampling policy.",
                    &[
                        ("processor", processor),
                        ("policy", p.name.as_str()),
                        ("sampled", sampled),
                    ],
                )
            };
            policies.push(Policy {
                eval,
                sampled: counter("true"),
                not_sampled: counter("false"),
            });
        }
        if conditions.0.len() > super::config::MAX_ATTRIBUTE_CONDITIONS {
            return Err("too many attribute conditions".into());
        }
        let global = |sampled: &str| {
            telemetry.counter(
                "otelcol_processor_tail_sampling_global_count_traces_sampled",
                "Global count of traces sampled by at least one policy.",
                &[("processor", processor), ("sampled", sampled)],
            )
        };
        Ok(Policies {
            policies,
            conditions,
            sample_on_first_match: cfg.sample_on_first_match,
            global_sampled: global("true"),
            global_not_sampled: global("false"),
            evaluation_errors: telemetry.counter(
                "otelcol_processor_tail_sampling_sampling_policy_evaluation_error",
                "Count of sampling policy evaluation errors.",
                &[("processor", processor)],
            ),
        })
    }

    /// The Collector's `makeDecision`: evaluate in order (stopping at a
    /// `Dropped`, or at the first `Sampled` with `sample_on_first_match`),
    /// then Dropped > InvertNotSampled > Sampled > InvertSampled > NotSampled.
    pub fn decide(&self, info: &TraceInfo<'_>) -> Outcome {
        let mut first: [Option<usize>; 5] = [None; 5];
        let slot = |d: Decision| match d {
            Decision::NotSampled => 0,
            Decision::Sampled => 1,
            Decision::InvertSampled => 2,
            Decision::InvertNotSampled => 3,
            Decision::Dropped | Decision::Error => 4,
        };
        for (i, p) in self.policies.iter().enumerate() {
            let d = p.eval.evaluate(info);
            if d == Decision::Error {
                self.evaluation_errors.add(1);
                continue;
            }
            if d.is_sampled() {
                p.sampled.add(1);
            } else {
                p.not_sampled.add(1);
            }
            first[slot(d)].get_or_insert(i);
            if d == Decision::Dropped {
                break;
            }
            if self.sample_on_first_match && d == Decision::Sampled {
                break;
            }
        }
        let outcome = if first[4].is_some() || first[3].is_some() {
            Outcome {
                sampled: false,
                policy: None,
            }
        } else if let Some(i) = first[1].or(first[2]) {
            Outcome {
                sampled: true,
                policy: Some(i),
            }
        } else {
            Outcome {
                sampled: false,
                policy: None,
            }
        };
        if outcome.sampled {
            self.global_sampled.add(1);
        } else {
            self.global_not_sampled.add(1);
        }
        outcome
    }
}
