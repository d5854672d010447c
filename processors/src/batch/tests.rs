use super::*;
use confluo_config::ComponentKind;
use confluo_pipeline::proto::trace::{ResourceSpans, ScopeSpans, Span};

/// Records every batch it gets; refuses while `refuse` is set.
#[derive(Default)]
struct Sink {
    got: Mutex<Vec<usize>>,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ConsumeError::retryable("full"));
        }
        self.got.lock().unwrap().push(batch.item_count());
        Ok(())
    }
}

fn spans(n: usize) -> Batch {
    Batch::new(Signal::Traces(vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: (0..n).map(|_| Span::default()).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }]))
}

fn processor(config: BatchConfig, sink: Arc<Sink>) -> Arc<BatchProcessor> {
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "batch");
    BatchProcessor::start(ctx, config, SignalKind::Traces, sink)
}

#[tokio::test]
async fn sends_when_the_size_trigger_is_reached() {
    let sink = Arc::new(Sink::default());
    let p = processor(
        BatchConfig {
            send_batch_size: 10,
            timeout: GoDuration(Duration::from_secs(3600)),
            ..Default::default()
        },
        sink.clone(),
    );
    for _ in 0..3 {
        p.consume(spans(4)).await.unwrap();
    }
    assert_eq!(*sink.got.lock().unwrap(), vec![12]);
    p.shutdown().await.unwrap();
    assert_eq!(*sink.got.lock().unwrap(), vec![12]);
    p.consume(spans(1)).await.unwrap();
    p.shutdown().await.unwrap();
    assert_eq!(*sink.got.lock().unwrap(), vec![12, 1]);
}

#[tokio::test]
async fn splits_to_send_batch_max_size() {
    let sink = Arc::new(Sink::default());
    let p = processor(
        BatchConfig {
            send_batch_size: 5,
            send_batch_max_size: 5,
            timeout: GoDuration(Duration::from_secs(3600)),
            ..Default::default()
        },
        sink.clone(),
    );
    p.consume(spans(12)).await.unwrap();
    assert_eq!(*sink.got.lock().unwrap(), vec![5, 5, 2]);
}

#[tokio::test]
async fn timeout_flushes_partial_batches() {
    let sink = Arc::new(Sink::default());
    let p = processor(
        BatchConfig {
            send_batch_size: 1000,
            timeout: GoDuration(Duration::from_millis(20)),
            ..Default::default()
        },
        sink.clone(),
    );
    p.consume(spans(3)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.got.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*sink.got.lock().unwrap(), vec![3]);
}

#[tokio::test]
async fn refused_data_stays_in_custody_and_is_sent_later() {
    let sink = Arc::new(Sink::default());
    let p = processor(
        BatchConfig {
            send_batch_size: 2,
            timeout: GoDuration(Duration::from_secs(3600)),
            ..Default::default()
        },
        sink.clone(),
    );
    sink.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    p.consume(spans(2)).await.unwrap();
    assert!(sink.got.lock().unwrap().is_empty());
    sink.refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    p.consume(spans(1)).await.unwrap();
    // The refused 2 and the new 1 go out together.
    assert_eq!(*sink.got.lock().unwrap(), vec![3]);
}

#[tokio::test]
async fn refuses_new_data_beyond_its_bound() {
    let sink = Arc::new(Sink::default());
    sink.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let p = processor(
        BatchConfig {
            send_batch_size: 100_000,
            timeout: GoDuration(Duration::from_secs(3600)),
            ..Default::default()
        },
        sink.clone(),
    );
    let limit = p.config.pending_limit();
    p.consume(spans(limit)).await.unwrap();
    let err = p.consume(spans(1)).await.unwrap_err();
    assert!(err.is_retryable());
}

#[test]
fn max_size_below_size_is_a_config_error() {
    let node =
        Node::from_yaml_str("c.yaml", "send_batch_size: 10\nsend_batch_max_size: 5\n").unwrap();
    let errors = BatchFactory.check(&node);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("send_batch_max_size"));
}

/// Keeps the encoded form of what it gets.
#[derive(Default)]
struct EncodedSink {
    got: Mutex<Vec<(Signal, Option<bytes::Bytes>)>>,
}

#[async_trait]
impl Consumer for EncodedSink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let encoded = batch.encoded().cloned();
        self.got
            .lock()
            .unwrap()
            .push((batch.signal().clone(), encoded));
        Ok(())
    }
}

fn encoded(b: Batch) -> Batch {
    let mut bytes = Vec::new();
    b.signal().encode_request(&mut bytes);
    b.with_encoded(bytes.into())
}

#[tokio::test]
async fn keeps_the_encoded_request_only_while_every_part_has_one() {
    use prost::Message;
    let sink = Arc::new(EncodedSink::default());
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "batch");
    let config = BatchConfig {
        send_batch_size: 5,
        timeout: GoDuration(Duration::from_secs(3600)),
        ..Default::default()
    };
    let p = BatchProcessor::start(ctx, config, SignalKind::Traces, sink.clone());
    p.consume(encoded(spans(2))).await.unwrap();
    p.consume(encoded(spans(3))).await.unwrap();
    // A part without an encoded form makes the merged batch encode afresh.
    p.consume(encoded(spans(2))).await.unwrap();
    p.consume(spans(3)).await.unwrap();
    let got = sink.got.lock().unwrap();
    assert_eq!(got.len(), 2);
    let (data, bytes) = &got[0];
    let decoded = confluo_pipeline::proto::trace_service::ExportTraceServiceRequest::decode(
        &bytes.as_ref().expect("both parts were encoded")[..],
    )
    .unwrap();
    assert_eq!(&Signal::Traces(decoded.resource_spans), data);
    assert!(got[1].1.is_none());
}

/// Records whether what it got was ever decoded.
#[derive(Default)]
struct LazySink {
    got: Mutex<Vec<(bool, usize, Batch)>>,
}

#[async_trait]
impl Consumer for LazySink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let decoded = batch.is_decoded();
        let items = batch.item_count();
        self.got.lock().unwrap().push((decoded, items, batch));
        Ok(())
    }
}

fn validated(b: Batch) -> Batch {
    let mut bytes = Vec::new();
    b.signal().encode_request(&mut bytes);
    let items = confluo_pipeline::otlp_wire::validate(SignalKind::Traces, &bytes).unwrap();
    Batch::from_validated(SignalKind::Traces, bytes.into(), items)
}

#[tokio::test]
async fn merges_undecoded_requests_without_decoding_them() {
    let sink = Arc::new(LazySink::default());
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "batch");
    let config = BatchConfig {
        send_batch_size: 5,
        timeout: GoDuration(Duration::from_secs(3600)),
        ..Default::default()
    };
    let p = BatchProcessor::start(ctx, config, SignalKind::Traces, sink.clone());
    let (a, b) = (spans(2), spans(3));
    let mut expected = a.signal().clone();
    expected.append(b.signal().clone()).unwrap();
    p.consume(validated(a)).await.unwrap();
    p.consume(validated(b)).await.unwrap();
    let got = sink.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (decoded, items, batch) = &got[0];
    assert!(
        !decoded,
        "a forwarding batch processor must not build the tree"
    );
    assert_eq!(*items, 5);
    assert!(batch.encoded().is_some());
    assert_eq!(
        batch.signal(),
        &expected,
        "the merged bytes decode to both parts"
    );
}

#[tokio::test]
async fn splits_undecoded_requests_above_the_max_size() {
    let sink = Arc::new(LazySink::default());
    let ctx = ComponentContext::for_tests(ComponentKind::Processor, "batch");
    let config = BatchConfig {
        send_batch_size: 4,
        send_batch_max_size: 4,
        timeout: GoDuration(Duration::from_secs(3600)),
        ..Default::default()
    };
    let p = BatchProcessor::start(ctx, config, SignalKind::Traces, sink.clone());
    p.consume(validated(spans(3))).await.unwrap();
    p.consume(validated(spans(3))).await.unwrap();
    let got = sink.got.lock().unwrap();
    let sizes: Vec<usize> = got.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(sizes, vec![4, 2]);
}
