//! Finding trace, span and correlation ids in attributes and structured
//! bodies, and validating them.

use confluo_pipeline::attrs;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, KeyValue};
use confluo_pipeline::proto::logs::LogRecord;

/// Longest correlation id remembered; longer values are not ids but text.
pub const MAX_CORRELATION_ID_LEN: usize = 256;

/// The id keys, compiled from the config.
#[derive(Clone, Debug)]
pub struct IdKeys {
    pub trace: Vec<String>,
    pub span: Vec<String>,
    pub traceparent: Vec<String>,
    pub decimal: Vec<String>,
    pub correlation: Vec<String>,
    /// Where correlation ids are normalised to.
    pub target: String,
    pub keep_original: bool,
}

/// What promotion did to one log record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Promotion {
    pub promoted: bool,
    /// Id values found under an id key that did not validate.
    pub invalid: u64,
}

/// A 128-bit trace id: 32 hex digits, 16 raw bytes, or (for decimal keys)
/// a decimal 64-bit id that fills the lower half. All-zero ids are invalid.
pub fn parse_trace_id(v: &AnyValue, decimal: bool) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    match v.value.as_ref()? {
        Value::StringValue(s) => {
            let s = s.trim();
            if decimal && is_decimal(s) {
                out[8..].copy_from_slice(&parse_decimal(s)?.to_be_bytes());
            } else {
                out.copy_from_slice(&attrs::parse_hex_id(s, 16)?);
            }
        }
        Value::IntValue(i) if decimal => out[8..].copy_from_slice(&i.to_be_bytes()),
        Value::BytesValue(b) if b.len() == 16 => out.copy_from_slice(b),
        _ => return None,
    }
    attrs::is_valid_trace_id(&out).then_some(out)
}

/// A 64-bit span id: 16 hex digits, 8 raw bytes, or (for decimal keys) decimal.
pub fn parse_span_id(v: &AnyValue, decimal: bool) -> Option<[u8; 8]> {
    let out: [u8; 8] = match v.value.as_ref()? {
        Value::StringValue(s) => {
            let s = s.trim();
            if decimal && is_decimal(s) {
                parse_decimal(s)?.to_be_bytes()
            } else {
                attrs::parse_hex_id(s, 8)?.try_into().ok()?
            }
        }
        Value::IntValue(i) if decimal => i.to_be_bytes(),
        Value::BytesValue(b) => b.as_slice().try_into().ok()?,
        _ => return None,
    };
    attrs::is_valid_span_id(&out).then_some(out)
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_decimal(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|n| *n != 0)
}

/// A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`): trace id, span id, flags.
/// Future versions may append fields after the flags, as the spec allows.
pub fn parse_traceparent(s: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let s = s.trim();
    let mut parts = s.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    if version.len() != 2 || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if version.eq_ignore_ascii_case("ff") || (version == "00" && rest.is_some()) {
        return None;
    }
    if flags.len() != 2 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let trace: [u8; 16] = attrs::parse_hex_id(trace, 16)?.try_into().ok()?;
    let span: [u8; 8] = attrs::parse_hex_id(span, 8)?.try_into().ok()?;
    Some((trace, span, flags))
}

/// A correlation id as text: a non-empty string, an integer, or the first
/// string of an array (`http.request.header.*` attributes are string arrays).
pub fn correlation_text(v: &AnyValue) -> Option<&str> {
    let s: &str = match v.value.as_ref()? {
        Value::StringValue(s) => s,
        Value::ArrayValue(a) => match a.values.first()?.value.as_ref()? {
            Value::StringValue(s) => s,
            _ => return None,
        },
        _ => return None,
    };
    let s = s.trim();
    (!s.is_empty() && s.len() <= MAX_CORRELATION_ID_LEN).then_some(s)
}

fn correlation_owned(v: &AnyValue) -> Option<String> {
    if let Some(Value::IntValue(i)) = &v.value {
        return Some(i.to_string());
    }
    correlation_text(v).map(str::to_string)
}

fn body_map(body: Option<&AnyValue>) -> &[KeyValue] {
    match body.and_then(|b| b.value.as_ref()) {
        Some(Value::KvlistValue(kv)) => &kv.values,
        _ => &[],
    }
}

enum Found<T> {
    None,
    /// The value and the attribute key it came from (None = the body).
    Some(T, Option<String>),
}

/// Looks for the first valid value under `keys`, first in the attributes then
/// in the body; counts present-but-invalid values.
fn find<T>(
    attributes: &[KeyValue],
    body: &[KeyValue],
    keys: &[String],
    invalid: &mut u64,
    parse: impl Fn(&str, &AnyValue) -> Option<T>,
) -> Found<T> {
    for (from_attrs, map) in [(true, attributes), (false, body)] {
        for key in keys {
            let Some(v) = attrs::get(map, key) else {
                continue;
            };
            match parse(key, v) {
                Some(t) => return Found::Some(t, from_attrs.then(|| key.clone())),
                None => *invalid += 1,
            }
        }
    }
    Found::None
}

/// Promotes a trace/span id found in the record's attributes or structured
/// body into its `trace_id`/`span_id`. Records that already carry a valid
/// trace id are left alone. Promoted attributes are removed (unless
/// `keep_original`); invalid values stay and are counted. The body is never
/// changed: it is the record as the application wrote it.
pub fn promote(rec: &mut LogRecord, keys: &IdKeys) -> Promotion {
    let mut p = Promotion::default();
    if attrs::is_valid_trace_id(&rec.trace_id) {
        return p;
    }
    let body = body_map(rec.body.as_ref());
    let decimal = |key: &str| keys.decimal.iter().any(|k| k == key);
    let mut invalid = 0;
    let mut remove: Vec<String> = Vec::new();
    let traceparent = find(
        &rec.attributes,
        body,
        &keys.traceparent,
        &mut invalid,
        |_, v| match v.value.as_ref() {
            Some(Value::StringValue(s)) => parse_traceparent(s),
            _ => None,
        },
    );
    let (trace, mut span, flags) = match traceparent {
        Found::Some((t, s, f), key) => {
            remove.extend(key);
            (Some(t), Some(s), Some(f))
        }
        Found::None => {
            let trace = match find(&rec.attributes, body, &keys.trace, &mut invalid, |k, v| {
                parse_trace_id(v, decimal(k))
            }) {
                Found::Some(t, key) => {
                    remove.extend(key);
                    Some(t)
                }
                Found::None => None,
            };
            (trace, None, None)
        }
    };
    if span.is_none() {
        // A span id is only meaningful with a trace id; without one it stays
        // where it is (and is not counted invalid).
        let mut span_invalid = 0;
        if let Found::Some(s, key) = find(
            &rec.attributes,
            body,
            &keys.span,
            &mut span_invalid,
            |k, v| parse_span_id(v, decimal(k)),
        ) {
            if trace.is_some() {
                remove.extend(key);
                span = Some(s);
            }
        }
        if trace.is_some() {
            invalid += span_invalid;
        }
    }
    p.invalid = invalid;
    let Some(trace) = trace else {
        return p;
    };
    rec.trace_id = trace.to_vec();
    if let Some(s) = span {
        rec.span_id = s.to_vec();
    }
    if let Some(f) = flags {
        if rec.flags & 0xff == 0 {
            rec.flags |= u32::from(f);
        }
    }
    if !keys.keep_original {
        for k in &remove {
            attrs::remove(&mut rec.attributes, k);
        }
    }
    p.promoted = true;
    p
}

/// Finds a correlation id in `attributes` (the target key first, then
/// `keys`), falling back to the structured body, and normalises it into the
/// target attribute. Returns the id.
pub fn normalise_correlation(
    attributes: &mut Vec<KeyValue>,
    body: Option<&AnyValue>,
    keys: &IdKeys,
) -> Option<String> {
    if let Some(id) = attrs::get(attributes, &keys.target).and_then(correlation_owned) {
        return Some(id);
    }
    for key in &keys.correlation {
        if let Some(id) = attrs::get(attributes, key).and_then(correlation_owned) {
            if !keys.keep_original {
                attrs::remove(attributes, key);
            }
            attrs::set_str(attributes, &keys.target, id.as_str());
            return Some(id);
        }
    }
    let body = body_map(body);
    for key in std::iter::once(&keys.target).chain(&keys.correlation) {
        if let Some(id) = attrs::get(body, key).and_then(correlation_owned) {
            attrs::set_str(attributes, &keys.target, id.as_str());
            return Some(id);
        }
    }
    None
}

/// A correlation id in attributes without changing them (resource fallback).
pub fn find_correlation(attributes: &[KeyValue], keys: &IdKeys) -> Option<String> {
    std::iter::once(&keys.target)
        .chain(&keys.correlation)
        .find_map(|k| attrs::get(attributes, k).and_then(correlation_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_pipeline::attrs::{array, int, key_value, kvlist, string};
    use proptest::prelude::*;

    pub fn keys() -> IdKeys {
        let c = super::super::config::CorrelationConfig::default();
        IdKeys {
            trace: c.trace_id_keys,
            span: c.span_id_keys,
            traceparent: c.traceparent_keys,
            decimal: c.decimal_id_keys,
            correlation: c.correlation_id_keys,
            target: c.correlation_id_attribute,
            keep_original: false,
        }
    }

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    fn rec(attributes: Vec<KeyValue>) -> LogRecord {
        LogRecord {
            attributes,
            ..Default::default()
        }
    }

    fn hex(b: &[u8]) -> String {
        attrs::id_hex(b)
    }

    #[test]
    fn promotes_each_key_form() {
        for (tk, sk) in [
            ("trace_id", "span_id"),
            ("trace.id", "span.id"),
            ("otelTraceID", "otelSpanID"),
            ("dd.trace_id", "dd.span_id"),
        ] {
            let mut r = rec(vec![
                key_value(tk, string(T.to_uppercase())),
                key_value(sk, string(S)),
                key_value("other", string("x")),
            ]);
            let p = promote(&mut r, &keys());
            assert_eq!(
                p,
                Promotion {
                    promoted: true,
                    invalid: 0
                },
                "{tk}"
            );
            assert_eq!(hex(&r.trace_id), T, "{tk}");
            assert_eq!(hex(&r.span_id), S, "{sk}");
            assert_eq!(r.attributes.len(), 1, "{tk}: promoted keys removed");
        }
    }

    #[test]
    fn promotes_traceparent_with_flags() {
        let mut r = rec(vec![key_value(
            "traceparent",
            string(format!("00-{T}-{S}-01")),
        )]);
        assert!(promote(&mut r, &keys()).promoted);
        assert_eq!(hex(&r.trace_id), T);
        assert_eq!(hex(&r.span_id), S);
        assert_eq!(r.flags, 1);
        assert!(r.attributes.is_empty());
    }

    #[test]
    fn datadog_decimal_ids_fill_the_lower_half() {
        let mut r = rec(vec![
            key_value("dd.trace_id", string("1234567890123456789")),
            key_value("dd.span_id", int(987654321)),
        ]);
        assert!(promote(&mut r, &keys()).promoted);
        assert_eq!(hex(&r.trace_id), "0000000000000000112210f47de98115");
        assert_eq!(hex(&r.span_id), format!("{:016x}", 987654321u64));
        // 32-hex dd ids are taken as they are.
        let mut r = rec(vec![key_value("dd.trace_id", string(T))]);
        assert!(promote(&mut r, &keys()).promoted);
        assert_eq!(hex(&r.trace_id), T);
        assert!(r.span_id.is_empty());
    }

    #[test]
    fn decimal_is_only_for_decimal_keys() {
        // 16 digits: a hex span id under span_id, not decimal.
        let mut r = rec(vec![
            key_value("trace_id", string(T)),
            key_value("span_id", string("1234567890123456")),
        ]);
        promote(&mut r, &keys());
        assert_eq!(hex(&r.span_id), "1234567890123456");
        let mut r = rec(vec![key_value("trace_id", string("12345"))]);
        let p = promote(&mut r, &keys());
        assert_eq!(
            p,
            Promotion {
                promoted: false,
                invalid: 1
            }
        );
    }

    #[test]
    fn invalid_ids_are_counted_and_kept() {
        let mut r = rec(vec![
            key_value("trace_id", string("not-a-trace-id")),
            key_value("trace.id", string("00000000000000000000000000000000")),
            key_value("traceparent", string("garbage")),
            key_value("span_id", string(S)),
        ]);
        let p = promote(&mut r, &keys());
        assert_eq!(
            p,
            Promotion {
                promoted: false,
                invalid: 3
            }
        );
        assert!(r.trace_id.is_empty() && r.span_id.is_empty());
        assert_eq!(r.attributes.len(), 4);
        // A valid id wins over an invalid one before it; the invalid one stays.
        let mut r = rec(vec![
            key_value("trace_id", string("zz")),
            key_value("otelTraceID", string(T)),
            key_value("span_id", string("short")),
        ]);
        let p = promote(&mut r, &keys());
        assert_eq!(
            p,
            Promotion {
                promoted: true,
                invalid: 2
            }
        );
        assert_eq!(hex(&r.trace_id), T);
        assert!(r.span_id.is_empty());
        let left: Vec<&str> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(left, vec!["trace_id", "span_id"]);
    }

    #[test]
    fn promotes_from_structured_bodies_without_changing_them() {
        let body = kvlist(vec![
            key_value("msg", string("hi")),
            key_value("trace_id", string(T)),
            key_value("span_id", string(S)),
        ]);
        let mut r = LogRecord {
            body: Some(body.clone()),
            ..Default::default()
        };
        assert!(promote(&mut r, &keys()).promoted);
        assert_eq!(hex(&r.trace_id), T);
        assert_eq!(hex(&r.span_id), S);
        assert_eq!(r.body, Some(body));
    }

    #[test]
    fn records_with_a_trace_id_are_left_alone() {
        let mut r = rec(vec![key_value("trace_id", string(T))]);
        r.trace_id = vec![1; 16];
        assert_eq!(promote(&mut r, &keys()), Promotion::default());
        assert_eq!(r.attributes.len(), 1);
    }

    #[test]
    fn traceparent_validation() {
        assert!(parse_traceparent(&format!("00-{T}-{S}-01")).is_some());
        assert!(parse_traceparent(&format!("01-{T}-{S}-01-extra")).is_some());
        assert!(parse_traceparent(&format!("00-{T}-{S}-01-extra")).is_none());
        assert!(parse_traceparent(&format!("ff-{T}-{S}-01")).is_none());
        assert!(parse_traceparent(&format!("00-{}-{S}-01", "0".repeat(32))).is_none());
        assert!(parse_traceparent(&format!("00-{T}-{}-01", "0".repeat(16))).is_none());
        assert!(parse_traceparent(&format!("00-{T}-{S}-1")).is_none());
    }

    #[test]
    fn normalises_correlation_ids() {
        let k = keys();
        for key in &k.correlation {
            let mut a = vec![key_value(key.as_str(), string("R1"))];
            assert_eq!(
                normalise_correlation(&mut a, None, &k).as_deref(),
                Some("R1")
            );
            assert_eq!(attrs::get_str(&a, "request_id"), Some("R1"), "{key}");
            assert_eq!(a.len(), 1, "{key} moved");
        }
        // Header captures are string arrays.
        let mut a = vec![key_value(
            "http.request.header.x-request-id",
            array(vec![string("R2")]),
        )];
        assert_eq!(
            normalise_correlation(&mut a, None, &k).as_deref(),
            Some("R2")
        );
        // Integers become text; the body is a fallback.
        let mut a = vec![key_value("correlationId", int(7))];
        assert_eq!(
            normalise_correlation(&mut a, None, &k).as_deref(),
            Some("7")
        );
        let body = kvlist(vec![key_value("requestId", string("R3"))]);
        let mut a = Vec::new();
        assert_eq!(
            normalise_correlation(&mut a, Some(&body), &k).as_deref(),
            Some("R3")
        );
        assert_eq!(attrs::get_str(&a, "request_id"), Some("R3"));
        // Keeping the original key.
        let mut k2 = k.clone();
        k2.keep_original = true;
        let mut a = vec![key_value("x-request-id", string("R4"))];
        normalise_correlation(&mut a, None, &k2);
        assert_eq!(a.len(), 2);
        // Empty and oversized values are not ids.
        let mut a = vec![
            key_value("request_id", string("  ")),
            key_value("correlation_id", string("x".repeat(300))),
        ];
        assert_eq!(normalise_correlation(&mut a, None, &k), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,80}") {
            let _ = parse_traceparent(&s);
            let _ = parse_trace_id(&string(s.clone()), true);
            let _ = parse_span_id(&string(s.clone()), true);
            let _ = correlation_text(&string(s));
        }

        #[test]
        fn hex_ids_round_trip(t in any::<[u8; 16]>(), s in any::<[u8; 8]>(), f in any::<u8>()) {
            let tp = format!("00-{}-{}-{:02x}", hex(&t), hex(&s), f);
            let parsed = parse_traceparent(&tp);
            if t.iter().any(|b| *b != 0) && s.iter().any(|b| *b != 0) {
                prop_assert_eq!(parsed, Some((t, s, f)));
                prop_assert_eq!(parse_trace_id(&string(hex(&t)), false), Some(t));
                prop_assert_eq!(parse_span_id(&string(hex(&s)), false), Some(s));
            } else {
                prop_assert_eq!(parsed, None);
            }
        }

        #[test]
        fn decimal_ids_round_trip(n in 1u64..) {
            let t = parse_trace_id(&string(n.to_string()), true).unwrap();
            prop_assert_eq!(&t[..8], &[0u8; 8]);
            prop_assert_eq!(u64::from_be_bytes(t[8..].try_into().unwrap()), n);
            let s = parse_span_id(&string(n.to_string()), true).unwrap();
            prop_assert_eq!(u64::from_be_bytes(s), n);
        }
    }
}
