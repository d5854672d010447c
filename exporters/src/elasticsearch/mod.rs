//! The `elasticsearch` exporter (being built).
