//! The `jsonlog` receiver (being built).
