//! The `correlation` processor (traces and logs) and its `correlation_store`
//! extension.
//!
//! - Logs: trace/span ids found in attributes or structured bodies are
//!   promoted into the record's `trace_id`/`span_id`; correlation ids
//!   (`request_id`, `x-request-id`, …) are normalised into one attribute.
//! - Traces: every span carrying a correlation id is remembered in a store
//!   (correlation id → trace id, span id, `service.name`), preferring
//!   server/root spans. Spans pass through (with their correlation id key
//!   normalised).
//! - Logs that carry a correlation id but no trace id are joined to the
//!   remembered span. Logs usually arrive before their spans (SDKs export
//!   spans in batches and the root span ends last), so a log whose span is
//!   not known yet is held, bounded in time and bytes, and released joined
//!   the moment the span arrives — or unjoined when the hold expires or fills.
//!
//! Instances are per pipeline, as in the Collector; what the traces and logs
//! pipelines share is the store: the `correlation_store` extension named by
//! `store:`, or one process-wide default store.
//!
//! Custody: held records are in custody (consume answers Ok once they are
//! held); a held record leaves only when downstream accepted it. Released
//! records that downstream refuses retryably stay queued and are offered
//! again; while that queue is full, new logs that would be held are refused
//! retryably. Shutdown releases everything downstream.

mod config;
mod ids;
pub mod store;

pub use config::{CorrelationConfig, HoldConfig, SpanSelection, StoreConfig};
pub use store::{CorrelationStore, CorrelationStoreExtension, CorrelationStoreFactory, SpanRef};

use async_trait::async_trait;
use confluo_config::{ConfigError, Node, SignalKind, SignalSet};
use confluo_pipeline::attrs;
use confluo_pipeline::batch::{RequestContext, Settlement};
use confluo_pipeline::component::check_config;
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::span::SpanKind;
use confluo_pipeline::proto::trace::Span;
use confluo_pipeline::telemetry::{Counter, Gauge, ProcessorMetrics};
use confluo_pipeline::{
    Acks, Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Processor,
    ProcessorFactory, Signal, Stability,
};
use ids::IdKeys;
use prost::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use store::HoldWaker;
use tokio_util::sync::CancellationToken;

const SERVICE_NAME: &str = "service.name";
/// Most records sent downstream in one batch when releasing held logs.
const RELEASE_BATCH_RECORDS: usize = 8192;

pub struct CorrelationFactory;

impl ProcessorFactory for CorrelationFactory {
    fn type_name(&self) -> &'static str {
        "correlation"
    }
    fn signals(&self) -> SignalSet {
        SignalSet::only(SignalKind::Traces).with(SignalKind::Logs)
    }
    fn stability(&self) -> Stability {
        Stability::Development
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        let mut errors = check_config::<CorrelationConfig>(node);
        if errors.is_empty() {
            if let Ok(cfg) = node.deserialize::<CorrelationConfig>() {
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
        ctx: ComponentContext,
        node: &Node,
        signal: SignalKind,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let config: CorrelationConfig = node.deserialize()?;
        if let Some(msg) = config.problems().into_iter().next() {
            return Err(ComponentError::Other(format!("{}: {msg}", ctx.id)));
        }
        let store = resolve_store(&ctx, node, &config)?;
        match signal {
            SignalKind::Traces => Ok(Arc::new(TracesCorrelation {
                s: Shared::new(&ctx, &config, store, signal),
                next,
            })),
            SignalKind::Logs => Ok(LogsCorrelation::start(&ctx, &config, store, next)),
            SignalKind::Metrics => Err(ComponentError::Other(format!(
                "{}: the correlation processor does not support metrics",
                ctx.id
            ))),
        }
    }
}

/// The named `correlation_store` extension, or the process-wide default.
/// A dangling `store:` is a config error at the option's position, so that
/// `confluo validate` (which builds the graph) reports it like the others.
fn resolve_store(
    ctx: &ComponentContext,
    node: &Node,
    config: &CorrelationConfig,
) -> Result<Arc<CorrelationStore>, ComponentError> {
    let Some(id) = &config.store else {
        return Ok(CorrelationStore::default_store());
    };
    let ext = ctx.extensions.get(id).ok_or_else(|| {
        let at = node.get("store").unwrap_or(node);
        let listed: Vec<String> = ctx
            .extensions
            .all()
            .into_iter()
            .map(|(id, _)| id.to_string())
            .filter(|other| other.starts_with(store::STORE_TYPE))
            .collect();
        let hint = match confluo_config::closest(&id.to_string(), &listed) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => format!(
                "define \"{id}\" under `extensions:` and list it in `service.extensions`, \
                 or remove `store:` to use the process-wide default store"
            ),
        };
        ComponentError::Config(
            ConfigError::error(
                Some(at.span().clone()),
                at.path(),
                format!("extension \"{id}\" is not configured or not listed in service.extensions"),
            )
            .with_hint(hint),
        )
    })?;
    let store = ext
        .as_any()
        .downcast_ref::<CorrelationStoreExtension>()
        .ok_or_else(|| {
            ComponentError::Other(format!(
                "{}: store: extension \"{id}\" is not a {}",
                ctx.id,
                store::STORE_TYPE
            ))
        })?;
    Ok(store.store.clone())
}

fn detect_host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// What both signal instances share: config, store, counters.
struct Shared {
    id: String,
    keys: IdKeys,
    selection: SpanSelection,
    resource_defaults: Vec<(String, String)>,
    store: Arc<CorrelationStore>,
    metrics: ProcessorMetrics,
    promoted: Counter,
    joined: Counter,
    unjoined: Counter,
    invalid: Counter,
    held: Gauge,
    store_entries: Gauge,
}

impl Shared {
    fn new(
        ctx: &ComponentContext,
        config: &CorrelationConfig,
        store: Arc<CorrelationStore>,
        signal: SignalKind,
    ) -> Shared {
        let id = ctx.id.to_string();
        let labels = [("processor", id.as_str())];
        let t = &ctx.telemetry;
        let mut resource_defaults = Vec::new();
        for (k, v) in &config.resource_defaults {
            if v == config::DETECT {
                match detect_host_name() {
                    Some(h) => resource_defaults.push((k.clone(), h)),
                    None => {
                        tracing::warn!(event = "correlation_host_name_undetected", processor = %id, "could not detect the host name; host.name is not defaulted")
                    }
                }
            } else {
                resource_defaults.push((k.clone(), v.clone()));
            }
        }
        Shared {
            keys: IdKeys {
                trace: config.trace_id_keys.clone(),
                span: config.span_id_keys.clone(),
                traceparent: config.traceparent_keys.clone(),
                decimal: config.decimal_id_keys.clone(),
                correlation: config.correlation_id_keys.clone(),
                target: config.correlation_id_attribute.clone(),
                keep_original: config.keep_original_keys,
            },
            selection: config.span_selection,
            resource_defaults,
            store,
            metrics: ProcessorMetrics::new(t, &id, signal),
            promoted: t.counter(
                "otelcol_processor_correlation_promoted",
                "Log records whose trace/span id was promoted from an attribute or body.",
                &labels,
            ),
            joined: t.counter(
                "otelcol_processor_correlation_joined",
                "Log records given the trace/span id of the span carrying their correlation id.",
                &labels,
            ),
            unjoined: t.counter(
                "otelcol_processor_correlation_unjoined",
                "Log records with a correlation id released without a join (no span in time, or the hold was full).",
                &labels,
            ),
            invalid: t.counter(
                "otelcol_processor_correlation_invalid_ids",
                "Trace/span id values that did not validate; they are left as attributes.",
                &labels,
            ),
            held: t.gauge(
                "otelcol_processor_correlation_held_log_records",
                "Log records held waiting for their span or for downstream.",
                &labels,
            ),
            store_entries: t.gauge(
                "otelcol_processor_correlation_store_entries",
                "Correlation ids remembered in the store this processor uses.",
                &labels,
            ),
            id,
        }
    }

    fn apply_defaults(&self, resource: &mut Option<Resource>) {
        if self.resource_defaults.is_empty() {
            return;
        }
        let r = resource.get_or_insert_with(Resource::default);
        for (k, v) in &self.resource_defaults {
            if attrs::get(&r.attributes, k).is_none() {
                attrs::set_str(&mut r.attributes, k, v.as_str());
            }
        }
    }

    fn rank(&self, span: &Span) -> u8 {
        match self.selection {
            SpanSelection::First => 0,
            SpanSelection::ServerFirst => {
                let server =
                    span.kind == SpanKind::Server as i32 || span.kind == SpanKind::Consumer as i32;
                let root = !attrs::is_valid_span_id(&span.parent_span_id);
                u8::from(server) * 2 + u8::from(root)
            }
        }
    }
}

/// Whether a resource has no useful `service.name` (absent, empty, or the
/// SDKs' `unknown_service` fallback), so a joined span's may be copied in.
fn lacks_service(resource: &Option<Resource>) -> bool {
    match resource
        .as_ref()
        .and_then(|r| attrs::get_str(&r.attributes, SERVICE_NAME))
    {
        None => true,
        Some(s) => s.is_empty() || s.starts_with("unknown_service"),
    }
}

fn join_record(rec: &mut LogRecord, span: &SpanRef) {
    rec.trace_id = span.trace_id.to_vec();
    rec.span_id = span.span_id.to_vec();
}

// ------------------------------------------------------------------ traces

/// The traces-pipeline instance: remembers spans by correlation id.
pub struct TracesCorrelation {
    s: Shared,
    next: Arc<dyn Consumer>,
}

#[async_trait]
impl Consumer for TracesCorrelation {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let n = batch.item_count();
        self.s.metrics.incoming.add(n as u64);
        let mut found: Vec<(String, SpanRef)> = Vec::new();
        if let Signal::Traces(rss) = batch.signal_mut() {
            for rs in rss {
                self.s.apply_defaults(&mut rs.resource);
                let (service, resource_cid) = match &rs.resource {
                    Some(r) => (
                        attrs::get_str(&r.attributes, SERVICE_NAME)
                            .filter(|s| !s.is_empty())
                            .map(Arc::<str>::from),
                        ids::find_correlation(&r.attributes, &self.s.keys),
                    ),
                    None => (None, None),
                };
                for ss in &mut rs.scope_spans {
                    for span in &mut ss.spans {
                        let cid =
                            ids::normalise_correlation(&mut span.attributes, None, &self.s.keys)
                                .or_else(|| resource_cid.clone());
                        let Some(cid) = cid else { continue };
                        let (Ok(trace_id), Ok(span_id)) = (
                            <[u8; 16]>::try_from(span.trace_id.as_slice()),
                            <[u8; 8]>::try_from(span.span_id.as_slice()),
                        ) else {
                            continue;
                        };
                        if !attrs::is_valid_trace_id(&trace_id)
                            || !attrs::is_valid_span_id(&span_id)
                        {
                            continue;
                        }
                        found.push((
                            cid,
                            SpanRef {
                                trace_id,
                                span_id,
                                service_name: service.clone(),
                                rank: self.s.rank(span),
                            },
                        ));
                    }
                }
            }
        }
        if !found.is_empty() {
            self.s.store.insert_many(found, Instant::now());
        }
        self.s.store_entries.set(self.s.store.len() as i64);
        self.next.consume(batch).await?;
        self.s.metrics.outgoing.add(n as u64);
        Ok(())
    }
}

#[async_trait]
impl Processor for TracesCorrelation {
    fn mutates(&self) -> bool {
        true
    }
}

// ------------------------------------------------------------------ logs

/// What to do with one log record after promotion and normalisation.
enum Disposition {
    /// Wait for the span with this correlation id.
    Hold(String),
    /// Joined under a resource without a service name: move it under a copy
    /// of the resource carrying the span's.
    Service(Arc<str>),
}

struct Mark {
    ri: usize,
    si: usize,
    i: usize,
    what: Disposition,
    bytes: usize,
}

/// Records of one resource + scope waiting for the same correlation id.
struct Fragment {
    id: String,
    rl: ResourceLogs,
    records: usize,
    bytes: usize,
    deadline: Instant,
    ctx: Arc<RequestContext>,
    acks: Acks,
}

/// Released data waiting for downstream to accept it.
struct Ready {
    rls: Vec<ResourceLogs>,
    records: usize,
    bytes: usize,
    ctx: Arc<RequestContext>,
    acks: Acks,
}

#[derive(Default)]
struct HoldState {
    waiting: BTreeMap<u64, Fragment>,
    by_id: HashMap<String, Vec<u64>>,
    waiting_bytes: usize,
    waiting_records: usize,
    reserved_bytes: usize,
    reserved_records: usize,
    outbox: VecDeque<Ready>,
    outbox_bytes: usize,
    outbox_records: usize,
    next_seq: u64,
}

enum Reservation {
    Reserved,
    /// Larger than the whole hold: not held, released unjoined at once.
    TooLarge,
    /// Released data is not being accepted downstream: refuse.
    Full,
}

/// The logs-pipeline instance: promotes, normalises, joins and holds.
pub struct LogsCorrelation {
    s: Shared,
    next: Arc<dyn Consumer>,
    max_wait: Duration,
    max_bytes: usize,
    max_records: usize,
    state: Mutex<HoldState>,
    waker: Arc<HoldWaker>,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    refusing: AtomicBool,
}

impl LogsCorrelation {
    fn start(
        ctx: &ComponentContext,
        config: &CorrelationConfig,
        store: Arc<CorrelationStore>,
        next: Arc<dyn Consumer>,
    ) -> Arc<LogsCorrelation> {
        let p = Arc::new(LogsCorrelation {
            s: Shared::new(ctx, config, store, SignalKind::Logs),
            next,
            max_wait: config.hold.max_wait.0,
            max_bytes: usize::try_from(config.hold.max_bytes.0).unwrap_or(usize::MAX),
            max_records: config.hold.max_log_records,
            state: Mutex::new(HoldState::default()),
            waker: Arc::new(HoldWaker::default()),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            refusing: AtomicBool::new(false),
        });
        if !p.max_wait.is_zero() {
            let handle = tokio::spawn(run(Arc::downgrade(&p), p.waker.clone(), p.stop.clone()));
            *lock(&p.task) = Some(handle);
        }
        p
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HoldState> {
        lock(&self.state)
    }

    /// Promotes and normalises every record, joins those whose span is
    /// known, and says which records to hold or move.
    fn prepare(&self, rls: &mut [ResourceLogs], hold: bool, now: Instant) -> Vec<Mark> {
        let mut marks = Vec::new();
        let (mut promoted, mut invalid, mut joined, mut unjoined) = (0u64, 0u64, 0u64, 0u64);
        for (ri, rl) in rls.iter_mut().enumerate() {
            let no_service = lacks_service(&rl.resource);
            for (si, sl) in rl.scope_logs.iter_mut().enumerate() {
                for (i, rec) in sl.log_records.iter_mut().enumerate() {
                    let p = ids::promote(rec, &self.s.keys);
                    promoted += u64::from(p.promoted);
                    invalid += p.invalid;
                    let cid = ids::normalise_correlation(
                        &mut rec.attributes,
                        rec.body.as_ref(),
                        &self.s.keys,
                    );
                    if attrs::is_valid_trace_id(&rec.trace_id) {
                        continue;
                    }
                    let Some(cid) = cid else { continue };
                    if let Some(span) = self.s.store.lookup(&cid, now) {
                        join_record(rec, &span);
                        joined += 1;
                        if let (true, Some(svc)) = (no_service, span.service_name) {
                            marks.push(Mark {
                                ri,
                                si,
                                i,
                                what: Disposition::Service(svc),
                                bytes: 0,
                            });
                        }
                    } else if hold {
                        marks.push(Mark {
                            ri,
                            si,
                            i,
                            what: Disposition::Hold(cid),
                            bytes: rec.encoded_len(),
                        });
                    } else {
                        unjoined += 1;
                    }
                }
            }
        }
        self.s.promoted.add(promoted);
        self.s.invalid.add(invalid);
        self.s.joined.add(joined);
        self.s.unjoined.add(unjoined);
        marks
    }

    /// Makes room for `bytes`/`records` of held data: the oldest held
    /// records are released (unjoined) when the hold is full.
    fn reserve(&self, bytes: usize, records: usize, now: Instant) -> Reservation {
        if bytes > self.max_bytes || records > self.max_records {
            return Reservation::TooLarge;
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut released = false;
        let result = loop {
            if st.waiting_bytes + st.reserved_bytes + bytes <= self.max_bytes
                && st.waiting_records + st.reserved_records + records <= self.max_records
            {
                st.reserved_bytes += bytes;
                st.reserved_records += records;
                break Reservation::Reserved;
            }
            // Released data waiting for downstream has its own bound of the
            // same size; past it, downstream is not keeping up.
            let Some(oldest) = st.waiting.first_entry() else {
                break Reservation::Full;
            };
            if st.outbox_bytes + oldest.get().bytes > self.max_bytes
                || st.outbox_records + oldest.get().records > self.max_records
            {
                break Reservation::Full;
            }
            let oldest = oldest.remove();
            self.release(st, oldest, now);
            released = true;
        };
        drop(guard);
        if released {
            self.waker.notify.notify_one();
        }
        result
    }

    fn unreserve(&self, bytes: usize, records: usize) {
        let mut st = self.lock();
        st.reserved_bytes -= bytes;
        st.reserved_records -= records;
    }

    /// Moves a waiting fragment (already out of `waiting`) to the outbox,
    /// joined if its span arrived after all.
    fn release(&self, st: &mut HoldState, mut f: Fragment, now: Instant) {
        if let Some(seqs) = st.by_id.get_mut(&f.id) {
            seqs.retain(|seq| st.waiting.contains_key(seq));
            if seqs.is_empty() {
                st.by_id.remove(&f.id);
                self.s.store.unwatch(&f.id, &self.waker);
            }
        }
        st.waiting_bytes -= f.bytes;
        st.waiting_records -= f.records;
        let span = self.s.store.lookup(&f.id, now);
        self.to_outbox(st, &mut f, span.as_ref());
    }

    fn to_outbox(&self, st: &mut HoldState, f: &mut Fragment, span: Option<&SpanRef>) {
        match span {
            Some(span) => {
                for sl in &mut f.rl.scope_logs {
                    for rec in &mut sl.log_records {
                        join_record(rec, span);
                    }
                }
                if let (true, Some(svc)) = (lacks_service(&f.rl.resource), &span.service_name) {
                    let r = f.rl.resource.get_or_insert_with(Resource::default);
                    attrs::set_str(&mut r.attributes, SERVICE_NAME, &**svc);
                }
                self.s.joined.add(f.records as u64);
            }
            None => self.s.unjoined.add(f.records as u64),
        }
        self.s.apply_defaults(&mut f.rl.resource);
        st.outbox_bytes += f.bytes;
        st.outbox_records += f.records;
        st.outbox.push_back(Ready {
            rls: vec![std::mem::take(&mut f.rl)],
            records: f.records,
            bytes: f.bytes,
            ctx: f.ctx.clone(),
            acks: f.acks.take(),
        });
    }

    /// Puts held fragments in the hold (reserved before).
    fn insert(
        &self,
        fragments: Vec<(String, ResourceLogs, usize, usize)>,
        shares: Vec<Acks>,
        ctx: Arc<RequestContext>,
        reserved: (usize, usize),
        now: Instant,
    ) {
        let mut st = self.lock();
        st.reserved_bytes -= reserved.0;
        st.reserved_records -= reserved.1;
        let mut released = false;
        for ((id, rl, records, bytes), acks) in fragments.into_iter().zip(shares) {
            let mut f = Fragment {
                id,
                rl,
                records,
                bytes,
                deadline: now + self.max_wait,
                ctx: ctx.clone(),
                acks,
            };
            if !st.by_id.contains_key(&f.id) {
                // Registered atomically with a last look, so a span arriving
                // between `prepare` and now is not missed.
                if let Some(span) = self.s.store.watch(&f.id, &self.waker, now) {
                    self.to_outbox(&mut st, &mut f, Some(&span));
                    released = true;
                    continue;
                }
            }
            let seq = st.next_seq;
            st.next_seq += 1;
            st.waiting_bytes += f.bytes;
            st.waiting_records += f.records;
            st.by_id.entry(f.id.clone()).or_default().push(seq);
            st.waiting.insert(seq, f);
        }
        self.s
            .held
            .set((st.waiting_records + st.outbox_records) as i64);
        drop(st);
        if released {
            self.waker.notify.notify_one();
        }
    }

    /// Joins fragments whose span arrived and releases expired ones.
    fn collect(&self, now: Instant) {
        let ready = self.waker.take_ready();
        let mut st = self.lock();
        for id in ready {
            let Some(seqs) = st.by_id.get(&id) else {
                continue;
            };
            let span = match self.s.store.lookup(&id, now) {
                Some(span) => span,
                None => {
                    // Evicted again already: wait on (or join if it is back).
                    match self.s.store.watch(&id, &self.waker, now) {
                        Some(span) => span,
                        None => continue,
                    }
                }
            };
            let seqs = seqs.clone();
            st.by_id.remove(&id);
            for seq in seqs {
                if let Some(mut f) = st.waiting.remove(&seq) {
                    st.waiting_bytes -= f.bytes;
                    st.waiting_records -= f.records;
                    self.to_outbox(&mut st, &mut f, Some(&span));
                }
            }
        }
        while let Some(entry) = st.waiting.first_entry() {
            if entry.get().deadline > now {
                break;
            }
            let f = entry.remove();
            self.release(&mut st, f, now);
        }
        self.s
            .held
            .set((st.waiting_records + st.outbox_records) as i64);
    }

    /// Sends released data downstream, oldest first. Returns false when
    /// downstream refused retryably (the data stays queued).
    async fn drain(&self) -> bool {
        loop {
            let ready = {
                let mut st = self.lock();
                let Some(mut r) = st.outbox.pop_front() else {
                    return true;
                };
                while let Some(n) = st.outbox.front() {
                    if !Arc::ptr_eq(&n.ctx, &r.ctx) || r.records + n.records > RELEASE_BATCH_RECORDS
                    {
                        break;
                    }
                    let Some(n) = st.outbox.pop_front() else {
                        break;
                    };
                    r.rls.extend(n.rls);
                    r.records += n.records;
                    r.bytes += n.bytes;
                    r.acks.merge(n.acks);
                }
                r
            };
            let Ready {
                rls,
                records,
                bytes,
                ctx,
                acks,
            } = ready;
            let batch = Batch::with_context(Signal::Logs(rls), ctx.clone());
            let keep = batch.share();
            match self.next.consume(batch).await {
                Ok(()) => {
                    self.refusing.store(false, Ordering::Relaxed);
                    self.s.metrics.outgoing.add(records as u64);
                    acks.settle(Settlement::Delivered);
                }
                Err(ConsumeError::Permanent { reason }) => {
                    tracing::error!(event = "correlation_release_rejected", processor = %self.s.id, log_records = records, reason = %reason, "downstream rejected released log records permanently; dropped");
                    acks.settle(Settlement::Dropped);
                }
                Err(ConsumeError::Retryable { reason, .. }) => {
                    if !self.refusing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(event = "correlation_release_refused", processor = %self.s.id, log_records = records, reason = %reason, "downstream refused released log records; keeping them and retrying");
                    }
                    let mut keep = keep;
                    let rls = match keep.take_signal() {
                        Signal::Logs(rls) => rls,
                        _ => Vec::new(),
                    };
                    let mut st = self.lock();
                    st.outbox.push_front(Ready {
                        rls,
                        records,
                        bytes,
                        ctx,
                        acks,
                    });
                    return false;
                }
            }
            let mut st = self.lock();
            st.outbox_bytes -= bytes;
            st.outbox_records -= records;
            self.s
                .held
                .set((st.waiting_records + st.outbox_records) as i64);
        }
    }

    fn next_wake(&self, backoff: bool, now: Instant) -> Duration {
        if backoff {
            return Duration::from_millis(200);
        }
        let st = self.lock();
        match st.waiting.first_key_value() {
            Some((_, f)) => f
                .deadline
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), Duration::from_millis(500)),
            None => Duration::from_millis(500),
        }
    }

    async fn send_through(&self, batch: Batch, items: usize) -> Result<(), ConsumeError> {
        if items == 0 {
            return Ok(());
        }
        self.next.consume(batch).await?;
        self.s.metrics.outgoing.add(items as u64);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The processor's own task: releases joined logs as soon as their span
/// arrives, expired ones on time, and retries refused releases.
async fn run(weak: Weak<LogsCorrelation>, waker: Arc<HoldWaker>, stop: CancellationToken) {
    let mut backoff = false;
    loop {
        let wait = match weak.upgrade() {
            Some(p) => p.next_wake(backoff, Instant::now()),
            None => return,
        };
        tokio::select! {
            _ = waker.notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        let Some(p) = weak.upgrade() else { return };
        p.collect(Instant::now());
        backoff = !p.drain().await;
        p.s.store.purge_expired(Instant::now());
        p.s.store_entries.set(p.s.store.len() as i64);
    }
}

/// Moves held records out of the batch into per-(resource, scope, id)
/// fragments, and joined records under a resource without a service name
/// into copies of their resource carrying the span's. Emptied scopes and
/// resources are removed.
fn restructure(
    rls: &mut Vec<ResourceLogs>,
    marks: Vec<Mark>,
) -> Vec<(String, ResourceLogs, usize, usize)> {
    let mut fragments: Vec<(String, ResourceLogs, usize, usize)> = Vec::new();
    let mut new_resources: Vec<ResourceLogs> = Vec::new();
    let mut by_service: HashMap<(usize, Arc<str>), usize> = HashMap::new();
    let mut marks = marks.into_iter().peekable();
    while let Some(first) = marks.next() {
        let (ri, si) = (first.ri, first.si);
        let mut group = vec![first];
        while let Some(m) = marks.next_if(|m| m.ri == ri && m.si == si) {
            group.push(m);
        }
        let Some(ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        }) = rls.get_mut(ri)
        else {
            continue;
        };
        let Some(sl) = scope_logs.get_mut(si) else {
            continue;
        };
        let records = std::mem::take(&mut sl.log_records);
        let mut held: Vec<(String, Vec<LogRecord>, usize)> = Vec::new();
        let mut held_index: HashMap<String, usize> = HashMap::new();
        let mut moved: Vec<(Arc<str>, Vec<LogRecord>)> = Vec::new();
        let mut group = group.into_iter().peekable();
        for (i, rec) in records.into_iter().enumerate() {
            let Some(m) = group.next_if(|m| m.i == i) else {
                sl.log_records.push(rec);
                continue;
            };
            match m.what {
                Disposition::Hold(id) => {
                    let k = *held_index.entry(id.clone()).or_insert_with(|| {
                        held.push((id, Vec::new(), 0));
                        held.len() - 1
                    });
                    held[k].1.push(rec);
                    held[k].2 += m.bytes;
                }
                Disposition::Service(svc) => match moved.iter_mut().find(|(s, _)| *s == svc) {
                    Some((_, v)) => v.push(rec),
                    None => moved.push((svc, vec![rec])),
                },
            }
        }
        let overhead = resource.as_ref().map_or(0, |r| r.encoded_len())
            + sl.scope.as_ref().map_or(0, |s| s.encoded_len())
            + 16;
        // Same figure as `fragment_overhead`, which reserved it.
        for (id, log_records, bytes) in held {
            let n = log_records.len();
            let rl = ResourceLogs {
                resource: resource.clone(),
                scope_logs: vec![ScopeLogs {
                    scope: sl.scope.clone(),
                    log_records,
                    schema_url: sl.schema_url.clone(),
                }],
                schema_url: schema_url.clone(),
            };
            fragments.push((id, rl, n, bytes + overhead));
        }
        for (svc, log_records) in moved {
            let k = *by_service.entry((ri, svc.clone())).or_insert_with(|| {
                let mut r = resource.clone().unwrap_or_default();
                attrs::set_str(&mut r.attributes, SERVICE_NAME, &*svc);
                new_resources.push(ResourceLogs {
                    resource: Some(r),
                    scope_logs: Vec::new(),
                    schema_url: schema_url.clone(),
                });
                new_resources.len() - 1
            });
            new_resources[k].scope_logs.push(ScopeLogs {
                scope: sl.scope.clone(),
                log_records,
                schema_url: sl.schema_url.clone(),
            });
        }
    }
    rls.extend(new_resources);
    for rl in rls.iter_mut() {
        rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
    }
    rls.retain(|rl| !rl.scope_logs.is_empty());
    fragments
}

/// The size the held fragments will have (records plus a copy of their
/// resource and scope per fragment), before they are cut out; the same
/// figure `restructure` gives each fragment.
fn estimate_hold(rls: &[ResourceLogs], marks: &[Mark]) -> (usize, usize) {
    let mut bytes = 0;
    let mut records = 0;
    let mut seen: std::collections::HashSet<(usize, usize, &str)> = Default::default();
    for m in marks {
        if let Disposition::Hold(id) = &m.what {
            records += 1;
            bytes += m.bytes;
            if seen.insert((m.ri, m.si, id.as_str())) {
                bytes += fragment_overhead(rls.get(m.ri), m.si);
            }
        }
    }
    (bytes, records)
}

fn fragment_overhead(rl: Option<&ResourceLogs>, si: usize) -> usize {
    let Some(rl) = rl else { return 0 };
    rl.resource.as_ref().map_or(0, |r| r.encoded_len())
        + rl.scope_logs
            .get(si)
            .and_then(|s| s.scope.as_ref())
            .map_or(0, |s| s.encoded_len())
        + 16
}

#[async_trait]
impl Consumer for LogsCorrelation {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let n = batch.item_count();
        self.s.metrics.incoming.add(n as u64);
        if n == 0 {
            batch.acks.take().settle(Settlement::Delivered);
            return Ok(());
        }
        let now = Instant::now();
        let hold = !self.max_wait.is_zero() && !self.stop.is_cancelled();
        let Signal::Logs(rls) = batch.signal_mut() else {
            return self.send_through(batch, n).await;
        };
        let mut marks = self.prepare(rls, hold, now);
        let (mut bytes, mut records) = estimate_hold(rls, &marks);
        if records > 0 {
            match self.reserve(bytes, records, now) {
                Reservation::Reserved => {}
                Reservation::TooLarge => {
                    self.s.unjoined.add(records as u64);
                    marks.retain(|m| matches!(m.what, Disposition::Service(_)));
                    (bytes, records) = (0, 0);
                }
                Reservation::Full => {
                    return Err(ConsumeError::Retryable {
                        reason: format!(
                            "{}: correlation hold is full, downstream is not accepting released logs",
                            self.s.id
                        ),
                        retry_after: Some(Duration::from_secs(1)),
                    });
                }
            }
        }
        let fragments = if marks.is_empty() {
            Vec::new()
        } else {
            restructure(rls, marks)
        };
        for rl in rls.iter_mut() {
            self.s.apply_defaults(&mut rl.resource);
        }
        if fragments.is_empty() {
            let items = batch.item_count();
            return self.send_through(batch, items).await;
        }
        let shares: Vec<Acks> = fragments.iter().map(|_| batch.acks.share()).collect();
        let ctx = batch.ctx.clone();
        let items = batch.item_count();
        if items > 0 {
            if let Err(e) = self.send_through(batch, items).await {
                // Nothing is held: the client sends the whole batch again.
                self.unreserve(bytes, records);
                return Err(e);
            }
        } else {
            batch.acks.take().settle(Settlement::Delivered);
        }
        self.insert(fragments, shares, ctx, (bytes, records), now);
        Ok(())
    }
}

#[async_trait]
impl Processor for LogsCorrelation {
    fn mutates(&self) -> bool {
        true
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let now = Instant::now();
        {
            let mut st = self.lock();
            while let Some((_, f)) = st.waiting.pop_first() {
                self.release(&mut st, f, now);
            }
        }
        for _ in 0..5 {
            if self.drain().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut st = self.lock();
        let lost = st.outbox_records;
        st.outbox.clear();
        st.outbox_bytes = 0;
        st.outbox_records = 0;
        self.s.held.set(0);
        if lost > 0 {
            tracing::error!(event = "correlation_shutdown_dropped", processor = %self.s.id, log_records = lost, "downstream kept refusing released log records during shutdown");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
