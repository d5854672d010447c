//! Agent → gateway: `otlp` → `otlp_grpc` exporter (retry + in-memory queue)
//! → `otlp` → `file`. The gateway goes away and comes back on the same port;
//! everything the SDK sent must arrive (at least once).
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

fn agent_config(agent_grpc: u16, gateway_grpc: u16, telemetry: u16) -> String {
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{agent_grpc}
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:{gateway_grpc}
    tls:
      insecure: true
    timeout: 2s
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 120s
    sending_queue:
      enabled: true
      num_consumers: 1
      queue_size: 1000
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc]
"#
    )
}

fn send_traces(agent_grpc: u16, count: usize, request_id: &str) -> serde_json::Value {
    let ep = format!("127.0.0.1:{agent_grpc}");
    let n = count.to_string();
    run_python(
        "send_otlp.py",
        &[
            "--protocol",
            "grpc",
            "--endpoint",
            &ep,
            "--signal",
            "traces",
            "--count",
            &n,
            "--service",
            "chain-svc",
            "--request-id",
            request_id,
        ],
    )
}

fn span_ids(summary: &serde_json::Value) -> BTreeSet<String> {
    str_list(&summary["span_ids"]).into_iter().collect()
}

fn received_span_ids(files: &[std::path::PathBuf]) -> BTreeSet<String> {
    spans_in(&read_file_exporters(files))
        .iter()
        .map(|s| {
            s.value["spanId"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
        .collect()
}

#[test]
fn agent_to_gateway_survives_a_gateway_restart() {
    let gw_grpc = free_port();
    let gw_config = |tel: u16| {
        // HTTP on its own free port: the gateway is fed over gRPC only.
        file_pipeline_config(gw_grpc, free_port(), tel, &[], "")
    };
    let mut gateway = Confluo::start(&gw_config(free_port()));
    let (agent_grpc, agent_tel) = (free_port(), free_port());
    let mut agent = Confluo::start(&agent_config(agent_grpc, gw_grpc, agent_tel));
    let gw1_file = gateway.path("out.jsonl");

    // 1. Normal operation: delivered once, unchanged.
    let first = send_traces(agent_grpc, 10, "chain-before");
    let want = span_ids(&first);
    assert!(
        wait_until(Duration::from_secs(15), || want.is_subset(&received_span_ids(std::slice::from_ref(&gw1_file)))),
        "spans sent before the outage did not reach the gateway within 15 s\n--- agent stderr ---\n{}",
        agent.stderr()
    );
    let spans = with_request_id(spans_in(&read_file_exporter(&gw1_file)), "chain-before");
    assert_traces_match(&first, &spans);
    let sent_before =
        agent.metric_or_zero("otelcol_exporter_sent_spans", &[("exporter", "otlp_grpc")]);
    assert_eq!(
        sent_before,
        10.0,
        "agent otelcol_exporter_sent_spans{{exporter=\"otlp_grpc\"}}\n{}",
        agent.metrics()
    );

    // 2. The gateway goes away; the agent still accepts (into its queue).
    let status = gateway.stop();
    assert!(
        status.success(),
        "gateway exit status {status}\n{}",
        gateway.stderr()
    );
    let failed_before = agent.metric_or_zero(
        "otelcol_exporter_send_failed_spans",
        &[("exporter", "otlp_grpc")],
    );
    let mut during = Vec::new();
    for i in 0..3 {
        during.push(send_traces(agent_grpc, 5, &format!("chain-during-{i}")));
    }
    // The outage is visible in the agent's self-metrics: confluo counts the
    // items of every failed attempt in send_failed (docs/design.md), and the
    // data waits in the sending queue meanwhile.
    let mut seen = (0.0, 0.0);
    let visible = wait_until(Duration::from_secs(15), || {
        let failed = agent.metric_or_zero(
            "otelcol_exporter_send_failed_spans",
            &[("exporter", "otlp_grpc")],
        );
        let queued =
            agent.metric_or_zero("otelcol_exporter_queue_size", &[("exporter", "otlp_grpc")]);
        seen = (failed, queued);
        failed > failed_before && queued > 0.0
    });
    assert!(
        visible,
        "with the gateway down, otelcol_exporter_send_failed_spans should grow ({failed_before} -> {}) \
         while otelcol_exporter_queue_size > 0 ({}) on the agent\n--- /metrics ---\n{}",
        seen.0,
        seen.1,
        agent.metrics()
    );
    agent.assert_alive("while the gateway was down");

    // 3. A new gateway on the same port: the queued data arrives.
    let gateway2 = Confluo::start(&gw_config(free_port()));
    let gw2_file = gateway2.path("out.jsonl");
    let after = send_traces(agent_grpc, 5, "chain-after");

    let mut want_all = want.clone();
    for s in during.iter().chain(std::iter::once(&after)) {
        want_all.extend(span_ids(s));
    }
    let files = [gw1_file.clone(), gw2_file.clone()];
    let arrived = wait_until(Duration::from_secs(30), || {
        want_all.is_subset(&received_span_ids(&files))
    });
    if !arrived {
        let got = received_span_ids(&files);
        let missing: Vec<&String> = want_all.difference(&got).collect();
        panic!(
            "{} of {} spans never reached a gateway within 30 s of its restart: {missing:?}\n--- agent /metrics ---\n{}\n--- agent stderr ---\n{}",
            missing.len(),
            want_all.len(),
            agent.metrics(),
            agent.stderr()
        );
    }
    // Every trace id of every send is there.
    let rows = read_file_exporters(&files);
    let got_traces: BTreeSet<String> = spans_in(&rows)
        .iter()
        .map(|s| {
            s.value["traceId"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
        .collect();
    for s in during.iter().chain([&first, &after]) {
        for t in str_list(&s["trace_ids"]) {
            assert!(
                got_traces.contains(&t),
                "trace {t} of {} missing",
                s["request_id"]
            );
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || {
            agent.metric_or_zero("otelcol_exporter_sent_spans", &[("exporter", "otlp_grpc")])
                >= 30.0
        }),
        "agent otelcol_exporter_sent_spans{{exporter=\"otlp_grpc\"}} < 30\n{}",
        agent.metrics()
    );
    let status = agent.stop();
    assert!(
        status.success(),
        "agent exit status {status}\n{}",
        agent.stderr()
    );
    drop(gateway2);
}
