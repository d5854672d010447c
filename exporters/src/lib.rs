//! confluo's exporters. One module per component; each owns its config, its
//! factory and its tests.
//!
//! - [`otlp`]: `otlp_grpc` (alias `otlp`) and `otlp_http` (alias `otlphttp`),
//!   queued through the pipeline's exporter helper;
//! - [`debug`]: writes what it receives to stdout, as the Collector's `debug`;
//! - [`file`]: appends OTLP/JSON (or length-prefixed protobuf) to a file.

pub mod datadog;
pub mod debug;
pub mod elasticsearch;
pub mod file;
pub mod jaeger;
pub mod loki;
pub mod otlp;

mod util;

#[cfg(test)]
pub(crate) mod testdata;
