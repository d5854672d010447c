//! The exporter helper: what every exporter needs between "a batch arrived"
//! and "the backend has it" — encoding once at enqueue, the sending queue,
//! batching at dequeue, per-attempt timeout, retry with backoff and jitter
//! (honouring `Retry-After` / gRPC `RetryInfo`), partial failures and the
//! `otelcol_exporter_*` metrics. After the Collector's `exporterhelper`.
//!
//! An exporter implements [`Sender`] (encode + send one request) and wraps it
//! in a [`QueuedExporter`], which implements the [`Exporter`] contract.

pub mod queue;
pub mod settings;

pub use settings::{
    default_timeout, parse_retry_after, HelperSettings, QueueBatchSettings, QueueSettings,
    RetrySettings, Sizer,
};

use crate::batch::{Acks, Batch, Settlement};
use crate::component::{ComponentContext, ComponentError, Exporter};
use crate::consumer::{ConsumeError, Consumer};
use crate::telemetry::{item_unit, ExporterMetrics};
use async_trait::async_trait;
use confluo_config::{SignalKind, SignalSet};
use queue::{Lease, MemoryQueue, PushError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One encoded request, ready for the wire.
pub trait Request: Send + Sync + 'static {
    fn item_count(&self) -> usize;
    fn byte_size(&self) -> usize;
    /// Merges `other` into `self` for batching at dequeue; gives it back when
    /// the two cannot be merged (different tenant, index, encoding…).
    fn merge(&mut self, other: Self) -> Result<(), Self>
    where
        Self: Sized,
    {
        Err(other)
    }
}

/// What one send attempt came to.
#[derive(Debug)]
pub enum SendOutcome<R> {
    Sent,
    /// The whole request may succeed later.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// The backend will never take this request.
    Permanent {
        error: String,
    },
    /// Some items were taken, `rejected` were refused for good (counted, not
    /// retried) and `retry` holds the items worth sending again.
    Partial {
        retry: Option<R>,
        rejected: usize,
        error: String,
    },
}

/// A backend protocol: how to encode a batch and send one request.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    type Request: Request;

    /// Encodes a batch into wire requests, once, when it enters the queue.
    /// An error is permanent: the data can never be encoded.
    fn encode(&self, batch: &Batch) -> Result<Vec<Self::Request>, String>;

    async fn send(&self, request: &Self::Request) -> SendOutcome<Self::Request>;

    async fn start(&self) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Called after the queue drained (e.g. to flush and close a file).
    async fn shutdown(&self) {}
}

struct Queued<R> {
    request: R,
    kind: SignalKind,
    acks: Acks,
}

struct Shared<S: Sender> {
    sender: S,
    settings: HelperSettings,
    metrics: ExporterMetrics,
    id: String,
    queue: Option<Arc<MemoryQueue<Queued<S::Request>>>>,
    /// Cancelled at the shutdown deadline: retries stop waiting.
    give_up: CancellationToken,
    /// Cancelled when the service shuts down: blocked enqueues are refused.
    stopping: CancellationToken,
}

/// An [`Exporter`] made of a [`Sender`] plus the helper's queue and retry.
pub struct QueuedExporter<S: Sender> {
    shared: Arc<Shared<S>>,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl<S: Sender> QueuedExporter<S> {
    pub fn new(
        ctx: &ComponentContext,
        sender: S,
        settings: HelperSettings,
        signals: SignalSet,
    ) -> Result<Self, ComponentError> {
        if let Some(storage) = &settings.queue.storage {
            return Err(ComponentError::start(format!(
                "{}: sending_queue.storage `{storage}`: the persistent queue is not available in this version; remove `storage` to use the in-memory queue",
                ctx.id
            )));
        }
        let metrics = ExporterMetrics::new(&ctx.telemetry, &ctx.id.to_string(), signals);
        let queue = settings.queue.enabled.then(|| {
            let q = MemoryQueue::new(settings.queue.queue_size);
            metrics.queue_capacity.set(q.capacity() as i64);
            q
        });
        Ok(QueuedExporter {
            shared: Arc::new(Shared {
                sender,
                settings,
                metrics,
                id: ctx.id.to_string(),
                queue,
                give_up: CancellationToken::new(),
                stopping: ctx.shutdown.child_token(),
            }),
            workers: Mutex::new(Vec::new()),
        })
    }

    pub fn sender(&self) -> &S {
        &self.shared.sender
    }
}

fn size_of<R: Request>(sizer: Sizer, r: &R) -> u64 {
    match sizer {
        Sizer::Requests => 1,
        Sizer::Items => r.item_count() as u64,
        Sizer::Bytes => r.byte_size() as u64,
    }
}

/// How a request ended after all its attempts.
enum Final {
    Delivered,
    /// Given up; `retryable` tells whether a caller waiting for the result
    /// should try again.
    Failed {
        retryable: bool,
        error: String,
    },
}

impl<S: Sender> Shared<S> {
    /// Sends with timeout and retry until delivered, permanently refused,
    /// out of retry time, or the shutdown deadline passes.
    async fn send_with_retry(&self, kind: SignalKind, request: &mut S::Request) -> Final {
        let retry = &self.settings.retry;
        let started = Instant::now();
        let mut interval = retry.initial_interval.0;
        loop {
            let items = request.item_count();
            let outcome = tokio::select! {
                r = tokio::time::timeout(self.settings.timeout, self.sender.send(request)) => match r {
                    Ok(o) => o,
                    Err(_) => SendOutcome::Retry {
                        error: format!("request timed out after {:?}", self.settings.timeout),
                        retry_after: None,
                    },
                },
                _ = self.give_up.cancelled() => SendOutcome::Retry {
                    error: "shutdown deadline reached while sending".into(),
                    retry_after: None,
                },
            };
            let (error, retry_after) = match outcome {
                SendOutcome::Sent => {
                    self.metrics.sent(kind, items);
                    return Final::Delivered;
                }
                SendOutcome::Permanent { error } => {
                    self.metrics.send_failed(kind, items);
                    tracing::error!(
                        event = "export_rejected",
                        exporter = %self.id,
                        items,
                        unit = item_unit(kind),
                        error = %error,
                        "dropping data the backend refused permanently"
                    );
                    return Final::Failed {
                        retryable: false,
                        error,
                    };
                }
                SendOutcome::Partial {
                    retry: retry_part,
                    rejected,
                    error,
                } => {
                    let retry_items = retry_part.as_ref().map_or(0, Request::item_count);
                    self.metrics
                        .sent(kind, items.saturating_sub(rejected + retry_items));
                    if rejected > 0 {
                        self.metrics.send_failed(kind, rejected);
                        tracing::warn!(
                            event = "export_partially_rejected",
                            exporter = %self.id,
                            rejected,
                            unit = item_unit(kind),
                            error = %error,
                            "the backend refused part of a request for good; not retrying those items"
                        );
                    }
                    match retry_part {
                        None => return Final::Delivered,
                        Some(part) => {
                            // The lease keeps its original charge while the
                            // smaller retry subset is retried: a safe overestimate.
                            *request = part;
                            self.metrics.send_failed(kind, retry_items);
                            (error, None)
                        }
                    }
                }
                SendOutcome::Retry { error, retry_after } => {
                    self.metrics.send_failed(kind, items);
                    (error, retry_after)
                }
            };
            if !retry.enabled || self.give_up.is_cancelled() {
                tracing::error!(
                    event = "export_failed",
                    exporter = %self.id,
                    items = request.item_count(),
                    unit = item_unit(kind),
                    error = %error,
                    "dropping data: sending failed and retry is disabled or the shutdown deadline passed"
                );
                return Final::Failed {
                    retryable: true,
                    error,
                };
            }
            let jitter = retry.randomization_factor.clamp(0.0, 1.0);
            let backoff = interval.mul_f64(1.0 - jitter + 2.0 * jitter * fastrand::f64());
            let delay = retry_after.unwrap_or(backoff);
            let max_elapsed = retry.max_elapsed_time.0;
            if !max_elapsed.is_zero() && started.elapsed() + delay > max_elapsed {
                tracing::error!(
                    event = "export_failed",
                    exporter = %self.id,
                    items = request.item_count(),
                    unit = item_unit(kind),
                    error = %error,
                    elapsed_s = started.elapsed().as_secs_f64(),
                    "dropping data: no more retries (max_elapsed_time)"
                );
                return Final::Failed {
                    retryable: true,
                    error,
                };
            }
            tracing::warn!(
                event = "export_retry",
                exporter = %self.id,
                error = %error,
                delay_ms = delay.as_millis() as u64,
                "sending failed, will retry"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.give_up.cancelled() => {}
            }
            interval = interval
                .mul_f64(retry.multiplier.max(1.0))
                .min(retry.max_interval.0);
        }
    }

    fn settle(acks: Acks, fin: &Final) {
        acks.settle(match fin {
            Final::Delivered => Settlement::Delivered,
            Final::Failed {
                retryable: false, ..
            } => Settlement::Dropped,
            Final::Failed { .. } => Settlement::Failed,
        });
    }

    async fn worker(self: Arc<Self>, queue: Arc<MemoryQueue<Queued<S::Request>>>) {
        while let Some(mut lease) = queue.lease().await {
            if let Some(batch) = &self.settings.queue.batch {
                self.fill_batch(&queue, &mut lease, batch).await;
            }
            self.metrics.queue_size.set(queue.used() as i64);
            let kind = lease.get().kind;
            let fin = self
                .send_with_retry(kind, &mut lease.get_mut().request)
                .await;
            let done = lease.ack();
            self.metrics.queue_size.set(queue.used() as i64);
            Self::settle(done.acks, &fin);
        }
    }

    /// Batching at dequeue: merge further requests into the leased one until
    /// `min_size` items, `max_size`, or `flush_timeout`.
    async fn fill_batch(
        &self,
        queue: &Arc<MemoryQueue<Queued<S::Request>>>,
        lease: &mut Lease<Queued<S::Request>>,
        batch: &QueueBatchSettings,
    ) {
        let deadline = Instant::now() + batch.flush_timeout.0;
        let measure = |r: &S::Request| size_of(batch.sizer, r);
        loop {
            let current = measure(&lease.get().request);
            if current >= batch.min_size {
                return;
            }
            let next = match queue.try_lease() {
                Some(l) => l,
                None => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() || queue.is_closed() {
                        return;
                    }
                    match tokio::time::timeout(remaining, queue.lease()).await {
                        Ok(Some(l)) => l,
                        _ => return,
                    }
                }
            };
            let fits =
                batch.max_size == 0 || current + measure(&next.get().request) <= batch.max_size;
            if !fits || next.get().kind != lease.get().kind {
                next.nack();
                return;
            }
            let next_size = next.size();
            let Queued { request, acks, .. } = lease.absorb(next);
            let target = lease.get_mut();
            match target.request.merge(request) {
                Ok(()) => target.acks.merge(acks),
                Err(unmerged) => {
                    // Cannot merge (different partition): it goes back to the
                    // front with its charge, to be sent next on its own.
                    let kind = target.kind;
                    lease.give_back(
                        Queued {
                            request: unmerged,
                            kind,
                            acks,
                        },
                        next_size,
                    );
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl<S: Sender> Consumer for QueuedExporter<S> {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let shared = &self.shared;
        let kind = batch.kind();
        let items = batch.item_count();
        if items == 0 {
            batch.acks.take().settle(Settlement::Delivered);
            return Ok(());
        }
        let requests = match shared.sender.encode(&batch) {
            Ok(r) => r,
            Err(error) => {
                shared.metrics.send_failed(kind, items);
                tracing::error!(event = "export_encode_failed", exporter = %shared.id, items, error = %error);
                batch.acks.take().settle(Settlement::Dropped);
                return Err(ConsumeError::permanent(error));
            }
        };
        let mut acks = batch.acks.take();
        let Some(queue) = &shared.queue else {
            // No queue: send in the caller's task and report the result.
            let mut last_failure = None;
            for mut request in requests {
                if let Final::Failed { retryable, error } =
                    shared.send_with_retry(kind, &mut request).await
                {
                    last_failure = Some((retryable, error));
                }
            }
            return match last_failure {
                None => {
                    acks.settle(Settlement::Delivered);
                    Ok(())
                }
                Some((retryable, error)) => {
                    acks.settle(Settlement::Failed);
                    Err(if retryable {
                        ConsumeError::retryable(error)
                    } else {
                        ConsumeError::permanent(error)
                    })
                }
            };
        };
        let waiter = if shared.settings.queue.wait_for_result {
            let (own, waiter) = Acks::tracked();
            acks.merge(own);
            Some(waiter)
        } else {
            None
        };
        let sizer = shared.settings.queue.sizer;
        let n = requests.len();
        let mut entries = Vec::with_capacity(n);
        for (i, request) in requests.into_iter().enumerate() {
            let size = size_of(sizer, &request);
            let part_acks = if i + 1 == n {
                acks.take()
            } else {
                acks.share()
            };
            entries.push((
                Queued {
                    request,
                    kind,
                    acks: part_acks,
                },
                size,
            ));
        }
        let pushed = if shared.settings.queue.block_on_overflow {
            tokio::select! {
                r = queue.push_all_wait(entries) => r,
                _ = shared.stopping.cancelled() => Err(PushError::Closed(Vec::new())),
            }
        } else {
            queue.try_push_all(entries)
        };
        if let Err(refused) = pushed {
            shared.metrics.enqueue_failed(kind, items);
            let (reason, entries) = match refused {
                PushError::Full(e) => ("sending queue is full", e),
                PushError::Closed(e) => ("exporter is shutting down", e),
            };
            tracing::warn!(event = "enqueue_failed", exporter = %shared.id, items, reason);
            for (q, _) in entries {
                // Refused, not lost: the caller gets a retryable error and resends.
                q.acks.settle(Settlement::Failed);
            }
            return Err(ConsumeError::Retryable {
                reason: format!("{}: {reason}", shared.id),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        shared.metrics.queue_size.set(queue.used() as i64);
        match waiter {
            None => Ok(()),
            Some(w) => {
                if w.wait().await {
                    Ok(())
                } else {
                    Err(ConsumeError::retryable(format!(
                        "{}: export failed",
                        shared.id
                    )))
                }
            }
        }
    }
}

#[async_trait]
impl<S: Sender> Exporter for QueuedExporter<S> {
    async fn start(&self) -> Result<(), ComponentError> {
        self.shared.sender.start().await?;
        if let Some(queue) = &self.shared.queue {
            let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..self.shared.settings.queue.num_consumers.max(1) {
                workers.push(tokio::spawn(self.shared.clone().worker(queue.clone())));
            }
        }
        Ok(())
    }

    async fn shutdown(&self, deadline: Instant) -> Result<(), ComponentError> {
        let shared = &self.shared;
        shared.stopping.cancel();
        if let Some(queue) = &shared.queue {
            queue.close();
            let workers: Vec<_> =
                std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
            let drain = futures_util::future::join_all(workers);
            tokio::pin!(drain);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(remaining, &mut drain).await.is_err() {
                // Out of time: stop retrying, and count what never left.
                shared.give_up.cancel();
                let left = queue.drain_remaining();
                let mut dropped = 0;
                for q in left {
                    dropped += q.request.item_count();
                    shared.metrics.send_failed(q.kind, q.request.item_count());
                    q.acks.settle(Settlement::Failed);
                }
                if dropped > 0 {
                    tracing::error!(event = "shutdown_dropped", exporter = %shared.id, items = dropped, "shutdown deadline reached with data still queued");
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
            }
            shared.metrics.queue_size.set(queue.used() as i64);
        }
        shared.give_up.cancel();
        shared.sender.shutdown().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
