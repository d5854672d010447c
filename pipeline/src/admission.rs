//! The global admission budget: receivers take the bytes of a request from it
//! before decompressing or decoding, so that memory is bounded before any
//! work is done (the Collector's memory_limiter only refuses after decoding).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default budget for request bytes in flight across all receivers.
pub const DEFAULT_ADMISSION_BYTES: usize = 256 << 20;

#[derive(Clone, Debug)]
pub struct Admission {
    budget: Arc<Semaphore>,
    capacity: usize,
}

/// Bytes held while a request is decoded and handed to the pipeline.
#[derive(Debug)]
pub struct AdmissionPermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Admission {
    pub fn new(capacity_bytes: usize) -> Admission {
        let capacity = capacity_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Admission {
            budget: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Takes `bytes` from the budget without waiting; `None` means the
    /// process is at its limit and the receiver should answer with
    /// backpressure. A request larger than the whole budget takes all of it.
    pub fn try_admit(&self, bytes: usize) -> Option<AdmissionPermit> {
        let want = bytes.clamp(1, self.capacity).min(u32::MAX as usize) as u32;
        self.budget
            .clone()
            .try_acquire_many_owned(want)
            .ok()
            .map(|p| AdmissionPermit(Some(p)))
    }

    pub fn available(&self) -> usize {
        self.budget.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_when_exhausted_and_recovers_on_release() {
        let a = Admission::new(100);
        let p1 = a.try_admit(60).unwrap();
        assert!(a.try_admit(60).is_none());
        drop(p1);
        assert!(a.try_admit(60).is_some());
    }
}
