//! The exporter helper's options, with the Collector's names and defaults
//! (`exporter/exporterhelper`): `timeout`, `retry_on_failure`, `sending_queue`.

use confluo_config::GoDuration;
use serde::Deserialize;
use std::time::Duration;

/// Default per-attempt timeout (`timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn default_timeout() -> GoDuration {
    GoDuration(DEFAULT_TIMEOUT)
}

/// `retry_on_failure`: exponential backoff with jitter.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub enabled: bool,
    pub initial_interval: GoDuration,
    pub randomization_factor: f64,
    pub multiplier: f64,
    pub max_interval: GoDuration,
    /// 0 means retry forever.
    pub max_elapsed_time: GoDuration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            enabled: true,
            initial_interval: GoDuration(Duration::from_secs(5)),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: GoDuration(Duration::from_secs(30)),
            max_elapsed_time: GoDuration(Duration::from_secs(300)),
        }
    }
}

/// What `queue_size` counts.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sizer {
    #[default]
    Requests,
    Items,
    Bytes,
}

/// `sending_queue`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    pub enabled: bool,
    pub num_consumers: usize,
    pub queue_size: u64,
    pub sizer: Sizer,
    /// Wait for room instead of refusing when the queue is full.
    pub block_on_overflow: bool,
    /// Answer the caller only once the data is exported, not when queued.
    pub wait_for_result: bool,
    /// A storage extension id for the persistent queue (not available yet).
    pub storage: Option<String>,
    pub batch: Option<QueueBatchSettings>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            sizer: Sizer::Requests,
            block_on_overflow: false,
            wait_for_result: false,
            storage: None,
            batch: None,
        }
    }
}

/// `sending_queue.batch`: requests are merged at dequeue until `min_size`
/// items or `flush_timeout`, never beyond `max_size` (0 = no cap).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueBatchSettings {
    pub flush_timeout: GoDuration,
    pub min_size: u64,
    pub max_size: u64,
    pub sizer: Sizer,
}

impl Default for QueueBatchSettings {
    fn default() -> Self {
        QueueBatchSettings {
            flush_timeout: GoDuration(Duration::from_millis(200)),
            min_size: 8192,
            max_size: 0,
            sizer: Sizer::Items,
        }
    }
}

/// The three helper blocks, as every queued exporter carries them.
#[derive(Clone, Debug, PartialEq)]
pub struct HelperSettings {
    pub timeout: Duration,
    pub retry: RetrySettings,
    pub queue: QueueSettings,
}

impl HelperSettings {
    pub fn new(timeout: &GoDuration, retry: &RetrySettings, queue: &QueueSettings) -> Self {
        HelperSettings {
            timeout: timeout.0,
            retry: retry.clone(),
            queue: queue.clone(),
        }
    }
}

/// Parses an HTTP `Retry-After` value: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_config::Node;

    #[test]
    fn defaults_match_the_collector() {
        let q: QueueSettings = Node::from_yaml_str("t.yaml", "{}")
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(q, QueueSettings::default());
        assert_eq!((q.num_consumers, q.queue_size), (10, 1000));
        let r: RetrySettings = Node::from_yaml_str("t.yaml", "{}")
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(r.initial_interval.0, Duration::from_secs(5));
        assert_eq!(r.max_elapsed_time.0, Duration::from_secs(300));
    }

    #[test]
    fn parses_collector_style_settings() {
        let node = Node::from_yaml_str(
            "t.yaml",
            "{enabled: true, queue_size: 5, sizer: items, block_on_overflow: true, batch: {min_size: 10, flush_timeout: 1s}}",
        )
        .unwrap();
        let q: QueueSettings = node.deserialize().unwrap();
        assert_eq!(q.sizer, Sizer::Items);
        assert_eq!(q.batch.unwrap().flush_timeout.0, Duration::from_secs(1));
        let bad = Node::from_yaml_str("t.yaml", "{queue_sise: 5}").unwrap();
        let err = bad.deserialize::<QueueSettings>().unwrap_err();
        assert!(err.to_string().contains("queue_sise"), "{err}");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
