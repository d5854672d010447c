//! OTLP metrics → Datadog series (`/api/v2/series` or `/api/v1/series`)
//! and sketches (`/api/beta/sketches`), as the Collector's `datadog`
//! exporter maps them (`opentelemetry-mapping-go` `pkg/otlp/metrics`):
//!
//! - Gauge → gauge. Delta sum → count. Cumulative non-monotonic sum → gauge.
//! - Cumulative monotonic sum → with `to_delta`, counts of the differences
//!   between consecutive points (reset-aware, [`delta`]); the first point of
//!   a series is sent as is only per `initial_cumulative_monotonic_value`
//!   (`keep`; `auto` = when the series started after this exporter). With
//!   `raw_value`, the cumulative value as a gauge.
//! - Histogram → `distributions`: a DDSketch per point, built by spreading
//!   each bucket's count over its bounds ([`sketch`]), with the exact count
//!   and sum; `counters`: `<name>.bucket` counts tagged `lower_bound` /
//!   `upper_bound`; `nobuckets`: none. Cumulative histograms use the
//!   per-bucket differences. `send_aggregation_metrics` adds `.count` and
//!   `.sum` counts and, for delta points, `.min` / `.max` gauges.
//! - Exponential histogram (delta) → a sketch from its buckets (each
//!   bucket's count spread over `(base^i, base^(i+1)]`); cumulative ones are
//!   skipped, as the Collector's translator does.
//! - Summary → `.count` and `.sum` counts (differences of the cumulative
//!   values) and, in `gauges` mode, `.quantile` gauges tagged `quantile:<q>`.
//! - NaN/±Inf values and points flagged "no recorded value" are skipped.
//!
//! Tags: the resource's (see [`super::attributes`]), `instrumentation_scope`
//! / `instrumentation_scope_version` with
//! `instrumentation_scope_metadata_as_tags`, and each point attribute as
//! `key:value`. Units and intervals are not sent (the Collector's series
//! carry neither for these types).

mod delta;
pub mod sketch;

use super::attributes::{host_from_attributes, resource_tags, tag};
use super::config::{
    CumulativeMonotonicMode, DatadogConfig, HistogramMode, InitialCumulativeValue,
    MetricsApiVersion, SummaryMode,
};
use super::payload::{DatadogRequest, Framing, Route};
use bytes::Bytes;
use confluo_pipeline::attrs::to_text;
use confluo_pipeline::otlp_json::write_json_str;
use confluo_pipeline::proto::common::KeyValue;
use confluo_pipeline::proto::metrics::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
    ResourceMetrics, SummaryDataPoint,
};
use delta::{DeltaState, Monotonic};
use prost::Message;
use sketch::{Dogsketch, Sketch, SketchBuilder, SketchPayload};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// OTLP's `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Count,
    Gauge,
}

impl Kind {
    fn v2(self) -> u8 {
        match self {
            Kind::Count => 1,
            Kind::Gauge => 3,
        }
    }

    fn v1(self) -> &'static str {
        match self {
            Kind::Count => "count",
            Kind::Gauge => "gauge",
        }
    }
}

/// Converts and encodes metrics; holds the cumulative → delta state.
pub struct MetricsEncoder {
    api_version: MetricsApiVersion,
    cumulative_mode: CumulativeMonotonicMode,
    initial_value: InitialCumulativeValue,
    histogram_mode: HistogramMode,
    histogram_aggregations: bool,
    quantiles: bool,
    resource_attributes_as_tags: bool,
    scope_as_tags: bool,
    hostname: String,
    /// When this exporter started: `auto` keeps the first value of series
    /// that started later.
    start_ns: u64,
    state: Mutex<DeltaState>,
    series_framing: Arc<Framing>,
    sketch_framing: Arc<Framing>,
}

/// The requests of one batch being filled.
struct Output {
    series_route: Route,
    series_framing: Arc<Framing>,
    sketch_framing: Arc<Framing>,
    done: Vec<DatadogRequest>,
    series: Option<DatadogRequest>,
    sketches: Option<DatadogRequest>,
    now_s: i64,
}

impl Output {
    fn push(&mut self, route: Route, part: Vec<u8>) {
        let (slot, framing) = if route == Route::Sketches {
            (&mut self.sketches, &self.sketch_framing)
        } else {
            (&mut self.series, &self.series_framing)
        };
        let req = slot.get_or_insert_with(|| DatadogRequest::new(route, framing.clone()));
        if !req.fits(part.len()) {
            let full = std::mem::replace(req, DatadogRequest::new(route, framing.clone()));
            self.done.push(full);
        }
        req.push(Bytes::from(part), 1);
    }

    fn finish(mut self) -> Vec<DatadogRequest> {
        self.done
            .extend(self.series.take().filter(|r| !r.is_empty()));
        self.done
            .extend(self.sketches.take().filter(|r| !r.is_empty()));
        self.done
    }

    fn seconds(&self, ts_ns: u64) -> i64 {
        if ts_ns == 0 {
            self.now_s
        } else {
            (ts_ns / 1_000_000_000) as i64
        }
    }
}

/// One metric's context while its points are mapped.
struct Ctx<'a> {
    host: &'a str,
    base_tags: &'a [String],
    now: Instant,
}

fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` with `.0` added to whole
/// numbers, as the Collector writes bucket bounds and quantiles in tags.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut s = if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    };
    if f == f.floor() {
        s.push_str(".0");
    }
    s
}

fn number_value(dp: &NumberDataPoint) -> Option<f64> {
    match dp.value? {
        number_data_point::Value::AsDouble(d) => Some(d),
        number_data_point::Value::AsInt(i) => Some(i as f64),
    }
}

/// The point's tags: the metric's, then its attributes as `key:value`, sorted.
fn point_tags(base: &[String], attrs: &[KeyValue]) -> Vec<String> {
    let mut tags = Vec::with_capacity(base.len() + attrs.len());
    tags.extend_from_slice(base);
    for kv in attrs {
        let v = kv.value.as_ref().map(to_text).unwrap_or_default();
        tags.push(tag(&kv.key, &v));
    }
    tags.sort_unstable();
    tags
}

/// The delta state key: name, host and (sorted) tags, NUL-separated.
fn state_key(name: &str, host: &str, tags: &[String], extra: &[&str]) -> String {
    let mut key = String::with_capacity(
        name.len() + host.len() + tags.iter().map(|t| t.len() + 1).sum::<usize>() + 32,
    );
    key.push_str(name);
    key.push('\0');
    key.push_str(host);
    for t in tags.iter().map(String::as_str).chain(extra.iter().copied()) {
        key.push('\0');
        key.push_str(t);
    }
    key
}

fn with_suffix(name: &str, suffix: &str) -> String {
    let mut s = String::with_capacity(name.len() + 1 + suffix.len());
    s.push_str(name);
    s.push('.');
    s.push_str(suffix);
    s
}

fn bucket_bounds(bounds: &[f64], i: usize) -> (f64, f64) {
    let lower = if i == 0 {
        f64::NEG_INFINITY
    } else {
        bounds[i - 1]
    };
    let upper = bounds.get(i).copied().unwrap_or(f64::INFINITY);
    (lower, upper)
}

impl MetricsEncoder {
    pub fn new(cfg: &DatadogConfig, hostname: &str) -> Result<MetricsEncoder, String> {
        let m = &cfg.metrics;
        if m.histograms.mode == HistogramMode::Nobuckets && !m.histograms.send_aggregation_metrics {
            return Err("metrics.histograms.mode `nobuckets` needs `send_aggregation_metrics: true` (nothing would be sent)".into());
        }
        Ok(MetricsEncoder {
            api_version: m.api_version,
            cumulative_mode: m.sums.cumulative_monotonic_mode,
            initial_value: m.sums.initial_cumulative_monotonic_value,
            histogram_mode: m.histograms.mode,
            histogram_aggregations: m.histograms.send_aggregation_metrics,
            quantiles: m.summaries.mode == SummaryMode::Gauges,
            resource_attributes_as_tags: m.resource_attributes_as_tags,
            scope_as_tags: m.instrumentation_scope_metadata_as_tags,
            hostname: hostname.to_string(),
            start_ns: now_unix().as_nanos() as u64,
            state: Mutex::new(DeltaState::new(Duration::from_secs(m.delta_ttl.max(1)))),
            series_framing: Arc::new(Framing::json_series()),
            // SketchPayload: every part is one `sketches` (field 1) entry.
            sketch_framing: Arc::new(Framing::protobuf(Bytes::new())),
        })
    }

    fn series_route(&self) -> Route {
        match self.api_version {
            MetricsApiVersion::V2 => Route::SeriesV2,
            MetricsApiVersion::V1 => Route::SeriesV1,
        }
    }

    pub fn encode(
        &self,
        resource_metrics: &[ResourceMetrics],
    ) -> Result<Vec<DatadogRequest>, String> {
        let now = Instant::now();
        let mut out = Output {
            series_route: self.series_route(),
            series_framing: self.series_framing.clone(),
            sketch_framing: self.sketch_framing.clone(),
            done: Vec::new(),
            series: None,
            sketches: None,
            now_s: now_unix().as_secs() as i64,
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.sweep(now);
        for rm in resource_metrics {
            let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            let host = host_from_attributes(attrs);
            let host = host.as_deref().unwrap_or(&self.hostname);
            let rtags = resource_tags(attrs, self.resource_attributes_as_tags);
            for sm in &rm.scope_metrics {
                let mut base = rtags.clone();
                if self.scope_as_tags {
                    if let Some(scope) = &sm.scope {
                        base.push(tag("instrumentation_scope", &scope.name));
                        base.push(tag("instrumentation_scope_version", &scope.version));
                    }
                }
                let ctx = Ctx {
                    host,
                    base_tags: &base,
                    now,
                };
                for metric in &sm.metrics {
                    self.map_metric(
                        &ctx,
                        &metric.name,
                        metric.data.as_ref(),
                        &mut state,
                        &mut out,
                    );
                }
            }
        }
        Ok(out.finish())
    }

    fn map_metric(
        &self,
        ctx: &Ctx,
        name: &str,
        data: Option<&Data>,
        state: &mut DeltaState,
        out: &mut Output,
    ) {
        let cumulative = AggregationTemporality::Cumulative as i32;
        let delta = AggregationTemporality::Delta as i32;
        match data {
            Some(Data::Gauge(g)) => {
                for dp in &g.data_points {
                    self.number_point(ctx, name, Kind::Gauge, dp, out);
                }
            }
            Some(Data::Sum(s)) if s.aggregation_temporality == delta => {
                for dp in &s.data_points {
                    self.number_point(ctx, name, Kind::Count, dp, out);
                }
            }
            Some(Data::Sum(s)) if s.aggregation_temporality == cumulative => {
                let to_delta =
                    s.is_monotonic && self.cumulative_mode == CumulativeMonotonicMode::ToDelta;
                for dp in &s.data_points {
                    if to_delta {
                        self.monotonic_point(ctx, name, dp, state, out);
                    } else {
                        self.number_point(ctx, name, Kind::Gauge, dp, out);
                    }
                }
            }
            Some(Data::Histogram(h))
                if h.aggregation_temporality == delta
                    || h.aggregation_temporality == cumulative =>
            {
                let is_delta = h.aggregation_temporality == delta;
                for dp in &h.data_points {
                    self.histogram_point(ctx, name, dp, is_delta, state, out);
                }
            }
            Some(Data::ExponentialHistogram(h)) if h.aggregation_temporality == delta => {
                for dp in &h.data_points {
                    self.exponential_point(ctx, name, dp, out);
                }
            }
            Some(Data::Summary(s)) => {
                for dp in &s.data_points {
                    self.summary_point(ctx, name, dp, state, out);
                }
            }
            // Unspecified temporality, cumulative exponential histograms, no data.
            _ => {}
        }
    }

    fn number_point(
        &self,
        ctx: &Ctx,
        name: &str,
        kind: Kind,
        dp: &NumberDataPoint,
        out: &mut Output,
    ) {
        if dp.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let Some(v) = number_value(dp).filter(|v| v.is_finite()) else {
            return;
        };
        let tags = point_tags(ctx.base_tags, &dp.attributes);
        self.series(out, name, kind, dp.time_unix_nano, v, ctx.host, &tags);
    }

    fn monotonic_point(
        &self,
        ctx: &Ctx,
        name: &str,
        dp: &NumberDataPoint,
        state: &mut DeltaState,
        out: &mut Output,
    ) {
        if dp.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let Some(v) = number_value(dp).filter(|v| v.is_finite()) else {
            return;
        };
        let tags = point_tags(ctx.base_tags, &dp.attributes);
        let key = state_key(name, ctx.host, &tags, &[]);
        let (start, ts) = (dp.start_time_unix_nano, dp.time_unix_nano);
        let value = match state.monotonic(&key, start, ts, v, ctx.now) {
            Monotonic::Stale => return,
            Monotonic::Delta(dx) => dx,
            Monotonic::First => {
                let keep = match self.initial_value {
                    InitialCumulativeValue::Keep => true,
                    InitialCumulativeValue::Drop => false,
                    InitialCumulativeValue::Auto => start > self.start_ns && start != ts,
                };
                if !keep {
                    return;
                }
                v
            }
        };
        self.series(out, name, Kind::Count, ts, value, ctx.host, &tags);
    }

    fn histogram_point(
        &self,
        ctx: &Ctx,
        name: &str,
        dp: &HistogramDataPoint,
        is_delta: bool,
        state: &mut DeltaState,
        out: &mut Output,
    ) {
        if dp.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let tags = point_tags(ctx.base_tags, &dp.attributes);
        let (start, ts) = (dp.start_time_unix_nano, dp.time_unix_nano);
        let sum = dp.sum.unwrap_or(0.0);
        // Exact count and sum of this interval, when known.
        let exact = if is_delta {
            sum.is_finite().then_some((dp.count as f64, sum))
        } else {
            let count_key = state_key(&with_suffix(name, "count"), ctx.host, &tags, &[]);
            let count = state.diff(&count_key, start, ts, dp.count as f64, ctx.now);
            let sum = if sum.is_finite() {
                let sum_key = state_key(&with_suffix(name, "sum"), ctx.host, &tags, &[]);
                state.diff(&sum_key, start, ts, sum, ctx.now)
            } else {
                None
            };
            count.zip(sum)
        };
        if self.histogram_aggregations {
            // min and max are of this interval only for delta points.
            let min_max = if exact.is_some() && is_delta {
                [dp.min, dp.max]
            } else {
                [None, None]
            };
            self.aggregation_series(out, ctx, name, ts, exact, min_max, &tags);
        }
        match self.histogram_mode {
            HistogramMode::Nobuckets => {}
            HistogramMode::Counters => {
                let bucket_name = with_suffix(name, "bucket");
                for (i, &count) in dp.bucket_counts.iter().enumerate() {
                    let (lower, upper) = bucket_bounds(&dp.explicit_bounds, i);
                    let mut btags = tags.clone();
                    btags.push(tag("lower_bound", &format_float(lower)));
                    btags.push(tag("upper_bound", &format_float(upper)));
                    let value = if is_delta {
                        count as f64
                    } else {
                        let key = state_key(&bucket_name, ctx.host, &btags, &[]);
                        match state.diff(&key, start, ts, count as f64, ctx.now) {
                            Some(dx) => dx,
                            None => continue,
                        }
                    };
                    self.series(out, &bucket_name, Kind::Count, ts, value, ctx.host, &btags);
                }
            }
            HistogramMode::Distributions => {
                let mut sk = SketchBuilder::new();
                for (i, &count) in dp.bucket_counts.iter().enumerate() {
                    let (lower, upper) = bucket_bounds(&dp.explicit_bounds, i);
                    let n = if is_delta {
                        count
                    } else {
                        // Keyed by the bounds before infinite ones collapse,
                        // so the buckets of a single-bound histogram stay apart.
                        let (lo, hi) = (format_float(lower), format_float(upper));
                        let key = state_key(name, ctx.host, &tags, &[&lo, &hi]);
                        match state.diff(&key, start, ts, count as f64, ctx.now) {
                            Some(dx) if dx > 0.0 => dx as u64,
                            _ => continue,
                        }
                    };
                    sk.insert_interpolate(lower, upper, n);
                }
                if sk.is_empty() {
                    return;
                }
                let (min, max) = if is_delta {
                    (dp.min, dp.max)
                } else {
                    (None, None)
                };
                self.sketch(out, name, ts, ctx.host, &tags, &sk, exact, min, max);
            }
        }
    }

    fn exponential_point(
        &self,
        ctx: &Ctx,
        name: &str,
        dp: &ExponentialHistogramDataPoint,
        out: &mut Output,
    ) {
        if dp.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let tags = point_tags(ctx.base_tags, &dp.attributes);
        let ts = dp.time_unix_nano;
        let sum = dp.sum.unwrap_or(0.0);
        let exact = sum.is_finite().then_some((dp.count as f64, sum));
        if self.histogram_aggregations {
            self.aggregation_series(out, ctx, name, ts, exact, [dp.min, dp.max], &tags);
        }
        if self.histogram_mode != HistogramMode::Distributions {
            return;
        }
        // base = 2^(2^-scale); bucket i holds (base^i, base^(i+1)].
        let base = 2f64.powf(2f64.powi(-dp.scale.clamp(-10, 20)));
        let mut sk = SketchBuilder::new();
        let mut add = |buckets: Option<&Buckets>, sign: f64| {
            let Some(b) = buckets else { return };
            for (j, &count) in b.bucket_counts.iter().enumerate() {
                let index = b.offset as f64 + j as f64;
                let (lo, hi) = (base.powf(index), base.powf(index + 1.0));
                if sign > 0.0 {
                    sk.insert_interpolate(lo, hi, count);
                } else {
                    sk.insert_interpolate(-hi, -lo, count);
                }
            }
        };
        add(dp.positive.as_ref(), 1.0);
        add(dp.negative.as_ref(), -1.0);
        sk.insert_interpolate(0.0, 0.0, dp.zero_count);
        if sk.is_empty() {
            return;
        }
        self.sketch(out, name, ts, ctx.host, &tags, &sk, exact, dp.min, dp.max);
    }

    fn summary_point(
        &self,
        ctx: &Ctx,
        name: &str,
        dp: &SummaryDataPoint,
        state: &mut DeltaState,
        out: &mut Output,
    ) {
        if dp.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let tags = point_tags(ctx.base_tags, &dp.attributes);
        let (start, ts) = (dp.start_time_unix_nano, dp.time_unix_nano);
        let count_name = with_suffix(name, "count");
        let key = state_key(&count_name, ctx.host, &tags, &[]);
        if let Some(dx) = state.diff(&key, start, ts, dp.count as f64, ctx.now) {
            self.series(out, &count_name, Kind::Count, ts, dx, ctx.host, &tags);
        }
        if dp.sum.is_finite() {
            let sum_name = with_suffix(name, "sum");
            let key = state_key(&sum_name, ctx.host, &tags, &[]);
            if let Some(dx) = state.diff(&key, start, ts, dp.sum, ctx.now) {
                self.series(out, &sum_name, Kind::Count, ts, dx, ctx.host, &tags);
            }
        }
        if self.quantiles {
            let q_name = with_suffix(name, "quantile");
            for q in &dp.quantile_values {
                if !q.value.is_finite() {
                    continue;
                }
                let mut qtags = tags.clone();
                qtags.push(tag("quantile", &format_float(q.quantile)));
                self.series(out, &q_name, Kind::Gauge, ts, q.value, ctx.host, &qtags);
            }
        }
    }

    /// A histogram's `send_aggregation_metrics`: `.count` and `.sum` as
    /// counts (when known), `.min` and `.max` as gauges (when given and finite).
    #[allow(clippy::too_many_arguments)]
    fn aggregation_series(
        &self,
        out: &mut Output,
        ctx: &Ctx,
        name: &str,
        ts: u64,
        count_sum: Option<(f64, f64)>,
        min_max: [Option<f64>; 2],
        tags: &[String],
    ) {
        if let Some((count, sum)) = count_sum {
            for (suffix, v) in [("count", count), ("sum", sum)] {
                self.series(
                    out,
                    &with_suffix(name, suffix),
                    Kind::Count,
                    ts,
                    v,
                    ctx.host,
                    tags,
                );
            }
        }
        for (suffix, v) in [("min", min_max[0]), ("max", min_max[1])] {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                self.series(
                    out,
                    &with_suffix(name, suffix),
                    Kind::Gauge,
                    ts,
                    v,
                    ctx.host,
                    tags,
                );
            }
        }
    }

    /// Encodes one series of one point.
    #[allow(clippy::too_many_arguments)]
    fn series(
        &self,
        out: &mut Output,
        name: &str,
        kind: Kind,
        ts_ns: u64,
        value: f64,
        host: &str,
        tags: &[String],
    ) {
        if !value.is_finite() {
            return;
        }
        let ts = out.seconds(ts_ns);
        let mut b = Vec::with_capacity(
            96 + name.len() + host.len() + tags.iter().map(|t| t.len() + 3).sum::<usize>(),
        );
        b.extend_from_slice(b"{\"metric\":");
        write_json_str(&mut b, name);
        match out.series_route {
            Route::SeriesV1 => {
                b.extend_from_slice(b",\"type\":\"");
                b.extend_from_slice(kind.v1().as_bytes());
                b.extend_from_slice(b"\",\"points\":[[");
                b.extend_from_slice(ts.to_string().as_bytes());
                b.push(b',');
                b.extend_from_slice(json_number(value).as_bytes());
                b.extend_from_slice(b"]],\"host\":");
                write_json_str(&mut b, host);
            }
            _ => {
                b.extend_from_slice(b",\"type\":");
                b.extend_from_slice(kind.v2().to_string().as_bytes());
                b.extend_from_slice(b",\"points\":[{\"timestamp\":");
                b.extend_from_slice(ts.to_string().as_bytes());
                b.extend_from_slice(b",\"value\":");
                b.extend_from_slice(json_number(value).as_bytes());
                b.extend_from_slice(b"}],\"resources\":[{\"name\":");
                write_json_str(&mut b, host);
                b.extend_from_slice(b",\"type\":\"host\"}]");
            }
        }
        b.extend_from_slice(b",\"tags\":[");
        for (i, t) in tags.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            write_json_str(&mut b, t);
        }
        b.extend_from_slice(b"]}");
        let route = out.series_route;
        out.push(route, b);
    }

    /// Encodes one sketch: the exact count and sum override the sketch's
    /// approximations when known, as do the point's min and max.
    #[allow(clippy::too_many_arguments)]
    fn sketch(
        &self,
        out: &mut Output,
        name: &str,
        ts_ns: u64,
        host: &str,
        tags: &[String],
        sk: &SketchBuilder,
        exact: Option<(f64, f64)>,
        min: Option<f64>,
        max: Option<f64>,
    ) {
        let (k, n) = sk.bins();
        let (cnt, sum) = match exact {
            Some((c, s)) if c > 0.0 => (c as i64, s),
            _ => (sk.count as i64, sk.sum),
        };
        let avg = if cnt > 0 { sum / cnt as f64 } else { 0.0 };
        let payload = SketchPayload {
            sketches: vec![Sketch {
                metric: name.to_string(),
                host: host.to_string(),
                tags: tags.to_vec(),
                dogsketches: vec![Dogsketch {
                    ts: out.seconds(ts_ns),
                    cnt,
                    min: min.filter(|v| v.is_finite()).unwrap_or(sk.min),
                    max: max.filter(|v| v.is_finite()).unwrap_or(sk.max),
                    avg,
                    sum,
                    k,
                    n,
                }],
            }],
        };
        out.push(Route::Sketches, payload.encode_to_vec());
    }
}

/// A finite f64 as JSON: Rust's `Debug` form is the shortest round-trip
/// one and keeps a `.0` on whole numbers, so strict float fields parse it.
fn json_number(v: f64) -> String {
    format!("{v:?}")
}

#[cfg(test)]
mod tests;
