//! The self-telemetry HTTP server: `/metrics`, `/health/live`, `/health/ready`,
//! and the Collector's `health_check` extension.

use super::Telemetry;
use crate::component::{ComponentContext, ComponentError, Extension, ExtensionFactory, Stability};
use async_trait::async_trait;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use confluo_config::{ConfigError, Node};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Serves the telemetry endpoints until `shutdown` is cancelled. Returns the
/// bound address once listening.
pub async fn serve(
    telemetry: Telemetry,
    address: &str,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let live = telemetry.clone();
    let ready = telemetry.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let t = telemetry.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        t.render(),
                    )
                }
            }),
        )
        .route(
            "/health/live",
            get(move || {
                let _ = &live;
                async { (StatusCode::OK, "live\n") }
            }),
        )
        .route(
            "/health/ready",
            get(move || {
                let t = ready.clone();
                async move { readiness(&t) }
            }),
        );
    tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(event = "telemetry_server_failed", error = %e);
        }
    });
    Ok(local)
}

fn readiness(t: &Telemetry) -> axum::response::Response {
    if t.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Config of the Collector's `health_check` extension.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    pub endpoint: String,
    pub path: String,
    pub response_body: Option<HealthCheckBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckBody {
    pub healthy: Option<String>,
    pub unhealthy: Option<String>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "localhost:13133".into(),
            path: "/".into(),
            response_body: None,
        }
    }
}

pub struct HealthCheckFactory;

impl ExtensionFactory for HealthCheckFactory {
    fn type_name(&self) -> &'static str {
        "health_check"
    }
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn check(&self, node: &Node) -> Vec<ConfigError> {
        crate::component::check_config::<HealthCheckConfig>(node)
    }
    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
    ) -> Result<Arc<dyn Extension>, ComponentError> {
        let config: HealthCheckConfig = node.deserialize()?;
        Ok(Arc::new(HealthCheck {
            config,
            telemetry: ctx.telemetry.clone(),
            stop: CancellationToken::new(),
            bound: Mutex::new(None),
        }))
    }
}

/// Answers 200 while the service is ready, 503 otherwise (e.g. draining).
pub struct HealthCheck {
    config: HealthCheckConfig,
    telemetry: Telemetry,
    stop: CancellationToken,
    bound: Mutex<Option<SocketAddr>>,
}

#[async_trait]
impl Extension for HealthCheck {
    async fn start(&self) -> Result<(), ComponentError> {
        let listener = tokio::net::TcpListener::bind(&self.config.endpoint)
            .await
            .map_err(|e| {
                ComponentError::start(format!("health_check: bind {}: {e}", self.config.endpoint))
            })?;
        if let Ok(mut b) = self.bound.lock() {
            *b = listener.local_addr().ok();
        }
        let t = self.telemetry.clone();
        let healthy = self
            .config
            .response_body
            .as_ref()
            .and_then(|b| b.healthy.clone())
            .unwrap_or_else(|| "{\"status\":\"Server available\"}".into());
        let unhealthy = self
            .config
            .response_body
            .as_ref()
            .and_then(|b| b.unhealthy.clone())
            .unwrap_or_else(|| "{\"status\":\"Server not available\"}".into());
        let app = Router::new().route(
            &self.config.path,
            get(move || {
                let ready = t.is_ready();
                let (h, u) = (healthy.clone(), unhealthy.clone());
                async move {
                    if ready {
                        (StatusCode::OK, h)
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, u)
                    }
                }
            }),
        );
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
