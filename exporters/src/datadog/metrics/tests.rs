//! Mapping tests: OTLP metrics in, decoded series / sketches out.

use super::*;
use crate::datadog::config::DatadogConfig;
use confluo_pipeline::attrs::{key_value, string};
use confluo_pipeline::proto::metrics::{
    exponential_histogram_data_point, summary_data_point::ValueAtQuantile, ExponentialHistogram,
    Gauge, Histogram, Metric, ScopeMetrics, Sum, Summary,
};
use confluo_pipeline::proto::resource::Resource;
use serde_json::Value as Json;

const S: u64 = 1_000_000_000;

fn cfg(yaml_metrics: &str) -> DatadogConfig {
    let text = format!("api: {{key: k}}\nmetrics: {{{yaml_metrics}}}\n");
    let node = confluo_config::Node::from_yaml_str("t.yaml", &text).unwrap();
    node.deserialize().unwrap()
}

fn encoder(yaml_metrics: &str) -> MetricsEncoder {
    MetricsEncoder::new(&cfg(yaml_metrics), "fallback-host").unwrap()
}

fn rm(metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
    vec![ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![
                key_value("service.name", string("svc")),
                key_value("host.name", string("h1")),
                key_value("team", string("core")),
            ],
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn ndp(start: u64, ts: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![key_value("code", string("200"))],
        start_time_unix_nano: start,
        time_unix_nano: ts,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn sum(monotonic: bool, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Data {
    Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    })
}

/// All series of the requests, as JSON values.
fn series(reqs: &[DatadogRequest]) -> Vec<Json> {
    reqs.iter()
        .filter(|r| r.route != Route::Sketches)
        .flat_map(|r| {
            let v: Json = serde_json::from_slice(&r.body()).unwrap();
            v["series"].as_array().unwrap().clone()
        })
        .collect()
}

fn sketches(reqs: &[DatadogRequest]) -> Vec<Sketch> {
    reqs.iter()
        .filter(|r| r.route == Route::Sketches)
        .flat_map(|r| SketchPayload::decode(&r.body()[..]).unwrap().sketches)
        .collect()
}

fn tags(s: &Json) -> Vec<String> {
    s["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn go_float_format_for_tags() {
    assert_eq!(format_float(0.0), "0");
    assert_eq!(format_float(5.0), "5.0");
    assert_eq!(format_float(0.5), "0.5");
    assert_eq!(format_float(0.99), "0.99");
    assert_eq!(format_float(123456.0), "123456.0");
    assert_eq!(format_float(1e6), "1e+06.0");
    assert_eq!(format_float(1.5e-7), "1.5e-07");
    assert_eq!(format_float(f64::INFINITY), "inf");
    assert_eq!(format_float(f64::NEG_INFINITY), "-inf");
}

#[test]
fn gauges_v2_shape_host_and_tags() {
    let e = encoder("");
    let reqs = e
        .encode(&rm(vec![metric(
            "temp",
            Data::Gauge(Gauge {
                data_points: vec![ndp(0, 1_700_000_000 * S, 21.5)],
            }),
        )]))
        .unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].route, Route::SeriesV2);
    let s = series(&reqs);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["metric"], "temp");
    assert_eq!(s[0]["type"], 3);
    assert_eq!(s[0]["points"][0]["timestamp"], 1_700_000_000i64);
    assert_eq!(s[0]["points"][0]["value"], 21.5);
    assert_eq!(s[0]["resources"][0]["name"], "h1");
    assert_eq!(s[0]["resources"][0]["type"], "host");
    assert_eq!(tags(&s[0]), vec!["code:200", "service:svc"]);
}

#[test]
fn v1_series_shape_and_resource_attributes_as_tags() {
    let e = encoder("api_version: v1, resource_attributes_as_tags: true");
    let reqs = e
        .encode(&rm(vec![metric(
            "temp",
            Data::Gauge(Gauge {
                data_points: vec![ndp(0, 10 * S, 2.0)],
            }),
        )]))
        .unwrap();
    assert_eq!(reqs[0].route, Route::SeriesV1);
    let s = series(&reqs);
    assert_eq!(s[0]["points"], serde_json::json!([[10, 2.0]]));
    assert_eq!(s[0]["type"], "gauge");
    assert_eq!(s[0]["host"], "h1");
    let t = tags(&s[0]);
    assert!(
        t.contains(&"team:core".into()) && t.contains(&"host.name:h1".into()),
        "{t:?}"
    );
}

#[test]
fn cumulative_monotonic_to_delta_and_initial_value_modes() {
    let start = 100 * S;
    let pts = |e: &MetricsEncoder, ts: u64, v: f64| {
        series(
            &e.encode(&rm(vec![metric(
                "reqs",
                sum(
                    true,
                    AggregationTemporality::Cumulative,
                    vec![ndp(start, ts, v)],
                ),
            )]))
            .unwrap(),
        )
    };
    // Started before the exporter: `auto` drops the first value.
    let auto = encoder("");
    assert!(pts(&auto, 110 * S, 5.0).is_empty());
    let s = pts(&auto, 120 * S, 8.0);
    assert_eq!(
        (s[0]["type"].clone(), s[0]["points"][0]["value"].clone()),
        (Json::from(1), Json::from(3.0))
    );
    // A reset (value went down) reports nothing, then deltas resume.
    assert!(pts(&auto, 130 * S, 1.0).is_empty());
    assert_eq!(pts(&auto, 140 * S, 4.0)[0]["points"][0]["value"], 3.0);
    // An older point is dropped.
    assert!(pts(&auto, 135 * S, 9.0).is_empty());
    let keep = encoder("sums: {initial_cumulative_monotonic_value: keep}");
    assert_eq!(pts(&keep, 110 * S, 5.0)[0]["points"][0]["value"], 5.0);
    let drop = encoder("sums: {initial_cumulative_monotonic_value: drop}");
    assert!(pts(&drop, 110 * S, 5.0).is_empty());
    // `auto` keeps the first value of a series that started after the exporter.
    let later = now_unix().as_nanos() as u64 + S;
    let s = series(
        &auto
            .encode(&rm(vec![metric(
                "new",
                sum(
                    true,
                    AggregationTemporality::Cumulative,
                    vec![ndp(later, later + S, 7.0)],
                ),
            )]))
            .unwrap(),
    );
    assert_eq!(s[0]["points"][0]["value"], 7.0);
    // raw_value: the cumulative value as a gauge.
    let raw = encoder("sums: {cumulative_monotonic_mode: raw_value}");
    let s = pts(&raw, 110 * S, 5.0);
    assert_eq!(
        (s[0]["type"].clone(), s[0]["points"][0]["value"].clone()),
        (Json::from(3), Json::from(5.0))
    );
}

#[test]
fn delta_sums_are_counts_and_non_monotonic_cumulative_sums_gauges() {
    let e = encoder("");
    let reqs = e
        .encode(&rm(vec![
            metric(
                "d",
                sum(
                    true,
                    AggregationTemporality::Delta,
                    vec![ndp(S, 2 * S, 4.0)],
                ),
            ),
            metric(
                "u",
                sum(
                    false,
                    AggregationTemporality::Cumulative,
                    vec![ndp(S, 2 * S, -3.0)],
                ),
            ),
            metric(
                "nan",
                Data::Gauge(Gauge {
                    data_points: vec![ndp(0, S, f64::NAN)],
                }),
            ),
        ]))
        .unwrap();
    let s = series(&reqs);
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0]["metric"].as_str(), s[0]["type"].as_i64()),
        (Some("d"), Some(1))
    );
    assert_eq!(
        (
            s[1]["metric"].as_str(),
            s[1]["type"].as_i64(),
            s[1]["points"][0]["value"].as_f64()
        ),
        (Some("u"), Some(3), Some(-3.0))
    );
}

fn hist(temporality: AggregationTemporality, ts: u64, counts: Vec<u64>, sum: f64) -> Data {
    Data::Histogram(Histogram {
        data_points: vec![HistogramDataPoint {
            attributes: vec![key_value("route", string("/a"))],
            start_time_unix_nano: S,
            time_unix_nano: ts,
            count: counts.iter().sum(),
            sum: Some(sum),
            bucket_counts: counts,
            explicit_bounds: vec![0.0, 10.0, 100.0],
            min: Some(1.0),
            max: Some(150.0),
            ..Default::default()
        }],
        aggregation_temporality: temporality as i32,
    })
}

#[test]
fn histogram_counters_mode_with_aggregations() {
    let e = encoder("histograms: {mode: counters, send_aggregation_metrics: true}");
    let reqs = e
        .encode(&rm(vec![metric(
            "lat",
            hist(
                AggregationTemporality::Delta,
                5 * S,
                vec![0, 3, 2, 1],
                300.0,
            ),
        )]))
        .unwrap();
    let s = series(&reqs);
    let by = |name: &str| {
        s.iter()
            .filter(|x| x["metric"] == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(by("lat.count")[0]["points"][0]["value"], 6.0);
    assert_eq!(by("lat.sum")[0]["points"][0]["value"], 300.0);
    assert_eq!(by("lat.min")[0]["type"], 3);
    assert_eq!(by("lat.max")[0]["points"][0]["value"], 150.0);
    let buckets = by("lat.bucket");
    assert_eq!(buckets.len(), 4);
    let b1 = tags(&buckets[1]);
    assert!(
        b1.contains(&"lower_bound:0".into()) && b1.contains(&"upper_bound:10.0".into()),
        "{b1:?}"
    );
    assert_eq!(buckets[1]["points"][0]["value"], 3.0);
    assert!(tags(&buckets[3]).contains(&"upper_bound:inf".into()));
    assert!(tags(&buckets[0]).contains(&"lower_bound:-inf".into()));
    assert!(sketches(&reqs).is_empty());
}

#[test]
fn cumulative_histogram_buckets_are_differenced() {
    let e = encoder("histograms: {mode: counters}");
    let first = e
        .encode(&rm(vec![metric(
            "lat",
            hist(
                AggregationTemporality::Cumulative,
                5 * S,
                vec![1, 3, 2, 1],
                100.0,
            ),
        )]))
        .unwrap();
    assert!(series(&first).is_empty());
    let second = e
        .encode(&rm(vec![metric(
            "lat",
            hist(
                AggregationTemporality::Cumulative,
                6 * S,
                vec![1, 5, 2, 4],
                180.0,
            ),
        )]))
        .unwrap();
    let values: Vec<f64> = series(&second)
        .iter()
        .map(|s| s["points"][0]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![0.0, 2.0, 0.0, 3.0]);
}

#[test]
fn histogram_distributions_become_sketches() {
    let e = encoder("");
    let reqs = e
        .encode(&rm(vec![metric(
            "lat",
            hist(
                AggregationTemporality::Delta,
                5 * S,
                vec![0, 3, 2, 1],
                300.0,
            ),
        )]))
        .unwrap();
    assert!(series(&reqs).is_empty());
    let sk = sketches(&reqs);
    assert_eq!(sk.len(), 1);
    assert_eq!(sk[0].metric, "lat");
    assert_eq!(sk[0].host, "h1");
    assert_eq!(sk[0].tags, vec!["route:/a", "service:svc"]);
    let d = &sk[0].dogsketches[0];
    assert_eq!(
        (d.ts, d.cnt, d.sum, d.min, d.max),
        (5, 6, 300.0, 1.0, 150.0)
    );
    assert_eq!(d.avg, 50.0);
    assert_eq!(d.n.iter().sum::<u32>(), 6);
    // Values 0..10 land in keys between key(0)=0 and key(10); the +Inf bucket on key(100).
    assert!(d.k.iter().all(|&k| (0..=sketch::key(100.0)).contains(&k)));
    assert_eq!(*d.k.last().unwrap(), sketch::key(100.0));
    // The request framing is a valid SketchPayload with one entry per sketch.
    assert_eq!(reqs[0].route, Route::Sketches);
}

#[test]
fn exponential_histograms_become_sketches() {
    let e = encoder("histograms: {send_aggregation_metrics: true}");
    let dp = ExponentialHistogramDataPoint {
        time_unix_nano: 9 * S,
        count: 7,
        sum: Some(20.0),
        scale: 0,
        zero_count: 1,
        positive: Some(exponential_histogram_data_point::Buckets {
            offset: 1,
            bucket_counts: vec![2, 3],
        }),
        negative: Some(exponential_histogram_data_point::Buckets {
            offset: 0,
            bucket_counts: vec![1],
        }),
        min: Some(-2.0),
        max: Some(8.0),
        ..Default::default()
    };
    let data = Data::ExponentialHistogram(ExponentialHistogram {
        data_points: vec![dp],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let reqs = e.encode(&rm(vec![metric("eh", data)])).unwrap();
    let d = &sketches(&reqs)[0].dogsketches[0];
    assert_eq!((d.cnt, d.sum, d.min, d.max), (7, 20.0, -2.0, 8.0));
    assert_eq!(d.n.iter().sum::<u32>(), 7);
    assert!(d.k.contains(&0));
    // Positive buckets (2,4] and (4,8]; the negative one [-2,-1).
    assert!(d
        .k
        .iter()
        .filter(|&&k| k > 0)
        .all(|&k| (sketch::key(2.0)..=sketch::key(8.0)).contains(&k)));
    assert!(d
        .k
        .iter()
        .filter(|&&k| k < 0)
        .all(|&k| (sketch::key(-2.0)..=sketch::key(-1.0)).contains(&k)));
    assert_eq!(
        series(&reqs)
            .iter()
            .filter(|s| s["metric"] == "eh.count")
            .count(),
        1
    );
}

#[test]
fn summaries_count_sum_and_quantiles() {
    let e = encoder("");
    let sp = |ts: u64, count: u64, sum: f64| {
        Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                start_time_unix_nano: S,
                time_unix_nano: ts,
                count,
                sum,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 3.0,
                    },
                    ValueAtQuantile {
                        quantile: 1.0,
                        value: 9.0,
                    },
                ],
                ..Default::default()
            }],
        })
    };
    let first = series(
        &e.encode(&rm(vec![metric("rt", sp(2 * S, 10, 50.0))]))
            .unwrap(),
    );
    // First point: no count/sum deltas yet, quantiles right away.
    assert_eq!(first.len(), 2);
    assert!(tags(&first[0]).contains(&"quantile:0.5".into()));
    assert!(tags(&first[1]).contains(&"quantile:1.0".into()));
    assert_eq!(first[0]["metric"], "rt.quantile");
    let second = series(
        &e.encode(&rm(vec![metric("rt", sp(3 * S, 15, 70.0))]))
            .unwrap(),
    );
    let count = second.iter().find(|s| s["metric"] == "rt.count").unwrap();
    assert_eq!(
        (count["type"].as_i64(), count["points"][0]["value"].as_f64()),
        (Some(1), Some(5.0))
    );
    let sum = second.iter().find(|s| s["metric"] == "rt.sum").unwrap();
    assert_eq!(sum["points"][0]["value"], 20.0);
    let noq = encoder("summaries: {mode: noquantiles}");
    assert!(series(
        &noq.encode(&rm(vec![metric("rt", sp(2 * S, 10, 50.0))]))
            .unwrap()
    )
    .is_empty());
}

#[test]
fn fallback_host_scope_tags_and_nobuckets_check() {
    let e = encoder("instrumentation_scope_metadata_as_tags: true");
    let mut input = rm(vec![metric(
        "g",
        Data::Gauge(Gauge {
            data_points: vec![ndp(0, S, 1.0)],
        }),
    )]);
    input[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .retain(|kv| kv.key != "host.name");
    input[0].scope_metrics[0].scope = Some(confluo_pipeline::proto::common::InstrumentationScope {
        name: "lib".into(),
        version: "2".into(),
        ..Default::default()
    });
    let s = series(&e.encode(&input).unwrap());
    assert_eq!(s[0]["resources"][0]["name"], "fallback-host");
    let t = tags(&s[0]);
    assert!(
        t.contains(&"instrumentation_scope:lib".into())
            && t.contains(&"instrumentation_scope_version:2".into())
    );
    assert!(MetricsEncoder::new(&cfg("histograms: {mode: nobuckets}"), "h").is_err());
}

#[test]
fn requests_are_cut_at_the_route_limit() {
    let e = encoder("");
    // ~120 kB of tags per point, 60 points: over 5 MiB, so at least two requests.
    let big = "x".repeat(120_000);
    let points = (0..60)
        .map(|i| {
            let mut p = ndp(0, S, i as f64);
            p.attributes.push(key_value("big", string(big.clone())));
            p
        })
        .collect();
    let reqs = e
        .encode(&rm(vec![metric(
            "g",
            Data::Gauge(Gauge {
                data_points: points,
            }),
        )]))
        .unwrap();
    assert!(reqs.len() >= 2);
    use confluo_pipeline::exporter_helper::Request as _;
    for r in &reqs {
        assert!(r.body().len() <= Route::SeriesV2.max_body_bytes());
    }
    assert_eq!(reqs.iter().map(|r| r.item_count()).sum::<usize>(), 60);
}

#[test]
fn config_check_refuses_nobuckets_without_aggregations() {
    let text = "api: {key: k}\nmetrics: {histograms: {mode: nobuckets}}\n";
    let node = confluo_config::Node::from_yaml_str("t.yaml", text).unwrap();
    let cfg: DatadogConfig = node.deserialize().unwrap();
    let errors = cfg.validate(&node);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(format!("{:?}", errors[0]).contains("nobuckets"));
    let ok =
        "api: {key: k}\nmetrics: {histograms: {mode: nobuckets, send_aggregation_metrics: true}}\n";
    let node = confluo_config::Node::from_yaml_str("t.yaml", ok).unwrap();
    let cfg: DatadogConfig = node.deserialize().unwrap();
    assert!(cfg.validate(&node).is_empty());
}
