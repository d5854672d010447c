//! The `jaeger` exporter (being built).
