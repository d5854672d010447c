//! Held spans are kept as protobuf bytes: each fragment is one
//! `ExportTraceServiceRequest.resource_spans` field (a `ResourceSpans` with
//! its resource, one `ScopeSpans` with its scope, and the spans of one trace).
//! Any concatenation of fragments is therefore a valid
//! `ExportTraceServiceRequest` body, decoded once when the trace is emitted.
//! Fragments are written from the borrowed incoming tree, without building
//! (cloning) per-trace `ResourceSpans`.

use super::policy::{Conditions, TraceId, TraceSummary};
use confluo_pipeline::proto::trace::{ResourceSpans, Span};
use confluo_pipeline::proto::trace_service::ExportTraceServiceRequest;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;

/// One trace's spans from one (resource, scope) of an incoming batch.
pub struct Fragment {
    pub trace: TraceId,
    /// Byte range in the batch arena.
    pub start: usize,
    pub end: usize,
    pub summary: TraceSummary,
}

/// The trace id as the Collector's `pcommon.TraceID` sees it: 16 bytes, an
/// empty or malformed id is the all-zero id.
pub fn trace_id(span: &Span) -> TraceId {
    let mut id = [0u8; 16];
    if span.trace_id.len() == 16 {
        id.copy_from_slice(&span.trace_id);
    }
    id
}

fn field_len(inner: usize) -> usize {
    // Every field number used here is < 16: its key is one byte.
    1 + encoded_len_varint(inner as u64) + inner
}

fn put_field(tag: u32, inner: usize, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(inner as u64, out);
}

fn put_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    put_field(tag, bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Reusable buffers for splitting batches into per-trace fragments.
#[derive(Default)]
pub struct Splitter {
    pub arena: Vec<u8>,
    pub fragments: Vec<Fragment>,
    resource: Vec<u8>,
    scope: Vec<u8>,
    order: Vec<(TraceId, u32)>,
    span_bits: Vec<u64>,
    span_lens: Vec<usize>,
}

impl Splitter {
    pub fn clear(&mut self) {
        self.arena.clear();
        self.fragments.clear();
    }

    /// Appends the fragments of `batch` to the arena.
    pub fn split(&mut self, batch: &[ResourceSpans], conds: &Conditions) {
        let first_wins = conds.first_wins();
        for rs in batch {
            self.resource.clear();
            let resource_bits = match &rs.resource {
                Some(r) => {
                    r.encode_raw(&mut self.resource);
                    conds.resource_bits(&r.attributes)
                }
                None => 0,
            };
            let has_resource = rs.resource.is_some();
            for ss in &rs.scope_spans {
                if ss.spans.is_empty() {
                    continue;
                }
                self.scope.clear();
                if let Some(s) = &ss.scope {
                    s.encode_raw(&mut self.scope);
                }
                self.order.clear();
                self.order.extend(
                    ss.spans
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (trace_id(s), i as u32)),
                );
                // Stable: spans of a trace keep their order.
                self.order.sort_by_key(|a| a.0);
                self.span_lens.clear();
                self.span_lens
                    .extend(ss.spans.iter().map(|s| s.encoded_len()));
                self.span_bits.clear();
                if !conds.is_empty() {
                    let resource: &[_] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
                    let scope = ss.scope.as_ref();
                    self.span_bits
                        .extend(ss.spans.iter().map(|s| conds.span_bits(resource, scope, s)));
                }
                let mut i = 0;
                while i < self.order.len() {
                    let trace = self.order[i].0;
                    let mut j = i + 1;
                    while j < self.order.len() && self.order[j].0 == trace {
                        j += 1;
                    }
                    let mut summary = TraceSummary::default();
                    let mut spans_len = 0;
                    for &(_, k) in &self.order[i..j] {
                        let span = &ss.spans[k as usize];
                        spans_len += field_len(self.span_lens[k as usize]);
                        let bits =
                            resource_bits | self.span_bits.get(k as usize).copied().unwrap_or(0);
                        summary.add_span(span, bits, first_wins);
                    }
                    let ss_len = if ss.scope.is_some() {
                        field_len(self.scope.len())
                    } else {
                        0
                    } + spans_len
                        + if ss.schema_url.is_empty() {
                            0
                        } else {
                            field_len(ss.schema_url.len())
                        };
                    let rs_len = if has_resource {
                        field_len(self.resource.len())
                    } else {
                        0
                    } + field_len(ss_len)
                        + if rs.schema_url.is_empty() {
                            0
                        } else {
                            field_len(rs.schema_url.len())
                        };
                    let start = self.arena.len();
                    let out = &mut self.arena;
                    out.reserve(field_len(rs_len));
                    put_field(1, rs_len, out);
                    if has_resource {
                        put_bytes(1, &self.resource, out);
                    }
                    put_field(2, ss_len, out);
                    if ss.scope.is_some() {
                        put_bytes(1, &self.scope, out);
                    }
                    for &(_, k) in &self.order[i..j] {
                        let span = &ss.spans[k as usize];
                        put_field(2, self.span_lens[k as usize], out);
                        span.encode_raw(out);
                    }
                    if !ss.schema_url.is_empty() {
                        put_bytes(3, ss.schema_url.as_bytes(), out);
                    }
                    if !rs.schema_url.is_empty() {
                        put_bytes(3, rs.schema_url.as_bytes(), out);
                    }
                    self.fragments.push(Fragment {
                        trace,
                        start,
                        end: self.arena.len(),
                        summary,
                    });
                    i = j;
                }
            }
        }
    }
}

/// Decodes held fragments (a concatenation of them is an export request).
pub fn decode(buf: &[u8]) -> Result<Vec<ResourceSpans>, prost::DecodeError> {
    Ok(ExportTraceServiceRequest::decode(buf)?.resource_spans)
}
