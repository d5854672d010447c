//! The one explicit list of component types this binary knows.

use confluo_pipeline::component::Registry;
use confluo_pipeline::ComponentKind;

pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.receiver(confluo_receivers::otlp::OtlpReceiverFactory);
    r.receiver(confluo_receivers::prometheus::PrometheusReceiverFactory);
    r.receiver(confluo_receivers::jsonlog::JsonLogReceiverFactory);
    r.processor(confluo_processors::batch::BatchFactory);
    r.processor(confluo_processors::probabilistic_sampler::ProbabilisticSamplerFactory);
    r.processor(confluo_processors::tail_sampling::TailSamplingFactory);
    r.processor(confluo_processors::redaction::RedactionFactory);
    r.processor(confluo_processors::correlation::CorrelationFactory);
    r.extension(confluo_processors::correlation::CorrelationStoreFactory);
    r.exporter(confluo_exporters::otlp::OtlpGrpcFactory)
        .exporter(confluo_exporters::otlp::OtlpHttpFactory)
        .exporter(confluo_exporters::debug::DebugFactory)
        .exporter(confluo_exporters::file::FileFactory);
    r.exporter(confluo_exporters::loki::LokiFactory);
    r.exporter(confluo_exporters::jaeger::JaegerFactory);
    r.exporter(confluo_exporters::elasticsearch::ElasticsearchFactory);
    r.exporter(confluo_exporters::datadog::DatadogFactory);
    r.connector(confluo_pipeline::connectors::ForwardFactory);
    r.extension(confluo_pipeline::telemetry::server::HealthCheckFactory);
    r.alias(ComponentKind::Exporter, "otlp", "otlp_grpc").alias(
        ComponentKind::Exporter,
        "otlphttp",
        "otlp_http",
    );
    r
}

/// The `confluo components` table.
pub fn describe(r: &Registry) -> String {
    let mut out = format!(
        "{:<10} {:<22} {:<24} {:<12} {}\n",
        "KIND", "TYPE", "SIGNALS", "STABILITY", "ALIASES"
    );
    for c in r.list() {
        out.push_str(&format!(
            "{:<10} {:<22} {:<24} {:<12} {}\n",
            c.kind.to_string(),
            c.type_name,
            c.signals,
            c.stability.to_string(),
            c.aliases.join(",")
        ));
    }
    out
}
