//! The `tail_sampling` processor (being built).
