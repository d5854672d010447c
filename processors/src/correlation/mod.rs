//! The `correlation` processor (being built).
