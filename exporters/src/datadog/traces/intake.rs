//! The trace intake (`POST /api/v0.2/traces`): an `AgentPayload` protobuf,
//! hand-written from the field numbers of `DataDog/datadog-agent`
//! `pkg/proto/datadog/trace/{agent_payload,tracer_payload,span}.proto`.
//! Only what the Agent fills for OTLP spans is declared.
//!
//! A request is an `AgentPayload` whose scalar fields (hostName, env,
//! agentVersion, targetTPS, errorTPS) form the framing's prefix and whose
//! parts are `tracerPayloads` entries (field 5), each encoded with its tag
//! and length so that concatenating parts yields a valid message.

use super::convert::{Chunk, DdSpan, ResourceTraces};
use bytes::Bytes;
use prost::Message;
use std::collections::BTreeMap;

/// `datadog.trace.Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub resource: String,
    #[prost(uint64, tag = "4")]
    pub trace_id: u64,
    #[prost(uint64, tag = "5")]
    pub span_id: u64,
    #[prost(uint64, tag = "6")]
    pub parent_id: u64,
    #[prost(int64, tag = "7")]
    pub start: i64,
    #[prost(int64, tag = "8")]
    pub duration: i64,
    #[prost(int32, tag = "9")]
    pub error: i32,
    #[prost(btree_map = "string, string", tag = "10")]
    pub meta: BTreeMap<String, String>,
    #[prost(btree_map = "string, double", tag = "11")]
    pub metrics: BTreeMap<String, f64>,
    #[prost(string, tag = "12")]
    pub r#type: String,
}

/// `datadog.trace.TraceChunk`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceChunk {
    #[prost(int32, tag = "1")]
    pub priority: i32,
    #[prost(string, tag = "2")]
    pub origin: String,
    #[prost(message, repeated, tag = "3")]
    pub spans: Vec<Span>,
    #[prost(btree_map = "string, string", tag = "4")]
    pub tags: BTreeMap<String, String>,
    #[prost(bool, tag = "5")]
    pub dropped_trace: bool,
}

/// `datadog.trace.TracerPayload`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TracerPayload {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(string, tag = "2")]
    pub language_name: String,
    #[prost(string, tag = "3")]
    pub language_version: String,
    #[prost(string, tag = "4")]
    pub tracer_version: String,
    #[prost(string, tag = "5")]
    pub runtime_id: String,
    #[prost(message, repeated, tag = "6")]
    pub chunks: Vec<TraceChunk>,
    #[prost(btree_map = "string, string", tag = "7")]
    pub tags: BTreeMap<String, String>,
    #[prost(string, tag = "8")]
    pub env: String,
    #[prost(string, tag = "9")]
    pub hostname: String,
    #[prost(string, tag = "10")]
    pub app_version: String,
}

/// `datadog.trace.AgentPayload`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentPayload {
    #[prost(string, tag = "1")]
    pub host_name: String,
    #[prost(string, tag = "2")]
    pub env: String,
    #[prost(message, repeated, tag = "5")]
    pub tracer_payloads: Vec<TracerPayload>,
    #[prost(btree_map = "string, string", tag = "6")]
    pub tags: BTreeMap<String, String>,
    #[prost(string, tag = "7")]
    pub agent_version: String,
    #[prost(double, tag = "8")]
    pub target_tps: f64,
    #[prost(double, tag = "9")]
    pub error_tps: f64,
    #[prost(bool, tag = "10")]
    pub rare_sampler_enabled: bool,
}

/// The field number of `AgentPayload.tracerPayloads`.
const TRACER_PAYLOADS_FIELD: u32 = 5;

impl From<DdSpan> for Span {
    fn from(s: DdSpan) -> Span {
        Span {
            service: s.service,
            name: s.name,
            resource: s.resource,
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_id: s.parent_id,
            start: s.start,
            duration: s.duration,
            error: s.error,
            meta: s.meta,
            metrics: s.metrics,
            r#type: s.r#type,
        }
    }
}

fn chunk(c: Chunk) -> TraceChunk {
    TraceChunk {
        priority: c.priority,
        spans: c.spans.into_iter().map(Span::from).collect(),
        ..TraceChunk::default()
    }
}

/// The prefix of every intake request: `AgentPayload` without payloads.
pub fn prefix(hostname: &str, agent_version: &str, target_tps: f64, error_tps: f64) -> Bytes {
    let head = AgentPayload {
        host_name: hostname.to_string(),
        env: super::convert::DEFAULT_ENV.to_string(),
        agent_version: agent_version.to_string(),
        target_tps,
        error_tps,
        ..AgentPayload::default()
    };
    Bytes::from(head.encode_to_vec())
}

/// One `tracerPayloads` entry (key, length, message).
fn entry(tp: &TracerPayload) -> Bytes {
    let len = tp.encoded_len();
    let mut out = Vec::with_capacity(len + 10);
    prost::encoding::encode_key(
        TRACER_PAYLOADS_FIELD,
        prost::encoding::WireType::LengthDelimited,
        &mut out,
    );
    prost::encoding::encode_varint(len as u64, &mut out);
    tp.encode_raw(&mut out);
    Bytes::from(out)
}

/// One resource's traces as `tracerPayloads` entries of at most `budget`
/// bytes each (a single chunk larger than that goes alone). Returns
/// (entry, spans in it).
pub fn encode_resource(rt: ResourceTraces, budget: usize) -> Vec<(Bytes, u32)> {
    let head = TracerPayload {
        container_id: rt.container_id,
        language_name: rt.language,
        tracer_version: rt.tracer_version,
        env: rt.env,
        hostname: rt.hostname,
        app_version: rt.app_version,
        ..TracerPayload::default()
    };
    let head_len = head.encoded_len() + 16;
    let mut out = Vec::new();
    let mut current = head.clone();
    let mut size = head_len;
    let mut spans = 0u32;
    for c in rt.chunks {
        let n = c.spans.len() as u32;
        let tc = chunk(c);
        let len = tc.encoded_len() + 6;
        if !current.chunks.is_empty() && size + len > budget {
            let full = std::mem::replace(&mut current, head.clone());
            out.push((entry(&full), spans));
            size = head_len;
            spans = 0;
        }
        size += len;
        spans += n;
        current.chunks.push(tc);
    }
    if !current.chunks.is_empty() {
        out.push((entry(&current), spans));
    }
    out
}
