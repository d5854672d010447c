//! Checks an OTLP protobuf export request without building it, and counts
//! its items (spans, metric data points, log records).
//!
//! A receiver must refuse undecodable data before it says "accepted", but a
//! pipeline that only forwards (OTLP in → `batch` → OTLP out) never needs the
//! decoded tree: building it and dropping it was half of such a pipeline's
//! CPU (allocations for every key, value and id). So a receiver validates
//! here, hands the bytes on, and [`crate::Batch`] decodes them only when a
//! component asks for the data.
//!
//! The contract: [`validate`] accepts exactly the bytes that prost's
//! `Message::decode` of the `opentelemetry-proto` types accepts — wire
//! structure, wire types of known fields, packed repeated scalars, UTF-8 of
//! string fields, prost's recursion limit of 100 — and the count it returns
//! equals `Signal::item_count` of the decoded data (including the `oneof`
//! rule that a later `Metric.data` of another kind replaces an earlier one,
//! while one of the same kind merges). A differential test against prost
//! guards this; if the two ever disagree, the lazy decode reports it.

use confluo_config::SignalKind;
use std::fmt;

/// Why bytes are not a valid export request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// What is wrong, in prost's words where it has them.
    pub reason: &'static str,
    /// Byte offset of the field where it went wrong.
    pub offset: usize,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

impl std::error::Error for WireError {}

/// prost's `RECURSION_LIMIT`.
const RECURSION_LIMIT: u32 = 100;

/// What a field holds, as far as validation is concerned.
#[derive(Clone, Copy)]
enum Kind {
    /// A nested message.
    Msg(&'static Desc),
    /// A string: length-delimited, UTF-8.
    Str,
    /// Bytes: length-delimited.
    Bytes,
    /// int32/int64/uint32/uint64/sint32/bool/enum: varint.
    Varint,
    /// fixed64/sfixed64/double: 8 bytes.
    Fixed64,
    /// fixed32: 4 bytes.
    Fixed32,
    /// repeated fixed64/double: packed (length a multiple of 8) or not.
    RepFixed64,
    /// repeated uint64: packed varints or single varints.
    RepVarint,
}

/// How a nested message's items count toward its parent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Not counted (or the child's own count is added: for containers).
    Sum,
    /// Each occurrence is one item (spans, log records, data points).
    One,
    /// `Metric.data` oneof: a different variant replaces, the same merges.
    Oneof,
}

#[derive(Clone, Copy)]
struct Field {
    tag: u32,
    kind: Kind,
    count: Count,
}

/// The highest field number in the OTLP messages validated here.
const MAX_TAG: usize = 16;

/// A message's known fields, indexed by field number: the lookup is on
/// the path of every field of every span.
struct Desc {
    by_tag: [Option<Field>; MAX_TAG + 1],
}

impl Desc {
    #[inline]
    fn field(&self, tag: u32) -> Option<&Field> {
        self.by_tag.get(tag as usize).and_then(Option::as_ref)
    }
}

const fn desc(fields: &[Field]) -> Desc {
    let mut by_tag = [None; MAX_TAG + 1];
    let mut i = 0;
    while i < fields.len() {
        by_tag[fields[i].tag as usize] = Some(fields[i]);
        i += 1;
    }
    Desc { by_tag }
}

const fn f(tag: u32, kind: Kind) -> Field {
    Field {
        tag,
        kind,
        count: Count::Sum,
    }
}

const fn item(tag: u32, desc: &'static Desc) -> Field {
    Field {
        tag,
        kind: Kind::Msg(desc),
        count: Count::One,
    }
}

const fn oneof(tag: u32, desc: &'static Desc) -> Field {
    Field {
        tag,
        kind: Kind::Msg(desc),
        count: Count::Oneof,
    }
}

use Kind::{Bytes, Fixed32, Fixed64, Msg, RepFixed64, RepVarint, Str, Varint};

// ---- common.v1 / resource.v1 (opentelemetry-proto 0.33 field numbers)
static ANY_VALUE: Desc = desc(&[
    f(1, Str),
    f(2, Varint),
    f(3, Varint),
    f(4, Fixed64),
    f(5, Msg(&ARRAY_VALUE)),
    f(6, Msg(&KEY_VALUE_LIST)),
    f(7, Bytes),
    f(8, Varint),
]);
static ARRAY_VALUE: Desc = desc(&[f(1, Msg(&ANY_VALUE))]);
static KEY_VALUE_LIST: Desc = desc(&[f(1, Msg(&KEY_VALUE))]);
static KEY_VALUE: Desc = desc(&[f(1, Str), f(2, Msg(&ANY_VALUE)), f(3, Varint)]);
static SCOPE: Desc = desc(&[f(1, Str), f(2, Str), f(3, Msg(&KEY_VALUE)), f(4, Varint)]);
static ENTITY_REF: Desc = desc(&[f(1, Str), f(2, Str), f(3, Str), f(4, Str)]);
static RESOURCE: Desc = desc(&[f(1, Msg(&KEY_VALUE)), f(2, Varint), f(3, Msg(&ENTITY_REF))]);

// ---- trace.v1
static TRACES_REQUEST: Desc = desc(&[f(1, Msg(&RESOURCE_SPANS))]);
static RESOURCE_SPANS: Desc = desc(&[f(1, Msg(&RESOURCE)), f(2, Msg(&SCOPE_SPANS)), f(3, Str)]);
static SCOPE_SPANS: Desc = desc(&[f(1, Msg(&SCOPE)), item(2, &SPAN), f(3, Str)]);
static SPAN: Desc = desc(&[
    f(1, Bytes),
    f(2, Bytes),
    f(3, Str),
    f(4, Bytes),
    f(16, Fixed32),
    f(5, Str),
    f(6, Varint),
    f(7, Fixed64),
    f(8, Fixed64),
    f(9, Msg(&KEY_VALUE)),
    f(10, Varint),
    f(11, Msg(&EVENT)),
    f(12, Varint),
    f(13, Msg(&LINK)),
    f(14, Varint),
    f(15, Msg(&STATUS)),
]);
static EVENT: Desc = desc(&[
    f(1, Fixed64),
    f(2, Str),
    f(3, Msg(&KEY_VALUE)),
    f(4, Varint),
]);
static LINK: Desc = desc(&[
    f(1, Bytes),
    f(2, Bytes),
    f(3, Str),
    f(4, Msg(&KEY_VALUE)),
    f(5, Varint),
    f(6, Fixed32),
]);
static STATUS: Desc = desc(&[f(2, Str), f(3, Varint)]);

// ---- logs.v1
static LOGS_REQUEST: Desc = desc(&[f(1, Msg(&RESOURCE_LOGS))]);
static RESOURCE_LOGS: Desc = desc(&[f(1, Msg(&RESOURCE)), f(2, Msg(&SCOPE_LOGS)), f(3, Str)]);
static SCOPE_LOGS: Desc = desc(&[f(1, Msg(&SCOPE)), item(2, &LOG_RECORD), f(3, Str)]);
static LOG_RECORD: Desc = desc(&[
    f(1, Fixed64),
    f(11, Fixed64),
    f(2, Varint),
    f(3, Str),
    f(5, Msg(&ANY_VALUE)),
    f(6, Msg(&KEY_VALUE)),
    f(7, Varint),
    f(8, Fixed32),
    f(9, Bytes),
    f(10, Bytes),
    f(12, Str),
]);

// ---- metrics.v1
static METRICS_REQUEST: Desc = desc(&[f(1, Msg(&RESOURCE_METRICS))]);
static RESOURCE_METRICS: Desc = desc(&[f(1, Msg(&RESOURCE)), f(2, Msg(&SCOPE_METRICS)), f(3, Str)]);
static SCOPE_METRICS: Desc = desc(&[f(1, Msg(&SCOPE)), f(2, Msg(&METRIC)), f(3, Str)]);
static METRIC: Desc = desc(&[
    f(1, Str),
    f(2, Str),
    f(3, Str),
    f(12, Msg(&KEY_VALUE)),
    oneof(5, &GAUGE),
    oneof(7, &SUM),
    oneof(9, &HISTOGRAM),
    oneof(10, &EXP_HISTOGRAM),
    oneof(11, &SUMMARY),
]);
static GAUGE: Desc = desc(&[item(1, &NUMBER_POINT)]);
static SUM: Desc = desc(&[item(1, &NUMBER_POINT), f(2, Varint), f(3, Varint)]);
static HISTOGRAM: Desc = desc(&[item(1, &HISTOGRAM_POINT), f(2, Varint)]);
static EXP_HISTOGRAM: Desc = desc(&[item(1, &EXP_HISTOGRAM_POINT), f(2, Varint)]);
static SUMMARY: Desc = desc(&[item(1, &SUMMARY_POINT)]);
static NUMBER_POINT: Desc = desc(&[
    f(7, Msg(&KEY_VALUE)),
    f(2, Fixed64),
    f(3, Fixed64),
    f(5, Msg(&EXEMPLAR)),
    f(8, Varint),
    f(4, Fixed64),
    f(6, Fixed64),
]);
static HISTOGRAM_POINT: Desc = desc(&[
    f(9, Msg(&KEY_VALUE)),
    f(2, Fixed64),
    f(3, Fixed64),
    f(4, Fixed64),
    f(5, Fixed64),
    f(6, RepFixed64),
    f(7, RepFixed64),
    f(8, Msg(&EXEMPLAR)),
    f(10, Varint),
    f(11, Fixed64),
    f(12, Fixed64),
]);
static EXP_HISTOGRAM_POINT: Desc = desc(&[
    f(1, Msg(&KEY_VALUE)),
    f(2, Fixed64),
    f(3, Fixed64),
    f(4, Fixed64),
    f(5, Fixed64),
    f(6, Varint),
    f(7, Fixed64),
    f(8, Msg(&BUCKETS)),
    f(9, Msg(&BUCKETS)),
    f(10, Varint),
    f(11, Msg(&EXEMPLAR)),
    f(12, Fixed64),
    f(13, Fixed64),
    f(14, Fixed64),
]);
static BUCKETS: Desc = desc(&[f(1, Varint), f(2, RepVarint)]);
static SUMMARY_POINT: Desc = desc(&[
    f(7, Msg(&KEY_VALUE)),
    f(2, Fixed64),
    f(3, Fixed64),
    f(4, Fixed64),
    f(5, Fixed64),
    f(6, Msg(&VALUE_AT_QUANTILE)),
    f(8, Varint),
]);
static VALUE_AT_QUANTILE: Desc = desc(&[f(1, Fixed64), f(2, Fixed64)]);
static EXEMPLAR: Desc = desc(&[
    f(7, Msg(&KEY_VALUE)),
    f(2, Fixed64),
    f(4, Bytes),
    f(5, Bytes),
    f(3, Fixed64),
    f(6, Fixed64),
]);

/// Protobuf wire types.
pub const WT_VARINT: u8 = 0;
pub const WT_FIXED64: u8 = 1;
pub const WT_LEN: u8 = 2;
pub const WT_START_GROUP: u8 = 3;
pub const WT_END_GROUP: u8 = 4;
pub const WT_FIXED32: u8 = 5;

/// Validates `bytes` as the export request of `kind` and counts its items.
pub fn validate(kind: SignalKind, bytes: &[u8]) -> Result<usize, WireError> {
    let desc = match kind {
        SignalKind::Traces => &TRACES_REQUEST,
        SignalKind::Metrics => &METRICS_REQUEST,
        SignalKind::Logs => &LOGS_REQUEST,
    };
    let mut r = Reader { buf: bytes, pos: 0 };
    let end = bytes.len();
    let n = r.message_body(desc, end, RECURSION_LIMIT)?;
    Ok(n as usize)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    #[cold]
    #[inline(never)]
    fn err(&self, reason: &'static str) -> WireError {
        WireError {
            reason,
            offset: self.pos,
        }
    }

    /// prost's varint rules: at most 10 bytes, the 10th at most 1, and
    /// never past `end`.
    #[inline]
    fn varint(&mut self, end: usize) -> Result<u64, WireError> {
        // One byte: tags, lengths under 128 and small numbers.
        if self.pos < end && self.buf[self.pos] < 0x80 {
            self.pos += 1;
            return Ok(u64::from(self.buf[self.pos - 1]));
        }
        let mut value = 0u64;
        for i in 0..10 {
            if self.pos >= end {
                return Err(self.err("invalid varint"));
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b >= 0x02 {
                    return Err(self.err("invalid varint"));
                }
                return Ok(value);
            }
        }
        Err(self.err("invalid varint"))
    }

    #[inline]
    fn key(&mut self, end: usize) -> Result<(u32, u8), WireError> {
        let key = self.varint(end)?;
        if key > u64::from(u32::MAX) {
            return Err(self.err("invalid key value"));
        }
        let wire_type = (key & 7) as u8;
        if wire_type > 5 {
            return Err(self.err("invalid wire type value"));
        }
        let tag = (key as u32) >> 3;
        if tag < 1 {
            return Err(self.err("invalid tag value: 0"));
        }
        Ok((tag, wire_type))
    }

    /// A length prefix and the end of what it delimits.
    fn delimited(&mut self, end: usize) -> Result<usize, WireError> {
        let len = self.varint(end)?;
        if len > (end - self.pos) as u64 {
            return Err(self.err("buffer underflow"));
        }
        Ok(self.pos + len as usize)
    }

    fn advance(&mut self, n: usize, end: usize) -> Result<(), WireError> {
        if n > end - self.pos {
            return Err(self.err("buffer underflow"));
        }
        self.pos += n;
        Ok(())
    }

    /// The fields of one message up to `end`; returns its item count.
    /// `budget` is prost's remaining recursion count for these fields.
    fn message_body(&mut self, desc: &Desc, end: usize, budget: u32) -> Result<u64, WireError> {
        let mut items = 0u64;
        // For `Count::Oneof`: the variant seen last and its items.
        let mut oneof_tag = 0u32;
        let mut oneof_items = 0u64;
        while self.pos < end {
            let (tag, wt) = self.key(end)?;
            let Some(field) = desc.field(tag) else {
                self.skip(tag, wt, end, budget)?;
                continue;
            };
            match field.kind {
                Msg(child) => {
                    if wt != WT_LEN {
                        return Err(self.err("invalid wire type"));
                    }
                    if budget == 0 {
                        return Err(self.err("recursion limit reached"));
                    }
                    let child_end = self.delimited(end)?;
                    let n = self.message_body(child, child_end, budget - 1)?;
                    match field.count {
                        Count::Sum => items += n,
                        Count::One => items += 1,
                        Count::Oneof => {
                            if oneof_tag == tag {
                                oneof_items += n;
                            } else {
                                oneof_tag = tag;
                                oneof_items = n;
                            }
                        }
                    }
                }
                Str => {
                    if wt != WT_LEN {
                        return Err(self.err("invalid wire type"));
                    }
                    self.string(end)?;
                }
                Bytes => {
                    if wt != WT_LEN {
                        return Err(self.err("invalid wire type"));
                    }
                    self.pos = self.delimited(end)?;
                }
                Varint => {
                    if wt != WT_VARINT {
                        return Err(self.err("invalid wire type"));
                    }
                    self.varint(end)?;
                }
                Fixed64 => {
                    if wt != WT_FIXED64 {
                        return Err(self.err("invalid wire type"));
                    }
                    self.advance(8, end)?;
                }
                Fixed32 => {
                    if wt != WT_FIXED32 {
                        return Err(self.err("invalid wire type"));
                    }
                    self.advance(4, end)?;
                }
                RepFixed64 => match wt {
                    WT_LEN => {
                        let p_end = self.delimited(end)?;
                        if !(p_end - self.pos).is_multiple_of(8) {
                            return Err(self.err("delimited length exceeded"));
                        }
                        self.pos = p_end;
                    }
                    WT_FIXED64 => self.advance(8, end)?,
                    _ => return Err(self.err("invalid wire type")),
                },
                RepVarint => match wt {
                    WT_LEN => {
                        let p_end = self.delimited(end)?;
                        while self.pos < p_end {
                            self.varint(p_end)?;
                        }
                    }
                    WT_VARINT => {
                        self.varint(end)?;
                    }
                    _ => return Err(self.err("invalid wire type")),
                },
            }
        }
        Ok(items + oneof_items)
    }

    /// A string field's value: length-delimited, UTF-8.
    #[inline]
    fn string(&mut self, end: usize) -> Result<(), WireError> {
        let s_end = self.delimited(end)?;
        let text = &self.buf[self.pos..s_end];
        // Most OTLP strings are ASCII; `is_ascii` checks a word at a time.
        if !text.is_ascii() && std::str::from_utf8(text).is_err() {
            return Err(self.err("invalid string value: data is not UTF-8 encoded"));
        }
        self.pos = s_end;
        Ok(())
    }

    /// prost's `skip_field` for a field this schema does not know.
    fn skip(&mut self, tag: u32, wt: u8, end: usize, budget: u32) -> Result<(), WireError> {
        if budget == 0 {
            return Err(self.err("recursion limit reached"));
        }
        match wt {
            WT_VARINT => {
                self.varint(end)?;
            }
            WT_FIXED64 => self.advance(8, end)?,
            WT_FIXED32 => self.advance(4, end)?,
            WT_LEN => self.pos = self.delimited(end)?,
            WT_START_GROUP => loop {
                let (inner_tag, inner_wt) = self.key(end)?;
                if inner_wt == WT_END_GROUP {
                    if inner_tag != tag {
                        return Err(self.err("unexpected end group tag"));
                    }
                    break;
                }
                self.skip(inner_tag, inner_wt, end, budget - 1)?;
            },
            _ => return Err(self.err("unexpected end group tag")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::common::any_value::Value;
    use crate::proto::common::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use crate::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::proto::logs_service::ExportLogsServiceRequest;
    use crate::proto::metrics::{
        exemplar, exponential_histogram_data_point, metric::Data, number_data_point,
        summary_data_point, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
        Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        Summary, SummaryDataPoint,
    };
    use crate::proto::metrics_service::ExportMetricsServiceRequest;
    use crate::proto::resource::Resource;
    use crate::proto::trace::{span, ResourceSpans, ScopeSpans, Span, Status};
    use crate::proto::trace_service::ExportTraceServiceRequest;
    use crate::signal::Signal;
    use prost::Message;

    /// prost's verdict and count for the same bytes.
    fn prost_count(kind: SignalKind, bytes: &[u8]) -> Option<usize> {
        let signal = match kind {
            SignalKind::Traces => ExportTraceServiceRequest::decode(bytes)
                .ok()
                .map(|r| Signal::Traces(r.resource_spans)),
            SignalKind::Metrics => ExportMetricsServiceRequest::decode(bytes)
                .ok()
                .map(|r| Signal::Metrics(r.resource_metrics)),
            SignalKind::Logs => ExportLogsServiceRequest::decode(bytes)
                .ok()
                .map(|r| Signal::Logs(r.resource_logs)),
        };
        signal.map(|s| s.item_count())
    }

    /// Both verdicts equal; returns whether the bytes were valid.
    fn agree(kind: SignalKind, bytes: &[u8]) -> bool {
        let ours = validate(kind, bytes).ok();
        let theirs = prost_count(kind, bytes);
        assert_eq!(ours, theirs, "{kind} {bytes:02x?}");
        ours.is_some()
    }

    fn attrs() -> Vec<KeyValue> {
        let v = |value| AnyValue { value: Some(value) };
        let kv = |k: &str, value| KeyValue {
            key: k.into(),
            value: Some(v(value)),
            ..Default::default()
        };
        vec![
            kv("s", Value::StringValue("text é".into())),
            kv("b", Value::BoolValue(true)),
            kv("i", Value::IntValue(-42)),
            kv("d", Value::DoubleValue(1.5)),
            kv("bytes", Value::BytesValue(vec![0, 1, 2])),
            kv(
                "arr",
                Value::ArrayValue(ArrayValue {
                    values: vec![v(Value::IntValue(1)), v(Value::StringValue("two".into()))],
                }),
            ),
            kv(
                "map",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", Value::StringValue("v".into()))],
                }),
            ),
        ]
    }

    fn resource() -> Option<Resource> {
        Some(Resource {
            attributes: attrs(),
            dropped_attributes_count: 1,
            ..Default::default()
        })
    }

    fn scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: "lib".into(),
            version: "1.0".into(),
            attributes: attrs(),
            dropped_attributes_count: 2,
        })
    }

    fn traces() -> Signal {
        let span = |i: u8| Span {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            parent_span_id: vec![1; 8],
            trace_state: "a=b".into(),
            flags: 0x101,
            name: format!("span {i}"),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            attributes: attrs(),
            dropped_attributes_count: 3,
            events: vec![span::Event {
                time_unix_nano: 5,
                name: "exception".into(),
                attributes: attrs(),
                dropped_attributes_count: 1,
            }],
            dropped_events_count: 1,
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![9; 8],
                trace_state: "x=y".into(),
                attributes: attrs(),
                dropped_attributes_count: 1,
                flags: 1,
            }],
            dropped_links_count: 1,
            status: Some(Status {
                message: "boom".into(),
                code: 2,
            }),
        };
        Signal::Traces(vec![
            ResourceSpans {
                resource: resource(),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope(),
                        spans: vec![span(1), span(2)],
                        schema_url: "https://schema".into(),
                    },
                    ScopeSpans {
                        scope: None,
                        spans: vec![span(3)],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "u".into(),
            },
            ResourceSpans::default(),
        ])
    }

    fn metrics() -> Signal {
        let exemplar = Exemplar {
            filtered_attributes: attrs(),
            time_unix_nano: 7,
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsDouble(0.5)),
        };
        let number = |v| NumberDataPoint {
            attributes: attrs(),
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            exemplars: vec![exemplar.clone()],
            flags: 1,
            value: Some(v),
        };
        let metric = |name: &str, data| Metric {
            name: name.into(),
            description: "d".into(),
            unit: "s".into(),
            metadata: attrs(),
            data: Some(data),
        };
        Signal::Metrics(vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    metric(
                        "g",
                        Data::Gauge(Gauge {
                            data_points: vec![
                                number(number_data_point::Value::AsDouble(1.0)),
                                number(number_data_point::Value::AsInt(-3)),
                            ],
                        }),
                    ),
                    metric(
                        "s",
                        Data::Sum(Sum {
                            data_points: vec![number(number_data_point::Value::AsInt(9))],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "h",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: attrs(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 6,
                                sum: Some(10.0),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![1.0, 5.0],
                                exemplars: vec![exemplar.clone()],
                                flags: 0,
                                min: Some(0.1),
                                max: Some(9.0),
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "e",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                attributes: attrs(),
                                count: 5,
                                sum: Some(3.0),
                                scale: -2,
                                zero_count: 1,
                                positive: Some(exponential_histogram_data_point::Buckets {
                                    offset: -1,
                                    bucket_counts: vec![1, 300, 70000],
                                }),
                                negative: Some(Default::default()),
                                exemplars: vec![exemplar.clone()],
                                min: Some(-1.0),
                                max: Some(2.0),
                                zero_threshold: 0.001,
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "q",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                attributes: attrs(),
                                count: 4,
                                sum: 2.0,
                                quantile_values: vec![summary_data_point::ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 1.0,
                                }],
                                ..Default::default()
                            }],
                        }),
                    ),
                    Metric {
                        name: "empty".into(),
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }])
    }

    fn logs_with_body(body: AnyValue) -> Signal {
        Signal::Logs(vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![
                    LogRecord {
                        time_unix_nano: 1,
                        observed_time_unix_nano: 2,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(body),
                        attributes: attrs(),
                        dropped_attributes_count: 1,
                        flags: 1,
                        trace_id: vec![3; 16],
                        span_id: vec![4; 8],
                        event_name: "ev".into(),
                    },
                    LogRecord::default(),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }])
    }

    fn samples() -> Vec<(SignalKind, Vec<u8>)> {
        let body = AnyValue {
            value: Some(Value::StringValue("hello".into())),
        };
        [traces(), metrics(), logs_with_body(body)]
            .into_iter()
            .map(|signal| {
                let mut buf = Vec::new();
                signal.encode_request(&mut buf);
                (signal.kind(), buf)
            })
            .collect()
    }

    #[test]
    fn valid_requests_count_like_the_decoded_data() {
        for (kind, bytes) in samples() {
            let n = validate(kind, &bytes).unwrap();
            assert_eq!(Some(n), prost_count(kind, &bytes));
            assert!(n > 0, "{kind}: samples hold items");
        }
        assert_eq!(validate(SignalKind::Traces, &[]), Ok(0));
    }

    /// Deterministic xorshift: the differential runs the same everywhere.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn accepts_and_rejects_exactly_what_prost_does() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut valid, mut invalid) = (0, 0);
        for (kind, bytes) in samples() {
            assert!(agree(kind, &bytes));
            for _ in 0..4000 {
                let mut m = bytes.clone();
                match rng.below(5) {
                    0 => {
                        let i = rng.below(m.len());
                        m[i] ^= 1 << rng.below(8);
                    }
                    1 => {
                        let i = rng.below(m.len());
                        m[i] = rng.next() as u8;
                    }
                    2 => m.truncate(rng.below(m.len())),
                    3 => {
                        let i = rng.below(m.len());
                        let extra: Vec<u8> =
                            (0..1 + rng.below(4)).map(|_| rng.next() as u8).collect();
                        m.splice(i..i, extra);
                    }
                    _ => {
                        let i = rng.below(m.len());
                        let j = (i + 1 + rng.below(8)).min(m.len());
                        m.drain(i..j);
                    }
                }
                if agree(kind, &m) {
                    valid += 1;
                } else {
                    invalid += 1;
                }
            }
        }
        // The mutations must exercise both verdicts, or the test proves nothing.
        assert!(
            valid > 1000 && invalid > 1000,
            "valid {valid}, invalid {invalid}"
        );
    }

    #[test]
    fn unknown_fields_groups_and_packed_scalars() {
        // Unknown varint, fixed and group fields at the top level are skipped.
        agree(
            SignalKind::Traces,
            &[0x10, 0x01, 0x19, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        agree(SignalKind::Traces, &[0x1b, 0x08, 0x01, 0x1c]);
        // A group closed by another tag, or an end group alone, is an error.
        agree(SignalKind::Traces, &[0x1b, 0x08, 0x01, 0x24]);
        agree(SignalKind::Traces, &[0x1c]);
        // Tag 0 and wire types 6/7 are errors.
        agree(SignalKind::Logs, &[0x00]);
        agree(SignalKind::Logs, &[0x0e]);
        // A known message field with the wrong wire type.
        agree(SignalKind::Metrics, &[0x08, 0x01]);
        // Varints: 10 bytes with a last byte of 1 is fine, of 2 is not.
        let mut v = vec![0x10];
        v.extend([0xff; 9]);
        v.push(0x01);
        agree(SignalKind::Traces, &v);
        *v.last_mut().unwrap() = 0x02;
        agree(SignalKind::Traces, &v);
    }

    #[test]
    fn nesting_beyond_prosts_recursion_limit_is_refused() {
        use crate::proto::common::any_value;
        for depth in [40usize, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 120] {
            let mut v = AnyValue {
                value: Some(any_value::Value::StringValue("x".into())),
            };
            for _ in 0..depth {
                v = AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
                };
            }
            let mut buf = Vec::new();
            logs_with_body(v).encode_request(&mut buf);
            let ok = agree(SignalKind::Logs, &buf);
            assert_eq!(ok, depth < 90, "depth {depth}");
        }
    }

    #[test]
    fn metric_oneof_replaces_or_merges_like_prost() {
        let points = |n| vec![NumberDataPoint::default(); n];
        let gauge = Metric {
            name: "m".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: points(3),
            })),
            ..Default::default()
        };
        let sum = Metric {
            data: Some(Data::Sum(Sum {
                data_points: points(2),
                ..Default::default()
            })),
            ..Default::default()
        };
        let enc = |m: &Metric| m.encode_to_vec();
        // Concatenated Metric messages merge: gauge+sum → sum (2), gauge+gauge → 6.
        for body in [
            [enc(&gauge), enc(&sum)].concat(),
            [enc(&gauge), enc(&gauge)].concat(),
            [enc(&sum), enc(&gauge), enc(&sum)].concat(),
        ] {
            let mut metric_field = vec![0x12];
            prost::encoding::encode_varint(body.len() as u64, &mut metric_field);
            metric_field.extend(&body);
            let mut scope_field = vec![0x12];
            prost::encoding::encode_varint(metric_field.len() as u64, &mut scope_field);
            scope_field.extend(&metric_field);
            let mut rm = vec![0x0a];
            prost::encoding::encode_varint(scope_field.len() as u64, &mut rm);
            rm.extend(&scope_field);
            agree(SignalKind::Metrics, &rm);
            assert!(validate(SignalKind::Metrics, &rm).unwrap() > 0);
        }
    }
}
