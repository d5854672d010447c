//! Conversion field by field, the msgpack and protobuf encodings decoded
//! back (msgpack by the small reader below, protobuf by a raw wire check and
//! the declared structs), and the stats numbers.

use super::convert::*;
use super::stats::{Sketch, BUCKET_NS};
use super::*;
use crate::datadog::config::DatadogConfig;
use crate::util::load_with;
use confluo_config::Node;
use confluo_pipeline::attrs::{double, int, key_value, string};
use confluo_pipeline::exporter_helper::Request as _;
use confluo_pipeline::proto::common::{InstrumentationScope, KeyValue};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value as J};

const TRACE_ID: [u8; 16] = [
    0x0a, 0x0b, 0x0c, 0x0d, 0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
];
const T0: u64 = 1_700_000_003_000_000_000;

fn encoder(yaml: &str) -> TracesEncoder {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let cfg: DatadogConfig = load_with(&node, |c: &DatadogConfig, n| c.validate(n)).unwrap();
    TracesEncoder::new(&cfg, "conf-host").unwrap()
}

fn converter() -> Converter {
    Converter {
        span_name_as_resource_name: false,
        remappings: HashMap::new(),
        ignore_resources: Vec::new(),
        hostname: "conf-host".into(),
    }
}

fn otlp_span(name: &str, kind: i32, span_id: u8, parent: u8, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 1, span_id],
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            vec![0, 0, 0, 0, 0, 0, 1, parent]
        },
        name: name.into(),
        kind,
        start_time_unix_nano: T0 + span_id as u64 * 1000,
        end_time_unix_nano: T0 + span_id as u64 * 1000 + 5_000_000,
        attributes: attrs,
        ..Span::default()
    }
}

fn resource_spans(scope: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                key_value("service.name", string("Checkout")),
                key_value("service.version", string("1.2.3")),
                key_value("deployment.environment", string("Prod")),
                key_value("host.name", string("web-1")),
                key_value("telemetry.sdk.language", string("python")),
                key_value("telemetry.sdk.version", string("1.45.2")),
                key_value("cloud.region", string("eu-west-1")),
            ],
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: scope.into(),
                version: "0.9".into(),
                ..InstrumentationScope::default()
            }),
            spans,
            ..ScopeSpans::default()
        }],
        ..ResourceSpans::default()
    }
}

/// A server root, a DB client child, an internal grandchild with an error.
fn sample() -> ResourceSpans {
    let mut failing = otlp_span("compute", 1, 3, 2, vec![key_value("retries", int(2))]);
    failing.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    failing.events = vec![span::Event {
        name: "exception".into(),
        time_unix_nano: T0 + 10,
        attributes: vec![
            key_value("exception.type", string("ValueError")),
            key_value("exception.message", string("bad value")),
            key_value("exception.stacktrace", string("Traceback...")),
        ],
        ..span::Event::default()
    }];
    resource_spans(
        "my.lib",
        vec![
            otlp_span(
                "GET /items/{id}",
                2,
                1,
                0,
                vec![
                    key_value("http.request.method", string("GET")),
                    key_value("http.route", string("/items/{id}")),
                    key_value("http.response.status_code", int(200)),
                    key_value("ratio", double(0.5)),
                ],
            ),
            otlp_span(
                "SELECT items",
                3,
                2,
                1,
                vec![
                    key_value("db.system", string("postgresql")),
                    key_value("db.statement", string("SELECT * FROM items WHERE id = ?")),
                ],
            ),
            failing,
        ],
    )
}

#[test]
fn converts_ids_names_resources_and_meta() {
    let out = converter().convert(&[sample()]);
    assert_eq!(out.resources.len(), 1);
    let rt = &out.resources[0];
    assert_eq!(rt.hostname, "web-1");
    assert_eq!(rt.env, "prod");
    assert_eq!(rt.language, "python");
    assert_eq!(rt.tracer_version, "otlp-1.45.2");
    assert_eq!(rt.app_version, "1.2.3");
    assert_eq!(rt.chunks.len(), 1);
    let chunk = &rt.chunks[0];
    assert_eq!(chunk.priority, 1);
    let [root, db, internal] = &chunk.spans[..] else {
        panic!("three spans")
    };
    // ids
    assert_eq!(root.trace_id, 0x1112131415161718);
    assert_eq!(root.span_id, 0x0000000000000101);
    assert_eq!(root.parent_id, 0);
    assert_eq!(db.parent_id, root.span_id);
    assert_eq!(root.meta["_dd.p.tid"], "0a0b0c0d01020304");
    assert!(!db.meta.contains_key("_dd.p.tid"));
    assert_eq!(
        root.meta["otel.trace_id"],
        "0a0b0c0d010203041112131415161718"
    );
    assert_eq!(root.start, (T0 + 1000) as i64);
    assert_eq!(root.duration, 5_000_000);
    // service, name, resource, type
    assert_eq!(root.service, "checkout");
    assert_eq!(root.name, "my.lib.server");
    assert_eq!(root.resource, "GET /items/{id}");
    assert_eq!(root.r#type, "web");
    assert_eq!(db.name, "my.lib.client");
    assert_eq!(db.resource, "SELECT * FROM items WHERE id = ?");
    assert_eq!(db.r#type, "db");
    assert_eq!(internal.name, "my.lib.internal");
    assert_eq!(internal.resource, "compute");
    assert_eq!(internal.r#type, "custom");
    // meta and metrics
    assert_eq!(root.meta["http.method"], "GET");
    assert_eq!(root.meta["http.status_code"], "200");
    assert_eq!(root.metrics["http.response.status_code"], 200.0);
    assert_eq!(root.metrics["ratio"], 0.5);
    assert_eq!(root.meta["span.kind"], "server");
    assert_eq!(db.meta["span.kind"], "client");
    assert_eq!(root.meta["env"], "prod");
    assert_eq!(root.meta["version"], "1.2.3");
    assert_eq!(root.meta["cloud.region"], "eu-west-1");
    assert_eq!(root.meta["deployment.environment"], "Prod");
    assert!(!root.meta.contains_key("service.name"));
    assert_eq!(root.meta["otel.library.name"], "my.lib");
    assert_eq!(root.meta["otel.library.version"], "0.9");
    assert_eq!(root.meta["otel.status_code"], "Unset");
    // top level, measured, priority
    assert_eq!(root.metrics["_top_level"], 1.0);
    assert_eq!(root.metrics["_sampling_priority_v1"], 1.0);
    assert!(!db.metrics.contains_key("_top_level"));
    assert_eq!(db.metrics["_dd.measured"], 1.0);
    assert!(!db.metrics.contains_key("_sampling_priority_v1"));
    assert!(!internal.is_top_level() && !internal.is_measured());
    // error
    assert_eq!(root.error, 0);
    assert_eq!(internal.error, 1);
    assert_eq!(internal.meta["error.msg"], "bad value");
    assert_eq!(internal.meta["error.type"], "ValueError");
    assert_eq!(internal.meta["error.stack"], "Traceback...");
    assert_eq!(internal.meta["otel.status_code"], "Error");
    assert_eq!(internal.meta["otel.status_description"], "boom");
    assert_eq!(internal.metrics["retries"], 2.0);
    let events: J = serde_json::from_str(&internal.meta["events"]).unwrap();
    assert_eq!(events[0]["name"], "exception");
    assert_eq!(events[0]["attributes"]["exception.type"], "ValueError");
}

#[test]
fn names_follow_scope_options_and_remappings() {
    let rs = ResourceSpans {
        scope_spans: vec![ScopeSpans {
            scope: None,
            spans: vec![
                otlp_span(
                    "publish orders",
                    4,
                    1,
                    0,
                    vec![
                        key_value("messaging.operation", string("publish")),
                        key_value("messaging.destination.name", string("orders")),
                    ],
                ),
                otlp_span(
                    "grpc call",
                    3,
                    2,
                    1,
                    vec![
                        key_value("rpc.method", string("Get")),
                        key_value("rpc.service", string("Items")),
                        key_value("db.system", string("redis")),
                    ],
                ),
                otlp_span(
                    "custom op",
                    5,
                    3,
                    1,
                    vec![key_value("operation.name", string("Override Op!"))],
                ),
            ],
            ..ScopeSpans::default()
        }],
        ..ResourceSpans::default()
    };
    let out = converter().convert(std::slice::from_ref(&rs));
    let spans = &out.resources[0].chunks[0].spans;
    assert_eq!(spans[0].name, "opentelemetry.producer");
    assert_eq!(spans[0].resource, "publish orders");
    assert_eq!(spans[0].service, NO_SERVICE);
    assert_eq!(spans[1].resource, "Get Items");
    assert_eq!(spans[1].r#type, "cache");
    assert_eq!(spans[2].name, "Override_Op");
    assert_eq!(
        spans[2].metrics["_top_level"], 1.0,
        "consumer spans are top-level"
    );
    assert_eq!(out.resources[0].env, DEFAULT_ENV);
    assert_eq!(out.resources[0].hostname, "conf-host");

    let mut c = converter();
    c.span_name_as_resource_name = true;
    c.remappings
        .insert("grpc call".into(), "grpc.client".into());
    let out = c.convert(&[rs]);
    let spans = &out.resources[0].chunks[0].spans;
    assert_eq!(spans[0].name, "publish_orders");
    assert_eq!(spans[1].name, "grpc.client");
}

#[test]
fn normalizes_like_the_agent() {
    assert_eq!(
        normalize_name("io.opentelemetry.tomcat-10.0.server"),
        "io.opentelemetry.tomcat_10.0.server"
    );
    assert_eq!(normalize_name("  9bad//name"), "bad_name");
    assert_eq!(normalize_name("!!!"), "unnamed_operation");
    assert_eq!(normalize_tag_value(" My Service "), "my_service");
}

#[test]
fn ignore_resources_drops_whole_traces_and_priority_comes_from_attributes() {
    let mut c = converter();
    c.ignore_resources = vec![regex::Regex::new("^GET /items").unwrap()];
    let out = c.convert(&[sample()]);
    assert!(out.resources.is_empty());
    assert_eq!(out.ignored_spans, 3);

    let rs = resource_spans(
        "s",
        vec![otlp_span(
            "x",
            2,
            1,
            0,
            vec![key_value("sampling.priority", int(2))],
        )],
    );
    let out = converter().convert(&[rs]);
    assert_eq!(out.resources[0].chunks[0].priority, 2);
    assert_eq!(
        out.resources[0].chunks[0].spans[0].metrics["_sampling_priority_v1"],
        2.0
    );
}

#[test]
fn error_message_falls_back_to_status_then_http_code() {
    let mut s = otlp_span(
        "x",
        2,
        1,
        0,
        vec![key_value("http.status_code", string("503"))],
    );
    s.status = Some(Status {
        code: 2,
        message: String::new(),
    });
    let out = converter().convert(&[resource_spans("s", vec![s.clone()])]);
    assert_eq!(out.resources[0].chunks[0].spans[0].meta["error.msg"], "503");
    s.status = Some(Status {
        code: 2,
        message: "unavailable".into(),
    });
    let out = converter().convert(&[resource_spans("s", vec![s])]);
    assert_eq!(
        out.resources[0].chunks[0].spans[0].meta["error.msg"],
        "unavailable"
    );
}

// ---------------------------------------------------------------- msgpack

/// A msgpack reader for the tests (maps with string keys become objects;
/// bin becomes an array of bytes).
fn mp(buf: &[u8], pos: &mut usize) -> J {
    let b = buf[*pos];
    *pos += 1;
    let mut take = |n: usize| {
        let s = &buf[*pos..*pos + n];
        *pos += n;
        s
    };
    fn be(s: &[u8]) -> u64 {
        s.iter().fold(0u64, |a, b| (a << 8) | *b as u64)
    }
    match b {
        0x00..=0x7f => json!(b),
        0x80..=0x8f => map(buf, pos, (b & 0x0f) as usize),
        0x90..=0x9f => arr(buf, pos, (b & 0x0f) as usize),
        0xa0..=0xbf => {
            let s = take((b & 0x1f) as usize);
            json!(std::str::from_utf8(s).unwrap())
        }
        0xc2 => json!(false),
        0xc3 => json!(true),
        0xc4 => {
            let n = take(1)[0] as usize;
            json!(take(n).to_vec())
        }
        0xc5 => {
            let n = be(take(2)) as usize;
            json!(take(n).to_vec())
        }
        0xcb => json!(f64::from_bits(be(take(8)))),
        0xcc => json!(be(take(1))),
        0xcd => json!(be(take(2))),
        0xce => json!(be(take(4))),
        0xcf => json!(be(take(8))),
        0xd0 => json!(take(1)[0] as i8),
        0xd9 => {
            let n = take(1)[0] as usize;
            json!(std::str::from_utf8(take(n)).unwrap())
        }
        0xda => {
            let n = be(take(2)) as usize;
            json!(std::str::from_utf8(take(n)).unwrap())
        }
        0xdc => {
            let n = be(take(2)) as usize;
            arr(buf, pos, n)
        }
        0xde => {
            let n = be(take(2)) as usize;
            map(buf, pos, n)
        }
        0xe0..=0xff => json!(b as i8),
        other => panic!("unexpected msgpack byte {other:#x}"),
    }
}

fn map(buf: &[u8], pos: &mut usize, n: usize) -> J {
    let mut m = serde_json::Map::new();
    for _ in 0..n {
        let k = mp(buf, pos);
        let v = mp(buf, pos);
        m.insert(k.as_str().expect("string key").to_string(), v);
    }
    J::Object(m)
}

fn arr(buf: &[u8], pos: &mut usize, n: usize) -> J {
    J::Array((0..n).map(|_| mp(buf, pos)).collect())
}

fn decode_msgpack(buf: &[u8]) -> J {
    let mut pos = 0;
    let v = mp(buf, &mut pos);
    assert_eq!(pos, buf.len(), "trailing bytes");
    v
}

#[test]
fn msgpack_writer_round_trips_edge_values() {
    let mut b = Vec::new();
    msgpack::array_header(&mut b, 9);
    msgpack::uint(&mut b, u64::MAX);
    msgpack::int(&mut b, -5);
    msgpack::int(&mut b, -100);
    msgpack::int(&mut b, 300);
    msgpack::str(&mut b, &"x".repeat(40));
    msgpack::str(&mut b, &"y".repeat(300));
    msgpack::f64(&mut b, 2.5);
    msgpack::bool(&mut b, true);
    msgpack::bin(&mut b, &[1, 2, 3]);
    let v = decode_msgpack(&b);
    assert_eq!(v[0], json!(u64::MAX));
    assert_eq!(v[1], json!(-5));
    assert_eq!(v[2], json!(-100));
    assert_eq!(v[3], json!(300));
    assert_eq!(v[4].as_str().unwrap().len(), 40);
    assert_eq!(v[5].as_str().unwrap().len(), 300);
    assert_eq!(v[6], json!(2.5));
    assert_eq!(v[7], json!(true));
    assert_eq!(v[8], json!([1, 2, 3]));
}

#[test]
fn agent_protocol_sends_one_msgpack_trace_per_trace_id() {
    let enc = encoder("{api: {key: k}, traces: {protocol: agent}}");
    // The same trace split over two resources, plus another trace.
    let mut other = otlp_span("other", 2, 9, 0, vec![]);
    other.trace_id = vec![0; 15].into_iter().chain([7]).collect();
    let second = resource_spans(
        "lib2",
        vec![otlp_span("late child", 1, 4, 1, vec![]), other],
    );
    let reqs = enc.encode(&[sample(), second]).unwrap();
    let traces: Vec<_> = reqs
        .iter()
        .filter(|r| r.route == Route::TracesAgent)
        .collect();
    assert_eq!(traces.len(), 1);
    let req = traces[0];
    assert_eq!(req.parts.len(), 2);
    assert_eq!(req.item_count(), 5);
    let body = decode_msgpack(&req.body());
    let body = body.as_array().unwrap();
    assert_eq!(body.len(), 2);
    let first = body[0].as_array().unwrap();
    assert_eq!(
        first.len(),
        4,
        "spans of one trace id grouped across resources"
    );
    let root = &first[0];
    assert_eq!(root.as_object().unwrap().len(), 12);
    assert_eq!(root["trace_id"], json!(0x1112131415161718u64));
    assert_eq!(root["span_id"], json!(0x101));
    assert_eq!(root["parent_id"], json!(0));
    assert_eq!(root["service"], "checkout");
    assert_eq!(root["name"], "my.lib.server");
    assert_eq!(root["resource"], "GET /items/{id}");
    assert_eq!(root["type"], "web");
    assert_eq!(root["error"], json!(0));
    assert_eq!(root["start"], json!(T0 + 1000));
    assert_eq!(root["duration"], json!(5_000_000));
    assert_eq!(root["meta"]["_dd.p.tid"], "0a0b0c0d01020304");
    assert_eq!(root["metrics"]["_sampling_priority_v1"], json!(1.0));
    assert_eq!(first[2]["error"], json!(1));
    assert_eq!(body[1][0]["trace_id"], json!(7));

    let mut h = HeaderMap::new();
    enc.route_headers(req, &mut h);
    assert_eq!(h["x-datadog-trace-count"], "2");
    assert_eq!(h["datadog-meta-lang"], "otlp");
    assert_eq!(h["datadog-meta-tracer-version"], TRACER_VERSION);
    assert!(h.contains_key("datadog-meta-lang-version"));
    assert_eq!(h["datadog-client-computed-stats"], "yes");
    assert_eq!(h["datadog-client-computed-top-level"], "yes");

    // Stats for the Agent: one ClientStatsPayload per request.
    let stats: Vec<_> = reqs
        .iter()
        .filter(|r| r.route == Route::StatsAgent)
        .collect();
    assert_eq!(stats.len(), 1, "both resources share (host, env, version)");
    for s in &stats {
        assert_eq!(s.parts.len(), 1);
        let p = decode_msgpack(&s.body());
        assert!(p["Stats"].is_array(), "{p}");
    }
}

// ---------------------------------------------------------------- protobuf

/// Reads (field number, wire type) of the top-level fields of a message.
fn top_fields(buf: &[u8]) -> Vec<(u64, u8)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let varint = |pos: &mut usize| {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = buf[*pos];
            *pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    };
    while pos < buf.len() {
        let key = varint(&mut pos);
        let (field, wt) = (key >> 3, (key & 7) as u8);
        match wt {
            0 => {
                varint(&mut pos);
            }
            1 => pos += 8,
            2 => {
                let n = varint(&mut pos) as usize;
                pos += n;
            }
            5 => pos += 4,
            _ => panic!("wire type {wt}"),
        }
        out.push((field, wt));
    }
    out
}

#[test]
fn intake_protocol_sends_an_agent_payload() {
    let enc = encoder("{api: {key: k}, traces: {send_stats: false}}");
    let reqs = enc.encode(&[sample()]).unwrap();
    assert_eq!(reqs.len(), 1, "no stats when send_stats is false");
    let req = &reqs[0];
    assert_eq!(req.route, Route::TracesIntake);
    let body = req.body();
    let fields: Vec<u64> = top_fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, vec![1, 2, 7, 8, 9, 5]);
    let p = intake::AgentPayload::decode(&body[..]).unwrap();
    assert_eq!(p.host_name, "conf-host");
    assert_eq!(p.env, "none");
    assert_eq!(p.agent_version, TRACER_VERSION);
    assert_eq!(p.target_tps, 10.0);
    assert_eq!(p.tracer_payloads.len(), 1);
    let tp = &p.tracer_payloads[0];
    assert_eq!(tp.hostname, "web-1");
    assert_eq!(tp.env, "prod");
    assert_eq!(tp.language_name, "python");
    assert_eq!(tp.tracer_version, "otlp-1.45.2");
    assert_eq!(tp.app_version, "1.2.3");
    assert_eq!(tp.chunks.len(), 1);
    assert_eq!(tp.chunks[0].priority, 1);
    let spans = &tp.chunks[0].spans;
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[0].trace_id, 0x1112131415161718);
    assert_eq!(spans[0].meta["_dd.p.tid"], "0a0b0c0d01020304");
    assert_eq!(spans[2].error, 1);
    assert_eq!(spans[2].meta["error.type"], "ValueError");

    let mut h = HeaderMap::new();
    enc.route_headers(req, &mut h);
    assert_eq!(h["x-datadog-reported-languages"], "python");
}

#[test]
fn large_resources_are_cut_into_several_tracer_payloads() {
    // 40 traces of ~100 KB: the 3.2 MB budget needs two requests.
    let spans: Vec<Span> = (0..40u8)
        .map(|i| {
            let mut s = otlp_span(
                "big",
                2,
                1,
                0,
                vec![key_value("blob", string("x".repeat(100_000)))],
            );
            s.trace_id[15] = i;
            s
        })
        .collect();
    let enc = encoder("{api: {key: k}, traces: {send_stats: false}}");
    let reqs = enc.encode(&[resource_spans("s", spans)]).unwrap();
    assert!(reqs.len() >= 2, "{}", reqs.len());
    let mut chunks = 0;
    for r in &reqs {
        let body = r.body();
        assert!(
            body.len() <= Route::TracesIntake.max_body_bytes(),
            "{}",
            body.len()
        );
        let p = intake::AgentPayload::decode(&body[..]).unwrap();
        chunks += p
            .tracer_payloads
            .iter()
            .map(|t| t.chunks.len())
            .sum::<usize>();
        assert_eq!(
            r.item_count(),
            p.tracer_payloads
                .iter()
                .map(|t| t.chunks.len())
                .sum::<usize>()
        );
    }
    assert_eq!(chunks, 40);
}

// ---------------------------------------------------------------- stats

#[test]
fn stats_count_hits_errors_and_durations_per_group() {
    let mut spans = Vec::new();
    // 4 server spans on one route, 1 of them an error; one with a 500.
    for i in 0..4u8 {
        let mut s = otlp_span(
            "GET /a",
            2,
            10 + i,
            0,
            vec![
                key_value("http.method", string("GET")),
                key_value("http.route", string("/a")),
                key_value("http.status_code", int(if i == 3 { 500 } else { 200 })),
            ],
        );
        s.trace_id[15] = i;
        s.end_time_unix_nano = s.start_time_unix_nano + (i as u64 + 1) * 1_000_000;
        if i == 3 {
            s.status = Some(Status {
                code: 2,
                message: "x".into(),
            });
        }
        spans.push(s);
    }
    // An internal child (not counted) and a client child (measured).
    let mut internal = otlp_span("inner", 1, 20, 10, vec![]);
    internal.trace_id[15] = 0;
    let mut client = otlp_span("out", 3, 21, 10, vec![]);
    client.trace_id[15] = 0;
    spans.push(internal);
    spans.push(client);
    let enc = encoder("{api: {key: k}}");
    let reqs = enc.encode(&[resource_spans("lib", spans)]).unwrap();
    let stats: Vec<_> = reqs
        .iter()
        .filter(|r| r.route == Route::StatsIntake)
        .collect();
    assert_eq!(stats.len(), 1);
    let p = decode_msgpack(&stats[0].body());
    assert_eq!(p["AgentHostname"], "conf-host");
    assert_eq!(p["AgentVersion"], TRACER_VERSION);
    assert_eq!(p["ClientComputed"], json!(false));
    let csp = &p["Stats"][0];
    assert_eq!(csp["Hostname"], "web-1");
    assert_eq!(csp["Env"], "prod");
    assert_eq!(csp["Version"], "1.2.3");
    let bucket = &csp["Stats"][0];
    let end = T0 + 10 * 1000 + 1_000_000;
    assert_eq!(bucket["Start"], json!(end - end % BUCKET_NS));
    assert_eq!(bucket["Duration"], json!(BUCKET_NS));
    let groups = bucket["Stats"].as_array().unwrap();
    let find = |resource: &str, code: u64| {
        groups
            .iter()
            .find(|g| g["Resource"] == resource && g["HTTPStatusCode"] == json!(code))
            .unwrap_or_else(|| panic!("no group {resource} {code} in {groups:?}"))
    };
    let ok = find("GET /a", 200);
    assert_eq!(ok["Hits"], json!(3));
    assert_eq!(ok["TopLevelHits"], json!(3));
    assert_eq!(ok["Errors"], json!(0));
    assert_eq!(ok["Duration"], json!(6_000_000));
    assert_eq!(ok["Service"], "checkout");
    assert_eq!(ok["Name"], "lib.server");
    assert_eq!(ok["Type"], "web");
    assert_eq!(ok["SpanKind"], "server");
    assert_eq!(ok["IsTraceRoot"], json!(1));
    let bad = find("GET /a", 500);
    assert_eq!(bad["Hits"], json!(1));
    assert_eq!(bad["Errors"], json!(1));
    let client = find("out", 0);
    assert_eq!(client["Hits"], json!(1));
    assert_eq!(client["TopLevelHits"], json!(0));
    assert_eq!(client["IsTraceRoot"], json!(2));
    assert!(
        groups.iter().all(|g| g["Resource"] != "inner"),
        "internal spans are not counted"
    );
    assert_eq!(groups.len(), 3);
    // The sketches hold the durations.
    let sketch_bytes: Vec<u8> = ok["OkSummary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    let sk = stats::DdSketchProto::decode(&sketch_bytes[..]).unwrap();
    let store = sk.positive_values.unwrap();
    assert_eq!(store.contiguous_bin_counts.iter().sum::<f64>(), 3.0);
    assert!((sk.mapping.unwrap().gamma - 1.0202).abs() < 1e-3);
}

#[test]
fn stats_by_span_kind_option() {
    // Span kinds already make spans top-level or measured; the option only
    // matters for a client span whose attributes clear `_dd.measured`.
    let rs = resource_spans(
        "lib",
        vec![
            otlp_span("root", 1, 1, 0, vec![]),
            otlp_span("internal", 1, 2, 1, vec![]),
            otlp_span("cleared", 3, 3, 1, vec![key_value("_dd.measured", int(0))]),
        ],
    );
    let converted = converter().convert(&[rs]);
    let hits = |by_kind: bool| {
        let mut s = stats::Stats::default();
        s.add(&converted.resources[0], by_kind);
        let mut names: Vec<&str> = s
            .payloads
            .values()
            .flat_map(|b| b.values())
            .flat_map(|g| g.keys().map(|k| k.resource))
            .collect();
        names.sort();
        names
    };
    assert_eq!(hits(true), vec!["cleared", "root"]);
    assert_eq!(hits(false), vec!["root"]);
}

#[test]
fn sketch_values_stay_within_one_percent() {
    for v in [1.0, 37.0, 1_000.0, 123_456_789.0, 9.9e12] {
        let est = Sketch::value(Sketch::index(v));
        assert!(((est - v) / v).abs() <= 0.0101, "{v} → {est}");
    }
    let mut s = Sketch::default();
    s.add(0.0);
    for i in 1..=5000 {
        s.add((i as f64).powi(3));
    }
    assert_eq!(s.count(), 5001.0);
    let p = s.to_proto();
    assert_eq!(p.zero_count, 1.0);
    let store = p.positive_values.unwrap();
    assert!(store.contiguous_bin_counts.len() <= 2048);
    assert_eq!(store.contiguous_bin_counts.iter().sum::<f64>(), 5000.0);
}
