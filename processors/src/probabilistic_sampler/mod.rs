//! The `probabilistic_sampler` processor (being built).
