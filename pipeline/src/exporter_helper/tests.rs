use super::*;
use crate::signal::tests::traces;
use confluo_config::ComponentKind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A request of `n` items; merging adds them up.
#[derive(Debug)]
struct Items(usize);

impl Request for Items {
    fn item_count(&self) -> usize {
        self.0
    }
    fn byte_size(&self) -> usize {
        self.0 * 10
    }
    fn merge(&mut self, other: Self) -> Result<(), Self> {
        self.0 += other.0;
        Ok(())
    }
}

/// Answers from a script, then `Sent` forever; records what it saw.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<SendOutcome<Items>>>,
    attempts: AtomicUsize,
    delivered: Mutex<Vec<usize>>,
    stall: bool,
}

#[async_trait]
impl Sender for Scripted {
    type Request = Items;
    fn encode(&self, batch: &Batch) -> Result<Vec<Items>, String> {
        Ok(vec![Items(batch.item_count())])
    }
    async fn send(&self, r: &Items) -> SendOutcome<Items> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.stall {
            std::future::pending::<()>().await;
        }
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(SendOutcome::Sent) | None => {
                self.delivered.lock().unwrap().push(r.0);
                SendOutcome::Sent
            }
            Some(other) => other,
        }
    }
}

fn fast_retry() -> RetrySettings {
    RetrySettings {
        initial_interval: confluo_config::GoDuration(Duration::from_millis(1)),
        max_interval: confluo_config::GoDuration(Duration::from_millis(5)),
        ..RetrySettings::default()
    }
}

fn exporter(
    sender: Scripted,
    queue: QueueSettings,
) -> (QueuedExporter<Scripted>, ComponentContext) {
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "test/x");
    let settings = HelperSettings {
        timeout: Duration::from_secs(5),
        retry: fast_retry(),
        queue,
    };
    (
        QueuedExporter::new(&ctx, sender, settings, SignalSet::ALL).unwrap(),
        ctx,
    )
}

fn metric(ctx: &ComponentContext, line_start: &str) -> u64 {
    let text = ctx.telemetry.render();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in\n{text}"))
}

#[tokio::test]
async fn retries_until_delivered_and_counts_failed_attempts() {
    let sender = Scripted::default();
    for _ in 0..2 {
        sender.script.lock().unwrap().push_back(SendOutcome::Retry {
            error: "503".into(),
            retry_after: None,
        });
    }
    let (exp, ctx) = exporter(sender, QueueSettings::default());
    exp.start().await.unwrap();
    exp.consume(Batch::new(traces(1, 1, 4))).await.unwrap();
    exp.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*exp.sender().delivered.lock().unwrap(), vec![4]);
    assert_eq!(exp.sender().attempts.load(Ordering::SeqCst), 3);
    assert_eq!(metric(&ctx, "otelcol_exporter_sent_spans{"), 4);
    assert_eq!(metric(&ctx, "otelcol_exporter_send_failed_spans{"), 8);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let sender = Scripted::default();
    sender
        .script
        .lock()
        .unwrap()
        .push_back(SendOutcome::Permanent {
            error: "400".into(),
        });
    let (exp, _ctx) = exporter(sender, QueueSettings::default());
    exp.start().await.unwrap();
    exp.consume(Batch::new(traces(1, 1, 2))).await.unwrap();
    exp.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(exp.sender().attempts.load(Ordering::SeqCst), 1);
    assert!(exp.sender().delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn partial_failure_retries_only_the_subset() {
    let sender = Scripted::default();
    sender
        .script
        .lock()
        .unwrap()
        .push_back(SendOutcome::Partial {
            retry: Some(Items(2)),
            rejected: 3,
            error: "some items 429, some 400".into(),
        });
    let (exp, ctx) = exporter(sender, QueueSettings::default());
    exp.start().await.unwrap();
    exp.consume(Batch::new(traces(1, 1, 10))).await.unwrap();
    exp.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*exp.sender().delivered.lock().unwrap(), vec![2]);
    // 5 sent in the first attempt, 2 on retry.
    assert_eq!(metric(&ctx, "otelcol_exporter_sent_spans{"), 7);
}

#[tokio::test]
async fn full_queue_refuses_retryably_and_counts_enqueue_failures() {
    let sender = Scripted {
        stall: true,
        ..Default::default()
    };
    let queue = QueueSettings {
        queue_size: 2,
        num_consumers: 1,
        ..QueueSettings::default()
    };
    let (exp, ctx) = exporter(sender, queue);
    exp.start().await.unwrap();
    exp.consume(Batch::new(traces(1, 1, 1))).await.unwrap();
    exp.consume(Batch::new(traces(1, 1, 1))).await.unwrap();
    let err = exp.consume(Batch::new(traces(1, 1, 3))).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(err.retry_after().is_some());
    assert_eq!(metric(&ctx, "otelcol_exporter_enqueue_failed_spans{"), 3);
    assert_eq!(metric(&ctx, "otelcol_exporter_queue_capacity{"), 2);
    exp.shutdown(Instant::now() + Duration::from_millis(100))
        .await
        .unwrap();
    // The stalled request and the queued one were dropped at the deadline, counted.
    assert!(metric(&ctx, "otelcol_exporter_send_failed_spans{") >= 1);
}

#[tokio::test]
async fn batches_at_dequeue() {
    let sender = Scripted::default();
    let queue = QueueSettings {
        num_consumers: 1,
        batch: Some(QueueBatchSettings {
            min_size: 6,
            flush_timeout: confluo_config::GoDuration(Duration::from_secs(5)),
            ..QueueBatchSettings::default()
        }),
        ..QueueSettings::default()
    };
    let (exp, _ctx) = exporter(sender, queue);
    for _ in 0..3 {
        exp.consume(Batch::new(traces(1, 1, 2))).await.unwrap();
    }
    // Workers start after the three requests are queued, so they merge.
    exp.start().await.unwrap();
    exp.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*exp.sender().delivered.lock().unwrap(), vec![6]);
}

#[tokio::test]
async fn wait_for_result_reports_failure_to_the_caller() {
    let sender = Scripted::default();
    sender
        .script
        .lock()
        .unwrap()
        .push_back(SendOutcome::Permanent {
            error: "401".into(),
        });
    let queue = QueueSettings {
        wait_for_result: true,
        ..QueueSettings::default()
    };
    let (exp, _ctx) = exporter(sender, queue);
    exp.start().await.unwrap();
    // Permanent rejection settles as dropped, which is not a failure of custody.
    exp.consume(Batch::new(traces(1, 1, 1))).await.unwrap();
    exp.consume(Batch::new(traces(1, 1, 1))).await.unwrap();
    exp.shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*exp.sender().delivered.lock().unwrap(), vec![1]);
}

#[tokio::test]
async fn persistent_storage_is_refused_with_a_clear_error() {
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "test/x");
    let settings = HelperSettings {
        timeout: Duration::from_secs(1),
        retry: fast_retry(),
        queue: QueueSettings {
            storage: Some("file_storage".into()),
            ..QueueSettings::default()
        },
    };
    let err = QueuedExporter::new(&ctx, Scripted::default(), settings, SignalSet::ALL)
        .err()
        .unwrap();
    assert!(err.to_string().contains("persistent queue"));
}
