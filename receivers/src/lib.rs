//! confluo's receivers: the components that bring data into a pipeline.
//!
//! Each receiver lives in its own module with its config, its factory and its
//! tests; the binary registers the factories by name.

pub mod jsonlog;
pub mod otlp;
pub mod prometheus;
