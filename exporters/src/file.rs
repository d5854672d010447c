//! `file`: writes every batch to a file, one OTLP/JSON export request per
//! line (the Collector's `file` exporter format), or length-prefixed
//! protobuf with `format: proto`.
//!
//! Not queued: each batch is written in the caller's task, in order, and a
//! failed write (disk full) is a retryable error for the caller. There is no
//! user-space buffer — a batch is one `write` of its encoded bytes — so
//! data is in the file as soon as `consume` returns; `flush_interval` is
//! therefore accepted but has nothing left to do. A failed write is rolled
//! back (the file is cut to its previous length) so that a retry never
//! leaves half a line behind.

use crate::util::{check_with, encode_json_owned, field_error, load_with};
use async_trait::async_trait;
use confluo_config::{ConfigError, GoDuration, Node};
use confluo_pipeline::batch::Settlement;
use confluo_pipeline::telemetry::ExporterMetrics;
use confluo_pipeline::{
    Batch, ComponentContext, ComponentError, ConsumeError, Consumer, Exporter, ExporterFactory,
    SignalSet, Stability,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `format`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One OTLP/JSON export request per line.
    #[default]
    Json,
    /// Each export request as protobuf, prefixed by its length (4 bytes,
    /// big-endian), as the Collector writes it.
    Proto,
}

/// The `file` exporter's config (the Collector's names and defaults).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub path: Option<String>,
    pub format: Format,
    /// Keep what the file holds; `false` (the default) truncates it at start.
    pub append: bool,
    /// Accepted for compatibility; every batch is written through at once.
    pub flush_interval: GoDuration,
    /// Rejected: not supported in this version.
    pub rotation: Option<IgnoredAny>,
    /// Rejected unless empty: not supported in this version.
    pub compression: Option<String>,
    /// Rejected: not supported in this version.
    pub group_by: Option<IgnoredAny>,
    /// Rejected: encoding extensions are not supported.
    pub encoding: Option<IgnoredAny>,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            path: None,
            format: Format::Json,
            append: false,
            flush_interval: GoDuration(Duration::from_secs(1)),
            rotation: None,
            compression: None,
            group_by: None,
            encoding: None,
        }
    }
}

fn validate(cfg: &FileConfig, node: &Node) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if cfg.path.as_deref().is_none_or(|p| p.trim().is_empty()) {
        errors.push(field_error(
            node,
            "path",
            "`path` is required (the file to write)",
        ));
    }
    let unsupported = [
        (
            "rotation",
            cfg.rotation.is_some(),
            "rotate with logrotate's copytruncate, or restart with a new path",
        ),
        (
            "group_by",
            cfg.group_by.is_some(),
            "use one file exporter per destination file",
        ),
        (
            "encoding",
            cfg.encoding.is_some(),
            "use `format: json` or `format: proto`",
        ),
        (
            "compression",
            cfg.compression
                .as_deref()
                .is_some_and(|c| !c.is_empty() && c != "none"),
            "remove `compression`; compress the file afterwards",
        ),
    ];
    for (key, set, hint) in unsupported {
        if set {
            errors.push(
                field_error(
                    node,
                    key,
                    format!("`{key}` is not supported by this file exporter"),
                )
                .with_hint(hint),
            );
        }
    }
    errors
}

/// Factory of `file`.
pub struct FileFactory;

impl ExporterFactory for FileFactory {
    fn type_name(&self) -> &'static str {
        "file"
    }

    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn stability(&self) -> Stability {
        Stability::Alpha
    }

    fn check(&self, node: &Node) -> Vec<ConfigError> {
        check_with::<FileConfig>(node, validate)
    }

    fn create(
        &self,
        ctx: ComponentContext,
        node: &Node,
        signals: SignalSet,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: FileConfig = load_with(node, validate)?;
        Ok(Arc::new(FileExporter::new(&ctx, &cfg, signals)))
    }
}

/// The open file and its length after the last complete write.
struct Output {
    file: File,
    len: u64,
}

#[derive(Default)]
struct State {
    output: Option<Output>,
    /// Set once the file was opened: a reopen (a write after shutdown)
    /// must never truncate again.
    opened_before: bool,
}

impl State {
    fn output(&mut self, path: &PathBuf, append: bool) -> std::io::Result<&mut Output> {
        if self.output.is_none() {
            let truncate = !append && !self.opened_before;
            self.output = Some(FileExporter::open(path, truncate)?);
            self.opened_before = true;
        }
        Ok(self.output.as_mut().expect("just opened"))
    }
}

pub struct FileExporter {
    id: String,
    path: PathBuf,
    format: Format,
    append: bool,
    metrics: ExporterMetrics,
    /// Opened at start (not at create, so that `confluo validate` never
    /// truncates the file). A std mutex: it is only taken in blocking tasks.
    out: Arc<Mutex<State>>,
}

impl FileExporter {
    pub fn new(ctx: &ComponentContext, cfg: &FileConfig, signals: SignalSet) -> FileExporter {
        FileExporter {
            id: ctx.id.to_string(),
            path: PathBuf::from(cfg.path.clone().unwrap_or_default()),
            format: cfg.format,
            append: cfg.append,
            metrics: ExporterMetrics::new(&ctx.telemetry, &ctx.id.to_string(), signals),
            out: Arc::new(Mutex::new(State::default())),
        }
    }

    fn open(path: &PathBuf, truncate: bool) -> std::io::Result<Output> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if truncate {
            file.set_len(0)?;
        }
        let len = file.metadata()?.len();
        Ok(Output { file, len })
    }

    /// Writes `bytes` as one unit: on failure the file is cut back to its
    /// previous length, so nothing partial stays behind.
    fn write_all(
        out: &Mutex<State>,
        path: &PathBuf,
        append: bool,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        let mut guard = out.lock().unwrap_or_else(|p| p.into_inner());
        let o = guard.output(path, append)?;
        match o.file.write_all(bytes).and_then(|()| o.file.flush()) {
            Ok(()) => {
                o.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = o.file.set_len(o.len);
                Err(e)
            }
        }
    }
}

/// Encodes a batch in the configured format, ready to append.
pub fn encode(format: Format, signal: confluo_pipeline::Signal) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut out = Vec::with_capacity(signal.encoded_len() * 2 + 1);
            encode_json_owned(signal, &mut out);
            out.push(b'\n');
            out
        }
        Format::Proto => {
            let len = signal.encoded_len();
            let mut out = Vec::with_capacity(len + 4);
            out.extend_from_slice(&(len as u32).to_be_bytes());
            signal.encode_request(&mut out);
            out
        }
    }
}

#[async_trait]
impl Consumer for FileExporter {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let kind = batch.kind();
        let items = batch.item_count();
        let acks = batch.acks.take();
        if items == 0 {
            acks.settle(Settlement::Delivered);
            return Ok(());
        }
        let format = self.format;
        let signal = batch.take_signal();
        let out = self.out.clone();
        let path = self.path.clone();
        let append = self.append;
        let written = tokio::task::spawn_blocking(move || {
            let bytes = encode(format, signal);
            Self::write_all(&out, &path, append, &bytes)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match written {
            Ok(()) => {
                self.metrics.sent(kind, items);
                acks.settle(Settlement::Delivered);
                Ok(())
            }
            Err(e) => {
                self.metrics.send_failed(kind, items);
                tracing::error!(
                    event = "export_failed",
                    exporter = %self.id,
                    path = %self.path.display(),
                    items,
                    error = %e,
                    "writing to the file failed; the caller may retry"
                );
                acks.settle(Settlement::Failed);
                Err(ConsumeError::retryable(format!(
                    "{}: writing {} failed: {e}",
                    self.id,
                    self.path.display()
                )))
            }
        }
    }
}

#[async_trait]
impl Exporter for FileExporter {
    async fn start(&self) -> Result<(), ComponentError> {
        let out = self.out.clone();
        let path = self.path.clone();
        let append = self.append;
        let opened = tokio::task::spawn_blocking(move || {
            let mut guard = out.lock().unwrap_or_else(|p| p.into_inner());
            guard.output(&path, append).map(|_| ())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        opened.map_err(|e| {
            ComponentError::start(format!(
                "{}: cannot open {}: {e}",
                self.id,
                self.path.display()
            ))
        })
    }

    async fn shutdown(&self, _deadline: Instant) -> Result<(), ComponentError> {
        let out = self.out.clone();
        // Every write was already flushed; closing hands the data to the OS
        // for good and releases the file.
        let _ = tokio::task::spawn_blocking(move || {
            let mut guard = out.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(mut o) = guard.output.take() {
                let _ = o.file.flush();
            }
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
