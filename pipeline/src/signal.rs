//! The one data model: OTLP protobuf trees, one variant per signal.

use crate::proto::logs::ResourceLogs;
use crate::proto::logs_service::ExportLogsServiceRequest;
use crate::proto::metrics::{metric::Data, Metric, ResourceMetrics};
use crate::proto::metrics_service::ExportMetricsServiceRequest;
use crate::proto::trace::ResourceSpans;
use crate::proto::trace_service::ExportTraceServiceRequest;
use confluo_config::SignalKind;
use prost::Message;

/// Telemetry data of one signal, as the OTLP export request carries it.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    Traces(Vec<ResourceSpans>),
    Metrics(Vec<ResourceMetrics>),
    Logs(Vec<ResourceLogs>),
}

impl Signal {
    pub fn empty(kind: SignalKind) -> Signal {
        match kind {
            SignalKind::Traces => Signal::Traces(Vec::new()),
            SignalKind::Metrics => Signal::Metrics(Vec::new()),
            SignalKind::Logs => Signal::Logs(Vec::new()),
        }
    }

    pub fn kind(&self) -> SignalKind {
        match self {
            Signal::Traces(_) => SignalKind::Traces,
            Signal::Metrics(_) => SignalKind::Metrics,
            Signal::Logs(_) => SignalKind::Logs,
        }
    }

    /// Spans, metric data points or log records: the unit the Collector counts in.
    pub fn item_count(&self) -> usize {
        match self {
            Signal::Traces(rs) => rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum(),
            Signal::Metrics(rm) => rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(data_point_count)
                .sum(),
            Signal::Logs(rl) => rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }

    /// Size of the protobuf export request holding this data.
    pub fn encoded_len(&self) -> usize {
        fn len<M: Message>(items: &[M]) -> usize {
            items
                .iter()
                .map(|m| prost::encoding::message::encoded_len(1, m))
                .sum()
        }
        match self {
            Signal::Traces(rs) => len(rs),
            Signal::Metrics(rm) => len(rm),
            Signal::Logs(rl) => len(rl),
        }
    }

    /// Encodes as the OTLP protobuf export request of this signal.
    pub fn encode_request(&self, out: &mut Vec<u8>) {
        // Each resource is field 1 of the export request, so encoding them one
        // by one yields the request without cloning the trees into one.
        fn put<M: Message>(items: &[M], out: &mut Vec<u8>) {
            for m in items {
                // One length walk per resource, used both to reserve and for
                // the length prefix (prost's nested encoders walk again below).
                let len = m.encoded_len();
                out.reserve(len + 11);
                prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, out);
                prost::encoding::encode_varint(len as u64, out);
                m.encode_raw(out);
            }
        }
        match self {
            Signal::Traces(rs) => put(rs, out),
            Signal::Metrics(rm) => put(rm, out),
            Signal::Logs(rl) => put(rl, out),
        }
    }

    /// Decodes an OTLP protobuf export request of `kind`.
    pub fn decode_request(kind: SignalKind, bytes: &[u8]) -> Result<Signal, prost::DecodeError> {
        Ok(match kind {
            SignalKind::Traces => {
                Signal::Traces(ExportTraceServiceRequest::decode(bytes)?.resource_spans)
            }
            SignalKind::Metrics => {
                Signal::Metrics(ExportMetricsServiceRequest::decode(bytes)?.resource_metrics)
            }
            SignalKind::Logs => {
                Signal::Logs(ExportLogsServiceRequest::decode(bytes)?.resource_logs)
            }
        })
    }

    pub fn into_traces_request(self) -> Option<ExportTraceServiceRequest> {
        match self {
            Signal::Traces(resource_spans) => Some(ExportTraceServiceRequest { resource_spans }),
            _ => None,
        }
    }

    pub fn into_metrics_request(self) -> Option<ExportMetricsServiceRequest> {
        match self {
            Signal::Metrics(resource_metrics) => {
                Some(ExportMetricsServiceRequest { resource_metrics })
            }
            _ => None,
        }
    }

    pub fn into_logs_request(self) -> Option<ExportLogsServiceRequest> {
        match self {
            Signal::Logs(resource_logs) => Some(ExportLogsServiceRequest { resource_logs }),
            _ => None,
        }
    }

    /// Appends `other`'s resources. Signals of different kinds are a bug in the
    /// caller; the data is kept rather than lost, in `other`'s variant.
    pub fn append(&mut self, other: Signal) -> Result<(), Signal> {
        match (self, other) {
            (Signal::Traces(a), Signal::Traces(b)) => a.extend(b),
            (Signal::Metrics(a), Signal::Metrics(b)) => a.extend(b),
            (Signal::Logs(a), Signal::Logs(b)) => a.extend(b),
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Removes the first `max_items` items (keeping their resource and scope)
    /// and returns them; `self` keeps the rest. Used to cap batch sizes.
    pub fn split_front(&mut self, max_items: usize) -> Signal {
        match self {
            Signal::Traces(rs) => Signal::Traces(split_resources(rs, max_items, &TRACES)),
            Signal::Metrics(rm) => Signal::Metrics(split_resources(rm, max_items, &METRICS)),
            Signal::Logs(rl) => Signal::Logs(split_resources(rl, max_items, &LOGS)),
        }
    }
}

pub fn data_point_count(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// How to take a resource → scope → items tree apart, per signal.
struct Shape<R, S> {
    scopes: fn(&mut R) -> &mut Vec<S>,
    scope_items: fn(&S) -> usize,
    /// A copy of the resource with no scopes.
    empty_resource: fn(&R) -> R,
    /// Moves up to n items out of the scope into a new scope with the same header.
    split_scope: fn(&mut S, usize) -> S,
}

const TRACES: Shape<ResourceSpans, crate::proto::trace::ScopeSpans> = Shape {
    scopes: |r| &mut r.scope_spans,
    scope_items: |s| s.spans.len(),
    empty_resource: |r| ResourceSpans {
        resource: r.resource.clone(),
        scope_spans: Vec::new(),
        schema_url: r.schema_url.clone(),
    },
    split_scope: |s, n| crate::proto::trace::ScopeSpans {
        scope: s.scope.clone(),
        spans: s.spans.drain(..n).collect(),
        schema_url: s.schema_url.clone(),
    },
};

const LOGS: Shape<ResourceLogs, crate::proto::logs::ScopeLogs> = Shape {
    scopes: |r| &mut r.scope_logs,
    scope_items: |s| s.log_records.len(),
    empty_resource: |r| ResourceLogs {
        resource: r.resource.clone(),
        scope_logs: Vec::new(),
        schema_url: r.schema_url.clone(),
    },
    split_scope: |s, n| crate::proto::logs::ScopeLogs {
        scope: s.scope.clone(),
        log_records: s.log_records.drain(..n).collect(),
        schema_url: s.schema_url.clone(),
    },
};

const METRICS: Shape<ResourceMetrics, crate::proto::metrics::ScopeMetrics> = Shape {
    scopes: |r| &mut r.scope_metrics,
    scope_items: |s| s.metrics.iter().map(data_point_count).sum(),
    empty_resource: |r| ResourceMetrics {
        resource: r.resource.clone(),
        scope_metrics: Vec::new(),
        schema_url: r.schema_url.clone(),
    },
    split_scope: split_scope_metrics,
};

fn split_scope_metrics(
    s: &mut crate::proto::metrics::ScopeMetrics,
    mut n: usize,
) -> crate::proto::metrics::ScopeMetrics {
    let mut taken = Vec::new();
    while n > 0 && !s.metrics.is_empty() {
        let points = data_point_count(&s.metrics[0]);
        if points <= n {
            n -= points;
            taken.push(s.metrics.remove(0));
        } else {
            taken.push(split_metric_points(&mut s.metrics[0], n));
            n = 0;
        }
    }
    crate::proto::metrics::ScopeMetrics {
        scope: s.scope.clone(),
        metrics: taken,
        schema_url: s.schema_url.clone(),
    }
}

/// Moves the first `n` data points of `m` into a copy of its header.
fn split_metric_points(m: &mut Metric, n: usize) -> Metric {
    let data = match &mut m.data {
        Some(Data::Gauge(g)) => Some(Data::Gauge(crate::proto::metrics::Gauge {
            data_points: g.data_points.drain(..n).collect(),
        })),
        Some(Data::Sum(s)) => Some(Data::Sum(crate::proto::metrics::Sum {
            data_points: s.data_points.drain(..n).collect(),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        })),
        Some(Data::Histogram(h)) => Some(Data::Histogram(crate::proto::metrics::Histogram {
            data_points: h.data_points.drain(..n).collect(),
            aggregation_temporality: h.aggregation_temporality,
        })),
        Some(Data::ExponentialHistogram(h)) => Some(Data::ExponentialHistogram(
            crate::proto::metrics::ExponentialHistogram {
                data_points: h.data_points.drain(..n).collect(),
                aggregation_temporality: h.aggregation_temporality,
            },
        )),
        Some(Data::Summary(s)) => Some(Data::Summary(crate::proto::metrics::Summary {
            data_points: s.data_points.drain(..n).collect(),
        })),
        None => None,
    };
    Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data,
    }
}

fn split_resources<R, S>(resources: &mut Vec<R>, max_items: usize, shape: &Shape<R, S>) -> Vec<R> {
    let mut out = Vec::new();
    let mut budget = max_items;
    while budget > 0 && !resources.is_empty() {
        let total: usize = (shape.scopes)(&mut resources[0])
            .iter()
            .map(shape.scope_items)
            .sum();
        if total <= budget {
            budget -= total;
            out.push(resources.remove(0));
            continue;
        }
        // Split inside this resource: move whole scopes while they fit, then part of one.
        let mut piece = (shape.empty_resource)(&resources[0]);
        let scopes = (shape.scopes)(&mut resources[0]);
        while budget > 0 && !scopes.is_empty() {
            let items = (shape.scope_items)(&scopes[0]);
            if items <= budget {
                budget -= items;
                (shape.scopes)(&mut piece).push(scopes.remove(0));
            } else {
                (shape.scopes)(&mut piece).push((shape.split_scope)(&mut scopes[0], budget));
                budget = 0;
            }
        }
        out.push(piece);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::common::{AnyValue, InstrumentationScope, KeyValue};
    use crate::proto::resource::Resource;
    use crate::proto::trace::{ScopeSpans, Span};

    pub fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(crate::proto::common::any_value::Value::StringValue(
                    v.into(),
                )),
            }),
            ..Default::default()
        }
    }

    /// `resources` resources × `scopes` scopes × `spans` spans.
    pub fn traces(resources: usize, scopes: usize, spans: usize) -> Signal {
        Signal::Traces(
            (0..resources)
                .map(|r| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", &format!("svc{r}"))],
                        ..Default::default()
                    }),
                    scope_spans: (0..scopes)
                        .map(|s| ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("scope{s}"),
                                ..Default::default()
                            }),
                            spans: (0..spans)
                                .map(|i| Span {
                                    trace_id: vec![r as u8; 16],
                                    span_id: vec![i as u8; 8],
                                    name: format!("span-{r}-{s}-{i}"),
                                    ..Default::default()
                                })
                                .collect(),
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        )
    }

    fn span_names(s: &Signal) -> Vec<String> {
        match s {
            Signal::Traces(rs) => rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.name.clone())
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn split_front_keeps_order_and_headers() {
        let mut all = traces(2, 2, 3); // 12 spans
        let names = span_names(&all);
        let mut pieces = Vec::new();
        while !all.is_empty() {
            pieces.push(all.split_front(5));
        }
        assert_eq!(
            pieces.iter().map(Signal::item_count).collect::<Vec<_>>(),
            vec![5, 5, 2]
        );
        let rejoined: Vec<String> = pieces.iter().flat_map(span_names).collect();
        assert_eq!(rejoined, names);
        // The second piece starts inside resource 0, scope 1, and crosses into resource 1.
        let Signal::Traces(rs) = &pieces[1] else {
            panic!()
        };
        assert_eq!(rs.len(), 2);
        assert_eq!(
            rs[0].resource,
            traces(1, 1, 1)
                .into_traces_request()
                .unwrap()
                .resource_spans[0]
                .resource
        );
    }

    #[test]
    fn encode_request_matches_prost() {
        let t = traces(2, 1, 2);
        let mut ours = Vec::new();
        t.encode_request(&mut ours);
        let theirs = t.clone().into_traces_request().unwrap().encode_to_vec();
        assert_eq!(ours, theirs);
        assert_eq!(t.encoded_len(), theirs.len());
    }
}
