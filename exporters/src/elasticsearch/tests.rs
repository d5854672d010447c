use super::encode::{document_id, sanitize, write_rfc3339, Encoded};
use super::*;
use crate::testdata;
use confluo_config::Node;
use confluo_pipeline::attrs::{key_value, string};
use confluo_pipeline::proto::common::InstrumentationScope;
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::{ComponentKind, Signal};
use proptest::prelude::*;
use std::collections::VecDeque;

fn cfg(yaml: &str) -> EsConfig {
    Node::from_yaml_str("t.yaml", yaml)
        .unwrap()
        .deserialize()
        .unwrap()
}

fn encoder(mode: config::MappingMode) -> Encoder {
    Encoder {
        mode,
        logs_index: None,
        traces_index: None,
        deterministic_id: false,
        max_bytes: 0,
    }
}

fn lines(e: &Encoded) -> Vec<String> {
    let text = std::str::from_utf8(&e.body).unwrap();
    assert!(text.ends_with('\n'), "a bulk body ends with a newline");
    text.lines().map(String::from).collect()
}

fn rfc(n: u64) -> String {
    let mut out = Vec::new();
    write_rfc3339(&mut out, n);
    String::from_utf8(out).unwrap()
}

#[test]
fn rfc3339_known_values() {
    assert_eq!(rfc(0), "\"1970-01-01T00:00:00.000000000Z\"");
    assert_eq!(
        rfc(1_714_564_800_123_456_789),
        "\"2024-05-01T12:00:00.123456789Z\""
    );
    // A leap day and the last nanosecond of a year.
    assert_eq!(
        rfc(951_782_400_000_000_000),
        "\"2000-02-29T00:00:00.000000000Z\""
    );
    assert_eq!(
        rfc(1_704_067_199_999_999_999),
        "\"2023-12-31T23:59:59.999999999Z\""
    );
}

/// Naive calendar walk, to check the closed-form formatter against.
fn naive(unix_nanos: u64) -> String {
    let mut secs = unix_nanos / 1_000_000_000;
    let mut year = 1970u64;
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    loop {
        let len = if leap(year) { 366 } else { 365 } * 86_400;
        if secs < len {
            break;
        }
        secs -= len;
        year += 1;
    }
    let mut month = 1;
    let days = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    for d in days {
        if secs < d * 86_400 {
            break;
        }
        secs -= d * 86_400;
        month += 1;
    }
    format!(
        "\"{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z\"",
        secs / 86_400 + 1,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
        unix_nanos % 1_000_000_000
    )
}

proptest! {
    #[test]
    fn rfc3339_matches_a_calendar_walk(n in 0u64..=4_102_444_800_000_000_000) {
        prop_assert_eq!(rfc(n), naive(n));
    }

    /// Any attribute text gives one valid JSON action line and one valid
    /// JSON document line per record, in both modes.
    #[test]
    fn documents_are_valid_json(key in "\\PC{0,12}", value in "\\PC{0,24}", body in "\\PC{0,24}") {
        let signal = Signal::Logs(vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![key_value(key.clone(), string(value.clone()))], ..Default::default() }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(string(body.clone())),
                    attributes: vec![key_value(key.clone(), string(value.clone())), key_value("data_stream.dataset", string(value.clone()))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        for mode in [config::MappingMode::Otel, config::MappingMode::Ecs] {
            let e = encoder(mode).encode(&signal);
            prop_assert_eq!(e.len(), 1);
            let l = lines(&e[0]);
            prop_assert_eq!(l.len(), 2);
            let action: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
            let index = action["create"]["_index"].as_str().unwrap().to_string();
            prop_assert_eq!(index.matches('-').count(), 2, "{}", index);
            prop_assert!(!index.contains([' ', '*', '"', '/', ',', '#', '\\', '|', '<', '>', '?', ':']), "{}", index);
            prop_assert_eq!(index.to_lowercase(), index.clone());
            let doc: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
            prop_assert!(doc.is_object());
        }
    }
}

#[test]
fn otel_log_document_golden() {
    let e = encoder(config::MappingMode::Otel).encode(&testdata::logs());
    let l = lines(&e[0]);
    assert_eq!(l.len(), 4);
    assert_eq!(l[0], r#"{"create":{"_index":"logs-generic.otel-default"}}"#);
    assert_eq!(
        l[1],
        concat!(
            r#"{"@timestamp":"2023-11-14T22:13:20.000000000Z","observed_timestamp":"2023-11-14T22:13:20.000000005Z","#,
            r#""data_stream":{"type":"logs","dataset":"generic.otel","namespace":"default"},"#,
            r#""severity_text":"ERROR","severity_number":17,"#,
            r#""trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","#,
            r#""attributes":{"user":{"id":7}},"body":{"text":"payment failed"},"#,
            r#""resource":{"attributes":{"service.name":"checkout","host.name":"node-1"}},"#,
            r#""scope":{"name":"io.confluo.test","version":"1.2.3"}}"#
        )
    );
    // No trace context, no observed time, no severity text: those keys are absent.
    assert_eq!(
        l[3],
        concat!(
            r#"{"@timestamp":"2023-11-14T22:13:20.000000001Z","#,
            r#""data_stream":{"type":"logs","dataset":"generic.otel","namespace":"default"},"#,
            r#""severity_number":9,"attributes":{},"body":{"text":"retrying"},"#,
            r#""resource":{"attributes":{"service.name":"checkout","host.name":"node-1"}},"#,
            r#""scope":{"name":"io.confluo.test","version":"1.2.3"}}"#
        )
    );
}

#[test]
fn ecs_log_document_golden() {
    let e = encoder(config::MappingMode::Ecs).encode(&testdata::logs());
    let l = lines(&e[0]);
    assert_eq!(l[0], r#"{"create":{"_index":"logs-generic-default"}}"#);
    assert_eq!(
        l[1],
        concat!(
            r#"{"@timestamp":"2023-11-14T22:13:20.000000000Z","message":"payment failed","#,
            r#""log.level":"ERROR","event.severity":17,"#,
            r#""trace.id":"0102030405060708090a0b0c0d0e0f10","span.id":"0102030405060708","#,
            r#""log.logger":"io.confluo.test","#,
            r#""data_stream":{"type":"logs","dataset":"generic","namespace":"default"},"#,
            r#""service.name":"checkout","host.name":"node-1","labels.user":{"id":7}}"#
        )
    );
}

#[test]
fn ecs_maps_exceptions_and_dedupes_labels() {
    let signal = Signal::Logs(vec![ResourceLogs {
        resource: Some(Resource {
            attributes: vec![
                testdata::s("deployment.environment.name", "prod"),
                testdata::s("deployment.environment", "old"),
                testdata::s("team.name", "pay"),
            ],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: vec![LogRecord {
                attributes: vec![
                    testdata::s("exception.type", "ValueError"),
                    testdata::s("exception.stacktrace", "tb"),
                    testdata::s("a.b", "1"),
                    testdata::s("a_b", "2"),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let e = encoder(config::MappingMode::Ecs).encode(&signal);
    let doc: serde_json::Value = serde_json::from_str(&lines(&e[0])[1]).unwrap();
    assert_eq!(doc["service.environment"], "prod");
    assert_eq!(doc["labels.team_name"], "pay");
    assert_eq!(doc["error.type"], "ValueError");
    assert_eq!(doc["error.stack_trace"], "tb");
    assert_eq!(
        doc["labels.a_b"], "1",
        "the first of two colliding labels wins"
    );
    // serde_json keeps the last duplicate key: check there is none.
    assert_eq!(lines(&e[0])[1].matches("labels.a_b").count(), 1);
}

#[test]
fn otel_span_document() {
    let e = encoder(config::MappingMode::Otel).encode(&testdata::traces());
    let l = lines(&e[0]);
    assert_eq!(
        l[0],
        r#"{"create":{"_index":"traces-generic.otel-default"}}"#
    );
    let doc: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(doc["data_stream"]["type"], "traces");
    assert!(doc["name"].is_string());
    assert!(doc["kind"].is_string());
    assert!(doc["duration"].is_u64());
    assert!(doc["status"]["code"].is_string());
    assert_eq!(doc["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(doc["resource"]["attributes"]["service.name"], "checkout");
    let spans: Vec<serde_json::Value> = l
        .iter()
        .skip(1)
        .step_by(2)
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(spans
        .iter()
        .any(|s| s["events"].as_array().is_some_and(|e| !e.is_empty())));
    assert!(spans
        .iter()
        .any(|s| s["links"].as_array().is_some_and(|e| !e.is_empty())));
}

fn routed_logs(
    record: &[(&str, &str)],
    scope: &[(&str, &str)],
    resource: &[(&str, &str)],
) -> Signal {
    let kv = |p: &[(&str, &str)]| p.iter().map(|(k, v)| testdata::s(k, v)).collect::<Vec<_>>();
    Signal::Logs(vec![ResourceLogs {
        resource: Some(Resource {
            attributes: kv(resource),
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                attributes: kv(scope),
                ..Default::default()
            }),
            log_records: vec![LogRecord {
                attributes: kv(record),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn index_of(enc: &Encoder, s: &Signal) -> String {
    let l = lines(&enc.encode(s)[0]);
    let a: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    a["create"]["_index"].as_str().unwrap().to_string()
}

#[test]
fn data_stream_routing_from_attributes() {
    let otel = encoder(config::MappingMode::Otel);
    let ecs = encoder(config::MappingMode::Ecs);
    let none = routed_logs(&[], &[], &[]);
    assert_eq!(index_of(&otel, &none), "logs-generic.otel-default");
    assert_eq!(index_of(&ecs, &none), "logs-generic-default");
    // Record beats scope beats resource.
    let s = routed_logs(
        &[("data_stream.dataset", "nginx")],
        &[
            ("data_stream.dataset", "scope"),
            ("data_stream.namespace", "prod"),
        ],
        &[
            ("data_stream.dataset", "res"),
            ("data_stream.namespace", "dev"),
        ],
    );
    assert_eq!(index_of(&otel, &s), "logs-nginx.otel-prod");
    assert_eq!(index_of(&ecs, &s), "logs-nginx-prod");
    let s = routed_logs(&[], &[], &[("data_stream.namespace", "dev")]);
    assert_eq!(index_of(&ecs, &s), "logs-generic-dev");
    // Already suffixed, and characters an index cannot hold.
    let s = routed_logs(&[("data_stream.dataset", "My-App/x.otel")], &[], &[]);
    assert_eq!(index_of(&otel, &s), "logs-my_app_x.otel-default");
    assert_eq!(sanitize(&"x".repeat(300)).len(), 100);
    // The routing attributes are not repeated inside `attributes`.
    let l = lines(
        &otel.encode(&routed_logs(
            &[("data_stream.dataset", "a"), ("k", "v")],
            &[],
            &[],
        ))[0],
    );
    let doc: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(doc["attributes"], serde_json::json!({"k": "v"}));
    assert_eq!(doc["data_stream"]["dataset"], "a.otel");
    // A fixed index wins and writes no data_stream fields.
    let fixed = Encoder {
        logs_index: Some("my-logs".into()),
        ..otel.clone()
    };
    assert_eq!(index_of(&fixed, &s), "my-logs");
    let doc: serde_json::Value = serde_json::from_str(&lines(&fixed.encode(&s)[0])[1]).unwrap();
    assert!(doc.get("data_stream").is_none());
}

fn many_logs(n: usize) -> Signal {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            body: Some(string(format!("record {i}"))),
            ..Default::default()
        })
        .collect();
    Signal::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

#[test]
fn bulk_bodies_split_at_max_bytes_and_ids_are_deterministic() {
    let enc = Encoder {
        max_bytes: 600,
        deterministic_id: true,
        ..encoder(config::MappingMode::Otel)
    };
    let parts = enc.encode(&many_logs(20));
    assert!(
        parts.len() > 1,
        "20 documents of ~200 bytes need several 600-byte bodies"
    );
    let mut bodies = Vec::new();
    for p in &parts {
        assert!(p.body.len() <= 600, "{}", p.body.len());
        let l = lines(p);
        assert_eq!(l.len(), 2 * p.items.len());
        for (k, r) in p.items.iter().enumerate() {
            let item = std::str::from_utf8(&p.body[r.clone()]).unwrap();
            assert_eq!(item, format!("{}\n{}\n", l[2 * k], l[2 * k + 1]));
            let a: serde_json::Value = serde_json::from_str(&l[2 * k]).unwrap();
            assert_eq!(a["create"]["_id"], document_id(l[2 * k + 1].as_bytes()));
            bodies.push(l[2 * k + 1].clone());
        }
    }
    assert_eq!(bodies.len(), 20);
    assert!(bodies[3].contains("record 3"), "documents keep their order");
    // Same input → same ids; different documents → different ids.
    let again = enc.encode(&many_logs(20));
    assert_eq!(again[0].body, parts[0].body);
    assert_ne!(document_id(b"{\"a\":1}"), document_id(b"{\"a\":2}"));
    assert_eq!(document_id(b"x").len(), 32);
}

fn request(n: usize) -> BulkRequest {
    let mut e = encoder(config::MappingMode::Otel)
        .encode(&many_logs(n))
        .pop()
        .unwrap();
    e.items.truncate(n);
    BulkRequest::new(SignalKind::Logs, e, 0)
}

#[test]
fn retry_subset_is_cut_from_the_original_bytes() {
    let r = request(5);
    r.attempts.store(1, Ordering::Relaxed);
    let sub = r.subset(&[1, 3]);
    assert_eq!(sub.item_count(), 2);
    let mut expected = r.item(1).to_vec();
    expected.extend_from_slice(r.item(3));
    assert_eq!(sub.body(), &expected[..]);
    assert_eq!(sub.item(1), r.item(3));
    assert_eq!(sub.attempts(), 1, "a subset carries its attempts");
    // Merging shifts the second request's ranges.
    let mut a = request(2);
    let b = request(3);
    let b_items: Vec<Vec<u8>> = (0..3).map(|i| b.item(i).to_vec()).collect();
    a.merge(b).unwrap();
    assert_eq!(a.item_count(), 5);
    assert_eq!(a.item(4), &b_items[2][..]);
    assert!(a.body().ends_with(b"\n"));
    let mut capped = BulkRequest::new(SignalKind::Logs, Encoded::default(), 10);
    assert!(capped.merge(request(1)).is_err(), "over max_bytes");
}

fn item(status: u16, ty: &str) -> ItemStatus {
    ItemStatus {
        status,
        error_type: ty.into(),
        reason: if ty.is_empty() {
            String::new()
        } else {
            format!("{ty} reason")
        },
    }
}

#[test]
fn response_items_are_classified() {
    let body = br#"{"took":3,"errors":true,"items":[
        {"create":{"_index":"i","_id":"1","status":201,"result":"created"}},
        {"create":{"_index":"i","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
        {"create":{"_index":"i","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
        {"create":{"_index":"i","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [x]"}}},
        {"index":{"_index":"i","status":500,"error":{"type":"internal_server_error"}}}]}"#;
    let (errors, items) = parse_response(body).unwrap();
    assert!(errors);
    assert_eq!(items[0], item(201, ""));
    assert_eq!(items[3].error_type, "mapper_parsing_exception");
    assert_eq!(items[3].reason, "failed to parse field [x]");
    assert_eq!(items[4].status, 500);

    // Defaults: retry 429 only; 409 with a deterministic id is indexed.
    let c = classify_items(&items, true, &[429], true);
    assert_eq!(c.retry, vec![1]);
    assert_eq!(c.already_indexed, 1);
    let dropped: Vec<(usize, &str)> = c.dropped.iter().map(|(i, t, _)| (*i, t.as_str())).collect();
    assert_eq!(
        dropped,
        vec![
            (3, "mapper_parsing_exception"),
            (4, "internal_server_error")
        ]
    );
    // 5xx made retryable by config.
    let c = classify_items(&items, true, &[429, 500], true);
    assert_eq!(c.retry, vec![1, 4]);
    assert_eq!(c.dropped.len(), 1);
    // Without a deterministic id a 409 is a real conflict: dropped.
    let c = classify_items(&items, false, &[429], true);
    assert_eq!(c.already_indexed, 0);
    assert!(c
        .dropped
        .iter()
        .any(|(i, t, _)| *i == 2 && t == "version_conflict_engine_exception"));
    // No retries left: the 429 is dropped too, saying why.
    let c = classify_items(&items, true, &[429], false);
    assert!(c.retry.is_empty());
    assert!(c
        .dropped
        .iter()
        .any(|(i, _, r)| *i == 1 && r.contains("last retry")));
    // A filter_path response without errors.
    assert_eq!(
        parse_response(br#"{"errors":false}"#).unwrap(),
        (false, vec![])
    );
    assert!(parse_response(b"not json").is_err());
}

#[test]
fn config_defaults_and_errors() {
    let c = cfg("{endpoint: http://es:9200}");
    assert_eq!(c.mapping.mode, config::MappingMode::Otel);
    assert_eq!(c.retry.retry_on_status, vec![429]);
    assert_eq!(c.retry.max_retries, 2);
    assert_eq!(c.timeout.0, Duration::from_secs(90));
    let q = c.queue();
    assert_eq!(
        (q.queue_size, q.num_consumers, q.block_on_overflow),
        (10, 10, true)
    );
    let b = q.batch.unwrap();
    assert_eq!(
        (b.min_size, b.max_size, b.flush_timeout.0),
        (1_000_000, 5_000_000, Duration::from_secs(10))
    );
    assert_eq!(
        c.bulk_urls().unwrap()[0].to_string(),
        "http://es:9200/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"
    );
    // flush overrides the batch bounds; a partial sending_queue keeps the exporter's defaults.
    let c = cfg("{endpoint: http://es:9200/, flush: {bytes: 1000, interval: 1s}, sending_queue: {num_consumers: 2}, pipeline: p1}");
    let q = c.queue();
    assert_eq!((q.queue_size, q.num_consumers), (10, 2));
    let b = q.batch.unwrap();
    assert_eq!(
        (b.min_size, b.max_size, b.flush_timeout.0),
        (1000, 1000, Duration::from_secs(1))
    );
    assert_eq!(c.max_request_bytes(), 1000);
    assert!(c.bulk_urls().unwrap()[0]
        .to_string()
        .ends_with("&pipeline=p1"));
    assert!(c.bulk_urls().unwrap()[0]
        .to_string()
        .starts_with("http://es:9200/_bulk?"));

    let check = |yaml: &str| {
        let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
        ElasticsearchFactory
            .check(&node)
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        check("{endpoints: [http://a:9200, https://b:9200], api_key: k}"),
        ""
    );
    assert!(check("{endpoint: http://a, endpoints: [http://b]}").contains("only one"));
    assert!(check("{endpoint: http://a, mapping: {mode: raw}}").contains("only `otel` and `ecs`"));
    assert!(
        check("{endpoint: http://a, user: u, password: p, api_key: k}").contains("only one of")
    );
    assert!(check("{endpoint: http://a, logs_index: Logs}").contains("lower case"));
    assert!(check("{endpoint: ftp://a}").contains("http://"));
    let userinfo = check("{endpoint: \"http://elastic:hunter2@a:9200\"}");
    assert!(
        userinfo.contains("credentials") && !userinfo.contains("hunter2"),
        "{userinfo}"
    );
    assert!(check("{endpoint: http://a, flush: {byts: 1}}").contains("byts"));
    assert!(check("{endpoint: http://a, cloudid: x}").contains("cloudid"));
    let secret = check("{endpoint: http://a, api_key: \"sec\\nret\"}");
    assert!(
        secret.contains("api_key") && !secret.contains("sec"),
        "{secret}"
    );
    // The helper's retry comes from the Collector's `retry` block.
    let h = cfg("{endpoint: http://a, retry: {initial_interval: 5ms, max_retries: 0}}").helper();
    assert!(!h.retry.enabled);
    let h = cfg("{endpoint: http://a, retry: {initial_interval: 5ms}}").helper();
    assert!(h.retry.enabled && h.retry.initial_interval.0 == Duration::from_millis(5));
    assert!(h.retry.max_elapsed_time.0.is_zero());
}

// ---------------------------------------------------------------- sender

/// Headers and decompressed body of one request.
type Seen = (http::HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Server {
    /// Scripted (status, body) answers; 200 `errors:false` when empty.
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
    /// (headers, decompressed body) of every request.
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn serve(server: Server) -> String {
    use axum::body::Bytes as AxBytes;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/_bulk",
        post(move |headers: http::HeaderMap, body: AxBytes| {
            let server = server.clone();
            async move {
                let gz = headers.get(CONTENT_ENCODING).is_some_and(|v| v == "gzip");
                let body = if gz {
                    confluo_pipeline::compression::decompress(Some("gzip"), body, 1 << 26)
                        .unwrap()
                        .to_vec()
                } else {
                    body.to_vec()
                };
                server.seen.lock().unwrap().push((headers, body));
                let (status, text) = server
                    .answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or((200, r#"{"errors":false}"#.into()));
                (http::StatusCode::from_u16(status).unwrap(), text)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn items_answer(statuses: &[(u16, &str)]) -> (u16, String) {
    let items: Vec<String> = statuses
        .iter()
        .map(|(s, ty)| {
            if ty.is_empty() {
                format!(r#"{{"create":{{"status":{s}}}}}"#)
            } else {
                format!(
                    r#"{{"create":{{"status":{s},"error":{{"type":"{ty}","reason":"why {ty}"}}}}}}"#
                )
            }
        })
        .collect();
    (
        200,
        format!(r#"{{"errors":true,"items":[{}]}}"#, items.join(",")),
    )
}

#[tokio::test]
async fn sender_retries_exactly_the_retryable_items() {
    let server = Server::default();
    let url = serve(server.clone()).await;
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "elasticsearch/t");
    let c = cfg(&format!(
        "{{endpoints: [{dead}, {url}], api_key: a2V5, id: {{deterministic: true}}, retry: {{max_retries: 2}}}}"
    ));
    let sender = EsSender::new(&c, &ctx).unwrap();
    let req = sender
        .encode(&Batch::new(many_logs(5)))
        .unwrap()
        .pop()
        .unwrap();
    server.answers.lock().unwrap().push_back(items_answer(&[
        (201, ""),
        (429, "es_rejected_execution_exception"),
        (409, "version_conflict_engine_exception"),
        (400, "mapper_parsing_exception"),
        (500, "internal_server_error"),
    ]));
    let retry = match sender.send(&req).await {
        SendOutcome::Partial {
            retry: Some(retry),
            rejected,
            error,
        } => {
            assert_eq!(rejected, 2, "{error}");
            assert!(error.contains("mapper_parsing_exception"), "{error}");
            retry
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(retry.item_count(), 1);
    assert_eq!(retry.body(), req.item(1));
    {
        let seen = server.seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            1,
            "the dead endpoint was skipped within the attempt"
        );
        let (h, body) = &seen[0];
        assert_eq!(h[AUTHORIZATION], "ApiKey a2V5");
        assert_eq!(h[CONTENT_TYPE], "application/x-ndjson");
        assert_eq!(h[CONTENT_ENCODING], "gzip");
        assert_eq!(&body[..], req.body());
    }
    let metrics = ctx.telemetry.render();
    for line in [
        r#"otelcol_exporter_elasticsearch_dropped_documents{exporter="elasticsearch/t",error_type="mapper_parsing_exception"} 1"#,
        r#"otelcol_exporter_elasticsearch_dropped_documents{exporter="elasticsearch/t",error_type="internal_server_error"} 1"#,
        r#"otelcol_exporter_elasticsearch_already_indexed_documents{exporter="elasticsearch/t"} 1"#,
        r#"otelcol_exporter_elasticsearch_retried_documents{exporter="elasticsearch/t"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line}\n{metrics}");
    }

    // Attempt 2 of the subset: 429 again → retried once more.
    server
        .answers
        .lock()
        .unwrap()
        .push_back(items_answer(&[(429, "es_rejected_execution_exception")]));
    let retry2 = match sender.send(&retry).await {
        SendOutcome::Partial {
            retry: Some(r),
            rejected: 0,
            ..
        } => r,
        other => panic!("{other:?}"),
    };
    // Attempt 3 (= 1 + max_retries): 429 a third time → dropped, not retried.
    server
        .answers
        .lock()
        .unwrap()
        .push_back(items_answer(&[(429, "es_rejected_execution_exception")]));
    match sender.send(&retry2).await {
        SendOutcome::Partial {
            retry: None,
            rejected: 1,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(ctx.telemetry.render().contains(
        r#"otelcol_exporter_elasticsearch_dropped_documents{exporter="elasticsearch/t",error_type="es_rejected_execution_exception"} 1"#
    ));

    // Whole-request answers.
    let fresh = || {
        sender
            .encode(&Batch::new(many_logs(2)))
            .unwrap()
            .pop()
            .unwrap()
    };
    server.answers.lock().unwrap().push_back((
        429,
        r#"{"error":{"type":"too_many_requests","reason":"slow down"},"status":429}"#.into(),
    ));
    assert!(
        matches!(sender.send(&fresh()).await, SendOutcome::Retry { error, .. } if error.contains("too_many_requests"))
    );
    server
        .answers
        .lock()
        .unwrap()
        .push_back((503, String::new()));
    assert!(matches!(
        sender.send(&fresh()).await,
        SendOutcome::Retry { .. }
    ));
    server.answers.lock().unwrap().push_back((
        400,
        r#"{"error":{"type":"illegal_argument_exception","reason":"bad"},"status":400}"#.into(),
    ));
    assert!(
        matches!(sender.send(&fresh()).await, SendOutcome::Permanent { error } if error.contains("illegal_argument_exception: bad"))
    );
    assert!(matches!(sender.send(&fresh()).await, SendOutcome::Sent));
}
