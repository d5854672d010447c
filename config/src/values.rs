//! Value types shared by component configs.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};

use crate::de::error_with_hint;

/// A configured secret (API key, password, token).
///
/// Debug and Display print `[REDACTED]` so that it cannot reach a log line or
/// an error message by accident; use [`Secret::expose`] where the real value
/// is needed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> de::Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (secret)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
        }
        d.deserialize_string(V)
    }
}

/// Why a duration or byte size did not parse. Messages never quote the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub message: String,
    pub hint: Option<String>,
}

impl ValueError {
    fn new(message: &str, hint: Option<&str>) -> Self {
        ValueError {
            message: message.to_string(),
            hint: hint.map(str::to_string),
        }
    }

    fn into_de<E: de::Error>(self) -> E {
        match self.hint {
            Some(h) => error_with_hint(self.message, h),
            None => E::custom(self.message),
        }
    }
}

const DURATION_UNITS_HINT: &str = "valid units are `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`";
const DURATION_NEEDS_UNIT: &str = "durations need a unit, e.g. `5s`";

/// A duration in Go's syntax (`5s`, `1m30s`, `100ms`, `1.5h`, `250µs`, `0`),
/// as the Collector's configs write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Duration {
        d.0
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> GoDuration {
        GoDuration(d)
    }
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses Go's `time.ParseDuration` syntax; negative durations are rejected
/// since every use here is a timeout, interval or age.
pub fn parse_go_duration(s: &str) -> Result<Duration, ValueError> {
    if s.starts_with('-') {
        return Err(ValueError::new("a duration cannot be negative", None));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(ValueError::new(
            "invalid duration: it is empty",
            Some(DURATION_NEEDS_UNIT),
        ));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_end);
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(ValueError::new(
                "invalid duration: expected a number followed by a unit",
                Some("e.g. `5s`, `1m30s` or `100ms`"),
            ));
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(ValueError::new(
                "invalid duration: missing unit",
                Some(DURATION_NEEDS_UNIT),
            ));
        }
        let scale = unit_nanos(unit).ok_or_else(|| {
            ValueError::new("invalid duration: unknown unit", Some(DURATION_UNITS_HINT))
        })?;
        let overflow = || ValueError::new("duration is too large", None);
        let int_val: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u128>().map_err(|_| overflow())?
        };
        let mut part = int_val.checked_mul(scale).ok_or_else(overflow)?;
        // Fraction digits beyond nanosecond precision cannot change the result.
        let mut denom: u128 = 1;
        let mut frac_val: u128 = 0;
        for c in frac.chars().take(20) {
            frac_val = frac_val * 10 + u128::from(c.to_digit(10).unwrap_or(0));
            denom *= 10;
        }
        part = part
            .checked_add(frac_val * scale / denom)
            .ok_or_else(overflow)?;
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| ValueError::new("duration is too large", None))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats like Go's `Duration.String` (`1h2m3.5s`, `100ms`, `0s`), so values round-trip.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    fn frac(value: u128, scale: u128) -> String {
        let whole = value / scale;
        let rem = value % scale;
        if rem == 0 {
            return whole.to_string();
        }
        let width = scale.ilog10() as usize;
        let digits = format!("{rem:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", frac(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", frac(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let sec_nanos = nanos % 60_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", frac(sec_nanos, 1_000_000_000)));
    out
}

impl FromStr for GoDuration {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        parse_go_duration(s).map(GoDuration)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_go_duration(v).map_err(ValueError::into_de)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        if v == 0 {
            Ok(Duration::ZERO)
        } else {
            Err(error_with_hint(
                "invalid type: expected a duration, found an integer",
                DURATION_NEEDS_UNIT,
            ))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        if v < 0 {
            Err(E::custom("a duration cannot be negative"))
        } else {
            self.visit_u64(v.unsigned_abs())
        }
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Duration, E> {
        Err(error_with_hint(
            "invalid type: expected a duration, found a float",
            DURATION_NEEDS_UNIT,
        ))
    }
}

impl<'de> de::Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor).map(GoDuration)
    }
}

impl serde::Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `#[serde(with = "confluo_config::duration_serde")]` for `std::time::Duration`
/// fields, and `duration_serde::option` for `Option<Duration>` (use it with
/// `#[serde(default)]`).
pub mod duration_serde {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    pub fn serialize<S: serde::Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&GoDuration(*v))
    }

    pub mod option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let v: Option<GoDuration> = de::Deserialize::deserialize(d)?;
            Ok(v.map(|g| g.0))
        }

        pub fn serialize<S: serde::Serializer>(
            v: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(d) => s.serialize_some(&GoDuration(*d)),
                None => s.serialize_none(),
            }
        }
    }
}

const BYTE_UNITS_HINT: &str =
    "use bytes or a unit: `B`, `KB`, `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024)";

/// A size in bytes: an integer, or a string with a unit (`64KiB`, `5MB`, `1kb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

fn byte_unit(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    })
}

impl FromStr for ByteSize {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(num_end);
        let unit = unit.trim_start();
        let scale = byte_unit(unit).ok_or_else(|| {
            ValueError::new("invalid byte size: unknown unit", Some(BYTE_UNITS_HINT))
        })?;
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() || frac.contains('.') {
            return Err(ValueError::new(
                "invalid byte size: expected a number",
                Some(BYTE_UNITS_HINT),
            ));
        }
        let too_large = || ValueError::new("byte size is too large", None);
        let int: u128 = int.parse().map_err(|_| too_large())?;
        let mut total = int.checked_mul(u128::from(scale)).ok_or_else(too_large)?;
        let mut denom: u128 = 1;
        let mut frac_val: u128 = 0;
        for c in frac.chars().take(18) {
            frac_val = frac_val * 10 + u128::from(c.to_digit(10).unwrap_or(0));
            denom *= 10;
        }
        total += frac_val * u128::from(scale) / denom;
        u64::try_from(total).map(ByteSize).map_err(|_| too_large())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> de::Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(ValueError::into_de)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Node;
    use proptest::prelude::*;
    use serde::Deserialize;

    fn d(s: &str) -> Duration {
        parse_go_duration(s).unwrap()
    }

    #[test]
    fn go_durations() {
        assert_eq!(d("5s"), Duration::from_secs(5));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("100ms"), Duration::from_millis(100));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("250us"), Duration::from_micros(250));
        assert_eq!(d("250µs"), Duration::from_micros(250));
        assert_eq!(d("250μs"), Duration::from_micros(250));
        assert_eq!(d("10ns"), Duration::from_nanos(10));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("0s"), Duration::ZERO);
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(d("1.s"), Duration::from_secs(1));
        assert_eq!(d("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(d("1.000000001s"), Duration::new(1, 1));
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "1.2.3s",
            "-5s",
            "5 s",
            ".s",
            "99999999999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_go_duration("5").unwrap_err();
        assert_eq!(e.message, "invalid duration: missing unit");
        assert_eq!(e.hint.as_deref(), Some(DURATION_NEEDS_UNIT));
        let e = parse_go_duration("5d").unwrap_err();
        assert_eq!(e.message, "invalid duration: unknown unit");
    }

    #[test]
    fn go_duration_format() {
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_go_duration(Duration::from_micros(250)), "250µs");
        assert_eq!(format_go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(format_go_duration(Duration::from_nanos(7)), "7ns");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Timeouts {
        timeout: GoDuration,
        #[serde(with = "duration_serde")]
        interval: Duration,
        #[serde(default, with = "duration_serde::option")]
        idle: Option<Duration>,
    }

    fn node(text: &str) -> Node {
        Node::from_yaml_str("d.yaml", text).unwrap()
    }

    #[test]
    fn durations_from_yaml() {
        let t: Timeouts = node("timeout: 5s\ninterval: 0\n").deserialize().unwrap();
        assert_eq!(t.timeout.0, Duration::from_secs(5));
        assert_eq!(t.interval, Duration::ZERO);
        assert_eq!(t.idle, None);
        let t: Timeouts = node("timeout: '1m'\ninterval: 1h\nidle: 100ms\n")
            .deserialize()
            .unwrap();
        assert_eq!(t.idle, Some(Duration::from_millis(100)));
        let t: Timeouts = node("timeout: 1s\ninterval: 1s\nidle:\n")
            .deserialize()
            .unwrap();
        assert_eq!(t.idle, None);
    }

    #[test]
    fn bad_duration_errors() {
        let e = node("timeout: 5\ninterval: 1s\n")
            .deserialize::<Timeouts>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.yaml:1:10: error: timeout: invalid type: expected a duration, found an integer (hint: durations need a unit, e.g. `5s`)"
        );
        let e = node("timeout: 1s\ninterval: 5 minutes\n")
            .deserialize::<Timeouts>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.yaml:2:11: error: interval: invalid duration: unknown unit (hint: valid units are `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`)"
        );
        let e = node("timeout: 1s\ninterval: [1s]\n")
            .deserialize::<Timeouts>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.yaml:2:11: error: interval: invalid type: expected a duration, found a sequence"
        );
        let e = node("timeout: 1.5\ninterval: 1s\n")
            .deserialize::<Timeouts>()
            .unwrap_err();
        assert!(e.message.contains("found a float"), "{e}");
    }

    #[test]
    fn byte_sizes() {
        let b = |s: &str| s.parse::<ByteSize>().unwrap().0;
        assert_eq!(b("512"), 512);
        assert_eq!(b("64KiB"), 64 * 1024);
        assert_eq!(b("5MiB"), 5 * 1024 * 1024);
        assert_eq!(b("1GiB"), 1 << 30);
        assert_eq!(b("5MB"), 5_000_000);
        assert_eq!(b("1kb"), 1000);
        assert_eq!(b("1.5KiB"), 1536);
        assert_eq!(b("10 MiB"), 10 << 20);
        assert_eq!(b("7B"), 7);
        for bad in ["", "MiB", "5XB", "1.2.3MB", "-5", "99999999999TiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} accepted");
        }
        #[derive(Debug, Deserialize)]
        struct S {
            a: ByteSize,
            b: ByteSize,
        }
        let s: S = node("a: 1024\nb: 5MiB\n").deserialize().unwrap();
        assert_eq!((s.a.0, s.b.0), (1024, 5 << 20));
        let e = node("a: -1\nb: 1\n").deserialize::<S>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.yaml:1:4: error: a: invalid value: expected a byte size, found an integer"
        );
        let e = node("a: 1\nb: 5 parsecs\n").deserialize::<S>().unwrap_err();
        assert_eq!(e.message, "invalid byte size: unknown unit");
        assert_eq!(ByteSize(5 << 20).to_string(), "5MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn secret_redacted() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Auth {
            api_key: Secret,
            port: u16,
        }
        let a: Auth = node("api_key: s3cr3t-token\nport: 1\n")
            .deserialize()
            .unwrap();
        assert_eq!(a.api_key.expose(), "s3cr3t-token");
        assert_eq!(a.port, 1);
        assert_eq!(format!("{a:?}"), "Auth { api_key: [REDACTED], port: 1 }");
        assert_eq!(a.api_key.to_string(), "[REDACTED]");
        let a: Auth = node("api_key: 12345\nport: 1\n").deserialize().unwrap();
        assert_eq!(a.api_key.expose(), "12345");
        // A secret pasted into the wrong field must not show up in the error.
        let e = node("api_key: x\nport: s3cr3t-token\n")
            .deserialize::<Auth>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.yaml:2:7: error: port: invalid type: expected u16, found a string"
        );
        let e = node("api_key: [s3cr3t-token]\nport: 1\n")
            .deserialize::<Auth>()
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cr3t"));
    }

    proptest! {
        #[test]
        fn go_duration_round_trips(secs in 0u64..10_000_000_000, nanos in 0u32..1_000_000_000) {
            let dur = Duration::new(secs, nanos);
            let text = format_go_duration(dur);
            prop_assert_eq!(parse_go_duration(&text).unwrap(), dur, "{}", text);
        }

        #[test]
        fn go_duration_never_panics(s in "\\PC{0,24}") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn byte_size_round_trips(n in any::<u64>()) {
            let text = ByteSize(n).to_string();
            prop_assert_eq!(text.parse::<ByteSize>().unwrap().0, n);
        }
    }
}
