use super::*;
use crate::testdata;
use confluo_pipeline::exporter_helper::SendOutcome;
use confluo_pipeline::proto::trace_service::ExportTraceServiceRequest;
use confluo_pipeline::Signal;
use prost::Message;

fn request(signal: &Signal) -> OtlpRequest {
    let mut body = Vec::new();
    signal.encode_request(&mut body);
    OtlpRequest::new(signal.kind(), signal.item_count(), body, true)
}

#[test]
fn merged_protobuf_requests_decode_to_both() {
    let a = testdata::traces_named("a", 2);
    let b = testdata::traces_named("b", 3);
    let mut ra = request(&a);
    ra.merge(request(&b)).unwrap();
    assert_eq!(ra.item_count(), 5);
    let decoded = ExportTraceServiceRequest::decode(&ra.body()[..]).unwrap();
    let mut both = a.clone();
    both.append(b).unwrap();
    assert_eq!(Signal::Traces(decoded.resource_spans), both);
}

fn json_request(signal: &Signal) -> OtlpRequest {
    let mut body = Vec::new();
    crate::util::encode_json(signal, &mut body);
    OtlpRequest::new(signal.kind(), signal.item_count(), body, false)
}

#[test]
fn merged_json_requests_decode_to_both() {
    for (a, b) in [
        (testdata::traces_named("a", 1), testdata::traces()),
        (testdata::metrics(), testdata::metrics()),
        (testdata::logs(), testdata::logs()),
    ] {
        let mut ra = json_request(&a);
        ra.merge(json_request(&b)).unwrap();
        let mut both = a.clone();
        both.append(b).unwrap();
        let decoded = match both.kind() {
            SignalKind::Traces => Signal::Traces(
                confluo_pipeline::otlp_json::decode_traces(ra.body())
                    .unwrap()
                    .resource_spans,
            ),
            SignalKind::Metrics => Signal::Metrics(
                confluo_pipeline::otlp_json::decode_metrics(ra.body())
                    .unwrap()
                    .resource_metrics,
            ),
            SignalKind::Logs => Signal::Logs(
                confluo_pipeline::otlp_json::decode_logs(ra.body())
                    .unwrap()
                    .resource_logs,
            ),
        };
        assert_eq!(decoded, both);
    }
}

#[test]
fn merge_refuses_other_signals_formats_and_odd_json() {
    let mut t = request(&testdata::traces());
    assert!(t.merge(request(&testdata::logs())).is_err());
    assert!(t.merge(json_request(&testdata::traces())).is_err());
    assert_eq!(t.item_count(), 2);
    let mut j = json_request(&testdata::traces());
    let odd = OtlpRequest::new(SignalKind::Traces, 1, b"{}".to_vec(), false);
    assert!(j.merge(odd).is_err());
    assert_eq!(j.item_count(), 2);
}

#[test]
fn compression_is_computed_once_and_reset_by_merge() {
    let mut r = request(&testdata::traces());
    let first = r.compressed(Compression::Gzip);
    let again = r.compressed(Compression::Gzip);
    assert_eq!(
        first.as_ptr(),
        again.as_ptr(),
        "retries reuse the compressed body"
    );
    let plain = confluo_pipeline::compression::decompress(Some("gzip"), first, 1 << 20).unwrap();
    assert_eq!(&plain[..], &r.body()[..]);
    r.merge(request(&testdata::traces())).unwrap();
    let merged = r.compressed(Compression::Gzip);
    let plain = confluo_pipeline::compression::decompress(Some("gzip"), merged, 1 << 20).unwrap();
    assert_eq!(plain.len(), r.body().len());
    assert_eq!(r.compressed(Compression::None), r.body().clone());
}

#[test]
fn partial_success_outcomes() {
    assert!(matches!(
        partial_outcome("x", SignalKind::Traces, (0, String::new())),
        SendOutcome::Sent
    ));
    assert!(matches!(
        partial_outcome("x", SignalKind::Traces, (0, "just a warning".into())),
        SendOutcome::Sent
    ));
    match partial_outcome("x", SignalKind::Logs, (3, "bad".into())) {
        SendOutcome::Partial {
            retry: None,
            rejected: 3,
            error,
        } => assert_eq!(error, "bad"),
        other => panic!("{other:?}"),
    }
}
