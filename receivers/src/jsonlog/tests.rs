//! Mapping of each log format, body framings, and the receiver on loopback
//! with a raw HTTP/1.1 client (every header and byte under the test's control).

use super::parse::{parse_level, parse_span_id, parse_trace_id, parse_traceparent, severity};
use super::*;
use confluo_config::ComponentKind;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue};
use proptest::prelude::*;
use std::sync::Mutex;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- helpers

const OBSERVED: u64 = 1_800_000_000_000_000_000;

fn mapper_with(yaml: &str) -> Mapper {
    let cfg = config(yaml).expect("valid config");
    Mapper::new(&cfg.mapping, cfg.max_line_size())
}

fn mapper() -> Mapper {
    mapper_with("{}")
}

fn config(yaml: &str) -> Result<JsonLogConfig, Vec<ConfigError>> {
    let node = Node::from_yaml_str("test.yaml", yaml).expect("valid YAML");
    JsonLogConfig::from_node(&node)
}

fn line(json: &str) -> Line {
    mapper()
        .parse_line(json.as_bytes(), OBSERVED)
        .unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn s(v: &str) -> AnyValue {
    attrs::string(v)
}

fn body_str(r: &LogRecord) -> Option<&str> {
    match r.body.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn keys(r: &LogRecord) -> Vec<&str> {
    let mut k: Vec<&str> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
    k.sort_unstable();
    k
}

/// Unix nanoseconds of a UTC date-time, computed independently of the parser.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, sec: u32, nanos: u64) -> u64 {
    // Days from 1970-01-01 by counting (slow and obviously right).
    let mut days: u64 = 0;
    for year in 1970..y {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        days += if leap { 366 } else { 365 };
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += months[..(mo - 1) as usize].iter().sum::<u64>();
    days += u64::from(d - 1);
    ((days * 86_400) + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(sec)) * 1_000_000_000
        + nanos
}

// ---------------------------------------------------------------- formats

#[test]
fn structlog_json_renderer() {
    // structlog: merge_contextvars + add_log_level + add_logger_name +
    // TimeStamper(fmt="iso") + JSONRenderer, with a bound request_id.
    let l = line(
        r#"{"request_id": "req-42", "user_id": 7, "event": "user logged in", "logger": "app.auth", "level": "info", "timestamp": "2024-05-01T12:00:00.123456Z"}"#,
    );
    let r = &l.record;
    assert_eq!(body_str(r), Some("user logged in"));
    assert_eq!(r.severity_number, severity::INFO);
    assert_eq!(r.severity_text, "info");
    assert_eq!(r.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 123_456_000));
    assert_eq!(r.observed_time_unix_nano, OBSERVED);
    assert_eq!(l.scope.as_deref(), Some("app.auth"));
    assert_eq!(l.service, None);
    assert_eq!(keys(r), ["request_id", "user_id"]);
    assert_eq!(attrs::get(&r.attributes, "request_id"), Some(&s("req-42")));
    assert_eq!(attrs::get(&r.attributes, "user_id"), Some(&attrs::int(7)));
    assert_eq!(l.invalid, Invalid::default());
}

#[test]
fn python_json_logger() {
    let l = line(
        r#"{"asctime": "2024-05-01 12:00:00,123", "levelname": "WARNING", "name": "app.db", "message": "disk low", "request_id": "r1", "extra": {"free_mb": 12}}"#,
    );
    let r = &l.record;
    assert_eq!(body_str(r), Some("disk low"));
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (severity::WARN, "WARNING")
    );
    assert_eq!(r.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 123_000_000));
    assert_eq!(l.scope.as_deref(), Some("app.db"));
    assert_eq!(keys(r), ["extra", "request_id"]);
    assert_eq!(
        attrs::get(&r.attributes, "extra"),
        Some(&attrs::kvlist(vec![attrs::key_value(
            "free_mb",
            attrs::int(12)
        )]))
    );
}

#[test]
fn ecs_nested_and_dotted_fields() {
    let l = line(
        r#"{"@timestamp":"2024-05-01T12:00:00.250Z","log.level":"error","message":"boom","ecs.version":"1.6.0",
            "log":{"logger":"app.db","origin":{"file":{"line":3}}},"service":{"name":"checkout"},
            "trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"},"span":{"id":"00f067aa0ba902b7"}}"#,
    );
    let r = &l.record;
    assert_eq!(body_str(r), Some("boom"));
    assert_eq!(r.severity_number, severity::ERROR);
    assert_eq!(r.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 250_000_000));
    assert_eq!(l.service.as_deref(), Some("checkout"));
    assert_eq!(l.scope.as_deref(), Some("app.db"));
    assert_eq!(hex(&r.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&r.span_id), "00f067aa0ba902b7");
    // Mapped nested fields are removed, their siblings stay, empty parents go.
    assert_eq!(keys(r), ["ecs.version", "log"]);
    let log = attrs::get(&r.attributes, "log").unwrap();
    assert_eq!(attrs::to_text(log), r#"{"origin":{"file":{"line":3}}}"#);
}

#[test]
fn ecs_flat_dotted_keys() {
    let l = line(
        r#"{"@timestamp":"2024-05-01T12:00:00Z","log.level":"warn","message":"m","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","span.id":"00f067aa0ba902b7","service.name":"svc"}"#,
    );
    assert_eq!(l.record.severity_number, severity::WARN);
    assert_eq!(hex(&l.record.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(l.service.as_deref(), Some("svc"));
    assert!(l.record.attributes.is_empty());
}

#[test]
fn pino_numeric_levels_and_ms_time() {
    let l = line(
        r#"{"level":30,"time":1714564800123,"pid":4242,"hostname":"web-1","name":"api","msg":"request completed","responseTime":12}"#,
    );
    let r = &l.record;
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (severity::INFO, "info")
    );
    assert_eq!(r.time_unix_nano, 1_714_564_800_123_000_000);
    assert_eq!(body_str(r), Some("request completed"));
    assert_eq!(l.scope.as_deref(), Some("api"));
    assert_eq!(keys(r), ["hostname", "pid", "responseTime"]);
    for (n, sev, text) in [
        (10, severity::TRACE, "trace"),
        (20, severity::DEBUG, "debug"),
        (40, severity::WARN, "warn"),
        (50, severity::ERROR, "error"),
        (60, severity::FATAL, "fatal"),
        (35, severity::INFO, "35"),
    ] {
        let r = line(&format!(r#"{{"level":{n},"msg":"x"}}"#)).record;
        assert_eq!(
            (r.severity_number, r.severity_text.as_str()),
            (sev, text),
            "level {n}"
        );
    }
}

#[test]
fn bunyan_record() {
    let l = line(
        r#"{"name":"myapp","hostname":"h","pid":1,"level":50,"msg":"failed","time":"2024-05-01T12:00:00.000Z","v":0}"#,
    );
    assert_eq!(l.record.severity_number, severity::ERROR);
    assert_eq!(l.record.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 0));
    assert_eq!(keys(&l.record), ["hostname", "pid", "v"]);
}

#[test]
fn zap_float_seconds_and_caller() {
    let l = line(
        r#"{"level":"info","ts":1714564800.123456,"logger":"server","caller":"server/main.go:42","msg":"listening","addr":":8080"}"#,
    );
    let r = &l.record;
    let want = 1_714_564_800_123_456_000u64;
    // A double holds this to about 0.2 µs.
    assert!(
        r.time_unix_nano.abs_diff(want) < 1_000,
        "{}",
        r.time_unix_nano
    );
    assert_eq!(r.severity_number, severity::INFO);
    assert_eq!(l.scope.as_deref(), Some("server"));
    assert_eq!(keys(r), ["addr", "caller"]);
    let dpanic = line(r#"{"level":"dpanic","msg":"x"}"#).record;
    assert_eq!(dpanic.severity_number, severity::ERROR2);
}

#[test]
fn go_slog_with_offsets() {
    let l = line(
        r#"{"time":"2024-05-01T14:00:00.123456789+02:00","level":"WARN+2","msg":"slow","k":1}"#,
    );
    let r = &l.record;
    assert_eq!(r.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 123_456_789));
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (15, "WARN+2")
    );
    assert_eq!(body_str(r), Some("slow"));
    assert_eq!(
        line(r#"{"level":"DEBUG-4","msg":"x"}"#)
            .record
            .severity_number,
        1
    );
    assert_eq!(
        line(r#"{"level":"ERROR","msg":"x"}"#)
            .record
            .severity_number,
        severity::ERROR
    );
}

#[test]
fn python_levelno_and_configured_python_scale() {
    let r = line(r#"{"levelno":40,"message":"x"}"#).record;
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (severity::ERROR, "ERROR")
    );
    let r = line(r#"{"levelno":50,"message":"x"}"#).record;
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (severity::FATAL, "CRITICAL")
    );
    // `levelname` wins over `levelno` (earlier in the list) and both go.
    let r = line(r#"{"levelname":"INFO","levelno":20,"message":"x"}"#).record;
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (severity::INFO, "INFO")
    );
    assert_eq!(keys(&r), ["levelno"]);
    let m = mapper_with("mapping: {numeric_levels: python}");
    let r = m.parse_line(br#"{"level":30}"#, 1).unwrap().record;
    assert_eq!(
        (r.severity_number, r.severity_text.as_str()),
        (severity::WARN, "WARNING")
    );
}

#[test]
fn text_levels_case_insensitive() {
    for (text, want) in [
        ("TRACE", severity::TRACE),
        ("Debug", severity::DEBUG),
        ("info", severity::INFO),
        ("notice", severity::INFO2),
        ("warn", severity::WARN),
        ("WARNING", severity::WARN),
        ("err", severity::ERROR),
        ("Error", severity::ERROR),
        ("critical", severity::FATAL),
        ("CRIT", severity::FATAL),
        ("fatal", severity::FATAL),
        ("alert", severity::FATAL2),
        ("emerg", severity::FATAL3),
        ("verbose-ish", 0),
        ("whatever", 0),
    ] {
        let (n, t) = parse_level(&s(text), false).unwrap();
        assert_eq!((n, t.as_str()), (want, text), "{text}");
    }
    // Numeric text is read on the numeric scale.
    assert_eq!(parse_level(&s("30"), false).unwrap().0, severity::INFO);
    assert_eq!(parse_level(&s("30"), true).unwrap().0, severity::WARN);
}

#[test]
fn otel_logging_instrumentation_fields() {
    // opentelemetry-instrumentation-logging's record attributes.
    let l = line(
        r#"{"message":"m","otelTraceID":"4bf92f3577b34da6a3ce929d0e0e4736","otelSpanID":"00f067aa0ba902b7","otelServiceName":"orders","otelTraceSampled":true}"#,
    );
    assert_eq!(hex(&l.record.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&l.record.span_id), "00f067aa0ba902b7");
    assert_eq!(l.service.as_deref(), Some("orders"));
    assert_eq!(keys(&l.record), ["otelTraceSampled"]);
}

#[test]
fn datadog_decimal_ids_fill_the_lower_half() {
    let l = line(
        r#"{"message":"m","dd.trace_id":"1234567890123456789","dd.span_id":"987654321","dd.service":"web"}"#,
    );
    assert_eq!(
        hex(&l.record.trace_id),
        format!("{:032x}", 1_234_567_890_123_456_789u64)
    );
    assert_eq!(hex(&l.record.span_id), format!("{:016x}", 987_654_321u64));
    assert_eq!(keys(&l.record), ["dd.service"]);
    // Nested form and 128-bit hex ids.
    let l = line(
        r#"{"message":"m","dd":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":18446744073709551615}}"#,
    );
    assert_eq!(hex(&l.record.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&l.record.span_id), "ffffffffffffffff");
    assert!(l.record.attributes.is_empty());
}

#[test]
fn traceparent_sets_ids_and_flags() {
    let l = line(
        r#"{"msg":"m","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
    );
    assert_eq!(hex(&l.record.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&l.record.span_id), "00f067aa0ba902b7");
    assert_eq!(l.record.flags, 1);
    assert!(l.record.attributes.is_empty());
    // An explicit span id wins over the traceparent's.
    let l = line(
        r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00","span_id":"1111111111111111"}"#,
    );
    assert_eq!(hex(&l.record.span_id), "1111111111111111");
    for bad in [
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ] {
        assert!(parse_traceparent(bad).is_none(), "{bad}");
    }
}

#[test]
fn bad_ids_keep_the_line_and_the_raw_value() {
    let l = line(r#"{"msg":"m","trace_id":"not-a-trace","span_id":"00000000000000000"}"#);
    assert!(l.record.trace_id.is_empty() && l.record.span_id.is_empty());
    assert!(l.invalid.trace_id && l.invalid.span_id);
    assert_eq!(
        attrs::get(&l.record.attributes, "trace_id"),
        Some(&s("not-a-trace"))
    );
    assert_eq!(keys(&l.record), ["span_id", "trace_id"]);
    // Decimal text is not accepted for non-Datadog keys.
    assert!(parse_trace_id(&s("1234"), false).is_none());
    assert!(parse_span_id(&s("1234"), false).is_none());
    assert!(parse_trace_id(&s("00000000000000000000000000000000"), false).is_none());
    assert!(parse_trace_id(&s("0"), true).is_none());
}

#[test]
fn bad_timestamp_keeps_the_line() {
    let l = line(r#"{"timestamp":"yesterday","level":"info","event":"e"}"#);
    assert_eq!(l.record.time_unix_nano, 0);
    assert_eq!(l.record.observed_time_unix_nano, OBSERVED);
    assert!(l.invalid.timestamp);
    assert_eq!(
        attrs::get(&l.record.attributes, "timestamp"),
        Some(&s("yesterday"))
    );
    assert_eq!(body_str(&l.record), Some("e"));
}

#[test]
fn timestamp_priority_and_wrong_types() {
    // `timestamp` beats `time`; the loser stays an attribute.
    let l = line(r#"{"time":"2020-01-01T00:00:00Z","timestamp":"2024-05-01T12:00:00Z"}"#);
    assert_eq!(l.record.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 0));
    assert_eq!(keys(&l.record), ["time"]);
    // A value of the wrong type lets the next key win.
    let l = line(r#"{"timestamp":{"a":1},"ts":1714564800}"#);
    assert_eq!(l.record.time_unix_nano, 1_714_564_800_000_000_000);
    assert_eq!(keys(&l.record), ["timestamp"]);
}

#[test]
fn epoch_magnitudes_and_numeric_text() {
    let t = |v: AnyValue| parse_time(&v);
    let base = 1_714_564_800u64;
    assert_eq!(t(attrs::int(base as i64)), Some(base * 1_000_000_000));
    assert_eq!(
        t(attrs::int((base * 1000 + 5) as i64)),
        Some(base * 1_000_000_000 + 5_000_000)
    );
    assert_eq!(
        t(attrs::int((base * 1_000_000 + 5) as i64)),
        Some(base * 1_000_000_000 + 5_000)
    );
    assert_eq!(
        t(attrs::int((base * 1_000_000_000 + 5) as i64)),
        Some(base * 1_000_000_000 + 5)
    );
    assert_eq!(t(s("1714564800")), Some(base * 1_000_000_000));
    assert_eq!(
        t(s("1714564800.123456789")),
        Some(base * 1_000_000_000 + 123_456_789)
    );
    assert_eq!(
        t(s("1714564800123.5")),
        Some(base * 1_000_000_000 + 123_500_000)
    );
    assert_eq!(
        t(attrs::double(1714564800.5)),
        Some(base * 1_000_000_000 + 500_000_000)
    );
    assert_eq!(
        t(attrs::double(1714564800123.0)),
        Some(base * 1_000_000_000 + 123_000_000)
    );
    for bad in [
        attrs::int(0),
        attrs::int(-5),
        attrs::double(f64::NAN),
        attrs::double(-1.0),
        s(""),
        s("1.2.3"),
        s(".5"),
        attrs::boolean(true),
    ] {
        assert_eq!(t(bad.clone()), None, "{bad:?}");
    }
}

#[test]
fn rfc3339_variants() {
    let t = |v: &str| parse_time(&s(v));
    let want = utc(2024, 5, 1, 12, 0, 0, 0);
    for ok in [
        "2024-05-01T12:00:00Z",
        "2024-05-01t12:00:00z",
        "2024-05-01 12:00:00",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T14:30:00+02:30",
        "2024-05-01T07:00:00-0500",
        "2024-05-01T13:00:00+01",
        "2024-05-01 12:00:00 +0000",
        "  2024-05-01T12:00:00.000000000Z ",
    ] {
        assert_eq!(t(ok), Some(want), "{ok}");
    }
    assert_eq!(
        t("2024-02-29T00:00:00Z"),
        Some(utc(2024, 2, 29, 0, 0, 0, 0))
    );
    assert_eq!(
        t("2000-12-31T23:59:59.999999999Z"),
        Some(utc(2000, 12, 31, 23, 59, 59, 999_999_999))
    );
    // Digits past nanoseconds are truncated.
    assert_eq!(
        t("2024-05-01T12:00:00.1234567891234Z"),
        Some(utc(2024, 5, 1, 12, 0, 0, 123_456_789))
    );
    for bad in [
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-05-32T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00Z",
        "2024-05-01",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00+25:00",
        "2024-05-01T12:00:00 UTC",
        "1969-12-31T23:59:59Z",
        "not a date",
    ] {
        assert_eq!(t(bad), None, "{bad}");
    }
}

#[test]
fn value_types_become_otlp_values() {
    let r = line(r#"{"msg":"m","a":[1,"x",true,null,2.5],"n":null,"big":18446744073709551615,"neg":-3,"o":{"k":{"j":[]}}}"#).record;
    let a = attrs::get(&r.attributes, "a").unwrap();
    assert_eq!(attrs::to_text(a), r#"[1,"x",true,null,2.5]"#);
    assert_eq!(
        attrs::get(&r.attributes, "n"),
        Some(&AnyValue { value: None })
    );
    assert_eq!(
        attrs::get(&r.attributes, "big"),
        Some(&s("18446744073709551615"))
    );
    assert_eq!(attrs::get(&r.attributes, "neg"), Some(&attrs::int(-3)));
    assert_eq!(
        attrs::to_text(attrs::get(&r.attributes, "o").unwrap()),
        r#"{"k":{"j":[]}}"#
    );
}

#[test]
fn body_can_be_structured_and_null_is_skipped() {
    let r = line(r#"{"message":null,"msg":{"k":1}}"#).record;
    assert_eq!(attrs::to_text(r.body.as_ref().unwrap()), r#"{"k":1}"#);
    assert_eq!(keys(&r), ["message"]);
    let r = line(r#"{"a":1}"#).record;
    assert!(r.body.is_none());
}

#[test]
fn keep_mapped_fields_and_custom_keys() {
    let m = mapper_with("mapping: {keep_mapped_fields: true}");
    let r = m
        .parse_line(
            br#"{"event":"e","level":"info","timestamp":"2024-05-01T12:00:00Z","logger":"l"}"#,
            1,
        )
        .unwrap()
        .record;
    assert_eq!(body_str(&r), Some("e"));
    assert_eq!(keys(&r), ["event", "level", "logger", "timestamp"]);

    let m = mapper_with(
        "mapping: {body_keys: [text], level_keys: [sev], timestamp_keys: [when.utc], service_keys: [app], scope_keys: [], trace_id_keys: [tid], span_id_keys: [sid]}",
    );
    let l = m
        .parse_line(br#"{"text":"hi","message":"not me","sev":"error","when":{"utc":"2024-05-01T12:00:00Z"},"app":"a1","logger":"l","tid":"4bf92f3577b34da6a3ce929d0e0e4736","sid":"00f067aa0ba902b7"}"#, 1)
        .unwrap();
    assert_eq!(body_str(&l.record), Some("hi"));
    assert_eq!(l.record.severity_number, severity::ERROR);
    assert_eq!(l.record.time_unix_nano, utc(2024, 5, 1, 12, 0, 0, 0));
    assert_eq!(l.service.as_deref(), Some("a1"));
    assert_eq!(l.scope, None);
    assert!(!l.record.trace_id.is_empty() && !l.record.span_id.is_empty());
    assert_eq!(keys(&l.record), ["logger", "message"]);
}

#[test]
fn line_errors_are_clear() {
    let m = mapper_with("max_line_size: 64");
    let e = m.parse_line(&[b' '; 65], 1).unwrap_err();
    assert_eq!(
        e,
        LineError::TooLarge {
            size: 65,
            limit: 64
        }
    );
    assert_eq!(
        e.to_string(),
        "line is 65 bytes, over the max_line_size of 64 bytes"
    );
    let e = mapper()
        .parse_line(br#"{"a": "x"#, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid JSON: EOF while parsing a string at column"),
        "{e}"
    );
    let e = mapper().parse_line(b"[1,2]", 1).unwrap_err().to_string();
    assert!(e.contains("expected a JSON object (one log record)"), "{e}");
    let e = mapper()
        .parse_line(br#"{"a":1} x"#, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trailing characters"), "{e}");
    let e = mapper()
        .parse_line(b"{\"a\":\"\xff\"}", 1)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "invalid JSON: invalid UTF-8 at byte 6");
}

// ---------------------------------------------------------------- bodies

fn parse(body: &str, ndjson: bool) -> ParsedBody {
    parse_body(&mapper(), body.as_bytes(), ndjson, 1, |_| {}).expect("body splits")
}

fn bodies(p: &ParsedBody) -> Vec<&str> {
    p.lines
        .iter()
        .map(|l| body_str(&l.record).unwrap_or(""))
        .collect()
}

#[test]
fn ndjson_with_blank_lines_crlf_and_partial_acceptance() {
    let p = parse(
        "{\"msg\":\"a\"}\r\n\n  \n{\"msg\":\"b\"}\nnot json\n{\"msg\":\"c\"}",
        true,
    );
    assert_eq!(bodies(&p), ["a", "b", "c"]);
    assert_eq!(p.rejected, 1);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].0, 5, "line numbers count blank lines");
    assert!(
        p.errors[0]
            .1
            .to_string()
            .starts_with("invalid JSON: expected"),
        "{}",
        p.errors[0].1
    );
}

#[test]
fn arrays_single_objects_and_ndjson_as_json() {
    let p = parse(
        r#" [ {"msg":"a"}, {"msg":"b, ]"} , 5, {"msg":"c"} ] "#,
        false,
    );
    assert_eq!(bodies(&p), ["a", "b, ]", "c"]);
    assert_eq!(p.rejected, 1);
    assert_eq!(p.errors[0].0, 3, "array errors count elements");
    let p = parse(
        "{\n  \"msg\": \"pretty\",\n  \"level\": \"info\"\n}\n",
        false,
    );
    assert_eq!(bodies(&p), ["pretty"]);
    let p = parse("{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n", false);
    assert_eq!(bodies(&p), ["a", "b"]);
    assert_eq!(parse("[]", false).lines.len(), 0);
    assert_eq!(
        parse("", false).lines.len() + parse("\n\n", true).rejected,
        0
    );
    for broken in [
        "[{\"a\":1}",
        "[{\"a\":1},]",
        "[,]",
        "[{\"a\":1}] x",
        "[\"abc",
    ] {
        assert!(
            parse_body(&mapper(), broken.as_bytes(), false, 1, |_| {}).is_err(),
            "{broken}"
        );
    }
    // As NDJSON, a `[` line is just a bad line.
    assert_eq!(parse("[{\"msg\":\"a\"}]", true).rejected, 1);
}

#[test]
fn only_the_first_errors_are_listed() {
    let body = "x\n".repeat(50);
    let p = parse(&body, true);
    assert_eq!(p.rejected, 50);
    assert_eq!(p.errors.len(), MAX_REPORTED_ERRORS);
}

#[test]
fn grouping_by_service_and_scope() {
    let p = parse(
        r#"{"msg":"1","service":"a","logger":"x"}
{"msg":"2","service":"b","logger":"x"}
{"msg":"3","service":"a","logger":"y"}
{"msg":"4","service":"a","logger":"x"}
{"msg":"5"}"#,
        true,
    );
    let static_res = vec![
        attrs::key_value("deployment.environment", s("prod")),
        attrs::key_value("service.name", s("default")),
    ];
    let hdr = vec![attrs::key_value("tenant", s("t1"))];
    let rl = group(p.lines, &static_res, &hdr);
    type Summary = Vec<(String, Vec<(String, Vec<String>)>)>;
    let summary: Summary = rl
        .iter()
        .map(|r| {
            let res = r.resource.as_ref().unwrap();
            assert_eq!(
                attrs::get_str(&res.attributes, "deployment.environment"),
                Some("prod")
            );
            (
                attrs::get_str(&res.attributes, "service.name")
                    .unwrap()
                    .to_string(),
                r.scope_logs
                    .iter()
                    .map(|sl| {
                        (
                            sl.scope.as_ref().map_or(String::new(), |s| s.name.clone()),
                            sl.log_records
                                .iter()
                                .map(|lr| {
                                    assert_eq!(
                                        attrs::get_str(&lr.attributes, "tenant"),
                                        Some("t1")
                                    );
                                    body_str(lr).unwrap().to_string()
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary,
        vec![
            (
                "a".into(),
                vec![("x".into(), own(&["1", "4"])), ("y".into(), own(&["3"]))]
            ),
            ("b".into(), vec![("x".into(), own(&["2"]))]),
            ("default".into(), vec![(String::new(), own(&["5"]))]),
        ]
    );
}

// ---------------------------------------------------------------- config

#[test]
fn config_defaults_and_errors() {
    let c = config("").unwrap();
    assert_eq!(c.endpoint.as_str(), "localhost:8081");
    assert_eq!(c.url_path.as_str(), "/v1/logs/json");
    assert_eq!(c.max_request_body_size(), 10 << 20);
    assert_eq!(c.max_line_size(), 1 << 20);
    assert!(c.header_attributes.is_empty() && c.bearer_tokens.is_empty());
    assert!(!c.mapping.keep_mapped_fields);

    let c = config("url_path: logs\nheader_attributes: [{header: X-Tenant, target: resource}, {header: x-request-id, key: shipper.request_id}]").unwrap();
    assert_eq!(c.url_path.as_str(), "/logs");
    assert_eq!(
        c.header_attributes[0].attribute_key(),
        "http.request.header.x-tenant"
    );
    assert_eq!(c.header_attributes[1].attribute_key(), "shipper.request_id");

    for (yaml, needle) in [
        ("endpoint: nope", "invalid endpoint"),
        ("max_line_size: 0", "max_line_size must be greater than 0"),
        (
            "max_request_body_size: 0",
            "max_request_body_size must be greater than 0",
        ),
        ("bogus: 1", "bogus"),
        ("mapping: {level_key: [x]}", "level_key"),
        ("mapping: {body_keys: ['']}", "empty key"),
        (
            "mapping: {numeric_levels: syslog}",
            "expected one of `pino`, `python`",
        ),
        (
            "header_attributes: [{header: 'bad header'}]",
            "invalid HTTP header name",
        ),
        ("header_attributes: [{header: a}, {header: A}]", "twice"),
        (
            "header_attributes: [{header: a, target: nowhere}]",
            "expected one of `attributes`, `resource`",
        ),
        ("bearer_tokens: ['']", "empty token"),
    ] {
        let errors = config(yaml).expect_err(yaml);
        let text: String = errors.iter().map(|e| format!("{e:?} {e}")).collect();
        assert!(text.contains(needle), "{yaml}: {text}");
    }
}

#[test]
fn secrets_never_reach_errors() {
    let errors = config("bearer_tokens: ['s3cret-token']\nmax_line_size: 0").unwrap_err();
    for e in errors {
        assert!(!format!("{e} {e:?}").contains("s3cret"));
    }
}

// ---------------------------------------------------------------- HTTP

#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Batch>>,
    refuse: Mutex<Option<ConsumeError>>,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if let Some(e) = self.refuse.lock().unwrap().clone() {
            return Err(e);
        }
        self.got.lock().unwrap().push(batch);
        Ok(())
    }
}

impl Sink {
    fn records(&self) -> Vec<(Vec<KeyValue>, LogRecord)> {
        let got = self.got.lock().unwrap();
        let mut out = Vec::new();
        for b in got.iter() {
            let Signal::Logs(rls) = b.signal() else {
                panic!("not logs")
            };
            for rl in rls {
                for sl in &rl.scope_logs {
                    for r in &sl.log_records {
                        out.push((
                            rl.resource.clone().unwrap_or_default().attributes,
                            r.clone(),
                        ));
                    }
                }
            }
        }
        out
    }
}

struct Harness {
    rx: JsonLogReceiver,
    ctx: ComponentContext,
    sink: Arc<Sink>,
}

impl Harness {
    async fn start(yaml: &str) -> Harness {
        let ctx = ComponentContext::for_tests(ComponentKind::Receiver, "jsonlog");
        let yaml = format!("endpoint: '127.0.0.1:0'\n{yaml}");
        let sink = Arc::new(Sink::default());
        let mut rx = JsonLogReceiver::new(ctx.clone(), config(&yaml).expect("valid config"));
        let consumers = SignalConsumers {
            logs: Some(sink.clone()),
            ..Default::default()
        };
        rx.start(consumers).await.expect("starts");
        Harness { rx, ctx, sink }
    }

    fn metric(&self, prefix: &str) -> u64 {
        let text = self.ctx.telemetry.render();
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    async fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.request("POST", "/v1/logs/json", headers, body).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(self.rx.addr().unwrap())
            .await
            .unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

const NDJSON: (&str, &str) = ("content-type", "application/x-ndjson");

#[tokio::test]
async fn ndjson_post_is_accepted_and_counted() {
    let h = Harness::start("resource: {deployment.environment: test}").await;
    let body = b"{\"event\":\"a\",\"level\":\"info\",\"service\":\"s1\"}\n{\"event\":\"b\",\"level\":\"error\"}\n";
    let r = h.post(&[NDJSON], body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"accepted": 2, "rejected": 0, "errors": []})
    );
    let recs = h.sink.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(attrs::get_str(&recs[0].0, "service.name"), Some("s1"));
    assert_eq!(attrs::get_str(&recs[1].0, "service.name"), None);
    assert_eq!(
        attrs::get_str(&recs[1].0, "deployment.environment"),
        Some("test")
    );
    assert_eq!(recs[1].1.severity_number, severity::ERROR);
    assert!(recs[0].1.observed_time_unix_nano > 0);
    assert_eq!(h.sink.got.lock().unwrap().len(), 1, "one batch per request");
    assert_eq!(
        h.metric("otelcol_receiver_accepted_log_records{receiver=\"jsonlog\",transport=\"http\"}"),
        2
    );
    assert_eq!(h.metric("otelcol_receiver_requests{receiver=\"jsonlog\",transport=\"http\",outcome=\"success\"}"), 1);
}

#[tokio::test]
async fn partial_acceptance_and_all_bad_bodies() {
    let h = Harness::start("max_line_size: 100").await;
    let big = format!("{{\"msg\":\"{}\"}}", "x".repeat(200));
    let body = format!(
        "{{\"msg\":\"ok1\"}}\n{{bad\n{big}\n{{\"msg\":\"ok2\",\"timestamp\":\"garbage\"}}\n"
    );
    let r = h.post(&[NDJSON], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["accepted"], 2);
    assert_eq!(j["rejected"], 2);
    assert_eq!(j["errors"][0]["line"], 2);
    assert!(j["errors"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid JSON"));
    assert_eq!(j["errors"][1]["line"], 3);
    assert_eq!(
        j["errors"][1]["error"],
        "line is 210 bytes, over the max_line_size of 100 bytes"
    );
    assert_eq!(h.sink.records().len(), 2);
    assert_eq!(
        h.metric(
            "confluo_receiver_jsonlog_rejected_lines{receiver=\"jsonlog\",reason=\"invalid_json\"}"
        ),
        1
    );
    assert_eq!(
        h.metric(
            "confluo_receiver_jsonlog_rejected_lines{receiver=\"jsonlog\",reason=\"too_large\"}"
        ),
        1
    );
    assert_eq!(
        h.metric(
            "confluo_receiver_jsonlog_invalid_fields{receiver=\"jsonlog\",field=\"timestamp\"}"
        ),
        1
    );

    let r = h
        .post(
            &[("content-type", "application/json")],
            b"hello, this is not JSON",
        )
        .await;
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(
        (j["accepted"].as_u64(), j["rejected"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(j["message"].as_str().unwrap().contains("no line"));
    assert_eq!(h.sink.records().len(), 2, "nothing delivered");

    let r = h
        .post(&[("content-type", "application/json")], b"[{\"msg\":1},")
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid JSON array"));

    let r = h.post(&[NDJSON], b"\n\n").await;
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(0)));
}

#[tokio::test]
async fn gzip_zstd_and_bad_encodings() {
    let h = Harness::start("max_request_body_size: 4KiB").await;
    let body = b"[{\"msg\":\"g\"},{\"msg\":\"h\"}]";
    let r = h
        .post(&[("content-encoding", "gzip")], &compression::gzip(body))
        .await;
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(2)));
    let r = h
        .post(
            &[("content-encoding", "zstd"), NDJSON],
            &compression::zstd(b"{\"msg\":\"z\"}"),
        )
        .await;
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(1)));
    let r = h.post(&[("content-encoding", "gzip")], b"not gzip").await;
    assert_eq!(r.status, 400);
    let r = h.post(&[("content-encoding", "br")], b"x").await;
    assert_eq!(r.status, 415);
    let bomb = compression::gzip(&vec![b' '; 1 << 20]);
    let r = h.post(&[("content-encoding", "gzip")], &bomb).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let r = h.post(&[], &vec![b' '; 5000]).await;
    assert_eq!(r.status, 413);
    let bodies: Vec<String> = h
        .sink
        .records()
        .iter()
        .map(|(_, r)| body_str(r).unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["g", "h", "z"]);
}

#[tokio::test]
async fn bearer_tokens() {
    let h = Harness::start("bearer_tokens: [t0k3n-a, t0k3n-b]").await;
    let body = b"{\"msg\":\"x\"}";
    let r = h.post(&[], body).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert!(!r.body.contains("t0k3n"));
    assert_eq!(
        h.post(&[("authorization", "Bearer wrong")], body)
            .await
            .status,
        401
    );
    assert_eq!(
        h.post(&[("authorization", "Basic t0k3n-a")], body)
            .await
            .status,
        401
    );
    assert_eq!(
        h.post(&[("authorization", "Bearer t0k3n-a")], body)
            .await
            .status,
        200
    );
    assert_eq!(
        h.post(&[("authorization", "bearer  t0k3n-b")], body)
            .await
            .status,
        200
    );
    assert_eq!(h.sink.records().len(), 2);
}

#[tokio::test]
async fn headers_are_copied_only_when_listed() {
    let h = Harness::start("").await;
    h.post(&[("x-request-id", "shipper-1")], b"{\"msg\":\"x\"}")
        .await;
    let recs = h.sink.records();
    assert!(recs[0].1.attributes.is_empty() && recs[0].0.is_empty());

    let h = Harness::start(
        "header_attributes: [{header: X-Tenant, target: resource, key: tenant.id}, {header: x-request-id}]\nresource: {tenant.id: default}",
    )
    .await;
    h.post(
        &[("x-request-id", "shipper-1"), ("X-Tenant", "acme")],
        b"{\"msg\":\"x\",\"request_id\":\"app-1\"}",
    )
    .await;
    let recs = h.sink.records();
    assert_eq!(attrs::get_str(&recs[0].0, "tenant.id"), Some("acme"));
    assert_eq!(
        attrs::get_str(&recs[0].1.attributes, "http.request.header.x-request-id"),
        Some("shipper-1")
    );
    assert_eq!(
        attrs::get_str(&recs[0].1.attributes, "request_id"),
        Some("app-1")
    );
}

#[tokio::test]
async fn routing_and_media_types() {
    let h = Harness::start("").await;
    assert_eq!(h.request("POST", "/v1/logs", &[], b"{}").await.status, 404);
    let r = h.request("GET", "/v1/logs/json", &[], b"").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = h
        .post(&[("content-type", "application/x-protobuf")], b"{}")
        .await;
    assert_eq!(r.status, 415);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("application/x-ndjson"));
    for ct in [
        "application/json; charset=utf-8",
        "text/plain",
        "application/jsonl",
    ] {
        assert_eq!(
            h.post(&[("content-type", ct)], b"{\"msg\":\"x\"}")
                .await
                .status,
            200,
            "{ct}"
        );
    }
}

#[tokio::test]
async fn backpressure_maps_to_429_and_503() {
    let h = Harness::start("").await;
    *h.sink.refuse.lock().unwrap() = Some(ConsumeError::Retryable {
        reason: "queue full".into(),
        retry_after: Some(Duration::from_millis(2500)),
    });
    let r = h.post(&[], b"{\"msg\":\"x\"}\n{\"msg\":\"y\"}").await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    assert_eq!(
        h.metric("otelcol_receiver_refused_log_records{receiver=\"jsonlog\",transport=\"http\"}"),
        2
    );
    *h.sink.refuse.lock().unwrap() = Some(ConsumeError::retryable("pipeline is shutting down"));
    assert_eq!(h.post(&[], b"{\"msg\":\"x\"}").await.status, 503);
    *h.sink.refuse.lock().unwrap() = Some(ConsumeError::permanent("bad data"));
    assert_eq!(h.post(&[], b"{\"msg\":\"x\"}").await.status, 400);
}

#[tokio::test]
async fn admission_budget_refuses_before_reading() {
    let mut ctx = ComponentContext::for_tests(ComponentKind::Receiver, "jsonlog");
    ctx.admission = Admission::new(10);
    let sink = Arc::new(Sink::default());
    let mut rx = JsonLogReceiver::new(ctx, config("endpoint: '127.0.0.1:0'").unwrap());
    rx.start(SignalConsumers {
        logs: Some(sink.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let _hold = rx.ctx.admission.try_admit(10).unwrap();
    let h = Harness {
        rx,
        ctx: ComponentContext::for_tests(ComponentKind::Receiver, "x"),
        sink,
    };
    let r = h.post(&[], b"{\"msg\":\"x\"}").await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let mut h = Harness::start("").await;
    let addr = h.rx.addr().unwrap();
    h.rx.shutdown(Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Never answers: a pipeline stuck past the shutdown deadline.
struct Stall(tokio::sync::Notify);

#[async_trait]
impl Consumer for Stall {
    async fn consume(&self, _batch: Batch) -> Result<(), ConsumeError> {
        self.0.notify_one();
        std::future::pending().await
    }
}

#[tokio::test]
async fn shutdown_abandons_a_request_still_in_flight_at_the_deadline() {
    let ctx = ComponentContext::for_tests(ComponentKind::Receiver, "jsonlog");
    let stall = Arc::new(Stall(tokio::sync::Notify::new()));
    let mut rx = JsonLogReceiver::new(ctx, config("endpoint: '127.0.0.1:0'").unwrap());
    rx.start(SignalConsumers {
        logs: Some(stall.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = rx.addr().unwrap();
    let client = tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = b"{\"msg\":\"x\"}";
        let head = format!(
            "POST /v1/logs/json HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
    });
    stall.0.notified().await;
    let grace = Duration::from_millis(300);
    let begun = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), rx.shutdown(begun + grace))
        .await
        .expect("shutdown kept waiting past its deadline")
        .unwrap();
    let took = begun.elapsed();
    assert!(took >= grace, "returned before the deadline: {took:?}");
    assert!(took < grace + Duration::from_secs(2), "took {took:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(!client.is_finished(), "the stalled request was answered");
    client.abort();
}

#[test]
fn factory_shape() {
    let f = JsonLogReceiverFactory;
    assert_eq!(f.type_name(), "jsonlog");
    assert!(f.signals().logs && !f.signals().traces && !f.signals().metrics);
    let node = Node::from_yaml_str("t.yaml", "mapping: {nope: 1}").unwrap();
    assert_eq!(f.check(&node).len(), 1);
}

fn hex(b: &[u8]) -> String {
    attrs::id_hex(b)
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), ndjson: bool) {
        let m = mapper();
        if let Ok(p) = parse_body(&m, &body, ndjson, 1, |_| {}) {
            prop_assert!(p.errors.len() <= MAX_REPORTED_ERRORS);
        }
    }

    #[test]
    fn json_shaped_text_never_panics(body in r#"[\[\]{}",:0-9a-z.\-+ \n\\]{0,200}"#) {
        let _ = parse_body(&mapper(), body.as_bytes(), false, 1, |_| {});
        let _ = parse_time(&s(&body));
        let _ = parse_level(&s(&body), false);
        let _ = parse_trace_id(&s(&body), true);
        let _ = parse_span_id(&s(&body), true);
    }

    #[test]
    fn rfc3339_round_trip(secs in 0i64..18_000_000_000, nanos in 0u32..1_000_000_000, offset_min in -1439i32..1440) {
        // Format with an independent formatter, then parse.
        let local = secs + i64::from(offset_min) * 60;
        prop_assume!((0..253_402_300_800).contains(&local) && (secs > 0 || nanos > 0));
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let sign = if offset_min < 0 { '-' } else { '+' };
        let text = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}{sign}{:02}:{:02}",
            rem / 3600, rem % 3600 / 60, rem % 60, offset_min.abs() / 60, offset_min.abs() % 60
        );
        prop_assert_eq!(parse_time(&s(&text)), Some(secs as u64 * 1_000_000_000 + u64::from(nanos)), "{}", text);
    }

    #[test]
    fn any_object_keeps_every_unmapped_key(keys in proptest::collection::btree_set("[a-z]{1,8}", 0..12)) {
        let mapped: std::collections::HashSet<&str> = ["level", "time", "ts", "msg", "event", "name", "service", "logger", "timestamp", "message", "severity", "levelname", "levelno", "asctime", "trace_id", "span_id", "traceparent"].into_iter().collect();
        let json = format!("{{{}}}", keys.iter().map(|k| format!("\"{k}\":\"v\"")).collect::<Vec<_>>().join(","));
        let r = mapper().parse_line(json.as_bytes(), 1).unwrap().record;
        let got: std::collections::BTreeSet<String> = r.attributes.iter().map(|kv| kv.key.clone()).collect();
        let want: std::collections::BTreeSet<String> = keys.iter().filter(|k| !mapped.contains(k.as_str())).cloned().collect();
        // Mapped keys with unusable values ("v" as a time, level or id) stay.
        prop_assert!(want.is_subset(&got));
    }
}

/// Inverse of days-from-civil (independent of the parser's version).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---------------------------------------------------------------- cost

/// Not a timed assertion: prints the per-line cost for the record (run with
/// `--release --ignored --nocapture`).
#[test]
#[ignore]
fn measure_structlog_lines() {
    let line_text = r#"{"request_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "user_id": 12345, "path": "/api/v1/orders", "method": "GET", "status": 200, "duration_ms": 12.5, "event": "request finished", "logger": "app.http", "level": "info", "timestamp": "2024-05-01T12:00:00.123456Z"}"#;
    // Requests of 1000 lines, each result dropped before the next, as in
    // the receiver (memory is reused, as it is in steady state).
    let per_request = 1000;
    let requests = 300;
    let body = format!("{line_text}\n").repeat(per_request);
    let m = mapper();
    let start = Instant::now();
    let mut records = 0;
    for _ in 0..requests {
        let p = parse_body(&m, body.as_bytes(), true, 1, |_| {}).unwrap();
        let rl = group(p.lines, &[], &[]);
        records += rl[0].scope_logs[0].log_records.len();
    }
    let elapsed = start.elapsed();
    assert_eq!(records, per_request * requests);
    // Calibration on the same machine: serde_json's own Value tree.
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..requests {
        for l in body.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            n += v.as_object().map_or(0, |o| o.len().min(1));
        }
    }
    let baseline = start.elapsed();
    assert_eq!(n, records);
    println!(
        "baseline serde_json::Value parse of the same lines: {:.0} ns/line",
        baseline.as_nanos() as f64 / records as f64
    );
    println!(
        "{records} lines of {} bytes: {:?} = {:.0} ns/line",
        line_text.len(),
        elapsed,
        elapsed.as_nanos() as f64 / records as f64
    );
}

// ---------------------------------------------------------------- line split

proptest! {
    /// The word-at-a-time split and count agree with the byte-wise ones on
    /// any body (newlines at every offset within and across words).
    #[test]
    fn word_split_matches_bytewise(body in proptest::collection::vec(
        prop_oneof![Just(b'\n'), Just(b'{'), Just(0x8a_u8), Just(0x0b_u8), any::<u8>()], 0..70)) {
        let fast: Vec<&[u8]> = super::parse::split_lines(&body).collect();
        let slow: Vec<&[u8]> = body.split(|c| *c == b'\n').collect();
        prop_assert_eq!(fast, slow);
        prop_assert_eq!(
            super::parse::count_newlines(&body),
            body.iter().filter(|c| **c == b'\n').count()
        );
    }
}
