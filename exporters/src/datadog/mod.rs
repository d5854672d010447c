//! The `datadog` exporter (being built).
