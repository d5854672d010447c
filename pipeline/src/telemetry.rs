//! Self-telemetry: a small metrics registry rendered in the Prometheus text
//! format, with the OpenTelemetry Collector's metric names, plus readiness.
//!
//! Hand-rolled rather than a metrics crate: the set of instruments is small
//! and fixed (atomic counters and gauges keyed by name and labels), rendering
//! is the only export, and this keeps the hot path at one relaxed atomic add.

use confluo_config::SignalKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub mod server;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Family {
    help: &'static str,
    kind: Kind,
    /// Rendered label set → value cell.
    series: BTreeMap<String, Cell>,
}

#[derive(Clone)]
enum Cell {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicI64>),
}

/// The process-wide registry. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    families: Mutex<BTreeMap<&'static str, Family>>,
    ready: AtomicBool,
    started: Instant,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

impl Telemetry {
    pub fn new() -> Telemetry {
        Telemetry {
            inner: Arc::new(Inner {
                families: Mutex::new(BTreeMap::new()),
                ready: AtomicBool::new(false),
                started: Instant::now(),
            }),
        }
    }

    fn cell(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
    ) -> Cell {
        let mut families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        family
            .series
            .entry(render_labels(labels))
            .or_insert_with(|| match kind {
                Kind::Counter => Cell::Counter(Arc::default()),
                Kind::Gauge => Cell::Gauge(Arc::default()),
            })
            .clone()
    }

    /// Registers (or finds) a counter. Call once at component creation and
    /// keep the handle; the hot path only touches the atomic.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Counter {
        match self.cell(name, help, Kind::Counter, labels) {
            Cell::Counter(c) => Counter(c),
            Cell::Gauge(_) => Counter::default(),
        }
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Gauge {
        match self.cell(name, help, Kind::Gauge, labels) {
            Cell::Gauge(g) => Gauge(g),
            Cell::Counter(_) => Gauge::default(),
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// The Prometheus text exposition (format 0.0.4) of every instrument plus
    /// process metrics.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_process(&mut out);
        let families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", family.help);
            for (labels, cell) in &family.series {
                let value = match cell {
                    Cell::Counter(c) => c.load(Ordering::Relaxed) as i128,
                    Cell::Gauge(g) => g.load(Ordering::Relaxed) as i128,
                };
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }

    fn render_process(&self, out: &mut String) {
        let uptime = self.inner.started.elapsed().as_secs_f64();
        let _ = writeln!(
            out,
            "# HELP otelcol_process_uptime Uptime of the process\n# TYPE otelcol_process_uptime counter\notelcol_process_uptime {uptime}"
        );
        if let Some((cpu, rss)) = process_cpu_and_rss() {
            let _ = writeln!(
                out,
                "# HELP otelcol_process_cpu_seconds Total CPU user and system time in seconds\n# TYPE otelcol_process_cpu_seconds counter\notelcol_process_cpu_seconds {cpu}"
            );
            let _ = writeln!(
                out,
                "# HELP otelcol_process_memory_rss Total physical memory (resident set size)\n# TYPE otelcol_process_memory_rss gauge\notelcol_process_memory_rss {rss}"
            );
        }
    }
}

/// CPU seconds and RSS bytes of this process, from /proc (Linux only).
fn process_cpu_and_rss() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, rss (pages) the 24th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ is 100 on every Linux ABI we build for.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some(((utime + stime) / ticks, rss_pages * 4096))
}

/// The unit the Collector counts a signal in, as it appears in metric names.
pub fn item_unit(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::Traces => "spans",
        SignalKind::Metrics => "metric_points",
        SignalKind::Logs => "log_records",
    }
}

macro_rules! per_signal_names {
    ($prefix:literal, $suffix:literal) => {
        [
            concat!($prefix, "spans", $suffix),
            concat!($prefix, "metric_points", $suffix),
            concat!($prefix, "log_records", $suffix),
        ]
    };
}

fn signal_index(kind: SignalKind) -> usize {
    match kind {
        SignalKind::Traces => 0,
        SignalKind::Metrics => 1,
        SignalKind::Logs => 2,
    }
}

/// A counter per signal, registered lazily so that only used signals show.
#[derive(Clone)]
struct PerSignal {
    counters: [Counter; 3],
}

impl PerSignal {
    fn new(
        t: &Telemetry,
        names: [&'static str; 3],
        help: &'static str,
        labels: &[(&str, &str)],
        signals: confluo_config::SignalSet,
    ) -> PerSignal {
        let make = |i: usize, kind: SignalKind| {
            if signals.contains(kind) {
                t.counter(names[i], help, labels)
            } else {
                Counter::default()
            }
        };
        PerSignal {
            counters: [
                make(0, SignalKind::Traces),
                make(1, SignalKind::Metrics),
                make(2, SignalKind::Logs),
            ],
        }
    }

    fn get(&self, kind: SignalKind) -> &Counter {
        &self.counters[signal_index(kind)]
    }
}

/// `otelcol_receiver_{accepted,refused,failed}_<items>` for one receiver and transport.
#[derive(Clone)]
pub struct ReceiverMetrics {
    accepted: PerSignal,
    refused: PerSignal,
    failed: PerSignal,
}

impl ReceiverMetrics {
    pub fn new(
        t: &Telemetry,
        receiver: &str,
        transport: &str,
        signals: confluo_config::SignalSet,
    ) -> ReceiverMetrics {
        let labels = [("receiver", receiver), ("transport", transport)];
        ReceiverMetrics {
            accepted: PerSignal::new(
                t,
                per_signal_names!("otelcol_receiver_accepted_", ""),
                "Number of items successfully pushed into the pipeline.",
                &labels,
                signals,
            ),
            refused: PerSignal::new(
                t,
                per_signal_names!("otelcol_receiver_refused_", ""),
                "Number of items that could not be pushed into the pipeline.",
                &labels,
                signals,
            ),
            failed: PerSignal::new(
                t,
                per_signal_names!("otelcol_receiver_failed_", ""),
                "Number of items that failed to be processed by the receiver due to internal errors.",
                &labels,
                signals,
            ),
        }
    }

    pub fn accepted(&self, kind: SignalKind, n: usize) {
        self.accepted.get(kind).add(n as u64);
    }
    pub fn refused(&self, kind: SignalKind, n: usize) {
        self.refused.get(kind).add(n as u64);
    }
    pub fn failed(&self, kind: SignalKind, n: usize) {
        self.failed.get(kind).add(n as u64);
    }
}

/// `otelcol_exporter_*` for one exporter.
#[derive(Clone)]
pub struct ExporterMetrics {
    sent: PerSignal,
    send_failed: PerSignal,
    enqueue_failed: PerSignal,
    pub queue_size: Gauge,
    pub queue_capacity: Gauge,
}

impl ExporterMetrics {
    pub fn new(
        t: &Telemetry,
        exporter: &str,
        signals: confluo_config::SignalSet,
    ) -> ExporterMetrics {
        let labels = [("exporter", exporter)];
        ExporterMetrics {
            sent: PerSignal::new(
                t,
                per_signal_names!("otelcol_exporter_sent_", ""),
                "Number of items successfully sent to destination.",
                &labels,
                signals,
            ),
            send_failed: PerSignal::new(
                t,
                per_signal_names!("otelcol_exporter_send_failed_", ""),
                "Number of items in failed attempts to send to destination.",
                &labels,
                signals,
            ),
            enqueue_failed: PerSignal::new(
                t,
                per_signal_names!("otelcol_exporter_enqueue_failed_", ""),
                "Number of items failed to be added to the sending queue.",
                &labels,
                signals,
            ),
            queue_size: t.gauge(
                "otelcol_exporter_queue_size",
                "Current size of the retry queue (in batches).",
                &labels,
            ),
            queue_capacity: t.gauge(
                "otelcol_exporter_queue_capacity",
                "Fixed capacity of the retry queue (in batches).",
                &labels,
            ),
        }
    }

    pub fn sent(&self, kind: SignalKind, n: usize) {
        self.sent.get(kind).add(n as u64);
    }
    pub fn send_failed(&self, kind: SignalKind, n: usize) {
        self.send_failed.get(kind).add(n as u64);
    }
    pub fn enqueue_failed(&self, kind: SignalKind, n: usize) {
        self.enqueue_failed.get(kind).add(n as u64);
    }
}

/// `otelcol_processor_{incoming,outgoing}_items` for one processor instance.
#[derive(Clone)]
pub struct ProcessorMetrics {
    pub incoming: Counter,
    pub outgoing: Counter,
}

impl ProcessorMetrics {
    pub fn new(t: &Telemetry, processor: &str, pipeline_signal: SignalKind) -> ProcessorMetrics {
        let signal = pipeline_signal.to_string();
        let labels = [("processor", processor), ("otel_signal", signal.as_str())];
        ProcessorMetrics {
            incoming: t.counter(
                "otelcol_processor_incoming_items",
                "Number of items passed to the processor.",
                &labels,
            ),
            outgoing: t.counter(
                "otelcol_processor_outgoing_items",
                "Number of items emitted from the processor.",
                &labels,
            ),
        }
    }
}

/// Lets one log line through per interval and counts the rest, so a burst of
/// bad requests or refusals logs once, not once per request.
pub struct BurstLog {
    start: Instant,
    /// Milliseconds since `start` of the last line, plus one (0 = never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl Default for BurstLog {
    fn default() -> Self {
        BurstLog::new()
    }
}

impl BurstLog {
    pub const INTERVAL_MS: u64 = 10_000;

    pub fn new() -> BurstLog {
        BurstLog {
            start: Instant::now(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one)` when a line may be logged.
    pub fn allow(&self) -> Option<u64> {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < Self::INTERVAL_MS {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // Only the thread that wins the exchange logs.
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_log_lets_one_line_through_per_interval() {
        let log = BurstLog::new();
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        // Pretend the interval has passed by moving the last line far back.
        let log2 = BurstLog {
            start: Instant::now() - std::time::Duration::from_millis(BurstLog::INTERVAL_MS * 2),
            last: AtomicU64::new(1),
            suppressed: AtomicU64::new(4),
        };
        assert_eq!(log2.allow(), Some(4));
    }

    #[test]
    fn renders_collector_names_and_labels() {
        let t = Telemetry::new();
        let m = ReceiverMetrics::new(&t, "otlp", "grpc", confluo_config::SignalSet::ALL);
        m.accepted(SignalKind::Traces, 7);
        m.accepted(SignalKind::Traces, 3);
        let text = t.render();
        assert!(
            text.contains(
                "otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 10\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE otelcol_receiver_accepted_spans counter"));
        assert!(text.contains("otelcol_process_memory_rss "));
    }

    #[test]
    fn label_values_are_escaped() {
        let t = Telemetry::new();
        t.counter("x", "h", &[("exporter", "a\"b\\c")]).add(1);
        assert!(t.render().contains("x{exporter=\"a\\\"b\\\\c\"} 1"));
    }
}
