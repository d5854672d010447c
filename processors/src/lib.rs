//! confluo's processors. One module per component type, each with its
//! config, factory and tests.

pub mod batch;
