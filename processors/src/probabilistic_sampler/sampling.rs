//! Consistent probability sampling arithmetic: 56-bit thresholds (`th`) and
//! randomness values (`rv`) as the OpenTelemetry specification "TraceState:
//! Probability Sampling" defines them, and the Collector's legacy FNV hash.
//!
//! The arithmetic mirrors the Collector's `pkg/sampling` (`probability.go`,
//! `threshold.go`, `randomness.go`) and the processor's `fnvhasher.go` /
//! `randomnessFromBytes`, so that confluo and Go collectors make the same
//! decision for the same item.

/// 2^56: thresholds and randomness are 56-bit values.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
/// Hex digits in a full 56-bit value.
pub const NUM_HEX_DIGITS: usize = 14;
/// The smallest probability a threshold can express.
pub const MIN_SAMPLING_PROBABILITY: f64 = 1.0 / MAX_ADJUSTED_COUNT as f64;

/// `hash_seed` mode: 14-bit hash buckets.
pub const NUM_HASH_BUCKETS: u32 = 0x4000;
pub const BIT_MASK_HASH_BUCKETS: u32 = NUM_HASH_BUCKETS - 1;
const NUM_HASH_BUCKETS_LG2: u32 = 14;
/// `numHashBuckets / 100.0`, as the float32 the Collector multiplies with.
pub const PERCENTAGE_SCALE_FACTOR: f32 = 163.84;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("threshold (th) must have 1 to 14 hex digits")]
    TValueSize,
    #[error("randomness (rv) must have exactly 14 hex digits")]
    RValueSize,
    #[error("not a hexadecimal number")]
    NotHex,
    #[error("sampling probability out of the range [2^-56, 1]")]
    ProbabilityRange,
}

/// A rejection threshold: an item is kept when its randomness is ≥ the
/// threshold. 0 keeps everything; 2^56 (never written) keeps nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

impl Threshold {
    pub const ALWAYS: Threshold = Threshold(0);
    pub const NEVER: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// A threshold from its 56-bit value; `None` above 2^56.
    pub fn from_unsigned(u: u64) -> Option<Threshold> {
        (u <= MAX_ADJUSTED_COUNT).then_some(Threshold(u))
    }

    pub fn unsigned(self) -> u64 {
        self.0
    }

    /// Parses a `th` value: 1–14 hex digits with trailing zeros omitted.
    pub fn parse_tvalue(s: &str) -> Result<Threshold, ValueError> {
        if s.is_empty() || s.len() > NUM_HEX_DIGITS {
            return Err(ValueError::TValueSize);
        }
        let v = parse_hex(s)?;
        Ok(Threshold(v << (4 * (NUM_HEX_DIGITS - s.len()))))
    }

    /// The `th` encoding: "0" for always, lower-case hex without trailing
    /// zeros otherwise, "" for never (which has no encoding).
    pub fn tvalue(self) -> String {
        let mut out = String::new();
        self.write_tvalue(&mut out);
        out
    }

    pub fn write_tvalue(self, out: &mut String) {
        if self.0 == 0 {
            out.push('0');
            return;
        }
        if self.0 >= MAX_ADJUSTED_COUNT {
            return;
        }
        let mut digits = [0u8; NUM_HEX_DIGITS];
        write_hex14(self.0, &mut digits);
        let end = digits.iter().rposition(|d| *d != b'0').map_or(0, |i| i + 1);
        for d in &digits[..end] {
            out.push(*d as char);
        }
    }

    pub fn should_sample(self, r: Randomness) -> bool {
        r.0 >= self.0
    }

    /// The probability this threshold keeps an item with.
    pub fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0.min(MAX_ADJUSTED_COUNT)) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// `ProbabilityToThresholdWithPrecision` of the Collector's `pkg/sampling`,
    /// which is also the specification's algorithm: `precision` significant
    /// hex digits, raised by one for every leading `f` (probability near 0)
    /// or leading `0` (probability near 1) so that relative precision holds
    /// at the extremes; rounded half up.
    pub fn from_probability(p: f64, precision: usize) -> Result<Threshold, ValueError> {
        let precision = if precision == 0 {
            NUM_HEX_DIGITS
        } else {
            precision
        };
        if !(MIN_SAMPLING_PROBABILITY..=1.0).contains(&p) {
            return Err(ValueError::ProbabilityRange);
        }
        if p == 1.0 {
            return Ok(Threshold::ALWAYS);
        }
        // Go's `exp / -4` truncates toward zero; exp is ≤ 1 here.
        let lead_f = ((-frexp_exp(p)).max(0) / 4) as usize;
        let lead_0 = ((-frexp_exp(1.0 - p)).max(0) / 4) as usize;
        let precision = (precision + lead_f.max(lead_0)).min(NUM_HEX_DIGITS);

        let scaled = (p * MAX_ADJUSTED_COUNT as f64).round() as u64;
        let mut threshold = MAX_ADJUSTED_COUNT - scaled;
        let shift = 4 * (NUM_HEX_DIGITS - precision);
        if shift != 0 {
            threshold += 1 << (shift - 1);
            threshold >>= shift;
            threshold <<= shift;
        }
        Ok(Threshold(threshold.min(MAX_ADJUSTED_COUNT)))
    }
}

/// 56 bits of randomness: the low 7 bytes of a W3C Level 2 trace id, an
/// explicit `rv`, or the legacy hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Randomness(u64);

impl Randomness {
    /// Kept at every probability (the Collector's `AllProbabilitiesRandomness`).
    pub const ALL: Randomness = Randomness(MAX_ADJUSTED_COUNT - 1);

    pub fn from_unsigned(u: u64) -> Option<Randomness> {
        (u < MAX_ADJUSTED_COUNT).then_some(Randomness(u))
    }

    pub fn unsigned(self) -> u64 {
        self.0
    }

    /// The least-significant 56 bits of a 16-byte trace id (big-endian),
    /// per W3C Trace Context Level 2 "randomness of trace id".
    pub fn from_trace_id(id: &[u8]) -> Option<Randomness> {
        let low: [u8; 8] = id.get(8..16)?.try_into().ok()?;
        Some(Randomness(
            u64::from_be_bytes(low) & (MAX_ADJUSTED_COUNT - 1),
        ))
    }

    /// Parses an `rv` value: exactly 14 hex digits.
    pub fn parse_rvalue(s: &str) -> Result<Randomness, ValueError> {
        if s.len() != NUM_HEX_DIGITS {
            return Err(ValueError::RValueSize);
        }
        parse_hex(s).map(Randomness)
    }

    /// The `rv` encoding: 14 lower-case hex digits.
    pub fn rvalue(self) -> String {
        let mut out = String::with_capacity(NUM_HEX_DIGITS);
        self.write_rvalue(&mut out);
        out
    }

    pub fn write_rvalue(self, out: &mut String) {
        let mut digits = [0u8; NUM_HEX_DIGITS];
        write_hex14(self.0, &mut digits);
        for d in digits {
            out.push(d as char);
        }
    }

    /// The Collector's `randomnessFromBytes`: the 14-bit FNV bucket `h`
    /// placed so that the spec's test `R >= T` gives the legacy decision
    /// `h < scaledSamplingRate`: the top 14 bits are `0x3fff - h`, then 28
    /// bits mixed from the 18 unused hash bits, then `h` itself.
    pub fn from_hash(bytes: &[u8], seed: u32) -> Randomness {
        let hashed32 = hash(bytes, seed);
        let hashed = u64::from(hashed32 & BIT_MASK_HASH_BUCKETS);
        let rprime14 = u64::from(NUM_HASH_BUCKETS - 1) - hashed;
        let unused18 = u64::from(hashed32 >> (32 - NUM_HASH_BUCKETS_LG2));
        let mixed28 = unused18 ^ (unused18 << 10);
        Randomness((rprime14 << 42) | (mixed28 << 14) | hashed)
    }
}

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// FNV-1a 32 over `bytes`.
pub fn fnv1a32(mut h: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(FNV32_PRIME);
    }
    h
}

/// The Collector's `computeHash(b, seed)`: FNV-1a 32 over the seed as 4
/// LITTLE-endian bytes (`i32tob` writes `byte(val >> (8*i))` at index i),
/// then the bytes.
pub fn hash(bytes: &[u8], seed: u32) -> u32 {
    fnv1a32(fnv1a32(FNV32_OFFSET, &seed.to_le_bytes()), bytes)
}

/// The legacy decision, `hash & 0x3fff < scaled`, for tests and docs.
pub fn legacy_keep(bytes: &[u8], seed: u32, sampling_percentage: f32) -> bool {
    hash(bytes, seed) & BIT_MASK_HASH_BUCKETS < scaled_sampling_rate(sampling_percentage)
}

/// `uint32(pct * percentageScaleFactor)`, in 32-bit float arithmetic and
/// truncated, exactly as the Collector computes it.
pub fn scaled_sampling_rate(sampling_percentage: f32) -> u32 {
    (sampling_percentage.min(100.0) * PERCENTAGE_SCALE_FACTOR) as u32
}

/// The exponent `e` of `x = m × 2^e` with `m` in [0.5, 1) (Go's `math.Frexp`),
/// for finite `x > 0`.
fn frexp_exp(x: f64) -> i32 {
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    if exp_bits == 0 {
        // Subnormal: scale into the normal range first.
        return frexp_exp(x * f64::from_bits(0x4350_0000_0000_0000)) - 54; // × 2^54
    }
    exp_bits - 1022
}

fn parse_hex(s: &str) -> Result<u64, ValueError> {
    let mut v: u64 = 0;
    for c in s.bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(ValueError::NotHex),
        };
        v = (v << 4) | u64::from(d);
    }
    Ok(v)
}

fn write_hex14(v: u64, out: &mut [u8; NUM_HEX_DIGITS]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, d) in out.iter_mut().enumerate() {
        let shift = 4 * (NUM_HEX_DIGITS - 1 - i);
        *d = HEX[((v >> shift) & 0xf) as usize];
    }
}
