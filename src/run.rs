//! `confluo run` and `confluo validate`.

use crate::{logging, registry};
use anyhow::Context;
use confluo_config::{Diagnostics, RawConfig};
use confluo_pipeline::admission::{Admission, DEFAULT_ADMISSION_BYTES};
use confluo_pipeline::graph::Service;
use confluo_pipeline::telemetry::server;
use confluo_pipeline::Telemetry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DEFAULT_CONFIG: &str = include_str!("default_config.yaml");

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads and validates; prints warnings and errors to stderr.
fn load(paths: &[PathBuf]) -> Result<RawConfig, ()> {
    let registry = registry::registry();
    let raw = if paths.is_empty() {
        confluo_config::load_str("<embedded default>", DEFAULT_CONFIG, &env_lookup)
    } else {
        confluo_config::load_files(paths, &env_lookup)
    };
    let raw = match raw {
        Ok(raw) => raw,
        Err(diags) => {
            report(&diags);
            return Err(());
        }
    };
    let diags = confluo_config::validate(&raw, &registry);
    // `validate` includes the warnings found while loading.
    report(&diags);
    if diags.has_errors() {
        return Err(());
    }
    Ok(raw)
}

fn report(diags: &Diagnostics) {
    for d in &diags.0 {
        eprintln!("{d}");
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("confluo")
        .build()
        .context("starting the async runtime")
}

pub fn validate(paths: &[PathBuf]) -> ExitCode {
    let Ok(raw) = load(paths) else {
        return ExitCode::FAILURE;
    };
    // Like `otelcol validate`: also build the graph (without starting it),
    // which catches what only component creation can see.
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            Service::build(
                &raw,
                &registry::registry(),
                Telemetry::new(),
                Admission::new(DEFAULT_ADMISSION_BYTES),
            )
            .map(|_| ())
            .map_err(anyhow::Error::from)
        })
    });
    match result {
        Ok(()) => {
            let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            eprintln!("{}: configuration is valid", files.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A config error found while building carries its own
            // `file:line:col: error:` prefix, like the static checks'.
            match e.downcast_ref::<confluo_pipeline::ComponentError>() {
                Some(confluo_pipeline::ComponentError::Config(c)) => eprintln!("{c}"),
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

pub fn run(paths: &[PathBuf], shutdown_timeout: Duration) -> ExitCode {
    let Ok(raw) = load(paths) else {
        return ExitCode::FAILURE;
    };
    logging::init(&raw.service.telemetry.logs);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(event = "startup_failed", error = %format!("{e:#}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(raw, shutdown_timeout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(event = "startup_failed", error = %format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn serve(raw: RawConfig, shutdown_timeout: Duration) -> anyhow::Result<()> {
    let telemetry = Telemetry::new();
    let stop_server = CancellationToken::new();
    let metrics_address = &raw.service.telemetry.metrics.address;
    let bound = server::serve(telemetry.clone(), metrics_address, stop_server.clone())
        .await
        .with_context(|| format!("self-telemetry server: bind {metrics_address}"))?;
    tracing::info!(event = "telemetry_listening", address = %bound, paths = "/metrics /health/live /health/ready");

    let mut service = Service::build(
        &raw,
        &registry::registry(),
        telemetry.clone(),
        Admission::new(DEFAULT_ADMISSION_BYTES),
    )
    .context("building pipelines")?;
    if let Err(e) = service.start().await {
        // Stop what did start, so sockets and tasks are released cleanly.
        service.shutdown(Duration::from_secs(1)).await;
        stop_server.cancel();
        return Err(anyhow::Error::from(e).context("starting pipelines"));
    }

    wait_for_signal().await;
    tracing::info!(
        event = "shutdown_requested",
        timeout_s = shutdown_timeout.as_secs_f64()
    );
    service.shutdown(shutdown_timeout).await;
    stop_server.cancel();
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
