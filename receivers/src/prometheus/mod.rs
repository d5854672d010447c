//! The `prometheus` receiver (being built).
