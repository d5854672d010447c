//! confluo-bench: OTLP load generator, counting sink and benchmark orchestrator.
//! See docs/benchmarks.md.

mod codec;
mod expo;
mod gen;
mod http;
mod jsonload;
mod load;
mod procfs;
mod relay;
mod run;
mod sink;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "confluo-bench", about = "Benchmark harness for confluo")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Counting OTLP/gRPC backend (traces, metrics, logs); answers OK at once.
    Sink {
        #[arg(long, default_value = "127.0.0.1:4317")]
        listen: SocketAddr,
        /// Print counts this often when they change; 0 = only at exit.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        print_every: Duration,
    },
    /// Sends pre-encoded OTLP trace requests to a target.
    Load {
        #[arg(long)]
        target: SocketAddr,
        #[command(flatten)]
        load: LoadArgs,
        /// Print the report as one JSON line too.
        #[arg(long)]
        json: bool,
    },
    /// Starts a sink and confluo, drives load through it, measures confluo.
    Run {
        /// The confluo binary.
        #[arg(long, default_value = "target/release/confluo")]
        confluo: PathBuf,
        #[arg(long, value_enum, default_value = "otlp-batch-otlp")]
        scenario: run::Scenario,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        options: ScenarioArgs,
        /// How long to wait for /health/ready.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        ready_timeout: Duration,
        /// Longest wait after the load for the sink to receive everything.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        drain_timeout: Duration,
        /// Keep the temp dir (config and confluo log) even on success.
        #[arg(long)]
        keep: bool,
        /// Append the result JSON line to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Markdown table from JSON lines written by `run --json-out`.
    Report { files: Vec<PathBuf> },
    /// Harness self-test stand-in for confluo: a byte-for-byte OTLP trace
    /// relay with /health/ready and /metrics, configured by a `run` config.
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args, Clone)]
struct LoadArgs {
    #[arg(long, default_value_t = 100)]
    spans_per_request: usize,
    #[arg(long, default_value_t = 10)]
    attrs_per_span: usize,
    /// Spans per second over all connections; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Concurrent requests per connection.
    #[arg(long, default_value_t = 2)]
    inflight: usize,
    /// Distinct pre-encoded requests sent round-robin.
    #[arg(long, default_value_t = 64)]
    pool: usize,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Give every trace a fresh random id on every send (always on for
    /// tail-sampling).
    #[arg(long)]
    fresh_trace_ids: bool,
}

impl LoadArgs {
    fn config(&self, target: SocketAddr) -> load::LoadConfig {
        load::LoadConfig {
            target,
            shape: gen::Shape {
                spans_per_request: self.spans_per_request,
                attrs_per_span: self.attrs_per_span,
            },
            rate: self.rate,
            duration: self.duration,
            connections: self.connections,
            inflight: self.inflight,
            pool: self.pool,
            timeout: self.timeout,
            fresh_trace_ids: self.fresh_trace_ids,
            sampling: None,
        }
    }
}

/// Options of particular scenarios.
#[derive(Args, Clone)]
struct ScenarioArgs {
    /// `compression` of the OTLP exporter (otlp-*, redaction, tail-sampling).
    #[arg(long, value_enum, default_value = "gzip")]
    compression: run::Compression,
    /// jsonlog-loki: NDJSON lines per POST.
    #[arg(long, default_value_t = 1000)]
    lines_per_request: usize,
    /// tail-sampling: `decision_wait`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    decision_wait: Duration,
    /// tail-sampling: `sampling_percentage` of the probabilistic policy
    /// (traces with an error are kept too).
    #[arg(long, default_value_t = 10.0)]
    sampling_percentage: f64,
    /// redaction: rounds of the four phases (alternating their order); the
    /// figures are each phase's median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// scrape-100k: sample lines in the exposition.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// scrape-100k: scrape interval of both scrapers.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    scrape_interval: Duration,
    /// scrape-100k: scrapes measured per scraper.
    #[arg(long, default_value_t = 5)]
    scrapes: u64,
    /// scrape-100k: the Prometheus binary (default: `prometheus` on PATH;
    /// skipped when there is none).
    #[arg(long)]
    prometheus: Option<PathBuf>,
}

impl ScenarioArgs {
    fn options(&self) -> run::ScenarioOptions {
        run::ScenarioOptions {
            compression: self.compression,
            lines_per_request: self.lines_per_request,
            decision_wait: self.decision_wait,
            sampling_percentage: self.sampling_percentage,
            series: self.series,
            scrape_interval: self.scrape_interval,
            scrapes: self.scrapes,
            prometheus: self.prometheus.clone(),
            rounds: self.rounds.max(1),
        }
    }
}

/// "30s", "500ms", "2m", "1h" or plain seconds ("20", "0.5").
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

async fn sink_cmd(listen: SocketAddr, print_every: Duration) -> anyhow::Result<()> {
    let stats = Arc::new(sink::SinkStats::default());
    let (addr, serve) = sink::bind(listen, stats.clone()).await?;
    eprintln!("sink: listening on {addr}");
    let printer = {
        let stats = stats.clone();
        async move {
            if print_every.is_zero() {
                return std::future::pending().await;
            }
            let mut last = String::new();
            let mut tick = tokio::time::interval(print_every);
            loop {
                tick.tick().await;
                let now = stats.summary();
                if now != last {
                    println!("sink: {now}");
                    last = now;
                }
            }
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = serve => r?,
        _ = printer => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("sink: total {}", stats.summary());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Sink {
            listen,
            print_every,
        } => sink_cmd(listen, print_every).await,
        Cmd::Load { target, load, json } => {
            let report = load::run(&load.config(target)).await?;
            report.print();
            if json {
                println!("{}", report.json());
            }
            Ok(())
        }
        Cmd::Run {
            confluo,
            scenario,
            load,
            options,
            ready_timeout,
            drain_timeout,
            keep,
            json_out,
        } => {
            let cfg = run::RunConfig {
                confluo,
                scenario,
                // The target is filled in once confluo's port is chosen.
                load: load.config(SocketAddr::from(([127, 0, 0, 1], 0))),
                options: options.options(),
                ready_timeout,
                drain_timeout,
                keep,
                json_out,
            };
            run::run(cfg).await.map(|_| ())
        }
        Cmd::Report { files } => run::report(&files),
        Cmd::Relay { config } => relay::relay(&config).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
