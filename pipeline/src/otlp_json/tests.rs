use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as V, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue,
    KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use proptest::prelude::*;

use super::*;

// ---- builders ---------------------------------------------------------------

fn av(v: V) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn kv(key: &str, v: V) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(av(v)),
        key_strindex: 0,
    }
}

/// Attributes exercising every AnyValue variant, nesting, escapes and
/// non-ASCII text.
fn attrs() -> Vec<KeyValue> {
    vec![
        kv(
            "str",
            V::StringValue("héllo \"wörld\"\n\t\u{1}\u{7f} 😀 \\ /".into()),
        ),
        kv("empty.str", V::StringValue(String::new())),
        kv("bool", V::BoolValue(true)),
        kv("false", V::BoolValue(false)),
        kv("int", V::IntValue(i64::MIN)),
        kv("zero", V::IntValue(0)),
        kv("double", V::DoubleValue(0.30000000000000004)),
        kv("neg.zero", V::DoubleValue(-0.0)),
        kv("bytes", V::BytesValue(vec![0, 1, 2, 0xfe, 0xff])),
        kv("strindex", V::StringValueStrindex(7)),
        kv(
            "array",
            V::ArrayValue(ArrayValue {
                values: vec![
                    av(V::IntValue(1)),
                    AnyValue { value: None },
                    av(V::StringValue("x".into())),
                ],
            }),
        ),
        kv(
            "kvlist",
            V::KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", V::DoubleValue(1e300)),
                    KeyValue {
                        key: "no.value".into(),
                        value: None,
                        key_strindex: 3,
                    },
                ],
            }),
        ),
    ]
}

fn resource() -> Resource {
    Resource {
        attributes: attrs(),
        dropped_attributes_count: 3,
        entity_refs: vec![EntityRef {
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into(), "service.namespace".into()],
            description_keys: vec!["service.version".into()],
        }],
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "my.library".into(),
        version: "1.0.0".into(),
        attributes: vec![kv("scope.attr", V::StringValue("v".into()))],
        dropped_attributes_count: 1,
    }
}

const TID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const SID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
const PSID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73];

fn rich_traces() -> ExportTraceServiceRequest {
    let span = Span {
        trace_id: TID.to_vec(),
        span_id: SID.to_vec(),
        trace_state: "rojo=00f067aa0ba902b7".into(),
        parent_span_id: PSID.to_vec(),
        flags: 0x301,
        name: "I'm a server span".into(),
        kind: 2,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: u64::MAX,
        attributes: attrs(),
        dropped_attributes_count: 4,
        events: vec![span::Event {
            time_unix_nano: 1_544_712_660_500_000_000,
            name: "event".into(),
            attributes: vec![kv("e", V::BoolValue(true))],
            dropped_attributes_count: 5,
        }],
        dropped_events_count: 6,
        links: vec![span::Link {
            trace_id: TID.to_vec(),
            span_id: PSID.to_vec(),
            trace_state: "a=b".into(),
            attributes: vec![kv("l", V::IntValue(-1))],
            dropped_attributes_count: 7,
            flags: 0x100,
        }],
        dropped_links_count: 8,
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(resource()),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(scope()),
                        spans: vec![span, Span::default()],
                        schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                    },
                    // Present-but-empty scope must survive (Some(default)).
                    ScopeSpans {
                        scope: Some(InstrumentationScope::default()),
                        spans: vec![],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://example.com/resource-schema".into(),
            },
            ResourceSpans::default(),
        ],
    }
}

fn exemplars() -> Vec<Exemplar> {
    vec![
        Exemplar {
            filtered_attributes: vec![kv("f", V::StringValue("x".into()))],
            time_unix_nano: 1_544_712_660_300_000_001,
            span_id: SID.to_vec(),
            trace_id: TID.to_vec(),
            value: Some(exemplar::Value::AsDouble(2.5)),
        },
        Exemplar {
            filtered_attributes: vec![],
            time_unix_nano: 1,
            span_id: vec![],
            trace_id: vec![],
            value: Some(exemplar::Value::AsInt(i64::MAX)),
        },
        Exemplar::default(),
    ]
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("I am {name}"),
        unit: "By".into(),
        metadata: vec![kv("meta", V::StringValue("m".into()))],
        data: Some(data),
    }
}

fn rich_metrics() -> ExportMetricsServiceRequest {
    let ndp = |v| NumberDataPoint {
        attributes: attrs(),
        start_time_unix_nano: 1_544_712_660_300_000_000,
        time_unix_nano: 1_544_712_660_300_000_000,
        exemplars: exemplars(),
        flags: 1,
        value: Some(v),
    };
    let metrics = vec![
        metric(
            "gauge",
            Data::Gauge(Gauge {
                data_points: vec![
                    ndp(number_data_point::Value::AsDouble(-1.5e-300)),
                    ndp(number_data_point::Value::AsInt(0)),
                    NumberDataPoint::default(),
                ],
            }),
        ),
        metric(
            "sum",
            Data::Sum(Sum {
                data_points: vec![ndp(number_data_point::Value::AsInt(-42))],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "histogram",
            Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        attributes: attrs(),
                        start_time_unix_nano: 10,
                        time_unix_nano: 20,
                        count: 7,
                        sum: Some(0.0),
                        bucket_counts: vec![1, 0, u64::MAX],
                        explicit_bounds: vec![-1.0, 0.0, 2.5e10],
                        exemplars: exemplars(),
                        flags: 1,
                        min: Some(-3.0),
                        max: Some(9.75),
                    },
                    HistogramDataPoint::default(),
                ],
                aggregation_temporality: 1,
            }),
        ),
        metric(
            "exp",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: attrs(),
                    start_time_unix_nano: 11,
                    time_unix_nano: 21,
                    count: 9,
                    sum: Some(12.5),
                    scale: -3,
                    zero_count: 2,
                    positive: Some(Buckets {
                        offset: -2,
                        bucket_counts: vec![1, 2, 3],
                    }),
                    negative: Some(Buckets::default()),
                    flags: 1,
                    exemplars: exemplars(),
                    min: Some(0.0),
                    max: Some(100.0),
                    zero_threshold: 1e-9,
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "summary",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: attrs(),
                    start_time_unix_nano: 12,
                    time_unix_nano: 22,
                    count: 100,
                    sum: 4321.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.0,
                            value: 1.0,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 99.5,
                        },
                    ],
                    flags: 1,
                }],
            }),
        ),
        Metric {
            name: "no.data".into(),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: "s".into(),
            }],
            schema_url: "r".into(),
        }],
    }
}

fn rich_logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: vec![
                    LogRecord {
                        time_unix_nano: 1_544_712_660_300_000_000,
                        observed_time_unix_nano: 1_544_712_660_300_000_001,
                        severity_number: 10,
                        severity_text: "Information".into(),
                        body: Some(av(V::KvlistValue(KeyValueList { values: attrs() }))),
                        attributes: attrs(),
                        dropped_attributes_count: 2,
                        flags: 1,
                        trace_id: TID.to_vec(),
                        span_id: SID.to_vec(),
                        event_name: "app.login".into(),
                    },
                    LogRecord {
                        body: Some(AnyValue { value: None }),
                        ..Default::default()
                    },
                ],
                schema_url: "s".into(),
            }],
            schema_url: "r".into(),
        }],
    }
}

fn enc_traces(r: &ExportTraceServiceRequest) -> Vec<u8> {
    let mut out = Vec::new();
    encode_traces(r, &mut out);
    out
}

fn enc_metrics(r: &ExportMetricsServiceRequest) -> Vec<u8> {
    let mut out = Vec::new();
    encode_metrics(r, &mut out);
    out
}

fn enc_logs(r: &ExportLogsServiceRequest) -> Vec<u8> {
    let mut out = Vec::new();
    encode_logs(r, &mut out);
    out
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "output is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

// ---- round trips ------------------------------------------------------------

#[test]
fn traces_round_trip_every_field() {
    let req = rich_traces();
    let out = enc_traces(&req);
    assert_eq!(decode_traces(&out).unwrap(), req);

    // The wire shape the Collector expects.
    let v = json(&out);
    let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(span["spanId"], "eee19b7ec3c1b174");
    assert_eq!(span["parentSpanId"], "eee19b7ec3c1b173");
    assert_eq!(span["kind"], 2);
    assert_eq!(span["flags"], 0x301);
    assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
    assert_eq!(span["endTimeUnixNano"], "18446744073709551615");
    assert_eq!(span["status"]["code"], 2);
    assert_eq!(span["links"][0]["flags"], 256);
    assert_eq!(
        span["attributes"][4]["value"]["intValue"],
        "-9223372036854775808"
    );
    assert_eq!(span["attributes"][8]["value"]["bytesValue"], "AAEC/v8=");
    // Default span: every field omitted.
    assert_eq!(
        v["resourceSpans"][0]["scopeSpans"][0]["spans"][1],
        serde_json::json!({})
    );
    assert_eq!(
        v["resourceSpans"][0]["scopeSpans"][1],
        serde_json::json!({"scope": {}})
    );
    assert_eq!(v["resourceSpans"][1], serde_json::json!({}));
}

#[test]
fn metrics_round_trip_every_field() {
    let req = rich_metrics();
    let out = enc_metrics(&req);
    assert_eq!(decode_metrics(&out).unwrap(), req);

    let v = json(&out);
    let m = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    assert_eq!(m[0]["gauge"]["dataPoints"][1]["asInt"], "0");
    assert_eq!(
        m[0]["gauge"]["dataPoints"][0]["exemplars"][1]["asInt"],
        "9223372036854775807"
    );
    assert_eq!(m[1]["sum"]["aggregationTemporality"], 2);
    assert_eq!(m[1]["sum"]["isMonotonic"], true);
    assert_eq!(
        m[2]["histogram"]["dataPoints"][0]["bucketCounts"],
        serde_json::json!(["1", "0", "18446744073709551615"])
    );
    assert_eq!(m[2]["histogram"]["dataPoints"][0]["sum"], 0.0);
    assert_eq!(m[2]["histogram"]["dataPoints"][0]["count"], "7");
    assert_eq!(m[3]["exponentialHistogram"]["dataPoints"][0]["scale"], -3);
    assert_eq!(
        m[3]["exponentialHistogram"]["dataPoints"][0]["negative"],
        serde_json::json!({})
    );
    assert_eq!(
        m[4]["summary"]["dataPoints"][0]["quantileValues"][0],
        serde_json::json!({"value": 1.0})
    );
    assert_eq!(m[5], serde_json::json!({"name": "no.data"}));
}

#[test]
fn logs_round_trip_every_field() {
    let req = rich_logs();
    let out = enc_logs(&req);
    assert_eq!(decode_logs(&out).unwrap(), req);
    let v = json(&out);
    let rec = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    assert_eq!(rec[0]["severityNumber"], 10);
    assert_eq!(rec[0]["eventName"], "app.login");
    assert_eq!(rec[0]["observedTimeUnixNano"], "1544712660300000001");
    assert_eq!(rec[1], serde_json::json!({"body": {}}));
}

#[test]
fn responses_round_trip() {
    let t = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 5,
            error_message: "too \"old\"".into(),
        }),
    };
    let mut out = Vec::new();
    encode_trace_response(&t, &mut out);
    assert_eq!(
        out,
        br#"{"partialSuccess":{"rejectedSpans":"5","errorMessage":"too \"old\""}}"#
    );
    assert_eq!(decode_trace_response(&out).unwrap(), t);

    let m = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: -1,
            error_message: String::new(),
        }),
    };
    out.clear();
    encode_metrics_response(&m, &mut out);
    assert_eq!(out, br#"{"partialSuccess":{"rejectedDataPoints":"-1"}}"#);
    assert_eq!(decode_metrics_response(&out).unwrap(), m);

    let l = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 3,
            error_message: "x".into(),
        }),
    };
    out.clear();
    encode_logs_response(&l, &mut out);
    assert_eq!(decode_logs_response(&out).unwrap(), l);

    // A successful server reply is usually just `{}`; numbers and snake_case
    // are accepted from lenient servers.
    assert_eq!(
        decode_trace_response(b"{}").unwrap(),
        ExportTraceServiceResponse::default()
    );
    let r = decode_logs_response(
        br#"{"partial_success":{"rejected_log_records":3,"error_message":"x"}}"#,
    )
    .unwrap();
    assert_eq!(r, l);
    out.clear();
    encode_trace_response(&ExportTraceServiceResponse::default(), &mut out);
    assert_eq!(out, b"{}");
}

#[test]
fn empty_requests() {
    assert_eq!(enc_traces(&Default::default()), b"{}");
    assert_eq!(
        decode_traces(b" {} ").unwrap(),
        ExportTraceServiceRequest::default()
    );
    assert_eq!(
        decode_metrics(br#"{"resourceMetrics":[]}"#).unwrap(),
        Default::default()
    );
    assert_eq!(
        decode_logs(br#"{"resourceLogs":null}"#).unwrap(),
        Default::default()
    );
}

// ---- spec example payloads ----------------------------------------------------

const SPEC_TRACE: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }
            ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "1544712661000000000",
              "kind": 2,
              "attributes": [
                { "key": "my.span.attr", "value": { "stringValue": "some value" } }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

fn spec_trace_expected() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", V::StringValue("my.service".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "my.library".into(),
                    version: "1.0.0".into(),
                    attributes: vec![kv(
                        "my.scope.attribute",
                        V::StringValue("some scope attribute".into()),
                    )],
                    dropped_attributes_count: 0,
                }),
                spans: vec![Span {
                    trace_id: TID.to_vec(),
                    span_id: SID.to_vec(),
                    parent_span_id: PSID.to_vec(),
                    name: "I'm a server span".into(),
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    kind: 2,
                    attributes: vec![kv("my.span.attr", V::StringValue("some value".into()))],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn spec_trace_example() {
    assert_eq!(
        decode_traces(SPEC_TRACE.as_bytes()).unwrap(),
        spec_trace_expected()
    );
}

#[test]
fn numeric_int64_and_enum_name_forms() {
    // Times as JSON numbers, kind as its proto name: same request.
    let body = SPEC_TRACE
        .replace(r#""1544712660000000000""#, "1544712660000000000")
        .replace(r#""1544712661000000000""#, "1.544712661e18")
        .replace(r#""kind": 2"#, r#""kind": "SPAN_KIND_SERVER""#);
    assert!(body.contains("\"startTimeUnixNano\": 1544712660000000000"));
    assert_eq!(
        decode_traces(body.as_bytes()).unwrap(),
        spec_trace_expected()
    );

    let get = |body: &str| {
        let r = decode_logs(body.as_bytes()).unwrap();
        r.resource_logs[0].scope_logs[0].log_records[0].clone()
    };
    let rec = get(
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"10"},"severityNumber":"SEVERITY_NUMBER_WARN","flags":"1"}]}]}]}"#,
    );
    assert_eq!(rec.body, Some(av(V::IntValue(10))));
    assert_eq!(rec.severity_number, 13);
    assert_eq!(rec.flags, 1);
    let rec = get(
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":-10},"severityNumber":9}]}]}]}"#,
    );
    assert_eq!(rec.body, Some(av(V::IntValue(-10))));
    assert_eq!(rec.severity_number, 9);
    let rec = get(
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":9223372036854775807}}]}]}]}"#,
    );
    assert_eq!(rec.body, Some(av(V::IntValue(i64::MAX))));

    let m = decode_metrics(
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","dataPoints":[]}}]}]}]}"#,
    )
    .unwrap();
    let Some(Data::Sum(s)) = &m.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        panic!()
    };
    assert_eq!(s.aggregation_temporality, 2);
    let t = decode_traces(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#).unwrap();
    assert_eq!(
        t.resource_spans[0].scope_spans[0].spans[0]
            .status
            .as_ref()
            .unwrap()
            .code,
        2
    );
}

#[test]
fn spec_metrics_example() {
    let body = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
      "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},"metrics":[
        {"name":"my.counter","unit":"1","description":"I am a Counter","sum":{"aggregationTemporality":1,"isMonotonic":true,
          "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
          "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}]}]}},
        {"name":"my.gauge","unit":"1","description":"I am a Gauge","gauge":{"dataPoints":[{"asDouble":10,"timeUnixNano":"1544712660300000000"}]}},
        {"name":"my.histogram","unit":"1","description":"I am a Histogram","histogram":{"aggregationTemporality":1,
          "dataPoints":[{"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000","count":2,"sum":2,
          "bucketCounts":[1,1],"explicitBounds":[1],"min":0,"max":2}]}}]}]}]}"#;
    let r = decode_metrics(body.as_bytes()).unwrap();
    let ms = &r.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(ms.len(), 3);
    let Some(Data::Sum(s)) = &ms[0].data else {
        panic!("sum")
    };
    assert!(s.is_monotonic);
    assert_eq!(s.aggregation_temporality, 1);
    assert_eq!(
        s.data_points[0].value,
        Some(number_data_point::Value::AsDouble(5.0))
    );
    assert_eq!(s.data_points[0].time_unix_nano, 1_544_712_660_300_000_000);
    let Some(Data::Histogram(h)) = &ms[2].data else {
        panic!("histogram")
    };
    let dp = &h.data_points[0];
    assert_eq!(
        (dp.count, dp.sum, dp.min, dp.max),
        (2, Some(2.0), Some(0.0), Some(2.0))
    );
    assert_eq!(dp.bucket_counts, vec![1, 1]);
    assert_eq!(dp.explicit_bounds, vec![1.0]);
}

#[test]
fn spec_logs_example() {
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
      "scopeLogs":[{"scope":{"name":"my.library","version":"1.0.0"},"logRecords":[{
        "timeUnixNano":"1544712660300000000","observedTimeUnixNano":"1544712660300000000","severityNumber":10,
        "severityText":"Information","traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
        "body":{"stringValue":"Example log record"},
        "attributes":[{"key":"string.attribute","value":{"stringValue":"some string"}},
          {"key":"boolean.attribute","value":{"boolValue":true}},
          {"key":"int.attribute","value":{"intValue":"10"}},
          {"key":"double.attribute","value":{"doubleValue":637.704}},
          {"key":"array.attribute","value":{"arrayValue":{"values":[{"stringValue":"many"},{"stringValue":"values"}]}}},
          {"key":"map.attribute","value":{"kvlistValue":{"values":[{"key":"some.map.key","value":{"stringValue":"some value"}}]}}}]}]}]}]}"#;
    let r = decode_logs(body.as_bytes()).unwrap();
    let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(rec.trace_id, TID);
    assert_eq!(rec.span_id, SID);
    assert_eq!(
        rec.body,
        Some(av(V::StringValue("Example log record".into())))
    );
    assert_eq!(
        rec.attributes[3],
        kv("double.attribute", V::DoubleValue(637.704))
    );
    assert_eq!(
        rec.attributes[4],
        kv(
            "array.attribute",
            V::ArrayValue(ArrayValue {
                values: vec![
                    av(V::StringValue("many".into())),
                    av(V::StringValue("values".into()))
                ]
            })
        )
    );
    assert_eq!(rec.attributes.len(), 6);
}

// ---- leniency -------------------------------------------------------------------

/// Rewrite every object key of `v` from lowerCamelCase to snake_case.
fn snake_keys(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let mut s = String::new();
                for c in k.chars() {
                    if c.is_ascii_uppercase() {
                        s.push('_');
                        s.push(c.to_ascii_lowercase());
                    } else {
                        s.push(c);
                    }
                }
                (s, snake_keys(v))
            })
            .collect(),
        serde_json::Value::Array(a) => a.iter().map(snake_keys).collect(),
        other => other.clone(),
    }
}

/// Add unknown members of every JSON type to every object of `v`.
fn add_unknown(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut m: serde_json::Map<_, _> =
                m.iter().map(|(k, v)| (k.clone(), add_unknown(v))).collect();
            m.insert(
                "zzUnknownObj".into(),
                serde_json::json!({"a": [1, "x\"}", null, true, {"b": -1.5e3}], "c": {}}),
            );
            m.insert(
                "aaUnknownArr".into(),
                serde_json::json!([[], {}, [null, false]]),
            );
            m.insert("unknown_str".into(), serde_json::json!("\\\"{["));
            m.insert("unknownNum".into(), serde_json::json!(-0.5e-10));
            m.insert("unknownBool".into(), serde_json::json!(false));
            m.insert("unknownNull".into(), serde_json::Value::Null);
            serde_json::Value::Object(m)
        }
        serde_json::Value::Array(a) => a.iter().map(add_unknown).collect(),
        other => other.clone(),
    }
}

#[test]
fn snake_case_keys_accepted() {
    // Values below are all exactly representable, so serde_json::Value
    // (test-only) re-serialises them without loss.
    let req = rich_traces();
    let snake = serde_json::to_vec(&snake_keys(&json(&enc_traces(&req)))).unwrap();
    assert!(String::from_utf8_lossy(&snake).contains("\"start_time_unix_nano\""));
    assert_eq!(decode_traces(&snake).unwrap(), req);

    let req = rich_logs();
    let snake = serde_json::to_vec(&snake_keys(&json(&enc_logs(&req)))).unwrap();
    assert_eq!(decode_logs(&snake).unwrap(), req);
}

#[test]
fn snake_case_metrics_accepted() {
    let mut req = rich_metrics();
    // 0.30000000000000004 and 1e300 would go through serde_json's lossy
    // default float parser in this test's Value step; swap in exact values.
    let exact = |kvs: &mut Vec<KeyValue>| {
        for kv in kvs.iter_mut() {
            if let Some(AnyValue {
                value: Some(V::DoubleValue(d)),
            }) = &mut kv.value
            {
                *d = 0.5;
            }
            if let Some(AnyValue {
                value: Some(V::KvlistValue(l)),
            }) = &mut kv.value
            {
                l.values[0].value = Some(av(V::DoubleValue(2.0)));
            }
        }
    };
    exact(
        &mut req.resource_metrics[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes,
    );
    for m in &mut req.resource_metrics[0].scope_metrics[0].metrics {
        match &mut m.data {
            Some(Data::Gauge(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| exact(&mut p.attributes)),
            Some(Data::Sum(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| exact(&mut p.attributes)),
            Some(Data::Histogram(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| exact(&mut p.attributes)),
            Some(Data::ExponentialHistogram(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| exact(&mut p.attributes)),
            Some(Data::Summary(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| exact(&mut p.attributes)),
            None => {}
        }
    }
    if let Some(Data::Gauge(g)) = &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        g.data_points[0].value = Some(number_data_point::Value::AsDouble(-1.5));
    }
    let snake = serde_json::to_vec(&snake_keys(&json(&enc_metrics(&req)))).unwrap();
    let s = String::from_utf8_lossy(&snake);
    assert!(s.contains("\"exponential_histogram\"") && s.contains("\"quantile_values\""));
    assert_eq!(decode_metrics(&snake).unwrap(), req);

    let unknown = serde_json::to_vec(&add_unknown(&json(&enc_metrics(&req)))).unwrap();
    assert_eq!(decode_metrics(&unknown).unwrap(), req);
}

#[test]
fn unknown_fields_ignored_at_every_level() {
    let req = rich_traces();
    let body = serde_json::to_vec(&add_unknown(&json(&enc_traces(&req)))).unwrap();
    // Sanity: the unknown members really are inside the span objects.
    let v = json(&body);
    assert!(
        v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["links"][0]["zzUnknownObj"].is_object()
    );
    assert_eq!(decode_traces(&body).unwrap(), req);

    let req = rich_logs();
    let body = serde_json::to_vec(&add_unknown(&json(&enc_logs(&req)))).unwrap();
    assert_eq!(decode_logs(&body).unwrap(), req);

    let r =
        decode_trace_response(br#"{"x":[{}],"partialSuccess":{"y":{"z":[]},"rejectedSpans":"2"}}"#)
            .unwrap();
    assert_eq!(r.partial_success.unwrap().rejected_spans, 2);
}

#[test]
fn null_means_absent() {
    let body = br#"{"resourceSpans":[{"resource":null,"schemaUrl":null,"scopeSpans":[{"scope":null,"spans":[
        {"traceId":null,"spanId":null,"name":null,"kind":null,"startTimeUnixNano":null,"attributes":null,
         "events":null,"status":null,"flags":null}]}]}]}"#;
    let r = decode_traces(body).unwrap();
    assert_eq!(r.resource_spans[0].resource, None);
    assert_eq!(r.resource_spans[0].scope_spans[0].spans[0], Span::default());

    // A null oneof member does not clobber a set one.
    let r = decode_logs(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a","intValue":null}}]}]}]}"#).unwrap();
    assert_eq!(
        r.resource_logs[0].scope_logs[0].log_records[0].body,
        Some(av(V::StringValue("a".into())))
    );
    let r = decode_metrics(
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{},"sum":null}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        r.resource_metrics[0].scope_metrics[0].metrics[0].data,
        Some(Data::Gauge(Gauge::default()))
    );
    // Optional doubles: null stays None, 0 is Some(0).
    let r = decode_metrics(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[{"sum":null,"min":0}]}}]}]}]}"#).unwrap();
    let Some(Data::Histogram(h)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        panic!()
    };
    assert_eq!(
        (h.data_points[0].sum, h.data_points[0].min),
        (None, Some(0.0))
    );
}

// ---- numbers and strings ------------------------------------------------------

fn attr_doubles(ds: &[f64]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: ds.iter().map(|d| kv("d", V::DoubleValue(*d))).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
    }
}

fn first_attrs_logs(r: &ExportLogsServiceRequest) -> Vec<f64> {
    r.resource_logs[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| match kv.value.as_ref().unwrap().value {
            Some(V::DoubleValue(d)) => d,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn doubles_are_exact_and_special_values_are_strings() {
    let ds = [
        0.30000000000000004,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        1e23,
        -0.0,
        9007199254740993.0,
        123456789.12345679,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let out = enc_logs(&attr_doubles(&ds));
    let s = String::from_utf8(out.clone()).unwrap();
    assert!(s.contains(r#"{"doubleValue":"Infinity"}"#), "{s}");
    assert!(s.contains(r#"{"doubleValue":"-Infinity"}"#));
    assert!(s.contains(r#"{"doubleValue":"NaN"}"#));
    let back = first_attrs_logs(&decode_logs(&out).unwrap());
    for (a, b) in ds.iter().zip(&back) {
        if a.is_nan() {
            assert!(b.is_nan());
        } else {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} came back as {b}");
        }
    }

    // Strings holding numbers are accepted for doubles too (proto3 JSON).
    let r = decode_metrics(
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[{"explicitBounds":["NaN","-Infinity",1.5,"2.5"],"max":"Infinity"}]}}]}]}]}"#,
    )
    .unwrap();
    let Some(Data::Histogram(h)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        panic!()
    };
    let b = &h.data_points[0].explicit_bounds;
    assert!(b[0].is_nan() && b[1] == f64::NEG_INFINITY && b[2] == 1.5 && b[3] == 2.5);
    assert_eq!(h.data_points[0].max, Some(f64::INFINITY));
}

#[test]
fn integer_ranges() {
    let flags = |v: &str| {
        decode_traces(
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"flags":{v}}}]}}]}}]}}"#)
                .as_bytes(),
        )
    };
    assert_eq!(
        flags("4294967295").unwrap().resource_spans[0].scope_spans[0].spans[0].flags,
        u32::MAX
    );
    assert_eq!(
        flags("\"256\"").unwrap().resource_spans[0].scope_spans[0].spans[0].flags,
        256
    );
    assert_eq!(
        flags("1.0").unwrap().resource_spans[0].scope_spans[0].spans[0].flags,
        1
    );
    let e = flags("4294967296").unwrap_err();
    assert!(e.message.contains("out of range"), "{e}");
    assert!(flags("-1").is_err());
    assert!(flags("1.5").is_err());
    assert!(flags("\"abc\"").is_err());

    let time = |v: &str| {
        decode_traces(format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"startTimeUnixNano":{v}}}]}}]}}]}}"#).as_bytes())
    };
    assert_eq!(
        time("18446744073709551615").unwrap().resource_spans[0].scope_spans[0].spans[0]
            .start_time_unix_nano,
        u64::MAX
    );
    assert_eq!(
        time("\"18446744073709551615\"").unwrap().resource_spans[0].scope_spans[0].spans[0]
            .start_time_unix_nano,
        u64::MAX
    );
    assert!(time("18446744073709551616").is_err());
    assert!(time("\"-1\"").is_err());

    let int = |v: &str| {
        decode_logs(format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{{"intValue":{v}}}}}]}}]}}]}}"#).as_bytes())
    };
    assert_eq!(
        int("\"-9223372036854775808\"").unwrap().resource_logs[0].scope_logs[0].log_records[0].body,
        Some(av(V::IntValue(i64::MIN)))
    );
    assert!(int("9223372036854775808").is_err());
}

#[test]
fn string_escapes() {
    // Decoding: every escape form, surrogate pairs, raw UTF-8.
    let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":"a\"b\\c\/d\b\f\n\r\t\u0001\u00e9\ud83d\ude00ü😀","eventName":"\ud800x"}]}]}]}"#;
    let r = decode_logs(body.as_bytes()).unwrap();
    let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(rec.severity_text, "a\"b\\c/d\u{8}\u{c}\n\r\t\u{1}é😀ü😀");
    // A lone surrogate becomes U+FFFD rather than failing the request.
    assert_eq!(rec.event_name, "\u{FFFD}x");

    // Encoding: output is valid JSON that serde_json reads back identically.
    let all_ctrl: String = (0u8..0x20)
        .map(char::from)
        .chain("\"\\/\u{7f}\u{2028}é😀".chars())
        .collect();
    let mut out = Vec::new();
    encode::write_str(&mut out, &all_ctrl);
    assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), all_ctrl);
    assert!(out.windows(6).any(|w| w == br"\u001f"));
    assert!(
        String::from_utf8(out).unwrap().contains("é😀"),
        "non-ASCII passes through"
    );
}

#[test]
fn base64_codec() {
    for (raw, b64) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
    ] {
        let mut out = Vec::new();
        base64::encode_into(&mut out, raw.as_bytes());
        assert_eq!(out, b64.as_bytes());
        assert_eq!(base64::decode(b64).unwrap(), raw.as_bytes());
        assert_eq!(
            base64::decode(b64.trim_end_matches('=')).unwrap(),
            raw.as_bytes(),
            "unpadded"
        );
    }
    assert_eq!(
        base64::decode("-_8").unwrap(),
        vec![0xfb, 0xff],
        "URL-safe alphabet"
    );
    assert_eq!(base64::decode("+/8=").unwrap(), vec![0xfb, 0xff]);
    assert!(base64::decode("Zm9v!").is_none());
    assert!(base64::decode("Z").is_none());
    assert!(base64::decode("Zg=").is_none());
}

// ---- errors -------------------------------------------------------------------

fn spans_body(spans1: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[]}},{{"spans":[{{}},{{}},{{}},{spans1}]}}]}}]}}"#
    )
}

#[test]
fn bad_ids_report_their_path() {
    let e = decode_traces(spans_body(r#"{"traceId":"5B8EFFF798038103D269B633813FC6"}"#).as_bytes())
        .unwrap_err();
    assert_eq!(e.path, "resourceSpans[0].scopeSpans[1].spans[3].traceId");
    assert!(e.message.contains("32 hex characters"), "{e}");

    let e = decode_traces(spans_body(r#"{"spanId":"EEE19B7EC3C1B17G"}"#).as_bytes()).unwrap_err();
    assert_eq!(e.path, "resourceSpans[0].scopeSpans[1].spans[3].spanId");
    assert!(e.message.contains("not hex"), "{e}");

    let e = decode_traces(spans_body(r#"{"links":[{},{"spanId":"abc"}]}"#).as_bytes()).unwrap_err();
    assert_eq!(
        e.path,
        "resourceSpans[0].scopeSpans[1].spans[3].links[1].spanId"
    );

    // Base64 is not accepted for ids: OTLP/JSON ids are hex.
    let e = decode_traces(spans_body(r#"{"traceId":"W47/95gDgQPSabYzgT/GDA=="}"#).as_bytes())
        .unwrap_err();
    assert!(e.path.ends_with("traceId"));

    let e = decode_logs(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":7}]}]}]}"#)
        .unwrap_err();
    assert_eq!(e.path, "resourceLogs[0].scopeLogs[0].logRecords[0].spanId");

    let e = decode_metrics(
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"traceId":"xyz"}]}]}}]}]}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.path,
        "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].exemplars[0].traceId"
    );

    // Empty ids mean "absent".
    let r = decode_traces(spans_body(r#"{"traceId":"","spanId":""}"#).as_bytes()).unwrap();
    assert!(r.resource_spans[0].scope_spans[1].spans[3]
        .trace_id
        .is_empty());
}

#[test]
fn wrong_types_report_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"name":5}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].name",
            "expected string, found number",
        ),
        (
            r#"{"attributes":{}}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].attributes",
            "expected array, found object",
        ),
        (
            r#"{"attributes":[{"key":"k","value":{"boolValue":"true"}}]}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].attributes[0].value.boolValue",
            "expected boolean, found string",
        ),
        (
            r#"{"attributes":[null]}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].attributes[0]",
            "expected object, found null",
        ),
        (
            r#"{"kind":"SPAN_KIND_BOGUS"}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].kind",
            "unknown enum value",
        ),
        (
            r#"{"kind":true}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].kind",
            "expected enum integer, found boolean",
        ),
        (
            r#"{"status":[]}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].status",
            "expected object, found array",
        ),
        (
            r#"{"endTimeUnixNano":{}}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].endTimeUnixNano",
            "expected uint64, found object",
        ),
        (
            r#"{"events":[{"attributes":[{"value":{"bytesValue":"!!"}}]}]}"#,
            "resourceSpans[0].scopeSpans[1].spans[3].events[0].attributes[0].value.bytesValue",
            "invalid base64",
        ),
    ];
    for (span, path, msg) in cases {
        let e = decode_traces(spans_body(span).as_bytes()).unwrap_err();
        assert_eq!(&e.path, path, "{span}: {e}");
        assert!(e.message.contains(msg), "{span}: {e}");
    }
    let e = decode_traces(b"[]").unwrap_err();
    assert_eq!(e.path, "$");
    let e = decode_traces(br#"{"resourceSpans":{}}"#).unwrap_err();
    assert_eq!(e.path, "resourceSpans");
}

#[test]
fn truncated_and_malformed_input() {
    let full = enc_traces(&rich_traces());
    // Every strict prefix of a valid body is an error, never a panic.
    for n in 0..full.len() {
        assert!(
            decode_traces(&full[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
    let e = decode_traces(spans_body(r#"{"name":"abc"#).as_bytes()).unwrap_err();
    assert_eq!(e.path, "resourceSpans[0].scopeSpans[1].spans[3].name");
    assert!(e.message.contains("end of input"), "{e}");

    let e =
        decode_traces(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}"#).unwrap_err();
    assert_eq!(e.path, "resourceSpans[0].scopeSpans[0].spans");
    assert!(e.message.contains("end of input"), "{e}");

    for bad in [
        &b""[..],
        b"hello",
        b"not json at all",
        b"{} {}",
        b"{,}",
        b"{\"a\":}",
        b"{\"a\" 1}",
        b"{\"a\":1,}",
        b"{\"a\":[1,]}",
        b"{\"a\":01}",
        b"{\"a\":1.}",
        b"{\"a\":-}",
        b"{\"a\":tru}",
        b"{\"a\":\"\x01\"}",
        b"{\"a\":\"\\x\"}",
        b"{\"a\":\"\\u12\"}",
        b"{'a':1}",
        b"\xff\xfe{}",
    ] {
        let e = decode_traces(bad).unwrap_err();
        assert!(!e.message.is_empty());
    }
}

#[test]
fn error_messages_cap_quoted_input() {
    let long_id = "z".repeat(10_000);
    let e =
        decode_traces(spans_body(&format!(r#"{{"traceId":"{long_id}"}}"#)).as_bytes()).unwrap_err();
    assert!(e.message.len() < 200, "{}", e.message);
    let long_enum = "Ж".repeat(5_000);
    let e =
        decode_traces(spans_body(&format!(r#"{{"kind":"{long_enum}"}}"#)).as_bytes()).unwrap_err();
    assert!(e.message.len() < 200, "{}", e.message);
    let e =
        decode_traces(spans_body(&format!(r#"{{"flags":"{}"}}"#, "9".repeat(5_000))).as_bytes())
            .unwrap_err();
    assert!(e.message.len() < 200, "{}", e.message);
    assert!(e
        .to_string()
        .starts_with("invalid OTLP/JSON at resourceSpans[0].scopeSpans[1].spans[3].flags: "));
}

#[test]
fn deep_nesting_is_rejected_not_overflowing() {
    let depth = 5_000;
    let mut body = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
    for _ in 0..depth {
        body.push_str(r#"{"arrayValue":{"values":["#);
    }
    body.push_str("{}");
    for _ in 0..depth {
        body.push_str("]}}");
    }
    body.push_str("}]}]}]}");
    let e = decode_logs(body.as_bytes()).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    // Deep unknown values too.
    let body = format!(r#"{{"x":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    assert!(decode_logs(body.as_bytes()).is_err());
}

// ---- property tests -----------------------------------------------------------

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(AnyValue { value: None }),
        any::<String>().prop_map(|s| av(V::StringValue(s))),
        any::<bool>().prop_map(|b| av(V::BoolValue(b))),
        any::<i64>().prop_map(|i| av(V::IntValue(i))),
        any::<f64>().prop_map(|d| av(V::DoubleValue(d))),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(|b| av(V::BytesValue(b))),
        any::<i32>().prop_map(|i| av(V::StringValueStrindex(i))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|values| av(V::ArrayValue(ArrayValue { values }))),
            proptest::collection::vec(key_value(inner), 0..6)
                .prop_map(|values| av(V::KvlistValue(KeyValueList { values }))),
        ]
    })
}

fn key_value(v: impl Strategy<Value = AnyValue>) -> impl Strategy<Value = KeyValue> {
    (
        any::<String>(),
        proptest::option::of(v),
        prop_oneof![Just(0), any::<i32>()],
    )
        .prop_map(|(key, value, key_strindex)| KeyValue {
            key,
            value,
            key_strindex,
        })
}

fn id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), len..=len)
    ]
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(key_value(any_value()), 0..4)
}

fn span_strategy() -> impl Strategy<Value = Span> {
    let event = (any::<u64>(), any::<String>(), attributes(), any::<u32>()).prop_map(
        |(t, name, attributes, d)| span::Event {
            time_unix_nano: t,
            name,
            attributes,
            dropped_attributes_count: d,
        },
    );
    let link = (
        id(16),
        id(8),
        any::<String>(),
        attributes(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(trace_id, span_id, trace_state, attributes, d, flags)| span::Link {
                trace_id,
                span_id,
                trace_state,
                attributes,
                dropped_attributes_count: d,
                flags,
            },
        );
    let status = proptest::option::of(
        (any::<String>(), any::<i32>()).prop_map(|(message, code)| Status { message, code }),
    );
    (
        (
            id(16),
            id(8),
            any::<String>(),
            id(8),
            any::<u32>(),
            any::<String>(),
            any::<i32>(),
        ),
        (any::<u64>(), any::<u64>(), attributes(), any::<u32>()),
        (
            proptest::collection::vec(event, 0..3),
            any::<u32>(),
            proptest::collection::vec(link, 0..3),
            any::<u32>(),
            status,
        ),
    )
        .prop_map(
            |(
                (trace_id, span_id, trace_state, parent_span_id, flags, name, kind),
                (start, end, attributes, dac),
                (events, dec, links, dlc, status),
            )| Span {
                trace_id,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: dac,
                events,
                dropped_events_count: dec,
                links,
                dropped_links_count: dlc,
                status,
            },
        )
}

/// NaN != NaN, so structural equality is only checked when no NaN double was
/// written; the byte-level re-encode check covers NaN cases (NaN always
/// encodes as the string "NaN").
fn has_nan(encoded: &[u8]) -> bool {
    encoded.windows(20).any(|w| w == br#""doubleValue":"NaN""#)
}

fn logs_with_body(body: AnyValue) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(body),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

proptest! {
    #[test]
    fn prop_any_value_round_trip(v in any_value()) {
        let req = logs_with_body(v);
        let out = enc_logs(&req);
        let back = decode_logs(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&enc_logs(&back), &out);
        if !has_nan(&out) {
            prop_assert_eq!(back, req);
        }
        // Also valid JSON by an independent parser.
        prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok());
    }

    #[test]
    fn prop_span_round_trip(spans in proptest::collection::vec(span_strategy(), 1..4)) {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        };
        let out = enc_traces(&req);
        let back = decode_traces(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&enc_traces(&back), &out);
        if !has_nan(&out) {
            prop_assert_eq!(back, req);
        }
    }

    #[test]
    fn prop_doubles_exact(d in any::<f64>()) {
        let out = enc_logs(&attr_doubles(&[d]));
        let back = first_attrs_logs(&decode_logs(&out).unwrap())[0];
        prop_assert!(back.to_bits() == d.to_bits() || (d.is_nan() && back.is_nan()));
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_traces(&body);
        let _ = decode_metrics(&body);
        let _ = decode_logs(&body);
        let _ = decode_trace_response(&body);
        let _ = decode_metrics_response(&body);
        let _ = decode_logs_response(&body);
    }

    #[test]
    fn prop_mutated_valid_body_never_panics(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut body = enc_metrics(&rich_metrics());
        let i = pos.index(body.len());
        body[i] = byte;
        body.truncate(cut.index(body.len()) + 1);
        let _ = decode_metrics(&body);
    }

    /// The generic JSON grammar (exercised through unknown fields) agrees
    /// with serde_json on token soup.
    #[test]
    fn prop_skip_agrees_with_serde_json(tokens in proptest::collection::vec(
        prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"a\"", "\"\\n\\u00e9\"", "\"", "\\", "1", "-0.5e3", "01", "1.", "-",
            "true", "null", "fals", " ", "x", "{\"k\":", "[1,2]", "\"\\ud83d\\ude00\"",
        ]),
        0..24,
    )) {
        let value: String = tokens.concat();
        let body = format!(r#"{{"unknownField":{value}}}"#);
        let ours = decode_traces(body.as_bytes()).is_ok();
        let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok();
        prop_assert_eq!(ours, theirs, "{}", body);
    }
}
