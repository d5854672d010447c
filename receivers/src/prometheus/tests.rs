//! Conversion tests on parsed expositions, and scrape tests against an
//! in-process axum server serving expositions (gzip, errors, slowness,
//! disappearing series, file_sd changes).

use super::convert::{self, Options, SeriesCache, Target, NO_RECORDED_VALUE};
use super::parser::{parse, Format};
use super::*;
use async_trait::async_trait;
use axum::http::{HeaderMap as AxHeaders, StatusCode};
use axum::response::IntoResponse;
use confluo_config::ComponentKind;
use confluo_pipeline::attrs::get_str;
use confluo_pipeline::proto::metrics::{metric, number_data_point, Metric, ResourceMetrics};
use confluo_pipeline::{Batch, ConsumeError, Consumer, Signal};
use std::sync::Mutex;
use std::time::Duration;

// ------------------------------------------------------------ conversion

fn target() -> Target {
    Target::new(
        vec![
            ("env".into(), "prod".into()),
            ("instance".into(), "host:9100".into()),
            ("job".into(), "node".into()),
        ],
        "http".into(),
    )
}

fn opts() -> Options<'static> {
    Options {
        honor_labels: false,
        honor_timestamps: true,
        metric_relabel: &[],
        sample_limit: 0,
        label_limit: 0,
        label_name_length_limit: 0,
        label_value_length_limit: 0,
        adjust_start_time: true,
    }
}

fn find<'a>(ms: &'a [Metric], name: &str) -> &'a Metric {
    ms.iter().find(|m| m.name == name).unwrap_or_else(|| {
        panic!(
            "no metric {name} in {:?}",
            ms.iter().map(|m| &m.name).collect::<Vec<_>>()
        )
    })
}

fn number(p: &confluo_pipeline::proto::metrics::NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None => f64::NAN,
    }
}

const NOW: u64 = 1_700_000_000_000_000_000;

#[test]
fn converts_every_type_like_the_collector() {
    let body = "# HELP c_total Requests.\n# TYPE c_total counter\nc_total{code=\"200\"} 7\n\
# TYPE g gauge\ng 1.5\nuntyped_thing 3\n\
# TYPE h histogram\nh_bucket{le=\"0.1\"} 2\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 6\nh_sum 3.5\nh_count 6\n\
# TYPE s summary\ns{quantile=\"0.9\"} 4\ns{quantile=\"0.5\"} 2\ns_sum 10\ns_count 5\n";
    let exp = parse(body, Format::Text).unwrap();
    let mut cache = SeriesCache::default();
    let (ms, stats) =
        convert::convert(&exp, Format::Text, &target(), &opts(), NOW, &mut cache).unwrap();
    assert_eq!(stats.scraped, 12);
    assert_eq!(stats.post_relabel, 12);
    assert_eq!(stats.series_added, 5);

    let c = find(&ms, "c_total");
    assert_eq!(c.description, "Requests.");
    let Some(metric::Data::Sum(sum)) = &c.data else {
        panic!("{c:?}")
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2);
    let p = &sum.data_points[0];
    assert_eq!(number(p), 7.0);
    assert_eq!(p.time_unix_nano, NOW);
    assert_eq!(
        p.start_time_unix_nano, NOW,
        "first observation starts the series"
    );
    assert_eq!(get_str(&p.attributes, "code"), Some("200"));
    assert_eq!(get_str(&p.attributes, "env"), Some("prod"));
    assert_eq!(
        get_str(&p.attributes, "job"),
        None,
        "job is on the resource"
    );

    assert!(matches!(find(&ms, "g").data, Some(metric::Data::Gauge(_))));
    assert!(matches!(
        find(&ms, "untyped_thing").data,
        Some(metric::Data::Gauge(_))
    ));

    let Some(metric::Data::Histogram(h)) = &find(&ms, "h").data else {
        panic!()
    };
    let hp = &h.data_points[0];
    assert_eq!(hp.explicit_bounds, vec![0.1, 1.0]);
    assert_eq!(hp.bucket_counts, vec![2, 3, 1]);
    assert_eq!((hp.count, hp.sum), (6, Some(3.5)));

    let Some(metric::Data::Summary(s)) = &find(&ms, "s").data else {
        panic!()
    };
    let sp = &s.data_points[0];
    assert_eq!((sp.count, sp.sum), (5, 10.0));
    let q: Vec<(f64, f64)> = sp
        .quantile_values
        .iter()
        .map(|q| (q.quantile, q.value))
        .collect();
    assert_eq!(q, vec![(0.5, 2.0), (0.9, 4.0)]);

    let res = target().resource();
    assert_eq!(get_str(&res.attributes, "service.name"), Some("node"));
    assert_eq!(
        get_str(&res.attributes, "service.instance.id"),
        Some("host:9100")
    );
    assert_eq!(get_str(&res.attributes, "server.address"), Some("host"));
    assert_eq!(get_str(&res.attributes, "server.port"), Some("9100"));
    assert_eq!(get_str(&res.attributes, "url.scheme"), Some("http"));
}

#[test]
fn openmetrics_created_exemplars_info_stateset_gaugehistogram() {
    let body = "# TYPE c counter\nc_total 3 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\",user=\"u\"} 1 1700000000.5\nc_created 1600000000.25\n\
# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\nh_created 1600000001\n\
# TYPE b info\nb_info{v=\"1.2\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n\
# TYPE gh gaugehistogram\ngh_bucket{le=\"+Inf\"} 1\ngh_gcount 1\ngh_gsum 1\n# EOF\n";
    let exp = parse(body, Format::OpenMetrics).unwrap();
    let mut cache = SeriesCache::default();
    let (ms, stats) = convert::convert(
        &exp,
        Format::OpenMetrics,
        &target(),
        &opts(),
        NOW,
        &mut cache,
    )
    .unwrap();
    assert_eq!(stats.dropped, 3, "gaugehistogram has no OTLP mapping");
    assert!(ms.iter().all(|m| m.name != "c_created" && m.name != "gh"));
    let Some(metric::Data::Sum(c)) = &find(&ms, "c_total").data else {
        panic!()
    };
    let p = &c.data_points[0];
    assert_eq!(p.start_time_unix_nano, 1_600_000_000_250_000_000);
    let ex = &p.exemplars[0];
    assert_eq!(
        confluo_pipeline::attrs::id_hex(&ex.trace_id),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(
        confluo_pipeline::attrs::id_hex(&ex.span_id),
        "b7ad6b7169203331"
    );
    assert_eq!(ex.time_unix_nano, 1_700_000_000_500_000_000);
    assert_eq!(get_str(&ex.filtered_attributes, "user"), Some("u"));
    let Some(metric::Data::Histogram(h)) = &find(&ms, "h").data else {
        panic!()
    };
    assert_eq!(
        h.data_points[0].start_time_unix_nano,
        1_600_000_001_000_000_000
    );
    let Some(metric::Data::Sum(info)) = &find(&ms, "b_info").data else {
        panic!()
    };
    assert!(!info.is_monotonic);
    let Some(metric::Data::Sum(st)) = &find(&ms, "st").data else {
        panic!()
    };
    assert_eq!(st.data_points.len(), 2);
}

#[test]
fn start_time_resets_and_staleness() {
    let t = target();
    let mut cache = SeriesCache::default();
    let scrape = |body: &str, now: u64, cache: &mut SeriesCache, adjust: bool| {
        let exp = parse(body, Format::Text).unwrap();
        let o = Options {
            adjust_start_time: adjust,
            ..opts()
        };
        let (mut ms, _) = convert::convert(&exp, Format::Text, &t, &o, now, cache).unwrap();
        ms.extend(cache.stale(now, false));
        ms
    };
    let start_of = |ms: &[Metric], name: &str| match &find(ms, name).data {
        Some(metric::Data::Sum(s)) => s.data_points[0].start_time_unix_nano,
        _ => panic!(),
    };
    let ms = scrape(
        "# TYPE a_total counter\na_total 10\ngone 1\n",
        1000,
        &mut cache,
        true,
    );
    assert_eq!(start_of(&ms, "a_total"), 1000);
    let ms = scrape(
        "# TYPE a_total counter\na_total 12\n",
        2000,
        &mut cache,
        true,
    );
    assert_eq!(
        start_of(&ms, "a_total"),
        1000,
        "start kept while the value grows"
    );
    let Some(metric::Data::Gauge(g)) = &find(&ms, "gone").data else {
        panic!()
    };
    assert_eq!(g.data_points[0].flags, NO_RECORDED_VALUE);
    assert_eq!(g.data_points[0].time_unix_nano, 2000);
    let ms = scrape(
        "# TYPE a_total counter\na_total 2\n",
        3000,
        &mut cache,
        true,
    );
    assert_eq!(start_of(&ms, "a_total"), 3000, "a decrease is a reset");
    // With adjustment off and no `_created`, the start time is unset.
    let mut cache = SeriesCache::default();
    let ms = scrape(
        "# TYPE a_total counter\na_total 10\n",
        1000,
        &mut cache,
        false,
    );
    assert_eq!(start_of(&ms, "a_total"), 0);
}

#[test]
fn honor_labels_metric_relabel_and_limits() {
    let body = "m{job=\"other\",env=\"dev\",x=\"1\"} 1\ndropme 2\n";
    let exp = parse(body, Format::Text).unwrap();
    let rules: Vec<_> = [
        relabel::RelabelConfigYaml {
            source_labels: vec!["__name__".into()],
            regex: Some("dropme".into()),
            action: Some(relabel::Action::Drop),
            ..Default::default()
        },
        relabel::RelabelConfigYaml {
            regex: Some("x".into()),
            action: Some(relabel::Action::LabelDrop),
            ..Default::default()
        },
    ]
    .iter()
    .map(|r| r.build().unwrap())
    .collect();
    let o = Options {
        metric_relabel: &rules,
        ..opts()
    };
    let (ms, stats) = convert::convert(
        &exp,
        Format::Text,
        &target(),
        &o,
        NOW,
        &mut SeriesCache::default(),
    )
    .unwrap();
    assert_eq!((stats.scraped, stats.post_relabel), (2, 1));
    let Some(metric::Data::Gauge(g)) = &find(&ms, "m").data else {
        panic!()
    };
    let a = &g.data_points[0].attributes;
    assert_eq!(get_str(a, "exported_job"), Some("other"));
    assert_eq!(get_str(a, "exported_env"), Some("dev"));
    assert_eq!(get_str(a, "env"), Some("prod"));
    assert_eq!(get_str(a, "x"), None);
    // honor_labels: the exposed values win.
    let o = Options {
        honor_labels: true,
        ..opts()
    };
    let (ms, _) = convert::convert(
        &exp,
        Format::Text,
        &target(),
        &o,
        NOW,
        &mut SeriesCache::default(),
    )
    .unwrap();
    let Some(metric::Data::Gauge(g)) = &find(&ms, "m").data else {
        panic!()
    };
    assert_eq!(get_str(&g.data_points[0].attributes, "env"), Some("dev"));
    assert_eq!(get_str(&g.data_points[0].attributes, "job"), Some("other"));
    // Limits fail the scrape without touching the cache.
    let mut cache = SeriesCache::default();
    let o = Options {
        sample_limit: 1,
        ..opts()
    };
    let e = convert::convert(&exp, Format::Text, &target(), &o, NOW, &mut cache).unwrap_err();
    assert!(e.to_string().contains("sample limit exceeded"), "{e}");
    assert!(cache.is_empty());
    let o = Options {
        label_limit: 3,
        ..opts()
    };
    let e = convert::convert(&exp, Format::Text, &target(), &o, NOW, &mut cache).unwrap_err();
    assert!(e.to_string().contains("label_limit exceeded"), "{e}");
    let o = Options {
        label_value_length_limit: 4,
        ..opts()
    };
    let e = convert::convert(&exp, Format::Text, &target(), &o, NOW, &mut cache).unwrap_err();
    assert!(e.to_string().contains("label_value_length_limit"), "{e}");
}

// ------------------------------------------------------------ scraping

#[derive(Default)]
struct Sink {
    got: Mutex<Vec<ResourceMetrics>>,
    refuse: Mutex<bool>,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        if *self.refuse.lock().unwrap() {
            return Err(ConsumeError::retryable("full"));
        }
        if let Signal::Metrics(rm) = batch.take_signal() {
            self.got.lock().unwrap().extend(rm);
        }
        Ok(())
    }
}

impl Sink {
    fn take(&self) -> Vec<ResourceMetrics> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

/// What the test server answers, changeable while it runs.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    gzip: bool,
    delay: Duration,
}

#[derive(Clone)]
struct ServerState {
    reply: Arc<Mutex<Reply>>,
    headers: Arc<Mutex<Vec<AxHeaders>>>,
}

async fn serve(state: ServerState) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: AxHeaders| {
            let state = state.clone();
            async move {
                state.headers.lock().unwrap().push(headers);
                let r = state.reply.lock().unwrap().clone();
                tokio::time::sleep(r.delay).await;
                let mut h = AxHeaders::new();
                h.insert("content-type", r.content_type.parse().unwrap());
                let body = if r.gzip {
                    h.insert("content-encoding", "gzip".parse().unwrap());
                    confluo_pipeline::compression::gzip(r.body.as_bytes())
                } else {
                    r.body.into_bytes()
                };
                (StatusCode::from_u16(r.status).unwrap(), h, body).into_response()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

fn server(body: &str) -> ServerState {
    ServerState {
        reply: Arc::new(Mutex::new(Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: body.to_string(),
            gzip: false,
            delay: Duration::ZERO,
        })),
        headers: Arc::default(),
    }
}

async fn start(yaml: &str) -> (Box<dyn Receiver>, Arc<Sink>, ComponentContext) {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    let errors = PrometheusReceiverFactory.check(&node);
    assert!(errors.is_empty(), "{errors:?}");
    let ctx = ComponentContext::for_tests(ComponentKind::Receiver, "prometheus");
    let mut r = PrometheusReceiverFactory
        .create(ctx.clone(), &node)
        .unwrap();
    let sink = Arc::new(Sink::default());
    let mut consumers = SignalConsumers::default();
    consumers.set(SignalKind::Metrics, sink.clone());
    r.start(consumers).await.unwrap();
    (r, sink, ctx)
}

fn job_yaml(addr: &str, extra: &str) -> String {
    format!(
        "config:\n  scrape_configs:\n    - job_name: app\n      scrape_interval: 100ms\n      scrape_timeout: 80ms\n      static_configs: [{{targets: ['{addr}'], labels: {{team: a}}}}]\n{extra}"
    )
}

/// Waits until the sink holds a scrape (ResourceMetrics) satisfying `f`.
async fn wait_for(sink: &Sink, mut f: impl FnMut(&ResourceMetrics) -> bool) -> ResourceMetrics {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for rm in sink.take() {
            if f(&rm) {
                return rm;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metrics(rm: &ResourceMetrics) -> &[Metric] {
    &rm.scope_metrics[0].metrics
}

fn gauge_value(rm: &ResourceMetrics, name: &str) -> Option<f64> {
    metrics(rm)
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.first().map(number),
            _ => None,
        })
}

#[tokio::test]
async fn scrapes_text_with_prometheus_headers() {
    let st = server("# TYPE a_total counter\na_total 5\n");
    let addr = serve(st.clone()).await;
    let (mut r, sink, _) = start(&job_yaml(&addr, "")).await;
    let rm = wait_for(&sink, |rm| gauge_value(rm, "up") == Some(1.0)).await;
    assert!(metrics(&rm).iter().any(|m| m.name == "a_total"));
    assert_eq!(gauge_value(&rm, "scrape_samples_scraped"), Some(1.0));
    assert_eq!(
        gauge_value(&rm, "scrape_samples_post_metric_relabeling"),
        Some(1.0)
    );
    assert!(gauge_value(&rm, "scrape_duration_seconds").unwrap() > 0.0);
    let res = rm.resource.as_ref().unwrap();
    assert_eq!(get_str(&res.attributes, "service.name"), Some("app"));
    assert_eq!(
        get_str(&res.attributes, "service.instance.id"),
        Some(addr.as_str())
    );
    let up = metrics(&rm).iter().find(|m| m.name == "up").unwrap();
    let Some(metric::Data::Gauge(g)) = &up.data else {
        panic!()
    };
    assert_eq!(get_str(&g.data_points[0].attributes, "team"), Some("a"));
    let h = st.headers.lock().unwrap()[0].clone();
    assert_eq!(h["accept"], scrape::ACCEPT_HEADER);
    assert_eq!(h["accept-encoding"], "gzip");
    assert_eq!(h["x-prometheus-scrape-timeout-seconds"], "0.08");
    r.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn openmetrics_gzip_and_auth() {
    let st =
        server("# TYPE a counter\na_total 5 # {trace_id=\"01\"} 1\na_created 1600000000\n# EOF\n");
    {
        let mut r = st.reply.lock().unwrap();
        r.gzip = true;
        r.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    }
    let addr = serve(st.clone()).await;
    let (mut r, sink, _) = start(&job_yaml(
        &addr,
        "      basic_auth: {username: u, password: p}\n",
    ))
    .await;
    let rm = wait_for(&sink, |rm| gauge_value(rm, "up") == Some(1.0)).await;
    let m = metrics(&rm).iter().find(|m| m.name == "a_total").unwrap();
    let Some(metric::Data::Sum(s)) = &m.data else {
        panic!()
    };
    assert_eq!(
        s.data_points[0].start_time_unix_nano,
        1_600_000_000_000_000_000
    );
    assert_eq!(s.data_points[0].exemplars[0].trace_id.len(), 16);
    let h = st.headers.lock().unwrap()[0].clone();
    assert_eq!(h["authorization"], "Basic dTpw");
    r.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn failures_give_up_zero_and_stale_points() {
    let st = server("# TYPE g gauge\ng{k=\"1\"} 1\ng{k=\"2\"} 2\n");
    let addr = serve(st.clone()).await;
    let (mut r, sink, ctx) = start(&job_yaml(&addr, "")).await;
    wait_for(&sink, |rm| gauge_value(rm, "up") == Some(1.0)).await;

    // A series disappears: one stale point for it.
    st.reply.lock().unwrap().body = "# TYPE g gauge\ng{k=\"1\"} 1\n".into();
    wait_for(&sink, |rm| {
        metrics(rm).iter().any(|m| match &m.data {
            Some(metric::Data::Gauge(g)) if m.name == "g" => g
                .data_points
                .iter()
                .any(|p| p.flags == NO_RECORDED_VALUE && get_str(&p.attributes, "k") == Some("2")),
            _ => false,
        })
    })
    .await;

    // HTTP 500: up=0 and the remaining series go stale.
    st.reply.lock().unwrap().status = 500;
    let rm = wait_for(&sink, |rm| gauge_value(rm, "up") == Some(0.0)).await;
    let g = metrics(&rm)
        .iter()
        .find(|m| m.name == "g")
        .expect("stale g");
    let Some(metric::Data::Gauge(gg)) = &g.data else {
        panic!()
    };
    assert_eq!(gg.data_points[0].flags, NO_RECORDED_VALUE);

    // Recovers, then a broken exposition fails the scrape.
    {
        let mut r = st.reply.lock().unwrap();
        r.status = 200;
        r.body = "g 1\n".into();
    }
    wait_for(&sink, |rm| gauge_value(rm, "up") == Some(1.0)).await;
    st.reply.lock().unwrap().body = "g{ 1\n".into();
    wait_for(&sink, |rm| gauge_value(rm, "up") == Some(0.0)).await;

    // Too slow: the scrape times out.
    {
        let mut r = st.reply.lock().unwrap();
        r.body = "g 1\n".into();
        r.delay = Duration::from_millis(300);
    }
    let rm = wait_for(&sink, |rm| gauge_value(rm, "up") == Some(0.0)).await;
    assert!(gauge_value(&rm, "scrape_duration_seconds").unwrap() < 0.3);

    // Pipeline refusals are counted, not retried.
    st.reply.lock().unwrap().delay = Duration::ZERO;
    *sink.refuse.lock().unwrap() = true;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !ctx.telemetry.render().contains(
        "otelcol_receiver_refused_metric_points{receiver=\"prometheus\",transport=\"http\"} ",
    ) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_target_and_sample_limit() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let (mut r, sink, _) = start(&job_yaml(&dead, "")).await;
    let rm = wait_for(&sink, |rm| gauge_value(rm, "up") == Some(0.0)).await;
    assert_eq!(gauge_value(&rm, "scrape_samples_scraped"), Some(0.0));
    r.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();

    let st = server("a 1\nb 2\n");
    let addr = serve(st).await;
    let (mut r, sink, _) = start(&job_yaml(&addr, "      sample_limit: 1\n")).await;
    wait_for(&sink, |rm| gauge_value(rm, "up") == Some(0.0)).await;
    r.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn file_sd_reload_on_change() {
    let a = serve(server("from_a 1\n")).await;
    let b = serve(server("from_b 1\n")).await;
    let dir = std::env::temp_dir().join(format!(
        "confluo-prom-sd-{}-{}",
        std::process::id(),
        line!()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("targets.json");
    std::fs::write(
        &file,
        format!(r#"[{{"targets":["{a}"],"labels":{{"zone":"z1"}}}}]"#),
    )
    .unwrap();
    let yaml = format!(
        "config:\n  scrape_configs:\n    - job_name: sd\n      scrape_interval: 100ms\n      scrape_timeout: 80ms\n      file_sd_configs: [{{files: ['{}'], refresh_interval: 1m}}]\n",
        file.display()
    );
    let (mut r, sink, _) = start(&yaml).await;
    let rm = wait_for(&sink, |rm| metrics(rm).iter().any(|m| m.name == "from_a")).await;
    let up = metrics(&rm).iter().find(|m| m.name == "up").unwrap();
    let Some(metric::Data::Gauge(g)) = &up.data else {
        panic!()
    };
    assert_eq!(get_str(&g.data_points[0].attributes, "zone"), Some("z1"));
    std::fs::write(&file, format!(r#"[{{"targets":["{b}"]}}]"#)).unwrap();
    // Target a goes away (its series and `up` go stale) and b is scraped.
    wait_for(&sink, |rm| {
        metrics(rm).iter().any(|m| {
            m.name == "from_a"
                && match &m.data {
                    Some(metric::Data::Gauge(g)) => g.data_points[0].flags == NO_RECORDED_VALUE,
                    _ => false,
                }
        })
    })
    .await;
    wait_for(&sink, |rm| metrics(rm).iter().any(|m| m.name == "from_b")).await;
    r.shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
