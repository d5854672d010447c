//! `probabilistic_sampler` end to end, with the OpenTelemetry Python SDK as
//! the source (tests/e2e/python/probabilistic_sampler_send.py: each trace has
//! two spans and one log record emitted inside it):
//!
//! 1. one confluo, a traces and a logs pipeline each with the sampler (same
//!    seed, 30%) → file: the trace ids of kept spans and of kept logs are the
//!    same set, and exactly the set the Collector's formula selects;
//! 2. the same across two processes: an agent samples logs, a gateway
//!    samples traces;
//! 3. `proportional` mode in one process, checking the `ot=th:` written.
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use confluo_processors::probabilistic_sampler::sampling::{legacy_keep, Randomness, Threshold};

const SEED: u32 = 22;
const PCT: f32 = 30.0;
const TRACES: usize = 200;

fn hex_to_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn send(traces_port: u16, logs_port: u16) -> Vec<String> {
    let summary = run_python(
        "probabilistic_sampler_send.py",
        &[
            "--traces-endpoint",
            &format!("127.0.0.1:{traces_port}"),
            "--logs-endpoint",
            &format!("127.0.0.1:{logs_port}"),
            "--count",
            &TRACES.to_string(),
        ],
    );
    let ids = str_list(&summary["trace_ids"]);
    assert_eq!(ids.len(), TRACES, "{summary}");
    ids
}

fn file_config(
    grpc: u16,
    telemetry: u16,
    sampler: &str,
    traces_proc: bool,
    logs_proc: bool,
) -> String {
    let procs = |on: bool| {
        if on {
            "\n      processors: [probabilistic_sampler]"
        } else {
            ""
        }
    };
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  probabilistic_sampler:
{sampler}
exporters:
  file:
    path: {{{{DIR}}}}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]{tp}
      exporters: [file]
    logs:
      receivers: [otlp]{lp}
      exporters: [file]
"#,
        tp = procs(traces_proc),
        lp = procs(logs_proc),
    )
}

fn hash_seed_block() -> String {
    format!("    sampling_percentage: {PCT}\n    hash_seed: {SEED}")
}

/// Waits until the file holds `spans` spans and `logs` log records.
fn wait_for(
    confluo: &Confluo,
    spans: usize,
    logs: usize,
) -> (BTreeSet<String>, BTreeSet<String>, Vec<serde_json::Value>) {
    let mut last = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    let ok = wait_until(Duration::from_secs(30), || {
        let rows = read_file_exporter(confluo.path("out.jsonl"));
        let s = spans_in(&rows);
        let l = logs_in(&rows);
        let done = s.len() >= spans && l.len() >= logs;
        let ids = |items: &[Item]| {
            items
                .iter()
                .map(|i| i.value["traceId"].as_str().unwrap_or("").to_string())
                .collect::<BTreeSet<_>>()
        };
        let mut values: Vec<serde_json::Value> = s.iter().map(|i| i.value.clone()).collect();
        values.extend(l.iter().map(|i| i.value.clone()));
        last = (ids(&s), ids(&l), values);
        done && s.len() == spans && l.len() == logs
    });
    assert!(
        ok,
        "expected {spans} spans and {logs} logs; have {} span traces, {} log traces\n{}",
        last.0.len(),
        last.1.len(),
        confluo.stderr()
    );
    last
}

fn assert_plausible(kept: usize) {
    eprintln!("kept {kept} of {TRACES} traces");
    // 30% of 200: mean 60, σ ≈ 6.5; ±5σ.
    assert!(
        (28..=92).contains(&kept),
        "kept {kept} of {TRACES} traces at 30%"
    );
}

#[test]
fn logs_are_kept_exactly_with_their_traces_in_one_process() {
    let (grpc, tel) = (free_port(), free_port());
    let confluo = Confluo::start(&file_config(grpc, tel, &hash_seed_block(), true, true));
    let sent = send(grpc, grpc);

    let expected: BTreeSet<String> = sent
        .iter()
        .filter(|id| legacy_keep(&hex_to_bytes(id), SEED, PCT))
        .cloned()
        .collect();
    assert_plausible(expected.len());
    let (span_ids, log_ids, items) = wait_for(&confluo, 2 * expected.len(), expected.len());
    assert_eq!(span_ids, log_ids, "kept spans' traces vs kept logs' traces");
    assert_eq!(span_ids, expected, "the Collector's hash_seed decision");

    // hash_seed writes its threshold (30% → b334) and the hash randomness.
    for v in &items {
        if v.get("name").is_some() {
            let ts = v["traceState"].as_str().unwrap_or("");
            assert!(ts.starts_with("ot=rv:") && ts.ends_with(";th:b334"), "{ts}");
        } else {
            let attrs = attr_map(&v["attributes"]);
            assert_eq!(
                attrs.get("sampling.threshold"),
                Some(&serde_json::json!({"stringValue": "b334"})),
                "{v}"
            );
            assert!(attrs.contains_key("sampling.randomness"), "{v}");
        }
    }
    let sampled = |name: &str, s: &str| {
        confluo.metric_or_zero(name, &[("sampled", s), ("policy", "trace_id_hash")])
    };
    let traces_metric = "otelcol_processor_probabilistic_sampler_count_traces_sampled";
    let logs_metric = "otelcol_processor_probabilistic_sampler_count_logs_sampled";
    assert_eq!(sampled(traces_metric, "true") as usize, 2 * expected.len());
    assert_eq!(
        sampled(traces_metric, "false") as usize,
        2 * (TRACES - expected.len())
    );
    assert_eq!(sampled(logs_metric, "true") as usize, expected.len());
    assert_eq!(
        sampled(logs_metric, "false") as usize,
        TRACES - expected.len()
    );
}

#[test]
fn agent_samples_logs_and_gateway_samples_traces_consistently() {
    let (gw_grpc, gw_tel) = (free_port(), free_port());
    let gateway = Confluo::start(&file_config(
        gw_grpc,
        gw_tel,
        &hash_seed_block(),
        true,
        false,
    ));
    let (agent_grpc, agent_tel) = (free_port(), free_port());
    let agent = Confluo::start(&format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{agent_grpc}
processors:
  probabilistic_sampler:
{block}
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:{gw_grpc}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{agent_tel}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc]
    logs:
      receivers: [otlp]
      processors: [probabilistic_sampler]
      exporters: [otlp_grpc]
"#,
        block = hash_seed_block()
    ));
    let sent = send(agent_grpc, agent_grpc);
    let expected: BTreeSet<String> = sent
        .iter()
        .filter(|id| legacy_keep(&hex_to_bytes(id), SEED, PCT))
        .cloned()
        .collect();
    assert_plausible(expected.len());
    let (span_ids, log_ids, _) = wait_for(&gateway, 2 * expected.len(), expected.len());
    assert_eq!(
        span_ids, log_ids,
        "gateway-sampled traces vs agent-sampled logs"
    );
    assert_eq!(span_ids, expected);
    assert_eq!(
        agent.metric_or_zero(
            "otelcol_processor_probabilistic_sampler_count_logs_sampled",
            &[("sampled", "true")]
        ) as usize,
        expected.len()
    );
}

#[test]
fn proportional_mode_writes_spec_thresholds() {
    let (grpc, tel) = (free_port(), free_port());
    let block = format!("    mode: proportional\n    sampling_percentage: {PCT}");
    let confluo = Confluo::start(&file_config(grpc, tel, &block, true, true));
    let sent = send(grpc, grpc);
    // 0.3 at precision 4 is th:b333 (the spec's algorithm); kept when the
    // low 56 bits of the trace id are ≥ it.
    let threshold = Threshold::from_probability(0.3, 4).unwrap();
    assert_eq!(threshold.tvalue(), "b333");
    let expected: BTreeSet<String> = sent
        .iter()
        .filter(|id| threshold.should_sample(Randomness::from_trace_id(&hex_to_bytes(id)).unwrap()))
        .cloned()
        .collect();
    assert_plausible(expected.len());
    let (span_ids, log_ids, items) = wait_for(&confluo, 2 * expected.len(), expected.len());
    assert_eq!(span_ids, log_ids);
    assert_eq!(span_ids, expected);
    for v in &items {
        match v.get("name") {
            Some(_) => assert_eq!(v["traceState"], "ot=th:b333", "{v}"),
            None => {
                let attrs = attr_map(&v["attributes"]);
                assert_eq!(
                    attrs.get("sampling.threshold"),
                    Some(&serde_json::json!({"stringValue": "b333"})),
                    "{v}"
                );
            }
        }
    }
}
