//! OTLP protobuf validation without decoding (`otlp_wire::validate`), checked
//! against prost: it must accept exactly what prost's decode accepts and
//! count the same items, since a receiver answers "accepted" on its word and
//! the data is decoded only later.
#![no_main]

use confluo_pipeline::otlp_wire;
use confluo_pipeline::proto::{logs_service, metrics_service, trace_service};
use confluo_pipeline::{Signal, SignalKind};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (kind, decoded) = match selector % 3 {
        0 => (
            SignalKind::Traces,
            trace_service::ExportTraceServiceRequest::decode(body)
                .map(|r| Signal::Traces(r.resource_spans)),
        ),
        1 => (
            SignalKind::Metrics,
            metrics_service::ExportMetricsServiceRequest::decode(body)
                .map(|r| Signal::Metrics(r.resource_metrics)),
        ),
        _ => (
            SignalKind::Logs,
            logs_service::ExportLogsServiceRequest::decode(body)
                .map(|r| Signal::Logs(r.resource_logs)),
        ),
    };
    match (otlp_wire::validate(kind, body), decoded) {
        (Ok(items), Ok(signal)) => assert_eq!(items, signal.item_count(), "{kind} item count"),
        (Err(_), Err(_)) => {}
        (Ok(items), Err(e)) => panic!("validate accepted {kind} ({items} items); prost: {e}"),
        (Err(e), Ok(_)) => panic!("validate refused {kind} that prost decodes: {e}"),
    }
});
