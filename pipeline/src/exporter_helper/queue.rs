//! The in-memory sending queue with a lease / ack / nack API.
//!
//! An item's size stays charged to the queue from `push` until its lease is
//! acknowledged, so requests being sent or retried count against the bound
//! too: memory is bounded by `queue_size` whatever the backend does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

struct State<T> {
    items: VecDeque<(T, u64)>,
    /// Sizes of queued plus leased items.
    used: u64,
    closed: bool,
}

pub struct MemoryQueue<T> {
    state: Mutex<State<T>>,
    capacity: u64,
    not_empty: Notify,
    not_full: Notify,
}

/// Why a push did not enter the queue. The items come back to the caller.
#[derive(Debug)]
pub enum PushError<T> {
    Full(Vec<(T, u64)>),
    Closed(Vec<(T, u64)>),
}

/// An item taken out for sending. Its size is released by [`Lease::ack`];
/// [`Lease::nack`] puts it back at the front; dropping a lease acknowledges it.
pub struct Lease<T> {
    item: Option<T>,
    size: u64,
    queue: Arc<MemoryQueue<T>>,
}

impl<T> MemoryQueue<T> {
    pub fn new(capacity: u64) -> Arc<MemoryQueue<T>> {
        Arc::new(MemoryQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                used: 0,
                closed: false,
            }),
            capacity: capacity.max(1),
            not_empty: Notify::new(),
            not_full: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Charged size (queued + leased).
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    pub fn queued_len(&self) -> usize {
        self.lock().items.len()
    }

    /// Pushes all items or none: the parts of one batch enter together.
    /// A batch larger than the whole capacity is admitted into an empty
    /// queue, so that one oversize batch cannot be refused forever.
    pub fn try_push_all(&self, items: Vec<(T, u64)>) -> Result<(), PushError<T>> {
        let total: u64 = items.iter().map(|(_, s)| *s).sum();
        let mut st = self.lock();
        if st.closed {
            return Err(PushError::Closed(items));
        }
        if st.used + total > self.capacity && st.used > 0 {
            return Err(PushError::Full(items));
        }
        st.used += total;
        let n = items.len();
        st.items.extend(items);
        drop(st);
        for _ in 0..n {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    /// Waits for room, until the queue closes.
    pub async fn push_all_wait(&self, mut items: Vec<(T, u64)>) -> Result<(), PushError<T>> {
        loop {
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_push_all(items) {
                Ok(()) => return Ok(()),
                Err(PushError::Full(back)) => items = back,
                Err(closed) => return Err(closed),
            }
            notified.await;
        }
    }

    /// The next item, waiting for one; `None` once closed and empty.
    pub async fn lease(self: &Arc<Self>) -> Option<Lease<T>> {
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(lease) = self.try_lease() {
                return Some(lease);
            }
            if self.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    pub fn try_lease(self: &Arc<Self>) -> Option<Lease<T>> {
        let (item, size) = self.lock().items.pop_front()?;
        Some(Lease {
            item: Some(item),
            size,
            queue: self.clone(),
        })
    }

    /// No more pushes; leases continue until the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Removes everything still queued (used at the shutdown deadline).
    pub fn drain_remaining(&self) -> Vec<T> {
        let mut st = self.lock();
        let items: Vec<(T, u64)> = st.items.drain(..).collect();
        st.used -= items.iter().map(|(_, s)| *s).sum::<u64>();
        drop(st);
        self.not_full.notify_waiters();
        items.into_iter().map(|(t, _)| t).collect()
    }

    fn release(&self, size: u64) {
        let mut st = self.lock();
        st.used = st.used.saturating_sub(size);
        drop(st);
        self.not_full.notify_waiters();
    }
}

impl<T> Lease<T> {
    pub fn get(&self) -> &T {
        self.item
            .as_ref()
            .expect("lease holds its item until consumed")
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.item
            .as_mut()
            .expect("lease holds its item until consumed")
    }

    /// Replaces the leased item (e.g. by the retry subset of a partial
    /// failure), re-charging the queue for the new size.
    pub fn replace(&mut self, item: T, size: u64) {
        self.item = Some(item);
        let old = std::mem::replace(&mut self.size, size);
        if size < old {
            self.queue.release(old - size);
        } else {
            self.queue.lock().used += size - old;
        }
    }

    /// The size this lease holds charged to the queue.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Puts an item that was absorbed but could not be merged back at the
    /// front of the queue, moving `size` of this lease's charge with it.
    pub fn give_back(&mut self, item: T, size: u64) {
        let size = size.min(self.size);
        self.size -= size;
        self.queue.lock().items.push_front((item, size));
        self.queue.not_empty.notify_one();
    }

    /// Takes over another lease's charge (its item was merged into this one).
    pub fn absorb(&mut self, mut other: Lease<T>) -> T {
        self.size += other.size;
        other.size = 0;
        other
            .item
            .take()
            .expect("lease holds its item until consumed")
    }

    /// Done with the item: its size is released.
    pub fn ack(mut self) -> T {
        self.queue.release(self.size);
        self.size = 0;
        self.item
            .take()
            .expect("lease holds its item until consumed")
    }

    /// Back to the front of the queue (keeps its charge).
    pub fn nack(mut self) {
        if let Some(item) = self.item.take() {
            let size = std::mem::take(&mut self.size);
            self.queue.lock().items.push_front((item, size));
            self.queue.not_empty.notify_one();
        }
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        if self.size > 0 {
            self.queue.release(self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn bounded_until_acked() {
        let q = MemoryQueue::new(2);
        q.try_push_all(vec![("a", 1), ("b", 1)]).unwrap();
        assert!(matches!(
            q.try_push_all(vec![("c", 1)]),
            Err(PushError::Full(_))
        ));
        let a = q.lease().await.unwrap();
        // Leased but not acked: still charged.
        assert!(q.try_push_all(vec![("c", 1)]).is_err());
        assert_eq!(a.ack(), "a");
        q.try_push_all(vec![("c", 1)]).unwrap();
        assert_eq!(q.used(), 2);
    }

    #[tokio::test]
    async fn nack_returns_to_front_and_close_ends_leasing() {
        let q = MemoryQueue::new(10);
        q.try_push_all(vec![(1, 1), (2, 1)]).unwrap();
        let one = q.lease().await.unwrap();
        one.nack();
        assert_eq!(*q.lease().await.unwrap().get(), 1);
        q.close();
        assert!(matches!(
            q.try_push_all(vec![(3, 1)]),
            Err(PushError::Closed(_))
        ));
        assert_eq!(*q.lease().await.unwrap().get(), 2);
        assert!(q.lease().await.is_none());
    }

    #[tokio::test]
    async fn blocked_push_proceeds_when_room_appears() {
        let q = MemoryQueue::new(1);
        q.try_push_all(vec![(1, 1)]).unwrap();
        let q2 = q.clone();
        let pusher = tokio::spawn(async move { q2.push_all_wait(vec![(2, 1)]).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pusher.is_finished());
        q.lease().await.unwrap().ack();
        assert!(pusher.await.unwrap());
    }

    #[tokio::test]
    async fn give_back_returns_an_absorbed_item_to_the_front_with_its_charge() {
        let q = MemoryQueue::new(10);
        q.try_push_all(vec![("a", 2), ("b", 3), ("c", 1)]).unwrap();
        let mut a = q.lease().await.unwrap();
        let b = q.lease().await.unwrap();
        let item = a.absorb(b);
        assert_eq!(a.size(), 5);
        a.give_back(item, 3);
        assert_eq!((a.size(), q.used()), (2, 6));
        assert_eq!(*q.lease().await.unwrap().get(), "b");
    }

    #[tokio::test]
    async fn replace_recharges() {
        let q = MemoryQueue::new(10);
        q.try_push_all(vec![("big", 8)]).unwrap();
        let mut l = q.lease().await.unwrap();
        l.replace("small", 2);
        assert_eq!(q.used(), 2);
        drop(l);
        assert_eq!(q.used(), 0);
    }
}
