//! The `correlation_store` extension: correlation id → the span that carried
//! it, shared by the `correlation` processors of a traces pipeline and a logs
//! pipeline. Bounded by entries and bytes (oldest first), entries expire
//! after `ttl`. Logs processors holding records for an id register a waker
//! and are woken the moment a span with that id is inserted.

use super::config::StoreConfig;
use async_trait::async_trait;
use confluo_config::{ConfigError, Node};
use confluo_pipeline::component::check_config;
use confluo_pipeline::{ComponentContext, ComponentError, Extension, ExtensionFactory, Stability};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

pub const STORE_TYPE: &str = "correlation_store";

/// What a log joined to a span gets from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanRef {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub service_name: Option<Arc<str>>,
    /// Preference when several spans carry the id (higher wins).
    pub rank: u8,
}

/// A logs processor's wake-up: ids whose span arrived, and a notification.
#[derive(Default)]
pub struct HoldWaker {
    ready: Mutex<Vec<String>>,
    pub notify: tokio::sync::Notify,
}

impl HoldWaker {
    pub fn wake(&self, id: String) {
        lock(&self.ready).push(id);
        self.notify.notify_one();
    }

    pub fn take_ready(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.ready))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    span: SpanRef,
    expires: Instant,
    generation: u64,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Insertion order (= expiry order, the ttl being fixed); stale
    /// generations are skipped lazily.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    generation: u64,
    waiters: HashMap<String, Vec<Weak<HoldWaker>>>,
}

/// Per-entry overhead beyond the id and service name: map slot, order slot, ids.
const ENTRY_OVERHEAD: usize = 128;

pub struct CorrelationStore {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl CorrelationStore {
    pub fn new(config: &StoreConfig) -> CorrelationStore {
        CorrelationStore {
            ttl: config.ttl.0,
            max_entries: config.max_entries.max(1),
            max_bytes: usize::try_from(config.max_bytes.0).unwrap_or(usize::MAX),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The process-wide store used by `correlation` processors that name no
    /// `store:`; created with the store's defaults on first use.
    pub fn default_store() -> Arc<CorrelationStore> {
        static DEFAULT: OnceLock<Arc<CorrelationStore>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Arc::new(CorrelationStore::new(&StoreConfig::default())))
            .clone()
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remembers spans by correlation id. An id already remembered is
    /// replaced only by a span of higher rank. Wakes the processors waiting
    /// for the ids.
    pub fn insert_many(&self, spans: impl IntoIterator<Item = (String, SpanRef)>, now: Instant) {
        let mut wake: Vec<(Weak<HoldWaker>, String)> = Vec::new();
        {
            let mut st = lock(&self.inner);
            Self::purge(&mut st, now);
            for (id, span) in spans {
                if let Some(e) = st.map.get(&id) {
                    if e.expires > now && e.span.rank >= span.rank {
                        continue;
                    }
                }
                let bytes = ENTRY_OVERHEAD
                    + 2 * id.len()
                    + span.service_name.as_ref().map_or(0, |s| s.len());
                st.generation += 1;
                let generation = st.generation;
                let entry = Entry {
                    span,
                    expires: now + self.ttl,
                    generation,
                    bytes,
                };
                st.bytes += bytes;
                if let Some(old) = st.map.insert(id.clone(), entry) {
                    st.bytes -= old.bytes;
                }
                st.order.push_back((id.clone(), generation));
                if let Some(ws) = st.waiters.remove(&id) {
                    wake.extend(ws.into_iter().map(|w| (w, id.clone())));
                }
            }
            while st.map.len() > self.max_entries || st.bytes > self.max_bytes {
                if !Self::pop_oldest(&mut st) {
                    break;
                }
            }
            if st.order.len() > 2 * st.map.len() + 64 {
                let Inner { map, order, .. } = &mut *st;
                order.retain(|(id, g)| map.get(id).is_some_and(|e| e.generation == *g));
            }
        }
        for (w, id) in wake {
            if let Some(w) = w.upgrade() {
                w.wake(id);
            }
        }
    }

    fn pop_oldest(st: &mut Inner) -> bool {
        while let Some((id, g)) = st.order.pop_front() {
            if st.map.get(&id).is_some_and(|e| e.generation == g) {
                if let Some(e) = st.map.remove(&id) {
                    st.bytes -= e.bytes;
                }
                return true;
            }
        }
        false
    }

    fn purge(st: &mut Inner, now: Instant) {
        while let Some((id, g)) = st.order.front() {
            match st.map.get(id) {
                Some(e) if e.generation == *g => {
                    if e.expires > now {
                        return;
                    }
                    let bytes = e.bytes;
                    st.map.remove(id);
                    st.bytes -= bytes;
                }
                _ => {}
            }
            st.order.pop_front();
        }
    }

    /// Drops expired entries (also done on every insert).
    pub fn purge_expired(&self, now: Instant) {
        Self::purge(&mut lock(&self.inner), now);
    }

    pub fn lookup(&self, id: &str, now: Instant) -> Option<SpanRef> {
        let st = lock(&self.inner);
        st.map
            .get(id)
            .filter(|e| e.expires > now)
            .map(|e| e.span.clone())
    }

    /// Asks to be woken when a span with `id` arrives. Returns the span when
    /// it is already here (nothing is registered then), atomically with the
    /// registration so that no arrival is missed.
    pub fn watch(&self, id: &str, waker: &Arc<HoldWaker>, now: Instant) -> Option<SpanRef> {
        let mut st = lock(&self.inner);
        if let Some(e) = st.map.get(id).filter(|e| e.expires > now) {
            return Some(e.span.clone());
        }
        let ws = st.waiters.entry(id.to_string()).or_default();
        ws.retain(|w| w.strong_count() > 0);
        if !ws
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(waker)))
        {
            ws.push(Arc::downgrade(waker));
        }
        None
    }

    pub fn unwatch(&self, id: &str, waker: &Arc<HoldWaker>) {
        let mut st = lock(&self.inner);
        if let Some(ws) = st.waiters.get_mut(id) {
            ws.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(waker)));
            if ws.is_empty() {
                st.waiters.remove(id);
            }
        }
    }

    #[cfg(test)]
    pub fn waiter_count(&self) -> usize {
        lock(&self.inner).waiters.len()
    }
}

/// The extension instance: a store other components find by id.
pub struct CorrelationStoreExtension {
    pub store: Arc<CorrelationStore>,
}

#[async_trait]
impl Extension for CorrelationStoreExtension {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub struct CorrelationStoreFactory;

impl ExtensionFactory for CorrelationStoreFactory {
    fn type_name(&self) -> &'static str {
        STORE_TYPE
    }
    fn stability(&self) -> Stability {
        Stability::Development
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = check_config::<StoreConfig>(node);
        if errors.is_empty() {
            if let Ok(cfg) = node.deserialize::<StoreConfig>() {
                for msg in cfg.problems() {
                    errors.push(ConfigError::error(
                        Some(node.span().clone()),
                        node.path(),
                        msg,
                    ));
                }
            }
        }
        errors
    }
    fn create(
        &self,
        _ctx: ComponentContext,
        node: &Node,
    ) -> Result<Arc<dyn Extension>, ComponentError> {
        let config: StoreConfig = node.deserialize()?;
        if let Some(msg) = config.problems().into_iter().next() {
            return Err(ComponentError::Other(msg));
        }
        Ok(Arc::new(CorrelationStoreExtension {
            store: Arc::new(CorrelationStore::new(&config)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_config::{ByteSize, GoDuration};

    fn span(n: u8, rank: u8) -> SpanRef {
        SpanRef {
            trace_id: [n; 16],
            span_id: [n; 8],
            service_name: Some("svc".into()),
            rank,
        }
    }

    fn store(ttl: Duration, max_entries: usize) -> CorrelationStore {
        CorrelationStore::new(&StoreConfig {
            ttl: GoDuration(ttl),
            max_entries,
            max_bytes: ByteSize(1 << 30),
        })
    }

    #[test]
    fn higher_rank_replaces_lower() {
        let s = store(Duration::from_secs(60), 10);
        let now = Instant::now();
        s.insert_many([("r".to_string(), span(1, 0))], now);
        s.insert_many([("r".to_string(), span(2, 3))], now);
        s.insert_many([("r".to_string(), span(3, 1))], now);
        assert_eq!(s.lookup("r", now), Some(span(2, 3)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn entries_expire_after_ttl() {
        let s = store(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        s.insert_many([("a".to_string(), span(1, 0))], t0);
        s.insert_many([("b".to_string(), span(2, 0))], t0 + Duration::from_secs(5));
        assert!(s.lookup("a", t0 + Duration::from_secs(9)).is_some());
        assert!(s.lookup("a", t0 + Duration::from_secs(10)).is_none());
        s.purge_expired(t0 + Duration::from_secs(11));
        assert_eq!(s.len(), 1);
        assert!(s.lookup("b", t0 + Duration::from_secs(11)).is_some());
    }

    #[test]
    fn bounded_by_entries_oldest_first() {
        let s = store(Duration::from_secs(60), 3);
        let now = Instant::now();
        for i in 0..5u8 {
            s.insert_many([(format!("id{i}"), span(i + 1, 0))], now);
        }
        assert_eq!(s.len(), 3);
        assert!(s.lookup("id0", now).is_none());
        assert!(s.lookup("id1", now).is_none());
        assert!(s.lookup("id4", now).is_some());
    }

    #[test]
    fn bounded_by_bytes() {
        let s = CorrelationStore::new(&StoreConfig {
            ttl: GoDuration(Duration::from_secs(60)),
            max_entries: 1000,
            max_bytes: ByteSize(10 * (ENTRY_OVERHEAD as u64 + 20)),
        });
        let now = Instant::now();
        for i in 0..100u32 {
            s.insert_many([(format!("{i:05}"), span(1, 0))], now);
        }
        assert!(s.len() <= 10 && s.len() >= 5, "{}", s.len());
        assert!(s.lookup("00099", now).is_some());
    }

    #[test]
    fn order_queue_stays_bounded_under_updates() {
        let s = store(Duration::from_secs(60), 10);
        let now = Instant::now();
        for i in 0..1000u32 {
            s.insert_many([("r".to_string(), span(1, (i % 250) as u8))], now);
        }
        assert!(lock(&s.inner).order.len() <= 2 + 64);
    }

    #[tokio::test]
    async fn watchers_are_woken_on_insert() {
        let s = store(Duration::from_secs(60), 10);
        let w = Arc::new(HoldWaker::default());
        let now = Instant::now();
        assert!(s.watch("r", &w, now).is_none());
        assert!(s.watch("r", &w, now).is_none());
        assert_eq!(s.waiter_count(), 1);
        s.insert_many([("r".to_string(), span(1, 0))], now);
        tokio::time::timeout(Duration::from_secs(5), w.notify.notified())
            .await
            .unwrap();
        assert_eq!(w.take_ready(), vec!["r".to_string()]);
        assert_eq!(s.waiter_count(), 0);
        // Already present: returned at once.
        assert!(s.watch("r", &w, now).is_some());
        s.watch("x", &w, now);
        s.unwatch("x", &w);
        assert_eq!(s.waiter_count(), 0);
    }
}
