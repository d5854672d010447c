//! The consumer contract: anything that accepts a batch.

use crate::batch::Batch;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Why a batch was not taken into custody.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    /// Try again later: backpressure, a full queue, a deadline, shutting down.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The data is invalid and will never be accepted.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl ConsumeError {
    pub fn retryable(reason: impl Into<String>) -> ConsumeError {
        ConsumeError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> ConsumeError {
        ConsumeError::Permanent {
            reason: reason.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ConsumeError::Retryable { .. })
    }

    /// The delay a receiver should suggest to its client.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConsumeError::Retryable { retry_after, .. } => *retry_after,
            ConsumeError::Permanent { .. } => None,
        }
    }
}

/// Accepts batches. Returning `Ok` means the batch is in custody: queued for
/// every destination or held by a bounded stateful processor.
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError>;
}

/// Hands one batch to several consumers, sharing the data: only a branch that
/// mutates gets a copy (see [`Batch::signal_mut`]).
pub struct FanOut {
    branches: Vec<Arc<dyn Consumer>>,
}

impl FanOut {
    /// A single branch needs no fan-out: the consumer itself is returned.
    pub fn build(branches: Vec<Arc<dyn Consumer>>) -> Arc<dyn Consumer> {
        if branches.len() == 1 {
            return branches.into_iter().next().expect("one branch");
        }
        Arc::new(FanOut { branches })
    }
}

#[async_trait]
impl Consumer for FanOut {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let Some((last, rest)) = self.branches.split_last() else {
            return Ok(());
        };
        let mut calls = Vec::with_capacity(self.branches.len());
        for branch in rest {
            calls.push(branch.consume(batch.share()));
        }
        calls.push(last.consume(batch));
        // A retryable refusal wins: the client resends, and branches that
        // accepted see the data again (at-least-once, documented).
        let mut first_error: Option<ConsumeError> = None;
        for result in futures_util::future::join_all(calls).await {
            if let Err(e) = result {
                match &first_error {
                    Some(ConsumeError::Retryable { .. }) => {}
                    _ if e.is_retryable() || first_error.is_none() => first_error = Some(e),
                    _ => {}
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signal::Signal;
    use std::sync::Mutex;

    /// Collects what it consumes; can be told to refuse.
    #[derive(Default)]
    pub struct Sink {
        pub got: Mutex<Vec<Signal>>,
        pub refuse: Mutex<Option<ConsumeError>>,
    }

    #[async_trait]
    impl Consumer for Sink {
        async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
            if let Some(e) = self.refuse.lock().unwrap().clone() {
                return Err(e);
            }
            self.got.lock().unwrap().push(batch.take_signal());
            Ok(())
        }
    }

    #[tokio::test]
    async fn fan_out_delivers_to_every_branch_and_prefers_retryable_errors() {
        let a = Arc::new(Sink::default());
        let b = Arc::new(Sink::default());
        let fan = FanOut::build(vec![a.clone(), b.clone()]);
        let data = crate::signal::tests::traces(1, 1, 3);
        fan.consume(Batch::new(data.clone())).await.unwrap();
        assert_eq!(a.got.lock().unwrap()[0], data);
        assert_eq!(b.got.lock().unwrap()[0], data);

        *a.refuse.lock().unwrap() = Some(ConsumeError::permanent("bad"));
        *b.refuse.lock().unwrap() = Some(ConsumeError::retryable("full"));
        let err = fan.consume(Batch::new(data)).await.unwrap_err();
        assert!(err.is_retryable());
    }
}
