//! One shard of held traces: the trace table, its timer slots, the decision
//! caches and the outbox of sampled data waiting to go downstream.
//!
//! Timer: every trace is due `decision_wait` after its first span, so due
//! ticks are monotonic in arrival order. Slots are kept in a queue, one per
//! due tick that has traces (the Collector's id batcher keeps one batch per
//! second in the same way); a tick pops only the slots that are due, never
//! scanning the table. The same queue gives the oldest undecided trace for
//! eviction. Ids whose trace was already removed (evicted, dropped for size,
//! or restarted by a late span) are skipped: an entry is decided by a slot
//! only when its recorded due tick is that slot's.

use super::encode::Fragment;
use super::policy::{Policies, TraceId, TraceInfo, TraceSummary};
use confluo_pipeline::batch::Settlement;
use confluo_pipeline::telemetry::{Counter, Gauge};
use confluo_pipeline::Acks;
use std::collections::{HashMap, HashSet, VecDeque};

pub struct Limits {
    pub traces: usize,
    pub bytes: usize,
    /// 0 = no bound.
    pub max_trace_bytes: usize,
    pub sampled_cache: usize,
    pub non_sampled_cache: usize,
    /// See [`TraceSummary::merge`].
    pub first_wins: u64,
}

/// Counters and gauges the shards update (all shared atomics).
#[derive(Clone, Default)]
pub struct ShardMetrics {
    pub new_trace_id_received: Counter,
    pub dropped_too_early: Counter,
    pub traces_too_large: Counter,
    pub traces_on_memory: Gauge,
    pub held_bytes: Gauge,
    pub outbox_bytes: Gauge,
    pub early_release_sampled: Counter,
    pub early_release_not_sampled: Counter,
    pub dropped_spans_not_sampled: Counter,
    pub dropped_spans_too_early: Counter,
    pub dropped_spans_too_large: Counter,
    pub dropped_spans_shutdown: Counter,
}

struct TraceEntry {
    buf: Vec<u8>,
    summary: TraceSummary,
    due: u64,
    acks: Acks,
    /// Dropped for exceeding `maximum_trace_size_bytes`: later spans are
    /// dropped until the trace is due, then it is cached as not sampled.
    too_large: bool,
}

/// Accounted bytes of a held trace beyond its span bytes: the table entry
/// (key, value, hash table control byte at 7/8 load) and its slot id.
pub const TRACE_OVERHEAD: usize =
    (std::mem::size_of::<(TraceId, TraceEntry)>() + 1) * 8 / 7 + std::mem::size_of::<TraceId>();
const OUT_OVERHEAD: usize = std::mem::size_of::<OutItem>();

struct Slot {
    due: u64,
    ids: Vec<TraceId>,
    head: usize,
}

/// Sampled data waiting to be sent downstream.
pub struct OutItem {
    pub buf: Vec<u8>,
    pub spans: u64,
    pub acks: Acks,
}

impl OutItem {
    pub fn cost(&self) -> usize {
        self.buf.capacity() + OUT_OVERHEAD
    }
}

/// A bounded set of trace ids forgetting the oldest first.
#[derive(Default)]
struct FifoSet {
    set: HashSet<TraceId>,
    order: VecDeque<TraceId>,
    cap: usize,
}

impl FifoSet {
    fn new(cap: usize) -> FifoSet {
        FifoSet {
            cap,
            ..Default::default()
        }
    }
    fn contains(&self, id: &TraceId) -> bool {
        self.cap > 0 && self.set.contains(id)
    }
    fn insert(&mut self, id: TraceId) {
        if self.cap == 0 || !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

pub struct Shard {
    traces: HashMap<TraceId, TraceEntry>,
    slots: VecDeque<Slot>,
    sampled: FifoSet,
    not_sampled: FifoSet,
    outbox: VecDeque<OutItem>,
    /// Everything this shard holds, outbox and in-flight output included.
    bytes: usize,
    m: ShardMetrics,
}

/// What one ingest call did, for logging.
#[derive(Default, Debug, Clone, Copy)]
pub struct IngestReport {
    pub evicted_traces: u64,
}

fn entry_cost(e: &TraceEntry) -> usize {
    e.buf.capacity() + TRACE_OVERHEAD
}

impl Shard {
    pub fn new(limits: &Limits, expected_traces: usize, m: ShardMetrics) -> Shard {
        Shard {
            traces: HashMap::with_capacity(expected_traces.min(limits.traces)),
            slots: VecDeque::new(),
            sampled: FifoSet::new(limits.sampled_cache),
            not_sampled: FifoSet::new(limits.non_sampled_cache),
            outbox: VecDeque::new(),
            bytes: 0,
            m,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn traces(&self) -> usize {
        self.traces.len()
    }

    fn add_bytes(&mut self, n: usize) {
        self.bytes += n;
        self.m.held_bytes.add(n as i64);
    }

    fn sub_bytes(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_sub(n);
        self.m.held_bytes.add(-(n as i64));
    }

    /// Takes one fragment into custody (or follows a cached decision).
    pub fn ingest(
        &mut self,
        frag: &Fragment,
        data: &[u8],
        acks: Acks,
        due: u64,
        limits: &Limits,
        report: &mut IngestReport,
    ) {
        let id = frag.trace;
        let spans = frag.summary.span_count;
        if self.sampled.contains(&id) {
            self.m.early_release_sampled.add(spans);
            self.push_out(OutItem {
                buf: data.to_vec(),
                spans,
                acks,
            });
            return;
        }
        if self.not_sampled.contains(&id) {
            self.m.early_release_not_sampled.add(spans);
            self.m.dropped_spans_not_sampled.add(spans);
            acks.settle(Settlement::Dropped);
            return;
        }
        let max = limits.max_trace_bytes;
        if let Some(e) = self.traces.get_mut(&id) {
            if e.too_large {
                self.m.dropped_spans_too_large.add(spans);
                acks.settle(Settlement::Dropped);
                return;
            }
            if max > 0 && e.buf.len() + data.len() > max {
                let freed = e.buf.capacity();
                let dropped = e.summary.span_count + spans;
                e.buf = Vec::new();
                e.too_large = true;
                e.acks.take().settle(Settlement::Dropped);
                acks.settle(Settlement::Dropped);
                self.sub_bytes(freed);
                self.m.traces_too_large.add(1);
                self.m.dropped_spans_too_large.add(dropped);
                return;
            }
            let before = e.buf.capacity();
            if e.buf.capacity() - e.buf.len() < data.len() {
                // Bounded slack (a quarter) instead of doubling.
                e.buf.reserve_exact(data.len().max(e.buf.len() / 4));
            }
            e.buf.extend_from_slice(data);
            e.summary.merge(&frag.summary, limits.first_wins);
            e.acks.merge(acks);
            let grown = e.buf.capacity() - before;
            self.add_bytes(grown);
            if self.bytes > limits.bytes {
                self.make_room(0, limits, Some(id), report);
            }
            return;
        }
        // A new trace.
        let too_large = max > 0 && data.len() > max;
        let cost = TRACE_OVERHEAD + if too_large { 0 } else { data.len() };
        self.make_room(cost, limits, None, report);
        let entry = if too_large {
            self.m.traces_too_large.add(1);
            self.m.dropped_spans_too_large.add(spans);
            acks.settle(Settlement::Dropped);
            TraceEntry {
                buf: Vec::new(),
                summary: TraceSummary::default(),
                due,
                acks: Acks::none(),
                too_large: true,
            }
        } else {
            TraceEntry {
                buf: data.to_vec(),
                summary: frag.summary,
                due,
                acks,
                too_large: false,
            }
        };
        self.add_bytes(entry_cost(&entry));
        self.traces.insert(id, entry);
        self.m.new_trace_id_received.add(1);
        self.m.traces_on_memory.add(1);
        match self.slots.back_mut() {
            Some(slot) if slot.due == due => slot.ids.push(id),
            _ => self.slots.push_back(Slot {
                due,
                ids: vec![id],
                head: 0,
            }),
        }
    }

    /// Evicts the oldest undecided traces until `extra` more bytes and one
    /// more trace fit (the Collector drops the oldest trace when full).
    fn make_room(
        &mut self,
        extra: usize,
        limits: &Limits,
        keep: Option<TraceId>,
        report: &mut IngestReport,
    ) {
        let need_trace = keep.is_none();
        while (need_trace && self.traces.len() >= limits.traces)
            || self.bytes + extra > limits.bytes
        {
            if !self.evict_oldest(keep, report) {
                return;
            }
        }
    }

    fn evict_oldest(&mut self, keep: Option<TraceId>, report: &mut IngestReport) -> bool {
        while let Some(slot) = self.slots.front_mut() {
            while slot.head < slot.ids.len() {
                let id = slot.ids[slot.head];
                if Some(id) == keep {
                    return false;
                }
                slot.head += 1;
                let due = slot.due;
                if self.traces.get(&id).is_some_and(|e| e.due == due) {
                    if let Some(e) = self.traces.remove(&id) {
                        self.m.traces_on_memory.add(-1);
                        self.sub_bytes(entry_cost(&e));
                        if !e.too_large {
                            self.m.dropped_too_early.add(1);
                            self.m.dropped_spans_too_early.add(e.summary.span_count);
                            report.evicted_traces += 1;
                        }
                        e.acks.settle(Settlement::Dropped);
                    }
                    return true;
                }
            }
            self.slots.pop_front();
        }
        false
    }

    fn push_out(&mut self, item: OutItem) {
        let cost = item.cost();
        self.add_bytes(cost);
        self.m.outbox_bytes.add(cost as i64);
        self.outbox.push_back(item);
    }

    /// Pops the slots due at `now_tick` (all slots when `None`), for deciding.
    pub fn take_due(&mut self, now_tick: Option<u64>) -> Vec<(u64, Vec<TraceId>)> {
        let mut out = Vec::new();
        while let Some(slot) = self.slots.front() {
            if now_tick.is_some_and(|t| slot.due > t) {
                break;
            }
            if let Some(mut s) = self.slots.pop_front() {
                s.ids.drain(..s.head);
                out.push((s.due, s.ids));
            }
        }
        out
    }

    /// Decides the traces of a popped slot; the sampled ones go to the outbox.
    pub fn decide(
        &mut self,
        due: u64,
        ids: &[TraceId],
        policies: &Policies,
        now: std::time::Duration,
    ) {
        for id in ids {
            if self.traces.get(id).is_none_or(|e| e.due != due) {
                continue;
            }
            let Some(e) = self.traces.remove(id) else {
                continue;
            };
            self.m.traces_on_memory.add(-1);
            let cost = entry_cost(&e);
            if e.too_large {
                self.sub_bytes(cost);
                self.not_sampled.insert(*id);
                continue;
            }
            let outcome = policies.decide(&TraceInfo {
                id,
                summary: &e.summary,
                bytes: e.buf.len() as u64,
                now,
            });
            self.sub_bytes(cost);
            if outcome.sampled {
                self.sampled.insert(*id);
                self.push_out(OutItem {
                    buf: e.buf,
                    spans: e.summary.span_count,
                    acks: e.acks,
                });
            } else {
                self.not_sampled.insert(*id);
                self.m.dropped_spans_not_sampled.add(e.summary.span_count);
                e.acks.settle(Settlement::Dropped);
            }
        }
    }

    /// Drops every pending trace (shutdown with `drop_pending_traces_on_shutdown`).
    pub fn drop_pending(&mut self) -> (u64, u64) {
        let (mut traces, mut spans) = (0, 0);
        for (_, e) in self.traces.drain() {
            self.m.traces_on_memory.add(-1);
            let cost = entry_cost(&e);
            self.bytes = self.bytes.saturating_sub(cost);
            self.m.held_bytes.add(-(cost as i64));
            if !e.too_large {
                traces += 1;
                spans += e.summary.span_count;
            }
            e.acks.settle(Settlement::Dropped);
        }
        self.slots.clear();
        self.m.dropped_spans_shutdown.add(spans);
        (traces, spans)
    }

    /// Takes outbox items worth up to `max_spans` spans (at least one item).
    pub fn take_out(&mut self, max_spans: u64) -> Vec<OutItem> {
        let mut out = Vec::new();
        let mut spans = 0;
        while let Some(item) = self.outbox.front() {
            if !out.is_empty() && spans + item.spans > max_spans {
                break;
            }
            spans += item.spans;
            if let Some(item) = self.outbox.pop_front() {
                out.push(item);
            }
        }
        out
    }

    /// Puts items refused downstream back at the front, in order.
    pub fn put_back(&mut self, items: Vec<OutItem>) {
        for item in items.into_iter().rev() {
            self.outbox.push_front(item);
        }
    }

    /// Output left the processor (delivered or dropped): release its bytes.
    pub fn release_out(&mut self, cost: usize) {
        self.sub_bytes(cost);
        self.m.outbox_bytes.add(-(cost as i64));
    }

    /// Drops what is left in the outbox; returns the spans dropped.
    pub fn drop_outbox(&mut self) -> u64 {
        let mut spans = 0;
        while let Some(item) = self.outbox.pop_front() {
            spans += item.spans;
            self.release_out(item.cost());
            item.acks.settle(Settlement::Failed);
        }
        spans
    }
}
