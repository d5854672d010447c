//! Builds realistic OTLP trace export requests and pre-encodes them.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

/// Spans per trace inside one request: a root span and its children.
const SPANS_PER_TRACE: usize = 10;

const SERVICES: [&str; 4] = ["checkout", "cart", "payment", "frontend"];
const ROUTES: [&str; 6] = [
    "/api/v1/users/{id}",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/products/{sku}",
    "/health",
    "/api/v1/orders/{id}/items",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CHILD_NAMES: [&str; 5] = [
    "SELECT orders",
    "redis GET",
    "HTTP POST payment-gateway",
    "render template",
    "kafka publish orders",
];

/// What a request looks like.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub spans_per_request: usize,
    pub attrs_per_span: usize,
}

fn kv(key: impl Into<String>, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn rand_bytes(n: usize, rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
    if v.iter().all(|b| *b == 0) {
        v[0] = 1; // all-zero ids are invalid in OTLP
    }
    v
}

/// The `i`-th attribute of a span: a catalogue of common HTTP/server attributes
/// of mixed types (strings, ints, bools, doubles). Past the catalogue the keys
/// get an index suffix so every span has exactly `attrs_per_span` distinct keys.
fn attribute(i: usize, rng: &mut fastrand::Rng) -> KeyValue {
    use any_value::Value::{BoolValue, DoubleValue, IntValue};
    const CATALOGUE: usize = 12;
    let (key, value) = match i % CATALOGUE {
        0 => (
            "http.request.method",
            s(METHODS[rng.usize(..METHODS.len())]),
        ),
        1 => ("http.route", s(ROUTES[rng.usize(..ROUTES.len())])),
        2 => ("user.id", s(format!("user-{:08x}", rng.u32(..)))),
        3 => (
            "http.response.status_code",
            IntValue([200, 200, 200, 201, 404, 500][rng.usize(..6)]),
        ),
        4 => ("server.address", s("api.internal.example.com")),
        5 => ("server.port", IntValue(8080)),
        6 => ("error", BoolValue(rng.u8(..) < 10)),
        7 => (
            "url.path",
            s(format!("/api/v1/users/{}", rng.u32(1..1_000_000))),
        ),
        8 => ("http.request.body.size", IntValue(rng.i64(0..65_536))),
        9 => ("cache.hit", BoolValue(rng.bool())),
        10 => ("network.protocol.version", s("2")),
        _ => ("sampling.ratio", DoubleValue(0.25)),
    };
    if i < CATALOGUE {
        kv(key, value)
    } else {
        kv(format!("{key}.{}", i / CATALOGUE), value)
    }
}

/// Builds one request: one resource, one scope, `spans_per_request` spans
/// grouped in traces of up to 10 spans (root + children) with fresh random ids.
pub fn build_request(shape: Shape, rng: &mut fastrand::Rng) -> ExportTraceServiceRequest {
    let service = SERVICES[rng.usize(..SERVICES.len())];
    let resource = Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv("service.version", s("1.4.2")),
            kv("service.instance.id", s(format!("{:016x}", rng.u64(..)))),
            kv("host.name", s(format!("node-{}", rng.u8(..16)))),
            kv("deployment.environment.name", s("production")),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.language", s("rust")),
            kv("telemetry.sdk.version", s("0.31.0")),
        ],
        ..Default::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1_700_000_000_000_000_000);
    let mut spans = Vec::with_capacity(shape.spans_per_request);
    let mut trace_id = Vec::new();
    let mut root_id = Vec::new();
    let mut root_start = now;
    for i in 0..shape.spans_per_request {
        let is_root = i % SPANS_PER_TRACE == 0;
        let span_id = rand_bytes(8, rng);
        if is_root {
            trace_id = rand_bytes(16, rng);
            root_id = span_id.clone();
            root_start = now - rng.u64(1_000_000..5_000_000_000);
        }
        let start = root_start + if is_root { 0 } else { rng.u64(0..1_000_000) };
        let end = start + rng.u64(50_000..50_000_000);
        let error = rng.u8(..) < 5;
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id,
            parent_span_id: if is_root { Vec::new() } else { root_id.clone() },
            flags: 0x301, // sampled + parent-is-remote known
            name: if is_root {
                format!(
                    "{} {}",
                    METHODS[rng.usize(..METHODS.len())],
                    ROUTES[rng.usize(..ROUTES.len())]
                )
            } else {
                CHILD_NAMES[rng.usize(..CHILD_NAMES.len())].to_string()
            },
            kind: if is_root {
                span::SpanKind::Server as i32
            } else {
                span::SpanKind::Client as i32
            },
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: (0..shape.attrs_per_span)
                .map(|a| attribute(a, rng))
                .collect(),
            status: Some(Status {
                code: if error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                message: if error {
                    "upstream timeout".into()
                } else {
                    String::new()
                },
            }),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry-instrumentation-http".into(),
                    version: "0.31.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
    }
}

/// A pool of distinct pre-encoded requests (distinct trace and span ids),
/// sent round-robin so the generator never re-encodes.
pub fn build_pool(shape: Shape, pool: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..pool.max(1))
        .map(|_| Bytes::from(build_request(shape, &mut rng).encode_to_vec()))
        .collect()
}

/// Where one trace's id sits in an encoded request, so a sender can give
/// the trace a fresh id without re-encoding.
#[derive(Debug, Clone)]
pub struct TraceSlot {
    /// Byte offsets of the 16-byte trace id, one per span of the trace.
    pub offsets: Vec<usize>,
    /// Whether a span of the trace has status ERROR.
    pub error: bool,
}

/// A pre-encoded request and its traces.
#[derive(Debug, Clone)]
pub struct PoolEntry {
    pub bytes: Bytes,
    pub traces: Vec<TraceSlot>,
}

impl PoolEntry {
    /// A copy of the request with a fresh random id for every trace; calls
    /// `seen(id, slot)` for each.
    pub fn with_fresh_ids(
        &self,
        rng: &mut fastrand::Rng,
        mut seen: impl FnMut(&[u8; 16], &TraceSlot),
    ) -> Bytes {
        let mut buf = self.bytes.to_vec();
        for slot in &self.traces {
            let mut id = rng.u128(1..).to_le_bytes();
            if id == [0; 16] {
                id[0] = 1;
            }
            for &at in &slot.offsets {
                buf[at..at + 16].copy_from_slice(&id);
            }
            seen(&id, slot);
        }
        Bytes::from(buf)
    }
}

/// Like [`build_pool`], and records where each trace id sits.
pub fn build_pool_entries(shape: Shape, pool: usize, seed: u64) -> anyhow::Result<Vec<PoolEntry>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..pool.max(1))
        .map(|_| {
            let req = build_request(shape, &mut rng);
            let bytes = req.encode_to_vec();
            let mut traces: Vec<(Vec<u8>, usize, bool)> = Vec::new();
            for sp in req
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                let error = sp
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == status::StatusCode::Error as i32);
                match traces.iter_mut().find(|t| t.0 == sp.trace_id) {
                    Some(t) => {
                        t.1 += 1;
                        t.2 |= error;
                    }
                    None => traces.push((sp.trace_id.clone(), 1, error)),
                }
            }
            let traces = traces
                .into_iter()
                .map(|(id, spans, error)| {
                    let offsets: Vec<usize> = bytes
                        .windows(16)
                        .enumerate()
                        .filter(|(_, w)| *w == id.as_slice())
                        .map(|(i, _)| i)
                        .collect();
                    // A random id could in theory also appear inside another
                    // field; then it would not be one offset per span.
                    anyhow::ensure!(
                        offsets.len() == spans,
                        "trace id found {} times for {spans} spans",
                        offsets.len()
                    );
                    Ok(TraceSlot { offsets, error })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(PoolEntry {
                bytes: Bytes::from(bytes),
                traces,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn request_has_n_spans_with_m_distinct_attributes() {
        let mut rng = fastrand::Rng::with_seed(7);
        for (n, m) in [(100, 10), (7, 0), (1, 30)] {
            let shape = Shape {
                spans_per_request: n,
                attrs_per_span: m,
            };
            let req = build_request(shape, &mut rng);
            let spans: Vec<&Span> = req
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .collect();
            assert_eq!(spans.len(), n);
            for sp in &spans {
                assert_eq!(sp.attributes.len(), m);
                let keys: HashSet<&str> = sp.attributes.iter().map(|a| a.key.as_str()).collect();
                assert_eq!(keys.len(), m, "attribute keys must be distinct");
                assert_eq!(sp.trace_id.len(), 16);
                assert_eq!(sp.span_id.len(), 8);
                assert!(sp.end_time_unix_nano > sp.start_time_unix_nano);
            }
        }
    }

    #[test]
    fn attributes_have_mixed_types() {
        let mut rng = fastrand::Rng::with_seed(1);
        let kinds: HashSet<std::mem::Discriminant<any_value::Value>> = (0..10)
            .map(|i| {
                std::mem::discriminant(
                    attribute(i, &mut rng)
                        .value
                        .unwrap()
                        .value
                        .as_ref()
                        .unwrap(),
                )
            })
            .collect();
        assert!(kinds.len() >= 3, "strings, ints and bools expected");
    }

    #[test]
    fn pool_requests_are_distinct_and_decode() {
        let shape = Shape {
            spans_per_request: 20,
            attrs_per_span: 10,
        };
        let pool = build_pool(shape, 8, 42);
        let distinct: HashSet<&[u8]> = pool.iter().map(|b| b.as_ref()).collect();
        assert_eq!(distinct.len(), 8);
        let decoded = ExportTraceServiceRequest::decode(pool[0].clone()).unwrap();
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 20);
    }

    #[test]
    fn fresh_ids_replace_every_trace_id() {
        let shape = Shape {
            spans_per_request: 30,
            attrs_per_span: 10,
        };
        let pool = build_pool_entries(shape, 2, 3).unwrap();
        assert_eq!(pool[0].traces.len(), 3);
        let mut rng = fastrand::Rng::with_seed(11);
        let mut ids = Vec::new();
        let bytes =
            pool[0].with_fresh_ids(&mut rng, |id, slot| ids.push((*id, slot.offsets.len())));
        let req = ExportTraceServiceRequest::decode(bytes).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        for (i, sp) in spans.iter().enumerate() {
            assert_eq!(sp.trace_id, ids[i / 10].0.to_vec());
        }
        assert!(ids.iter().all(|(_, n)| *n == 10));
        let original = ExportTraceServiceRequest::decode(pool[0].bytes.clone()).unwrap();
        assert_ne!(
            original.resource_spans[0].scope_spans[0].spans[0].trace_id,
            spans[0].trace_id
        );
        assert_eq!(
            original.resource_spans[0].scope_spans[0].spans[0].name,
            spans[0].name
        );
    }
}
