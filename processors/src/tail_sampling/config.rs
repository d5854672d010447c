//! The `tail_sampling` configuration, in the Collector's shape.

use confluo_config::{ByteSize, ConfigError, GoDuration, Node};
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TailSamplingConfig {
    /// Wait after the first span of a trace before deciding.
    pub decision_wait: GoDuration,
    /// Traces held in memory (over all shards).
    pub num_traces: u64,
    /// Sizes the trace tables up front.
    pub expected_new_traces_per_sec: u64,
    pub decision_cache: DecisionCacheConfig,
    pub sample_on_first_match: bool,
    pub drop_pending_traces_on_shutdown: bool,
    /// When full, refuse new traces retryably instead of evicting the oldest.
    pub block_on_overflow: bool,
    /// A trace whose held spans exceed this is dropped at once (0 = no bound).
    pub maximum_trace_size_bytes: ByteSize,
    /// confluo: bound on all held data (encoded spans, summaries, outbox).
    pub max_bytes: ByteSize,
    /// Independent trace tables, by trace id; 0 = available parallelism.
    pub num_shards: usize,
    pub policies: Vec<PolicyConfig>,
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        TailSamplingConfig {
            decision_wait: GoDuration(Duration::from_secs(30)),
            num_traces: 50_000,
            expected_new_traces_per_sec: 0,
            decision_cache: DecisionCacheConfig::default(),
            sample_on_first_match: false,
            drop_pending_traces_on_shutdown: false,
            block_on_overflow: false,
            maximum_trace_size_bytes: ByteSize(0),
            max_bytes: ByteSize(1 << 30),
            num_shards: 0,
            policies: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionCacheConfig {
    pub sampled_cache_size: usize,
    pub non_sampled_cache_size: usize,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    AlwaysSample,
    Latency,
    StatusCode,
    StringAttribute,
    NumericAttribute,
    BooleanAttribute,
    Probabilistic,
    RateLimiting,
    SpanCount,
    TraceState,
    TraceFlags,
    BytesLimiting,
    OttlCondition,
    And,
    Drop,
    Composite,
}

/// One policy. The same shape serves top-level policies and the sub-policies
/// of `and`, `drop` and `composite`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PolicyType,
    #[serde(default)]
    pub latency: Option<LatencyConfig>,
    #[serde(default)]
    pub status_code: Option<StatusCodeConfig>,
    #[serde(default)]
    pub string_attribute: Option<StringAttributeConfig>,
    #[serde(default)]
    pub numeric_attribute: Option<NumericAttributeConfig>,
    #[serde(default)]
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    #[serde(default)]
    pub probabilistic: Option<ProbabilisticConfig>,
    #[serde(default)]
    pub rate_limiting: Option<RateLimitingConfig>,
    #[serde(default)]
    pub span_count: Option<SpanCountConfig>,
    #[serde(default)]
    pub trace_state: Option<TraceStateConfig>,
    #[serde(default)]
    pub bytes_limiting: Option<BytesLimitingConfig>,
    #[serde(default)]
    pub ottl_condition: Option<OttlConditionConfig>,
    #[serde(default)]
    pub and: Option<AndConfig>,
    #[serde(default)]
    pub drop: Option<DropConfig>,
    #[serde(default)]
    pub composite: Option<CompositeConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    pub threshold_ms: i64,
    pub upper_threshold_ms: i64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum StatusCodeName {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "UNSET")]
    Unset,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCodeConfig {
    pub status_codes: Vec<StatusCodeName>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StringAttributeConfig {
    pub key: String,
    pub values: Vec<String>,
    pub enabled_regex_matching: bool,
    /// Accepted for compatibility; confluo matches at ingest and keeps no cache.
    pub cache_max_size: usize,
    pub invert_match: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NumericAttributeConfig {
    pub key: String,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
    pub invert_match: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanAttributeConfig {
    pub key: String,
    pub value: bool,
    pub invert_match: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticConfig {
    pub hash_salt: String,
    pub sampling_percentage: f64,
}

impl Default for ProbabilisticConfig {
    fn default() -> Self {
        ProbabilisticConfig {
            hash_salt: String::new(),
            sampling_percentage: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    pub spans_per_second: i64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BytesLimitingConfig {
    /// Sustained rate: tokens (bytes) added to the bucket per second.
    pub bytes_per_second: i64,
    /// Bucket size; 0 = twice `bytes_per_second`, as in the Collector.
    pub burst_capacity: i64,
}

/// What an OTTL evaluation error does to the policy's decision.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// The condition counts as false (logged) and evaluation goes on.
    Ignore,
    /// The policy's evaluation fails: it takes no part in the decision.
    #[default]
    Propagate,
    /// As `ignore`, without logging.
    Silent,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OttlConditionConfig {
    pub error_mode: ErrorMode,
    /// Conditions on spans, ORed.
    pub span: Vec<String>,
    /// Conditions on span events, ORed.
    pub spanevent: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanCountConfig {
    pub min_spans: i64,
    pub max_spans: i64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TraceStateConfig {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AndConfig {
    pub and_sub_policy: Vec<PolicyConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    pub drop_sub_policy: Vec<PolicyConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompositeConfig {
    pub max_total_spans_per_second: i64,
    pub policy_order: Vec<String>,
    pub composite_sub_policy: Vec<PolicyConfig>,
    pub rate_allocation: Vec<RateAllocationConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateAllocationConfig {
    pub policy: String,
    pub percent: i64,
}

/// The most leaf attribute conditions (string, numeric, boolean attribute,
/// trace_state policies and ottl_condition bits, at any depth) one processor evaluates: their results
/// are kept as one bit each per held trace.
pub const MAX_ATTRIBUTE_CONDITIONS: usize = 64;

impl TailSamplingConfig {
    /// Every problem, as `(path below the processor, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.num_traces == 0 {
            out.push(("num_traces".into(), "must be greater than 0".into()));
        }
        if self.policies.is_empty() {
            out.push((
                "policies".into(),
                "at least one policy is required (the Collector fails to start without one)".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, p) in self.policies.iter().enumerate() {
            let path = format!("policies[{i}]");
            if !names.insert(p.name.as_str()) {
                out.push((
                    format!("{path}.name"),
                    format!("duplicate policy name `{}`", p.name),
                ));
            }
            p.problems(&path, 0, &mut out);
        }
        let mut conditions = 0;
        for p in &self.policies {
            conditions += p.attribute_conditions();
        }
        if conditions > MAX_ATTRIBUTE_CONDITIONS {
            out.push((
                "policies".into(),
                format!(
                    "{conditions} attribute/trace_state conditions configured; at most {MAX_ATTRIBUTE_CONDITIONS} are supported"
                ),
            ));
        }
        out
    }
}

impl PolicyConfig {
    fn attribute_conditions(&self) -> usize {
        match self.kind {
            PolicyType::StringAttribute
            | PolicyType::NumericAttribute
            | PolicyType::BooleanAttribute
            | PolicyType::TraceState => 1,
            // One bit for a match and, with `propagate`, one for an error.
            PolicyType::OttlCondition => {
                let propagate = self
                    .ottl_condition
                    .as_ref()
                    .is_none_or(|o| o.error_mode == ErrorMode::Propagate);
                1 + usize::from(propagate)
            }
            PolicyType::And => self
                .and
                .iter()
                .flat_map(|a| &a.and_sub_policy)
                .map(PolicyConfig::attribute_conditions)
                .sum(),
            PolicyType::Drop => self
                .drop
                .iter()
                .flat_map(|a| &a.drop_sub_policy)
                .map(PolicyConfig::attribute_conditions)
                .sum(),
            PolicyType::Composite => self
                .composite
                .iter()
                .flat_map(|a| &a.composite_sub_policy)
                .map(PolicyConfig::attribute_conditions)
                .sum(),
            _ => 0,
        }
    }

    fn problems(&self, path: &str, depth: usize, out: &mut Vec<(String, String)>) {
        let mut err = |field: &str, msg: String| {
            out.push((format!("{path}.{field}"), msg));
        };
        if self.name.is_empty() {
            err("name", "policy name must not be empty".into());
        }
        match self.kind {
            PolicyType::AlwaysSample => {}
            PolicyType::Latency => {
                let l = self.latency.clone().unwrap_or_default();
                if l.threshold_ms < 0 || l.upper_threshold_ms < 0 {
                    err("latency", "thresholds must not be negative".into());
                }
                if l.upper_threshold_ms != 0 && l.upper_threshold_ms < l.threshold_ms {
                    err(
                        "latency.upper_threshold_ms",
                        "must be greater than or equal to threshold_ms".into(),
                    );
                }
            }
            PolicyType::StatusCode => {
                if self
                    .status_code
                    .as_ref()
                    .is_none_or(|s| s.status_codes.is_empty())
                {
                    err(
                        "status_code.status_codes",
                        "at least one of OK, ERROR, UNSET is required".into(),
                    );
                }
            }
            PolicyType::StringAttribute => match &self.string_attribute {
                None => err(
                    "string_attribute",
                    "the `string_attribute` block is required".into(),
                ),
                Some(s) => {
                    if s.key.is_empty() {
                        err("string_attribute.key", "must not be empty".into());
                    }
                    if s.enabled_regex_matching {
                        for (i, v) in s.values.iter().enumerate() {
                            if let Err(e) = regex_automata::meta::Regex::new(v) {
                                err(
                                    &format!("string_attribute.values[{i}]"),
                                    format!("invalid regular expression: {e}"),
                                );
                            }
                        }
                    }
                }
            },
            PolicyType::NumericAttribute => match &self.numeric_attribute {
                None => err(
                    "numeric_attribute",
                    "the `numeric_attribute` block is required".into(),
                ),
                Some(n) => {
                    if n.key.is_empty() {
                        err("numeric_attribute.key", "must not be empty".into());
                    }
                    if n.min_value.is_none() && n.max_value.is_none() {
                        err(
                            "numeric_attribute",
                            "at least one of min_value and max_value is required".into(),
                        );
                    }
                    if let (Some(a), Some(b)) = (n.min_value, n.max_value) {
                        if b < a {
                            err(
                                "numeric_attribute.max_value",
                                "must be greater than or equal to min_value".into(),
                            );
                        }
                    }
                }
            },
            PolicyType::BooleanAttribute => match &self.boolean_attribute {
                None => err(
                    "boolean_attribute",
                    "the `boolean_attribute` block is required".into(),
                ),
                Some(b) if b.key.is_empty() => {
                    err("boolean_attribute.key", "must not be empty".into())
                }
                Some(_) => {}
            },
            PolicyType::Probabilistic => {
                let p = self.probabilistic.clone().unwrap_or_default();
                if !(0.0..=100.0).contains(&p.sampling_percentage) {
                    err(
                        "probabilistic.sampling_percentage",
                        "must be between 0 and 100".into(),
                    );
                }
            }
            PolicyType::RateLimiting => {
                if self
                    .rate_limiting
                    .as_ref()
                    .is_none_or(|r| r.spans_per_second <= 0)
                {
                    err(
                        "rate_limiting.spans_per_second",
                        "must be greater than 0".into(),
                    );
                }
            }
            PolicyType::SpanCount => {
                let s = self.span_count.clone().unwrap_or_default();
                if s.min_spans < 0 || s.max_spans < 0 {
                    err(
                        "span_count",
                        "min_spans and max_spans must not be negative".into(),
                    );
                }
                if s.max_spans != 0 && s.max_spans < s.min_spans {
                    err(
                        "span_count.max_spans",
                        "must be 0 (no bound) or greater than or equal to min_spans".into(),
                    );
                }
            }
            PolicyType::TraceState => match &self.trace_state {
                None => err("trace_state", "the `trace_state` block is required".into()),
                Some(t) => {
                    if t.key.is_empty() || t.key.len() > 256 {
                        err("trace_state.key", "must be 1 to 256 characters".into());
                    }
                    if t.values.iter().any(|v| v.len() > 256) {
                        err(
                            "trace_state.values",
                            "values must be at most 256 characters".into(),
                        );
                    }
                }
            },
            PolicyType::TraceFlags => {}
            PolicyType::BytesLimiting => match &self.bytes_limiting {
                Some(b) if b.bytes_per_second > 0 => {
                    if b.burst_capacity < 0 {
                        err(
                            "bytes_limiting.burst_capacity",
                            "must not be negative (0 = twice bytes_per_second)".into(),
                        );
                    }
                }
                _ => err(
                    "bytes_limiting.bytes_per_second",
                    "must be greater than 0".into(),
                ),
            },
            PolicyType::OttlCondition => match &self.ottl_condition {
                None => err(
                    "ottl_condition",
                    "the `ottl_condition` block is required".into(),
                ),
                Some(o) => {
                    if o.span.is_empty() && o.spanevent.is_empty() {
                        err(
                            "ottl_condition",
                            "expected at least one OTTL condition in `span` or `spanevent`".into(),
                        );
                    }
                    for (field, list, ctx) in [
                        ("span", &o.span, super::ottl::Context::Span),
                        ("spanevent", &o.spanevent, super::ottl::Context::SpanEvent),
                    ] {
                        for (i, c) in list.iter().enumerate() {
                            if let Err(e) = super::ottl::Condition::parse(c, ctx) {
                                err(&format!("ottl_condition.{field}[{i}]"), format!("{e}: {c}"));
                            }
                        }
                    }
                }
            },
            PolicyType::And | PolicyType::Drop | PolicyType::Composite if depth > 0 => {
                // The Collector allows `and` inside `composite` only; confluo
                // allows one level of nesting of any combining policy.
                if depth > 1 {
                    err("type", "combining policies nest at most two levels".into());
                    return;
                }
                self.combining_problems(path, depth, out);
            }
            PolicyType::And | PolicyType::Drop | PolicyType::Composite => {
                self.combining_problems(path, depth, out)
            }
        }
    }

    fn combining_problems(&self, path: &str, depth: usize, out: &mut Vec<(String, String)>) {
        let (field, subs): (&str, &[PolicyConfig]) = match self.kind {
            PolicyType::And => (
                "and.and_sub_policy",
                self.and.as_ref().map_or(&[][..], |a| &a.and_sub_policy),
            ),
            PolicyType::Drop => (
                "drop.drop_sub_policy",
                self.drop.as_ref().map_or(&[][..], |a| &a.drop_sub_policy),
            ),
            _ => (
                "composite.composite_sub_policy",
                self.composite
                    .as_ref()
                    .map_or(&[][..], |a| &a.composite_sub_policy),
            ),
        };
        if subs.is_empty() {
            out.push((
                format!("{path}.{field}"),
                "at least one sub-policy is required".into(),
            ));
        }
        for (i, sub) in subs.iter().enumerate() {
            sub.problems(&format!("{path}.{field}[{i}]"), depth + 1, out);
        }
        if let (PolicyType::Composite, Some(c)) = (self.kind, &self.composite) {
            if c.max_total_spans_per_second <= 0 {
                out.push((
                    format!("{path}.composite.max_total_spans_per_second"),
                    "must be greater than 0".into(),
                ));
            }
            let names: HashSet<&str> = subs.iter().map(|s| s.name.as_str()).collect();
            for (i, n) in c.policy_order.iter().enumerate() {
                if !names.contains(n.as_str()) {
                    out.push((
                        format!("{path}.composite.policy_order[{i}]"),
                        format!("`{n}` is not a composite_sub_policy name"),
                    ));
                }
            }
            let mut total = 0;
            for (i, a) in c.rate_allocation.iter().enumerate() {
                if !names.contains(a.policy.as_str()) {
                    out.push((
                        format!("{path}.composite.rate_allocation[{i}].policy"),
                        format!("`{}` is not a composite_sub_policy name", a.policy),
                    ));
                }
                if !(0..=100).contains(&a.percent) {
                    out.push((
                        format!("{path}.composite.rate_allocation[{i}].percent"),
                        "must be between 0 and 100".into(),
                    ));
                }
                total += a.percent;
            }
            if total > 100 {
                out.push((
                    format!("{path}.composite.rate_allocation"),
                    "percentages add up to more than 100".into(),
                ));
            }
        }
    }
}

/// The config problems as `ConfigError`s located at the processor's node.
pub fn check(node: &Node) -> Vec<ConfigError> {
    let cfg: TailSamplingConfig = match node.deserialize() {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    cfg.problems()
        .into_iter()
        .map(|(path, msg)| {
            let span = locate(node, &path).unwrap_or(node).span().clone();
            ConfigError::error(Some(span), format!("{}.{path}", node.path()), msg)
        })
        .collect()
}

/// The node at a `a.b[2].c` path, as far as it exists.
fn locate<'a>(node: &'a Node, path: &str) -> Option<&'a Node> {
    let mut cur = node;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(next) = cur.get(key) else {
            return Some(cur);
        };
        cur = next;
        if let Some(i) = index {
            match cur.as_seq().and_then(|s| s.get(i)) {
                Some(n) => cur = n,
                None => return Some(cur),
            }
        }
    }
    Some(cur)
}
