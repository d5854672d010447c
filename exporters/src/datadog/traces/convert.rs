//! OTLP spans → Datadog spans, following the mapping of the Datadog Agent's
//! OTLP ingest (`DataDog/datadog-agent:pkg/trace/api/otlp.go`,
//! `pkg/trace/transform`), which the Collector's `datadog` exporter embeds:
//!
//! - ids: trace id = the lower 64 bits (big-endian bytes 8..16), the upper
//!   64 bits as 16 hex digits in `_dd.p.tid` on the chunk's first span, the
//!   whole id in `otel.trace_id`;
//! - resource attributes become meta, except the Datadog conventions
//!   `service.name`, `operation.name`, `resource.name`, `span.type`, which
//!   set the span's fields (span attributes of the same names override);
//! - span attributes: numbers → metrics, the rest → meta (as text);
//!   `http.request.method`/`http.response.status_code` also as the Datadog
//!   conventions `http.method`/`http.status_code`;
//! - name: `<scope name>.<kind>` (`opentelemetry.<kind>` without a scope),
//!   or the span name with `span_name_as_resource_name`, then
//!   `span_name_remappings`; resource: HTTP method + route, messaging
//!   operation + destination, RPC method + service, the DB statement, else
//!   the span name; type: server → `web`, client → `http` (`db`, or `cache`
//!   for redis/memcached, when `db.system` is set), others → `custom`;
//! - status ERROR → `error: 1`, `error.msg`/`error.type`/`error.stack` from
//!   the last `exception` event (else the status message, else the HTTP
//!   status code);
//! - top-level by span kind (the Agent's
//!   `enable_otlp_compute_top_level_by_span_kind`, on in the Collector): a
//!   root or a server/consumer span is `_top_level`, a client/producer span
//!   `_dd.measured`.
//!
//! Names and services are then normalized as the Agent's normalizer does
//! before anything leaves it.

use confluo_pipeline::attrs::to_text;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use confluo_pipeline::proto::trace::{span::Event, span::Link, ResourceSpans, Span};
use regex::Regex;
use std::collections::{BTreeMap, HashMap};

/// Span kinds (OTLP enum values).
pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;
pub const KIND_PRODUCER: i32 = 4;
pub const KIND_CONSUMER: i32 = 5;

/// The Agent's `sampler.PriorityAutoKeep`.
pub const PRIORITY_AUTO_KEEP: i32 = 1;

/// The Agent's service when a resource names none.
pub const NO_SERVICE: &str = "OTLPResourceNoServiceName";

/// The Agent's `DefaultEnv`.
pub const DEFAULT_ENV: &str = "none";

/// One Datadog span (`pkg/proto/datadog/trace/span.proto`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DdSpan {
    pub service: String,
    pub name: String,
    pub resource: String,
    pub trace_id: u64,
    pub span_id: u64,
    pub parent_id: u64,
    pub start: i64,
    pub duration: i64,
    pub error: i32,
    pub meta: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub r#type: String,
    /// The OTLP span kind (not sent; stats group by it).
    pub kind: i32,
}

impl DdSpan {
    pub fn is_top_level(&self) -> bool {
        self.metrics.get("_top_level") == Some(&1.0)
    }

    pub fn is_measured(&self) -> bool {
        self.metrics.get("_dd.measured") == Some(&1.0)
    }
}

/// One trace's spans from one resource (the Agent's `TraceChunk`).
#[derive(Debug, Default)]
pub struct Chunk {
    pub priority: i32,
    pub spans: Vec<DdSpan>,
}

/// The spans of one resource (the Agent's `TracerPayload`).
#[derive(Debug, Default)]
pub struct ResourceTraces {
    pub hostname: String,
    pub env: String,
    pub language: String,
    pub tracer_version: String,
    pub app_version: String,
    pub container_id: String,
    pub chunks: Vec<Chunk>,
}

/// Conversion settings from `traces:`.
pub struct Converter {
    pub span_name_as_resource_name: bool,
    pub remappings: HashMap<String, String>,
    pub ignore_resources: Vec<Regex>,
    pub hostname: String,
}

/// What one conversion produced.
#[derive(Debug, Default)]
pub struct Converted {
    pub resources: Vec<ResourceTraces>,
    /// Spans of traces dropped by `ignore_resources`.
    pub ignored_spans: usize,
}

fn be_u64(id: &[u8], from: usize) -> u64 {
    id.get(from..from + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The kind's name as the Agent spells it (`traceutil.OTelSpanKindName`).
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        0 => "unspecified",
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unknown",
    }
}

fn first<'a>(map: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| map.get(*k).map(String::as_str).filter(|v| !v.is_empty()))
}

fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn attr_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    find_attr(attrs, key).map(to_text).filter(|s| !s.is_empty())
}

/// The Agent's `SetMetaOTLP`: Datadog conventions set span fields.
fn set_meta(span: &mut DdSpan, key: &str, value: String) {
    match key {
        "operation.name" => span.name = value,
        "service.name" => span.service = value,
        "resource.name" => span.resource = value,
        "span.type" => span.r#type = value,
        "analytics.event" => {
            if let Ok(b) = value.parse::<bool>() {
                span.metrics
                    .insert("_dd1.sr.eausr".into(), if b { 1.0 } else { 0.0 });
            }
        }
        _ => {
            span.meta.insert(key.to_string(), value);
        }
    }
}

/// The Agent's `SetMetricOTLP`.
fn set_metric(span: &mut DdSpan, key: &str, value: f64) {
    match key {
        "sampling.priority" => {
            span.metrics.insert("_sampling_priority_v1".into(), value);
        }
        _ => {
            span.metrics.insert(key.to_string(), value);
        }
    }
}

/// `traceutil.NormalizeName`: ≤ 100 chars, starts with a letter, only
/// `[A-Za-z0-9_.]`, runs of other characters become one `_`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(100));
    let mut pending_underscore = false;
    for c in name.chars().skip_while(|c| !c.is_ascii_alphabetic()) {
        if out.len() >= 100 {
            break;
        }
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            if pending_underscore && c != '.' && !out.ends_with('.') && !out.ends_with('_') {
                out.push('_');
            }
            pending_underscore = false;
            out.push(c);
        } else {
            pending_underscore = true;
        }
    }
    if out.is_empty() {
        return "unnamed_operation".into();
    }
    out
}

/// `traceutil.NormalizeTag`-like for services and envs: lower case, ≤ 100
/// chars, characters outside `[a-z0-9_:./-]` become `_`.
pub fn normalize_tag_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len().min(100));
    for c in v.trim().chars().flat_map(char::to_lowercase) {
        if out.len() >= 100 {
            break;
        }
        if c.is_alphanumeric() || matches!(c, '_' | ':' | '.' | '/' | '-') {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The resource's host, as for metrics and logs (the Collector's order),
/// else the Agent's `_dd.hostname` convention.
fn hostname_of(rattr: &[KeyValue]) -> Option<String> {
    crate::datadog::attributes::host_from_attributes(rattr)
        .or_else(|| attr_text(rattr, "_dd.hostname"))
}

fn json_text(v: &str) -> String {
    serde_json::Value::String(v.to_string()).to_string()
}

/// `transform.MarshalEvents`: a JSON array of the span events.
fn events_json(events: &[Event]) -> String {
    let mut out = String::from("[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut fields: Vec<String> = Vec::with_capacity(4);
        if e.time_unix_nano != 0 {
            fields.push(format!("\"time_unix_nano\":{}", e.time_unix_nano));
        }
        if !e.name.is_empty() {
            fields.push(format!("\"name\":{}", json_text(&e.name)));
        }
        if !e.attributes.is_empty() {
            fields.push(format!("\"attributes\":{}", attrs_json(&e.attributes)));
        }
        if e.dropped_attributes_count != 0 {
            fields.push(format!(
                "\"dropped_attributes_count\":{}",
                e.dropped_attributes_count
            ));
        }
        out.push('{');
        out.push_str(&fields.join(","));
        out.push('}');
    }
    out.push(']');
    out
}

fn attrs_json(attrs: &[KeyValue]) -> String {
    let mut out = Vec::new();
    confluo_pipeline::attrs::write_json_object(attrs, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| "{}".into())
}

/// `transform.MarshalLinks`: a JSON array of the span links.
fn links_json(links: &[Link]) -> String {
    let mut out = String::from("[");
    for (i, l) in links.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"trace_id\":\"{}\",\"span_id\":\"{}\"",
            hex::encode(&l.trace_id),
            hex::encode(&l.span_id)
        ));
        if !l.trace_state.is_empty() {
            out.push_str(&format!(",\"tracestate\":{}", json_text(&l.trace_state)));
        }
        if !l.attributes.is_empty() {
            out.push_str(&format!(",\"attributes\":{}", attrs_json(&l.attributes)));
        }
        if l.dropped_attributes_count != 0 {
            out.push_str(&format!(
                ",\"dropped_attributes_count\":{}",
                l.dropped_attributes_count
            ));
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// The Agent's `resourceFromTags`, plus the DB statement of its V2 naming.
fn resource_from_meta(meta: &BTreeMap<String, String>) -> Option<String> {
    if let Some(m) = first(meta, &["http.request.method", "http.method"]) {
        let m = if m == "_OTHER" { "HTTP" } else { m };
        return Some(match first(meta, &["http.route", "grpc.path"]) {
            Some(route) => format!("{m} {route}"),
            None => m.to_string(),
        });
    }
    if let Some(op) = first(meta, &["messaging.operation"]) {
        return Some(
            match first(
                meta,
                &["messaging.destination", "messaging.destination.name"],
            ) {
                Some(dest) => format!("{op} {dest}"),
                None => op.to_string(),
            },
        );
    }
    if let Some(method) = first(meta, &["rpc.method"]) {
        return Some(match first(meta, &["rpc.service"]) {
            Some(svc) => format!("{method} {svc}"),
            None => method.to_string(),
        });
    }
    if first(meta, &["db.system", "db.system.name"]).is_some() {
        if let Some(stmt) = first(meta, &["db.statement", "db.query.text"]) {
            return Some(stmt.to_string());
        }
    }
    None
}

/// The Agent's `spanKind2Type`.
fn kind_to_type(kind: i32, meta: &BTreeMap<String, String>) -> &'static str {
    match kind {
        KIND_SERVER => "web",
        KIND_CLIENT => match meta.get("db.system").map(String::as_str) {
            None => "http",
            Some("redis") | Some("memcached") => "cache",
            Some(_) => "db",
        },
        _ => "custom",
    }
}

/// The Agent's `Status2Error`.
fn status_to_error(span: &mut DdSpan, status_message: &str, events: &[Event]) {
    span.error = 1;
    for e in events
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case("exception"))
    {
        for (attr, meta) in [
            ("exception.message", "error.msg"),
            ("exception.type", "error.type"),
            ("exception.stacktrace", "error.stack"),
        ] {
            if let Some(v) = find_attr(&e.attributes, attr) {
                span.meta.insert(meta.into(), to_text(v));
            }
        }
    }
    if span.meta.contains_key("error.msg") {
        return;
    }
    if !status_message.is_empty() {
        span.meta
            .insert("error.msg".into(), status_message.to_string());
    } else if let Some(code) = span.meta.get("http.status_code").cloned() {
        let msg = match span.meta.get("http.status_text") {
            Some(text) => format!("{code} {text}"),
            None => code,
        };
        span.meta.insert("error.msg".into(), msg);
    }
}

impl Converter {
    /// One OTLP span → one Datadog span.
    pub fn span(
        &self,
        rattr: &[(String, String)],
        service_version: Option<&str>,
        scope: Option<&InstrumentationScope>,
        s: &Span,
    ) -> DdSpan {
        let start = s.start_time_unix_nano as i64;
        let end = s.end_time_unix_nano as i64;
        let mut span = DdSpan {
            trace_id: be_u64(&s.trace_id, 8),
            span_id: be_u64(&s.span_id, 0),
            parent_id: be_u64(&s.parent_span_id, 0),
            start,
            duration: end.saturating_sub(start).max(0),
            kind: s.kind,
            ..DdSpan::default()
        };
        for (k, v) in rattr {
            set_meta(&mut span, k, v.clone());
        }
        if span.parent_id == 0 || s.kind == KIND_SERVER || s.kind == KIND_CONSUMER {
            span.metrics.insert("_top_level".into(), 1.0);
        }
        if s.kind == KIND_CLIENT || s.kind == KIND_PRODUCER {
            span.metrics.insert("_dd.measured".into(), 1.0);
        }
        span.meta
            .insert("otel.trace_id".into(), hex::encode(&s.trace_id));
        span.meta
            .insert("span.kind".into(), kind_name(s.kind).into());
        if !span.meta.contains_key("version") {
            if let Some(v) = service_version {
                span.meta.insert("version".into(), v.to_string());
            }
        }
        if !s.events.is_empty() {
            span.meta.insert("events".into(), events_json(&s.events));
        }
        if !s.links.is_empty() {
            span.meta
                .insert("_dd.span_links".into(), links_json(&s.links));
        }
        let mut method_new = None;
        let mut method_old = None;
        let mut code_new = None;
        let mut code_old = None;
        for kv in &s.attributes {
            let Some(v) = kv.value.as_ref() else { continue };
            let k = kv.key.as_str();
            match &v.value {
                Some(Value::DoubleValue(d)) => set_metric(&mut span, k, *d),
                Some(Value::IntValue(i)) => set_metric(&mut span, k, *i as f64),
                _ => {
                    // The Datadog conventions are set below from either spelling.
                    if k != "http.method" && k != "http.status_code" {
                        set_meta(&mut span, k, to_text(v));
                    }
                }
            }
            match k {
                "http.request.method" => method_new = Some(to_text(v)),
                "http.method" => method_old = Some(to_text(v)),
                "http.response.status_code" => code_new = Some(to_text(v)),
                "http.status_code" => code_old = Some(to_text(v)),
                _ => {}
            }
        }
        if let Some(m) = method_new.or(method_old) {
            span.meta.insert("http.method".into(), m);
        }
        if let Some(c) = code_new.or(code_old) {
            span.meta.insert("http.status_code".into(), c);
        }
        if !span.meta.contains_key("env") {
            if let Some(env) = first(
                &span.meta,
                &["deployment.environment.name", "deployment.environment"],
            ) {
                let env = normalize_tag_value(env);
                span.meta.insert("env".into(), env);
            }
        }
        if !s.trace_state.is_empty() {
            span.meta
                .insert("w3c.tracestate".into(), s.trace_state.clone());
        }
        if let Some(scope) = scope {
            if !scope.name.is_empty() {
                span.meta
                    .insert("otel.library.name".into(), scope.name.clone());
            }
            if !scope.version.is_empty() {
                span.meta
                    .insert("otel.library.version".into(), scope.version.clone());
            }
        }
        let (code, message) = s
            .status
            .as_ref()
            .map_or((0, ""), |st| (st.code, st.message.as_str()));
        span.meta.insert(
            "otel.status_code".into(),
            match code {
                1 => "Ok",
                2 => "Error",
                _ => "Unset",
            }
            .into(),
        );
        if !message.is_empty() {
            span.meta
                .insert("otel.status_description".into(), message.to_string());
        }
        if code == 2 {
            status_to_error(&mut span, message, &s.events);
        }
        if span.name.is_empty() {
            let mut name = if self.span_name_as_resource_name {
                s.name.clone()
            } else {
                match scope.map(|sc| sc.name.as_str()).filter(|n| !n.is_empty()) {
                    Some(lib) => format!("{lib}.{}", kind_name(s.kind)),
                    None => format!("opentelemetry.{}", kind_name(s.kind)),
                }
            };
            if let Some(v) = self.remappings.get(&name) {
                name = v.clone();
            }
            span.name = name;
        }
        span.name = normalize_name(&span.name);
        span.service = if span.service.is_empty() {
            NO_SERVICE.to_string()
        } else {
            let svc = normalize_tag_value(&span.service);
            if svc.is_empty() {
                NO_SERVICE.to_string()
            } else {
                svc
            }
        };
        if span.resource.is_empty() {
            span.resource = resource_from_meta(&span.meta).unwrap_or_else(|| s.name.clone());
        }
        if span.resource.is_empty() {
            span.resource = span.name.clone();
        }
        if span.r#type.is_empty() {
            span.r#type = kind_to_type(s.kind, &span.meta).into();
        }
        span
    }

    /// Whether `ignore_resources` drops a trace whose root has `resource`.
    fn ignored(&self, resource: &str) -> bool {
        self.ignore_resources.iter().any(|re| re.is_match(resource))
    }

    /// One resource's spans, grouped into chunks by trace id (first-seen
    /// order), each finished: `_dd.p.tid`, priority on the root,
    /// `ignore_resources` applied.
    pub fn resource(&self, rs: &ResourceSpans, out: &mut Converted) {
        let rattrs: &[KeyValue] = rs
            .resource
            .as_ref()
            .map_or(&[], |r| r.attributes.as_slice());
        let rattr: Vec<(String, String)> = rattrs
            .iter()
            .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.clone(), to_text(v))))
            .collect();
        let service_version = attr_text(rattrs, "service.version");
        let mut env = attr_text(rattrs, "deployment.environment.name")
            .or_else(|| attr_text(rattrs, "deployment.environment"))
            .map(|e| normalize_tag_value(&e))
            .unwrap_or_default();
        let mut hostname = hostname_of(rattrs);
        // (trace id high bits, user priority, spans)
        let mut traces: Vec<(u64, Option<i32>, Vec<DdSpan>)> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                let span = self.span(&rattr, service_version.as_deref(), ss.scope.as_ref(), s);
                if hostname.is_none() {
                    hostname = span.meta.get("_dd.hostname").cloned();
                }
                if env.is_empty() {
                    if let Some(e) = span.meta.get("env") {
                        env = e.clone();
                    }
                }
                let i = *index.entry(span.trace_id).or_insert_with(|| {
                    traces.push((be_u64(&s.trace_id, 0), None, Vec::new()));
                    traces.len() - 1
                });
                if let Some(p) = span.metrics.get("_sampling_priority_v1") {
                    traces[i].1 = Some(*p as i32);
                }
                traces[i].2.push(span);
            }
        }
        let mut chunks = Vec::with_capacity(traces.len());
        for (high, priority, mut spans) in traces {
            let root = spans
                .iter()
                .position(|s| s.parent_id == 0)
                .or_else(|| {
                    // A partial trace: the span whose parent is not here.
                    let ids: std::collections::HashSet<u64> =
                        spans.iter().map(|s| s.span_id).collect();
                    spans.iter().position(|s| !ids.contains(&s.parent_id))
                })
                .unwrap_or(0);
            if self.ignored(&spans[root].resource) {
                out.ignored_spans += spans.len();
                continue;
            }
            let priority = priority.unwrap_or(PRIORITY_AUTO_KEEP);
            spans[root]
                .metrics
                .insert("_sampling_priority_v1".into(), priority as f64);
            if high != 0 {
                spans[0]
                    .meta
                    .insert("_dd.p.tid".into(), format!("{high:016x}"));
            }
            chunks.push(Chunk { priority, spans });
        }
        if chunks.is_empty() {
            return;
        }
        out.resources.push(ResourceTraces {
            hostname: hostname.unwrap_or_else(|| self.hostname.clone()),
            env: if env.is_empty() {
                DEFAULT_ENV.to_string()
            } else {
                env
            },
            language: attr_text(rattrs, "telemetry.sdk.language").unwrap_or_default(),
            tracer_version: format!(
                "otlp-{}",
                attr_text(rattrs, "telemetry.sdk.version").unwrap_or_default()
            ),
            app_version: service_version.unwrap_or_default(),
            container_id: attr_text(rattrs, "container.id")
                .or_else(|| attr_text(rattrs, "k8s.pod.uid"))
                .unwrap_or_default(),
            chunks,
        });
    }

    pub fn convert(&self, resource_spans: &[ResourceSpans]) -> Converted {
        let mut out = Converted::default();
        for rs in resource_spans {
            self.resource(rs, &mut out);
        }
        out
    }
}
