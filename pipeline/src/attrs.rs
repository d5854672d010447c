//! Helpers for OTLP attributes and values that many components need: look
//! up, set and remove keys, render values as text or JSON, hex ids, and visit
//! every attribute map of a signal.

use crate::proto::common::{any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use crate::proto::metrics::metric::Data;
use crate::signal::Signal;

pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The value of `key` when it is a string.
pub fn get_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attrs, key)?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// Sets `key`, replacing an existing value.
pub fn set(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(value),
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value: Some(value),
            ..Default::default()
        }),
    }
}

pub fn set_str(attrs: &mut Vec<KeyValue>, key: &str, value: impl Into<String>) {
    set(attrs, key, string(value));
}

/// Removes `key` and returns its value.
pub fn remove(attrs: &mut Vec<KeyValue>, key: &str) -> Option<AnyValue> {
    let i = attrs.iter().position(|kv| kv.key == key)?;
    attrs.remove(i).value
}

pub fn string(s: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s.into())),
    }
}

pub fn int(i: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(i)),
    }
}

pub fn double(d: f64) -> AnyValue {
    AnyValue {
        value: Some(Value::DoubleValue(d)),
    }
}

pub fn boolean(b: bool) -> AnyValue {
    AnyValue {
        value: Some(Value::BoolValue(b)),
    }
}

pub fn array(values: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values })),
    }
}

pub fn kvlist(values: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::KvlistValue(KeyValueList { values })),
    }
}

pub fn key_value(key: impl Into<String>, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// A value as plain text: strings as they are, numbers and booleans as
/// written in JSON, arrays and maps as JSON, bytes as hex.
pub fn to_text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format_double(*d),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => {
            let mut out = Vec::new();
            write_json(v, &mut out);
            String::from_utf8(out).unwrap_or_default()
        }
        Some(Value::StringValueStrindex(i)) => i.to_string(),
        None => String::new(),
    }
}

fn format_double(d: f64) -> String {
    if d.is_finite() {
        // Shortest representation that round-trips.
        d.to_string()
    } else if d.is_nan() {
        "NaN".into()
    } else if d > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// Writes a value as a natural JSON value: maps as objects, arrays as arrays,
/// numbers as numbers (non-finite doubles as strings), bytes as a hex string.
/// This is the shape log backends expect, not OTLP/JSON's tagged form.
pub fn write_json(v: &AnyValue, out: &mut Vec<u8>) {
    match &v.value {
        Some(Value::StringValue(s)) => crate::otlp_json::write_json_str(out, s),
        Some(Value::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Value::IntValue(i)) => out.extend_from_slice(i.to_string().as_bytes()),
        Some(Value::DoubleValue(d)) => {
            if d.is_finite() {
                out.extend_from_slice(format_double(*d).as_bytes());
            } else {
                crate::otlp_json::write_json_str(out, &format_double(*d));
            }
        }
        Some(Value::BytesValue(b)) => crate::otlp_json::write_json_str(out, &hex::encode(b)),
        Some(Value::ArrayValue(a)) => {
            out.push(b'[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out);
            }
            out.push(b']');
        }
        Some(Value::KvlistValue(kv)) => write_json_object(&kv.values, out),
        Some(Value::StringValueStrindex(i)) => out.extend_from_slice(i.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes attributes as one JSON object `{"key": value, …}`.
pub fn write_json_object(attrs: &[KeyValue], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, kv) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        crate::otlp_json::write_json_str(out, &kv.key);
        out.push(b':');
        match &kv.value {
            Some(v) => write_json(v, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

/// Lower-case hex of an id; empty for an empty (absent) id.
pub fn id_hex(id: &[u8]) -> String {
    hex::encode(id)
}

/// Whether an id is present: the right length and not all zeros.
pub fn is_valid_trace_id(id: &[u8]) -> bool {
    id.len() == 16 && id.iter().any(|b| *b != 0)
}

pub fn is_valid_span_id(id: &[u8]) -> bool {
    id.len() == 8 && id.iter().any(|b| *b != 0)
}

/// Parses a hex trace id (32 hex digits) or span id (16), rejecting all-zero ids.
pub fn parse_hex_id(s: &str, len: usize) -> Option<Vec<u8>> {
    if s.len() != len * 2 {
        return None;
    }
    let bytes = hex::decode(s).ok()?;
    bytes.iter().any(|b| *b != 0).then_some(bytes)
}

/// Where an attribute map sits, for components that treat levels differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrLevel {
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanLink,
    LogRecord,
    DataPoint,
    Exemplar,
}

/// Calls `f` on every attribute map of the signal: resource, scope, span,
/// span event, link, log record, metric data point and exemplar.
pub fn for_each_attributes_mut(
    signal: &mut Signal,
    f: &mut dyn FnMut(AttrLevel, &mut Vec<KeyValue>),
) {
    match signal {
        Signal::Traces(rs) => {
            for r in rs {
                if let Some(res) = &mut r.resource {
                    f(AttrLevel::Resource, &mut res.attributes);
                }
                for ss in &mut r.scope_spans {
                    if let Some(scope) = &mut ss.scope {
                        f(AttrLevel::Scope, &mut scope.attributes);
                    }
                    for span in &mut ss.spans {
                        f(AttrLevel::Span, &mut span.attributes);
                        for e in &mut span.events {
                            f(AttrLevel::SpanEvent, &mut e.attributes);
                        }
                        for l in &mut span.links {
                            f(AttrLevel::SpanLink, &mut l.attributes);
                        }
                    }
                }
            }
        }
        Signal::Logs(rl) => {
            for r in rl {
                if let Some(res) = &mut r.resource {
                    f(AttrLevel::Resource, &mut res.attributes);
                }
                for sl in &mut r.scope_logs {
                    if let Some(scope) = &mut sl.scope {
                        f(AttrLevel::Scope, &mut scope.attributes);
                    }
                    for rec in &mut sl.log_records {
                        f(AttrLevel::LogRecord, &mut rec.attributes);
                    }
                }
            }
        }
        Signal::Metrics(rm) => {
            for r in rm {
                if let Some(res) = &mut r.resource {
                    f(AttrLevel::Resource, &mut res.attributes);
                }
                for sm in &mut r.scope_metrics {
                    if let Some(scope) = &mut sm.scope {
                        f(AttrLevel::Scope, &mut scope.attributes);
                    }
                    for m in &mut sm.metrics {
                        for_each_point_attributes_mut(m.data.as_mut(), f);
                    }
                }
            }
        }
    }
}

fn for_each_point_attributes_mut(
    data: Option<&mut Data>,
    f: &mut dyn FnMut(AttrLevel, &mut Vec<KeyValue>),
) {
    macro_rules! points {
        ($points:expr) => {
            for p in $points {
                f(AttrLevel::DataPoint, &mut p.attributes);
                for e in &mut p.exemplars {
                    f(AttrLevel::Exemplar, &mut e.filtered_attributes);
                }
            }
        };
    }
    match data {
        Some(Data::Gauge(g)) => points!(&mut g.data_points),
        Some(Data::Sum(s)) => points!(&mut s.data_points),
        Some(Data::Histogram(h)) => points!(&mut h.data_points),
        Some(Data::ExponentialHistogram(h)) => points!(&mut h.data_points),
        Some(Data::Summary(s)) => {
            for p in &mut s.data_points {
                f(AttrLevel::DataPoint, &mut p.attributes);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let mut attrs = Vec::new();
        set_str(&mut attrs, "a", "1");
        set(&mut attrs, "b", int(2));
        set_str(&mut attrs, "a", "3");
        assert_eq!(attrs.len(), 2);
        assert_eq!(get_str(&attrs, "a"), Some("3"));
        assert_eq!(get_str(&attrs, "b"), None);
        assert_eq!(remove(&mut attrs, "b"), Some(int(2)));
        assert!(get(&attrs, "b").is_none());
    }

    #[test]
    fn json_rendering_is_natural() {
        let v = kvlist(vec![
            key_value("s", string("x\"y")),
            key_value("n", int(-3)),
            key_value("d", double(1.5)),
            key_value("inf", double(f64::INFINITY)),
            key_value("arr", array(vec![boolean(true), AnyValue::default()])),
        ]);
        let mut out = Vec::new();
        write_json(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"s":"x\"y","n":-3,"d":1.5,"inf":"+Inf","arr":[true,null]}"#
        );
        assert_eq!(to_text(&double(2.0)), "2");
        assert_eq!(to_text(&string("plain")), "plain");
    }

    #[test]
    fn ids() {
        assert_eq!(
            parse_hex_id("00000000000000000000000000000001", 16).unwrap()[15],
            1
        );
        assert!(parse_hex_id("00000000000000000000000000000000", 16).is_none());
        assert!(parse_hex_id("zz", 1).is_none());
        assert!(is_valid_span_id(&[0, 0, 0, 0, 0, 0, 0, 1]));
        assert!(!is_valid_trace_id(&[0; 16]));
    }

    #[test]
    fn visits_every_level() {
        let mut s = crate::signal::tests::traces(1, 1, 2);
        if let Signal::Traces(rs) = &mut s {
            rs[0].scope_spans[0].spans[0]
                .events
                .push(Default::default());
        }
        let mut levels = Vec::new();
        for_each_attributes_mut(&mut s, &mut |lvl, _| levels.push(lvl));
        assert_eq!(
            levels,
            vec![
                AttrLevel::Resource,
                AttrLevel::Scope,
                AttrLevel::Span,
                AttrLevel::SpanEvent,
                AttrLevel::Span
            ]
        );
    }
}
