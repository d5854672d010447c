//! OTLP → Jaeger `api_v2` model, following the mapping of the Collector's
//! translator (`pkg/translator/jaeger`, `traces_to_jaegerproto.go`) and the
//! OpenTelemetry spec's non-OTLP rules:
//!
//! - one `Batch` per resource; `Process.service_name` from `service.name`,
//!   every other resource attribute a process tag;
//! - span tags in the translator's order: `otel.scope.name`,
//!   `otel.scope.version`, the attributes, `span.kind`, `otel.status_code`,
//!   `error`, `otel.status_description`, `w3c.tracestate`; then the spec's
//!   `otel.dropped_{attributes,events,links}_count` when non-zero;
//! - attribute types kept (string, bool, int64, float64, binary); arrays and
//!   maps as JSON strings;
//! - the parent as the first reference (`CHILD_OF`), links after it as
//!   `FOLLOWS_FROM` (or `CHILD_OF` when the link's `opentracing.ref_type` says
//!   `child_of`; a link to the parent itself only retypes that reference);
//! - events → logs: the event time, an `event` field with the name (unless
//!   the event has an `event` attribute), the attributes as fields.

use super::proto::{
    Duration, KeyValue, Log, Process, Span, SpanRef, SpanRefType, Timestamp, ValueType,
};
use bytes::{BufMut, Bytes};
use confluo_pipeline::attrs;
use confluo_pipeline::proto::common::KeyValue as OtlpKeyValue;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, InstrumentationScope};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{span, status, ResourceSpans, Span as OtlpSpan};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;

/// The service name of a resource without `service.name` (the translator's
/// `tracetranslator.ResourceNoServiceName`).
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// One `PostSpansRequest` in the making: the encoded process and the
/// encoded `Batch.spans` entries (each with its field key), kept apart so
/// that requests of the same process can merge by concatenation.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub process: Bytes,
    pub spans: Vec<u8>,
    pub items: usize,
}

impl Encoded {
    /// The length of the `Batch` message: the spans, then field 2 (process).
    fn batch_len(&self) -> usize {
        self.spans.len() + 1 + encoded_len_varint(self.process.len() as u64) + self.process.len()
    }

    /// The wire `PostSpansRequest{batch: Batch{spans, process}}`.
    pub fn body(&self) -> Vec<u8> {
        let batch_len = self.batch_len();
        let mut out = Vec::with_capacity(self.wire_len());
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(batch_len as u64, &mut out);
        out.extend_from_slice(&self.spans);
        encode_key(2, WireType::LengthDelimited, &mut out);
        encode_varint(self.process.len() as u64, &mut out);
        out.put_slice(&self.process);
        out
    }

    /// The size of [`Encoded::body`] without building it.
    pub fn wire_len(&self) -> usize {
        let batch_len = self.batch_len();
        1 + encoded_len_varint(batch_len as u64) + batch_len
    }
}

/// Encodes every resource of a traces batch into requests of at most
/// `max_bytes` (a single span larger than that goes alone). Resources
/// without spans send nothing.
pub fn encode_requests(resource_spans: &[ResourceSpans], max_bytes: usize) -> Vec<Encoded> {
    let mut out = Vec::new();
    let mut span_buf = Vec::new();
    for rs in resource_spans {
        let n_spans: usize = rs.scope_spans.iter().map(|s| s.spans.len()).sum();
        if n_spans == 0 {
            continue;
        }
        let process: Bytes = process(rs.resource.as_ref()).encode_to_vec().into();
        let mut current = Encoded {
            process: process.clone(),
            spans: Vec::new(),
            items: 0,
        };
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                span_buf.clear();
                prost::encoding::message::encode(1, &span(s, ss.scope.as_ref()), &mut span_buf);
                if current.items > 0 && current.wire_len() + span_buf.len() > max_bytes {
                    out.push(std::mem::replace(
                        &mut current,
                        Encoded {
                            process: process.clone(),
                            spans: Vec::new(),
                            items: 0,
                        },
                    ));
                }
                current.spans.extend_from_slice(&span_buf);
                current.items += 1;
            }
        }
        out.push(current);
    }
    out
}

/// `Process` of a resource.
pub fn process(resource: Option<&Resource>) -> Process {
    let attributes = resource.map_or(&[][..], |r| &r.attributes[..]);
    let mut service_name = None;
    let mut tags = Vec::with_capacity(attributes.len());
    for kv in attributes {
        if kv.key == "service.name" {
            service_name = Some(kv.value.as_ref().map(attrs::to_text).unwrap_or_default());
        } else {
            tags.push(tag(kv));
        }
    }
    Process {
        // The translator leaves the name empty when other attributes exist;
        // Jaeger then shows an unnamed service, so the placeholder is used
        // whenever `service.name` is missing.
        service_name: service_name.unwrap_or_else(|| NO_SERVICE_NAME.to_string()),
        tags,
    }
}

/// A tag (or log field) from an OTLP attribute, keeping its type.
pub fn tag(kv: &OtlpKeyValue) -> KeyValue {
    value_tag(kv.key.clone(), kv.value.as_ref())
}

fn value_tag(key: String, value: Option<&AnyValue>) -> KeyValue {
    let mut t = KeyValue {
        key,
        v_type: ValueType::String as i32,
        ..Default::default()
    };
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => t.v_str = s.clone(),
        Some(Value::BoolValue(b)) => {
            t.v_type = ValueType::Bool as i32;
            t.v_bool = *b;
        }
        Some(Value::IntValue(i)) => {
            t.v_type = ValueType::Int64 as i32;
            t.v_int64 = *i;
        }
        Some(Value::DoubleValue(d)) => {
            t.v_type = ValueType::Float64 as i32;
            t.v_float64 = *d;
        }
        Some(Value::BytesValue(b)) => {
            t.v_type = ValueType::Binary as i32;
            t.v_binary = b.clone();
        }
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => {
            let mut json = Vec::new();
            attrs::write_json(value.expect("matched Some"), &mut json);
            t.v_str = String::from_utf8(json).unwrap_or_default();
        }
        Some(Value::StringValueStrindex(_)) => {
            t.v_str = value.map(attrs::to_text).unwrap_or_default();
        }
        // An empty value: a string tag with no text, as the translator.
        None => {}
    }
    t
}

fn str_tag(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        v_type: ValueType::String as i32,
        v_str: value.into(),
        ..Default::default()
    }
}

fn int_tag(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        v_type: ValueType::Int64 as i32,
        v_int64: value,
        ..Default::default()
    }
}

/// `N` bytes of an id: OTLP ids have exactly that length after the
/// receivers' checks; anything else is right-aligned (zero-padded or cut
/// from the left) so that Jaeger's fixed-size id parsing never fails.
fn fixed_id<const N: usize>(id: &[u8]) -> Vec<u8> {
    if id.len() == N {
        return id.to_vec();
    }
    let mut out = vec![0u8; N];
    let take = id.len().min(N);
    out[N - take..].copy_from_slice(&id[id.len() - take..]);
    out
}

fn is_zero(id: &[u8]) -> bool {
    id.iter().all(|b| *b == 0)
}

/// A Jaeger span from an OTLP span and its scope.
pub fn span(s: &OtlpSpan, scope: Option<&InstrumentationScope>) -> Span {
    let trace_id = fixed_id::<16>(&s.trace_id);
    let start = s.start_time_unix_nano;
    let duration = (i128::from(s.end_time_unix_nano) - i128::from(start))
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    Span {
        span_id: fixed_id::<8>(&s.span_id),
        operation_name: s.name.clone(),
        references: references(s, &trace_id),
        flags: 0,
        start_time: Some(Timestamp::from_unix_nanos(start)),
        duration: Some(Duration::from_nanos(duration)),
        tags: span_tags(s, scope),
        logs: s.events.iter().map(log).collect(),
        trace_id,
        ..Default::default()
    }
}

fn span_tags(s: &OtlpSpan, scope: Option<&InstrumentationScope>) -> Vec<KeyValue> {
    let mut tags = Vec::with_capacity(s.attributes.len() + 8);
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            tags.push(str_tag("otel.scope.name", scope.name.clone()));
        }
        if !scope.version.is_empty() {
            tags.push(str_tag("otel.scope.version", scope.version.clone()));
        }
    }
    tags.extend(s.attributes.iter().map(tag));
    let kind = match span::SpanKind::try_from(s.kind) {
        Ok(span::SpanKind::Client) => Some("client"),
        Ok(span::SpanKind::Server) => Some("server"),
        Ok(span::SpanKind::Producer) => Some("producer"),
        Ok(span::SpanKind::Consumer) => Some("consumer"),
        Ok(span::SpanKind::Internal) => Some("internal"),
        _ => None,
    };
    if let Some(kind) = kind {
        tags.push(str_tag("span.kind", kind));
    }
    if let Some(st) = &s.status {
        match status::StatusCode::try_from(st.code) {
            Ok(status::StatusCode::Ok) => tags.push(str_tag("otel.status_code", "OK")),
            Ok(status::StatusCode::Error) => {
                tags.push(str_tag("otel.status_code", "ERROR"));
                tags.push(KeyValue {
                    key: "error".into(),
                    v_type: ValueType::Bool as i32,
                    v_bool: true,
                    ..Default::default()
                });
            }
            _ => {}
        }
        if !st.message.is_empty() {
            tags.push(str_tag("otel.status_description", st.message.clone()));
        }
    }
    if !s.trace_state.is_empty() {
        tags.push(str_tag("w3c.tracestate", s.trace_state.clone()));
    }
    for (key, count) in [
        ("otel.dropped_attributes_count", s.dropped_attributes_count),
        ("otel.dropped_events_count", s.dropped_events_count),
        ("otel.dropped_links_count", s.dropped_links_count),
    ] {
        if count > 0 {
            tags.push(int_tag(key, i64::from(count)));
        }
    }
    tags
}

fn link_ref_type(attributes: &[OtlpKeyValue]) -> SpanRefType {
    match attrs::get_str(attributes, "opentracing.ref_type") {
        Some("child_of") => SpanRefType::ChildOf,
        _ => SpanRefType::FollowsFrom,
    }
}

fn references(s: &OtlpSpan, trace_id: &[u8]) -> Vec<SpanRef> {
    let parent = (!s.parent_span_id.is_empty() && !is_zero(&s.parent_span_id))
        .then(|| fixed_id::<8>(&s.parent_span_id));
    let mut refs = Vec::with_capacity(s.links.len() + usize::from(parent.is_some()));
    // The parent goes first: backends take the first CHILD_OF as the parent.
    if let Some(parent) = &parent {
        refs.push(SpanRef {
            trace_id: trace_id.to_vec(),
            span_id: parent.clone(),
            ref_type: SpanRefType::ChildOf as i32,
        });
    }
    for link in &s.links {
        let ref_type = link_ref_type(&link.attributes) as i32;
        let link_trace = fixed_id::<16>(&link.trace_id);
        let link_span = fixed_id::<8>(&link.span_id);
        if parent.as_deref() == Some(&link_span[..]) && link_trace == trace_id {
            refs[0].ref_type = ref_type;
            continue;
        }
        refs.push(SpanRef {
            trace_id: link_trace,
            span_id: link_span,
            ref_type,
        });
    }
    refs
}

fn log(e: &span::Event) -> Log {
    let mut fields = Vec::with_capacity(e.attributes.len() + 1);
    if !e.name.is_empty() && !e.attributes.iter().any(|kv| kv.key == "event") {
        fields.push(str_tag("event", e.name.clone()));
    }
    fields.extend(e.attributes.iter().map(tag));
    Log {
        timestamp: Some(Timestamp::from_unix_nanos(e.time_unix_nano)),
        fields,
    }
}
