//! The `loki` exporter: encoding units, config, Loki's answers against an
//! in-process server, and an ignored release-mode encode benchmark.

use super::config::*;
use super::encode::*;
use super::proto::*;
use super::*;
use crate::testdata::{i, s};
use axum::extract::State;
use axum::response::IntoResponse;
use confluo_pipeline::attrs;
use confluo_pipeline::proto::common::{AnyValue, KeyValue};
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::{ComponentKind, Signal};
use proptest::prelude::*;
use prost::Message;
use std::collections::VecDeque;
use std::net::SocketAddr;

const T0: u64 = 1_700_000_000_000_000_000;

fn rec(t: u64, body: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: t,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(attrs::string(body)),
        attributes,
        ..Default::default()
    }
}

fn logs(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> Signal {
    Signal::Logs(vec![ResourceLogs {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn config(yaml: &str) -> LokiConfig {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let problems: Vec<_> = LokiFactory
        .check(&node)
        .into_iter()
        .filter(ConfigError::is_error)
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    node.deserialize().unwrap()
}

fn encoder(extra: &str) -> Encoder {
    Encoder::new(&config(&format!(
        "{{endpoint: 'http://loki:3100/loki/api/v1/push'{extra}}}"
    )))
}

fn decode(push: &Push) -> PushRequest {
    PushRequest::decode(&push.body[..]).unwrap()
}

fn meta(e: &EntryAdapter, name: &str) -> Option<String> {
    e.structured_metadata
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.clone())
}

// ---------------------------------------------------------------- names

#[test]
fn label_names_are_normalised_as_loki_does() {
    assert_eq!(normalize_label_name("service.name"), "service_name");
    assert_eq!(normalize_label_name("k8s.pod.name"), "k8s_pod_name");
    assert_eq!(normalize_label_name("1st"), "key_1st");
    assert_eq!(normalize_label_name("_x"), "key_x");
    assert_eq!(normalize_label_name("__x"), "__x");
    assert_eq!(normalize_label_name("héllo-wörld"), "h_llo_w_rld");
    assert!(is_valid_label_name(&normalize_label_name("a b/c")));
}

proptest! {
    #[test]
    fn normalised_names_are_valid_label_names(name in "\\PC{1,20}") {
        let n = normalize_label_name(&name);
        prop_assert!(is_valid_label_name(&n), "{name:?} -> {n:?}");
    }

    #[test]
    fn selector_values_round_trip(values in proptest::collection::vec("\\PC*|[\"\\\\\n\t\r]{0,4}", 1..4)) {
        let names = ["a", "b", "c", "d"];
        let labels: Vec<(&str, &str)> = names.iter().zip(values.iter()).map(|(n, v)| (*n, v.as_str())).collect();
        let mut sel = String::new();
        write_selector(&mut sel, &labels);
        prop_assert!(!sel.contains('\n'));
        let parsed = parse_selector(&sel).expect("parses");
        let want: Vec<(String, String)> = labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        prop_assert_eq!(parsed, want);
    }
}

proptest! {
    #[test]
    fn json_strings_round_trip_through_serde(text in "\\PC*|[\"\\\\\u{0}-\u{1f}a-z]{0,40}") {
        let mut out = Vec::new();
        write_json_string(&mut out, &text);
        let back: String = serde_json::from_slice(&out).expect("valid JSON string");
        prop_assert_eq!(back, text);
    }
}

/// A PromQL-style selector reader (test only): `{name="value", …}`.
fn parse_selector(s: &str) -> Option<Vec<(String, String)>> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        chars.next()?; // =
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => value.push(match chars.next()? {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    c => c,
                }),
                '\n' => return None,
                c => value.push(c),
            }
        }
        out.push((name, value));
    }
}

#[test]
fn selector_escapes_quotes_backslashes_and_newlines() {
    let mut sel = String::new();
    write_selector(&mut sel, &[("a", "x\"y"), ("b", "c:\\d"), ("c", "l1\nl2")]);
    assert_eq!(sel, r#"{a="x\"y", b="c:\\d", c="l1\nl2"}"#);
}

// ---------------------------------------------------------------- streams

#[test]
fn default_labels_follow_lokis_otlp_defaults_plus_level() {
    let enc = encoder("");
    let sig = logs(
        vec![
            s("service.name", "checkout"),
            s("k8s.namespace.name", "shop"),
            s("host.name", "node-1"),
        ],
        vec![LogRecord {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            ..rec(T0, "paid", vec![i("order", 7)])
        }],
    );
    let (pushes, dropped) = enc.encode(&sig, 0);
    assert_eq!(dropped, Dropped::default());
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].tenant, None);
    let req = decode(&pushes[0]);
    assert_eq!(req.streams.len(), 1);
    let st = &req.streams[0];
    assert_eq!(
        st.labels,
        r#"{k8s_namespace_name="shop", level="info", service_name="checkout"}"#
    );
    let e = &st.entries[0];
    assert_eq!(e.timestamp, Some(Timestamp::from_unix_nanos(T0)));
    assert_eq!(e.line, r#"{"body":"paid","order":7}"#);
    assert_eq!(
        meta(e, "trace_id").as_deref(),
        Some("0102030405060708090a0b0c0d0e0f10")
    );
    assert_eq!(meta(e, "span_id").as_deref(), Some("0102030405060708"));
    assert_eq!(meta(e, "host_name").as_deref(), Some("node-1"));
    assert_eq!(meta(e, "level"), None, "level is a label, not metadata");
}

#[test]
fn missing_service_name_is_unknown_service() {
    let (pushes, _) =
        encoder(", labels: {level: false}").encode(&logs(vec![], vec![rec(T0, "x", vec![])]), 0);
    let req = decode(&pushes[0]);
    assert_eq!(req.streams[0].labels, r#"{service_name="unknown_service"}"#);
    assert_eq!(
        meta(&req.streams[0].entries[0], "level").as_deref(),
        Some("info")
    );
}

#[test]
fn entries_are_grouped_by_label_set_and_sorted_stably_by_time() {
    let enc = encoder(", labels: {resource: [service.name], attributes: {component: }}");
    let recs = vec![
        rec(T0 + 30, "a3", vec![s("component", "db")]),
        rec(T0 + 10, "a1", vec![s("component", "db")]),
        rec(T0 + 20, "b1", vec![s("component", "web")]),
        rec(T0 + 10, "a1-second", vec![s("component", "db")]),
        LogRecord {
            severity_number: 17,
            ..rec(T0 + 5, "e", vec![s("component", "db")])
        },
    ];
    let (pushes, _) = enc.encode(&logs(vec![s("service.name", "svc")], recs), 0);
    let req = decode(&pushes[0]);
    let by_labels: Vec<(String, Vec<String>)> = req
        .streams
        .iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.entries.iter().map(|e| e.line.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        by_labels,
        vec![
            (
                r#"{component="db", level="info", service_name="svc"}"#.to_string(),
                vec![
                    r#"{"body":"a1"}"#.to_string(),
                    r#"{"body":"a1-second"}"#.to_string(),
                    r#"{"body":"a3"}"#.to_string()
                ]
            ),
            (
                r#"{component="web", level="info", service_name="svc"}"#.to_string(),
                vec![r#"{"body":"b1"}"#.to_string()]
            ),
            (
                r#"{component="db", level="error", service_name="svc"}"#.to_string(),
                vec![r#"{"body":"e"}"#.to_string()]
            ),
        ]
    );
}

#[test]
fn labels_beyond_max_labels_become_metadata_and_service_name_is_not_counted() {
    let enc = encoder(", max_labels: 2, labels: {resource: [service.name, a, b, c], level: true}");
    let sig = logs(
        vec![
            s("service.name", "svc"),
            s("a", "1"),
            s("b", "2"),
            s("c", "3"),
        ],
        vec![rec(T0, "x", vec![])],
    );
    let req = decode(&enc.encode(&sig, 0).0[0]);
    assert_eq!(
        req.streams[0].labels,
        r#"{a="1", b="2", service_name="svc"}"#
    );
    let e = &req.streams[0].entries[0];
    assert_eq!(meta(e, "c").as_deref(), Some("3"));
    assert_eq!(meta(e, "level").as_deref(), Some("info"));
}

#[test]
fn static_labels_win_over_attributes_of_the_same_name() {
    let enc = encoder(
        ", labels: {static: {env: prod}, resource: {deployment.environment: env}, level: false}",
    );
    let sig = logs(
        vec![s("deployment.environment", "dev")],
        vec![rec(T0, "x", vec![])],
    );
    let req = decode(&enc.encode(&sig, 0).0[0]);
    assert_eq!(req.streams[0].labels, r#"{env="prod"}"#);
    assert_eq!(
        meta(&req.streams[0].entries[0], "env").as_deref(),
        Some("dev")
    );
}

#[test]
fn records_without_time_use_observed_time_then_now() {
    let enc = encoder("");
    let sig = logs(
        vec![s("service.name", "svc")],
        vec![
            LogRecord {
                observed_time_unix_nano: T0 + 7,
                ..rec(0, "observed", vec![])
            },
            rec(0, "now", vec![]),
        ],
    );
    let req = decode(&enc.encode(&sig, T0 + 99).0[0]);
    let times: Vec<u64> = req.streams[0]
        .entries
        .iter()
        .map(|e| e.unix_nanos())
        .collect();
    assert_eq!(times, vec![T0 + 7, T0 + 99]);
}

// ---------------------------------------------------------------- lines

#[test]
fn logfmt_lines_quote_what_needs_quoting() {
    let enc = encoder(", line_format: logfmt");
    let sig = logs(
        vec![s("service.name", "svc")],
        vec![rec(
            T0,
            "user \"bob\" logged in",
            vec![
                i("user_id", 42),
                s("path", "/a=b"),
                s("empty", ""),
                s("bad key", "v"),
            ],
        )],
    );
    let req = decode(&enc.encode(&sig, 0).0[0]);
    assert_eq!(
        req.streams[0].entries[0].line,
        r#"msg="user \"bob\" logged in" user_id=42 path="/a=b" empty="" bad_key=v"#
    );
}

#[test]
fn json_lines_spread_map_bodies_and_skip_label_attributes() {
    let enc = encoder(", labels: {attributes: [tenant_kind]}");
    let body = attrs::kvlist(vec![
        attrs::key_value("event", attrs::string("login")),
        attrs::key_value("n", attrs::int(3)),
    ]);
    let sig = logs(
        vec![s("service.name", "svc")],
        vec![LogRecord {
            body: Some(body),
            ..rec(
                T0,
                "",
                vec![
                    s("tenant_kind", "free"),
                    attrs::key_value("ok", attrs::boolean(true)),
                ],
            )
        }],
    );
    let req = decode(&enc.encode(&sig, 0).0[0]);
    assert_eq!(
        req.streams[0].entries[0].line,
        r#"{"event":"login","n":3,"ok":true}"#
    );
    assert!(req.streams[0].labels.contains(r#"tenant_kind="free""#));
}

#[test]
fn raw_lines_hold_the_body_and_attributes_go_to_metadata() {
    let enc = encoder(", line_format: raw, structured_metadata: {resource_attributes: false}");
    let sig = logs(
        vec![s("service.name", "svc"), s("host.name", "h")],
        vec![rec(T0, "plain text", vec![s("http.method", "GET")])],
    );
    let req = decode(&enc.encode(&sig, 0).0[0]);
    let e = &req.streams[0].entries[0];
    assert_eq!(e.line, "plain text");
    assert_eq!(
        e.structured_metadata,
        vec![LabelPairAdapter {
            name: "http_method".into(),
            value: "GET".into()
        }]
    );
}

// ---------------------------------------------------------------- pushes

#[test]
fn pushes_are_cut_at_max_push_bytes_and_keep_every_entry_in_order() {
    let enc = encoder(", max_push_bytes: 4KiB");
    let line = "x".repeat(300);
    let recs: Vec<LogRecord> = (0..100)
        .rev()
        .map(|k| rec(T0 + k, &line, vec![i("k", k as i64)]))
        .collect();
    let (pushes, _) = enc.encode(&logs(vec![s("service.name", "svc")], recs), 0);
    assert!(pushes.len() >= 8, "{} pushes", pushes.len());
    let mut all = Vec::new();
    for p in &pushes {
        assert!(p.body.len() <= 4096, "push of {} bytes", p.body.len());
        let req = decode(p);
        assert_eq!(
            p.items,
            req.streams.iter().map(|s| s.entries.len()).sum::<usize>()
        );
        for st in req.streams {
            all.extend(st.entries.iter().map(|e| e.unix_nanos()));
        }
    }
    let want: Vec<u64> = (0..100).map(|k| T0 + k).collect();
    assert_eq!(all, want);
}

#[test]
fn long_lines_and_large_streams_decode_with_prost() {
    // 3-byte varint lengths for the line, the entry and the stream.
    let enc = encoder(", line_format: raw");
    let long = "é".repeat(20_000);
    let recs = vec![rec(T0, &long, vec![]), rec(T0 + 1, "short", vec![])];
    let (pushes, _) = enc.encode(&logs(vec![s("service.name", "svc")], recs), 0);
    let req = decode(&pushes[0]);
    let lines: Vec<&str> = req.streams[0]
        .entries
        .iter()
        .map(|e| e.line.as_str())
        .collect();
    assert_eq!(lines, vec![long.as_str(), "short"]);
    assert_eq!(req.streams[0].entries[1].unix_nanos(), T0 + 1);
    // Whole seconds: the nanos field is omitted, as proto3 does.
    let (pushes, _) = enc.encode(&logs(vec![], vec![rec(2_000_000_000, "x", vec![])]), 0);
    assert_eq!(
        decode(&pushes[0]).streams[0].entries[0].timestamp,
        Some(Timestamp {
            seconds: 2,
            nanos: 0
        })
    );
}

#[test]
fn tenants_partition_pushes_with_a_fallback_and_invalid_ones_are_dropped() {
    let enc = encoder(", tenant: {from_attribute: tenant}");
    let sig = logs(
        vec![s("service.name", "svc"), s("tenant", "res-tenant")],
        vec![
            rec(T0, "a", vec![s("tenant", "team-a")]),
            rec(T0, "b", vec![s("tenant", "team-b")]),
            rec(T0, "c", vec![]),
            rec(T0, "bad", vec![s("tenant", "a/b")]),
            rec(T0, "a2", vec![s("tenant", "team-a")]),
        ],
    );
    let (pushes, dropped) = enc.encode(&sig, 0);
    assert_eq!(dropped.invalid_tenant, 1);
    let got: Vec<(Option<&str>, usize)> = pushes
        .iter()
        .map(|p| (p.tenant.as_deref(), p.items))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("team-a"), 2),
            (Some("team-b"), 1),
            (Some("res-tenant"), 1)
        ]
    );

    let with_fallback = encoder(", tenant: {from_attribute: tenant, id: fallback}");
    let (pushes, dropped) = with_fallback.encode(&sig, 0);
    assert_eq!(dropped.invalid_tenant, 0);
    assert!(pushes
        .iter()
        .any(|p| p.tenant.as_deref() == Some("fallback")));
}

#[test]
fn json_push_has_string_timestamps_labels_and_metadata() {
    let enc = encoder(", protocol: push_json");
    let sig = logs(
        vec![s("service.name", "svc")],
        vec![LogRecord {
            trace_id: vec![0xab; 16],
            ..rec(T0 + 1, "hello", vec![])
        }],
    );
    let (pushes, _) = enc.encode(&sig, 0);
    let v: serde_json::Value = serde_json::from_slice(&pushes[0].body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"streams": [{
            "stream": {"level": "info", "service_name": "svc"},
            "values": [[(T0 + 1).to_string(), "{\"body\":\"hello\"}", {"trace_id": "ab".repeat(16)}]]
        }]})
    );
}

#[test]
fn requests_merge_per_tenant_and_protocol_under_the_cap() {
    let mk = |tenant: Option<&str>, body: Vec<u8>, protocol| {
        LokiRequest::new(
            Push {
                tenant: tenant.map(Arc::from),
                items: 1,
                body,
            },
            protocol,
            100,
        )
    };
    let p = |n: &str| {
        PushRequest {
            streams: vec![StreamAdapter {
                labels: format!("{{a=\"{n}\"}}"),
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    let mut a = mk(Some("t"), p("1"), Protocol::PushProtobuf);
    a.merge(mk(Some("t"), p("2"), Protocol::PushProtobuf))
        .unwrap();
    assert_eq!(a.item_count(), 2);
    assert_eq!(PushRequest::decode(&a.body()[..]).unwrap().streams.len(), 2);
    assert!(a
        .merge(mk(Some("u"), p("3"), Protocol::PushProtobuf))
        .is_err());
    assert!(a
        .merge(mk(Some("t"), vec![0; 90], Protocol::PushProtobuf))
        .is_err());

    let mut j = mk(
        None,
        br#"{"streams":[{"x":1}]}"#.to_vec(),
        Protocol::PushJson,
    );
    j.merge(mk(
        None,
        br#"{"streams":[{"y":2}]}"#.to_vec(),
        Protocol::PushJson,
    ))
    .unwrap();
    assert_eq!(&j.body()[..], br#"{"streams":[{"x":1},{"y":2}]}"#);
}

#[test]
fn otlp_protocol_sends_export_requests_split_by_resource_tenant() {
    let enc = Encoder::new(&config(
        "{protocol: otlp, endpoint: 'http://loki:3100/otlp', tenant: {from_attribute: tenant, id: dflt}}",
    ));
    let mut sig = logs(
        vec![s("tenant", "a")],
        vec![rec(T0, "x", vec![]), rec(T0, "y", vec![])],
    );
    if let (Signal::Logs(v), Signal::Logs(w)) = (&mut sig, logs(vec![], vec![rec(T0, "z", vec![])]))
    {
        v.extend(w);
    }
    let (pushes, _) = enc.encode(&sig, 0);
    let got: Vec<(Option<&str>, usize)> = pushes
        .iter()
        .map(|p| (p.tenant.as_deref(), p.items))
        .collect();
    assert_eq!(got, vec![(Some("a"), 2), (Some("dflt"), 1)]);
    let req = confluo_pipeline::proto::logs_service::ExportLogsServiceRequest::decode(
        &pushes[0].body[..],
    )
    .unwrap();
    assert_eq!(req.resource_logs[0].scope_logs[0].log_records.len(), 2);
}

// ---------------------------------------------------------------- answers

#[test]
fn rejected_lines_are_counted_from_lokis_text() {
    let ingester = "entry with timestamp 2024-01-01 00:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: x, oldest acceptable timestamp is: y',\n\
                    entry with timestamp 2024-01-01 00:00:01 +0000 UTC ignored, reason: 'entry too far behind',\n\
                    user 'fake', total ignored: 2 out of 5 for stream: {a=\"b\"}";
    assert_eq!(rejected_count(ingester, 10), 2);
    assert_eq!(classify(ingester), "out_of_order");
    let distributor = "entry for stream '{a=\"b\"}' has timestamp too old: 2020-01-01, oldest acceptable timestamp is: 2024-01-01\n\
                       entry for stream '{a=\"b\"}' has timestamp too old: 2020-01-02, oldest acceptable timestamp is: 2024-01-01";
    assert_eq!(rejected_count(distributor, 10), 2);
    assert_eq!(classify(distributor), "too_old");
    assert_eq!(rejected_count("error parsing labels: unexpected", 7), 7);
    assert_eq!(classify("error parsing labels"), "invalid_labels");
    assert_eq!(
        rejected_count("user 'x', total ignored: 50 out of 50", 7),
        7
    );
    assert_eq!(rejected_count("", 3), 3);
}

#[test]
fn config_defaults_and_errors() {
    let c = config("{endpoint: 'http://loki:3100/loki/api/v1/push'}");
    assert_eq!(c.protocol, Protocol::PushProtobuf);
    assert_eq!(c.effective_compression(), Compression::Snappy);
    assert_eq!(c.max_labels, 15);
    assert_eq!(c.max_push_bytes.0, 4 << 20);
    assert_eq!(
        c.labels.resource_labels().0.len(),
        DEFAULT_RESOURCE_LABELS.len()
    );
    let c = config("{endpoint: 'http://loki:3100/otlp', protocol: otlp}");
    assert_eq!(
        c.url().unwrap().to_string(),
        "http://loki:3100/otlp/v1/logs"
    );
    assert_eq!(c.effective_compression(), Compression::Gzip);

    let problems = |yaml: &str| -> Vec<String> {
        LokiFactory
            .check(&Node::from_yaml_str("t.yaml", yaml).unwrap())
            .into_iter()
            .filter(ConfigError::is_error)
            .map(|e| e.to_string())
            .collect()
    };
    assert!(problems("{}")[0].contains("endpoint"));
    assert!(
        problems("{endpoint: 'http://l/loki/api/v1/push', compression: gzip}")[0]
            .contains("snappy")
    );
    assert!(
        problems("{endpoint: 'http://l/loki/api/v1/push', labels: {static: {'a-b': x}}}")[0]
            .contains("a-b")
    );
    assert!(problems(
        "{endpoint: 'http://l/loki/api/v1/push', labels: {resource: {x.y: 'bad name'}}}"
    )[0]
    .contains("bad name"));
    assert!(
        problems("{endpoint: 'http://l/loki/api/v1/push', tenant: {id: 'a/b'}}")[0]
            .contains("tenant")
    );
    assert!(problems("{endpoint: 'http://l/loki/api/v1/push', lables: {}}")[0].contains("lables"));
    assert!(problems("{endpoint: 'http://l/loki/api/v1/push', auth: {basic: {username: u, password: p}, bearer_token: t}}")[0].contains("not both"));
    let secret =
        problems("{endpoint: 'http://l/loki/api/v1/push', auth: {bearer_token: \"s3cr3t\\n\"}}");
    assert!(
        !secret.is_empty() && !secret.iter().any(|e| e.contains("s3cr3t")),
        "{secret:?}"
    );
    assert!(
        problems("{endpoint: 'http://l:3100/loki/api/v1/push', protocol: otlp}")[0]
            .contains("base URL")
    );
}

#[test]
fn base64_matches_rfc4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
}

#[derive(Clone, Debug, Default)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

#[derive(Debug)]
struct Seen {
    headers: HeaderMap,
    /// Snappy-decoded (or gunzipped) body.
    body: Vec<u8>,
}

#[derive(Default)]
struct Recorder {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

async fn handle(
    State(rec): State<Arc<Recorder>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let body = if headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == "application/x-protobuf")
    {
        snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("raw snappy")
    } else if headers.get(CONTENT_ENCODING).is_some_and(|v| v == "gzip") {
        confluo_pipeline::compression::decompress(Some("gzip"), body, 64 << 20)
            .unwrap()
            .to_vec()
    } else {
        body.to_vec()
    };
    rec.seen.lock().unwrap().push(Seen { headers, body });
    let r = rec.script.lock().unwrap().pop_front().unwrap_or(Reply {
        status: 204,
        ..Default::default()
    });
    let mut resp = (http::StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    resp
}

async fn serve(script: Vec<Reply>) -> (Arc<Recorder>, SocketAddr) {
    let rec = Arc::new(Recorder::default());
    *rec.script.lock().unwrap() = script.into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(handle))
        .with_state(rec.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (rec, addr)
}

fn exporter(yaml: &str) -> (Arc<dyn Exporter>, ComponentContext) {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "loki");
    let exp = LokiFactory
        .create(ctx.clone(), &node, SignalSet::only(SignalKind::Logs))
        .unwrap();
    (exp, ctx)
}

fn cfg(addr: SocketAddr, extra: &str) -> String {
    format!(
        "{{endpoint: 'http://{addr}/loki/api/v1/push', sending_queue: {{enabled: false}}, \
         retry_on_failure: {{initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 5s}}{extra}}}"
    )
}

fn metric(ctx: &ComponentContext, name: &str, labels: &str) -> u64 {
    let text = ctx.telemetry.render();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn pushes_snappy_protobuf_with_tenant_and_basic_auth() {
    let (rec, addr) = serve(vec![]).await;
    let (exp, _) = exporter(&cfg(
        addr,
        ", tenant: {id: team-1}, auth: {basic: {username: u, password: p}}",
    ));
    exp.start().await.unwrap();
    let sig = logs(vec![s("service.name", "svc")], vec![rec_at(1), rec_at(0)]);
    exp.consume(Batch::new(sig)).await.unwrap();
    let seen = rec.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let h = |n: &str| {
        seen[0]
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    assert_eq!(h("content-type").as_deref(), Some("application/x-protobuf"));
    assert_eq!(h("content-encoding"), None);
    assert_eq!(h("x-scope-orgid").as_deref(), Some("team-1"));
    assert_eq!(h("authorization").as_deref(), Some("Basic dTpw"));
    let req = PushRequest::decode(&seen[0].body[..]).unwrap();
    let times: Vec<u64> = req.streams[0]
        .entries
        .iter()
        .map(|e| e.unix_nanos())
        .collect();
    assert_eq!(times, vec![T0, T0 + 1]);
}

fn rec_at(k: u64) -> LogRecord {
    rec(T0 + k, &format!("line {k}"), vec![])
}

#[tokio::test]
async fn retries_429_after_retry_after_and_never_retries_400() {
    let (rec, addr) = serve(vec![
        Reply {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: "Ingestion rate limit exceeded".into(),
        },
        Reply {
            status: 400,
            headers: vec![],
            body: "entry with timestamp x ignored, reason: 'entry too far behind',\nuser 'fake', total ignored: 1 out of 3 for stream: {a=\"b\"}".into(),
        },
    ])
    .await;
    let (exp, ctx) = exporter(&cfg(addr, ""));
    exp.start().await.unwrap();
    let sig = logs(
        vec![s("service.name", "svc")],
        vec![rec_at(0), rec_at(1), rec_at(2)],
    );
    let started = Instant::now();
    exp.consume(Batch::new(sig.clone())).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After ignored"
    );
    assert_eq!(rec.seen.lock().unwrap().len(), 2);
    // The 400 of the second push: 1 of 3 lines rejected, not retried.
    exp.consume(Batch::new(sig)).await.unwrap();
    assert_eq!(rec.seen.lock().unwrap().len(), 3);
    let exp_label = "exporter=\"loki\"";
    assert_eq!(
        metric(&ctx, "otelcol_exporter_sent_log_records", exp_label),
        5
    );
    // 3 from the 429 attempt, 1 rejected by the 400.
    assert_eq!(
        metric(&ctx, "otelcol_exporter_send_failed_log_records", exp_label),
        4
    );
    assert_eq!(
        metric(
            &ctx,
            "otelcol_exporter_loki_rejected_log_records",
            "reason=\"out_of_order\""
        ),
        1
    );
}

#[tokio::test]
async fn auth_failures_are_permanent_and_5xx_retried() {
    let (rec, addr) = serve(vec![
        Reply {
            status: 500,
            ..Default::default()
        },
        Reply {
            status: 401,
            body: "no org id".into(),
            ..Default::default()
        },
    ])
    .await;
    let (exp, _) = exporter(&cfg(addr, ""));
    exp.start().await.unwrap();
    let err = exp
        .consume(Batch::new(logs(vec![], vec![rec_at(0)])))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(rec.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn json_protocol_is_gzipped_json() {
    let (rec, addr) = serve(vec![]).await;
    let (exp, _) = exporter(&cfg(addr, ", protocol: push_json"));
    exp.start().await.unwrap();
    exp.consume(Batch::new(logs(vec![], vec![rec_at(0)])))
        .await
        .unwrap();
    let seen = rec.seen.lock().unwrap();
    assert_eq!(
        seen[0].headers.get(CONTENT_TYPE).unwrap(),
        "application/json"
    );
    assert_eq!(seen[0].headers.get(CONTENT_ENCODING).unwrap(), "gzip");
    let v: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(v["streams"][0]["values"][0][0], T0.to_string());
}

/// Release-mode figure for the encode path (labels, lines, sorting,
/// protobuf, snappy) on structlog-shaped ~300-byte lines:
/// `cargo test -p confluo-exporters --release loki::tests::bench_encode -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_encode() {
    let enc = encoder("");
    let n = 2000;
    let records: Vec<LogRecord> = (0..n)
        .map(|k| LogRecord {
            time_unix_nano: T0 + k as u64 * 1000,
            severity_number: if k % 10 == 0 { 13 } else { 9 },
            severity_text: "info".into(),
            body: Some(attrs::string(format!(
                "user logged in successfully from the mobile app after password reset #{k}"
            ))),
            attributes: vec![
                s("logger", "app.auth.handlers"),
                i("user_id", 1_000_000 + k as i64),
                s("request_id", &format!("{:032x}", k * 7919)),
                s("path", "/api/v1/session/login"),
                s("method", "POST"),
                i("status", 200),
                attrs::key_value("duration_ms", attrs::double(12.5 + k as f64)),
                s("client_ip", "203.0.113.42"),
            ],
            trace_id: vec![7; 16],
            span_id: vec![3; 8],
            ..Default::default()
        })
        .collect();
    let sig = logs(
        vec![
            s("service.name", "auth"),
            s("deployment.environment", "prod"),
            s("host.name", "node-1"),
        ],
        records,
    );
    let (p, _) = enc.encode(&sig, 0);
    let line_len = decode(&p[0]).streams[0].entries[0].line.len();
    let rounds = 200;
    let mut wire = 0usize;
    let mut raw = 0usize;
    let (mut t_encode, mut t_snappy) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = thread_cpu();
        let (pushes, _) = enc.encode(&sig, 0);
        t_encode += thread_cpu() - t;
        let t = thread_cpu();
        for p in pushes {
            raw += p.body.len();
            wire += snap::raw::Encoder::new()
                .compress_vec(&p.body)
                .unwrap()
                .len();
        }
        t_snappy += thread_cpu() - t;
    }
    let secs = (t_encode + t_snappy).as_secs_f64();
    let lines = (rounds * n) as f64;
    println!(
        "loki encode+snappy: {:.0} lines per CPU-second ({} lines of {line_len} bytes, {:.1} MB/s uncompressed, ratio {:.2}); \
         encode alone {:.0} lines/s, snappy alone {:.0} lines/s",
        lines / secs,
        rounds * n,
        raw as f64 / secs / 1e6,
        raw as f64 / wire as f64,
        lines / t_encode.as_secs_f64(),
        lines / t_snappy.as_secs_f64(),
    );
}

/// CPU time of this thread (the machine is shared: wall time would
/// measure the neighbours), from /proc/thread-self/schedstat.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

#[test]
fn unused_value_types_render_as_text() {
    let v = AnyValue::default();
    assert_eq!(attrs::to_text(&v), "");
}

proptest! {
    /// Numbers in `json` lines are written without `fmt` but exactly as
    /// `Display` writes them (no exponent, shortest round-trip digits).
    #[test]
    fn numbers_render_as_display(n in any::<i64>(), bits in any::<u64>(), d in -1e6f64..1e6) {
        let mut out = Vec::new();
        write_json_value(&mut out, &attrs::int(n));
        prop_assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        for f in [d, f64::from_bits(bits), 1e300, -1e-300, 0.0, -0.0, 112.47] {
            if !f.is_finite() {
                continue;
            }
            let mut out = Vec::new();
            write_json_value(&mut out, &attrs::double(f));
            prop_assert_eq!(String::from_utf8(out).unwrap(), f.to_string());
        }
    }
}
