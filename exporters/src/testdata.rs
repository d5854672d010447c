//! Test data with most fields set, so that round trips and renderings
//! exercise more than names.

use confluo_pipeline::proto::common::{
    any_value, AnyValue, InstrumentationScope, KeyValue, KeyValueList,
};
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::metrics::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{span, ResourceSpans, ScopeSpans, Span, Status};
use confluo_pipeline::Signal;

pub fn s(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

pub fn i(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn d(k: &str, v: f64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(v)),
        }),
        ..Default::default()
    }
}

const TRACE_ID: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const T0: u64 = 1_700_000_000_000_000_000;

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![s("service.name", "checkout"), s("host.name", "node-1")],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "io.confluo.test".into(),
        version: "1.2.3".into(),
        ..Default::default()
    })
}

/// Two spans: a server span with an event and a link, and its child.
pub fn traces() -> Signal {
    Signal::Traces(vec![ResourceSpans {
        resource: resource(),
        scope_spans: vec![ScopeSpans {
            scope: scope(),
            spans: vec![
                Span {
                    trace_id: TRACE_ID.to_vec(),
                    span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                    name: "GET /cart".into(),
                    kind: span::SpanKind::Server as i32,
                    start_time_unix_nano: T0,
                    end_time_unix_nano: T0 + 1_500_000,
                    attributes: vec![i("http.status_code", 500), d("ratio", 0.25)],
                    events: vec![span::Event {
                        time_unix_nano: T0 + 1_000,
                        name: "exception".into(),
                        attributes: vec![s("exception.message", "boom")],
                        dropped_attributes_count: 0,
                    }],
                    links: vec![span::Link {
                        trace_id: vec![0xaa; 16],
                        span_id: vec![0xbb; 8],
                        ..Default::default()
                    }],
                    status: Some(Status {
                        message: "internal error".into(),
                        code: 2,
                    }),
                    ..Default::default()
                },
                Span {
                    trace_id: TRACE_ID.to_vec(),
                    span_id: vec![9; 8],
                    parent_span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                    name: "SELECT".into(),
                    kind: span::SpanKind::Client as i32,
                    start_time_unix_nano: T0 + 100,
                    end_time_unix_nano: T0 + 900,
                    ..Default::default()
                },
            ],
            schema_url: String::new(),
        }],
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    }])
}

/// A spans batch named by `tag`, for tests that tell requests apart.
pub fn traces_named(tag: &str, spans: usize) -> Signal {
    Signal::Traces(vec![ResourceSpans {
        resource: resource(),
        scope_spans: vec![ScopeSpans {
            scope: scope(),
            spans: (0..spans)
                .map(|n| Span {
                    trace_id: TRACE_ID.to_vec(),
                    span_id: vec![n as u8 + 1; 8],
                    name: format!("{tag}-{n}"),
                    ..Default::default()
                })
                .collect(),
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }])
}

/// A monotonic sum, a histogram and a gauge: 3 data points.
pub fn metrics() -> Signal {
    Signal::Metrics(vec![ResourceMetrics {
        resource: resource(),
        scope_metrics: vec![ScopeMetrics {
            scope: scope(),
            metrics: vec![
                Metric {
                    name: "http.requests".into(),
                    description: "Requests served".into(),
                    unit: "1".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![s("route", "/cart")],
                            start_time_unix_nano: T0,
                            time_unix_nano: T0 + 10,
                            value: Some(number_data_point::Value::AsInt(42)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "http.duration".into(),
                    unit: "s".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            time_unix_nano: T0 + 10,
                            count: 4,
                            sum: Some(1.5),
                            bucket_counts: vec![1, 3],
                            explicit_bounds: vec![0.5],
                            min: Some(0.1),
                            max: Some(0.9),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "cpu.load".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: T0 + 10,
                            value: Some(number_data_point::Value::AsDouble(0.5)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                },
            ],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }])
}

/// Two log records, one with a map attribute and trace context.
pub fn logs() -> Signal {
    Signal::Logs(vec![ResourceLogs {
        resource: resource(),
        scope_logs: vec![ScopeLogs {
            scope: scope(),
            log_records: vec![
                LogRecord {
                    time_unix_nano: T0,
                    observed_time_unix_nano: T0 + 5,
                    severity_number: 17,
                    severity_text: "ERROR".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("payment failed".into())),
                    }),
                    attributes: vec![KeyValue {
                        key: "user".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::KvlistValue(KeyValueList {
                                values: vec![i("id", 7)],
                            })),
                        }),
                        ..Default::default()
                    }],
                    trace_id: TRACE_ID.to_vec(),
                    span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                    flags: 1,
                    ..Default::default()
                },
                LogRecord {
                    time_unix_nano: T0 + 1,
                    severity_number: 9,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("retrying".into())),
                    }),
                    ..Default::default()
                },
            ],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }])
}
