//! OTLP/JSON codec: the JSON encoding of the OTLP export requests and
//! responses, as used by OTLP/HTTP with `Content-Type: application/json` and
//! by the Collector's file exporter.
//!
//! OTLP/JSON is the proto3 JSON mapping with OTLP's exceptions
//! (open-telemetry/opentelemetry-proto `docs/specification.md`):
//! trace/span ids are hex rather than base64, enums are integers, and keys
//! are lowerCamelCase. Decoding is lenient where the spec asks receivers to
//! be: snake_case keys, enum names, 64-bit integers as numbers or strings,
//! `null` as "absent", unknown fields skipped. Encoding is canonical:
//! lowerCamelCase, lowercase hex ids, integer enums, 64-bit integers as
//! decimal strings, default values omitted.
//!
//! Decoding runs a small pull parser ([`parse`]) straight into the prost
//! structs; no intermediate `serde_json::Value` is built. Encoding writes
//! bytes directly into the caller's buffer.

mod base64;
mod decode;
mod encode;
mod parse;
#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use encode::Encode;
use parse::{Decode, Parser};

/// A body that is not valid OTLP/JSON. `path` names the offending value,
/// e.g. `resourceSpans[0].scopeSpans[1].spans[3].traceId` (`$` for the
/// top level). Messages quote at most 64 bytes of input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OTLP/JSON at {path}: {message}")]
pub struct JsonError {
    pub path: String,
    pub message: String,
}

fn decode<M: Decode>(body: &[u8]) -> Result<M, JsonError> {
    let mut p = Parser::new(body)?;
    let m = p.message::<M>()?;
    p.finish()?;
    Ok(m)
}

/// Decode an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    decode(body)
}

/// Decode an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    decode(body)
}

/// Decode an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest, JsonError> {
    decode(body)
}

/// Decode a server's OTLP/JSON `ExportTraceServiceResponse`.
pub fn decode_trace_response(body: &[u8]) -> Result<ExportTraceServiceResponse, JsonError> {
    decode(body)
}

/// Decode a server's OTLP/JSON `ExportMetricsServiceResponse`.
pub fn decode_metrics_response(body: &[u8]) -> Result<ExportMetricsServiceResponse, JsonError> {
    decode(body)
}

/// Decode a server's OTLP/JSON `ExportLogsServiceResponse`.
pub fn decode_logs_response(body: &[u8]) -> Result<ExportLogsServiceResponse, JsonError> {
    decode(body)
}

/// Append `req` as OTLP/JSON to `out`.
pub fn encode_traces(req: &ExportTraceServiceRequest, out: &mut Vec<u8>) {
    req.encode(out);
}

/// Append `req` as OTLP/JSON to `out`.
pub fn encode_metrics(req: &ExportMetricsServiceRequest, out: &mut Vec<u8>) {
    req.encode(out);
}

/// Append `req` as OTLP/JSON to `out`.
pub fn encode_logs(req: &ExportLogsServiceRequest, out: &mut Vec<u8>) {
    req.encode(out);
}

/// Append `r` as OTLP/JSON to `out`.
pub fn encode_trace_response(r: &ExportTraceServiceResponse, out: &mut Vec<u8>) {
    r.encode(out);
}

/// Append `r` as OTLP/JSON to `out`.
pub fn encode_metrics_response(r: &ExportMetricsServiceResponse, out: &mut Vec<u8>) {
    r.encode(out);
}

/// Append `r` as OTLP/JSON to `out`.
pub fn encode_logs_response(r: &ExportLogsServiceResponse, out: &mut Vec<u8>) {
    r.encode(out);
}

/// Writes `s` as a JSON string literal (quotes included), escaping per RFC 8259.
/// Shared with exporters that build JSON documents by hand.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    encode::write_str(out, s);
}

/// Appends a [`Signal`](crate::Signal) as the OTLP/JSON export request of its
/// kind, without copying the data into a request struct.
pub fn encode_signal(signal: &crate::Signal, out: &mut Vec<u8>) {
    encode::encode_signal(signal, out);
}

/// Standard base64 (with padding), e.g. for HTTP basic auth headers.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    base64::encode_into(&mut out, data);
    // The encoder writes only ASCII.
    String::from_utf8(out).unwrap_or_default()
}
