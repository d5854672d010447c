//! confluo's processors. One module per component type, each with its
//! config, factory and tests.

pub mod batch;
pub mod correlation;
pub mod probabilistic_sampler;
pub mod redaction;
pub mod tail_sampling;
