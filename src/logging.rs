//! confluo's own logs: `tracing` events, JSON by default, to stderr.

use confluo_config::{LogEncoding, LogLevel, TelemetryLogs};
use tracing_subscriber::filter::LevelFilter;

pub fn init(config: &TelemetryLogs) {
    let level = match config.level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match config.encoding {
        LogEncoding::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogEncoding::Console => builder.with_ansi(false).try_init(),
    };
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = result;
}
