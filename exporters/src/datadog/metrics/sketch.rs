//! Datadog's distribution sketches: the Agent's DDSketch key mapping
//! (relative accuracy 1/128, smallest value 1e-9, at most 4096 bins) and the
//! `SketchPayload` protobuf of `DataDog/agent-payload`
//! `proto/metrics/agent_payload.proto`, written from its field numbers.
//!
//! Keys: `key(v) = round_half_even(ln v / ln γ) + bias` with
//! `γ = 1 + 2/128` and `bias = 1 - floor(ln 1e-9 / ln γ)`, mirrored for
//! negative values, 0 below key 1's value (≈ 1e-9). A bin's value is `γ^(key - bias)`.

use prost::Message;

const EPS: f64 = 1.0 / 128.0;
const MIN_VALUE: f64 = 1e-9;
/// Keys are int16 in the Agent; larger values land in the top key.
const MAX_KEY: i32 = i16::MAX as i32;
/// Bins a sketch holds; past it, the lowest bins are merged (as the Agent does).
const BIN_LIMIT: usize = 4096;

fn gamma() -> f64 {
    1.0 + 2.0 * EPS
}

fn gamma_ln() -> f64 {
    (2.0 * EPS).ln_1p()
}

fn bias() -> i32 {
    -((MIN_VALUE.ln() / gamma_ln()).floor() as i32) + 1
}

/// The Agent's sketch key of `v`.
pub fn key(v: f64) -> i32 {
    if v < 0.0 {
        return -key(-v);
    }
    // The smallest representable value is key 1's bin (just under 1e-9).
    if v.is_nan() || v < bin_low(1) {
        return 0;
    }
    let i = (v.ln() / gamma_ln()).round_ties_even() as i64 + bias() as i64;
    i.clamp(1, MAX_KEY as i64) as i32
}

/// The lower bound of a key's bin.
pub fn bin_low(k: i32) -> f64 {
    match k {
        0 => 0.0,
        k if k < 0 => -bin_low(-k),
        k => gamma().powf((k - bias()) as f64),
    }
}

/// A sketch being filled from histogram buckets.
#[derive(Debug, Default)]
pub struct SketchBuilder {
    /// key → count, kept sorted at `finish`.
    bins: Vec<(i32, u64)>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl SketchBuilder {
    pub fn new() -> SketchBuilder {
        SketchBuilder {
            bins: Vec::new(),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn insert_n(&mut self, k: i32, n: u64) {
        if n == 0 {
            return;
        }
        let v = bin_low(k);
        self.bins.push((k, n));
        self.count += n;
        self.sum += v * n as f64;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Spreads `count` values linearly over `[lower, upper]` across the keys
    /// between them, as the Agent does for explicit-bucket histograms.
    /// Infinite bounds collapse onto the finite one.
    pub fn insert_interpolate(&mut self, mut lower: f64, mut upper: f64, count: u64) {
        if count == 0 {
            return;
        }
        if upper.is_infinite() && lower.is_infinite() {
            lower = 0.0;
            upper = 0.0;
        } else if upper == f64::INFINITY {
            upper = lower;
        } else if lower == f64::NEG_INFINITY {
            lower = upper;
        }
        let (lo_key, hi_key) = (key(lower), key(upper));
        if hi_key <= lo_key {
            self.insert_n(lo_key, count);
            return;
        }
        let distance = upper - lower;
        let mut left = count;
        let mut start = lo_key;
        let mut lower_b = bin_low(start);
        let mut remainder = 0.0f64;
        let mut end = lo_key + 1;
        while end <= hi_key && left > 0 {
            let upper_b = bin_low(end);
            let fkn = (upper_b - lower_b) / distance * count as f64;
            if fkn > 1.0 {
                remainder += fkn.fract();
            }
            let mut kn = fkn as u64;
            if remainder > 1.0 {
                kn += 1;
                remainder -= 1.0;
            }
            if kn > 0 {
                let kn = kn.min(left);
                self.insert_n(start, kn);
                left -= kn;
                start = end;
                lower_b = upper_b;
            }
            end += 1;
        }
        self.insert_n(start, left);
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sorted, merged keys and counts; counts above `u16::MAX` are split
    /// over several bins of the same key (the Agent's bins hold a uint16),
    /// and past [`BIN_LIMIT`] the lowest bins are folded into one.
    pub fn bins(&self) -> (Vec<i32>, Vec<u32>) {
        let mut sorted = self.bins.clone();
        sorted.sort_unstable_by_key(|(k, _)| *k);
        let mut merged: Vec<(i32, u64)> = Vec::with_capacity(sorted.len());
        for (k, n) in sorted {
            match merged.last_mut() {
                Some((lk, ln)) if *lk == k => *ln += n,
                _ => merged.push((k, n)),
            }
        }
        if merged.len() > BIN_LIMIT {
            let fold = merged.len() - BIN_LIMIT + 1;
            let folded: u64 = merged[..fold].iter().map(|(_, n)| n).sum();
            let k = merged[fold - 1].0;
            merged.drain(..fold);
            merged.insert(0, (k, folded));
        }
        let mut keys = Vec::with_capacity(merged.len());
        let mut counts = Vec::with_capacity(merged.len());
        for (k, mut n) in merged {
            while n > 0 {
                let take = n.min(u16::MAX as u64);
                keys.push(k);
                counts.push(take as u32);
                n -= take;
            }
        }
        (keys, counts)
    }
}

/// `SketchPayload` (only `sketches = 1` is sent; `metadata = 2` stays empty).
#[derive(Clone, PartialEq, Message)]
pub struct SketchPayload {
    #[prost(message, repeated, tag = "1")]
    pub sketches: Vec<Sketch>,
}

/// `SketchPayload.Sketch`.
#[derive(Clone, PartialEq, Message)]
pub struct Sketch {
    #[prost(string, tag = "1")]
    pub metric: String,
    #[prost(string, tag = "2")]
    pub host: String,
    #[prost(string, repeated, tag = "4")]
    pub tags: Vec<String>,
    #[prost(message, repeated, tag = "7")]
    pub dogsketches: Vec<Dogsketch>,
}

/// `SketchPayload.Sketch.Dogsketch`.
#[derive(Clone, PartialEq, Message)]
pub struct Dogsketch {
    /// Seconds.
    #[prost(int64, tag = "1")]
    pub ts: i64,
    #[prost(int64, tag = "2")]
    pub cnt: i64,
    #[prost(double, tag = "3")]
    pub min: f64,
    #[prost(double, tag = "4")]
    pub max: f64,
    #[prost(double, tag = "5")]
    pub avg: f64,
    #[prost(double, tag = "6")]
    pub sum: f64,
    #[prost(sint32, repeated, tag = "7")]
    pub k: Vec<i32>,
    #[prost(uint32, repeated, tag = "8")]
    pub n: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_agent_mapping() {
        // ln(1e-9)/ln(1.015625) = -1336.6…, so bias = 1338 and key(1) = 1338.
        assert_eq!(bias(), 1338);
        assert_eq!(key(1.0), 1338);
        assert_eq!(key(-1.0), -1338);
        assert_eq!(key(0.0), 0);
        assert_eq!(key(1e-12), 0);
        assert_eq!(key(f64::MAX), MAX_KEY);
        for k in [1, 100, 1338, 2000, 5000] {
            assert_eq!(key(bin_low(k)), k, "key(bin_low({k}))");
        }
        // Relative accuracy 1/128 around a bin's value.
        let v = 123.456;
        assert!((bin_low(key(v)) - v).abs() / v <= 1.0 / 64.0);
    }

    #[test]
    fn interpolation_keeps_the_count_and_stays_in_bounds() {
        let mut s = SketchBuilder::new();
        s.insert_interpolate(0.0, 10.0, 100);
        s.insert_interpolate(10.0, f64::INFINITY, 5);
        s.insert_interpolate(f64::NEG_INFINITY, 0.0, 3);
        assert_eq!(s.count, 108);
        let (k, n) = s.bins();
        assert_eq!(n.iter().map(|&n| n as u64).sum::<u64>(), 108);
        assert!(k.windows(2).all(|w| w[0] < w[1]));
        assert!(s.min >= 0.0 && s.max <= 10.0 * (1.0 + 1.0 / 64.0));
        // Overflowing a uint16 bin splits it.
        let mut big = SketchBuilder::new();
        big.insert_interpolate(5.0, 5.0, 70_000);
        let (k, n) = big.bins();
        assert_eq!(k, vec![key(5.0), key(5.0)]);
        assert_eq!(n, vec![65_535, 4_465]);
    }

    #[test]
    fn protobuf_uses_the_agent_payload_field_numbers() {
        let p = SketchPayload {
            sketches: vec![Sketch {
                metric: "m".into(),
                host: "h".into(),
                tags: vec!["a:b".into()],
                dogsketches: vec![Dogsketch {
                    ts: 1,
                    cnt: 2,
                    k: vec![-1, 1],
                    n: vec![1, 1],
                    ..Default::default()
                }],
            }],
        };
        let b = p.encode_to_vec();
        // field 1, wire type 2 (the sketch), then metric = 1 / host = 2 / tags = 4 / dogsketches = 7.
        assert_eq!(b[0], 0x0a);
        let inner = &b[2..];
        assert_eq!(&inner[..3], &[0x0a, 1, b'm']);
        assert_eq!(&inner[3..6], &[0x12, 1, b'h']);
        assert_eq!(&inner[6..11], &[0x22, 3, b'a', b':', b'b']);
        assert_eq!(inner[11], 0x3a);
        // Inside the Dogsketch: k packed zigzag (-1 → 1, 1 → 2) under field 7.
        let ds = &inner[13..];
        assert!(ds.windows(4).any(|w| w == [0x3a, 2, 1, 2]));
    }
}
