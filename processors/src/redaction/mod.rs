//! The `redaction` processor (being built).
