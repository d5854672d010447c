use super::*;
use confluo_config::ComponentKind;
use confluo_pipeline::attrs::{key_value, string};
use confluo_pipeline::proto::common::KeyValue;
use confluo_pipeline::proto::trace::{ResourceSpans, ScopeSpans};
use confluo_pipeline::ExtensionFactory;
use std::sync::atomic::AtomicUsize;

/// Records what it consumes; refuses retryably while `refuse` is set.
#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Signal>>,
    refuse: AtomicBool,
    refusals: AtomicUsize,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        if self.refuse.load(Ordering::SeqCst) {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            return Err(ConsumeError::retryable("full"));
        }
        self.got.lock().unwrap().push(batch.take_signal());
        Ok(())
    }
}

impl Sink {
    fn logs(&self) -> Vec<(Option<Resource>, LogRecord)> {
        let mut out = Vec::new();
        for s in self.got.lock().unwrap().iter() {
            if let Signal::Logs(rls) = s {
                for rl in rls {
                    for sl in &rl.scope_logs {
                        for r in &sl.log_records {
                            out.push((rl.resource.clone(), r.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    fn log_count(&self) -> usize {
        self.logs().len()
    }
}

const WAIT: Duration = Duration::from_secs(10);

async fn eventually(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Pair {
    ctx: ComponentContext,
    traces: Arc<dyn Processor>,
    logs: Arc<dyn Processor>,
    trace_sink: Arc<Sink>,
    log_sink: Arc<Sink>,
}

fn node(yaml: &str) -> Node {
    Node::from_yaml_str("test.yaml", yaml).unwrap()
}

/// A traces and a logs instance of the same processor config, as two
/// pipelines would create them. The config gets a fresh named store unless
/// `yaml` names one or `default_store` is asked for.
fn pair_in(ctx: &ComponentContext, yaml: &str) -> Pair {
    let trace_sink = Arc::new(Sink::default());
    let log_sink = Arc::new(Sink::default());
    let n = node(yaml);
    let f = CorrelationFactory;
    assert!(f.check(&n).is_empty(), "{:?}", f.check(&n));
    let traces = f
        .create(ctx.clone(), &n, SignalKind::Traces, trace_sink.clone())
        .unwrap();
    let logs = f
        .create(ctx.clone(), &n, SignalKind::Logs, log_sink.clone())
        .unwrap();
    Pair {
        ctx: ctx.clone(),
        traces,
        logs,
        trace_sink,
        log_sink,
    }
}

fn ctx_with_store(store_yaml: &str) -> ComponentContext {
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "correlation");
    let ext = CorrelationStoreFactory
        .create(ctx.clone(), &node(store_yaml))
        .unwrap();
    ctx.extensions
        .insert("correlation_store/t".parse().unwrap(), ext);
    ctx
}

fn named_store(ctx: &ComponentContext) -> Arc<CorrelationStore> {
    let ext = ctx
        .extensions
        .get(&"correlation_store/t".parse().unwrap())
        .unwrap();
    ext.as_any()
        .downcast_ref::<CorrelationStoreExtension>()
        .unwrap()
        .store
        .clone()
}

fn pair(extra: &str) -> Pair {
    let ctx = ctx_with_store("ttl: 1m");
    pair_in(&ctx, &format!("store: correlation_store/t\n{extra}"))
}

const TRACE: [u8; 16] = [0xab; 16];
const SPAN: [u8; 8] = [0xcd; 8];

fn span_batch(service: &str, spans: Vec<Span>) -> Batch {
    Batch::new(Signal::Traces(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![key_value("service.name", string(service))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }]))
}

fn span(trace: [u8; 16], span_id: [u8; 8], kind: SpanKind, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: span_id.to_vec(),
        kind: kind as i32,
        parent_span_id: vec![1; 8],
        attributes: attrs,
        name: "op".into(),
        ..Default::default()
    }
}

fn server_span(request_id: &str) -> Batch {
    span_batch(
        "api",
        vec![span(
            TRACE,
            SPAN,
            SpanKind::Server,
            vec![key_value(
                "http.request.header.x-request-id",
                attrs::array(vec![string(request_id)]),
            )],
        )],
    )
}

fn log_rec(attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        attributes: attrs,
        body: Some(string("hello")),
        ..Default::default()
    }
}

fn log_batch(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> Batch {
    Batch::new(Signal::Logs(vec![ResourceLogs {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }]))
}

fn req_log(id: &str) -> Batch {
    log_batch(
        vec![key_value("k8s.pod.name", string("p"))],
        vec![log_rec(vec![key_value("x-request-id", string(id))])],
    )
}

fn metric(ctx: &ComponentContext, name: &str) -> f64 {
    let text = ctx.telemetry.render();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn joins_when_the_span_arrives_first() {
    let p = pair("");
    p.traces.consume(server_span("R1")).await.unwrap();
    assert_eq!(p.trace_sink.got.lock().unwrap().len(), 1);
    // The span's header attribute is normalised too.
    if let Signal::Traces(rs) = &p.trace_sink.got.lock().unwrap()[0] {
        let a = &rs[0].scope_spans[0].spans[0].attributes;
        assert_eq!(attrs::get_str(a, "request_id"), Some("R1"));
        assert!(attrs::get(a, "http.request.header.x-request-id").is_none());
    }
    p.logs.consume(req_log("R1")).await.unwrap();
    let logs = p.log_sink.logs();
    assert_eq!(logs.len(), 1);
    let (res, rec) = &logs[0];
    assert_eq!(rec.trace_id, TRACE.to_vec());
    assert_eq!(rec.span_id, SPAN.to_vec());
    assert_eq!(attrs::get_str(&rec.attributes, "request_id"), Some("R1"));
    let res = res.as_ref().unwrap();
    assert_eq!(attrs::get_str(&res.attributes, "service.name"), Some("api"));
    assert_eq!(attrs::get_str(&res.attributes, "k8s.pod.name"), Some("p"));
    assert_eq!(metric(&p.ctx, "otelcol_processor_correlation_joined"), 1.0);
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_store_entries"),
        1.0
    );
}

#[tokio::test]
async fn holds_logs_until_their_span_arrives() {
    let p = pair("hold: {max_wait: 30s}");
    let (acks, waiter) = Acks::tracked();
    let mut b = req_log("R2");
    b.acks = acks;
    let waiting = tokio::spawn(waiter.wait());
    p.logs.consume(b).await.unwrap();
    // Custody: held, not yet delivered.
    assert_eq!(p.log_sink.log_count(), 0);
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_held_log_records"),
        1.0
    );
    assert!(!waiting.is_finished());
    let t0 = Instant::now();
    p.traces.consume(server_span("R2")).await.unwrap();
    eventually(|| p.log_sink.log_count() == 1).await;
    // Released on the span's arrival, not on the 30 s expiry.
    assert!(t0.elapsed() < Duration::from_secs(5));
    let (res, rec) = &p.log_sink.logs()[0];
    assert_eq!(rec.trace_id, TRACE.to_vec());
    assert_eq!(rec.span_id, SPAN.to_vec());
    assert_eq!(
        attrs::get_str(&res.as_ref().unwrap().attributes, "service.name"),
        Some("api")
    );
    assert!(
        waiting.await.unwrap(),
        "the source is acknowledged once delivered"
    );
    assert_eq!(metric(&p.ctx, "otelcol_processor_correlation_joined"), 1.0);
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        0.0
    );
    eventually(|| metric(&p.ctx, "otelcol_processor_correlation_held_log_records") == 0.0).await;
}

#[tokio::test]
async fn releases_unjoined_when_the_hold_expires() {
    let p = pair("hold: {max_wait: 100ms}");
    let mixed = log_batch(
        vec![],
        vec![
            log_rec(vec![key_value("request_id", string("nobody"))]),
            log_rec(vec![]),
        ],
    );
    let t0 = Instant::now();
    p.logs.consume(mixed).await.unwrap();
    // The record without a correlation id passes at once.
    assert_eq!(p.log_sink.log_count(), 1);
    eventually(|| p.log_sink.log_count() == 2).await;
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let (_, rec) = &p.log_sink.logs()[1];
    assert!(rec.trace_id.is_empty());
    assert_eq!(
        attrs::get_str(&rec.attributes, "request_id"),
        Some("nobody")
    );
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        1.0
    );
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_held_log_records"),
        0.0
    );
}

#[tokio::test]
async fn releases_the_oldest_when_the_hold_is_full() {
    let one = {
        let b = req_log("A");
        match b.signal() {
            Signal::Logs(rls) => rls[0].encoded_len(),
            _ => unreachable!(),
        }
    };
    // Room for two such fragments, not three.
    let p = pair(&format!(
        "hold: {{max_wait: 1h, max_bytes: {}}}",
        2 * one + 40
    ));
    p.logs.consume(req_log("A")).await.unwrap();
    p.logs.consume(req_log("B")).await.unwrap();
    assert_eq!(p.log_sink.log_count(), 0);
    p.logs.consume(req_log("C")).await.unwrap();
    eventually(|| p.log_sink.log_count() == 1).await;
    let (_, rec) = &p.log_sink.logs()[0];
    assert_eq!(attrs::get_str(&rec.attributes, "request_id"), Some("A"));
    assert!(rec.trace_id.is_empty());
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        1.0
    );
    // B and C still wait and join when their spans come.
    p.traces.consume(server_span("C")).await.unwrap();
    eventually(|| p.log_sink.log_count() == 2).await;
    assert_eq!(p.log_sink.logs()[1].1.trace_id, TRACE.to_vec());
}

#[tokio::test]
async fn a_batch_larger_than_the_hold_passes_unjoined() {
    let p = pair("hold: {max_wait: 1h, max_bytes: 10}");
    p.logs.consume(req_log("A")).await.unwrap();
    assert_eq!(p.log_sink.log_count(), 1);
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        1.0
    );
}

#[tokio::test]
async fn max_wait_zero_disables_holding() {
    let p = pair("hold: {max_wait: 0}");
    p.logs.consume(req_log("A")).await.unwrap();
    assert_eq!(p.log_sink.log_count(), 1);
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        1.0
    );
}

#[tokio::test]
async fn shutdown_flushes_held_logs() {
    let p = pair("hold: {max_wait: 1h}");
    p.logs.consume(req_log("A")).await.unwrap();
    p.logs.consume(req_log("B")).await.unwrap();
    assert_eq!(p.log_sink.log_count(), 0);
    p.logs.shutdown().await.unwrap();
    assert_eq!(p.log_sink.log_count(), 2);
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        2.0
    );
}

#[tokio::test]
async fn downstream_refusal_keeps_custody() {
    let p = pair("hold: {max_wait: 50ms, max_bytes: 100000}");
    p.log_sink.refuse.store(true, Ordering::SeqCst);
    let (acks, waiter) = Acks::tracked();
    let mut b = req_log("A");
    b.acks = acks;
    let waiting = tokio::spawn(waiter.wait());
    p.logs.consume(b).await.unwrap();
    // Expired, offered, refused, offered again.
    eventually(|| p.log_sink.refusals.load(Ordering::SeqCst) >= 2).await;
    assert!(!waiting.is_finished());
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_held_log_records"),
        1.0
    );
    // A span arriving meanwhile does not matter any more: it was released.
    p.log_sink.refuse.store(false, Ordering::SeqCst);
    eventually(|| p.log_sink.log_count() == 1).await;
    assert!(waiting.await.unwrap());
}

#[tokio::test]
async fn refuses_new_holds_while_released_logs_are_stuck() {
    let one = match req_log("A").signal() {
        Signal::Logs(rls) => rls[0].encoded_len(),
        _ => unreachable!(),
    };
    let p = pair(&format!("hold: {{max_wait: 1h, max_bytes: {}}}", one + 20));
    p.log_sink.refuse.store(true, Ordering::SeqCst);
    p.logs.consume(req_log("A")).await.unwrap();
    // B pushes A out of the hold; A cannot be delivered.
    p.logs.consume(req_log("B")).await.unwrap();
    eventually(|| p.log_sink.refusals.load(Ordering::SeqCst) >= 1).await;
    let err = p.logs.consume(req_log("C")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // Logs that need no hold still pass... once downstream accepts.
    p.log_sink.refuse.store(false, Ordering::SeqCst);
    eventually(|| p.log_sink.log_count() == 1).await;
    p.logs.consume(req_log("C")).await.unwrap();
    p.logs.shutdown().await.unwrap();
    let ids: Vec<String> = p
        .log_sink
        .logs()
        .iter()
        .map(|(_, r)| {
            attrs::get_str(&r.attributes, "request_id")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, vec!["A", "B", "C"]);
}

#[tokio::test]
async fn pass_through_refusal_holds_nothing() {
    let p = pair("hold: {max_wait: 1h}");
    p.log_sink.refuse.store(true, Ordering::SeqCst);
    let b = log_batch(
        vec![],
        vec![
            log_rec(vec![key_value("request_id", string("A"))]),
            log_rec(vec![]),
        ],
    );
    assert!(p.logs.consume(b).await.unwrap_err().is_retryable());
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_held_log_records"),
        0.0
    );
    p.log_sink.refuse.store(false, Ordering::SeqCst);
    p.logs.shutdown().await.unwrap();
    assert_eq!(p.log_sink.log_count(), 0);
}

#[tokio::test]
async fn promotes_ids_and_counts_invalid_ones() {
    let p = pair("");
    let b = log_batch(
        vec![],
        vec![
            log_rec(vec![key_value(
                "traceparent",
                string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            )]),
            log_rec(vec![
                key_value("dd.trace_id", string("1234567890123456789")),
                key_value("dd.span_id", string("42")),
            ]),
            log_rec(vec![key_value("trace_id", string("nope"))]),
        ],
    );
    p.logs.consume(b).await.unwrap();
    let logs = p.log_sink.logs();
    assert_eq!(
        attrs::id_hex(&logs[0].1.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(logs[0].1.flags, 1);
    assert_eq!(
        attrs::id_hex(&logs[1].1.trace_id),
        "0000000000000000112210f47de98115"
    );
    assert_eq!(attrs::id_hex(&logs[1].1.span_id), "000000000000002a");
    assert!(logs[2].1.trace_id.is_empty());
    assert_eq!(
        attrs::get_str(&logs[2].1.attributes, "trace_id"),
        Some("nope")
    );
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_promoted"),
        2.0
    );
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_invalid_ids"),
        1.0
    );
}

#[tokio::test]
async fn logs_with_a_promoted_trace_id_are_not_joined_or_held() {
    let p = pair("hold: {max_wait: 1h}");
    p.traces.consume(server_span("R")).await.unwrap();
    let b = log_batch(
        vec![],
        vec![log_rec(vec![
            key_value("request_id", string("R")),
            key_value("trace_id", string("4bf92f3577b34da6a3ce929d0e0e4736")),
        ])],
    );
    p.logs.consume(b).await.unwrap();
    let logs = p.log_sink.logs();
    assert_eq!(
        attrs::id_hex(&logs[0].1.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn server_spans_win_over_others() {
    let p = pair("");
    let client = span(
        [1; 16],
        [1; 8],
        SpanKind::Client,
        vec![key_value("request_id", string("R"))],
    );
    p.traces
        .consume(span_batch("caller", vec![client]))
        .await
        .unwrap();
    p.traces.consume(server_span("R")).await.unwrap();
    let internal = span(
        [3; 16],
        [3; 8],
        SpanKind::Internal,
        vec![key_value("request_id", string("R"))],
    );
    p.traces
        .consume(span_batch("x", vec![internal]))
        .await
        .unwrap();
    p.logs.consume(req_log("R")).await.unwrap();
    assert_eq!(p.log_sink.logs()[0].1.trace_id, TRACE.to_vec());
}

#[tokio::test]
async fn span_selection_first_keeps_the_first_span() {
    let p = pair("span_selection: first");
    let client = span(
        [1; 16],
        [1; 8],
        SpanKind::Client,
        vec![key_value("request_id", string("R"))],
    );
    p.traces
        .consume(span_batch("caller", vec![client]))
        .await
        .unwrap();
    p.traces.consume(server_span("R")).await.unwrap();
    p.logs.consume(req_log("R")).await.unwrap();
    assert_eq!(p.log_sink.logs()[0].1.trace_id, vec![1; 16]);
}

#[tokio::test]
async fn resource_correlation_ids_apply_to_its_spans() {
    let p = pair("");
    let mut b = span_batch("svc", vec![span([5; 16], [5; 8], SpanKind::Server, vec![])]);
    if let Signal::Traces(rs) = b.signal_mut() {
        rs[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes
            .push(key_value("correlation_id", string("RR")));
    }
    p.traces.consume(b).await.unwrap();
    p.logs.consume(req_log("RR")).await.unwrap();
    assert_eq!(p.log_sink.logs()[0].1.trace_id, vec![5; 16]);
}

#[tokio::test]
async fn joined_logs_split_resources_by_service() {
    let p = pair("hold: {max_wait: 0}");
    let mut a = server_span("A");
    if let Signal::Traces(rs) = a.signal_mut() {
        rs[0].resource.as_mut().unwrap().attributes =
            vec![key_value("service.name", string("svc-a"))];
    }
    p.traces.consume(a).await.unwrap();
    let b = span_batch(
        "svc-b",
        vec![span(
            [9; 16],
            [9; 8],
            SpanKind::Server,
            vec![key_value("request_id", string("B"))],
        )],
    );
    p.traces.consume(b).await.unwrap();
    let batch = log_batch(
        vec![
            key_value("service.name", string("unknown_service")),
            key_value("host.name", string("h")),
        ],
        vec![
            log_rec(vec![key_value("request_id", string("A"))]),
            log_rec(vec![key_value("request_id", string("B"))]),
            log_rec(vec![key_value("request_id", string("nobody"))]),
            log_rec(vec![key_value("request_id", string("A"))]),
        ],
    );
    p.logs.consume(batch).await.unwrap();
    let got = p.log_sink.got.lock().unwrap().clone();
    let Signal::Logs(rls) = &got[0] else { panic!() };
    let summary: Vec<(String, String, usize)> = rls
        .iter()
        .map(|rl| {
            let a = &rl.resource.as_ref().unwrap().attributes;
            (
                attrs::get_str(a, "service.name").unwrap().to_string(),
                attrs::get_str(a, "host.name").unwrap().to_string(),
                rl.scope_logs.iter().map(|s| s.log_records.len()).sum(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("unknown_service".into(), "h".into(), 1),
            ("svc-a".into(), "h".into(), 2),
            ("svc-b".into(), "h".into(), 1),
        ]
    );
}

#[tokio::test]
async fn resource_defaults_fill_missing_attributes() {
    let p = pair("resource_defaults: {service.name: fallback, deployment.environment: prod, host.name: detect}");
    let b = log_batch(
        vec![key_value("deployment.environment", string("dev"))],
        vec![log_rec(vec![])],
    );
    p.logs.consume(b).await.unwrap();
    let (res, _) = &p.log_sink.logs()[0];
    let a = &res.as_ref().unwrap().attributes;
    assert_eq!(attrs::get_str(a, "service.name"), Some("fallback"));
    assert_eq!(attrs::get_str(a, "deployment.environment"), Some("dev"));
    let host = attrs::get_str(a, "host.name").unwrap();
    assert!(!host.is_empty() && host != "detect");
    p.traces
        .consume(span_batch(
            "api",
            vec![span([1; 16], [1; 8], SpanKind::Server, vec![])],
        ))
        .await
        .unwrap();
    let got = p.trace_sink.got.lock().unwrap();
    let Signal::Traces(rs) = &got[0] else {
        panic!()
    };
    let a = &rs[0].resource.as_ref().unwrap().attributes;
    assert_eq!(attrs::get_str(a, "service.name"), Some("api"));
    assert_eq!(attrs::get_str(a, "deployment.environment"), Some("prod"));
}

#[tokio::test]
async fn instances_share_the_default_store_and_named_stores_are_separate() {
    // Unique ids: the default store is process-wide and tests run in parallel.
    let ctx = ctx_with_store("ttl: 1m");
    let default_a = pair_in(&ctx, "hold: {max_wait: 0}");
    let default_b = pair_in(&ctx, "hold: {max_wait: 0}");
    let named = pair_in(&ctx, "store: correlation_store/t\nhold: {max_wait: 0}");
    default_a
        .traces
        .consume(server_span("default-store-unique-1"))
        .await
        .unwrap();
    default_b
        .logs
        .consume(req_log("default-store-unique-1"))
        .await
        .unwrap();
    assert_eq!(default_b.log_sink.logs()[0].1.trace_id, TRACE.to_vec());
    named
        .logs
        .consume(req_log("default-store-unique-1"))
        .await
        .unwrap();
    assert!(named.log_sink.logs()[0].1.trace_id.is_empty());
}

#[tokio::test]
async fn store_ttl_applies_to_joins() {
    let ctx = ctx_with_store("ttl: 50ms");
    let p = pair_in(&ctx, "store: correlation_store/t\nhold: {max_wait: 0}");
    let store = named_store(&ctx);
    p.traces.consume(server_span("R")).await.unwrap();
    assert!(store.lookup("R", Instant::now()).is_some());
    eventually(|| store.lookup("R", Instant::now()).is_none()).await;
    p.logs.consume(req_log("R")).await.unwrap();
    assert!(p.log_sink.logs()[0].1.trace_id.is_empty());
    assert_eq!(
        metric(&p.ctx, "otelcol_processor_correlation_unjoined"),
        1.0
    );
}

#[tokio::test]
async fn waiters_are_cleaned_up() {
    let ctx = ctx_with_store("ttl: 1m");
    let p = pair_in(&ctx, "store: correlation_store/t\nhold: {max_wait: 30ms}");
    let store = named_store(&ctx);
    for i in 0..50 {
        p.logs.consume(req_log(&format!("w{i}"))).await.unwrap();
    }
    assert_eq!(store.waiter_count(), 50);
    eventually(|| p.log_sink.log_count() == 50).await;
    assert_eq!(store.waiter_count(), 0);
}

#[test]
fn config_problems_are_reported() {
    let f = CorrelationFactory;
    assert!(f.check(&node("{}")).is_empty());
    assert!(!f.check(&node("bogus: 1")).is_empty());
    assert!(!f.check(&node("hold: {max_wait: 1s, bogus: 1}")).is_empty());
    assert!(!f.check(&node("store: batch/x")).is_empty());
    assert!(!f.check(&node("correlation_id_attribute: ''")).is_empty());
    assert!(!f
        .check(&node("resource_defaults: {service.name: detect}"))
        .is_empty());
    assert!(!f.check(&node("span_selection: random")).is_empty());
    assert!(!CorrelationStoreFactory.check(&node("ttl: 0")).is_empty());
    assert!(!CorrelationStoreFactory
        .check(&node("max_entries: 0"))
        .is_empty());
    assert!(!CorrelationStoreFactory.check(&node("foo: 1")).is_empty());
    assert!(CorrelationStoreFactory
        .check(&node("{ttl: 30s, max_entries: 10, max_bytes: 1MiB}"))
        .is_empty());
}

#[tokio::test]
async fn a_missing_named_store_fails_creation() {
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "correlation");
    let sink: Arc<dyn Consumer> = Arc::new(Sink::default());
    let err = CorrelationFactory
        .create(
            ctx,
            &node("store: correlation_store/missing"),
            SignalKind::Logs,
            sink,
        )
        .err()
        .expect("creation fails");
    assert!(
        err.to_string().contains("correlation_store/missing"),
        "{err}"
    );
}
