use super::*;
use crate::testdata;
use confluo_pipeline::otlp_json;
use confluo_pipeline::{ComponentKind, Signal};
use prost::Message;

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confluo-exporters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn create(yaml: &str) -> Arc<dyn Exporter> {
    let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
    assert!(
        FileFactory.check(&node).is_empty(),
        "{:?}",
        FileFactory.check(&node)
    );
    let ctx = ComponentContext::for_tests(ComponentKind::Exporter, "file");
    FileFactory.create(ctx, &node, SignalSet::ALL).unwrap()
}

/// Decodes one line by the key it starts with.
fn decode_line(line: &str) -> Signal {
    if line.starts_with("{\"resourceSpans\"") {
        Signal::Traces(
            otlp_json::decode_traces(line.as_bytes())
                .unwrap()
                .resource_spans,
        )
    } else if line.starts_with("{\"resourceMetrics\"") {
        Signal::Metrics(
            otlp_json::decode_metrics(line.as_bytes())
                .unwrap()
                .resource_metrics,
        )
    } else {
        Signal::Logs(
            otlp_json::decode_logs(line.as_bytes())
                .unwrap()
                .resource_logs,
        )
    }
}

#[tokio::test]
async fn json_lines_decode_to_what_was_consumed() {
    let path = temp_path("roundtrip.json");
    let exp = create(&format!("{{path: {}}}", path.display()));
    exp.start().await.unwrap();
    let input = [testdata::traces(), testdata::metrics(), testdata::logs()];
    for s in &input {
        exp.consume(Batch::new(s.clone())).await.unwrap();
        // Visible at once, while the exporter still runs.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, want) in lines.iter().zip(&input) {
        assert_eq!(&decode_line(line), want);
    }
    exp.shutdown(Instant::now()).await.unwrap();
}

#[tokio::test]
async fn append_false_truncates_at_start_and_append_true_keeps() {
    let path = temp_path("truncate.json");
    std::fs::write(&path, "old line\n").unwrap();
    let kept = create(&format!("{{path: {}, append: true}}", path.display()));
    kept.start().await.unwrap();
    kept.consume(Batch::new(testdata::logs())).await.unwrap();
    kept.shutdown(Instant::now()).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("old line\n{\"resourceLogs\""), "{text}");

    // `create` alone (what `confluo validate` does) must not touch the file.
    let exp = create(&format!("{{path: {}}}", path.display()));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("old line"));
    exp.start().await.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.shutdown(Instant::now()).await.unwrap();
    // A straggler after shutdown reopens without truncating again.
    exp.consume(Batch::new(testdata::logs())).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(
        decode_line(text.lines().next().unwrap()),
        testdata::traces()
    );
}

#[tokio::test]
async fn proto_format_is_length_prefixed() {
    let path = temp_path("out.pb");
    let exp = create(&format!("{{path: {}, format: proto}}", path.display()));
    exp.start().await.unwrap();
    exp.consume(Batch::new(testdata::traces())).await.unwrap();
    exp.consume(Batch::new(testdata::metrics())).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    let first =
        confluo_pipeline::proto::trace_service::ExportTraceServiceRequest::decode(&bytes[4..4 + n])
            .unwrap();
    assert_eq!(Signal::Traces(first.resource_spans), testdata::traces());
    let rest = &bytes[4 + n..];
    let m = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
    assert_eq!(rest.len(), 4 + m);
    let second =
        confluo_pipeline::proto::metrics_service::ExportMetricsServiceRequest::decode(&rest[4..])
            .unwrap();
    assert_eq!(
        Signal::Metrics(second.resource_metrics),
        testdata::metrics()
    );
}

#[tokio::test]
async fn an_unwritable_path_fails_start_and_consume_retryably() {
    let exp = create("{path: /nonexistent-dir/confluo/out.json}");
    let err = exp.start().await.unwrap_err().to_string();
    assert!(err.contains("/nonexistent-dir/confluo/out.json"), "{err}");
    let err = exp.consume(Batch::new(testdata::logs())).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn config_errors() {
    let check = |y: &str| FileFactory.check(&Node::from_yaml_str("t.yaml", y).unwrap());
    assert!(check("{path: /tmp/x.json, flush_interval: 5s, format: json}").is_empty());
    let e = check("{}");
    assert_eq!(e.len(), 1);
    assert!(e[0].to_string().contains("path"), "{}", e[0]);
    let e = check("{path: x, rotation: {max_megabytes: 10}}");
    assert_eq!(e.len(), 1);
    assert!(e[0].to_string().contains("rotation"), "{}", e[0]);
    assert_eq!(check("{path: x, compression: zstd}").len(), 1);
    assert_eq!(check("{path: x, format: yaml}").len(), 1);
    assert_eq!(check("{path: x, apend: true}").len(), 1);
}
