//! The one-command orchestrator: sinks + confluo + load, measured from /proc.

use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::{self, LokiStats, TargetStats};
use crate::jsonload::{self, JsonLoadConfig};
use crate::load::{self, LoadConfig, SamplingModel};
use crate::procfs::{self, mib};
use crate::sink::{self, SinkStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// OTLP gRPC receiver → batch → OTLP gRPC exporter.
    OtlpBatchOtlp,
    /// OTLP gRPC receiver → OTLP gRPC exporter, no processor.
    OtlpOtlp,
    /// The otlp-batch-otlp pipeline with no load: idle CPU and RSS.
    Idle,
    /// structlog-shaped NDJSON → jsonlog receiver → batch → loki exporter →
    /// a counting Loki push sink.
    JsonlogLoki,
    /// otlp → otlp (pass-through), otlp → redaction{} → otlp and otlp →
    /// redaction{all detectors} → otlp, one after the other at the same load.
    Redaction,
    /// otlp → tail_sampling → batch → otlp with fresh trace ids; the sink
    /// gets only the sampled share, predicted by the harness.
    TailSampling,
    /// A 100,000-series exposition scraped by confluo's prometheus receiver,
    /// then by the `prometheus` binary.
    #[value(name = "scrape-100k")]
    Scrape100k,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::OtlpBatchOtlp => "otlp-batch-otlp",
            Scenario::OtlpOtlp => "otlp-otlp",
            Scenario::Idle => "idle",
            Scenario::JsonlogLoki => "jsonlog-loki",
            Scenario::Redaction => "redaction",
            Scenario::TailSampling => "tail-sampling",
            Scenario::Scrape100k => "scrape-100k",
        }
    }
}

/// `compression:` of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    None,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }
}

/// Options only some scenarios use.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    pub compression: Compression,
    pub lines_per_request: usize,
    pub decision_wait: Duration,
    pub sampling_percentage: f64,
    pub series: usize,
    pub scrape_interval: Duration,
    pub scrapes: u64,
    pub prometheus: Option<PathBuf>,
    /// redaction: rounds of its phases.
    pub rounds: usize,
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub confluo: PathBuf,
    pub scenario: Scenario,
    pub load: LoadConfig,
    pub options: ScenarioOptions,
    pub ready_timeout: Duration,
    pub drain_timeout: Duration,
    pub keep: bool,
    pub json_out: Option<PathBuf>,
}

/// What sits between the OTLP receiver and the OTLP exporter.
#[derive(Debug, Clone, PartialEq)]
pub enum OtlpPipeline {
    Batch,
    PassThrough,
    /// `redaction: {allow_all_keys: true}`: what any mutating processor
    /// costs (decoding, re-encoding), with no detector.
    RedactionNoop,
    /// The built-in detectors only (the processor's micro-benchmark config).
    RedactionDetectors,
    RedactionAll,
    TailSampling {
        decision_wait: Duration,
        percentage: f64,
        num_traces: u64,
        new_traces_per_sec: u64,
    },
}

/// The built-in detectors, nothing else.
const REDACTION_DETECTORS: &str = "    allow_all_keys: true
    detectors: [credit_card, email, jwt, bearer_token, authorization, aws_access_key, private_key, password_keys]
";

/// Every detector, blocked value patterns for cards, e-mails, SSNs and
/// IBANs, the URL and SQL sanitizers; values are masked (`****`).
const REDACTION_ALL: &str = r#"    allow_all_keys: true
    blocked_values:
      - '\b(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|3[47][0-9]{13})\b'
      - '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'
      - '\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b'
      - '\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b'
    blocked_key_patterns: ['(?i)session[_.-]?id']
    detectors: [credit_card, email, jwt, bearer_token, authorization, aws_access_key, private_key, password_keys]
    url_sanitizer:
      enabled: true
    db_sanitizer:
      sql:
        enabled: true
"#;

/// The confluo config for an OTLP → OTLP scenario, in the Collector's shape.
pub fn otlp_config(
    name: &str,
    pipeline: &OtlpPipeline,
    compression: Compression,
    receiver: SocketAddr,
    sink: SocketAddr,
    telemetry: SocketAddr,
) -> String {
    let (processors, list) = match pipeline {
        OtlpPipeline::Batch => ("  batch: {}\n".to_string(), "[batch]"),
        OtlpPipeline::PassThrough => (String::new(), "[]"),
        OtlpPipeline::RedactionNoop => (
            "  redaction:\n    allow_all_keys: true\n".to_string(),
            "[redaction]",
        ),
        OtlpPipeline::RedactionDetectors => (
            format!("  redaction:\n{REDACTION_DETECTORS}"),
            "[redaction]",
        ),
        OtlpPipeline::RedactionAll => (format!("  redaction:\n{REDACTION_ALL}"), "[redaction]"),
        OtlpPipeline::TailSampling {
            decision_wait,
            percentage,
            num_traces,
            new_traces_per_sec,
        } => (
            format!(
                "  tail_sampling:
    decision_wait: {}ms
    num_traces: {num_traces}
    expected_new_traces_per_sec: {new_traces_per_sec}
    policies:
      - name: errors
        type: status_code
        status_code: {{ status_codes: [ERROR] }}
      - name: baseline
        type: probabilistic
        probabilistic: {{ sampling_percentage: {percentage} }}
  batch: {{}}
",
                decision_wait.as_millis()
            ),
            "[tail_sampling, batch]",
        ),
    };
    let processors = if processors.is_empty() {
        String::new()
    } else {
        format!("processors:\n{processors}")
    };
    format!(
        "# generated by confluo-bench, scenario {name}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {receiver}
{processors}exporters:
  otlp_grpc:
    endpoint: {sink}
    compression: {compression}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      address: {telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      processors: {list}
      exporters: [otlp_grpc]
",
        compression = compression.name(),
    )
}

/// jsonlog → batch → loki (push protobuf + snappy, the exporter's defaults).
pub fn jsonlog_loki_config(
    receiver: SocketAddr,
    sink: SocketAddr,
    telemetry: SocketAddr,
) -> String {
    format!(
        "# generated by confluo-bench, scenario jsonlog-loki
receivers:
  jsonlog:
    endpoint: {receiver}
processors:
  batch: {{}}
exporters:
  loki:
    endpoint: http://{sink}/loki/api/v1/push
service:
  telemetry:
    metrics:
      address: {telemetry}
  pipelines:
    logs:
      receivers: [jsonlog]
      processors: [batch]
      exporters: [loki]
"
    )
}

/// prometheus receiver → otlp_grpc (no compression) → the counting sink.
pub fn scrape_config(
    target: SocketAddr,
    interval: Duration,
    sink: SocketAddr,
    telemetry: SocketAddr,
) -> String {
    let ms = interval.as_millis();
    format!(
        "# generated by confluo-bench, scenario scrape-100k
receivers:
  prometheus:
    config:
      global:
        scrape_interval: {ms}ms
        scrape_timeout: {ms}ms
      scrape_configs:
        - job_name: bench
          static_configs:
            - targets: ['{target}']
exporters:
  otlp_grpc:
    endpoint: {sink}
    compression: none
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      address: {telemetry}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [otlp_grpc]
"
    )
}

fn prometheus_config(target: SocketAddr, interval: Duration) -> String {
    let ms = interval.as_millis();
    format!(
        "# generated by confluo-bench, scenario scrape-100k
global:
  scrape_interval: {ms}ms
  scrape_timeout: {ms}ms
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: ['{target}']
"
    )
}

fn free_port() -> anyhow::Result<SocketAddr> {
    // Bind to port 0 and release: a small race, acceptable on a bench box.
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Minimal HTTP/1.0 GET (no chunked encoding) → (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP response")?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// `/metrics` of `addr`, or "" after three failed tries (a busy machine can
/// make a read fail; the figures that need it then come out empty).
async fn metrics_text(addr: SocketAddr) -> String {
    for _ in 0..3 {
        let got = tokio::time::timeout(Duration::from_secs(5), http_get(addr, "/metrics")).await;
        if let Ok(Ok((200, body))) = got {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    String::new()
}

/// Sum of a Prometheus metric's samples whose labels contain `label`
/// (accepts the name with or without a `_total` suffix).
fn prom_value(text: &str, name: &str, label: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line
            .strip_prefix(name)
            .map(|r| r.strip_prefix("_total").unwrap_or(r))
        else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        if !labels.contains(label) {
            continue;
        }
        if let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// A measured child process (confluo or prometheus); killed if the run
/// bails out early.
struct Proc {
    child: Child,
    log: PathBuf,
    exited: bool,
}

impl Proc {
    fn spawn(bin: &Path, args: &[&std::ffi::OsStr], log: PathBuf) -> anyhow::Result<Self> {
        let log_file = File::create(&log)?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        Ok(Self {
            child,
            log,
            exited: false,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.exited = true;
            bail!(
                "process exited early ({status}); log {}:\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Polls `GET path` every 25 ms until it answers 200.
    async fn wait_ready(
        &mut self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let t = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok((200, _)) = http_get(addr, path).await {
                return Ok(t.elapsed());
            }
            if t.elapsed() > timeout {
                bail!("not ready after {timeout:?}; log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM, then wait (polling) up to `grace`; SIGKILL after that.
    async fn terminate(
        &mut self,
        grace: Duration,
    ) -> anyhow::Result<(Duration, Option<i32>, bool)> {
        let t = Instant::now();
        self.signal(libc::SIGTERM);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                return Ok((t.elapsed(), status.code(), true));
            }
            if t.elapsed() > grace {
                self.signal(libc::SIGKILL);
                let status = self.child.wait()?;
                self.exited = true;
                return Ok((t.elapsed(), status.code(), false));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Polls VmRSS until two consecutive readings (250 ms apart) agree within
/// 64 KiB, for at most `limit`. Returns (bytes, settled).
async fn settled_rss(pid: u32, limit: Duration) -> anyhow::Result<(u64, bool)> {
    let t = Instant::now();
    let mut prev = procfs::status_bytes(pid, "VmRSS")?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let cur = procfs::status_bytes(pid, "VmRSS")?;
        if cur.abs_diff(prev) <= 64 * 1024 {
            return Ok((cur, true));
        }
        if t.elapsed() > limit {
            return Ok((cur, false));
        }
        prev = cur;
    }
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1048576.0);
    serde_json::json!({"cpus": cpus, "cpu_model": model, "mem_gib": (mem_gib * 10.0).round() / 10.0})
}

/// 1-minute load average: anything well above 0 means the figures compete
/// with other work on the machine.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn temp_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "confluo-bench-{name}-{}-{}",
        std::process::id(),
        unix_time()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// confluo started on a config and ready, with its idle RSS.
struct Started {
    proc: Proc,
    pid: u32,
    dir: PathBuf,
    startup: Duration,
    idle_rss: u64,
    idle_settled: bool,
}

async fn start_confluo(
    cfg: &RunConfig,
    name: &str,
    telemetry: SocketAddr,
    config: String,
) -> anyhow::Result<Started> {
    let bin = cfg.confluo.canonicalize().with_context(|| {
        format!(
            "confluo binary {} not found (build it: cargo build --release -p confluo)",
            cfg.confluo.display()
        )
    })?;
    let dir = temp_dir(&name.replace('/', "-"))?;
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config)?;
    let mut proc = Proc::spawn(
        &bin,
        &["run".as_ref(), "--config".as_ref(), config_path.as_os_str()],
        dir.join("confluo.log"),
    )?;
    let pid = proc.pid();
    eprintln!(
        "bench: {name} pid {pid}, config {}, telemetry {telemetry}",
        config_path.display()
    );
    let startup = proc
        .wait_ready(telemetry, "/health/ready", cfg.ready_timeout)
        .await?;
    let (idle_rss, idle_settled) = settled_rss(pid, Duration::from_secs(10)).await?;
    Ok(Started {
        proc,
        pid,
        dir,
        startup,
        idle_rss,
        idle_settled,
    })
}

/// Shared figures of a measured window, in the unit of the scenario.
#[allow(clippy::too_many_arguments)]
fn figures(
    name: &str,
    unit: &str,
    rate_target: Option<u64>,
    sent: u64,
    received: u64,
    cpu_s: f64,
    window: Duration,
    peak_rss: u64,
    idle_rss: u64,
    loadavg_start: Option<f64>,
) -> serde_json::Value {
    let window_s = window.as_secs_f64().max(1e-9);
    serde_json::json!({
        "scenario": name,
        // The measured process: confluo, or prometheus in scrape-100k.
        "process": name.rsplit_once('/').map_or("confluo", |(_, p)| if p == "prometheus" { p } else { "confluo" }),
        "unit": unit,
        "date_unix": unix_time(),
        "machine": machine(),
        "loadavg_1m_at_start": loadavg_start,
        "loadavg_1m_at_end": loadavg(),
        "rate_target": rate_target,
        "items_sent": sent,
        "items_received": received,
        "items_lost": sent as i64 - received as i64,
        "window_s": window_s,
        "items_per_sec": received as f64 / window_s,
        "process_cpu_s": cpu_s,
        "process_cpu_percent": cpu_s / window_s * 100.0,
        "cpu_s_per_million": (received > 0).then(|| cpu_s / (received as f64 / 1e6)),
        "items_per_cpu_s": (cpu_s > 0.0).then(|| received as f64 / cpu_s),
        "peak_rss_mib": mib(peak_rss),
        "idle_rss_mib": mib(idle_rss),
    })
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
}

/// Waits until `count()` reaches `want`, or it stops moving for `stall`, or
/// `limit` passes. Returns whether it got there.
async fn drain(
    proc: &mut Proc,
    want: u64,
    count: impl Fn() -> u64,
    stall: Duration,
    limit: Duration,
) -> anyhow::Result<bool> {
    let t = Instant::now();
    let mut last = (count(), Instant::now());
    loop {
        let got = count();
        if got >= want {
            return Ok(true);
        }
        if got != last.0 {
            last = (got, Instant::now());
        }
        if t.elapsed() > limit || last.1.elapsed() > stall {
            return Ok(false);
        }
        proc.check_alive()?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Tail-sampling monitor readings: (seconds since load start, VmRSS bytes,
/// traces held, accounted held bytes).
type Reading = (f64, u64, f64, f64);

async fn monitor(
    pid: u32,
    telemetry: SocketAddr,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Reading>>>,
) {
    let t = Instant::now();
    while !stop.load(Relaxed) {
        let rss = procfs::status_bytes(pid, "VmRSS").unwrap_or(0);
        let text = metrics_text(telemetry).await;
        let traces = prom_value(
            &text,
            "otelcol_processor_tail_sampling_sampling_traces_on_memory",
            "",
        )
        .unwrap_or(f64::NAN);
        let held =
            prom_value(&text, "otelcol_processor_tail_sampling_held_bytes", "").unwrap_or(f64::NAN);
        out.lock().unwrap_or_else(|e| e.into_inner()).push((
            t.elapsed().as_secs_f64(),
            rss,
            traces,
            held,
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One OTLP → OTLP phase: sink, confluo, load, drain, figures.
async fn otlp_phase(
    cfg: &RunConfig,
    name: &str,
    pipeline: OtlpPipeline,
    compression: Compression,
) -> anyhow::Result<serde_json::Value> {
    let loadavg_start = loadavg();
    let stats = Arc::new(SinkStats::default());
    let (sink_addr, serve) = sink::bind("127.0.0.1:0".parse()?, stats.clone()).await?;
    let sink_task = tokio::spawn(serve);
    let receiver = free_port()?;
    let telemetry = free_port()?;
    let config = otlp_config(name, &pipeline, compression, receiver, sink_addr, telemetry);
    let mut st = start_confluo(cfg, name, telemetry, config).await?;
    let pid = st.pid;

    let tail_wait = match &pipeline {
        OtlpPipeline::TailSampling { decision_wait, .. } => Some(*decision_wait),
        _ => None,
    };
    let cpu_before = procfs::cpu_time(pid)?;
    let bench_cpu_before = procfs::cpu_time(std::process::id())?;
    let window_start = Instant::now();
    let idle = cfg.scenario == Scenario::Idle;
    let mut load_report = None;
    let mut drained = true;
    let readings = Arc::new(Mutex::new(Vec::new()));
    if idle {
        tokio::time::sleep(cfg.load.duration).await;
        st.proc.check_alive()?;
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        let mon = tail_wait
            .map(|_| tokio::spawn(monitor(pid, telemetry, stop.clone(), readings.clone())));
        let mut lcfg = LoadConfig {
            target: receiver,
            ..cfg.load.clone()
        };
        if let OtlpPipeline::TailSampling { percentage, .. } = pipeline {
            lcfg.fresh_trace_ids = true;
            lcfg.sampling = Some(SamplingModel {
                salt: b"default-hash-seed".to_vec(),
                percentage,
                keep_errors: true,
            });
        }
        let report = load::run(&lcfg).await;
        stop.store(true, Relaxed);
        if let Some(m) = mon {
            let _ = m.await;
        }
        let report = report?;
        // Sampling-aware: the sink gets only what the policies keep, and the
        // last traces are decided `decision_wait` after their first span.
        let want = report.spans_expected_sampled.unwrap_or(report.spans_sent);
        let stall = tail_wait.map_or(Duration::from_secs(5), |w| w + Duration::from_secs(3));
        let limit = cfg.drain_timeout.max(stall * 2);
        drained = drain(
            &mut st.proc,
            want,
            || stats.spans.load(Relaxed),
            stall,
            limit,
        )
        .await?;
        load_report = Some(report);
    }
    let cpu = procfs::cpu_time(pid)?
        .saturating_sub(cpu_before)
        .as_secs_f64();
    let bench_cpu = procfs::cpu_time(std::process::id())?.saturating_sub(bench_cpu_before);
    let window_end = match (&load_report, stats.last_request()) {
        (Some(r), Some(last)) => last.max(window_start + r.elapsed),
        (Some(r), None) => window_start + r.elapsed,
        _ => Instant::now(),
    };
    let window = window_end.saturating_duration_since(window_start);
    let peak_rss = procfs::status_bytes(pid, "VmHWM")?;
    let end_rss = procfs::status_bytes(pid, "VmRSS")?;
    let text = metrics_text(telemetry).await;
    let exporter_sent = prom_value(
        &text,
        "otelcol_exporter_sent_spans",
        "exporter=\"otlp_grpc\"",
    );
    let receiver_accepted = prom_value(&text, "otelcol_receiver_accepted_spans", "");
    let (shutdown, exit_code, graceful) = st.proc.terminate(Duration::from_secs(15)).await?;
    sink_task.abort();

    let received = stats.spans.load(Relaxed);
    let acked = load_report.as_ref().map_or(0, |r| r.spans_sent);
    let sent = load_report
        .as_ref()
        .map_or(0, |r| r.spans_expected_sampled.unwrap_or(r.spans_sent));
    let rate_target = (!idle).then_some(cfg.load.rate);
    let mut result = figures(
        name,
        "spans",
        rate_target,
        sent,
        received,
        cpu,
        window,
        peak_rss,
        st.idle_rss,
        loadavg_start,
    );
    let window_s = window.as_secs_f64().max(1e-9);
    merge(
        &mut result,
        serde_json::json!({
            "compression": compression.name(),
            "duration_s": cfg.load.duration.as_secs_f64(),
            "spans_per_request": cfg.load.shape.spans_per_request,
            "attrs_per_span": cfg.load.shape.attrs_per_span,
            "connections": cfg.load.connections,
            "inflight": cfg.load.inflight,
            "spans_acked": acked,
            "drained": drained,
            "load": load_report.as_ref().map(|r| r.json()),
            // Spans confluo acknowledged per second of load (for tail
            // sampling more than the sink receives).
            "spans_in_per_sec": load_report.as_ref().map(|r| r.spans_per_sec()),
            "cpu_s_per_million_in": (acked > 0).then(|| cpu / (acked as f64 / 1e6)),
            "bytes_per_sec_in": load_report.as_ref().map(|r| r.bytes_sent as f64 / window_s),
            "bytes_per_sec_out": stats.bytes.load(Relaxed) as f64 / window_s,
            "bench_cpu_s": bench_cpu.as_secs_f64(),
            "idle_rss_settled": st.idle_settled,
            "end_rss_mib": mib(end_rss),
            "startup_ms": st.startup.as_millis() as u64,
            "shutdown_ms": shutdown.as_millis() as u64,
            "graceful_exit": graceful,
            "exit_code": exit_code,
            "exporter_sent_spans_metric": exporter_sent,
            "receiver_accepted_spans_metric": receiver_accepted,
        }),
    );
    if let (Some(wait), Some(r)) = (tail_wait, &load_report) {
        merge(
            &mut result,
            held_span_figures(&readings, wait, r, st.idle_rss, &text),
        );
    }
    finish(cfg, &result, &st.dir, graceful && drained)?;
    Ok(result)
}

/// Bytes per held span at steady state: readings taken after the first
/// `decision_wait` (+1 s) of the load, when decisions release as many traces
/// as arrive.
fn held_span_figures(
    readings: &Mutex<Vec<Reading>>,
    wait: Duration,
    r: &load::LoadReport,
    idle_rss: u64,
    final_metrics: &str,
) -> serde_json::Value {
    let readings = readings.lock().unwrap_or_else(|e| e.into_inner());
    let from = wait.as_secs_f64() + 1.0;
    let to = r.elapsed.as_secs_f64();
    let steady: Vec<&Reading> = readings
        .iter()
        .filter(|x| x.0 >= from && x.0 <= to && x.2.is_finite())
        .collect();
    let spans_per_trace = r.spans_sent as f64 / (r.traces_sent.max(1)) as f64;
    let n = steady.len() as f64;
    let (rss, traces, held) = steady.iter().fold((0.0, 0.0, 0.0), |a, x| {
        (a.0 + x.1 as f64 / n, a.1 + x.2 / n, a.2 + x.3 / n)
    });
    let spans_held = traces * spans_per_trace;
    let ok = n > 0.0 && spans_held > 0.0;
    serde_json::json!({
        "decision_wait_s": wait.as_secs_f64(),
        "steady_readings": steady.len(),
        "steady_rss_mib": ok.then(|| rss / 1048576.0),
        "steady_traces_held": ok.then_some(traces),
        "steady_spans_held": ok.then_some(spans_held),
        "bytes_per_held_span_rss": ok.then(|| (rss - idle_rss as f64) / spans_held),
        "bytes_per_held_span_accounted": (ok && held.is_finite()).then(|| held / spans_held),
        "traces_sent": r.traces_sent,
        "traces_sampled_metric": prom_value(final_metrics, "otelcol_processor_tail_sampling_global_count_traces_sampled", "sampled=\"true\""),
        "traces_dropped_too_early_metric": prom_value(final_metrics, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early", ""),
    })
}

/// Prints, appends the JSON line, removes or keeps the temp dir.
fn finish(
    cfg: &RunConfig,
    result: &serde_json::Value,
    dir: &Path,
    clean: bool,
) -> anyhow::Result<()> {
    print_result(result);
    let line = serde_json::to_string(result)?;
    println!("{line}");
    if let Some(path) = &cfg.json_out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{line}")?;
    }
    if cfg.keep || !clean {
        eprintln!("bench: kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

async fn jsonlog_loki(cfg: &RunConfig) -> anyhow::Result<serde_json::Value> {
    let name = Scenario::JsonlogLoki.name();
    let loadavg_start = loadavg();
    let stats = Arc::new(LokiStats::default());
    let (sink_addr, serve) = http::bind_loki(stats.clone()).await?;
    let sink_task = tokio::spawn(serve);
    let receiver = free_port()?;
    let telemetry = free_port()?;
    let mut st = start_confluo(
        cfg,
        name,
        telemetry,
        jsonlog_loki_config(receiver, sink_addr, telemetry),
    )
    .await?;
    let pid = st.pid;
    let cpu_before = procfs::cpu_time(pid)?;
    let bench_cpu_before = procfs::cpu_time(std::process::id())?;
    let window_start = Instant::now();
    let lcfg = JsonLoadConfig {
        target: receiver,
        path: "/v1/logs/json".into(),
        lines_per_request: cfg.options.lines_per_request,
        rate: cfg.load.rate,
        duration: cfg.load.duration,
        connections: cfg.load.connections * cfg.load.inflight,
        pool: cfg.load.pool,
        timeout: cfg.load.timeout,
    };
    let report = jsonload::run(&lcfg).await?;
    let drained = drain(
        &mut st.proc,
        report.lines_accepted,
        || stats.entries.load(Relaxed),
        Duration::from_secs(5),
        cfg.drain_timeout,
    )
    .await?;
    let cpu = procfs::cpu_time(pid)?
        .saturating_sub(cpu_before)
        .as_secs_f64();
    let bench_cpu = procfs::cpu_time(std::process::id())?.saturating_sub(bench_cpu_before);
    let window_end = stats
        .last_push()
        .map_or(window_start + report.elapsed, |l| {
            l.max(window_start + report.elapsed)
        });
    let window = window_end.saturating_duration_since(window_start);
    let peak_rss = procfs::status_bytes(pid, "VmHWM")?;
    let text = metrics_text(telemetry).await;
    let (shutdown, _, graceful) = st.proc.terminate(Duration::from_secs(15)).await?;
    sink_task.abort();
    let received = stats.entries.load(Relaxed);
    let mut result = figures(
        name,
        "lines",
        Some(cfg.load.rate),
        report.lines_accepted,
        received,
        cpu,
        window,
        peak_rss,
        st.idle_rss,
        loadavg_start,
    );
    let window_s = window.as_secs_f64().max(1e-9);
    merge(
        &mut result,
        serde_json::json!({
            "duration_s": cfg.load.duration.as_secs_f64(),
            "lines_per_request": cfg.options.lines_per_request,
            "connections": lcfg.connections,
            "drained": drained,
            "load": report.json(),
            "bytes_per_sec_in": report.bytes_sent as f64 / window_s,
            "loki_pushes": stats.pushes.load(Relaxed),
            "loki_malformed_pushes": stats.malformed.load(Relaxed),
            "loki_bytes_decompressed": stats.bytes.load(Relaxed),
            "bench_cpu_s": bench_cpu.as_secs_f64(),
            "startup_ms": st.startup.as_millis() as u64,
            "shutdown_ms": shutdown.as_millis() as u64,
            "graceful_exit": graceful,
            "receiver_accepted_metric": prom_value(&text, "otelcol_receiver_accepted_log_records", ""),
            "exporter_sent_metric": prom_value(&text, "otelcol_exporter_sent_log_records", "exporter=\"loki\""),
        }),
    );
    finish(cfg, &result, &st.dir, graceful && drained)?;
    Ok(result)
}

/// Four phases at the same load: pass-through, a do-nothing redaction (the
/// cost of any mutating processor), all built-in detectors (the issue's
/// target) and everything on. Phases of one round are seconds apart and the
/// machine's other load drifts, so `rounds` rounds alternate the order and
/// each phase's median is compared.
async fn redaction(cfg: &RunConfig) -> anyhow::Result<serde_json::Value> {
    let c = cfg.options.compression;
    let phases = [
        ("redaction/pass-through", OtlpPipeline::PassThrough),
        ("redaction/noop", OtlpPipeline::RedactionNoop),
        (
            "redaction/builtin-detectors",
            OtlpPipeline::RedactionDetectors,
        ),
        ("redaction/everything", OtlpPipeline::RedactionAll),
    ];
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    for round in 0..cfg.options.rounds {
        let mut order: Vec<usize> = (0..phases.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, pipeline) = &phases[i];
            let r = otlp_phase(cfg, name, pipeline.clone(), c).await?;
            if let Some(us) = r["cpu_s_per_million"].as_f64() {
                runs[i].push(us);
            }
        }
    }
    let median = |v: &mut Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    let [base, noop, builtin, all] = [0, 1, 2, 3].map(|i| median(&mut runs[i]));
    let minus = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let added_builtin = minus(builtin, base);
    let added_all = minus(all, base);
    let walk = minus(noop, base);
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let summary = format!(
        "redaction, {} attributes per span, compression {}, median of {} rounds: CPU µs per span pass-through {}, redaction{{}} {}, all built-in detectors {}, everything on {}; added by redaction with all built-in detectors {} µs per span (target < 1: {}); added by everything on (detectors, 4 value patterns, a blocked key pattern, URL and SQL sanitizers) {} µs; added by redaction{{}} {} µs",
        cfg.load.shape.attrs_per_span,
        c.name(),
        cfg.options.rounds,
        f(base),
        f(noop),
        f(builtin),
        f(all),
        f(added_builtin),
        added_builtin.map_or("-", |v| if v < 1.0 { "PASS" } else { "FAIL" }),
        f(added_all),
        f(walk),
    );
    let result = serde_json::json!({
        "scenario": "redaction",
        "summary": summary,
        "rounds": cfg.options.rounds,
        "cpu_s_per_million_runs": {
            "pass_through": runs[0], "noop": runs[1], "builtin_detectors": runs[2], "everything": runs[3],
        },
        "us_per_span_added_builtin_detectors": added_builtin,
        "us_per_span_added_everything": added_all,
        "us_per_span_added_noop": walk,
        "date_unix": unix_time(),
    });
    println!("{summary}");
    append_json(cfg, &result)?;
    Ok(result)
}

fn append_json(cfg: &RunConfig, v: &serde_json::Value) -> anyhow::Result<()> {
    if let Some(path) = &cfg.json_out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{}", serde_json::to_string(v)?)?;
    }
    Ok(())
}

/// Scrape-window measurement of one scraper. `items()` reads how much the
/// scraper has fully processed (points at the sink, or samples appended to
/// Prometheus's TSDB), `per_scrape` of them per scrape. The window opens
/// once the first scrape (which creates every series) is processed and no
/// other has started, and closes once `scrapes` more are processed; it is
/// read only at those two moments, so the reads cost the scraper next to
/// nothing.
struct ScrapeWindow {
    cpu_s: f64,
    window: Duration,
    scrapes: u64,
    items: u64,
}

async fn scrape_window(
    proc: &mut Proc,
    target: &TargetStats,
    interval: Duration,
    scrapes: u64,
    per_scrape: u64,
    items: impl AsyncFn() -> u64,
) -> anyhow::Result<ScrapeWindow> {
    let pid = proc.pid();
    let limit = interval * (scrapes as u32 + 3) + Duration::from_secs(60);
    let t = Instant::now();
    let timed_out = |what: &str| -> anyhow::Result<()> {
        if t.elapsed() > limit {
            bail!(
                "scrape window: gave up waiting for {what} ({} scrapes served)",
                target.scrapes.load(Relaxed)
            );
        }
        Ok(())
    };
    let served = |n: u64| async move {
        while target.scrapes.load(Relaxed) < n {
            timed_out(&format!("scrape {n} to be served"))?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(())
    };
    let processed = |n: u64| {
        let items = &items;
        async move {
            loop {
                let got = items().await;
                if got >= n * per_scrape {
                    return anyhow::Ok(got);
                }
                timed_out(&format!("scrape {n} to be processed"))?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    served(1).await?;
    let (k0, items0, cpu0) = loop {
        let k = target.scrapes.load(Relaxed);
        let got = processed(k).await?;
        let cpu = procfs::cpu_time(pid)?;
        if target.scrapes.load(Relaxed) == k {
            break (k, got, cpu);
        }
    };
    proc.check_alive()?;
    let t0 = Instant::now();
    served(k0 + scrapes).await?;
    let items1 = processed(k0 + scrapes).await?;
    let cpu1 = procfs::cpu_time(pid)?;
    proc.check_alive()?;
    Ok(ScrapeWindow {
        cpu_s: cpu1.saturating_sub(cpu0).as_secs_f64(),
        window: t0.elapsed(),
        scrapes: (items1 - items0) / per_scrape,
        items: items1 - items0,
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// Prometheus started on its own config, ready, with its idle RSS.
struct StartedProm {
    proc: Proc,
    web: SocketAddr,
    dir: PathBuf,
    startup: Duration,
    idle_rss: u64,
    version: Option<String>,
}

async fn start_prometheus(
    cfg: &RunConfig,
    bin: &Path,
    target: SocketAddr,
) -> anyhow::Result<StartedProm> {
    let web = free_port()?;
    let dir = temp_dir("scrape-100k-prometheus")?;
    let config_path = dir.join("prometheus.yml");
    std::fs::write(
        &config_path,
        prometheus_config(target, cfg.options.scrape_interval),
    )?;
    let args: Vec<std::ffi::OsString> = vec![
        format!("--config.file={}", config_path.display()).into(),
        format!("--storage.tsdb.path={}", dir.join("data").display()).into(),
        format!("--web.listen-address={web}").into(),
        "--log.level=warn".into(),
    ];
    let arg_refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let mut proc = Proc::spawn(bin, &arg_refs, dir.join("prometheus.log"))?;
    eprintln!(
        "bench: scrape-100k/prometheus pid {}, config {}, web {web}",
        proc.pid(),
        config_path.display()
    );
    let startup = proc.wait_ready(web, "/-/ready", cfg.ready_timeout).await?;
    let (idle_rss, _) = settled_rss(proc.pid(), Duration::from_secs(10)).await?;
    let version = Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string));
    Ok(StartedProm {
        proc,
        web,
        dir,
        startup,
        idle_rss,
        version,
    })
}

/// confluo and Prometheus scrape the same exposition (each from its own
/// target, to count its scrapes) at the same time, so that both see the same
/// machine; each one's CPU is its own process's.
async fn scrape_100k(cfg: &RunConfig) -> anyhow::Result<serde_json::Value> {
    let o = &cfg.options;
    let (text, expo) = crate::expo::build(o.series);
    let body = bytes::Bytes::from(text);
    eprintln!(
        "bench: exposition of {} samples ({} counters, {} gauges, {} histograms), {} bytes",
        expo.samples, expo.counters, expo.gauges, expo.histogram_series, expo.bytes
    );
    // OTLP points per scrape: one per counter and gauge, one per histogram,
    // plus the five series a scrape reports about itself (`up`,
    // `scrape_duration_seconds`, `scrape_samples_scraped`,
    // `scrape_samples_post_metric_relabeling`, `scrape_series_added`).
    let points_per_scrape = (expo.counters + expo.gauges + expo.histogram_series) as u64 + 5;
    let samples = expo.samples as u64;
    let loadavg_start = loadavg();

    // confluo's prometheus receiver → otlp_grpc → counting sink.
    let c_target_stats = Arc::new(TargetStats::default());
    let (c_target, serve) = http::bind_target(body.clone(), c_target_stats.clone()).await?;
    let c_target_task = tokio::spawn(serve);
    let stats = Arc::new(SinkStats::default());
    let (sink_addr, serve) = sink::bind("127.0.0.1:0".parse()?, stats.clone()).await?;
    let sink_task = tokio::spawn(serve);
    let telemetry = free_port()?;
    let mut st = start_confluo(
        cfg,
        "scrape-100k/confluo",
        telemetry,
        scrape_config(c_target, o.scrape_interval, sink_addr, telemetry),
    )
    .await?;

    // The Prometheus server, when there is one.
    let prom_bin = o.prometheus.clone().or_else(|| find_in_path("prometheus"));
    let p_target_stats = Arc::new(TargetStats::default());
    let (p_target, serve) = http::bind_target(body.clone(), p_target_stats.clone()).await?;
    let p_target_task = tokio::spawn(serve);
    let mut prom = match &prom_bin {
        Some(bin) => Some(start_prometheus(cfg, bin, p_target).await?),
        None => {
            eprintln!("bench: no prometheus binary (PATH or --prometheus): skipping its scrape");
            None
        }
    };

    let confluo_window = scrape_window(
        &mut st.proc,
        &c_target_stats,
        o.scrape_interval,
        o.scrapes,
        points_per_scrape,
        async || stats.points.load(Relaxed),
    );
    // Prometheus appends the 5 scrape-report series too.
    let prom_per_scrape = samples + 5;
    let prom_window = async {
        match prom.as_mut() {
            Some(p) => {
                let web = p.web;
                scrape_window(
                    &mut p.proc,
                    &p_target_stats,
                    o.scrape_interval,
                    o.scrapes,
                    prom_per_scrape,
                    async || {
                        let t = metrics_text(web).await;
                        prom_value(&t, "prometheus_tsdb_head_samples_appended", "")
                            .map_or(0, |v| v as u64)
                    },
                )
                .await
                .map(Some)
            }
            None => Ok(None),
        }
    };
    let (cw, pw) = tokio::join!(confluo_window, prom_window);
    let (cw, pw) = (cw?, pw?);
    let loadavg_end = loadavg();
    let mut results = Vec::new();

    {
        let points = cw.items;
        let peak_rss = procfs::status_bytes(st.pid, "VmHWM")?;
        let text = metrics_text(telemetry).await;
        let (_, _, graceful) = st.proc.terminate(Duration::from_secs(15)).await?;
        sink_task.abort();
        c_target_task.abort();
        let mut r = figures(
            "scrape-100k/confluo",
            "samples",
            None,
            cw.scrapes * samples,
            cw.scrapes * samples,
            cw.cpu_s,
            cw.window,
            peak_rss,
            st.idle_rss,
            loadavg_start,
        );
        merge(
            &mut r,
            serde_json::json!({
                "loadavg_1m_at_end": loadavg_end,
                "scrapes": cw.scrapes,
                "samples_per_scrape": samples,
                "exposition_bytes": expo.bytes,
                "scrape_interval_s": o.scrape_interval.as_secs_f64(),
                "concurrent_with_prometheus": prom.is_some(),
                "sink_points_in_window": points,
                "points_per_scrape_expected": points_per_scrape,
                "cpu_ms_per_scrape": cw.cpu_s * 1000.0 / cw.scrapes.max(1) as f64,
                "receiver_accepted_points_metric": prom_value(&text, "otelcol_receiver_accepted_metric_points", ""),
                "graceful_exit": graceful,
            }),
        );
        // Every scrape in the window must have reached the sink.
        let complete = points == cw.scrapes * points_per_scrape;
        if !complete {
            eprintln!(
                "WARNING: sink got {points} points in the window, expected {} ({} scrapes)",
                cw.scrapes * points_per_scrape,
                cw.scrapes
            );
        }
        finish(cfg, &r, &st.dir, graceful && complete)?;
        results.push(r);
    }

    if let (Some(mut p), Some(pw)) = (prom, pw) {
        let appended = pw.items;
        let peak_rss = procfs::status_bytes(p.proc.pid(), "VmHWM")?;
        let (_, _, graceful) = p.proc.terminate(Duration::from_secs(15)).await?;
        let mut r = figures(
            "scrape-100k/prometheus",
            "samples",
            None,
            pw.scrapes * samples,
            pw.scrapes * samples,
            pw.cpu_s,
            pw.window,
            peak_rss,
            p.idle_rss,
            loadavg_start,
        );
        merge(
            &mut r,
            serde_json::json!({
                "loadavg_1m_at_end": loadavg_end,
                "scrapes": pw.scrapes,
                "samples_per_scrape": samples,
                "scrape_interval_s": o.scrape_interval.as_secs_f64(),
                "tsdb_samples_appended_in_window": appended,
                "cpu_ms_per_scrape": pw.cpu_s * 1000.0 / pw.scrapes.max(1) as f64,
                "startup_ms": p.startup.as_millis() as u64,
                "graceful_exit": graceful,
                "prometheus_version": p.version,
                "note": "includes Prometheus's TSDB append (head + WAL)",
            }),
        );
        finish(cfg, &r, &p.dir, graceful)?;
        results.push(r);
    }
    p_target_task.abort();
    if let [c, p] = &results[..] {
        let summary = format!(
            "scrape of {samples} samples every {:?}, both scrapers at once: confluo {} samples per CPU-second ({} ms CPU per scrape, peak RSS {} MiB), prometheus {} samples per CPU-second ({} ms CPU per scrape, peak RSS {} MiB; includes its TSDB append)",
            o.scrape_interval,
            fmt_opt(&c["items_per_cpu_s"], 0),
            fmt_opt(&c["cpu_ms_per_scrape"], 0),
            fmt_opt(&c["peak_rss_mib"], 0),
            fmt_opt(&p["items_per_cpu_s"], 0),
            fmt_opt(&p["cpu_ms_per_scrape"], 0),
            fmt_opt(&p["peak_rss_mib"], 0),
        );
        println!("{summary}");
        append_json(
            cfg,
            &serde_json::json!({"scenario": "scrape-100k", "summary": summary, "date_unix": unix_time()}),
        )?;
    }
    Ok(serde_json::Value::Array(results))
}

pub async fn run(cfg: RunConfig) -> anyhow::Result<serde_json::Value> {
    let c = cfg.options.compression;
    match cfg.scenario {
        Scenario::OtlpBatchOtlp | Scenario::Idle => {
            otlp_phase(&cfg, cfg.scenario.name(), OtlpPipeline::Batch, c).await
        }
        Scenario::OtlpOtlp => otlp_phase(&cfg, "otlp-otlp", OtlpPipeline::PassThrough, c).await,
        Scenario::JsonlogLoki => jsonlog_loki(&cfg).await,
        Scenario::Redaction => redaction(&cfg).await,
        Scenario::TailSampling => {
            let o = &cfg.options;
            let spans_per_trace = cfg.load.shape.spans_per_request.clamp(1, 10) as f64;
            let traces_per_sec = if cfg.load.rate == 0 {
                50_000.0
            } else {
                cfg.load.rate as f64 / spans_per_trace
            };
            // Room for every trace of decision_wait + 2 s, and half again.
            let num_traces = (traces_per_sec * (o.decision_wait.as_secs_f64() + 2.0) * 1.5) as u64;
            let pipeline = OtlpPipeline::TailSampling {
                decision_wait: o.decision_wait,
                percentage: o.sampling_percentage,
                num_traces,
                new_traces_per_sec: traces_per_sec as u64,
            };
            let r = otlp_phase(&cfg, "tail-sampling", pipeline, c).await?;
            let summary = format!(
                "tail sampling, decision_wait {:?}: {} spans/s in ({} target), {} sampled spans/s out, CPU {} s per million spans in, peak RSS {} MiB, steady {} spans held, {} bytes RSS per held span ({} accounted)",
                o.decision_wait,
                fmt_opt(&r["spans_in_per_sec"], 0),
                cfg.load.rate,
                fmt_opt(&r["items_per_sec"], 0),
                fmt_opt(&r["cpu_s_per_million_in"], 2),
                fmt_opt(&r["peak_rss_mib"], 1),
                fmt_opt(&r["steady_spans_held"], 0),
                fmt_opt(&r["bytes_per_held_span_rss"], 0),
                fmt_opt(&r["bytes_per_held_span_accounted"], 0),
            );
            println!("{summary}");
            append_json(
                &cfg,
                &serde_json::json!({"scenario": "tail-sampling", "summary": summary, "date_unix": unix_time()}),
            )?;
            Ok(r)
        }
        Scenario::Scrape100k => scrape_100k(&cfg).await,
    }
}

fn fmt_opt(v: &serde_json::Value, digits: usize) -> String {
    match v.as_f64() {
        Some(f) => format!("{f:.digits$}"),
        None => "-".into(),
    }
}

fn print_result(r: &serde_json::Value) {
    let unit = r["unit"].as_str().unwrap_or("items");
    let row = |k: &str, v: String| println!("| {k:<34} | {v:>16} |");
    println!();
    println!("| {:<34} | {:>16} |", "metric", "value");
    println!("|{:-<36}|{:->18}|", "", "");
    row("scenario", r["scenario"].as_str().unwrap_or("").into());
    if !r["compression"].is_null() {
        row(
            "exporter compression",
            r["compression"].as_str().unwrap_or("").into(),
        );
    }
    row(
        &format!("target rate ({unit}/s, 0 = max)"),
        fmt_opt(&r["rate_target"], 0),
    );
    row(
        &format!("{unit} expected at the sink"),
        r["items_sent"].to_string(),
    );
    row(&format!("{unit} received"), r["items_received"].to_string());
    row(
        &format!("{unit}/s (end to end)"),
        fmt_opt(&r["items_per_sec"], 0),
    );
    row("window (s)", fmt_opt(&r["window_s"], 2));
    row("process CPU (s)", fmt_opt(&r["process_cpu_s"], 2));
    row("CPU (% of one core)", fmt_opt(&r["process_cpu_percent"], 1));
    row(
        &format!("CPU-s per million {unit}"),
        fmt_opt(&r["cpu_s_per_million"], 3),
    );
    row(
        &format!("{unit} per CPU-second"),
        fmt_opt(&r["items_per_cpu_s"], 0),
    );
    row("peak RSS (MiB, VmHWM)", fmt_opt(&r["peak_rss_mib"], 1));
    row("idle RSS (MiB)", fmt_opt(&r["idle_rss_mib"], 1));
    row("bench process CPU (s)", fmt_opt(&r["bench_cpu_s"], 2));
    row(
        "load average at start / end",
        format!(
            "{} / {}",
            fmt_opt(&r["loadavg_1m_at_start"], 2),
            fmt_opt(&r["loadavg_1m_at_end"], 2)
        ),
    );
    for check in target_checks(r) {
        println!("{check}");
    }
    for warning in warnings(r) {
        println!("WARNING: {warning}");
    }
    println!();
}

/// The issues' targets, where this run's shape matches theirs.
fn target_checks(r: &serde_json::Value) -> Vec<String> {
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let mut out = Vec::new();
    let standard_shape = r["spans_per_request"] == 100 && r["attrs_per_span"] == 10;
    if r["scenario"] == "otlp-batch-otlp" && standard_shape {
        if let Some(v) = r["cpu_s_per_million"].as_f64() {
            out.push(format!(
                "target: <= 3 CPU-s per million spans: {v:.2} {}",
                verdict(v <= 3.0)
            ));
        }
        if r["rate_target"] == 100_000 {
            if let Some(v) = r["peak_rss_mib"].as_f64() {
                out.push(format!(
                    "target: peak RSS < 100 MiB at 100,000 spans/s: {v:.1} {}",
                    verdict(v < 100.0)
                ));
            }
        }
    }
    if r["scenario"] == "jsonlog-loki" {
        if let Some(v) = r["items_per_cpu_s"].as_f64() {
            out.push(format!(
                "target: >= 250,000 lines per CPU-second: {v:.0} {}",
                verdict(v >= 250_000.0)
            ));
        }
    }
    if r["scenario"] == "idle" {
        if let Some(v) = r["idle_rss_mib"].as_f64() {
            out.push(format!(
                "target: idle RSS < 20 MiB: {v:.1} {}",
                verdict(v < 20.0)
            ));
        }
    }
    out
}

fn warnings(r: &serde_json::Value) -> Vec<String> {
    let mut w = Vec::new();
    if r["drained"] == false {
        w.push(format!(
            "the sink did not receive everything expected ({} missing)",
            r["items_lost"]
        ));
    }
    if r["graceful_exit"] == false {
        w.push("the process did not exit within 15 s of SIGTERM (killed)".into());
    }
    if let Some(l) = r["loadavg_1m_at_start"].as_f64() {
        if l > 0.5 {
            w.push(format!(
                "load average was {l:.2} at start: other work competes for the CPUs"
            ));
        }
    }
    if r["idle_rss_settled"] == false {
        w.push("idle RSS did not settle within 10 s".into());
    }
    if let Some(e) = r["load"]["errors"].as_object() {
        if !e.is_empty() {
            w.push(format!("load generator saw errors: {e:?}"));
        }
    }
    if let Some(n) = r["traces_dropped_too_early_metric"].as_f64() {
        if n > 0.0 {
            w.push(format!("{n} traces evicted before their decision"));
        }
    }
    w
}

/// Prints a markdown table of result JSON lines (from `run --json-out`),
/// then the scenario summaries. Reads the older span-only lines too.
pub fn report(files: &[PathBuf]) -> anyhow::Result<()> {
    println!(
        "| scenario | unit | compression | target rate | per s | CPU-s / M | per CPU-s | CPU % | peak RSS MiB | idle RSS MiB | lost | load avg |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut summaries = Vec::new();
    for file in files {
        for line in read_lines(file)? {
            let r: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("bad JSON line in {}", file.display()))?;
            if let Some(s) = r["summary"].as_str() {
                summaries.push(s.to_string());
                continue;
            }
            let pick = |new: &str, old: &str| {
                if r[new].is_null() {
                    r[old].clone()
                } else {
                    r[new].clone()
                }
            };
            let target = match r["rate_target"].as_u64() {
                Some(0) => "max".to_string(),
                Some(n) => n.to_string(),
                None => "-".to_string(),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["scenario"].as_str().unwrap_or("?"),
                r["unit"].as_str().unwrap_or("spans"),
                r["compression"].as_str().unwrap_or("-"),
                target,
                fmt_opt(&pick("items_per_sec", "spans_per_sec"), 0),
                fmt_opt(&pick("cpu_s_per_million", "cpu_s_per_million_spans"), 2),
                fmt_opt(&pick("items_per_cpu_s", "spans_per_cpu_s"), 0),
                fmt_opt(&pick("process_cpu_percent", "confluo_cpu_percent"), 1),
                fmt_opt(&r["peak_rss_mib"], 1),
                fmt_opt(&r["idle_rss_mib"], 1),
                pick("items_lost", "spans_lost"),
                fmt_opt(&r["loadavg_1m_at_start"], 1),
            );
        }
    }
    for s in summaries {
        println!("\n- {s}");
    }
    Ok(())
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_samples() {
        let text = "# HELP otelcol_exporter_sent_spans x\n\
            otelcol_exporter_sent_spans{exporter=\"otlp_grpc\"} 1200\n\
            otelcol_exporter_sent_spans{exporter=\"debug\"} 7\n\
            otelcol_exporter_sent_spans_extra{exporter=\"otlp_grpc\"} 5\n\
            otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 1300\n";
        assert_eq!(
            prom_value(
                text,
                "otelcol_exporter_sent_spans",
                "exporter=\"otlp_grpc\""
            ),
            Some(1200.0)
        );
        assert_eq!(
            prom_value(text, "otelcol_receiver_accepted_spans", ""),
            Some(1300.0)
        );
        assert_eq!(
            prom_value(text, "otelcol_exporter_send_failed_spans", ""),
            None
        );
    }

    #[test]
    fn config_has_the_pipeline_shape() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let batch = otlp_config("x", &OtlpPipeline::Batch, Compression::Gzip, a, a, a);
        assert!(batch.contains("processors:\n  batch: {}\n"));
        assert!(batch.contains("processors: [batch]"));
        assert!(batch.contains("compression: gzip"));
        let plain = otlp_config("x", &OtlpPipeline::PassThrough, Compression::None, a, a, a);
        assert!(!plain.contains("batch"));
        assert!(plain.contains("processors: []"));
        assert!(plain.contains("compression: none"));
        let tail = otlp_config(
            "x",
            &OtlpPipeline::TailSampling {
                decision_wait: Duration::from_secs(5),
                percentage: 10.0,
                num_traces: 300_000,
                new_traces_per_sec: 20_000,
            },
            Compression::None,
            a,
            a,
            a,
        );
        assert!(tail.contains("decision_wait: 5000ms"));
        assert!(tail.contains("sampling_percentage: 10"));
        assert!(tail.contains("processors: [tail_sampling, batch]"));
    }
}
