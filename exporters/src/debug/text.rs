//! Readable text renderings of OTLP data, after the Collector's `otlptext`
//! (detailed) and `normal` marshalers, so that users comparing the two see
//! the same layout.

use confluo_pipeline::proto::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use confluo_pipeline::proto::logs::LogRecord;
use confluo_pipeline::proto::metrics::{
    exemplar, metric::Data, number_data_point, Exemplar, Metric,
};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{span, status, Span};
use confluo_pipeline::Signal;
use std::fmt::Write;

/// Everything, field by field (`verbosity: detailed`).
pub fn render_detailed(signal: &Signal) -> String {
    let mut out = String::new();
    match signal {
        Signal::Traces(rs) => {
            for (i, r) in rs.iter().enumerate() {
                line(&mut out, format_args!("ResourceSpans #{i}"));
                resource(&mut out, r.resource.as_ref(), &r.schema_url);
                for (j, s) in r.scope_spans.iter().enumerate() {
                    line(&mut out, format_args!("ScopeSpans #{j}"));
                    line(
                        &mut out,
                        format_args!("ScopeSpans SchemaURL: {}", s.schema_url),
                    );
                    scope(&mut out, s.scope.as_ref());
                    for (k, sp) in s.spans.iter().enumerate() {
                        line(&mut out, format_args!("Span #{k}"));
                        span_detailed(&mut out, sp);
                    }
                }
            }
        }
        Signal::Metrics(rm) => {
            for (i, r) in rm.iter().enumerate() {
                line(&mut out, format_args!("ResourceMetrics #{i}"));
                resource(&mut out, r.resource.as_ref(), &r.schema_url);
                for (j, s) in r.scope_metrics.iter().enumerate() {
                    line(&mut out, format_args!("ScopeMetrics #{j}"));
                    line(
                        &mut out,
                        format_args!("ScopeMetrics SchemaURL: {}", s.schema_url),
                    );
                    scope(&mut out, s.scope.as_ref());
                    for (k, m) in s.metrics.iter().enumerate() {
                        line(&mut out, format_args!("Metric #{k}"));
                        metric_detailed(&mut out, m);
                    }
                }
            }
        }
        Signal::Logs(rl) => {
            for (i, r) in rl.iter().enumerate() {
                line(&mut out, format_args!("ResourceLog #{i}"));
                resource(&mut out, r.resource.as_ref(), &r.schema_url);
                for (j, s) in r.scope_logs.iter().enumerate() {
                    line(&mut out, format_args!("ScopeLogs #{j}"));
                    line(
                        &mut out,
                        format_args!("ScopeLogs SchemaURL: {}", s.schema_url),
                    );
                    scope(&mut out, s.scope.as_ref());
                    for (k, l) in s.log_records.iter().enumerate() {
                        line(&mut out, format_args!("LogRecord #{k}"));
                        log_detailed(&mut out, l);
                    }
                }
            }
        }
    }
    out
}

/// One line per span, log record or metric (`verbosity: normal`).
pub fn render_normal(signal: &Signal) -> String {
    let mut out = String::new();
    match signal {
        Signal::Traces(rs) => {
            for (i, r) in rs.iter().enumerate() {
                resource_normal(
                    &mut out,
                    "ResourceSpans",
                    i,
                    r.resource.as_ref(),
                    &r.schema_url,
                );
                for (j, s) in r.scope_spans.iter().enumerate() {
                    scope_normal(&mut out, "ScopeSpans", j, s.scope.as_ref(), &s.schema_url);
                    for sp in &s.spans {
                        let _ = write!(
                            out,
                            "{} {} {}",
                            sp.name,
                            hex::encode(&sp.trace_id),
                            hex::encode(&sp.span_id)
                        );
                        attrs_inline(&mut out, &sp.attributes);
                        out.push('\n');
                    }
                }
            }
        }
        Signal::Metrics(rm) => {
            for (i, r) in rm.iter().enumerate() {
                resource_normal(
                    &mut out,
                    "ResourceMetrics",
                    i,
                    r.resource.as_ref(),
                    &r.schema_url,
                );
                for (j, s) in r.scope_metrics.iter().enumerate() {
                    scope_normal(&mut out, "ScopeMetrics", j, s.scope.as_ref(), &s.schema_url);
                    for m in &s.metrics {
                        let _ = writeln!(
                            out,
                            "{} {} points={}",
                            m.name,
                            data_type(m),
                            confluo_pipeline::signal::data_point_count(m)
                        );
                    }
                }
            }
        }
        Signal::Logs(rl) => {
            for (i, r) in rl.iter().enumerate() {
                resource_normal(
                    &mut out,
                    "ResourceLog",
                    i,
                    r.resource.as_ref(),
                    &r.schema_url,
                );
                for (j, s) in r.scope_logs.iter().enumerate() {
                    scope_normal(&mut out, "ScopeLog", j, s.scope.as_ref(), &s.schema_url);
                    for l in &s.log_records {
                        match &l.body {
                            Some(v) => out.push_str(&value_plain(v)),
                            None => out.push_str("<no body>"),
                        }
                        attrs_inline(&mut out, &l.attributes);
                        out.push('\n');
                    }
                }
            }
        }
    }
    out
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
    out.push('\n');
}

fn resource(out: &mut String, r: Option<&Resource>, schema_url: &str) {
    line(out, format_args!("Resource SchemaURL: {schema_url}"));
    if let Some(r) = r {
        if !r.attributes.is_empty() {
            line(out, format_args!("Resource attributes:"));
            attrs(out, &r.attributes, 1);
        }
    }
}

fn scope(out: &mut String, s: Option<&InstrumentationScope>) {
    let (name, version) = s.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
    line(out, format_args!("InstrumentationScope {name} {version}"));
    if let Some(s) = s {
        if !s.attributes.is_empty() {
            line(out, format_args!("InstrumentationScope attributes:"));
            attrs(out, &s.attributes, 1);
        }
    }
}

fn resource_normal(out: &mut String, what: &str, i: usize, r: Option<&Resource>, schema_url: &str) {
    let _ = write!(out, "{what} #{i}");
    if !schema_url.is_empty() {
        let _ = write!(out, " [{schema_url}]");
    }
    if let Some(r) = r {
        attrs_inline(out, &r.attributes);
    }
    out.push('\n');
}

fn scope_normal(
    out: &mut String,
    what: &str,
    i: usize,
    s: Option<&InstrumentationScope>,
    schema_url: &str,
) {
    let _ = write!(out, "{what} #{i}");
    if let Some(s) = s {
        let _ = write!(out, " {}", s.name);
        if !s.version.is_empty() {
            let _ = write!(out, "@{}", s.version);
        }
    }
    if !schema_url.is_empty() {
        let _ = write!(out, " [{schema_url}]");
    }
    out.push('\n');
}

/// ` k=v k2=v2` on the current line.
fn attrs_inline(out: &mut String, kvs: &[KeyValue]) {
    for kv in kvs {
        let _ = write!(out, " {}=", kv.key);
        if let Some(v) = &kv.value {
            out.push_str(&value_plain(v));
        }
    }
}

/// `     -> key: Str(value)`, indented by `depth` levels.
fn attrs(out: &mut String, kvs: &[KeyValue], depth: usize) {
    for kv in kvs {
        let indent = "     ".repeat(depth);
        let v = kv
            .value
            .as_ref()
            .map_or_else(|| "Empty()".to_string(), value_typed);
        line(out, format_args!("{indent}-> {}: {v}", kv.key));
    }
}

/// A value with its type, as the Collector prints attributes: `Str(x)`, `Int(1)`.
pub fn value_typed(v: &AnyValue) -> String {
    match &v.value {
        None => "Empty()".into(),
        Some(any_value::Value::StringValue(s)) => format!("Str({s})"),
        Some(any_value::Value::BoolValue(b)) => format!("Bool({b})"),
        Some(any_value::Value::IntValue(i)) => format!("Int({i})"),
        Some(any_value::Value::DoubleValue(d)) => format!("Double({})", fmt_f64(*d)),
        Some(any_value::Value::BytesValue(b)) => format!("Bytes({})", hex::encode(b)),
        Some(any_value::Value::ArrayValue(_)) => format!("Slice({})", value_json(v)),
        Some(any_value::Value::KvlistValue(_)) => format!("Map({})", value_json(v)),
        // An index into a profiles string table; meaningless without it.
        Some(any_value::Value::StringValueStrindex(i)) => format!("StrIndex({i})"),
    }
}

/// A value as plain text: strings as they are, the rest as JSON.
fn value_plain(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => value_json(v),
    }
}

fn value_json(v: &AnyValue) -> String {
    fn to_json(v: &AnyValue) -> serde_json::Value {
        use serde_json::Value as J;
        match &v.value {
            None => J::Null,
            Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
            Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
            Some(any_value::Value::IntValue(i)) => J::from(*i),
            Some(any_value::Value::DoubleValue(d)) => {
                serde_json::Number::from_f64(*d).map_or_else(|| J::String(fmt_f64(*d)), J::Number)
            }
            Some(any_value::Value::BytesValue(b)) => J::String(hex::encode(b)),
            Some(any_value::Value::ArrayValue(a)) => {
                J::Array(a.values.iter().map(to_json).collect())
            }
            Some(any_value::Value::KvlistValue(m)) => J::Object(
                m.values
                    .iter()
                    .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, to_json)))
                    .collect(),
            ),
            Some(any_value::Value::StringValueStrindex(i)) => J::from(*i),
        }
    }
    to_json(v).to_string()
}

fn fmt_f64(d: f64) -> String {
    format!("{d:.6}")
}

fn span_detailed(out: &mut String, s: &Span) {
    line(
        out,
        format_args!("    Trace ID       : {}", hex::encode(&s.trace_id)),
    );
    line(
        out,
        format_args!("    Parent ID      : {}", hex::encode(&s.parent_span_id)),
    );
    line(
        out,
        format_args!("    ID             : {}", hex::encode(&s.span_id)),
    );
    line(out, format_args!("    Name           : {}", s.name));
    line(
        out,
        format_args!("    Kind           : {}", span_kind(s.kind)),
    );
    if !s.trace_state.is_empty() {
        line(out, format_args!("    TraceState     : {}", s.trace_state));
    }
    line(
        out,
        format_args!("    Start time     : {}", timestamp(s.start_time_unix_nano)),
    );
    line(
        out,
        format_args!("    End time       : {}", timestamp(s.end_time_unix_nano)),
    );
    let (code, message) = s
        .status
        .as_ref()
        .map_or((0, ""), |st| (st.code, st.message.as_str()));
    line(
        out,
        format_args!("    Status code    : {}", status_code(code)),
    );
    line(out, format_args!("    Status message : {message}"));
    if s.dropped_attributes_count > 0 {
        line(
            out,
            format_args!("    DroppedAttributesCount: {}", s.dropped_attributes_count),
        );
    }
    if !s.attributes.is_empty() {
        line(out, format_args!("Attributes:"));
        attrs(out, &s.attributes, 1);
    }
    if !s.events.is_empty() {
        line(out, format_args!("Events:"));
        for (i, e) in s.events.iter().enumerate() {
            line(out, format_args!("SpanEvent #{i}"));
            line(out, format_args!("     -> Name: {}", e.name));
            line(
                out,
                format_args!("     -> Timestamp: {}", timestamp(e.time_unix_nano)),
            );
            line(
                out,
                format_args!(
                    "     -> DroppedAttributesCount: {}",
                    e.dropped_attributes_count
                ),
            );
            if !e.attributes.is_empty() {
                line(out, format_args!("     -> Attributes::"));
                attrs(out, &e.attributes, 2);
            }
        }
    }
    if !s.links.is_empty() {
        line(out, format_args!("Links:"));
        for (i, l) in s.links.iter().enumerate() {
            line(out, format_args!("SpanLink #{i}"));
            line(
                out,
                format_args!("     -> Trace ID: {}", hex::encode(&l.trace_id)),
            );
            line(out, format_args!("     -> ID: {}", hex::encode(&l.span_id)));
            line(out, format_args!("     -> TraceState: {}", l.trace_state));
            line(
                out,
                format_args!(
                    "     -> DroppedAttributesCount: {}",
                    l.dropped_attributes_count
                ),
            );
            if !l.attributes.is_empty() {
                line(out, format_args!("     -> Attributes::"));
                attrs(out, &l.attributes, 2);
            }
        }
    }
}

fn span_kind(k: i32) -> String {
    match span::SpanKind::try_from(k) {
        Ok(span::SpanKind::Unspecified) => "Unspecified".into(),
        Ok(span::SpanKind::Internal) => "Internal".into(),
        Ok(span::SpanKind::Server) => "Server".into(),
        Ok(span::SpanKind::Client) => "Client".into(),
        Ok(span::SpanKind::Producer) => "Producer".into(),
        Ok(span::SpanKind::Consumer) => "Consumer".into(),
        Err(_) => format!("SpanKind({k})"),
    }
}

fn status_code(c: i32) -> String {
    match status::StatusCode::try_from(c) {
        Ok(status::StatusCode::Unset) => "Unset".into(),
        Ok(status::StatusCode::Ok) => "Ok".into(),
        Ok(status::StatusCode::Error) => "Error".into(),
        Err(_) => format!("StatusCode({c})"),
    }
}

fn data_type(m: &Metric) -> &'static str {
    match &m.data {
        None => "Empty",
        Some(Data::Gauge(_)) => "Gauge",
        Some(Data::Sum(_)) => "Sum",
        Some(Data::Histogram(_)) => "Histogram",
        Some(Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(Data::Summary(_)) => "Summary",
    }
}

fn temporality(t: i32) -> &'static str {
    match t {
        1 => "Delta",
        2 => "Cumulative",
        _ => "Unspecified",
    }
}

fn metric_detailed(out: &mut String, m: &Metric) {
    line(out, format_args!("Descriptor:"));
    line(out, format_args!("     -> Name: {}", m.name));
    line(out, format_args!("     -> Description: {}", m.description));
    line(out, format_args!("     -> Unit: {}", m.unit));
    line(out, format_args!("     -> DataType: {}", data_type(m)));
    match &m.data {
        None => {}
        Some(Data::Gauge(g)) => number_points(out, &g.data_points),
        Some(Data::Sum(s)) => {
            line(out, format_args!("     -> IsMonotonic: {}", s.is_monotonic));
            line(
                out,
                format_args!(
                    "     -> AggregationTemporality: {}",
                    temporality(s.aggregation_temporality)
                ),
            );
            number_points(out, &s.data_points);
        }
        Some(Data::Histogram(h)) => {
            line(
                out,
                format_args!(
                    "     -> AggregationTemporality: {}",
                    temporality(h.aggregation_temporality)
                ),
            );
            for (i, p) in h.data_points.iter().enumerate() {
                line(out, format_args!("HistogramDataPoints #{i}"));
                point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                line(out, format_args!("Count: {}", p.count));
                if let Some(sum) = p.sum {
                    line(out, format_args!("Sum: {}", fmt_f64(sum)));
                }
                if let Some(min) = p.min {
                    line(out, format_args!("Min: {}", fmt_f64(min)));
                }
                if let Some(max) = p.max {
                    line(out, format_args!("Max: {}", fmt_f64(max)));
                }
                for (b, bound) in p.explicit_bounds.iter().enumerate() {
                    line(
                        out,
                        format_args!("ExplicitBounds #{b}: {}", fmt_f64(*bound)),
                    );
                }
                for (b, count) in p.bucket_counts.iter().enumerate() {
                    line(out, format_args!("Buckets #{b}, Count: {count}"));
                }
                exemplars(out, &p.exemplars);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            line(
                out,
                format_args!(
                    "     -> AggregationTemporality: {}",
                    temporality(h.aggregation_temporality)
                ),
            );
            for (i, p) in h.data_points.iter().enumerate() {
                line(out, format_args!("ExponentialHistogramDataPoints #{i}"));
                point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                line(out, format_args!("Count: {}", p.count));
                if let Some(sum) = p.sum {
                    line(out, format_args!("Sum: {}", fmt_f64(sum)));
                }
                if let Some(min) = p.min {
                    line(out, format_args!("Min: {}", fmt_f64(min)));
                }
                if let Some(max) = p.max {
                    line(out, format_args!("Max: {}", fmt_f64(max)));
                }
                line(out, format_args!("Scale: {}", p.scale));
                line(out, format_args!("ZeroCount: {}", p.zero_count));
                for (label, b) in [("Positive", &p.positive), ("Negative", &p.negative)] {
                    if let Some(b) = b {
                        line(out, format_args!("{label} offset: {}", b.offset));
                        line(
                            out,
                            format_args!("{label} bucket counts: {:?}", b.bucket_counts),
                        );
                    }
                }
                exemplars(out, &p.exemplars);
            }
        }
        Some(Data::Summary(s)) => {
            for (i, p) in s.data_points.iter().enumerate() {
                line(out, format_args!("SummaryDataPoints #{i}"));
                point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                line(out, format_args!("Count: {}", p.count));
                line(out, format_args!("Sum: {}", fmt_f64(p.sum)));
                for (q, qv) in p.quantile_values.iter().enumerate() {
                    line(
                        out,
                        format_args!(
                            "QuantileValue #{q}: Quantile {}, Value {}",
                            qv.quantile,
                            fmt_f64(qv.value)
                        ),
                    );
                }
            }
        }
    }
}

fn point_header(out: &mut String, attributes: &[KeyValue], start: u64, time: u64) {
    if !attributes.is_empty() {
        line(out, format_args!("Data point attributes:"));
        attrs(out, attributes, 1);
    }
    line(out, format_args!("StartTimestamp: {}", timestamp(start)));
    line(out, format_args!("Timestamp: {}", timestamp(time)));
}

fn number_points(out: &mut String, points: &[confluo_pipeline::proto::metrics::NumberDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        line(out, format_args!("NumberDataPoints #{i}"));
        point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
        match &p.value {
            Some(number_data_point::Value::AsInt(v)) => line(out, format_args!("Value: {v}")),
            Some(number_data_point::Value::AsDouble(v)) => {
                line(out, format_args!("Value: {}", fmt_f64(*v)))
            }
            None => line(out, format_args!("Value: (none)")),
        }
        exemplars(out, &p.exemplars);
    }
}

fn exemplars(out: &mut String, ex: &[Exemplar]) {
    if ex.is_empty() {
        return;
    }
    line(out, format_args!("Exemplars:"));
    for (i, e) in ex.iter().enumerate() {
        line(out, format_args!("Exemplar #{i}"));
        line(
            out,
            format_args!("     -> Trace ID: {}", hex::encode(&e.trace_id)),
        );
        line(
            out,
            format_args!("     -> Span ID: {}", hex::encode(&e.span_id)),
        );
        line(
            out,
            format_args!("     -> Timestamp: {}", timestamp(e.time_unix_nano)),
        );
        match &e.value {
            Some(exemplar::Value::AsInt(v)) => line(out, format_args!("     -> Value: {v}")),
            Some(exemplar::Value::AsDouble(v)) => {
                line(out, format_args!("     -> Value: {}", fmt_f64(*v)))
            }
            None => {}
        }
        if !e.filtered_attributes.is_empty() {
            line(out, format_args!("     -> FilteredAttributes: "));
            attrs(out, &e.filtered_attributes, 2);
        }
    }
}

fn log_detailed(out: &mut String, l: &LogRecord) {
    line(
        out,
        format_args!(
            "ObservedTimestamp: {}",
            timestamp(l.observed_time_unix_nano)
        ),
    );
    line(
        out,
        format_args!("Timestamp: {}", timestamp(l.time_unix_nano)),
    );
    line(out, format_args!("SeverityText: {}", l.severity_text));
    line(
        out,
        format_args!("SeverityNumber: {}", severity(l.severity_number)),
    );
    if !l.event_name.is_empty() {
        line(out, format_args!("EventName: {}", l.event_name));
    }
    let body = l
        .body
        .as_ref()
        .map_or_else(|| "Empty()".to_string(), value_typed);
    line(out, format_args!("Body: {body}"));
    if !l.attributes.is_empty() {
        line(out, format_args!("Attributes:"));
        attrs(out, &l.attributes, 1);
    }
    line(out, format_args!("Trace ID: {}", hex::encode(&l.trace_id)));
    line(out, format_args!("Span ID: {}", hex::encode(&l.span_id)));
    line(out, format_args!("Flags: {}", l.flags));
}

/// `Info(9)`, as the Collector prints severity numbers.
fn severity(n: i32) -> String {
    let name = match n {
        0 => "Unspecified",
        1 => "Trace",
        2..=4 => return format!("Trace{}({n})", n),
        5 => "Debug",
        6..=8 => return format!("Debug{}({n})", n - 4),
        9 => "Info",
        10..=12 => return format!("Info{}({n})", n - 8),
        13 => "Warn",
        14..=16 => return format!("Warn{}({n})", n - 12),
        17 => "Error",
        18..=20 => return format!("Error{}({n})", n - 16),
        21 => "Fatal",
        22..=24 => return format!("Fatal{}({n})", n - 20),
        _ => "Unknown",
    };
    format!("{name}({n})")
}

/// Unix nanoseconds in Go's `time.Time.String()` layout, UTC:
/// `2018-12-13 14:51:00.000000001 +0000 UTC` (fraction without trailing zeros).
pub fn timestamp(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn timestamps_in_go_layout() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            timestamp(1_544_712_660_000_000_001),
            "2018-12-13 14:51:00.000000001 +0000 UTC"
        );
        assert_eq!(
            timestamp(1_709_251_199_500_000_000),
            "2024-02-29 23:59:59.5 +0000 UTC"
        );
    }

    #[test]
    fn detailed_traces_show_every_field() {
        let text = render_detailed(&testdata::traces());
        for needle in [
            "ResourceSpans #0",
            "     -> service.name: Str(checkout)",
            "InstrumentationScope io.confluo.test 1.2.3",
            "    Name           : GET /cart",
            "    Trace ID       : 0102030405060708090a0b0c0d0e0f10",
            "    Kind           : Server",
            "    Status code    : Error",
            "     -> http.status_code: Int(500)",
            "     -> ratio: Double(0.250000)",
            "SpanEvent #0",
            "     -> Name: exception",
            "          -> exception.message: Str(boom)",
            "SpanLink #0",
            "Span #1",
            "    Name           : SELECT",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn detailed_metrics_and_logs() {
        let text = render_detailed(&testdata::metrics());
        for needle in [
            "     -> Name: http.requests",
            "     -> DataType: Sum",
            "     -> IsMonotonic: true",
            "     -> AggregationTemporality: Cumulative",
            "Value: 42",
            "     -> route: Str(/cart)",
            "HistogramDataPoints #0",
            "Buckets #1, Count: 3",
            "     -> DataType: Gauge",
            "Value: 0.500000",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let text = render_detailed(&testdata::logs());
        for needle in [
            "ResourceLog #0",
            "LogRecord #0",
            "SeverityNumber: Error(17)",
            "Body: Str(payment failed)",
            "     -> user: Map({\"id\":7})",
            "Trace ID: 0102030405060708090a0b0c0d0e0f10",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn normal_is_one_line_per_item() {
        let text = render_normal(&testdata::traces());
        assert!(
            text.contains(
                "GET /cart 0102030405060708090a0b0c0d0e0f10 0102030405060708 http.status_code=500"
            ),
            "{text}"
        );
        let text = render_normal(&testdata::logs());
        assert!(text.contains("payment failed"), "{text}");
        let text = render_normal(&testdata::metrics());
        assert!(text.contains("http.requests Sum points=1"), "{text}");
    }
}
