//! What travels through a pipeline: data plus the context it arrived with.

use crate::signal::Signal;
use confluo_config::SignalKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::watch;

/// Who sent a batch: request metadata, the authenticated identity, the tenant.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub addr: Option<SocketAddr>,
    /// Request headers / gRPC metadata a component asked to keep (lower-case names).
    pub metadata: Vec<(String, String)>,
    pub auth_subject: Option<String>,
    pub tenant: Option<String>,
}

/// The context shared by every part of one incoming request.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub client: ClientInfo,
    /// The caller's deadline, when the protocol carries one (gRPC `grpc-timeout`).
    pub deadline: Option<Instant>,
}

impl RequestContext {
    pub fn shared_default() -> Arc<RequestContext> {
        static DEFAULT: std::sync::OnceLock<Arc<RequestContext>> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| Arc::new(RequestContext::default()))
            .clone()
    }
}

/// A batch: the signal (shared between fan-out branches until one mutates it),
/// its context, its wire size as received and the acknowledgement handle.
#[derive(Debug)]
pub struct Batch {
    data: Arc<Data>,
    pub ctx: Arc<RequestContext>,
    /// Bytes on the wire as the receiver got them (0 when unknown).
    pub wire_bytes: usize,
    pub acks: Acks,
    /// The OTLP protobuf export request this data was decoded from, while the
    /// data is unchanged: an OTLP exporter sends these bytes instead of
    /// encoding again. Any mutable access drops it.
    encoded: Option<bytes::Bytes>,
}

/// The signal, or the protobuf it will be decoded from on first use.
///
/// Receivers of OTLP protobuf validate the bytes (`otlp_wire::validate`) and
/// hand them on undecoded: a pipeline that only forwards never pays for the
/// tree. The first component that reads the data decodes it, once; the
/// decoded tree is then shared by every branch like any other.
#[derive(Debug)]
struct Data {
    kind: SignalKind,
    /// Items in `source` (counted by the validation), while not decoded.
    source_items: usize,
    /// A validated export request of `kind`, while `signal` is unset.
    source: Option<bytes::Bytes>,
    signal: OnceLock<Signal>,
}

impl Data {
    fn decoded(signal: Signal) -> Data {
        Data {
            kind: signal.kind(),
            source_items: 0,
            source: None,
            signal: OnceLock::from(signal),
        }
    }

    fn signal(&self) -> &Signal {
        self.signal.get_or_init(|| match &self.source {
            Some(bytes) => decode_validated(self.kind, bytes),
            None => Signal::empty(self.kind),
        })
    }

    /// Decoded and owned, the source dropped: the data is about to change.
    fn signal_mut(&mut self) -> &mut Signal {
        self.signal();
        self.source = None;
        self.signal.get_mut().expect("decoded just above")
    }

    fn item_count(&self) -> usize {
        match self.signal.get() {
            Some(s) => s.item_count(),
            None => self.source_items,
        }
    }
}

impl Clone for Data {
    /// A branch about to mutate copies the tree if decoded, else only the
    /// (reference-counted) bytes.
    fn clone(&self) -> Data {
        match self.signal.get() {
            Some(s) => Data::decoded(s.clone()),
            None => Data {
                kind: self.kind,
                source_items: self.source_items,
                source: self.source.clone(),
                signal: OnceLock::new(),
            },
        }
    }
}

/// Decodes bytes `otlp_wire::validate` accepted. It accepts exactly what
/// prost accepts (a differential test holds it to that), so this cannot
/// fail; if it ever did, the data is reported lost rather than panicking.
fn decode_validated(kind: SignalKind, bytes: &[u8]) -> Signal {
    match Signal::decode_request(kind, bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(
                event = "lazy_decode_failed",
                signal = %kind,
                bytes = bytes.len(),
                error = %e,
                "validated OTLP protobuf failed to decode: the data of this batch is lost (a bug; please report it)"
            );
            Signal::empty(kind)
        }
    }
}

impl Batch {
    pub fn new(signal: Signal) -> Batch {
        Batch {
            data: Arc::new(Data::decoded(signal)),
            ctx: RequestContext::shared_default(),
            wire_bytes: 0,
            acks: Acks::none(),
            encoded: None,
        }
    }

    /// A batch of an OTLP protobuf export request that
    /// [`crate::otlp_wire::validate`] accepted with `items` items; it is
    /// decoded only if a component reads it.
    pub fn from_validated(kind: SignalKind, encoded: bytes::Bytes, items: usize) -> Batch {
        Batch {
            data: Arc::new(Data {
                kind,
                source_items: items,
                source: Some(encoded.clone()),
                signal: OnceLock::new(),
            }),
            ctx: RequestContext::shared_default(),
            wire_bytes: 0,
            acks: Acks::none(),
            encoded: Some(encoded),
        }
    }

    /// Attaches the protobuf export request the data was decoded from. The
    /// caller guarantees the bytes decode to exactly this signal.
    pub fn with_encoded(mut self, encoded: bytes::Bytes) -> Batch {
        self.encoded = Some(encoded);
        self
    }

    /// The protobuf export request of this (unchanged) data, if known.
    pub fn encoded(&self) -> Option<&bytes::Bytes> {
        self.encoded.as_ref()
    }

    /// Takes the encoded request out (for processors that merge batches).
    pub fn take_encoded(&mut self) -> Option<bytes::Bytes> {
        self.encoded.take()
    }

    pub fn with_context(signal: Signal, ctx: Arc<RequestContext>) -> Batch {
        Batch {
            ctx,
            ..Batch::new(signal)
        }
    }

    pub fn kind(&self) -> SignalKind {
        self.data.kind
    }

    /// Whether the data is still only protobuf bytes (nothing read it yet).
    pub fn is_decoded(&self) -> bool {
        self.data.signal.get().is_some()
    }

    /// The data, decoded on first use.
    pub fn signal(&self) -> &Signal {
        self.data.signal()
    }

    /// Mutable access for processors that change data. Copies the tree only
    /// when another fan-out branch still shares it; the last holder mutates in place.
    pub fn signal_mut(&mut self) -> &mut Signal {
        self.encoded = None;
        Arc::make_mut(&mut self.data).signal_mut()
    }

    /// Mutable access for a processor that often changes nothing (redaction
    /// of data with nothing to redact): `f` returns whether it changed the
    /// data, and when it did not, the protobuf pass-through form is kept, so
    /// an OTLP exporter still sends the received bytes without encoding.
    pub fn modify<R>(&mut self, f: impl FnOnce(&mut Signal) -> (R, bool)) -> R {
        let encoded = self.encoded.take();
        let (result, changed) = f(Arc::make_mut(&mut self.data).signal_mut());
        if !changed {
            self.encoded = encoded;
        }
        result
    }

    /// The validated protobuf request, while nothing has decoded it: a
    /// processor may rewrite these bytes instead of decoding the tree.
    pub fn undecoded(&self) -> Option<&bytes::Bytes> {
        match self.data.signal.get() {
            Some(_) => None,
            None => self.data.source.as_ref(),
        }
    }

    /// Replaces the undecoded request by `rewritten`: the same kind of
    /// request with the same items (a rewrite of strings and attributes),
    /// which the caller built from [`Batch::undecoded`] bytes so that it is
    /// valid. Other fan-out branches keep the original.
    pub fn replace_undecoded(&mut self, rewritten: bytes::Bytes) {
        debug_assert_eq!(
            crate::otlp_wire::validate(self.data.kind, &rewritten),
            Ok(self.data.item_count()),
            "a rewrite must stay a valid request with the same items"
        );
        self.data = Arc::new(Data {
            kind: self.data.kind,
            source_items: self.data.item_count(),
            source: Some(rewritten.clone()),
            signal: OnceLock::new(),
        });
        self.encoded = Some(rewritten);
    }

    /// Takes the data out, copying only if it is still shared.
    pub fn take_signal(&mut self) -> Signal {
        self.encoded = None;
        let kind = self.data.kind;
        let data = std::mem::replace(&mut self.data, Arc::new(Data::decoded(Signal::empty(kind))));
        match Arc::try_unwrap(data) {
            Ok(mut owned) => std::mem::replace(owned.signal_mut(), Signal::empty(kind)),
            Err(shared) => shared.signal().clone(),
        }
    }

    pub fn item_count(&self) -> usize {
        self.data.item_count()
    }

    /// A second handle on the same data for another fan-out branch.
    pub fn share(&self) -> Batch {
        Batch {
            data: self.data.clone(),
            ctx: self.ctx.clone(),
            wire_bytes: self.wire_bytes,
            acks: self.acks.share(),
            encoded: self.encoded.clone(),
        }
    }
}

/// Acknowledgement handles of the incoming requests a batch came from.
///
/// A source that must know when its data reached its destination (Kafka
/// offsets, `wait_for_result`) creates a tracked handle with [`Acks::tracked`];
/// every fan-out branch and every split gets a share, merged batches carry
/// all their sources' shares, and each share is settled once: delivered,
/// dropped on purpose, or failed. A share dropped unsettled counts as failed,
/// so data lost to a bug never acknowledges its source.
#[derive(Debug, Default)]
pub struct Acks(Vec<AckShare>);

#[derive(Debug)]
struct AckShare {
    tracker: Arc<AckTracker>,
    settled: bool,
}

#[derive(Debug)]
struct AckTracker {
    pending: AtomicUsize,
    failed: AtomicBool,
    done: watch::Sender<Option<bool>>,
}

/// How a share of a batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Reached its destination (or its destination's custody).
    Delivered,
    /// Dropped on purpose (sampling, filtering, permanent rejection).
    Dropped,
    Failed,
}

/// Completes when every share of a tracked batch is settled.
pub struct AckWaiter(watch::Receiver<Option<bool>>);

impl AckWaiter {
    /// `true` when nothing failed.
    pub async fn wait(mut self) -> bool {
        loop {
            if let Some(ok) = *self.0.borrow() {
                return ok;
            }
            if self.0.changed().await.is_err() {
                return false;
            }
        }
    }
}

impl Acks {
    pub fn none() -> Acks {
        Acks(Vec::new())
    }

    pub fn tracked() -> (Acks, AckWaiter) {
        let (tx, rx) = watch::channel(None);
        let tracker = Arc::new(AckTracker {
            pending: AtomicUsize::new(1),
            failed: AtomicBool::new(false),
            done: tx,
        });
        (
            Acks(vec![AckShare {
                tracker,
                settled: false,
            }]),
            AckWaiter(rx),
        )
    }

    pub fn is_tracked(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn share(&self) -> Acks {
        Acks(
            self.0
                .iter()
                .map(|s| {
                    s.tracker.pending.fetch_add(1, Ordering::AcqRel);
                    AckShare {
                        tracker: s.tracker.clone(),
                        settled: false,
                    }
                })
                .collect(),
        )
    }

    pub fn merge(&mut self, other: Acks) {
        self.0.extend(other.0);
    }

    pub fn take(&mut self) -> Acks {
        Acks(std::mem::take(&mut self.0))
    }

    pub fn settle(mut self, how: Settlement) {
        for share in &mut self.0 {
            share.settle(how);
        }
    }
}

impl AckShare {
    fn settle(&mut self, how: Settlement) {
        if self.settled {
            return;
        }
        self.settled = true;
        if how == Settlement::Failed {
            self.tracker.failed.store(true, Ordering::Release);
        }
        if self.tracker.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ok = !self.tracker.failed.load(Ordering::Acquire);
            self.tracker.done.send_replace(Some(ok));
        }
    }
}

impl Drop for AckShare {
    fn drop(&mut self) {
        self.settle(Settlement::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(spans: usize) -> (Batch, Signal) {
        let signal = crate::signal::tests::traces(1, 1, spans);
        let mut buf = Vec::new();
        signal.encode_request(&mut buf);
        let items = crate::otlp_wire::validate(SignalKind::Traces, &buf).unwrap();
        (
            Batch::from_validated(SignalKind::Traces, buf.into(), items),
            signal,
        )
    }

    #[test]
    fn validated_bytes_decode_only_when_read() {
        let (batch, signal) = validated(3);
        assert_eq!(batch.item_count(), 3);
        assert!(!batch.is_decoded(), "counting must not decode");
        let branch = batch.share();
        assert_eq!(batch.signal(), &signal);
        assert!(
            batch.is_decoded() && branch.is_decoded(),
            "branches share one decode"
        );
        assert!(
            batch.encoded().is_some(),
            "reading keeps the pass-through bytes"
        );
    }

    #[test]
    fn mutating_a_lazy_batch_decodes_a_private_copy() {
        let (batch, signal) = validated(2);
        let mut branch = batch.share();
        if let Signal::Traces(rs) = branch.signal_mut() {
            rs[0].scope_spans[0].spans.pop();
        }
        assert_eq!(branch.item_count(), 1);
        assert!(branch.encoded().is_none());
        assert!(
            !batch.is_decoded(),
            "the other branch still holds only bytes"
        );
        assert_eq!(batch.item_count(), 2);
        assert_eq!(batch.signal(), &signal);
        let (mut unchanged, signal) = validated(2);
        let bytes = unchanged.encoded().cloned();
        unchanged.modify(|_| ((), false));
        assert_eq!(
            unchanged.encoded().cloned(),
            bytes,
            "no change keeps the bytes"
        );
        assert_eq!(unchanged.signal(), &signal);
        unchanged.modify(|s| {
            if let Signal::Traces(rs) = s {
                rs[0].scope_spans[0].spans[0].name = "renamed".into();
            }
            ((), true)
        });
        assert!(unchanged.encoded().is_none(), "a change drops them");
        let (mut owned, signal) = validated(4);
        assert_eq!(owned.take_signal(), signal);
        assert_eq!(owned.item_count(), 0);
    }

    #[tokio::test]
    async fn tracked_acks_complete_when_all_shares_settle() {
        let (acks, waiter) = Acks::tracked();
        let a = acks.share();
        let b = acks.share();
        acks.settle(Settlement::Delivered);
        a.settle(Settlement::Dropped);
        let waiting = tokio::spawn(waiter.wait());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        b.settle(Settlement::Delivered);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn dropped_share_fails_the_source() {
        let (acks, waiter) = Acks::tracked();
        let lost = acks.share();
        acks.settle(Settlement::Delivered);
        drop(lost);
        assert!(!waiter.wait().await);
    }

    #[test]
    fn shared_batches_copy_only_on_mutation() {
        let a = Batch::new(crate::signal::tests::traces(1, 1, 2));
        let mut b = a.share();
        assert!(std::ptr::eq(a.signal(), b.signal()));
        b.signal_mut();
        assert!(!std::ptr::eq(a.signal(), b.signal()));
        let mut with_bytes = a.share().with_encoded(bytes::Bytes::from_static(b"x"));
        assert!(with_bytes.encoded().is_some());
        with_bytes.signal_mut();
        assert!(
            with_bytes.encoded().is_none(),
            "mutation must drop the encoded form"
        );
        let mut sole = Batch::new(crate::signal::tests::traces(1, 1, 2));
        let before = sole.signal() as *const Signal;
        assert!(std::ptr::eq(before, sole.signal_mut()));
    }
}
