//! The Agent's trace API v0.4 (`PUT /v0.4/traces`): a msgpack array of
//! traces, each an array of spans, each span a map with the field names of
//! `pkg/proto/datadog/trace/span.proto` (`service`, `name`, `resource`,
//! `trace_id`, `span_id`, `parent_id`, `start`, `duration`, `error`,
//! `meta`, `metrics`, `type`). Here one trace is encoded into one part; the
//! request's framing adds the outer array header.

use super::convert::DdSpan;
use super::msgpack;

/// Appends one span as a msgpack map.
pub fn encode_span(out: &mut Vec<u8>, s: &DdSpan) {
    msgpack::map_header(out, 12);
    msgpack::str(out, "service");
    msgpack::str(out, &s.service);
    msgpack::str(out, "name");
    msgpack::str(out, &s.name);
    msgpack::str(out, "resource");
    msgpack::str(out, &s.resource);
    msgpack::str(out, "trace_id");
    msgpack::uint(out, s.trace_id);
    msgpack::str(out, "span_id");
    msgpack::uint(out, s.span_id);
    msgpack::str(out, "parent_id");
    msgpack::uint(out, s.parent_id);
    msgpack::str(out, "start");
    msgpack::int(out, s.start);
    msgpack::str(out, "duration");
    msgpack::int(out, s.duration);
    msgpack::str(out, "error");
    msgpack::int(out, s.error as i64);
    msgpack::str(out, "meta");
    msgpack::map_header(out, s.meta.len());
    for (k, v) in &s.meta {
        msgpack::str(out, k);
        msgpack::str(out, v);
    }
    msgpack::str(out, "metrics");
    msgpack::map_header(out, s.metrics.len());
    for (k, v) in &s.metrics {
        msgpack::str(out, k);
        msgpack::f64(out, *v);
    }
    msgpack::str(out, "type");
    msgpack::str(out, &s.r#type);
}

/// One trace (an array of its spans).
pub fn encode_trace<'a>(spans: impl ExactSizeIterator<Item = &'a DdSpan>) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 512);
    msgpack::array_header(&mut out, spans.len());
    for s in spans {
        encode_span(&mut out, s);
    }
    out
}
