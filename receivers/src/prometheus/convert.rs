//! Scraped samples → OTLP metrics, after the Collector's prometheus receiver
//! (`internal/transaction.go`, `metricfamily.go`, `util.go`
//! `convToMetricType`, and the former in-receiver `metrics_adjuster.go`):
//!
//! | Prometheus type        | OTLP                                           |
//! |------------------------|------------------------------------------------|
//! | counter                | Sum, cumulative, monotonic                     |
//! | gauge, unknown/untyped | Gauge                                          |
//! | histogram              | Histogram, cumulative (buckets de-cumulated)   |
//! | summary                | Summary                                        |
//! | info, stateset         | Sum, cumulative, not monotonic                 |
//! | gaugehistogram         | dropped (counted), as the Collector does       |
//!
//! Series state per target ([`SeriesCache`]) gives each cumulative point its
//! start time (`_created`, else the first observation, reset when the value
//! decreases) and finds the series that disappeared (stale points flagged
//! `NO_RECORDED_VALUE`).

use super::parser::{Exposition, Family, Format, Label, MetricType, Sample};
use super::relabel::{self, LabelSet, RelabelConfig};
use confluo_pipeline::attrs::parse_hex_id;
use confluo_pipeline::proto::common::{InstrumentationScope, KeyValue};
use confluo_pipeline::proto::metrics::{
    exemplar, metric, number_data_point, summary_data_point::ValueAtQuantile,
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use confluo_pipeline::proto::resource::Resource;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The Collector's scope name, kept so that downstream components that key
/// on it (the prometheus exporter's scope handling) behave the same.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver";

/// OTLP `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
pub const NO_RECORDED_VALUE: u32 = 1;

/// The scrape target as seen by conversion.
#[derive(Clone, Debug)]
pub struct Target {
    /// Final target labels (no `__` labels), sorted, including `job` and `instance`.
    pub labels: LabelSet,
    pub job: String,
    pub instance: String,
    pub scheme: String,
}

impl Target {
    pub fn new(labels: LabelSet, scheme: String) -> Target {
        Target {
            job: relabel::get(&labels, "job").to_string(),
            instance: relabel::get(&labels, "instance").to_string(),
            labels,
            scheme,
        }
    }

    /// `service.name`, `service.instance.id`, `server.address`,
    /// `server.port`, `url.scheme`, as the Collector's `CreateResource`.
    pub fn resource(&self) -> Resource {
        let mut attrs = vec![
            kv("service.name", self.job.clone()),
            kv("service.instance.id", self.instance.clone()),
        ];
        let (host, port) = split_host_port(&self.instance);
        attrs.push(kv("server.address", host.to_string()));
        if let Some(p) = port {
            attrs.push(kv("server.port", p.to_string()));
        }
        attrs.push(kv("url.scheme", self.scheme.clone()));
        Resource {
            attributes: attrs,
            ..Default::default()
        }
    }

    /// Attributes every scrape-report point carries: target labels but
    /// `job`/`instance` (those are on the resource).
    fn point_labels(&self) -> Vec<KeyValue> {
        self.labels
            .iter()
            .filter(|(n, _)| n != "job" && n != "instance")
            .map(|(n, v)| kv(n, v.clone()))
            .collect()
    }
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h, Some(p));
        }
        return (rest.trim_end_matches(']'), None);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !p.is_empty() => (h, Some(p)),
        _ => (s, None),
    }
}

pub fn kv(key: impl Into<String>, value: String) -> KeyValue {
    confluo_pipeline::attrs::key_value(key, confluo_pipeline::attrs::string(value))
}

/// What conversion needs from the scrape config.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: &'a [RelabelConfig],
    /// 0 = unlimited.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub adjust_start_time: bool,
}

/// Why a scrape's samples were refused as a whole (Prometheus fails the scrape).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("sample limit exceeded: {got} samples, limit {limit}")]
    Samples { got: u64, limit: u64 },
    #[error("label_limit exceeded (metric: {metric}, number of labels: {got}, limit: {limit})")]
    Labels {
        metric: String,
        got: u64,
        limit: u64,
    },
    #[error(
        "label_name_length_limit exceeded (metric: {metric}, label name: {label}, limit: {limit})"
    )]
    NameLength {
        metric: String,
        label: String,
        limit: u64,
    },
    #[error(
        "label_value_length_limit exceeded (metric: {metric}, label name: {label}, limit: {limit})"
    )]
    ValueLength {
        metric: String,
        label: String,
        limit: u64,
    },
}

/// Per-scrape counts for the scrape-report metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    pub scraped: u64,
    pub post_relabel: u64,
    pub series_added: u64,
    /// Samples of types with no OTLP mapping (gaugehistogram) or invalid
    /// ones (histogram without `_count`, bad `le`).
    pub dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PointKind {
    Gauge,
    Sum { monotonic: bool },
    Histogram,
    Summary,
}

struct SeriesEntry {
    name: String,
    kind: PointKind,
    attrs: Vec<KeyValue>,
    start_ns: u64,
    last: f64,
    seen: u64,
}

/// Per-target series memory: start times, previous values (reset
/// detection) and the last scrape each series was seen in (staleness).
#[derive(Default)]
pub struct SeriesCache {
    gen: u64,
    series: HashMap<u64, SeriesEntry>,
}

impl SeriesCache {
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    #[allow(clippy::too_many_arguments)]
    fn track(
        &mut self,
        key: u64,
        name: &str,
        kind: PointKind,
        attrs: &[KeyValue],
        ts_ns: u64,
        value: f64,
        created_ns: Option<u64>,
        adjust: bool,
        added: &mut u64,
    ) -> u64 {
        let gen = self.gen;
        let entry = self.series.entry(key).or_insert_with(|| {
            *added += 1;
            SeriesEntry {
                name: name.to_string(),
                kind,
                attrs: attrs.to_vec(),
                start_ns: created_ns.unwrap_or(ts_ns),
                last: value,
                seen: gen,
            }
        });
        if let Some(c) = created_ns {
            entry.start_ns = c;
        } else if kind != PointKind::Gauge && value < entry.last {
            // A decrease of a cumulative value is a reset.
            entry.start_ns = ts_ns;
        }
        entry.last = value;
        entry.seen = gen;
        match kind {
            PointKind::Gauge => 0,
            _ if adjust => entry.start_ns,
            _ => created_ns.unwrap_or(0),
        }
    }

    /// Points flagged `NO_RECORDED_VALUE` for the series not seen in the
    /// current scrape (or for all of them), which are then forgotten.
    pub fn stale(&mut self, now_ns: u64, all: bool) -> Vec<Metric> {
        let gen = self.gen;
        let mut out: Vec<Metric> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.series.retain(|_, e| {
            if !all && e.seen == gen {
                return true;
            }
            let i = *index.entry(e.name.clone()).or_insert_with(|| {
                out.push(empty_metric(&e.name, e.kind, String::new(), String::new()));
                out.len() - 1
            });
            let attrs = std::mem::take(&mut e.attrs);
            let start = if e.kind == PointKind::Gauge {
                0
            } else {
                e.start_ns
            };
            match (&mut out[i].data, e.kind) {
                (Some(metric::Data::Gauge(g)), _) => {
                    g.data_points.push(stale_number(attrs, now_ns, 0))
                }
                (Some(metric::Data::Sum(s)), _) => {
                    s.data_points.push(stale_number(attrs, now_ns, start))
                }
                (Some(metric::Data::Histogram(h)), _) => h.data_points.push(HistogramDataPoint {
                    attributes: attrs,
                    start_time_unix_nano: start,
                    time_unix_nano: now_ns,
                    flags: NO_RECORDED_VALUE,
                    ..Default::default()
                }),
                (Some(metric::Data::Summary(s)), _) => s.data_points.push(SummaryDataPoint {
                    attributes: attrs,
                    start_time_unix_nano: start,
                    time_unix_nano: now_ns,
                    flags: NO_RECORDED_VALUE,
                    ..Default::default()
                }),
                _ => {}
            }
            false
        });
        out
    }
}

fn stale_number(attrs: Vec<KeyValue>, now_ns: u64, start: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: now_ns,
        flags: NO_RECORDED_VALUE,
        value: Some(number_data_point::Value::AsDouble(0.0)),
        ..Default::default()
    }
}

fn empty_metric(name: &str, kind: PointKind, description: String, unit: String) -> Metric {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match kind {
        PointKind::Gauge => metric::Data::Gauge(Gauge::default()),
        PointKind::Sum { monotonic } => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
            is_monotonic: monotonic,
        }),
        PointKind::Histogram => metric::Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
        }),
        PointKind::Summary => metric::Data::Summary(Summary::default()),
    };
    Metric {
        name: name.to_string(),
        description,
        unit,
        data: Some(data),
        ..Default::default()
    }
}

/// The sample's role within its family, from its name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Value,
    Bucket,
    Sum,
    Count,
    Created,
}

fn role(fam: &Family<'_>, sample: &Sample<'_>, format: Format) -> Role {
    let suffix = sample.name.strip_prefix(fam.name.as_ref()).unwrap_or("");
    match (fam.kind, suffix) {
        (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => Role::Bucket,
        (MetricType::Histogram | MetricType::Summary, "_sum") => Role::Sum,
        (MetricType::Histogram | MetricType::Summary, "_count") => Role::Count,
        (MetricType::GaugeHistogram, "_gsum") => Role::Sum,
        (MetricType::GaugeHistogram, "_gcount") => Role::Count,
        (_, "_created") if format == Format::OpenMetrics => Role::Created,
        _ => Role::Value,
    }
}

/// The label set of one sample after target labels and metric relabeling,
/// or `None` when relabeling dropped it. `name` is the (possibly renamed)
/// metric name.
struct Prepared {
    name: String,
    labels: LabelSet,
}

fn prepare(
    sample_name: &str,
    labels: &[Label<'_>],
    target: &Target,
    opts: &Options<'_>,
) -> Option<Prepared> {
    let relabeling = !opts.metric_relabel.is_empty();
    let mut ls: LabelSet = Vec::with_capacity(labels.len() + target.labels.len() + 1);
    for l in labels {
        if !l.value.is_empty() {
            ls.push((l.name.to_string(), l.value.to_string()));
        }
    }
    ls.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Prometheus's mutateSampleLabels: target labels win unless
    // honor_labels; a clashing exposed label becomes `exported_<name>`.
    for (tn, tv) in &target.labels {
        let is_resource = tn == "job" || tn == "instance";
        let exists = !relabel::get(&ls, tn).is_empty();
        if opts.honor_labels {
            if !exists && (relabeling || !is_resource) {
                relabel::set(&mut ls, tn, tv.clone());
            }
            continue;
        }
        if exists {
            let v = relabel::get(&ls, tn).to_string();
            let mut exported = format!("exported_{tn}");
            while !relabel::get(&ls, &exported).is_empty() {
                exported.insert_str(0, "exported_");
            }
            relabel::set(&mut ls, &exported, v);
            relabel::del(&mut ls, tn);
        }
        if relabeling || !is_resource {
            relabel::set(&mut ls, tn, tv.clone());
        }
    }
    let mut name = sample_name.to_string();
    if relabeling {
        relabel::set(&mut ls, "__name__", name);
        if !relabel::process(&mut ls, opts.metric_relabel) {
            return None;
        }
        name = relabel::get(&ls, "__name__").to_string();
        relabel::del(&mut ls, "__name__");
        if name.is_empty() {
            return None;
        }
        // Series whose job/instance are the target's carry them on the resource.
        if relabel::get(&ls, "job") == target.job {
            relabel::del(&mut ls, "job");
        }
        if relabel::get(&ls, "instance") == target.instance {
            relabel::del(&mut ls, "instance");
        }
    }
    Some(Prepared { name, labels: ls })
}

fn check_limits(p: &Prepared, opts: &Options<'_>, target: &Target) -> Result<(), LimitError> {
    if opts.label_limit > 0 {
        // Prometheus counts `__name__`, `job` and `instance` too.
        let extra = 1
            + u64::from(relabel::get(&p.labels, "job").is_empty())
            + u64::from(relabel::get(&p.labels, "instance").is_empty());
        let got = p.labels.len() as u64 + extra;
        if got > opts.label_limit {
            return Err(LimitError::Labels {
                metric: truncate50(&p.name),
                got,
                limit: opts.label_limit,
            });
        }
    }
    let all = p
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain([
            ("job", target.job.as_str()),
            ("instance", target.instance.as_str()),
        ]);
    for (n, v) in all {
        if opts.label_name_length_limit > 0 && n.len() as u64 > opts.label_name_length_limit {
            return Err(LimitError::NameLength {
                metric: truncate50(&p.name),
                label: truncate50(n),
                limit: opts.label_name_length_limit,
            });
        }
        if opts.label_value_length_limit > 0 && v.len() as u64 > opts.label_value_length_limit {
            return Err(LimitError::ValueLength {
                metric: truncate50(&p.name),
                label: truncate50(n),
                limit: opts.label_value_length_limit,
            });
        }
    }
    Ok(())
}

fn truncate50(s: &str) -> String {
    s.chars().take(50).collect()
}

fn series_key(name: &str, labels: &LabelSet, skip: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    for (n, v) in labels {
        if Some(n.as_str()) == skip {
            continue;
        }
        n.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

fn to_attrs(labels: LabelSet, skip: Option<&str>) -> Vec<KeyValue> {
    labels
        .into_iter()
        .filter(|(n, _)| Some(n.as_str()) != skip)
        .map(|(n, v)| kv(n, v))
        .collect()
}

/// `_created` seconds → ns, at Prometheus's millisecond resolution.
fn secs_to_ns(v: f64) -> Option<u64> {
    (v.is_finite() && v > 0.0).then(|| ((v * 1000.0) as u64).saturating_mul(1_000_000))
}

/// Converts one parsed scrape. On a limit error nothing is changed in
/// `cache` (the caller fails the scrape and marks every series stale).
pub fn convert(
    exp: &Exposition<'_>,
    format: Format,
    target: &Target,
    opts: &Options<'_>,
    now_ns: u64,
    cache: &mut SeriesCache,
) -> Result<(Vec<Metric>, ScrapeStats), LimitError> {
    let mut stats = ScrapeStats {
        scraped: exp.samples.len() as u64,
        ..Default::default()
    };
    // Pass 1: labels, relabeling and limits, before touching any state.
    let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(exp.samples.len());
    for s in &exp.samples {
        let p = prepare(&s.name, exp.labels_of(s), target, opts);
        if let Some(p) = &p {
            check_limits(p, opts, target)?;
            stats.post_relabel += 1;
        }
        prepared.push(p);
    }
    if opts.sample_limit > 0 && stats.post_relabel > opts.sample_limit {
        return Err(LimitError::Samples {
            got: stats.post_relabel,
            limit: opts.sample_limit,
        });
    }
    cache.gen += 1;
    let mut out = Vec::new();
    let mut added = 0;
    for fam in &exp.families {
        let base = fam.samples.start;
        let samples = exp.samples_of(fam);
        let mut cx = FamilyCx {
            exp,
            fam,
            format,
            opts,
            now_ns,
            cache: &mut *cache,
            added: &mut added,
            out: &mut out,
        };
        let taken = (base..base + samples.len()).map(|i| prepared[i].take());
        match fam.kind {
            MetricType::GaugeHistogram => stats.dropped += samples.len() as u64,
            MetricType::Histogram => stats.dropped += cx.histogram(samples, taken),
            MetricType::Summary => stats.dropped += cx.summary(samples, taken),
            _ => cx.numbers(samples, taken),
        }
    }
    stats.series_added = added;
    Ok((out, stats))
}

struct FamilyCx<'x, 'a> {
    exp: &'x Exposition<'a>,
    fam: &'x Family<'a>,
    format: Format,
    opts: &'x Options<'x>,
    now_ns: u64,
    cache: &'x mut SeriesCache,
    added: &'x mut u64,
    out: &'x mut Vec<Metric>,
}

impl FamilyCx<'_, '_> {
    fn ts_ns(&self, s: &Sample<'_>) -> u64 {
        match s.timestamp_ms {
            Some(ms) if self.opts.honor_timestamps && ms > 0 => {
                (ms as u64).saturating_mul(1_000_000)
            }
            _ => self.now_ns,
        }
    }

    fn metric_index(&mut self, start: usize, name: &str, kind: PointKind) -> usize {
        if let Some(i) = self.out[start..].iter().position(|m| m.name == name) {
            return start + i;
        }
        self.out.push(empty_metric(
            name,
            kind,
            self.fam.help.as_deref().unwrap_or("").to_string(),
            self.fam.unit.as_deref().unwrap_or("").to_string(),
        ));
        self.out.len() - 1
    }

    fn exemplar(&self, s: &Sample<'_>, ts_ns: u64) -> Vec<Exemplar> {
        let Some(e) = &s.exemplar else {
            return Vec::new();
        };
        let mut ex = Exemplar {
            time_unix_nano: e
                .timestamp_ms
                .map_or(ts_ns, |ms| (ms.max(0) as u64).saturating_mul(1_000_000)),
            value: Some(exemplar::Value::AsDouble(e.value)),
            ..Default::default()
        };
        for l in self.exp.exemplar_labels(e) {
            match l.name.as_ref() {
                "trace_id" => {
                    if let Some(id) = hex_id(&l.value, 16) {
                        ex.trace_id = id;
                        continue;
                    }
                }
                "span_id" => {
                    if let Some(id) = hex_id(&l.value, 8) {
                        ex.span_id = id;
                        continue;
                    }
                }
                _ => {}
            }
            ex.filtered_attributes
                .push(kv(l.name.to_string(), l.value.to_string()));
        }
        vec![ex]
    }

    fn numbers(
        &mut self,
        samples: &[Sample<'_>],
        prepared: impl Iterator<Item = Option<Prepared>>,
    ) {
        let kind = match self.fam.kind {
            MetricType::Counter => PointKind::Sum { monotonic: true },
            MetricType::Info | MetricType::StateSet => PointKind::Sum { monotonic: false },
            _ => PointKind::Gauge,
        };
        let start = self.out.len();
        let prepared: Vec<Option<Prepared>> = prepared.collect();
        // `_created` samples give the start time of the series with the same labels.
        let mut created: HashMap<u64, u64> = HashMap::new();
        for (s, p) in samples.iter().zip(&prepared) {
            if let (Role::Created, Some(p)) = (role(self.fam, s, self.format), p) {
                if let Some(ns) = secs_to_ns(s.value) {
                    created.insert(series_key("", &p.labels, None), ns);
                }
            }
        }
        for (s, p) in samples.iter().zip(prepared) {
            let Some(p) = p else { continue };
            if role(self.fam, s, self.format) == Role::Created && kind != PointKind::Gauge {
                continue;
            }
            let ts = self.ts_ns(s);
            let c = created.get(&series_key("", &p.labels, None)).copied();
            let key = series_key(&p.name, &p.labels, None);
            let attrs = to_attrs(p.labels, None);
            let st = self.cache.track(
                key,
                &p.name,
                kind,
                &attrs,
                ts,
                s.value,
                c,
                self.opts.adjust_start_time,
                self.added,
            );
            let exemplars = self.exemplar(s, ts);
            let point = NumberDataPoint {
                attributes: attrs,
                start_time_unix_nano: st,
                time_unix_nano: ts,
                exemplars,
                flags: 0,
                value: Some(number_data_point::Value::AsDouble(s.value)),
            };
            let i = self.metric_index(start, &p.name, kind);
            match &mut self.out[i].data {
                Some(metric::Data::Gauge(g)) => g.data_points.push(point),
                Some(metric::Data::Sum(g)) => g.data_points.push(point),
                _ => {}
            }
        }
    }

    /// Returns the number of samples dropped as invalid.
    fn histogram(
        &mut self,
        samples: &[Sample<'_>],
        prepared: impl Iterator<Item = Option<Prepared>>,
    ) -> u64 {
        #[derive(Default)]
        struct Group {
            key: u64,
            attrs: Vec<KeyValue>,
            buckets: Vec<(f64, f64)>,
            sum: Option<f64>,
            count: Option<f64>,
            created: Option<u64>,
            ts: u64,
            exemplars: Vec<Exemplar>,
            n: u64,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut dropped = 0;
        let name = self.fam.name.to_string();
        for (s, p) in samples.iter().zip(prepared) {
            let Some(p) = p else { continue };
            let r = role(self.fam, s, self.format);
            let key = series_key(&name, &p.labels, Some("le"));
            let gi = *index.entry(key).or_insert_with(|| {
                groups.push(Group {
                    key,
                    ts: 0,
                    ..Default::default()
                });
                groups.len() - 1
            });
            let ts = self.ts_ns(s);
            let g = &mut groups[gi];
            g.n += 1;
            if g.n == 1 {
                g.ts = ts;
            }
            match r {
                Role::Bucket => {
                    let le = relabel::get(&p.labels, "le").parse::<f64>();
                    match le {
                        Ok(le) => {
                            g.buckets.push((le, s.value));
                            if s.exemplar.is_some() {
                                g.exemplars.extend(self.exemplar(s, ts));
                            }
                        }
                        Err(_) => dropped += 1,
                    }
                }
                Role::Sum => g.sum = Some(s.value),
                Role::Count => g.count = Some(s.value),
                Role::Created => g.created = secs_to_ns(s.value),
                Role::Value => {
                    dropped += 1;
                    continue;
                }
            }
            if g.attrs.is_empty() && !p.labels.iter().all(|(n, _)| n == "le") {
                g.attrs = to_attrs(p.labels, Some("le"));
            }
        }
        let start = self.out.len();
        for mut g in groups {
            // The Collector drops histograms without `_count`.
            let Some(count) = g.count else {
                dropped += g.n;
                continue;
            };
            g.buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let mut bounds = Vec::with_capacity(g.buckets.len());
            let mut counts = Vec::with_capacity(g.buckets.len() + 1);
            let mut prev = 0.0;
            let mut has_inf = false;
            for (le, c) in &g.buckets {
                if *le == f64::INFINITY {
                    has_inf = true;
                } else {
                    bounds.push(*le);
                }
                counts.push((c - prev).max(0.0) as u64);
                prev = c.max(prev);
            }
            if !has_inf && !g.buckets.is_empty() {
                counts.push((count - prev).max(0.0) as u64);
            }
            let st = self.cache.track(
                g.key,
                &name,
                PointKind::Histogram,
                &g.attrs,
                g.ts,
                count,
                g.created,
                self.opts.adjust_start_time,
                self.added,
            );
            let point = HistogramDataPoint {
                attributes: g.attrs,
                start_time_unix_nano: st,
                time_unix_nano: g.ts,
                count: count.max(0.0) as u64,
                sum: g.sum,
                bucket_counts: counts,
                explicit_bounds: bounds,
                exemplars: g.exemplars,
                flags: 0,
                min: None,
                max: None,
            };
            let i = self.metric_index(start, &name, PointKind::Histogram);
            if let Some(metric::Data::Histogram(h)) = &mut self.out[i].data {
                h.data_points.push(point);
            }
        }
        dropped
    }

    fn summary(
        &mut self,
        samples: &[Sample<'_>],
        prepared: impl Iterator<Item = Option<Prepared>>,
    ) -> u64 {
        #[derive(Default)]
        struct Group {
            key: u64,
            attrs: Vec<KeyValue>,
            quantiles: Vec<ValueAtQuantile>,
            sum: Option<f64>,
            count: Option<f64>,
            created: Option<u64>,
            ts: u64,
            n: u64,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut dropped = 0;
        let name = self.fam.name.to_string();
        for (s, p) in samples.iter().zip(prepared) {
            let Some(p) = p else { continue };
            let r = role(self.fam, s, self.format);
            let key = series_key(&name, &p.labels, Some("quantile"));
            let gi = *index.entry(key).or_insert_with(|| {
                groups.push(Group {
                    key,
                    ..Default::default()
                });
                groups.len() - 1
            });
            let ts = self.ts_ns(s);
            let g = &mut groups[gi];
            g.n += 1;
            if g.n == 1 {
                g.ts = ts;
            }
            match r {
                Role::Value => match relabel::get(&p.labels, "quantile").parse::<f64>() {
                    Ok(q) => g.quantiles.push(ValueAtQuantile {
                        quantile: q,
                        value: s.value,
                    }),
                    Err(_) => dropped += 1,
                },
                Role::Sum => g.sum = Some(s.value),
                Role::Count => g.count = Some(s.value),
                Role::Created => g.created = secs_to_ns(s.value),
                Role::Bucket => dropped += 1,
            }
            if g.attrs.is_empty() && !p.labels.iter().all(|(n, _)| n == "quantile") {
                g.attrs = to_attrs(p.labels, Some("quantile"));
            }
        }
        let start = self.out.len();
        for mut g in groups {
            let Some(count) = g.count else {
                dropped += g.n;
                continue;
            };
            g.quantiles.sort_by(|a, b| {
                a.quantile
                    .partial_cmp(&b.quantile)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let st = self.cache.track(
                g.key,
                &name,
                PointKind::Summary,
                &g.attrs,
                g.ts,
                count,
                g.created,
                self.opts.adjust_start_time,
                self.added,
            );
            let point = SummaryDataPoint {
                attributes: g.attrs,
                start_time_unix_nano: st,
                time_unix_nano: g.ts,
                count: count.max(0.0) as u64,
                sum: g.sum.unwrap_or(0.0),
                quantile_values: g.quantiles,
                flags: 0,
            };
            let i = self.metric_index(start, &name, PointKind::Summary);
            if let Some(metric::Data::Summary(h)) = &mut self.out[i].data {
                h.data_points.push(point);
            }
        }
        dropped
    }
}

/// A hex id of up to `len` bytes, left-padded with zeros as the Collector does.
fn hex_id(s: &str, len: usize) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() > len * 2 {
        return None;
    }
    let padded = format!("{:0>width$}", s, width = len * 2);
    parse_hex_id(&padded, len)
}

/// `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
/// `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
pub fn report_metrics(
    target: &Target,
    up: bool,
    duration_secs: f64,
    stats: &ScrapeStats,
    now_ns: u64,
    flags: u32,
) -> Vec<Metric> {
    let labels = target.point_labels();
    let gauge = |name: &str, v: f64| {
        let mut m = empty_metric(name, PointKind::Gauge, String::new(), String::new());
        if let Some(metric::Data::Gauge(g)) = &mut m.data {
            g.data_points.push(NumberDataPoint {
                attributes: labels.clone(),
                time_unix_nano: now_ns,
                flags,
                value: Some(number_data_point::Value::AsDouble(if flags == 0 {
                    v
                } else {
                    0.0
                })),
                ..Default::default()
            });
        }
        m
    };
    vec![
        gauge("up", if up { 1.0 } else { 0.0 }),
        gauge("scrape_duration_seconds", duration_secs),
        gauge("scrape_samples_scraped", stats.scraped as f64),
        gauge(
            "scrape_samples_post_metric_relabeling",
            stats.post_relabel as f64,
        ),
        gauge("scrape_series_added", stats.series_added as f64),
    ]
}

/// One target's scrape as a ResourceMetrics.
pub fn resource_metrics(target: &Target, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(target.resource()),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: SCOPE_NAME.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}
