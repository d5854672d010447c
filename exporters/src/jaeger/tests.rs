//! The `jaeger` exporter: the OTLP → Jaeger mapping (checked on the decoded
//! wire bytes), request splitting and merging, and the config.

use super::config::*;
use super::encode::*;
use super::proto::*;
use super::*;
use crate::testdata::{i, s};
use confluo_pipeline::attrs;
use confluo_pipeline::proto::common::{AnyValue, InstrumentationScope, KeyValue as OtlpKv};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{
    span as otlp_span, ResourceSpans, ScopeSpans, Span as OtlpSpan, Status,
};
use confluo_pipeline::ComponentKind;
use prost::Message;

const T0: u64 = 1_700_000_000_123_456_789;
const TRACE: [u8; 16] = [
    0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88, 0x79, 0x6a, 0x5b, 0x4c, 0x3d, 0x2e, 0x1f, 0x00,
];
const SPAN: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3];
const PARENT: [u8; 8] = [0xca, 0xfe, 0, 0, 0, 0, 0, 7];

fn kv(key: &str, value: AnyValue) -> OtlpKv {
    attrs::key_value(key, value)
}

fn resource_spans(resource: Vec<OtlpKv>, spans: Vec<OtlpSpan>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "io.confluo.lib".into(),
                version: "2.0.1".into(),
                ..Default::default()
            }),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// Encodes and decodes back through the wire `PostSpansRequest`.
fn wire(rs: &[ResourceSpans]) -> Vec<proto::Batch> {
    encode_requests(rs, MAX_REQUEST_BYTES)
        .into_iter()
        .map(|e| {
            let body = e.body();
            assert_eq!(body.len(), e.wire_len());
            PostSpansRequest::decode(&body[..])
                .expect("a valid PostSpansRequest")
                .batch
                .expect("batch set")
        })
        .collect()
}

fn one_span(span: OtlpSpan) -> Span {
    let batches = wire(&[resource_spans(vec![s("service.name", "svc")], vec![span])]);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].spans.len(), 1);
    batches[0].spans[0].clone()
}

fn full_span() -> OtlpSpan {
    OtlpSpan {
        trace_id: TRACE.to_vec(),
        span_id: SPAN.to_vec(),
        parent_span_id: PARENT.to_vec(),
        trace_state: "vendor=abc,other=1".into(),
        name: "GET /cart".into(),
        kind: otlp_span::SpanKind::Server as i32,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 2_500_000_001,
        attributes: vec![
            s("http.method", "GET"),
            i("http.status_code", 503),
            kv("ratio", attrs::double(0.25)),
            kv("cached", attrs::boolean(false)),
        ],
        dropped_attributes_count: 3,
        events: vec![otlp_span::Event {
            time_unix_nano: T0 + 1_000,
            name: "exception".into(),
            attributes: vec![s("exception.message", "boom"), i("attempt", 2)],
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 0,
        links: vec![otlp_span::Link {
            trace_id: vec![0xaa; 16],
            span_id: vec![0xbb; 8],
            attributes: vec![s("link.kind", "batch")],
            ..Default::default()
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "upstream down".into(),
            code: 2,
        }),
        ..Default::default()
    }
}

fn str_kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        v_type: ValueType::String as i32,
        v_str: v.into(),
        ..Default::default()
    }
}

fn int_kv(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        v_type: ValueType::Int64 as i32,
        v_int64: v,
        ..Default::default()
    }
}

fn bool_kv(key: &str, v: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        v_type: ValueType::Bool as i32,
        v_bool: v,
        ..Default::default()
    }
}

fn float_kv(key: &str, v: f64) -> KeyValue {
    KeyValue {
        key: key.into(),
        v_type: ValueType::Float64 as i32,
        v_float64: v,
        ..Default::default()
    }
}

#[test]
fn maps_a_span_field_by_field() {
    let j = one_span(full_span());
    assert_eq!(j.trace_id, TRACE.to_vec());
    assert_eq!(j.span_id, SPAN.to_vec());
    assert_eq!(j.operation_name, "GET /cart");
    assert_eq!(j.flags, 0);
    assert_eq!(
        j.start_time,
        Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_789
        })
    );
    assert_eq!(
        j.duration,
        Some(Duration {
            seconds: 2,
            nanos: 500_000_001
        })
    );
    assert_eq!(
        j.tags,
        vec![
            str_kv("otel.scope.name", "io.confluo.lib"),
            str_kv("otel.scope.version", "2.0.1"),
            str_kv("http.method", "GET"),
            int_kv("http.status_code", 503),
            float_kv("ratio", 0.25),
            bool_kv("cached", false),
            str_kv("span.kind", "server"),
            str_kv("otel.status_code", "ERROR"),
            bool_kv("error", true),
            str_kv("otel.status_description", "upstream down"),
            str_kv("w3c.tracestate", "vendor=abc,other=1"),
            int_kv("otel.dropped_attributes_count", 3),
            int_kv("otel.dropped_links_count", 5),
        ]
    );
    assert_eq!(
        j.references,
        vec![
            SpanRef {
                trace_id: TRACE.to_vec(),
                span_id: PARENT.to_vec(),
                ref_type: SpanRefType::ChildOf as i32,
            },
            SpanRef {
                trace_id: vec![0xaa; 16],
                span_id: vec![0xbb; 8],
                ref_type: SpanRefType::FollowsFrom as i32,
            },
        ]
    );
    assert_eq!(
        j.logs,
        vec![Log {
            timestamp: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_457_789
            }),
            fields: vec![
                str_kv("event", "exception"),
                str_kv("exception.message", "boom"),
                int_kv("attempt", 2),
            ],
        }]
    );
    // The batch carries the process; spans do not repeat it.
    assert_eq!(j.process, None);
    assert!(j.process_id.is_empty() && j.warnings.is_empty());
}

#[test]
fn attribute_types_are_kept_and_composites_become_json() {
    let span = OtlpSpan {
        trace_id: TRACE.to_vec(),
        span_id: SPAN.to_vec(),
        attributes: vec![
            kv(
                "bin",
                AnyValue {
                    value: Some(
                        confluo_pipeline::proto::common::any_value::Value::BytesValue(vec![
                            0, 255, 7,
                        ]),
                    ),
                },
            ),
            kv(
                "arr",
                attrs::array(vec![
                    attrs::string("a"),
                    attrs::int(2),
                    attrs::boolean(true),
                ]),
            ),
            kv(
                "map",
                attrs::kvlist(vec![
                    kv("k", attrs::string("v")),
                    kv("n", attrs::double(1.5)),
                ]),
            ),
            OtlpKv {
                key: "empty".into(),
                value: None,
                ..Default::default()
            },
            i("neg", i64::MIN),
        ],
        ..Default::default()
    };
    let j = one_span(span);
    assert_eq!(
        j.tags[2..],
        [
            KeyValue {
                key: "bin".into(),
                v_type: ValueType::Binary as i32,
                v_binary: vec![0, 255, 7],
                ..Default::default()
            },
            str_kv("arr", r#"["a",2,true]"#),
            str_kv("map", r#"{"k":"v","n":1.5}"#),
            str_kv("empty", ""),
            int_kv("neg", i64::MIN),
        ]
    );
    // Unspecified kind and unset status add no tags.
    assert_eq!(j.tags.len(), 7);
}

#[test]
fn status_and_kind_tags() {
    let tags_of = |kind: otlp_span::SpanKind, code: i32, message: &str| {
        one_span(OtlpSpan {
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            kind: kind as i32,
            status: Some(Status {
                message: message.into(),
                code,
            }),
            ..Default::default()
        })
        .tags[2..]
            .to_vec()
    };
    assert_eq!(
        tags_of(otlp_span::SpanKind::Client, 1, ""),
        vec![
            str_kv("span.kind", "client"),
            str_kv("otel.status_code", "OK")
        ]
    );
    assert_eq!(
        tags_of(otlp_span::SpanKind::Producer, 0, "note"),
        vec![
            str_kv("span.kind", "producer"),
            str_kv("otel.status_description", "note")
        ]
    );
    assert_eq!(
        tags_of(otlp_span::SpanKind::Consumer, 0, ""),
        vec![str_kv("span.kind", "consumer")]
    );
    // The translator tags internal spans too.
    assert_eq!(
        tags_of(otlp_span::SpanKind::Internal, 0, ""),
        vec![str_kv("span.kind", "internal")]
    );
    assert_eq!(tags_of(otlp_span::SpanKind::Unspecified, 0, ""), vec![]);
}

#[test]
fn process_from_the_resource() {
    let p = process(Some(&Resource {
        attributes: vec![
            s("host.name", "node-1"),
            s("service.name", "checkout"),
            i("process.pid", 42),
        ],
        ..Default::default()
    }));
    assert_eq!(p.service_name, "checkout");
    assert_eq!(
        p.tags,
        vec![str_kv("host.name", "node-1"), int_kv("process.pid", 42)]
    );
    assert_eq!(process(None).service_name, NO_SERVICE_NAME);
    let unnamed = process(Some(&Resource {
        attributes: vec![s("host.name", "h")],
        ..Default::default()
    }));
    assert_eq!(unnamed.service_name, NO_SERVICE_NAME);
    assert_eq!(unnamed.tags, vec![str_kv("host.name", "h")]);
    // A non-string service.name is rendered, not dropped.
    assert_eq!(
        process(Some(&Resource {
            attributes: vec![i("service.name", 7)],
            ..Default::default()
        }))
        .service_name,
        "7"
    );
}

#[test]
fn parent_first_then_links_and_a_link_to_the_parent_only_retypes_it() {
    let mut span = full_span();
    span.links = vec![
        otlp_span::Link {
            trace_id: vec![0x11; 16],
            span_id: vec![0x22; 8],
            attributes: vec![s("opentracing.ref_type", "child_of")],
            ..Default::default()
        },
        otlp_span::Link {
            trace_id: TRACE.to_vec(),
            span_id: PARENT.to_vec(),
            attributes: vec![s("opentracing.ref_type", "follows_from")],
            ..Default::default()
        },
    ];
    let refs = one_span(span).references;
    assert_eq!(
        refs,
        vec![
            SpanRef {
                trace_id: TRACE.to_vec(),
                span_id: PARENT.to_vec(),
                ref_type: SpanRefType::FollowsFrom as i32,
            },
            SpanRef {
                trace_id: vec![0x11; 16],
                span_id: vec![0x22; 8],
                ref_type: SpanRefType::ChildOf as i32,
            },
        ]
    );
    // No parent (absent or all zeros), no links: no references.
    for parent in [vec![], vec![0u8; 8]] {
        let refs = one_span(OtlpSpan {
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            parent_span_id: parent,
            ..Default::default()
        })
        .references;
        assert!(refs.is_empty(), "{refs:?}");
    }
}

#[test]
fn an_event_attribute_named_event_wins_over_the_name() {
    let mut span = full_span();
    span.events = vec![
        otlp_span::Event {
            time_unix_nano: T0,
            name: "ignored".into(),
            attributes: vec![s("event", "explicit")],
            dropped_attributes_count: 0,
        },
        otlp_span::Event {
            time_unix_nano: T0 + 5,
            name: String::new(),
            attributes: vec![],
            dropped_attributes_count: 0,
        },
    ];
    let logs = one_span(span).logs;
    assert_eq!(logs[0].fields, vec![str_kv("event", "explicit")]);
    assert!(logs[1].fields.is_empty());
    assert_eq!(logs[1].timestamp.unwrap().nanos, 123_456_794);
}

#[test]
fn negative_durations_and_odd_ids_do_not_break_the_wire() {
    let j = one_span(OtlpSpan {
        trace_id: vec![1, 2, 3],
        span_id: vec![9; 10],
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 - 1_500_000_000,
        ..Default::default()
    });
    let mut want_trace = vec![0u8; 13];
    want_trace.extend([1, 2, 3]);
    assert_eq!(j.trace_id, want_trace);
    assert_eq!(j.span_id, vec![9; 8]);
    assert_eq!(
        j.duration,
        Some(Duration {
            seconds: -1,
            nanos: -500_000_000
        })
    );
}

#[test]
fn one_batch_per_resource_and_none_for_resources_without_spans() {
    let span = |n: u8| OtlpSpan {
        trace_id: TRACE.to_vec(),
        span_id: vec![n; 8],
        name: format!("op-{n}"),
        ..Default::default()
    };
    let batches = wire(&[
        resource_spans(vec![s("service.name", "a")], vec![span(1), span(2)]),
        resource_spans(vec![s("service.name", "empty")], vec![]),
        resource_spans(vec![s("service.name", "b")], vec![span(3)]),
    ]);
    let got: Vec<(String, Vec<String>)> = batches
        .iter()
        .map(|b| {
            (
                b.process.as_ref().unwrap().service_name.clone(),
                b.spans.iter().map(|s| s.operation_name.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), vec!["op-1".into(), "op-2".into()]),
            ("b".into(), vec!["op-3".into()]),
        ]
    );
}

#[test]
fn large_resources_split_under_the_limit() {
    let spans: Vec<OtlpSpan> = (0..50u8)
        .map(|n| OtlpSpan {
            trace_id: TRACE.to_vec(),
            span_id: vec![n + 1; 8],
            attributes: vec![s("payload", &"x".repeat(1000))],
            ..Default::default()
        })
        .collect();
    let rs = [resource_spans(vec![s("service.name", "big")], spans)];
    let max = 10_000;
    let reqs = encode_requests(&rs, max);
    assert!(reqs.len() >= 5, "{} requests", reqs.len());
    assert!(reqs.iter().all(|r| r.wire_len() <= max));
    assert_eq!(reqs.iter().map(|r| r.items).sum::<usize>(), 50);
    // Every request names the process; span order is kept.
    let mut ids = Vec::new();
    for r in &reqs {
        let batch = PostSpansRequest::decode(&r.body()[..])
            .unwrap()
            .batch
            .unwrap();
        assert_eq!(batch.process.unwrap().service_name, "big");
        ids.extend(batch.spans.iter().map(|s| s.span_id[0]));
    }
    assert_eq!(ids, (1..=50).collect::<Vec<u8>>());
    // A single span over the limit still goes, alone.
    let alone = encode_requests(&rs, 10);
    assert_eq!(alone.len(), 50);
}

fn request(service: &str, names: &[&str]) -> JaegerRequest {
    let spans = names
        .iter()
        .map(|n| OtlpSpan {
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            name: n.to_string(),
            ..Default::default()
        })
        .collect();
    let mut reqs = encode_requests(
        &[resource_spans(vec![s("service.name", service)], spans)],
        MAX_REQUEST_BYTES,
    );
    assert_eq!(reqs.len(), 1);
    JaegerRequest::new(reqs.remove(0))
}

#[test]
fn requests_merge_only_with_the_same_process() {
    let mut a = request("svc", &["a1"]);
    let before = a.body();
    assert!(a.merge(request("svc", &["a2", "a3"])).is_ok());
    assert_eq!(a.item_count(), 3);
    let after = a.body();
    assert_ne!(before, after, "the body is rebuilt after a merge");
    let batch = PostSpansRequest::decode(&after[..]).unwrap().batch.unwrap();
    let names: Vec<_> = batch
        .spans
        .iter()
        .map(|s| s.operation_name.as_str())
        .collect();
    assert_eq!(names, ["a1", "a2", "a3"]);
    assert_eq!(batch.process.unwrap().service_name, "svc");
    assert_eq!(a.byte_size(), after.len());

    let other = a.merge(request("other", &["b"])).unwrap_err();
    assert_eq!(other.item_count(), 1);
    assert_eq!(a.item_count(), 3);
}

#[tokio::test]
async fn the_sender_refuses_other_signals() {
    let grpc = GrpcSender::new(
        &JaegerConfig {
            endpoint: Some("127.0.0.1".into()),
            protocol: Protocol::GrpcApiV2,
            ..Default::default()
        }
        .grpc_config(),
        "jaeger".into(),
    );
    let sender = ApiV2Sender::new(grpc.unwrap());
    let err = sender
        .encode(&confluo_pipeline::Batch::new(crate::testdata::logs()))
        .unwrap_err();
    assert!(err.contains("traces only"), "{err}");
    let reqs = sender
        .encode(&confluo_pipeline::Batch::new(crate::testdata::traces()))
        .unwrap();
    assert_eq!(reqs.iter().map(|r| r.item_count()).sum::<usize>(), 2);
}

// ------------------------------------------------------------------ config

fn config(yaml: &str) -> JaegerConfig {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let problems: Vec<_> = JaegerFactory
        .check(&node)
        .into_iter()
        .filter(ConfigError::is_error)
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    node.deserialize().unwrap()
}

fn errors(yaml: &str) -> Vec<String> {
    JaegerFactory
        .check(&Node::from_yaml_str("t.yaml", yaml).unwrap())
        .into_iter()
        .filter(ConfigError::is_error)
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn defaults_follow_the_protocol() {
    let c = config("{endpoint: jaeger}");
    assert_eq!(c.protocol, Protocol::OtlpGrpc);
    assert_eq!(c.compression(), Compression::Gzip);
    let g = c.grpc_config();
    assert_eq!(g.endpoint.as_deref(), Some("jaeger:4317"));
    let t = g.target().unwrap();
    assert!(t.tls, "TLS unless tls.insecure");
    assert_eq!(t.uri.to_string(), "http://jaeger:4317/");

    let c = config("{protocol: grpc_api_v2, endpoint: 'http://jaeger', tls: {insecure: true}}");
    assert_eq!(c.compression(), Compression::None);
    let t = c.grpc_config().target().unwrap();
    assert!(!t.tls);
    assert_eq!(t.uri.to_string(), "http://jaeger:14250/");

    let c = config("{protocol: grpc_api_v2, endpoint: 'jaeger:1234', compression: gzip}");
    assert_eq!(c.compression(), Compression::Gzip);
    assert_eq!(c.grpc_config().endpoint.as_deref(), Some("jaeger:1234"));
}

#[test]
fn default_ports() {
    assert_eq!(with_default_port("h", 1), "h:1");
    assert_eq!(with_default_port(" https://h/ ", 1), "https://h:1");
    assert_eq!(with_default_port("dns:///h", 1), "dns:///h:1");
    assert_eq!(with_default_port("[::1]", 1), "[::1]:1");
    assert_eq!(with_default_port("h:2", 1), "h:2");
    // Left for the endpoint parser to explain.
    assert_eq!(with_default_port("h/path", 1), "h/path");
    assert_eq!(with_default_port("ftp://h", 1), "ftp://h");
}

#[test]
fn bad_configs_are_explained() {
    let e = errors("{}");
    assert!(e.iter().any(|e| e.contains("endpoint")), "{e:?}");
    let e = errors("{endpoint: j, protocol: thrift_http}");
    assert!(
        e.iter()
            .any(|e| e.contains("protocol") && e.contains("grpc_api_v2")),
        "{e:?}"
    );
    let e = errors("{endpoint: j, keepalive: {}}");
    assert!(e.iter().any(|e| e.contains("keepalive")), "{e:?}");
    let e = errors("{endpoint: j, compression: zstd}");
    assert!(e.iter().any(|e| e.contains("compression")), "{e:?}");
    let e = errors("{endpoint: 'ftp://j'}");
    assert!(e.iter().any(|e| e.contains("scheme")), "{e:?}");
    let e = errors("{endpoint: j, headers: {'bad header': x}}");
    assert!(e.iter().any(|e| e.contains("bad header")), "{e:?}");
}

#[tokio::test]
async fn the_factory_builds_both_protocols_for_traces_only() {
    assert_eq!(JaegerFactory.signals(), SignalSet::only(SignalKind::Traces));
    for yaml in [
        "{endpoint: '127.0.0.1:1', tls: {insecure: true}}",
        "{endpoint: '127.0.0.1:1', protocol: grpc_api_v2, tls: {insecure: true}}",
    ] {
        let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
        let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "jaeger");
        JaegerFactory
            .create(ctx, &node, SignalSet::only(SignalKind::Traces))
            .unwrap_or_else(|e| panic!("{yaml}: {e}"));
    }
}

// ------------------------------------------- against an in-process server

/// A `jaeger.api_v2.CollectorService` built on tonic's server machinery
/// with this module's prost structs: records calls and answers from a script.
mod server {
    use super::super::proto::{PostSpansRequest, PostSpansResponse};
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::future::Future;
    use std::marker::PhantomData;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::metadata::MetadataMap;
    use tonic::Status;

    #[derive(Default)]
    pub struct Recorder {
        pub requests: Mutex<Vec<PostSpansRequest>>,
        pub metadata: Mutex<Vec<MetadataMap>>,
        pub script: Mutex<VecDeque<Status>>,
        pub attempts: AtomicUsize,
    }

    impl Recorder {
        pub fn scripted(failures: Vec<Status>) -> Arc<Recorder> {
            let r = Recorder::default();
            *r.script.lock().unwrap() = failures.into();
            Arc::new(r)
        }

        pub fn attempts(&self) -> usize {
            self.attempts.load(Ordering::SeqCst)
        }
    }

    struct ProstCodec<E, D>(PhantomData<fn() -> (E, D)>);

    impl<E, D> Codec for ProstCodec<E, D>
    where
        E: prost::Message + Send + 'static,
        D: prost::Message + Default + Send + 'static,
    {
        type Encode = E;
        type Decode = D;
        type Encoder = ProstEncoder<E>;
        type Decoder = ProstDecoder<D>;
        fn encoder(&mut self) -> ProstEncoder<E> {
            ProstEncoder(PhantomData)
        }
        fn decoder(&mut self) -> ProstDecoder<D> {
            ProstDecoder(PhantomData)
        }
    }

    struct ProstEncoder<E>(PhantomData<fn() -> E>);

    impl<E: prost::Message> Encoder for ProstEncoder<E> {
        type Item = E;
        type Error = Status;
        fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            item.encode(dst)
                .map_err(|e| Status::internal(e.to_string()))
        }
    }

    struct ProstDecoder<D>(PhantomData<fn() -> D>);

    impl<D: prost::Message + Default> Decoder for ProstDecoder<D> {
        type Item = D;
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
            D::decode(src)
                .map(Some)
                .map_err(|e| Status::invalid_argument(e.to_string()))
        }
    }

    struct PostSpans(Arc<Recorder>);

    type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

    impl tonic::server::UnaryService<PostSpansRequest> for PostSpans {
        type Response = PostSpansResponse;
        type Future = BoxFut<Result<tonic::Response<PostSpansResponse>, Status>>;

        fn call(&mut self, req: tonic::Request<PostSpansRequest>) -> Self::Future {
            let rec = self.0.clone();
            Box::pin(async move {
                rec.attempts.fetch_add(1, Ordering::SeqCst);
                rec.metadata.lock().unwrap().push(req.metadata().clone());
                if let Some(status) = rec.script.lock().unwrap().pop_front() {
                    return Err(status);
                }
                rec.requests.lock().unwrap().push(req.into_inner());
                Ok(tonic::Response::new(PostSpansResponse {}))
            })
        }
    }

    #[derive(Clone)]
    pub struct Collector(pub Arc<Recorder>);

    impl tonic::server::NamedService for Collector {
        const NAME: &'static str = "jaeger.api_v2.CollectorService";
    }

    impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Collector {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFut<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let rec = self.0.clone();
            Box::pin(async move {
                if req.uri().path() != "/jaeger.api_v2.CollectorService/PostSpans" {
                    return Ok(Status::unimplemented(req.uri().path().to_string()).into_http());
                }
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<
                    PostSpansResponse,
                    PostSpansRequest,
                >(PhantomData))
                .accept_compressed(CompressionEncoding::Gzip);
                Ok(grpc.unary(PostSpans(rec), req).await)
            })
        }
    }
}

use server::{Collector, Recorder};
use std::net::SocketAddr;
use tonic::Status as GrpcStatus;

async fn serve(rec: Arc<Recorder>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::transport::Server::builder().add_service(Collector(rec));
    tokio::spawn(router.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
    addr
}

fn api_v2(addr: SocketAddr, extra: &str) -> (Arc<dyn Exporter>, ComponentContext) {
    api_v2_with(
        addr,
        "{initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 5s}",
        extra,
    )
}

fn api_v2_with(
    addr: SocketAddr,
    retry: &str,
    extra: &str,
) -> (Arc<dyn Exporter>, ComponentContext) {
    let yaml = format!(
        "{{protocol: grpc_api_v2, endpoint: '{addr}', tls: {{insecure: true}}, \
         sending_queue: {{enabled: false}}, retry_on_failure: {retry}{extra}}}"
    );
    let node = Node::from_yaml_str("t.yaml", &yaml).unwrap();
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "jaeger");
    let exp = JaegerFactory
        .create(ctx.clone(), &node, SignalSet::only(SignalKind::Traces))
        .unwrap();
    (exp, ctx)
}

fn rendered_metric(ctx: &ComponentContext, name: &str) -> String {
    let text = ctx.telemetry.render();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("0")
        .to_string()
}

#[tokio::test]
async fn posts_spans_with_metadata_gzip_and_a_deadline() {
    let rec = Recorder::scripted(vec![]);
    let addr = serve(rec.clone()).await;
    let (exp, ctx) = api_v2(
        addr,
        ", compression: gzip, timeout: 3s, headers: {x-tenant: team-a}",
    );
    exp.start().await.unwrap();
    exp.consume(confluo_pipeline::Batch::new(crate::testdata::traces()))
        .await
        .unwrap();
    let requests = rec.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let batch = requests[0].batch.clone().unwrap();
    let process = batch.process.unwrap();
    assert_eq!(process.service_name, "checkout");
    assert_eq!(process.tags, vec![str_kv("host.name", "node-1")]);
    let names: Vec<_> = batch
        .spans
        .iter()
        .map(|s| s.operation_name.as_str())
        .collect();
    assert_eq!(names, ["GET /cart", "SELECT"]);
    // The child names its parent.
    assert_eq!(batch.spans[1].references[0].span_id, batch.spans[0].span_id);

    let md = rec.metadata.lock().unwrap()[0].clone();
    let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(String::from);
    assert_eq!(get("x-tenant").as_deref(), Some("team-a"));
    assert_eq!(get("grpc-encoding").as_deref(), Some("gzip"));
    assert!(get("grpc-timeout").is_some(), "{md:?}");
    assert!(get("user-agent").unwrap_or_default().contains("confluo/"));
    assert_eq!(rendered_metric(&ctx, "otelcol_exporter_sent_spans"), "2");
    exp.shutdown(std::time::Instant::now()).await.unwrap();
}

#[tokio::test]
async fn uncompressed_by_default_and_unavailable_is_retried() {
    let rec = Recorder::scripted(vec![
        GrpcStatus::unavailable("collector restarting"),
        GrpcStatus::deadline_exceeded("slow"),
    ]);
    let addr = serve(rec.clone()).await;
    let (exp, ctx) = api_v2(addr, "");
    exp.start().await.unwrap();
    exp.consume(confluo_pipeline::Batch::new(crate::testdata::traces()))
        .await
        .unwrap();
    assert_eq!(rec.attempts(), 3);
    assert_eq!(rec.requests.lock().unwrap().len(), 1);
    let md = rec.metadata.lock().unwrap();
    assert!(
        md.iter().all(|m| m.get("grpc-encoding").is_none()),
        "{md:?}"
    );
    assert_eq!(rendered_metric(&ctx, "otelcol_exporter_sent_spans"), "2");
}

#[tokio::test]
async fn invalid_argument_is_final_and_counted() {
    let rec = Recorder::scripted(vec![GrpcStatus::invalid_argument("bad span")]);
    let addr = serve(rec.clone()).await;
    let (exp, ctx) = api_v2(addr, "");
    exp.start().await.unwrap();
    let err = exp
        .consume(confluo_pipeline::Batch::new(crate::testdata::traces()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("bad span"), "{err}");
    assert_eq!(rec.attempts(), 1);
    assert!(rec.requests.lock().unwrap().is_empty());
    assert_eq!(
        rendered_metric(&ctx, "otelcol_exporter_send_failed_spans"),
        "2"
    );
}

#[tokio::test]
async fn an_unreachable_collector_is_retryable() {
    // Bind and drop: nothing listens on the port any more.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (exp, _) = api_v2_with(addr, "{enabled: false}", "");
    let err = exp
        .consume(confluo_pipeline::Batch::new(crate::testdata::traces()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}
