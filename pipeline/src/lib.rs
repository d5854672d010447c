//! confluo's runtime: the data model every component shares, the component
//! contracts, the graph builder that wires pipelines together, the exporter
//! helper (queue, retry, timeout) and the self-telemetry registry.
//!
//! The contracts follow the OpenTelemetry Collector's small interfaces:
//! a [`Consumer`] accepts a [`Batch`]; receivers push into consumers,
//! processors wrap the next consumer, exporters are consumers that hand data
//! to a backend through the [`exporter_helper`].

pub mod admission;
pub mod attrs;
pub mod batch;
pub mod component;
pub mod compression;
pub mod connectors;
pub mod consumer;
pub mod exporter_helper;
pub mod graph;
pub mod http_client;
pub mod otlp_json;
pub mod otlp_wire;
pub mod signal;
pub mod telemetry;
pub mod tls;

pub use batch::{AckWaiter, Acks, Batch, ClientInfo, RequestContext};
pub use component::{
    ComponentContext, ComponentError, ConnectorFactory, Exporter, ExporterFactory, Extension,
    ExtensionFactory, Processor, ProcessorFactory, Receiver, ReceiverFactory, Registry,
    SignalConsumers, Stability,
};
pub use confluo_config::{ComponentId, ComponentKind, SignalKind, SignalSet};
pub use consumer::{ConsumeError, Consumer, FanOut};
pub use signal::Signal;
pub use telemetry::Telemetry;

/// The OTLP protobuf types, re-exported so components name one path.
pub mod proto {
    pub use opentelemetry_proto::tonic::collector::logs::v1 as logs_service;
    pub use opentelemetry_proto::tonic::collector::metrics::v1 as metrics_service;
    pub use opentelemetry_proto::tonic::collector::trace::v1 as trace_service;
    pub use opentelemetry_proto::tonic::common::v1 as common;
    pub use opentelemetry_proto::tonic::logs::v1 as logs;
    pub use opentelemetry_proto::tonic::metrics::v1 as metrics;
    pub use opentelemetry_proto::tonic::resource::v1 as resource;
    pub use opentelemetry_proto::tonic::trace::v1 as trace;
}
