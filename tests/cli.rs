//! The command line: validate, components, --version, run with no config.
mod common;

use std::path::{Path, PathBuf};

use common::*;

fn write_config(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const VALID: &str = "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  batch:
    timeout: 1s
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
";

// `endpont` is on line 5, column 9 (1-based).
const MISSPELLED: &str = "receivers:
  otlp:
    protocols:
      grpc:
        endpont: 127.0.0.1:4317
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
";

#[test]
fn validate_accepts_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), "valid.yaml", VALID);
    let out = confluo_cmd(&["validate", "--config", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "validate of a valid config exited {}\n--- stderr ---\n{}",
        out.status,
        text(&out.stderr)
    );
}

#[test]
fn validate_reports_a_misspelled_key_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), "typo.yaml", MISSPELLED);
    let path = p.to_str().unwrap();
    let out = confluo_cmd(&["validate", "--config", path]);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "validate accepted `endpont`\n--- stderr ---\n{stderr}"
    );
    assert!(
        out.status.code().is_some(),
        "validate was killed by a signal: {}",
        out.status
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("endpont"))
        .unwrap_or_else(|| panic!("stderr does not name the key `endpont`:\n{stderr}"));
    let want_prefix = format!("{path}:5:9: error: ");
    assert!(
        line.starts_with(&want_prefix),
        "expected `{want_prefix}receivers.otlp.protocols.grpc…: … (hint: …)`, got:\n{line}\n--- stderr ---\n{stderr}"
    );
    assert!(
        line.contains("receivers.otlp.protocols.grpc"),
        "the error should carry the YAML path receivers.otlp.protocols.grpc: {line}"
    );
    assert!(!stderr.contains("panicked"), "validate panicked:\n{stderr}");
}

/// A correlation processor whose `store:` names `{store}`, with
/// `correlation_store/shared` configured and listed when `listed`.
fn correlation_config(store: &str, listed: bool) -> String {
    let service_extensions = if listed {
        "  extensions: [correlation_store/shared]\n"
    } else {
        ""
    };
    // `store:` is on line 8, its value at column 12.
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  correlation:
    store: {store}
extensions:
  correlation_store/shared: {{}}
exporters:
  debug: {{}}
service:
{service_extensions}  pipelines:
    traces:
      receivers: [otlp]
      processors: [correlation]
      exporters: [debug]
"
    )
}

#[test]
fn validate_reports_a_correlation_store_that_is_not_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Configured but not in service.extensions.
        (
            "not_listed.yaml",
            "correlation_store/shared",
            false,
            "under `extensions:`",
        ),
        // Listed, but `store:` misspells it.
        (
            "typo.yaml",
            "correlation_store/shraed",
            true,
            "did you mean \"correlation_store/shared\"?",
        ),
    ];
    for (file, store, listed, hint) in cases {
        let p = write_config(dir.path(), file, &correlation_config(store, listed));
        let path = p.to_str().unwrap();
        let out = confluo_cmd(&["validate", "--config", path]);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{file}: validate accepted a dangling store\n--- stderr ---\n{stderr}"
        );
        let want = format!(
            "{path}:8:12: error: processors.correlation.store: extension \"{store}\" is not configured or not listed in service.extensions (hint: "
        );
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("{file}: expected a line starting `{want}`:\n{stderr}"));
        assert!(
            line.contains(hint),
            "{file}: hint should say {hint}: {line}"
        );
        assert!(!stderr.contains("panicked"), "validate panicked:\n{stderr}");
    }
    // Enabled and spelled right: valid.
    let p = write_config(
        dir.path(),
        "ok.yaml",
        &correlation_config("correlation_store/shared", true),
    );
    let out = confluo_cmd(&["validate", "--config", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn validate_fails_on_a_missing_file() {
    let out = confluo_cmd(&["validate", "--config", "/nonexistent/confluo.yaml"]);
    assert!(!out.status.success(), "validate of a missing file exited 0");
    assert!(
        text(&out.stderr).contains("/nonexistent/confluo.yaml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_accepts_every_documented_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (docs/examples must hold example configs)",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.yaml in {}: the test would pass vacuously",
        dir.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        let out = confluo_cmd(&["validate", "--config", f.to_str().unwrap()]);
        if !out.status.success() {
            failures.push(format!(
                "{} ({}):\n{}",
                f.display(),
                out.status,
                text(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples do not validate:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn components_lists_the_core_components() {
    let out = confluo_cmd(&["components"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "components exited {}\n{}",
        out.status,
        text(&out.stderr)
    );
    let words: std::collections::BTreeSet<&str> = stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for name in ["otlp", "batch", "debug", "file", "otlp_grpc", "otlp_http"] {
        assert!(
            words.contains(name),
            "`confluo components` does not list {name}:\n{stdout}"
        );
    }
    for signal in ["traces", "metrics", "logs"] {
        assert!(
            stdout.contains(signal),
            "`confluo components` shows no {signal} support:\n{stdout}"
        );
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = confluo_cmd(&["--version"]);
    assert!(out.status.success(), "--version exited {}", out.status);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version printed {stdout:?}, expected it to contain {}",
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn run_without_config_starts_the_default_pipeline() {
    // The embedded default binds localhost:4317, 4318, 8081 and 127.0.0.1:8888.
    let busy: Vec<u16> = [4317, 4318, 8081, 8888]
        .into_iter()
        .filter(|p| port_in_use(*p))
        .collect();
    if !busy.is_empty() {
        eprintln!("SKIPPED run_without_config_starts_the_default_pipeline: ports {busy:?} are in use on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = Confluo::spawn_in(dir, &["run".to_string()], "127.0.0.1:8888");
    c.wait_ready();
    // The default pipeline takes OTLP/HTTP on localhost:4318.
    let (status, _, body) = http_post(
        "localhost:4318",
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        &otlp_trace_request_pb("default-config", [0x55; 16], [0x66; 8]),
    );
    assert_eq!(
        status,
        200,
        "default pipeline refused a span: {}",
        String::from_utf8_lossy(&body)
    );
    // And JSON log lines on localhost:8081.
    let (status, _, body) = http_post(
        "localhost:8081",
        "/v1/logs/json",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"event\":\"hello\",\"level\":\"info\"}\n",
    );
    assert_eq!(
        status,
        200,
        "default pipeline refused a JSON log line: {}",
        String::from_utf8_lossy(&body)
    );
    let status = c.stop();
    assert!(status.success(), "SIGTERM → exit {status}\n{}", c.stderr());
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let (grpc, http, tel) = (free_port(), free_port(), free_port());
    let mut c = Confluo::start(&file_pipeline_config(
        grpc,
        http,
        tel,
        &["batch"],
        "processors:\n  batch:\n    timeout: 10s\n    send_batch_size: 1000\n",
    ));
    // Held by the batch processor (10 s timeout) when SIGTERM arrives: must be flushed.
    let (status, _, body) = http_post(
        &format!("127.0.0.1:{http}"),
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        &otlp_trace_request_pb("drained-on-sigterm", [0x77; 16], [0x88; 8]),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = c.path("out.jsonl");
    let status = c.stop();
    assert!(status.success(), "SIGTERM → exit {status}\n{}", c.stderr());
    let names: Vec<String> = spans_in(&read_file_exporter(&out))
        .iter()
        .map(|s| s.value["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        ["drained-on-sigterm"],
        "the batch processor's content was not flushed on shutdown"
    );
}
