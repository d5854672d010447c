//! The `loki` exporter (being built).
