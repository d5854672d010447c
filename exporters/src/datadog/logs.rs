//! OTLP logs → Datadog logs intake v2 items (`POST /api/v2/logs`, a JSON
//! array), as the Collector maps them (`opentelemetry-mapping-go`
//! `pkg/otlp/logs`):
//!
//! - `message`: a `msg` / `message` / `log` attribute, else the body as text.
//! - `status`: a `status` / `severity` / `level` / `syslog.severity`
//!   attribute, else the severity text, else the severity number's range
//!   (trace, debug, info, warn, error, fatal).
//! - `hostname`: the resource's host (see [`super::attributes`]), else the
//!   record's, else the exporter's `hostname`. `service`: `service.name` of
//!   the resource, else of the record.
//! - `ddtags`: the resource's tags plus `otel_source:datadog_exporter`
//!   (and a `ddtags` attribute's value). `ddsource`: a `ddsource`
//!   attribute, else `otlp_log_ingestion`.
//! - Trace correlation: `dd.trace_id` / `dd.span_id` are the decimal lower
//!   64 bits of the trace id and the span id, `otel.trace_id` /
//!   `otel.span_id` the hex ids; from the record's ids, else from a
//!   `trace_id` / `span_id` (… `traceid`, `contextmap.traceid`,
//!   `oteltraceid`) attribute holding hex.
//! - `@timestamp` (ISO 8601, milliseconds, which Datadog reads as the log
//!   date) and `otel.timestamp` (nanoseconds); `otel.severity_text`,
//!   `otel.severity_number`.
//! - Record attributes (maps flattened to dotted keys, 10 levels), resource
//!   and scope attributes as string attributes. Keys the item itself uses
//!   (`message`, `hostname`, `service`, `ddsource`, `ddtags`, `status`) are
//!   prefixed `otel.` so they cannot shadow it.
//!
//! An item over Datadog's 1 MB per log is cut the way the intake would
//! truncate it: the message is shortened (marked `...TRUNCATED...`), and if
//! the attributes alone are too big they are dropped (`otel.truncated`).

use super::attributes::{host_from_attributes, resource_tags};
use super::config::DatadogConfig;
use super::payload::{DatadogRequest, Framing};
use super::Route;
use bytes::Bytes;
use confluo_pipeline::attrs::to_text;
use confluo_pipeline::otlp_json::write_json_str;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, KeyValue};
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs};
use std::sync::Arc;

/// Datadog's limit of one log item.
pub const MAX_ITEM_BYTES: usize = 1_000_000;
const TRUNCATED_MARK: &str = "...TRUNCATED...";
const DEFAULT_SOURCE: &str = "otlp_log_ingestion";
const OTEL_SOURCE_TAG: &str = "otel_source:datadog_exporter";
/// Item fields an attribute must not shadow.
const RESERVED: &[&str] = &[
    "message", "hostname", "service", "ddsource", "ddtags", "status",
];

/// Converts and encodes log records.
pub struct LogsEncoder {
    hostname: String,
    framing: Arc<Framing>,
}

/// One item's additional attributes, later keys replacing earlier ones.
#[derive(Default)]
struct Attrs(Vec<(String, String)>);

impl Attrs {
    fn set(&mut self, k: String, v: String) {
        match self.0.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k, v)),
        }
    }

    fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(key, _)| key == k)
    }

    /// `key` as is, or `otel.key` for the item's own field names.
    fn set_safe(&mut self, k: &str, v: String) {
        if RESERVED.contains(&k) {
            self.set(format!("otel.{k}"), v);
        } else {
            self.set(k.to_string(), v);
        }
    }

    /// Maps become dotted keys (10 levels at most, then JSON text).
    fn flatten(&mut self, key: &str, v: &AnyValue, depth: usize) {
        match &v.value {
            Some(Value::KvlistValue(kv)) if depth < 10 => {
                for item in &kv.values {
                    let k = format!("{key}.{}", item.key);
                    match &item.value {
                        Some(iv) => self.flatten(&k, iv, depth + 1),
                        None => self.set_safe(&k, String::new()),
                    }
                }
            }
            _ => self.set_safe(key, to_text(v)),
        }
    }
}

fn status_from_severity(n: i32) -> &'static str {
    match n {
        ..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => "error",
    }
}

fn lower_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[bytes.len() - 8..]);
    u64::from_be_bytes(b)
}

/// `2024-05-01T12:00:00.123Z`.
fn iso_millis(unix_nanos: u64) -> String {
    let mut out = Vec::with_capacity(32);
    crate::elasticsearch::encode::write_rfc3339(&mut out, unix_nanos - unix_nanos % 1_000_000);
    // `"…SS.nnnnnnnnnZ"`: keep three fraction digits, drop the quotes.
    let s = String::from_utf8(out).unwrap_or_default();
    let s = s.trim_matches('"');
    match s.rfind('.') {
        Some(dot) if s.len() >= dot + 4 => format!("{}Z", &s[..dot + 4]),
        _ => s.to_string(),
    }
}

struct Item<'a> {
    message: String,
    source: String,
    tags: String,
    hostname: &'a str,
    service: &'a str,
    status: String,
    attrs: Attrs,
}

impl Item<'_> {
    fn encode(&self, message: &str, with_attrs: bool) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            message.len()
                + 128
                + self
                    .attrs
                    .0
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 6)
                    .sum::<usize>(),
        );
        b.extend_from_slice(b"{\"message\":");
        write_json_str(&mut b, message);
        b.extend_from_slice(b",\"ddsource\":");
        write_json_str(&mut b, &self.source);
        b.extend_from_slice(b",\"ddtags\":");
        write_json_str(&mut b, &self.tags);
        b.extend_from_slice(b",\"hostname\":");
        write_json_str(&mut b, self.hostname);
        if !self.service.is_empty() {
            b.extend_from_slice(b",\"service\":");
            write_json_str(&mut b, self.service);
        }
        b.extend_from_slice(b",\"status\":");
        write_json_str(&mut b, &self.status);
        if with_attrs {
            for (k, v) in &self.attrs.0 {
                b.push(b',');
                write_json_str(&mut b, k);
                b.push(b':');
                write_json_str(&mut b, v);
            }
        } else {
            b.extend_from_slice(b",\"otel.truncated\":\"true\"");
        }
        b.push(b'}');
        b
    }

    /// The item, cut to [`MAX_ITEM_BYTES`].
    fn encode_capped(&self) -> Vec<u8> {
        let full = self.encode(&self.message, true);
        if full.len() <= MAX_ITEM_BYTES {
            return full;
        }
        let shortened = |with_attrs: bool| {
            let rest = self.encode("", with_attrs).len();
            let budget = MAX_ITEM_BYTES.saturating_sub(rest + TRUNCATED_MARK.len());
            // JSON escaping can grow a byte up to six; shorten until it fits.
            let mut cut = budget.min(self.message.len());
            loop {
                while !self.message.is_char_boundary(cut) {
                    cut -= 1;
                }
                let mut m = String::with_capacity(cut + TRUNCATED_MARK.len());
                m.push_str(&self.message[..cut]);
                m.push_str(TRUNCATED_MARK);
                let b = self.encode(&m, with_attrs);
                if b.len() <= MAX_ITEM_BYTES || cut == 0 {
                    return b;
                }
                cut = cut.saturating_sub((b.len() - MAX_ITEM_BYTES).max(cut / 8));
            }
        };
        let b = shortened(true);
        if b.len() <= MAX_ITEM_BYTES {
            return b;
        }
        shortened(false)
    }
}

impl LogsEncoder {
    pub fn new(_cfg: &DatadogConfig, hostname: &str) -> Result<LogsEncoder, String> {
        Ok(LogsEncoder {
            hostname: hostname.to_string(),
            framing: Arc::new(Framing::json_array()),
        })
    }

    pub fn encode(&self, resource_logs: &[ResourceLogs]) -> Result<Vec<DatadogRequest>, String> {
        let mut done = Vec::new();
        let mut req = DatadogRequest::new(Route::Logs, self.framing.clone());
        for rl in resource_logs {
            let rattrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            let res_host = host_from_attributes(rattrs);
            let res_service = rattrs
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(to_text);
            let mut tags = resource_tags(rattrs, false);
            tags.push(OTEL_SOURCE_TAG.to_string());
            let tags = tags.join(",");
            for sl in &rl.scope_logs {
                let scope_attrs = sl.scope.as_ref().map_or(&[][..], |s| &s.attributes[..]);
                for lr in &sl.log_records {
                    let part = self.item(
                        lr,
                        rattrs,
                        scope_attrs,
                        res_host.as_deref(),
                        res_service.as_deref(),
                        &tags,
                    );
                    if !req.fits(part.len()) {
                        done.push(std::mem::replace(
                            &mut req,
                            DatadogRequest::new(Route::Logs, self.framing.clone()),
                        ));
                    }
                    req.push(Bytes::from(part), 1);
                }
            }
        }
        if !req.is_empty() {
            done.push(req);
        }
        Ok(done)
    }

    fn item(
        &self,
        lr: &LogRecord,
        rattrs: &[KeyValue],
        scope_attrs: &[KeyValue],
        res_host: Option<&str>,
        res_service: Option<&str>,
        res_tags: &str,
    ) -> Vec<u8> {
        let mut attrs = Attrs::default();
        let mut message = None;
        let mut status = String::new();
        let mut source = None;
        let mut tags = None;
        for kv in &lr.attributes {
            let Some(v) = kv.value.as_ref() else { continue };
            match kv.key.to_ascii_lowercase().as_str() {
                "msg" | "message" | "log" => message = Some(to_text(v)),
                "status" | "severity" | "level" | "syslog.severity" => status = to_text(v),
                "traceid" | "trace_id" | "contextmap.traceid" | "oteltraceid" => {
                    let hex = to_text(v);
                    if let Some(id) = confluo_pipeline::attrs::parse_hex_id(&hex, 16) {
                        if !attrs.has("dd.trace_id") {
                            attrs.set("dd.trace_id".into(), lower_u64(&id).to_string());
                            attrs.set("otel.trace_id".into(), hex);
                        }
                    }
                }
                "spanid" | "span_id" | "contextmap.spanid" | "otelspanid" => {
                    let hex = to_text(v);
                    if let Some(id) = confluo_pipeline::attrs::parse_hex_id(&hex, 8) {
                        if !attrs.has("dd.span_id") {
                            attrs.set("dd.span_id".into(), lower_u64(&id).to_string());
                            attrs.set("otel.span_id".into(), hex);
                        }
                    }
                }
                "ddsource" => source = Some(to_text(v)),
                "ddtags" => tags = Some(format!("{res_tags},{}", to_text(v))),
                _ => attrs.flatten(&kv.key, v, 1),
            }
        }
        for kv in rattrs.iter().chain(scope_attrs) {
            let v = kv.value.as_ref().map(to_text).unwrap_or_default();
            attrs.set_safe(&kv.key, v);
        }
        if confluo_pipeline::attrs::is_valid_trace_id(&lr.trace_id) {
            attrs.set("dd.trace_id".into(), lower_u64(&lr.trace_id).to_string());
            attrs.set("otel.trace_id".into(), hex::encode(&lr.trace_id));
        }
        if confluo_pipeline::attrs::is_valid_span_id(&lr.span_id) {
            attrs.set("dd.span_id".into(), lower_u64(&lr.span_id).to_string());
            attrs.set("otel.span_id".into(), hex::encode(&lr.span_id));
        }
        if !lr.severity_text.is_empty() {
            if status.is_empty() {
                status = lr.severity_text.clone();
            }
            attrs.set("otel.severity_text".into(), lr.severity_text.clone());
        }
        if lr.severity_number != 0 {
            if status.is_empty() {
                status = status_from_severity(lr.severity_number).into();
            }
            attrs.set(
                "otel.severity_number".into(),
                lr.severity_number.to_string(),
            );
        }
        let ts = if lr.time_unix_nano != 0 {
            lr.time_unix_nano
        } else {
            lr.observed_time_unix_nano
        };
        if ts != 0 {
            attrs.set("otel.timestamp".into(), ts.to_string());
            attrs.set("@timestamp".into(), iso_millis(ts));
        }
        let record_host;
        let hostname = match res_host {
            Some(h) => h,
            None => {
                record_host = host_from_attributes(&lr.attributes);
                record_host.as_deref().unwrap_or(&self.hostname)
            }
        };
        let record_service;
        let service = match res_service {
            Some(s) => s,
            None => {
                record_service = lr
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(to_text)
                    .unwrap_or_default();
                &record_service
            }
        };
        let item = Item {
            message: message.unwrap_or_else(|| lr.body.as_ref().map(to_text).unwrap_or_default()),
            source: source.unwrap_or_else(|| DEFAULT_SOURCE.into()),
            tags: tags.unwrap_or_else(|| res_tags.to_string()),
            hostname,
            service,
            status,
            attrs,
        };
        item.encode_capped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_pipeline::attrs::{int, key_value, kvlist, string};
    use confluo_pipeline::proto::logs::ScopeLogs;
    use confluo_pipeline::proto::resource::Resource;
    use serde_json::Value as Json;

    fn encoder() -> LogsEncoder {
        let node = confluo_config::Node::from_yaml_str("t.yaml", "api: {key: k}\n").unwrap();
        let cfg: DatadogConfig = node.deserialize().unwrap();
        LogsEncoder::new(&cfg, "fallback").unwrap()
    }

    fn logs(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> Vec<ResourceLogs> {
        vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    fn items(reqs: &[DatadogRequest]) -> Vec<Json> {
        reqs.iter()
            .flat_map(|r| {
                serde_json::from_slice::<Json>(&r.body())
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    #[test]
    fn maps_a_record_like_the_collector() {
        let trace_id = hex::decode("0102030405060708090a0b0c0d0e0f10").unwrap();
        let span_id = hex::decode("1112131415161718").unwrap();
        let rec = LogRecord {
            time_unix_nano: 1_700_000_000_123_456_789,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(string("disk full")),
            attributes: vec![
                key_value("user", kvlist(vec![key_value("id", int(7))])),
                key_value("hostname", string("spoof")),
            ],
            trace_id: trace_id.clone(),
            span_id,
            ..Default::default()
        };
        let res = vec![
            key_value("service.name", string("api")),
            key_value("deployment.environment", string("prod")),
            key_value("host.name", string("web-1")),
        ];
        let out = items(&encoder().encode(&logs(res, vec![rec])).unwrap());
        assert_eq!(out.len(), 1);
        let i = &out[0];
        assert_eq!(i["message"], "disk full");
        assert_eq!(i["hostname"], "web-1");
        assert_eq!(i["service"], "api");
        assert_eq!(i["status"], "ERROR");
        assert_eq!(i["ddsource"], "otlp_log_ingestion");
        assert_eq!(
            i["ddtags"],
            "env:prod,service:api,otel_source:datadog_exporter"
        );
        assert_eq!(
            i["dd.trace_id"],
            u64::from_be_bytes(trace_id[8..].try_into().unwrap()).to_string()
        );
        assert_eq!(i["dd.span_id"], 0x1112131415161718u64.to_string());
        assert_eq!(i["otel.trace_id"], "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(i["otel.severity_number"], "17");
        assert_eq!(i["@timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(i["otel.timestamp"], "1700000000123456789");
        assert_eq!(i["user.id"], "7");
        assert_eq!(i["otel.hostname"], "spoof");
        assert_eq!(i["service.name"], "api");
        // Every additional attribute is a string, as the intake's model wants.
        assert!(i.as_object().unwrap().values().all(Json::is_string));
    }

    #[test]
    fn attributes_give_message_status_and_ids() {
        let rec = LogRecord {
            severity_number: 10,
            body: Some(string("ignored")),
            attributes: vec![
                key_value("msg", string("from attr")),
                key_value("level", string("warning")),
                key_value("trace_id", string("000000000000000000000000000000ff")),
                key_value("ddtags", string("team:x")),
                key_value("service.name", string("rec-svc")),
                key_value("host.name", string("rec-host")),
            ],
            ..Default::default()
        };
        let out = items(&encoder().encode(&logs(vec![], vec![rec])).unwrap());
        let i = &out[0];
        assert_eq!(i["message"], "from attr");
        assert_eq!(i["status"], "warning");
        assert_eq!(i["dd.trace_id"], "255");
        assert_eq!(i["service"], "rec-svc");
        assert_eq!(i["hostname"], "rec-host");
        assert_eq!(i["ddtags"], "otel_source:datadog_exporter,team:x");
        let plain = LogRecord {
            severity_number: 10,
            body: Some(string("b")),
            ..Default::default()
        };
        let i = &items(&encoder().encode(&logs(vec![], vec![plain])).unwrap())[0];
        assert_eq!(
            (i["status"].as_str(), i["hostname"].as_str()),
            (Some("info"), Some("fallback"))
        );
        assert!(i.get("service").is_none());
    }

    #[test]
    fn requests_hold_at_most_1000_items_and_big_items_are_truncated() {
        let recs: Vec<LogRecord> = (0..2500)
            .map(|i| LogRecord {
                body: Some(string(format!("line {i}"))),
                ..Default::default()
            })
            .collect();
        let reqs = encoder().encode(&logs(vec![], recs)).unwrap();
        assert_eq!(
            reqs.iter().map(|r| r.parts.len()).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        let huge = LogRecord {
            body: Some(string("é".repeat(700_000))),
            ..Default::default()
        };
        let reqs = encoder().encode(&logs(vec![], vec![huge])).unwrap();
        assert!(reqs[0].parts[0].len() <= MAX_ITEM_BYTES);
        let i = &items(&reqs)[0];
        assert!(i["message"].as_str().unwrap().ends_with(TRUNCATED_MARK));
        let fat_attrs = LogRecord {
            body: Some(string("m")),
            attributes: (0..20)
                .map(|n| key_value(format!("a{n}"), string("x".repeat(60_000))))
                .collect(),
            ..Default::default()
        };
        let reqs = encoder().encode(&logs(vec![], vec![fat_attrs])).unwrap();
        assert!(reqs[0].parts[0].len() <= MAX_ITEM_BYTES);
        assert_eq!(items(&reqs)[0]["otel.truncated"], "true");
    }
}
