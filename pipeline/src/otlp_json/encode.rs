//! OTLP/JSON encoding: bytes written straight into the output buffer.
//!
//! Rules (OTLP/JSON = proto3 JSON mapping with OTLP's exceptions):
//! lowerCamelCase keys; default scalars omitted; trace/span ids as lowercase
//! hex; enums as integers; 64-bit integers as decimal strings; doubles as
//! numbers, with non-finite values as "NaN"/"Infinity"/"-Infinity"; oneof
//! members and present optional messages are always written, even when their
//! value is the default, because their presence is information.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde_json::ser::{CompactFormatter, Formatter};

pub(super) trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

// ---- primitives ---------------------------------------------------------------

/// Write `s` as a JSON string (RFC 8259): escape `"`, `\` and control
/// characters; everything else, including non-ASCII UTF-8, passes through.
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(short);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

// Writing into a Vec<u8> cannot fail, so the io::Result from the formatter
// is always Ok; serde_json's formatter gives us itoa/ryu number formatting
// (shortest round-trip doubles) without extra dependencies.

fn write_u64(out: &mut Vec<u8>, v: u64) {
    let _ = CompactFormatter.write_u64(out, v);
}

fn write_i64(out: &mut Vec<u8>, v: i64) {
    let _ = CompactFormatter.write_i64(out, v);
}

/// 64-bit integers are JSON strings in proto3 JSON (JS numbers lose
/// precision above 2^53).
fn write_u64_str(out: &mut Vec<u8>, v: u64) {
    out.push(b'"');
    write_u64(out, v);
    out.push(b'"');
}

fn write_i64_str(out: &mut Vec<u8>, v: i64) {
    out.push(b'"');
    write_i64(out, v);
    out.push(b'"');
}

fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = CompactFormatter.write_f64(out, v);
    } else if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

fn write_hex(out: &mut Vec<u8>, id: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(id.len() * 2 + 2);
    out.push(b'"');
    for &b in id {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
    out.push(b'"');
}

/// Writes one JSON object, tracking whether a comma is needed.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    comma: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, comma: false }
    }

    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if self.comma {
            self.out.push(b',');
        }
        self.comma = true;
        // Keys are our own ASCII identifiers: no escaping needed.
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, k: &str, v: &str) {
        if !v.is_empty() {
            write_str(self.key(k), v);
        }
    }

    fn bool(&mut self, k: &str, v: bool) {
        if v {
            self.key(k).extend_from_slice(b"true");
        }
    }

    fn u32(&mut self, k: &str, v: u32) {
        if v != 0 {
            write_u64(self.key(k), v.into());
        }
    }

    /// int32 / sint32 / enum values: plain JSON numbers.
    fn i32(&mut self, k: &str, v: i32) {
        if v != 0 {
            write_i64(self.key(k), v.into());
        }
    }

    fn u64(&mut self, k: &str, v: u64) {
        if v != 0 {
            write_u64_str(self.key(k), v);
        }
    }

    fn i64(&mut self, k: &str, v: i64) {
        if v != 0 {
            write_i64_str(self.key(k), v);
        }
    }

    /// Omitted only when it is exactly +0.0 (bitwise), so -0.0 survives.
    fn f64(&mut self, k: &str, v: f64) {
        if v.to_bits() != 0 {
            write_f64(self.key(k), v);
        }
    }

    fn opt_f64(&mut self, k: &str, v: Option<f64>) {
        if let Some(v) = v {
            write_f64(self.key(k), v);
        }
    }

    fn id(&mut self, k: &str, v: &[u8]) {
        if !v.is_empty() {
            write_hex(self.key(k), v);
        }
    }

    fn msg<T: Encode>(&mut self, k: &str, v: Option<&T>) {
        if let Some(v) = v {
            v.encode(self.key(k));
        }
    }

    fn list<T>(&mut self, k: &str, v: &[T], mut elem: impl FnMut(&mut Vec<u8>, &T)) {
        if v.is_empty() {
            return;
        }
        let out = self.key(k);
        out.push(b'[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            elem(out, x);
        }
        out.push(b']');
    }

    fn msgs<T: Encode>(&mut self, k: &str, v: &[T]) {
        self.list(k, v, |out, m| m.encode(out));
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

// ---- common / resource ------------------------------------------------------

impl Encode for AnyValue {
    fn encode(&self, out: &mut Vec<u8>) {
        use any_value::Value as V;
        let mut o = Obj::new(out);
        match &self.value {
            None => {}
            Some(V::StringValue(s)) => write_str(o.key("stringValue"), s),
            Some(V::BoolValue(b)) => {
                o.key("boolValue")
                    .extend_from_slice(if *b { b"true" } else { b"false" })
            }
            Some(V::IntValue(i)) => write_i64_str(o.key("intValue"), *i),
            Some(V::DoubleValue(d)) => write_f64(o.key("doubleValue"), *d),
            Some(V::ArrayValue(a)) => a.encode(o.key("arrayValue")),
            Some(V::KvlistValue(kv)) => kv.encode(o.key("kvlistValue")),
            Some(V::BytesValue(b)) => {
                let out = o.key("bytesValue");
                out.push(b'"');
                super::base64::encode_into(out, b);
                out.push(b'"');
            }
            Some(V::StringValueStrindex(i)) => write_i64(o.key("stringValueStrindex"), (*i).into()),
        }
        o.end();
    }
}

impl Encode for ArrayValue {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("values", &self.values);
        o.end();
    }
}

impl Encode for KeyValueList {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("values", &self.values);
        o.end();
    }
}

impl Encode for KeyValue {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        // The key is the attribute's identity: always written, even if empty,
        // as the Collector does.
        write_str(o.key("key"), &self.key);
        o.msg("value", self.value.as_ref());
        o.i32("keyStrindex", self.key_strindex);
        o.end();
    }
}

impl Encode for InstrumentationScope {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.str("name", &self.name);
        o.str("version", &self.version);
        o.msgs("attributes", &self.attributes);
        o.u32("droppedAttributesCount", self.dropped_attributes_count);
        o.end();
    }
}

impl Encode for EntityRef {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.str("schemaUrl", &self.schema_url);
        o.str("type", &self.r#type);
        o.list("idKeys", &self.id_keys, |out, s| write_str(out, s));
        o.list("descriptionKeys", &self.description_keys, |out, s| {
            write_str(out, s)
        });
        o.end();
    }
}

impl Encode for Resource {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("attributes", &self.attributes);
        o.u32("droppedAttributesCount", self.dropped_attributes_count);
        o.msgs("entityRefs", &self.entity_refs);
        o.end();
    }
}

// ---- traces -----------------------------------------------------------------

impl Encode for ExportTraceServiceRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("resourceSpans", &self.resource_spans);
        o.end();
    }
}

impl Encode for ResourceSpans {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("resource", self.resource.as_ref());
        o.msgs("scopeSpans", &self.scope_spans);
        o.str("schemaUrl", &self.schema_url);
        o.end();
    }
}

impl Encode for ScopeSpans {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("scope", self.scope.as_ref());
        o.msgs("spans", &self.spans);
        o.str("schemaUrl", &self.schema_url);
        o.end();
    }
}

impl Encode for Span {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.id("traceId", &self.trace_id);
        o.id("spanId", &self.span_id);
        o.str("traceState", &self.trace_state);
        o.id("parentSpanId", &self.parent_span_id);
        o.u32("flags", self.flags);
        o.str("name", &self.name);
        o.i32("kind", self.kind);
        o.u64("startTimeUnixNano", self.start_time_unix_nano);
        o.u64("endTimeUnixNano", self.end_time_unix_nano);
        o.msgs("attributes", &self.attributes);
        o.u32("droppedAttributesCount", self.dropped_attributes_count);
        o.msgs("events", &self.events);
        o.u32("droppedEventsCount", self.dropped_events_count);
        o.msgs("links", &self.links);
        o.u32("droppedLinksCount", self.dropped_links_count);
        o.msg("status", self.status.as_ref());
        o.end();
    }
}

impl Encode for span::Event {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.u64("timeUnixNano", self.time_unix_nano);
        o.str("name", &self.name);
        o.msgs("attributes", &self.attributes);
        o.u32("droppedAttributesCount", self.dropped_attributes_count);
        o.end();
    }
}

impl Encode for span::Link {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.id("traceId", &self.trace_id);
        o.id("spanId", &self.span_id);
        o.str("traceState", &self.trace_state);
        o.msgs("attributes", &self.attributes);
        o.u32("droppedAttributesCount", self.dropped_attributes_count);
        o.u32("flags", self.flags);
        o.end();
    }
}

impl Encode for Status {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.str("message", &self.message);
        o.i32("code", self.code);
        o.end();
    }
}

impl Encode for ExportTraceServiceResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("partialSuccess", self.partial_success.as_ref());
        o.end();
    }
}

impl Encode for ExportTracePartialSuccess {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.i64("rejectedSpans", self.rejected_spans);
        o.str("errorMessage", &self.error_message);
        o.end();
    }
}

// ---- metrics ----------------------------------------------------------------

impl Encode for ExportMetricsServiceRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("resourceMetrics", &self.resource_metrics);
        o.end();
    }
}

impl Encode for ResourceMetrics {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("resource", self.resource.as_ref());
        o.msgs("scopeMetrics", &self.scope_metrics);
        o.str("schemaUrl", &self.schema_url);
        o.end();
    }
}

impl Encode for ScopeMetrics {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("scope", self.scope.as_ref());
        o.msgs("metrics", &self.metrics);
        o.str("schemaUrl", &self.schema_url);
        o.end();
    }
}

impl Encode for Metric {
    fn encode(&self, out: &mut Vec<u8>) {
        use metric::Data as D;
        let mut o = Obj::new(out);
        o.str("name", &self.name);
        o.str("description", &self.description);
        o.str("unit", &self.unit);
        o.msgs("metadata", &self.metadata);
        match &self.data {
            None => {}
            Some(D::Gauge(g)) => g.encode(o.key("gauge")),
            Some(D::Sum(s)) => s.encode(o.key("sum")),
            Some(D::Histogram(h)) => h.encode(o.key("histogram")),
            Some(D::ExponentialHistogram(h)) => h.encode(o.key("exponentialHistogram")),
            Some(D::Summary(s)) => s.encode(o.key("summary")),
        }
        o.end();
    }
}

impl Encode for Gauge {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("dataPoints", &self.data_points);
        o.end();
    }
}

impl Encode for Sum {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("dataPoints", &self.data_points);
        o.i32("aggregationTemporality", self.aggregation_temporality);
        o.bool("isMonotonic", self.is_monotonic);
        o.end();
    }
}

impl Encode for Histogram {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("dataPoints", &self.data_points);
        o.i32("aggregationTemporality", self.aggregation_temporality);
        o.end();
    }
}

impl Encode for ExponentialHistogram {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("dataPoints", &self.data_points);
        o.i32("aggregationTemporality", self.aggregation_temporality);
        o.end();
    }
}

impl Encode for Summary {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("dataPoints", &self.data_points);
        o.end();
    }
}

impl Encode for NumberDataPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        use number_data_point::Value as V;
        let mut o = Obj::new(out);
        o.msgs("attributes", &self.attributes);
        o.u64("startTimeUnixNano", self.start_time_unix_nano);
        o.u64("timeUnixNano", self.time_unix_nano);
        match self.value {
            None => {}
            Some(V::AsDouble(d)) => write_f64(o.key("asDouble"), d),
            Some(V::AsInt(i)) => write_i64_str(o.key("asInt"), i),
        }
        o.msgs("exemplars", &self.exemplars);
        o.u32("flags", self.flags);
        o.end();
    }
}

impl Encode for HistogramDataPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("attributes", &self.attributes);
        o.u64("startTimeUnixNano", self.start_time_unix_nano);
        o.u64("timeUnixNano", self.time_unix_nano);
        o.u64("count", self.count);
        o.opt_f64("sum", self.sum);
        o.list("bucketCounts", &self.bucket_counts, |out, v| {
            write_u64_str(out, *v)
        });
        o.list("explicitBounds", &self.explicit_bounds, |out, v| {
            write_f64(out, *v)
        });
        o.msgs("exemplars", &self.exemplars);
        o.u32("flags", self.flags);
        o.opt_f64("min", self.min);
        o.opt_f64("max", self.max);
        o.end();
    }
}

impl Encode for ExponentialHistogramDataPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("attributes", &self.attributes);
        o.u64("startTimeUnixNano", self.start_time_unix_nano);
        o.u64("timeUnixNano", self.time_unix_nano);
        o.u64("count", self.count);
        o.opt_f64("sum", self.sum);
        o.i32("scale", self.scale);
        o.u64("zeroCount", self.zero_count);
        o.msg("positive", self.positive.as_ref());
        o.msg("negative", self.negative.as_ref());
        o.u32("flags", self.flags);
        o.msgs("exemplars", &self.exemplars);
        o.opt_f64("min", self.min);
        o.opt_f64("max", self.max);
        o.f64("zeroThreshold", self.zero_threshold);
        o.end();
    }
}

impl Encode for exponential_histogram_data_point::Buckets {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.i32("offset", self.offset);
        o.list("bucketCounts", &self.bucket_counts, |out, v| {
            write_u64_str(out, *v)
        });
        o.end();
    }
}

impl Encode for SummaryDataPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("attributes", &self.attributes);
        o.u64("startTimeUnixNano", self.start_time_unix_nano);
        o.u64("timeUnixNano", self.time_unix_nano);
        o.u64("count", self.count);
        o.f64("sum", self.sum);
        o.msgs("quantileValues", &self.quantile_values);
        o.u32("flags", self.flags);
        o.end();
    }
}

impl Encode for summary_data_point::ValueAtQuantile {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.f64("quantile", self.quantile);
        o.f64("value", self.value);
        o.end();
    }
}

impl Encode for Exemplar {
    fn encode(&self, out: &mut Vec<u8>) {
        use exemplar::Value as V;
        let mut o = Obj::new(out);
        o.msgs("filteredAttributes", &self.filtered_attributes);
        o.u64("timeUnixNano", self.time_unix_nano);
        match self.value {
            None => {}
            Some(V::AsDouble(d)) => write_f64(o.key("asDouble"), d),
            Some(V::AsInt(i)) => write_i64_str(o.key("asInt"), i),
        }
        o.id("spanId", &self.span_id);
        o.id("traceId", &self.trace_id);
        o.end();
    }
}

impl Encode for ExportMetricsServiceResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("partialSuccess", self.partial_success.as_ref());
        o.end();
    }
}

impl Encode for ExportMetricsPartialSuccess {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.i64("rejectedDataPoints", self.rejected_data_points);
        o.str("errorMessage", &self.error_message);
        o.end();
    }
}

// ---- logs -------------------------------------------------------------------

impl Encode for ExportLogsServiceRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msgs("resourceLogs", &self.resource_logs);
        o.end();
    }
}

impl Encode for ResourceLogs {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("resource", self.resource.as_ref());
        o.msgs("scopeLogs", &self.scope_logs);
        o.str("schemaUrl", &self.schema_url);
        o.end();
    }
}

impl Encode for ScopeLogs {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("scope", self.scope.as_ref());
        o.msgs("logRecords", &self.log_records);
        o.str("schemaUrl", &self.schema_url);
        o.end();
    }
}

impl Encode for LogRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.u64("timeUnixNano", self.time_unix_nano);
        o.u64("observedTimeUnixNano", self.observed_time_unix_nano);
        o.i32("severityNumber", self.severity_number);
        o.str("severityText", &self.severity_text);
        o.msg("body", self.body.as_ref());
        o.msgs("attributes", &self.attributes);
        o.u32("droppedAttributesCount", self.dropped_attributes_count);
        o.u32("flags", self.flags);
        o.id("traceId", &self.trace_id);
        o.id("spanId", &self.span_id);
        o.str("eventName", &self.event_name);
        o.end();
    }
}

impl Encode for ExportLogsServiceResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.msg("partialSuccess", self.partial_success.as_ref());
        o.end();
    }
}

impl Encode for ExportLogsPartialSuccess {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        o.i64("rejectedLogRecords", self.rejected_log_records);
        o.str("errorMessage", &self.error_message);
        o.end();
    }
}

/// The export request of a signal, written from borrowed resources.
pub(super) fn encode_signal(signal: &crate::Signal, out: &mut Vec<u8>) {
    let mut o = Obj::new(out);
    match signal {
        crate::Signal::Traces(rs) => o.msgs("resourceSpans", rs),
        crate::Signal::Metrics(rm) => o.msgs("resourceMetrics", rm),
        crate::Signal::Logs(rl) => o.msgs("resourceLogs", rl),
    }
    o.end();
}
