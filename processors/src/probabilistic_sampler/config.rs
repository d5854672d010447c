//! Configuration of the `probabilistic_sampler` processor: the Collector's
//! option names, types and defaults (contrib `processor/probabilisticsamplerprocessor`
//! `config.go` and `factory.go`).

use super::sampling::{MIN_SAMPLING_PROBABILITY, NUM_HEX_DIGITS};
use confluo_config::{ConfigError, Node};
use serde::Deserialize;

/// `mode`. Unset means `hash_seed`, as in the Collector's code (`defaultMode =
/// HashSeed` in `sampler_mode.go`; the README's prose still says
/// "proportional", see contrib issue #36802 / PR #37536).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SamplerMode {
    HashSeed,
    Proportional,
    Equalizing,
}

/// `attribute_source` (logs only).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum AttributeSource {
    #[default]
    #[serde(rename = "traceID")]
    TraceId,
    #[serde(rename = "record")]
    Record,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticSamplerConfig {
    /// Percentage of items kept; ≥ 100 keeps everything, 0 drops everything.
    /// A 32-bit float as in the Collector, because `hash_seed` mode's bucket
    /// count is computed in 32-bit arithmetic and must round the same way.
    pub sampling_percentage: f32,
    pub hash_seed: u32,
    pub mode: Option<SamplerMode>,
    pub fail_closed: bool,
    /// Hex digits of the threshold that is written (1..=14).
    pub sampling_precision: i64,
    pub attribute_source: AttributeSource,
    pub from_attribute: String,
    pub sampling_priority: String,
}

impl Default for ProbabilisticSamplerConfig {
    fn default() -> Self {
        ProbabilisticSamplerConfig {
            sampling_percentage: 0.0,
            hash_seed: 0,
            mode: None,
            fail_closed: true,
            sampling_precision: 4,
            attribute_source: AttributeSource::TraceId,
            from_attribute: String::new(),
            sampling_priority: String::new(),
        }
    }
}

impl ProbabilisticSamplerConfig {
    pub fn mode(&self) -> SamplerMode {
        self.mode.unwrap_or(SamplerMode::HashSeed)
    }

    /// Every problem, each with the option it concerns (the Collector's
    /// `Config.Validate`).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let pct = f64::from(self.sampling_percentage);
        if !pct.is_finite() {
            out.push((
                "sampling_percentage",
                "sampling_percentage is invalid (not a finite number)".to_string(),
            ));
        } else {
            let ratio = pct / 100.0;
            if ratio < 0.0 {
                out.push((
                    "sampling_percentage",
                    "sampling_percentage is negative".to_string(),
                ));
            } else if ratio > 0.0 && ratio < MIN_SAMPLING_PROBABILITY {
                out.push((
                    "sampling_percentage",
                    "sampling_percentage is too small: the smallest non-zero value is 2^-56 × 100"
                        .to_string(),
                ));
            }
        }
        if self.sampling_precision < 1 || self.sampling_precision > NUM_HEX_DIGITS as i64 {
            out.push((
                "sampling_precision",
                format!(
                    "sampling_precision must be between 1 and {NUM_HEX_DIGITS}, got {}",
                    self.sampling_precision
                ),
            ));
        }
        if self.attribute_source == AttributeSource::Record && self.from_attribute.is_empty() {
            out.push((
                "from_attribute",
                "attribute_source is record but from_attribute is empty: every log record would lack randomness"
                    .to_string(),
            ));
        }
        out
    }

    pub fn precision(&self) -> usize {
        self.sampling_precision.clamp(1, NUM_HEX_DIGITS as i64) as usize
    }

    pub fn check(node: &Node) -> Vec<ConfigError> {
        let cfg: ProbabilisticSamplerConfig = match node.deserialize() {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        cfg.problems()
            .into_iter()
            .map(|(key, msg)| match node.get(key) {
                Some(n) => ConfigError::error(Some(n.span().clone()), n.path(), msg),
                None => ConfigError::error(Some(node.span().clone()), node.path(), msg),
            })
            .collect()
    }
}
