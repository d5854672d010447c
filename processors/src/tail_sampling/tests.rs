use super::*;
use confluo_config::{ComponentKind, Node};
use confluo_pipeline::attrs;
use confluo_pipeline::proto::common::{InstrumentationScope, KeyValue};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{status::StatusCode, ResourceSpans, ScopeSpans, Span, Status};
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

/// Records what it is given; refuses retryably while `refuse` is set.
#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Signal>>,
    refuse: AtomicBool,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(ConsumeError::retryable("full"));
        }
        // The attached request bytes must be exactly the batch's data.
        let encoded = batch
            .encoded()
            .expect("emitted batches carry their request bytes");
        assert_eq!(
            &Signal::Traces(encode::decode(encoded).unwrap()),
            batch.signal()
        );
        self.got.lock().unwrap().push(batch.take_signal());
        Ok(())
    }
}

impl Sink {
    /// (trace number, span id) of every span received.
    fn spans(&self) -> BTreeSet<(u32, u8)> {
        let mut out = BTreeSet::new();
        for s in self.got.lock().unwrap().iter() {
            let Signal::Traces(rs) = s else { continue };
            for r in rs {
                for ss in &r.scope_spans {
                    for sp in &ss.spans {
                        let n = u32::from_be_bytes(sp.trace_id[12..16].try_into().unwrap());
                        assert!(
                            out.insert((n, sp.span_id[7])),
                            "span emitted twice: trace {n} span {}",
                            sp.span_id[7]
                        );
                    }
                }
            }
        }
        out
    }

    fn traces(&self) -> BTreeSet<u32> {
        self.spans().into_iter().map(|(t, _)| t).collect()
    }
}

/// Trace `n`: spread over every byte like a random W3C id, with `n` itself
/// in the last four bytes so that tests can read it back.
fn trace_id(n: u32) -> Vec<u8> {
    let mut v = vec![0xab; 16];
    v[..8].copy_from_slice(
        &(u64::from(n) + 1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .to_be_bytes(),
    );
    v[12..].copy_from_slice(&n.to_be_bytes());
    v
}

const T0: u64 = 1_700_000_000_000_000_000;

fn span(trace: u32, id: u8, start_ms: u64, end_ms: u64) -> Span {
    let mut span_id = vec![0u8; 8];
    span_id[7] = id;
    Span {
        trace_id: trace_id(trace),
        span_id,
        name: format!("span-{id}"),
        start_time_unix_nano: T0 + start_ms * 1_000_000,
        end_time_unix_nano: T0 + end_ms * 1_000_000,
        ..Default::default()
    }
}

fn status(mut s: Span, code: StatusCode) -> Span {
    s.status = Some(Status {
        code: code as i32,
        message: String::new(),
    });
    s
}

fn attr(mut s: Span, kv: KeyValue) -> Span {
    s.attributes.push(kv);
    s
}

fn resource_spans(resource: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "test".into(),
                ..Default::default()
            }),
            spans,
            schema_url: String::new(),
        }],
        schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
    }
}

fn batch(spans: Vec<Span>) -> Batch {
    Batch::new(Signal::Traces(vec![resource_spans(
        vec![attrs::key_value("service.name", attrs::string("svc"))],
        spans,
    )]))
}

fn config(yaml: &str) -> TailSamplingConfig {
    let node = Node::from_yaml_str("test.yaml", yaml).unwrap();
    let cfg: TailSamplingConfig = node.deserialize().unwrap();
    assert_eq!(cfg.problems(), Vec::<(String, String)>::new());
    cfg
}

struct Harness {
    p: Arc<TailSamplingProcessor>,
    sink: Arc<Sink>,
    telemetry: Telemetry,
}

impl Harness {
    fn new(yaml: &str) -> Harness {
        let sink = Arc::new(Sink::default());
        let ctx = ComponentContext::for_tests(ComponentKind::Processor, "tail_sampling");
        let telemetry = ctx.telemetry.clone();
        let p = TailSamplingProcessor::start(ctx, config(yaml), sink.clone()).unwrap();
        Harness { p, sink, telemetry }
    }

    async fn send(&self, spans: Vec<Span>) {
        self.p.consume(batch(spans)).await.unwrap();
    }

    fn counter(&self, name: &'static str, extra: &[(&str, &str)]) -> u64 {
        let mut labels = vec![("processor", "tail_sampling")];
        labels.extend_from_slice(extra);
        self.telemetry.counter(name, "", &labels).get()
    }
}

/// Lets paused time run forward, ticker tasks included.
async fn pass(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

const WAIT_1S: &str = "decision_wait: 1s\nnum_shards: 2\n";

fn with_policies(policies: &str) -> String {
    format!("{WAIT_1S}policies:\n{policies}")
}

#[tokio::test(start_paused = true)]
async fn always_sample_keeps_whole_traces_arriving_out_of_order_and_waits() {
    let h = Harness::new(&with_policies("  - {name: all, type: always_sample}\n"));
    h.send(vec![span(1, 3, 20, 30), span(2, 1, 0, 5)]).await;
    pass(300).await;
    h.send(vec![span(1, 1, 0, 100)]).await;
    h.send(vec![span(1, 2, 10, 20), span(2, 2, 1, 2)]).await;
    pass(500).await;
    assert!(h.sink.spans().is_empty(), "decided before decision_wait");
    pass(700).await;
    let got = h.sink.spans();
    assert_eq!(
        got,
        BTreeSet::from([(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)])
    );
    // Every fragment keeps its resource, scope and schema URL.
    let out = h.sink.got.lock().unwrap();
    for s in out.iter() {
        let Signal::Traces(rs) = s else { panic!() };
        for r in rs {
            assert_eq!(r.scope_spans.len(), 1);
            assert_eq!(r.schema_url, "https://opentelemetry.io/schemas/1.21.0");
            assert_eq!(
                attrs::get_str(&r.resource.as_ref().unwrap().attributes, "service.name"),
                Some("svc")
            );
        }
    }
    drop(out);
    assert_eq!(h.p.traces_in_memory(), 0);
    assert_eq!(h.p.held_bytes(), 0);
    assert_eq!(
        h.counter("otelcol_processor_tail_sampling_new_trace_id_received", &[]),
        2
    );
    assert_eq!(
        h.counter(
            "otelcol_processor_outgoing_items",
            &[("otel_signal", "traces")]
        ),
        5
    );
}

#[tokio::test(start_paused = true)]
async fn latency_uses_the_whole_trace_span_range() {
    let h = Harness::new(&with_policies(
        "  - {name: slow, type: latency, latency: {threshold_ms: 500}}\n",
    ));
    // Trace 1 lasts 600 ms only once its late-arriving root is seen.
    h.send(vec![span(1, 2, 100, 200), span(2, 1, 0, 499)]).await;
    h.send(vec![span(1, 1, 0, 600)]).await;
    pass(1500).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1), (1, 2)]));
}

#[tokio::test(start_paused = true)]
async fn latency_with_upper_threshold() {
    let h = Harness::new(&with_policies(
        "  - {name: mid, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}\n",
    ));
    h.send(vec![
        span(1, 1, 0, 100),
        span(2, 1, 0, 150),
        span(3, 1, 0, 200),
        span(4, 1, 0, 201),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([2, 3]));
}

#[tokio::test(start_paused = true)]
async fn status_code_samples_traces_with_an_error_span() {
    let h = Harness::new(&with_policies(
        "  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n",
    ));
    h.send(vec![
        span(1, 1, 0, 1),
        status(span(2, 1, 0, 1), StatusCode::Ok),
    ])
    .await;
    h.send(vec![
        status(span(1, 2, 0, 1), StatusCode::Error),
        span(3, 1, 0, 1),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1), (1, 2)]));
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_count_traces_sampled",
            &[("policy", "errors"), ("sampled", "true")]
        ),
        1
    );
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_count_traces_sampled",
            &[("policy", "errors"), ("sampled", "false")]
        ),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn string_attribute_on_span_or_resource_values_and_regex() {
    let h = Harness::new(&with_policies(
        "  - {name: exact, type: string_attribute, string_attribute: {key: http.route, values: [/a, /b]}}
  - {name: re, type: string_attribute, string_attribute: {key: db, values: ['^pg-\\d+$'], enabled_regex_matching: true}}
",
    ));
    let kv = |k: &str, v: &str| attrs::key_value(k, attrs::string(v));
    h.send(vec![
        attr(span(1, 1, 0, 1), kv("http.route", "/b")),
        attr(span(2, 1, 0, 1), kv("http.route", "/c")),
        attr(span(3, 1, 0, 1), kv("db", "pg-12")),
        attr(span(4, 1, 0, 1), kv("db", "pg-x")),
        attr(
            span(5, 1, 0, 1),
            attrs::key_value("http.route", attrs::int(1)),
        ),
    ])
    .await;
    // A resource attribute matches every span of that resource.
    h.p.consume(Batch::new(Signal::Traces(vec![resource_spans(
        vec![kv("db", "pg-7")],
        vec![span(6, 1, 0, 1)],
    )])))
    .await
    .unwrap();
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 3, 6]));
}

#[tokio::test(start_paused = true)]
async fn inverted_match_not_sampled_beats_a_sampling_policy() {
    // The Collector's precedence: InvertNotSampled wins over Sampled; a trace
    // with no matching value is InvertSampled (sampled) by the inverted policy.
    let h = Harness::new(&with_policies(
        "  - {name: not-health, type: string_attribute, string_attribute: {key: http.route, values: [/health], invert_match: true}}
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
",
    ));
    let health = |s: Span| attr(s, attrs::key_value("http.route", attrs::string("/health")));
    h.send(vec![
        status(health(span(1, 1, 0, 1)), StatusCode::Error),
        health(span(2, 1, 0, 1)),
        span(3, 1, 0, 1),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([3]));
}

#[tokio::test(start_paused = true)]
async fn sample_on_first_match_stops_before_an_inverted_policy() {
    let policies = "  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: not-health, type: string_attribute, string_attribute: {key: http.route, values: [/health], invert_match: true}}
";
    let trace = || {
        vec![status(
            attr(
                span(1, 1, 0, 1),
                attrs::key_value("http.route", attrs::string("/health")),
            ),
            StatusCode::Error,
        )]
    };
    let h = Harness::new(&with_policies(policies));
    h.send(trace()).await;
    pass(1500).await;
    assert!(h.sink.traces().is_empty());

    let h = Harness::new(&format!(
        "sample_on_first_match: true\n{}",
        with_policies(policies)
    ));
    h.send(trace()).await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1]));
}

#[tokio::test(start_paused = true)]
async fn numeric_and_boolean_attributes() {
    let h = Harness::new(&with_policies(
        "  - {name: big, type: numeric_attribute, numeric_attribute: {key: n, min_value: 10, max_value: 20}}
  - {name: flag, type: boolean_attribute, boolean_attribute: {key: b, value: true}}
",
    ));
    let n = |s: Span, v: i64| attr(s, attrs::key_value("n", attrs::int(v)));
    let b = |s: Span, v: bool| attr(s, attrs::key_value("b", attrs::boolean(v)));
    h.send(vec![
        n(span(1, 1, 0, 1), 10),
        n(span(2, 1, 0, 1), 21),
        n(span(3, 1, 0, 1), 9),
        b(span(4, 1, 0, 1), true),
        b(span(5, 1, 0, 1), false),
        attr(span(6, 1, 0, 1), attrs::key_value("n", attrs::double(15.0))),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 4]));
}

#[tokio::test(start_paused = true)]
async fn numeric_invert_match() {
    let h = Harness::new(&with_policies(
        "  - {name: not-small, type: numeric_attribute, numeric_attribute: {key: n, max_value: 5, invert_match: true}}\n",
    ));
    h.send(vec![
        attr(span(1, 1, 0, 1), attrs::key_value("n", attrs::int(3))),
        attr(span(2, 1, 0, 1), attrs::key_value("n", attrs::int(30))),
        span(3, 1, 0, 1),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([2, 3]));
}

#[test]
fn fnv1a_matches_reference_vectors() {
    assert_eq!(policy::fnv1a(b"", b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(policy::fnv1a(b"", b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(policy::fnv1a(b"foo", b""), 0xdcb2_7518_fed9_d577);
    assert_eq!(policy::fnv1a(b"fo", b"o"), 0xdcb2_7518_fed9_d577);
}

#[tokio::test(start_paused = true)]
async fn probabilistic_keeps_the_configured_share_by_trace_id_hash() {
    let h = Harness::new(&with_policies(
        "  - {name: p, type: probabilistic, probabilistic: {sampling_percentage: 25, hash_salt: s1}}\n",
    ));
    let n = 4000u32;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        h.send(chunk.iter().map(|t| span(*t, 1, 0, 1)).collect())
            .await;
    }
    pass(1500).await;
    let got = h.sink.traces();
    let expected: BTreeSet<u32> = (0..n)
        .filter(|t| {
            let id: [u8; 16] = trace_id(*t).try_into().unwrap();
            policy::fnv1a(b"s1", &id) <= (u64::MAX / 4)
        })
        .collect();
    assert_eq!(got, expected);
    assert!((800..1200).contains(&got.len()), "{} of {n}", got.len());

    let h = Harness::new(&with_policies(
        "  - {name: none, type: probabilistic, probabilistic: {sampling_percentage: 0}}\n",
    ));
    h.send((0..500).map(|t| span(t, 1, 0, 1)).collect()).await;
    pass(1500).await;
    assert!(h.sink.traces().is_empty());
}

#[tokio::test(start_paused = true)]
async fn rate_limiting_counts_spans_per_second() {
    let h = Harness::new(
        "decision_wait: 1s\nnum_shards: 1\npolicies:\n  - {name: r, type: rate_limiting, rate_limiting: {spans_per_second: 10}}\n",
    );
    for t in 1..=3 {
        h.send((1..=4).map(|i| span(t, i, 0, 1)).collect()).await;
    }
    pass(1500).await;
    // 4 and 8 spans stay under 10; a third trace would make 12.
    assert_eq!(h.sink.traces().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn span_count_and_trace_state() {
    let h = Harness::new(&with_policies(
        "  - {name: mid, type: span_count, span_count: {min_spans: 2, max_spans: 3}}
  - {name: ts, type: trace_state, trace_state: {key: vendor, values: [keep]}}
",
    ));
    h.send((1..=2).map(|i| span(1, i, 0, 1)).collect()).await;
    h.send((1..=4).map(|i| span(2, i, 0, 1)).collect()).await;
    let mut s = span(3, 1, 0, 1);
    s.trace_state = "other=1, vendor=keep".into();
    let mut s2 = span(4, 1, 0, 1);
    s2.trace_state = "vendor=drop".into();
    h.send(vec![s, s2]).await;
    h.send(vec![span(5, 1, 0, 1)]).await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 3]));
}

#[tokio::test(start_paused = true)]
async fn and_needs_every_sub_policy() {
    let h = Harness::new(&with_policies(
        "  - name: slow-errors
    type: and
    and:
      and_sub_policy:
        - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: l, type: latency, latency: {threshold_ms: 100}}
",
    ));
    h.send(vec![
        status(span(1, 1, 0, 200), StatusCode::Error),
        status(span(2, 1, 0, 50), StatusCode::Error),
        span(3, 1, 0, 200),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1]));
}

#[tokio::test(start_paused = true)]
async fn drop_policy_wins_over_sampling_policies() {
    let h = Harness::new(&with_policies(
        "  - {name: all, type: always_sample}
  - name: no-health
    type: drop
    drop:
      drop_sub_policy:
        - {name: h, type: string_attribute, string_attribute: {key: http.route, values: [/health]}}
",
    ));
    h.send(vec![
        attr(
            span(1, 1, 0, 1),
            attrs::key_value("http.route", attrs::string("/health")),
        ),
        span(2, 1, 0, 1),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([2]));
}

#[tokio::test(start_paused = true)]
async fn composite_allocates_rate_per_sub_policy() {
    let h = Harness::new(
        "decision_wait: 1s
num_shards: 1
policies:
  - name: comp
    type: composite
    composite:
      max_total_spans_per_second: 10
      policy_order: [errors, rest]
      composite_sub_policy:
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: rest, type: always_sample}
      rate_allocation:
        - {policy: errors, percent: 50}
        - {policy: rest, percent: 50}
",
    );
    // Three error traces of 2 spans: 2, 4 fit errors' 5 spans/s; 6 does not.
    for t in 1..=3 {
        h.send(vec![
            status(span(t, 1, 0, 1), StatusCode::Error),
            span(t, 2, 0, 1),
        ])
        .await;
    }
    // Plain traces go to `rest`: 2, 4 fit; the third does not.
    for t in 11..=13 {
        h.send(vec![span(t, 1, 0, 1), span(t, 2, 0, 1)]).await;
    }
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 2, 11, 12]));
}

#[tokio::test(start_paused = true)]
async fn late_spans_follow_the_cached_decision() {
    let h = Harness::new(
        "decision_wait: 1s\nnum_shards: 2\ndecision_cache: {sampled_cache_size: 100, non_sampled_cache_size: 100}\npolicies:\n  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n",
    );
    h.send(vec![
        status(span(1, 1, 0, 1), StatusCode::Error),
        span(2, 1, 0, 1),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1)]));
    h.send(vec![
        span(1, 2, 0, 1),
        status(span(2, 2, 0, 1), StatusCode::Error),
    ])
    .await;
    // The sampled one goes out on the next tick, not after a new wait.
    pass(150).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1), (1, 2)]));
    pass(1500).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1), (1, 2)]));
    assert_eq!(h.p.traces_in_memory(), 0);
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_early_releases_from_cache_decision",
            &[("sampled", "false")]
        ),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_cache_a_late_span_starts_a_new_trace() {
    let h = Harness::new(&with_policies(
        "  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n",
    ));
    h.send(vec![span(1, 1, 0, 1)]).await;
    pass(1500).await;
    h.send(vec![status(span(1, 2, 0, 1), StatusCode::Error)])
        .await;
    pass(1500).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 2)]));
    assert_eq!(
        h.counter("otelcol_processor_tail_sampling_new_trace_id_received", &[]),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn num_traces_evicts_the_oldest_undecided_trace() {
    let h = Harness::new(
        "decision_wait: 1s\nnum_shards: 1\nnum_traces: 4\npolicies:\n  - {name: all, type: always_sample}\n",
    );
    for t in 1..=6 {
        h.send(vec![span(t, 1, 0, 1)]).await;
        pass(10).await;
    }
    // Spans for a held trace do not evict.
    h.send(vec![span(6, 2, 0, 1)]).await;
    assert_eq!(h.p.traces_in_memory(), 4);
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
            &[]
        ),
        2
    );
    pass(1500).await;
    assert_eq!(
        h.sink.spans(),
        BTreeSet::from([(3, 1), (4, 1), (5, 1), (6, 1), (6, 2)])
    );
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_dropped_spans",
            &[("reason", "dropped_too_early")]
        ),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn block_on_overflow_refuses_instead_of_evicting() {
    let h = Harness::new(
        "decision_wait: 1s\nnum_shards: 1\nnum_traces: 2\nblock_on_overflow: true\npolicies:\n  - {name: all, type: always_sample}\n",
    );
    h.send(vec![span(1, 1, 0, 1)]).await;
    h.send(vec![span(2, 1, 0, 1)]).await;
    let err =
        h.p.consume(batch(vec![span(3, 1, 0, 1)]))
            .await
            .unwrap_err();
    assert!(err.is_retryable());
    pass(1500).await;
    h.send(vec![span(3, 1, 0, 1)]).await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 2, 3]));
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
            &[]
        ),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn maximum_trace_size_bytes_drops_the_trace_and_its_later_spans() {
    let h = Harness::new(
        "decision_wait: 1s\nnum_shards: 1\nmaximum_trace_size_bytes: 400\npolicies:\n  - {name: all, type: always_sample}\n",
    );
    let big = |t: u32, i: u8| {
        attr(
            span(t, i, 0, 1),
            attrs::key_value("pad", attrs::string("x".repeat(150))),
        )
    };
    h.send(vec![big(1, 1)]).await;
    h.send(vec![span(2, 1, 0, 1)]).await;
    h.send(vec![big(1, 2), big(1, 3)]).await;
    h.send(vec![span(1, 4, 0, 1)]).await;
    pass(1500).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(2, 1)]));
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_traces_dropped_too_large",
            &[]
        ),
        1
    );
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_dropped_spans",
            &[("reason", "too_large")]
        ),
        4
    );
    assert_eq!(h.p.held_bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn max_bytes_bounds_held_data() {
    let max = 64 * 1024;
    let h = Harness::new(&format!(
        "decision_wait: 1s\nnum_shards: 2\nmax_bytes: {max}\npolicies:\n  - {{name: all, type: always_sample}}\n"
    ));
    for t in 0..2000 {
        h.send(vec![span(t, 1, 0, 1), span(t, 2, 0, 1)]).await;
        assert!(h.p.held_bytes() <= max, "{} > {max}", h.p.held_bytes());
    }
    let evicted = h.counter(
        "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
        &[],
    );
    assert!(evicted > 1000, "{evicted}");
    pass(1500).await;
    assert_eq!(h.sink.traces().len() as u64, 2000 - evicted);
}

#[tokio::test(start_paused = true)]
async fn downstream_refusal_keeps_sampled_data_for_the_next_tick() {
    let h = Harness::new(&with_policies("  - {name: all, type: always_sample}\n"));
    h.sink.refuse.store(true, Ordering::SeqCst);
    h.send(vec![span(1, 1, 0, 1)]).await;
    pass(1500).await;
    assert!(h.sink.spans().is_empty());
    assert!(h.p.held_bytes() > 0);
    h.sink.refuse.store(false, Ordering::SeqCst);
    pass(200).await;
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1)]));
    assert_eq!(h.p.held_bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn full_outbox_refuses_new_data_retryably() {
    let h = Harness::new(
        "decision_wait: 0s\nnum_shards: 1\nmax_bytes: 4096\npolicies:\n  - {name: all, type: always_sample}\n",
    );
    h.sink.refuse.store(true, Ordering::SeqCst);
    let mut refused = false;
    for t in 0..100 {
        match h.p.consume(batch(vec![span(t, 1, 0, 1)])).await {
            Ok(()) => pass(30).await,
            Err(e) => {
                assert!(e.is_retryable());
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "never refused while downstream was refusing");
    h.sink.refuse.store(false, Ordering::SeqCst);
    pass(100).await;
    assert!(!h.sink.spans().is_empty());
    h.p.consume(batch(vec![span(1000, 1, 0, 1)])).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_decides_pending_traces_now() {
    let h = Harness::new(
        "decision_wait: 30s\npolicies:\n  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n",
    );
    h.send(vec![
        status(span(1, 1, 0, 1), StatusCode::Error),
        span(2, 1, 0, 1),
    ])
    .await;
    h.p.shutdown().await.unwrap();
    assert_eq!(h.sink.spans(), BTreeSet::from([(1, 1)]));
    assert_eq!(h.p.held_bytes(), 0);
    assert!(h
        .p
        .consume(batch(vec![span(3, 1, 0, 1)]))
        .await
        .unwrap_err()
        .is_retryable());
}

#[tokio::test(start_paused = true)]
async fn shutdown_can_drop_pending_traces() {
    let h = Harness::new(
        "decision_wait: 30s\ndrop_pending_traces_on_shutdown: true\npolicies:\n  - {name: all, type: always_sample}\n",
    );
    h.send(vec![span(1, 1, 0, 1), span(2, 1, 0, 1)]).await;
    h.p.shutdown().await.unwrap();
    assert!(h.sink.spans().is_empty());
    assert_eq!(
        h.counter(
            "otelcol_processor_tail_sampling_dropped_spans",
            &[("reason", "shutdown")]
        ),
        2
    );
    assert_eq!(h.p.held_bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn tracked_acks_complete_when_the_trace_is_decided() {
    let h = Harness::new(&with_policies(
        "  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n",
    ));
    let (acks, waiter) = Acks::tracked();
    let mut b = batch(vec![
        status(span(1, 1, 0, 1), StatusCode::Error),
        span(2, 1, 0, 1),
    ]);
    b.acks = acks;
    h.p.consume(b).await.unwrap();
    let waiting = tokio::spawn(waiter.wait());
    pass(500).await;
    assert!(!waiting.is_finished(), "acknowledged before the decision");
    pass(1000).await;
    assert!(waiting.await.unwrap());
}

#[test]
fn config_problems_are_reported_with_paths() {
    let node = Node::from_yaml_str(
        "t.yaml",
        "policies:
  - {name: a, type: probabilistic, probabilistic: {sampling_percentage: 150}}
  - {name: a, type: string_attribute}
  - name: c
    type: composite
    composite:
      max_total_spans_per_second: 0
      policy_order: [x]
      composite_sub_policy: [{name: y, type: always_sample}]
",
    )
    .unwrap();
    let errors = TailSamplingFactory.check(&node);
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let all = text.join("\n");
    assert!(all.contains("sampling_percentage"), "{all}");
    assert!(all.contains("duplicate policy name"), "{all}");
    assert!(all.contains("string_attribute"), "{all}");
    assert!(all.contains("max_total_spans_per_second"), "{all}");
    assert!(all.contains("policy_order[0]"), "{all}");
    assert!(errors.iter().all(|e| e.span.is_some()));

    let unknown = Node::from_yaml_str("t.yaml", "decision_wait: 1s\nnum_trace: 5\n").unwrap();
    let errors = TailSamplingFactory.check(&unknown);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("num_trace"), "{}", errors[0]);

    let none = Node::from_yaml_str("t.yaml", "decision_wait: 1s\n").unwrap();
    assert!(TailSamplingFactory.check(&none)[0]
        .to_string()
        .contains("at least one policy"));
    let bad_type =
        Node::from_yaml_str("t.yaml", "policies: [{name: a, type: ottl_condition}]").unwrap();
    assert_eq!(TailSamplingFactory.check(&bad_type).len(), 1);
}

#[test]
fn defaults_follow_the_collector() {
    let cfg: TailSamplingConfig = Node::from_yaml_str("t.yaml", "{}")
        .unwrap()
        .deserialize()
        .unwrap();
    assert_eq!(cfg.decision_wait.0, Duration::from_secs(30));
    assert_eq!(cfg.num_traces, 50_000);
    assert_eq!(cfg.decision_cache.sampled_cache_size, 0);
    assert!(!cfg.sample_on_first_match);
    assert!(!cfg.drop_pending_traces_on_shutdown);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Splitting into per-trace fragments and decoding them back gives
        /// every span once, under its own resource and scope.
        #[test]
        fn fragments_round_trip(shape in proptest::collection::vec(
            (0u8..3, proptest::collection::vec((0u32..5, any::<u8>(), 0u64..1000), 0..12)), 1..4)
        ) {
            let mut input = Vec::new();
            for (r, spans) in &shape {
                let mut rs = resource_spans(
                    vec![attrs::key_value("r", attrs::int(i64::from(*r)))],
                    spans.iter().map(|(t, id, d)| span(*t, *id, 0, *d)).collect(),
                );
                if *r == 2 {
                    rs.resource = None;
                    rs.schema_url.clear();
                }
                input.push(rs);
            }
            let mut s = encode::Splitter::default();
            s.split(&input, &policy::Conditions::default());
            let mut out = Vec::new();
            for f in &s.fragments {
                let v = encode::decode(&s.arena[f.start..f.end]).unwrap();
                prop_assert_eq!(
                    f.summary.span_count as usize,
                    v.iter().flat_map(|r| &r.scope_spans).map(|ss| ss.spans.len()).sum::<usize>()
                );
                out.extend(v);
            }
            // The whole arena is one export request with the same data.
            prop_assert_eq!(encode::decode(&s.arena).unwrap(), out.clone());
            let flatten = |rs: &[ResourceSpans]| {
                let mut v: Vec<(Option<Resource>, Span)> = rs
                    .iter()
                    .flat_map(|r| r.scope_spans.iter().flat_map(move |ss| ss.spans.iter().map(move |sp| (r.resource.clone(), sp.clone()))))
                    .collect();
                v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
                v
            };
            prop_assert_eq!(flatten(&input), flatten(&out));
        }
    }
}

fn with_flags(mut s: Span, flags: u32) -> Span {
    s.flags = flags;
    s
}

#[tokio::test(start_paused = true)]
async fn trace_flags_samples_traces_with_a_sampled_span() {
    let h = Harness::new(&with_policies("  - {name: f, type: trace_flags}\n"));
    // Trace 1: the sampled flag on a late child only; trace 3: only bit 8
    // (the "parent is remote" flag), not the sampled bit.
    h.send(vec![span(1, 1, 0, 1), with_flags(span(2, 1, 0, 1), 0x01)])
        .await;
    h.send(vec![with_flags(span(1, 2, 0, 1), 0x301), span(3, 1, 0, 1)])
        .await;
    h.send(vec![with_flags(span(3, 2, 0, 1), 0x100)]).await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 2]));
    assert_eq!(h.sink.spans().len(), 3);
}

/// The size a one-span trace is held (and charged) at: its export request.
fn one_span_trace_bytes(t: u32) -> usize {
    use prost::Message;
    confluo_pipeline::proto::trace_service::ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            vec![attrs::key_value("service.name", attrs::string("svc"))],
            vec![span(t, 1, 0, 1)],
        )],
    }
    .encoded_len()
}

#[tokio::test(start_paused = true)]
async fn bytes_limiting_is_a_token_bucket_on_trace_bytes() {
    let size = one_span_trace_bytes(1);
    assert_eq!(size, one_span_trace_bytes(7));
    // Room for 3.5 traces, refilled at half a trace per second.
    let h = Harness::new(&format!(
        "decision_wait: 1s\nnum_shards: 1\npolicies:\n  - {{name: b, type: bytes_limiting, bytes_limiting: {{bytes_per_second: {}, burst_capacity: {}}}}}\n",
        size / 2,
        size * 7 / 2
    ));
    h.send((1..=5).map(|t| span(t, 1, 0, 1)).collect()).await;
    pass(1500).await;
    // Traces are decided in trace id order within a batch; which three
    // fit depends on that order, how many does not.
    let first = h.sink.traces();
    assert_eq!(first.len(), 3, "{first:?}");
    // 1.5 s later half a trace was left plus 0.75 refilled: one more fits.
    h.send(vec![span(6, 1, 0, 1), span(7, 1, 0, 1)]).await;
    pass(1500).await;
    let second: BTreeSet<u32> = h.sink.traces().difference(&first).copied().collect();
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second.is_subset(&BTreeSet::from([6, 7])));

    // burst_capacity 0: twice bytes_per_second.
    let h = Harness::new(&format!(
        "decision_wait: 1s\nnum_shards: 1\npolicies:\n  - {{name: b, type: bytes_limiting, bytes_limiting: {{bytes_per_second: {size}}}}}\n"
    ));
    h.send((1..=4).map(|t| span(t, 1, 0, 1)).collect()).await;
    pass(1500).await;
    assert_eq!(h.sink.traces().len(), 2);
}

fn event(mut s: Span, name: &str, kv: KeyValue) -> Span {
    s.events.push(confluo_pipeline::proto::trace::span::Event {
        name: name.into(),
        attributes: vec![kv],
        ..Default::default()
    });
    s
}

#[tokio::test(start_paused = true)]
async fn ottl_condition_on_spans_resources_and_events() {
    let h = Harness::new(&with_policies(
        r#"  - name: o
    type: ottl_condition
    ottl_condition:
      span:
        - 'attributes["http.status_code"] >= 500 and resource.attributes["service.name"] == "svc"'
        - 'IsMatch(name, "^checkout") and kind == SPAN_KIND_SERVER'
      spanevent:
        - 'name == "exception" and attributes["exception.type"] == "ValueError"'
"#,
    ));
    let code = |n| attrs::key_value("http.status_code", attrs::int(n));
    let etype = |t: &str| attrs::key_value("exception.type", attrs::string(t));
    let mut checkout = span(3, 2, 0, 1);
    checkout.name = "checkout /cart".into();
    checkout.kind = 2;
    let mut checkout_client = span(6, 1, 0, 1);
    checkout_client.name = "checkout /cart".into();
    checkout_client.kind = 3;
    // Trace 1 matches only through a late span of a later request.
    h.send(vec![
        attr(span(1, 1, 0, 1), code(200)),
        attr(span(2, 1, 0, 1), code(200)),
    ])
    .await;
    h.send(vec![span(3, 1, 0, 1), checkout, checkout_client])
        .await;
    h.send(vec![
        attr(span(1, 2, 0, 1), code(503)),
        event(span(4, 1, 0, 1), "exception", etype("ValueError")),
        event(span(5, 1, 0, 1), "exception", etype("TypeError")),
    ])
    .await;
    pass(1500).await;
    assert_eq!(h.sink.traces(), BTreeSet::from([1, 3, 4]));

    // Outside the service: the resource part of the first condition fails.
    let h = Harness::new(&with_policies(
        "  - {name: o, type: ottl_condition, ottl_condition: {span: ['resource.attributes[\"service.name\"] == \"other\"']}}\n",
    ));
    h.send(vec![span(1, 1, 0, 1)]).await;
    pass(1500).await;
    assert!(h.sink.traces().is_empty());
}

#[tokio::test(start_paused = true)]
async fn ottl_error_modes() {
    // The first condition fails on spans with d == 0; the second matches
    // every span named span-1.
    let cfg = |mode: &str| {
        with_policies(&format!(
            r#"  - name: o
    type: ottl_condition
    ottl_condition:
      error_mode: {mode}
      span:
        - 'attributes["n"] / attributes["d"] > 1'
        - 'name == "span-1"'
"#
        ))
    };
    let n = |v| attrs::key_value("n", attrs::int(v));
    let d = |v| attrs::key_value("d", attrs::int(v));
    let spans = || {
        vec![
            attr(attr(span(1, 1, 0, 1), n(4)), d(0)),
            attr(attr(span(2, 2, 0, 1), n(4)), d(1)),
            attr(attr(span(3, 2, 0, 1), n(4)), d(0)),
        ]
    };
    let errors = |h: &Harness| {
        h.counter(
            "otelcol_processor_tail_sampling_sampling_policy_evaluation_error",
            &[],
        )
    };
    for mode in ["ignore", "silent"] {
        let h = Harness::new(&cfg(mode));
        h.send(spans()).await;
        pass(1500).await;
        // The error counts as false and the next condition is evaluated.
        assert_eq!(h.sink.traces(), BTreeSet::from([1, 2]), "{mode}");
        assert_eq!(errors(&h), 0, "{mode}");
    }
    let h = Harness::new(&cfg("propagate"));
    h.send(spans()).await;
    // Across requests the first span that matches or fails decides, as the
    // Collector walks the trace in arrival order: trace 4 matched first,
    // trace 5 failed first.
    h.send(vec![
        attr(attr(span(4, 2, 0, 1), n(4)), d(1)),
        attr(attr(span(5, 3, 0, 1), n(4)), d(0)),
    ])
    .await;
    h.send(vec![
        attr(attr(span(5, 2, 0, 1), n(4)), d(1)),
        attr(attr(span(4, 3, 0, 1), n(4)), d(0)),
    ])
    .await;
    pass(1500).await;
    // The error ends the evaluation: trace 1 is not sampled although its
    // span matches the second condition; the policy takes no part.
    assert_eq!(h.sink.traces(), BTreeSet::from([2, 4]));
    assert_eq!(errors(&h), 3);
    let count = |sampled| {
        h.counter(
            "otelcol_processor_tail_sampling_count_traces_sampled",
            &[("policy", "o"), ("sampled", sampled)],
        )
    };
    assert_eq!((count("true"), count("false")), (2, 0));

    // propagate is the default; an error inside `and` fails the `and`.
    let h = Harness::new(&with_policies(
        r#"  - name: a
    type: and
    and:
      and_sub_policy:
        - {name: all, type: always_sample}
        - {name: o, type: ottl_condition, ottl_condition: {span: ['attributes["n"] / attributes["d"] > 1']}}
  - {name: inv, type: string_attribute, string_attribute: {key: zz, values: [x], invert_match: true}}
"#,
    ));
    h.send(vec![attr(attr(span(1, 1, 0, 1), n(4)), d(0))]).await;
    pass(1500).await;
    // `inv` alone gives InvertSampled: the failed `and` did not veto it.
    assert_eq!(h.sink.traces(), BTreeSet::from([1]));
    assert_eq!(errors(&h), 1);
}

#[test]
fn new_policy_config_problems() {
    let node = Node::from_yaml_str(
        "t.yaml",
        r#"policies:
  - {name: b, type: bytes_limiting, bytes_limiting: {bytes_per_second: 0}}
  - {name: c, type: bytes_limiting, bytes_limiting: {bytes_per_second: 10, burst_capacity: -1}}
  - {name: o, type: ottl_condition, ottl_condition: {error_mode: ignore}}
  - name: p
    type: ottl_condition
    ottl_condition:
      span: ['name == "a"', 'Substring(name, 0, 2) == "GE"']
      spanevent: ['kind == SPAN_KIND_SERVER']
"#,
    )
    .unwrap();
    let all: Vec<String> = TailSamplingFactory
        .check(&node)
        .iter()
        .map(|e| e.to_string())
        .collect();
    let all = all.join("\n");
    assert!(
        all.contains("policies[0].bytes_limiting.bytes_per_second"),
        "{all}"
    );
    assert!(
        all.contains("policies[1].bytes_limiting.burst_capacity"),
        "{all}"
    );
    assert!(all.contains("at least one OTTL condition"), "{all}");
    assert!(
        all.contains("policies[3].ottl_condition.span[1]")
            && all.contains("unsupported function `Substring` (at column 1)"),
        "{all}"
    );
    assert!(
        all.contains("policies[3].ottl_condition.spanevent[0]")
            && all.contains("unsupported path `kind` in the spanevent context"),
        "{all}"
    );
    let loud = Node::from_yaml_str(
        "t.yaml",
        "policies: [{name: q, type: ottl_condition, ottl_condition: {error_mode: loud, span: ['true']}}]",
    )
    .unwrap();
    let e = TailSamplingFactory.check(&loud);
    assert!(e[0].to_string().contains("error_mode"), "{}", e[0]);
    // Each ottl_condition with propagate takes two condition bits.
    let many: String = (0..33)
        .map(|i| {
            format!(
                "  - {{name: o{i}, type: ottl_condition, ottl_condition: {{span: ['true']}}}}\n"
            )
        })
        .collect();
    let node = Node::from_yaml_str("t.yaml", &format!("policies:\n{many}")).unwrap();
    let errors = TailSamplingFactory.check(&node);
    assert!(
        errors[0].to_string().contains("at most 64"),
        "{}",
        errors[0]
    );
}

/// 1,000,000 traces at 100,000 new traces per (virtual) second with a 1 s
/// wait: both `num_traces` and `max_bytes` have to evict, the bounds hold
/// after every batch, and every trace is either evicted or decided exactly
/// once (tests/tail_sampling_memory.rs checks the process RSS).
#[tokio::test(start_paused = true)]
async fn a_million_traces_all_accounted_for_under_both_bounds() {
    const TRACES: u32 = 1_000_000;
    const BATCH: u32 = 1000;
    let (num_traces, max) = (50_000, 8 << 20);
    let h = Harness::new(&format!(
        "decision_wait: 1s\nnum_traces: {num_traces}\nnum_shards: 2\nmax_bytes: {max}\npolicies:\n  - {{name: p, type: probabilistic, probabilistic: {{sampling_percentage: 1}}}}\n"
    ));
    let (mut peak_bytes, mut peak_traces) = (0, 0);
    for b in 0..TRACES / BATCH {
        h.send(
            (b * BATCH..(b + 1) * BATCH)
                .map(|t| span(t, 1, 0, 1))
                .collect(),
        )
        .await;
        peak_bytes = peak_bytes.max(h.p.held_bytes());
        peak_traces = peak_traces.max(h.p.traces_in_memory());
        // Shards round their share of num_traces up.
        assert!(peak_traces <= num_traces + 1, "{peak_traces}");
        assert!(peak_bytes <= max, "{peak_bytes} > {max}");
        pass(10).await;
    }
    pass(1500).await;
    assert_eq!(h.p.traces_in_memory(), 0);
    assert_eq!(h.p.held_bytes(), 0);
    let evicted = h.counter(
        "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
        &[],
    );
    let decided = |s| {
        h.counter(
            "otelcol_processor_tail_sampling_global_count_traces_sampled",
            &[("sampled", s)],
        )
    };
    let (kept, dropped) = (decided("true"), decided("false"));
    assert_eq!(evicted + kept + dropped, u64::from(TRACES));
    assert!(evicted > 0 && kept > 0, "{evicted} {kept} {dropped}");
    assert_eq!(h.sink.traces().len() as u64, kept);
}
