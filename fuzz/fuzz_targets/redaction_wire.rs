//! `redaction` on undecoded OTLP protobuf (`redaction::wire`), checked against
//! the decoded path: for every request the receivers would accept, the walk
//! must give the data and totals that decode → redact → encode gives, or
//! leave the request to the decoded path — never panic, never differ.
#![no_main]

use confluo_config::Node;
use confluo_pipeline::otlp_wire;
use confluo_pipeline::{Signal, SignalKind};
use confluo_processors::redaction::{wire, RedactionConfig, Redactor};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CONFIGS: &[&str] = &[
    "allow_all_keys: true
detectors: [credit_card, email, jwt, bearer_token, authorization, aws_access_key, private_key, password_keys]
summary: debug",
    "allowed_keys: [a, b, url.path, db.statement, password]
ignored_keys: [c]
blocked_values: ['[0-9]{4}', 'x+']
blocked_key_patterns: ['.*token.*']
url_sanitizer: {enabled: true, sanitize_span_name: true}
db_sanitizer: {sql: {enabled: true}, redis: {enabled: true}, sanitize_span_name: true}
hash_function: sha1
summary: info",
    "allow_all_keys: true
redact_all_types: true
blocked_values: ['^4', '42']
detectors: [password_keys]
summary: silent",
];

fn redactors() -> &'static Vec<Redactor> {
    static R: OnceLock<Vec<Redactor>> = OnceLock::new();
    R.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|yaml| {
                let cfg: RedactionConfig = Node::from_yaml_str("fuzz.yaml", yaml)
                    .expect("yaml")
                    .deserialize()
                    .expect("config");
                Redactor::new(&cfg).unwrap_or_else(|_| panic!("valid config"))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = match selector % 3 {
        0 => SignalKind::Traces,
        1 => SignalKind::Metrics,
        _ => SignalKind::Logs,
    };
    if otlp_wire::validate(kind, body).is_err() {
        return;
    }
    let r = &redactors()[(selector as usize / 3) % CONFIGS.len()];
    let original = Signal::decode_request(kind, body).expect("validated");
    let mut expected = original.clone();
    let tree_stats = r.process(&mut expected);
    let Ok((wire_stats, rewritten)) = wire::process_encoded(r, kind, body) else {
        return;
    };
    assert_eq!(wire_stats, tree_stats, "totals");
    assert_eq!(rewritten.is_some(), r.changed(&tree_stats), "changed");
    let out = rewritten.as_deref().unwrap_or(body);
    assert_eq!(otlp_wire::validate(kind, out), Ok(original.item_count()));
    let got = Signal::decode_request(kind, out).expect("rewritten request decodes");
    assert_eq!(got, expected, "data");
});
