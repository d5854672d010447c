//! The `confluo` binary: command line, component registry, and the run loop.

mod logging;
mod registry;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// Decoding OTLP allocates many small strings; mimalloc handles that pattern
// with far less time in malloc/free than glibc's allocator (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A telemetry collector: OTLP, Prometheus and JSON logs in; Loki,
/// Elasticsearch, Jaeger, Datadog and OTLP out. Configured like the
/// OpenTelemetry Collector.
#[derive(Parser)]
#[command(name = "confluo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector. Without --config, runs an embedded default:
    /// OTLP gRPC on localhost:4317 and HTTP on localhost:4318 into `debug`.
    Run {
        /// Config files, merged in order (later files win).
        #[arg(long = "config", short = 'c')]
        config: Vec<PathBuf>,
        /// How long a graceful shutdown may take before queued data is dropped.
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        shutdown_timeout: std::time::Duration,
    },
    /// Check config files: every problem with file:line:col, exit non-zero on errors.
    Validate {
        #[arg(long = "config", short = 'c', required = true)]
        config: Vec<PathBuf>,
    },
    /// List every component type with its signals and stability.
    Components,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    confluo_config::parse_go_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            shutdown_timeout,
        } => run::run(&config, shutdown_timeout),
        Command::Validate { config } => run::validate(&config),
        Command::Components => {
            print!("{}", registry::describe(&registry::registry()));
            ExitCode::SUCCESS
        }
    }
}
