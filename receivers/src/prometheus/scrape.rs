//! Scrape loops: one task per job (target discovery and its changes) and one
//! task per target (scrape every interval at a fixed offset, never
//! overlapping, convert, hand to the pipeline).

use super::config::{Auth, ScrapeConfig};
use super::convert::{self, Options, ScrapeStats, SeriesCache, Target, NO_RECORDED_VALUE};
use super::parser::{self, Format};
use super::sd::{self, FileSd, ResolvedTarget, TargetGroup};
use confluo_config::SignalKind;
use confluo_pipeline::admission::Admission;
use confluo_pipeline::compression::decompress;
use confluo_pipeline::http_client::{error_chain, HttpClient};
use confluo_pipeline::proto::metrics::Metric;
use confluo_pipeline::telemetry::ReceiverMetrics;
use confluo_pipeline::{Batch, Consumer, Signal};
use http::header::{HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, StatusCode, Uri};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The Accept header Prometheus 2.53 sends (OpenMetrics preferred, text 0.0.4 accepted).
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// A failure reason is logged again after this long if it persists.
const LOG_REPEAT: Duration = Duration::from_secs(300);

/// What every scrape task shares.
pub struct Shared {
    pub id: String,
    pub consumer: Arc<dyn Consumer>,
    pub metrics: ReceiverMetrics,
    pub admission: Admission,
    pub adjust_start_time: bool,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs one job until `shutdown`: keeps one scrape task per current target.
pub async fn run_job(
    shared: Arc<Shared>,
    sc: Arc<ScrapeConfig>,
    client: HttpClient,
    shutdown: CancellationToken,
) {
    let statics: Vec<TargetGroup> = sc
        .static_configs
        .iter()
        .map(|s| TargetGroup {
            targets: s.targets.clone(),
            labels: s.labels.clone(),
        })
        .collect();
    let mut sds: Vec<FileSd> = sc
        .file_sd_configs
        .iter()
        .cloned()
        .map(FileSd::new)
        .collect();
    let mut running: HashMap<u64, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    let mut first = true;
    loop {
        let mut changed = first;
        first = false;
        for sd in &mut sds {
            let (c, errors) = sd.refresh();
            changed |= c;
            for e in errors {
                tracing::warn!(event = "prometheus_file_sd_error", receiver = %shared.id, job = %sc.job_name, error = %e, "file_sd: cannot read targets file; keeping its previous targets");
            }
        }
        if changed {
            let groups = statics.iter().chain(sds.iter().flat_map(|s| s.groups()));
            let (targets, errors) = sd::resolve_all(&sc, groups);
            for e in errors {
                tracing::warn!(event = "prometheus_target_error", receiver = %shared.id, job = %sc.job_name, error = %e, "target dropped");
            }
            let mut keep = std::collections::HashSet::new();
            for t in targets {
                let key = t.key();
                keep.insert(key);
                if running.contains_key(&key) {
                    continue;
                }
                let removed = CancellationToken::new();
                let task = tokio::spawn(run_target(
                    shared.clone(),
                    sc.clone(),
                    client.clone(),
                    t,
                    removed.clone(),
                    shutdown.clone(),
                ));
                running.insert(key, (removed, task));
            }
            let gone: Vec<u64> = running
                .keys()
                .filter(|k| !keep.contains(k))
                .copied()
                .collect();
            for k in gone {
                if let Some((removed, task)) = running.remove(&k) {
                    removed.cancel();
                    let _ = task.await;
                }
            }
        }
        if sds.is_empty() {
            shutdown.cancelled().await;
            break;
        }
        let poll = sds
            .iter()
            .map(FileSd::poll_interval)
            .min()
            .unwrap_or(Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    for (_, (_, task)) in running {
        let _ = task.await;
    }
}

/// Prometheus's spreading: each target scrapes at `hash % interval` past
/// the interval boundary, so targets of a job do not fire together.
fn first_delay(key: u64, interval: Duration) -> Duration {
    let iv = interval.as_nanos().max(1) as u64;
    let now = now_ns();
    let base = iv - now % iv;
    let offset = key % iv;
    let mut next = base + offset;
    if next > iv {
        next -= iv;
    }
    Duration::from_nanos(next)
}

struct TargetState {
    target: Target,
    uri: Result<Uri, String>,
    cache: SeriesCache,
    last_failure: Option<(String, Instant)>,
    last_refusal: Option<Instant>,
}

pub async fn run_target(
    shared: Arc<Shared>,
    sc: Arc<ScrapeConfig>,
    client: HttpClient,
    t: ResolvedTarget,
    removed: CancellationToken,
    shutdown: CancellationToken,
) {
    let delay = first_delay(t.key(), t.interval);
    let mut st = TargetState {
        target: Target::new(t.labels.clone(), t.scheme.clone()),
        uri: t
            .url
            .parse::<Uri>()
            .map_err(|e| format!("invalid scrape URL: {e}")),
        cache: SeriesCache::default(),
        last_failure: None,
        last_refusal: None,
    };
    tracing::debug!(event = "prometheus_target_started", receiver = %shared.id, job = %sc.job_name, url = %t.url, "scraping target");
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + delay, t.interval);
    // A scrape slower than the interval delays the next one; ticks are never
    // queued up, so scrapes of one target never overlap.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = removed.cancelled() => break,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = scrape_once(&shared, &sc, &client, &t, &mut st) => {}
        }
    }
    // Target gone: its series and report metrics go stale, as in Prometheus.
    let now = now_ns();
    let mut metrics = st.cache.stale(now, true);
    metrics.extend(convert::report_metrics(
        &st.target,
        false,
        0.0,
        &ScrapeStats::default(),
        now,
        NO_RECORDED_VALUE,
    ));
    send(&shared, &mut st, metrics).await;
}

/// One scrape, converted and sent. Failures become `up = 0` plus stale
/// points for every series of the previous scrape.
async fn scrape_once(
    shared: &Shared,
    sc: &ScrapeConfig,
    client: &HttpClient,
    t: &ResolvedTarget,
    st: &mut TargetState,
) {
    let started = Instant::now();
    let now = now_ns();
    let result = match &st.uri {
        Ok(uri) => fetch(client, sc, uri, t.timeout, &shared.admission).await,
        Err(e) => Err(e.clone()),
    };
    let opts = Options {
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        metric_relabel: &sc.metric_relabel_configs,
        sample_limit: sc.sample_limit,
        label_limit: sc.label_limit,
        label_name_length_limit: sc.label_name_length_limit,
        label_value_length_limit: sc.label_value_length_limit,
        adjust_start_time: shared.adjust_start_time,
    };
    let converted = result.and_then(|(body, format)| {
        let text = std::str::from_utf8(&body).map_err(|e| format!("invalid UTF-8 in body: {e}"))?;
        let exp = parser::parse(text, format).map_err(|e| format!("parse error: {e}"))?;
        convert::convert(&exp, format, &st.target, &opts, now, &mut st.cache)
            .map_err(|e| e.to_string())
    });
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = match converted {
        Ok((mut metrics, stats)) => {
            if let Some((reason, _)) = st.last_failure.take() {
                tracing::info!(event = "prometheus_scrape_recovered", receiver = %shared.id, job = %sc.job_name, url = %t.url, previous_error = %reason, "scrape succeeded again");
            }
            metrics.extend(st.cache.stale(now, false));
            metrics.extend(convert::report_metrics(
                &st.target, true, elapsed, &stats, now, 0,
            ));
            metrics
        }
        Err(reason) => {
            let log = match &st.last_failure {
                Some((r, at)) => *r != reason || at.elapsed() >= LOG_REPEAT,
                None => true,
            };
            if log {
                tracing::warn!(event = "prometheus_scrape_failed", receiver = %shared.id, job = %sc.job_name, url = %t.url, error = %reason, "scrape failed; up=0");
                st.last_failure = Some((reason, Instant::now()));
            }
            let mut metrics = st.cache.stale(now, true);
            metrics.extend(convert::report_metrics(
                &st.target,
                false,
                elapsed,
                &ScrapeStats::default(),
                now,
                0,
            ));
            metrics
        }
    };
    send(shared, st, metrics).await;
}

async fn send(shared: &Shared, st: &mut TargetState, metrics: Vec<Metric>) {
    let rm = convert::resource_metrics(&st.target, metrics);
    let batch = Batch::new(Signal::Metrics(vec![rm]));
    let n = batch.item_count();
    match shared.consumer.consume(batch).await {
        Ok(()) => shared.metrics.accepted(SignalKind::Metrics, n),
        Err(e) => {
            // A scrape is not retried: the next one carries fresh values.
            shared.metrics.refused(SignalKind::Metrics, n);
            if st
                .last_refusal
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
            {
                st.last_refusal = Some(Instant::now());
                tracing::warn!(event = "prometheus_scrape_dropped", receiver = %shared.id, data_points = n, retryable = e.is_retryable(), error = %e, "the pipeline refused a scrape; dropped");
            }
        }
    }
}

fn header(v: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(v).map_err(|_| "invalid header value".to_string())
}

fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read credentials file {path:?}: {e}"))
}

pub fn auth_header(auth: &Auth) -> Result<HeaderValue, String> {
    let v = match auth {
        Auth::Basic {
            username,
            password,
            password_file,
        } => {
            let pw = match (password, password_file) {
                (Some(p), _) => p.expose().to_string(),
                (None, Some(f)) => read_secret_file(f)?,
                (None, None) => String::new(),
            };
            format!("Basic {}", base64(format!("{username}:{pw}").as_bytes()))
        }
        Auth::Authorization {
            kind,
            credentials,
            credentials_file,
        } => {
            let c = match (credentials, credentials_file) {
                (Some(c), _) => c.expose().to_string(),
                (None, Some(f)) => read_secret_file(f)?,
                (None, None) => String::new(),
            };
            format!("{kind} {c}")
        }
    };
    let mut hv = header(&v)?;
    hv.set_sensitive(true);
    Ok(hv)
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// GETs the target; returns the (decompressed) body and its format.
pub async fn fetch(
    client: &HttpClient,
    sc: &ScrapeConfig,
    uri: &Uri,
    timeout: Duration,
    admission: &Admission,
) -> Result<(bytes::Bytes, Format), String> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
    headers.insert(
        ACCEPT_ENCODING,
        HeaderValue::from_static(if sc.enable_compression {
            "gzip"
        } else {
            "identity"
        }),
    );
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("confluo/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(
        HeaderName::from_static("x-prometheus-scrape-timeout-seconds"),
        header(&format!("{}", timeout.as_secs_f64()))?,
    );
    if let Some(a) = &sc.auth {
        headers.insert(AUTHORIZATION, auth_header(a)?);
    }
    let limit = if sc.body_size_limit == 0 {
        usize::MAX / 2
    } else {
        usize::try_from(sc.body_size_limit).unwrap_or(usize::MAX / 2)
    };
    let resp = match tokio::time::timeout(timeout, client.get(uri, &headers, limit)).await {
        Err(_) => {
            return Err(format!(
                "context deadline exceeded: scrape timed out after {}",
                sd::format_prom_duration(timeout)
            ))
        }
        Ok(Err(e)) => {
            let msg = error_chain(&e);
            if msg.contains("length limit exceeded") {
                return Err(format!(
                    "body size limit exceeded ({} bytes)",
                    sc.body_size_limit
                ));
            }
            return Err(msg);
        }
        Ok(Ok(r)) => r,
    };
    if resp.status != StatusCode::OK {
        return Err(format!("server returned HTTP status {}", resp.status));
    }
    let _permit = admission
        .try_admit(resp.body.len())
        .ok_or_else(|| "memory admission budget exhausted; scrape dropped".to_string())?;
    let encoding = resp
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let body = decompress(encoding, resp.body, limit).map_err(|e| match e {
        confluo_pipeline::compression::DecompressError::TooLarge { .. } => {
            format!("body size limit exceeded ({} bytes)", sc.body_size_limit)
        }
        other => other.to_string(),
    })?;
    let format = Format::from_content_type(
        resp.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    Ok((body, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn offsets_spread_within_interval() {
        let iv = Duration::from_secs(10);
        for k in [0u64, 1, 12345, u64::MAX] {
            assert!(first_delay(k, iv) <= iv);
        }
    }
}
