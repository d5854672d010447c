//! Log records and spans → `_bulk` NDJSON: one `create` action line and one
//! document line per item, each item's two lines kept as a byte range so
//! that a retry subset is cut from the body without encoding again.
//!
//! Documents are written straight into the body buffer (no JSON tree); the
//! `otel` mode follows the Collector's OTel-native documents, `ecs` the
//! Elastic Common Schema names (`protocols.md` §2).

use super::config::MappingMode;
use confluo_pipeline::attrs::{self, write_json, write_json_object};
use confluo_pipeline::otlp_json::write_json_str;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use confluo_pipeline::proto::logs::LogRecord;
use confluo_pipeline::proto::resource::Resource;
use confluo_pipeline::proto::trace::{span, status, Span};
use confluo_pipeline::{Signal, SignalKind};
use std::ops::Range;

pub const DEFAULT_DATASET: &str = "generic";
pub const DEFAULT_NAMESPACE: &str = "default";
const DATASET_ATTR: &str = "data_stream.dataset";
const NAMESPACE_ATTR: &str = "data_stream.namespace";

/// One bulk body under construction or finished.
#[derive(Debug, Default)]
pub struct Encoded {
    pub body: Vec<u8>,
    /// Per item, the bytes of its action line and document line.
    pub items: Vec<Range<usize>>,
}

/// How documents are written and routed.
#[derive(Clone, Debug)]
pub struct Encoder {
    pub mode: MappingMode,
    pub logs_index: Option<String>,
    pub traces_index: Option<String>,
    pub deterministic_id: bool,
    /// A body is closed before it grows past this (0 = unbounded).
    pub max_bytes: usize,
}

/// Resource and scope of the items being written.
pub(crate) struct Context<'a> {
    pub(crate) resource: Option<&'a Resource>,
    pub(crate) scope: Option<&'a InstrumentationScope>,
}

impl<'a> Context<'a> {
    fn resource_attrs(&self) -> &'a [KeyValue] {
        self.resource.map_or(&[], |r| &r.attributes)
    }
    fn scope_attrs(&self) -> &'a [KeyValue] {
        self.scope.map_or(&[], |s| &s.attributes)
    }
}

/// Reusable buffers: one per encode call.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) doc: Vec<u8>,
    pub(crate) index: String,
    labels: Vec<String>,
}

impl Encoder {
    /// Encodes every log record or span of `signal` (metrics are not
    /// exported: the factory does not offer them).
    pub fn encode(&self, signal: &Signal) -> Vec<Encoded> {
        let mut out = Vec::new();
        let mut current = Encoded::default();
        let mut s = Scratch::default();
        match signal {
            Signal::Logs(rls) => {
                for rl in rls {
                    for sl in &rl.scope_logs {
                        let ctx = Context {
                            resource: rl.resource.as_ref(),
                            scope: sl.scope.as_ref(),
                        };
                        for rec in &sl.log_records {
                            s.doc.clear();
                            let ds =
                                self.route(SignalKind::Logs, &ctx, &rec.attributes, &mut s.index);
                            match self.mode {
                                MappingMode::Ecs => ecs_log(&mut s, &ctx, rec, ds),
                                _ => otel_log(&mut s.doc, &ctx, rec, ds),
                            }
                            self.push(&mut out, &mut current, &s);
                        }
                    }
                }
            }
            Signal::Traces(rss) => {
                for rs in rss {
                    for ss in &rs.scope_spans {
                        let ctx = Context {
                            resource: rs.resource.as_ref(),
                            scope: ss.scope.as_ref(),
                        };
                        for sp in &ss.spans {
                            s.doc.clear();
                            let ds =
                                self.route(SignalKind::Traces, &ctx, &sp.attributes, &mut s.index);
                            match self.mode {
                                MappingMode::Ecs => ecs_span(&mut s, &ctx, sp, ds),
                                _ => otel_span(&mut s.doc, &ctx, sp, ds),
                            }
                            self.push(&mut out, &mut current, &s);
                        }
                    }
                }
            }
            Signal::Metrics(_) => {}
        }
        if !current.items.is_empty() {
            out.push(current);
        }
        out
    }

    /// Appends the action and document lines of `s.doc` to `current`,
    /// closing `current` first when the item would push it past the cap.
    fn push(&self, out: &mut Vec<Encoded>, current: &mut Encoded, s: &Scratch) {
        let id = self.deterministic_id.then(|| document_id(&s.doc));
        let item_len = s.index.len() + s.doc.len() + 80;
        if self.max_bytes > 0
            && !current.items.is_empty()
            && current.body.len() + item_len > self.max_bytes
        {
            out.push(std::mem::take(current));
        }
        let start = current.body.len();
        write_action(&mut current.body, &s.index, id.as_deref());
        current.body.extend_from_slice(&s.doc);
        current.body.push(b'\n');
        current.items.push(start..current.body.len());
    }

    /// Fills `index` with the target index and returns the data stream
    /// (`type`, `dataset`, `namespace`) when routing to one.
    pub(crate) fn route<'a>(
        &self,
        kind: SignalKind,
        ctx: &Context<'a>,
        item_attrs: &'a [KeyValue],
        index: &mut String,
    ) -> Option<DataStream> {
        index.clear();
        let fixed = match kind {
            SignalKind::Traces => self.traces_index.as_deref(),
            _ => self.logs_index.as_deref(),
        };
        if let Some(fixed) = fixed {
            index.push_str(fixed);
            return None;
        }
        let lookup = |key: &str| {
            [item_attrs, ctx.scope_attrs(), ctx.resource_attrs()]
                .into_iter()
                .find_map(|a| attrs::get_str(a, key))
                .filter(|v| !v.is_empty())
        };
        let mut dataset = sanitize(lookup(DATASET_ATTR).unwrap_or(DEFAULT_DATASET));
        if self.mode == MappingMode::Otel && !dataset.ends_with(".otel") {
            dataset.push_str(".otel");
        }
        let namespace = sanitize(lookup(NAMESPACE_ATTR).unwrap_or(DEFAULT_NAMESPACE));
        let ty = match kind {
            SignalKind::Traces => "traces",
            SignalKind::Metrics => "metrics",
            SignalKind::Logs => "logs",
        };
        index.push_str(ty);
        index.push('-');
        index.push_str(&dataset);
        index.push('-');
        index.push_str(&namespace);
        Some(DataStream {
            ty,
            dataset,
            namespace,
        })
    }
}

/// The data stream a document goes to.
#[derive(Debug, PartialEq, Eq)]
pub struct DataStream {
    pub ty: &'static str,
    pub dataset: String,
    pub namespace: String,
}

/// Lower case; characters an index name cannot hold (and `-`, the data
/// stream name's separator) become `_`; at most 100 bytes.
pub fn sanitize(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let bad = matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':' | '-'
        ) || c.is_control();
        if bad {
            out.push('_');
        } else {
            out.extend(c.to_lowercase());
        }
        if out.len() >= 100 {
            break;
        }
    }
    while out.len() > 100 {
        out.pop();
    }
    out
}

/// `{"create":{"_index":"…"[,"_id":"…"]}}\n`. `create` for every document:
/// data streams take nothing else, and with a deterministic `_id` a resent
/// document answers 409 instead of being rewritten.
pub fn write_action(out: &mut Vec<u8>, index: &str, id: Option<&str>) {
    out.extend_from_slice(br#"{"create":{"_index":"#);
    write_json_str(out, index);
    if let Some(id) = id {
        out.extend_from_slice(br#","_id":"#);
        write_json_str(out, id);
    }
    out.extend_from_slice(b"}}\n");
}

/// The first 128 bits of the document's SHA-256, in hex. A cryptographic
/// hash because a collision makes a different document look "already
/// indexed" (409) and silently lost, and log content can be chosen by
/// whoever writes the logs.
pub fn document_id(doc: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, doc);
    hex::encode(&digest.as_ref()[..16])
}

/// `2024-05-01T12:00:00.123456789Z` from Unix nanoseconds.
pub fn write_rfc3339(out: &mut Vec<u8>, unix_nanos: u64) {
    let secs = unix_nanos / 1_000_000_000;
    let nanos = unix_nanos % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    use std::io::Write;
    let _ = write!(
        out,
        "\"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z\"",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    write_json_str(out, k);
    out.push(b':');
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Attributes without the routing keys `data_stream.*`.
fn write_attrs(out: &mut Vec<u8>, attrs: &[KeyValue]) {
    if !attrs.iter().any(|kv| kv.key.starts_with("data_stream.")) {
        write_json_object(attrs, out);
        return;
    }
    out.push(b'{');
    let mut first = true;
    for kv in attrs
        .iter()
        .filter(|kv| !kv.key.starts_with("data_stream."))
    {
        key(out, &mut first, &kv.key);
        match &kv.value {
            Some(v) => write_json(v, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

fn write_data_stream(out: &mut Vec<u8>, first: &mut bool, ds: &DataStream) {
    key(out, first, "data_stream");
    out.extend_from_slice(br#"{"type":"#);
    write_json_str(out, ds.ty);
    out.extend_from_slice(br#","dataset":"#);
    write_json_str(out, &ds.dataset);
    out.extend_from_slice(br#","namespace":"#);
    write_json_str(out, &ds.namespace);
    out.push(b'}');
}

fn write_resource_scope(out: &mut Vec<u8>, first: &mut bool, ctx: &Context) {
    key(out, first, "resource");
    out.extend_from_slice(br#"{"attributes":"#);
    write_attrs(out, ctx.resource_attrs());
    if let Some(n) = ctx
        .resource
        .map(|r| r.dropped_attributes_count)
        .filter(|n| *n > 0)
    {
        out.extend_from_slice(br#","dropped_attributes_count":"#);
        write_u64(out, u64::from(n));
    }
    out.push(b'}');
    if let Some(scope) = ctx.scope {
        key(out, first, "scope");
        let mut f = true;
        out.push(b'{');
        if !scope.name.is_empty() {
            key(out, &mut f, "name");
            write_json_str(out, &scope.name);
        }
        if !scope.version.is_empty() {
            key(out, &mut f, "version");
            write_json_str(out, &scope.version);
        }
        if !scope.attributes.is_empty() {
            key(out, &mut f, "attributes");
            write_attrs(out, &scope.attributes);
        }
        out.push(b'}');
    }
}

fn write_ids(out: &mut Vec<u8>, first: &mut bool, trace: (&str, &[u8]), span: (&str, &[u8])) {
    if attrs::is_valid_trace_id(trace.1) {
        key(out, first, trace.0);
        write_json_str(out, &attrs::id_hex(trace.1));
    }
    if attrs::is_valid_span_id(span.1) {
        key(out, first, span.0);
        write_json_str(out, &attrs::id_hex(span.1));
    }
}

fn log_time(rec: &LogRecord) -> u64 {
    if rec.time_unix_nano != 0 {
        rec.time_unix_nano
    } else {
        rec.observed_time_unix_nano
    }
}

/// A log record in the Collector's `otel` mode.
pub(crate) fn otel_log(out: &mut Vec<u8>, ctx: &Context, rec: &LogRecord, ds: Option<DataStream>) {
    let mut first = true;
    out.push(b'{');
    key(out, &mut first, "@timestamp");
    write_rfc3339(out, log_time(rec));
    if rec.observed_time_unix_nano != 0 {
        key(out, &mut first, "observed_timestamp");
        write_rfc3339(out, rec.observed_time_unix_nano);
    }
    if let Some(ds) = &ds {
        write_data_stream(out, &mut first, ds);
    }
    if !rec.severity_text.is_empty() {
        key(out, &mut first, "severity_text");
        write_json_str(out, &rec.severity_text);
    }
    if rec.severity_number != 0 {
        key(out, &mut first, "severity_number");
        out.extend_from_slice(rec.severity_number.to_string().as_bytes());
    }
    write_ids(
        out,
        &mut first,
        ("trace_id", &rec.trace_id),
        ("span_id", &rec.span_id),
    );
    if !rec.event_name.is_empty() {
        key(out, &mut first, "event_name");
        write_json_str(out, &rec.event_name);
    }
    key(out, &mut first, "attributes");
    write_attrs(out, &rec.attributes);
    if rec.dropped_attributes_count > 0 {
        key(out, &mut first, "dropped_attributes_count");
        write_u64(out, u64::from(rec.dropped_attributes_count));
    }
    if let Some(body) = rec.body.as_ref().filter(|b| b.value.is_some()) {
        key(out, &mut first, "body");
        match &body.value {
            Some(Value::KvlistValue(_)) => {
                out.extend_from_slice(br#"{"structured":"#);
                write_json(body, out);
            }
            Some(Value::StringValue(s)) => {
                out.extend_from_slice(br#"{"text":"#);
                write_json_str(out, s);
            }
            _ => {
                out.extend_from_slice(br#"{"text":"#);
                write_json_str(out, &attrs::to_text(body));
            }
        }
        out.push(b'}');
    }
    write_resource_scope(out, &mut first, ctx);
    out.push(b'}');
}

fn kind_name(kind: i32) -> &'static str {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => "Internal",
        Ok(span::SpanKind::Server) => "Server",
        Ok(span::SpanKind::Client) => "Client",
        Ok(span::SpanKind::Producer) => "Producer",
        Ok(span::SpanKind::Consumer) => "Consumer",
        _ => "Unspecified",
    }
}

fn status_name(code: i32) -> &'static str {
    match status::StatusCode::try_from(code) {
        Ok(status::StatusCode::Ok) => "Ok",
        Ok(status::StatusCode::Error) => "Error",
        _ => "Unset",
    }
}

/// A span in the Collector's `otel` mode; its events are kept inside the
/// span document (the Collector writes them as separate log documents).
pub(crate) fn otel_span(out: &mut Vec<u8>, ctx: &Context, sp: &Span, ds: Option<DataStream>) {
    let mut first = true;
    out.push(b'{');
    key(out, &mut first, "@timestamp");
    write_rfc3339(out, sp.start_time_unix_nano);
    if let Some(ds) = &ds {
        write_data_stream(out, &mut first, ds);
    }
    write_ids(
        out,
        &mut first,
        ("trace_id", &sp.trace_id),
        ("span_id", &sp.span_id),
    );
    if attrs::is_valid_span_id(&sp.parent_span_id) {
        key(out, &mut first, "parent_span_id");
        write_json_str(out, &attrs::id_hex(&sp.parent_span_id));
    }
    if !sp.trace_state.is_empty() {
        key(out, &mut first, "trace_state");
        write_json_str(out, &sp.trace_state);
    }
    key(out, &mut first, "name");
    write_json_str(out, &sp.name);
    key(out, &mut first, "kind");
    write_json_str(out, kind_name(sp.kind));
    key(out, &mut first, "duration");
    write_u64(
        out,
        sp.end_time_unix_nano
            .saturating_sub(sp.start_time_unix_nano),
    );
    key(out, &mut first, "attributes");
    write_attrs(out, &sp.attributes);
    if sp.dropped_attributes_count > 0 {
        key(out, &mut first, "dropped_attributes_count");
        write_u64(out, u64::from(sp.dropped_attributes_count));
    }
    if !sp.events.is_empty() {
        key(out, &mut first, "events");
        out.push(b'[');
        for (i, e) in sp.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"@timestamp":"#);
            write_rfc3339(out, e.time_unix_nano);
            out.extend_from_slice(br#","name":"#);
            write_json_str(out, &e.name);
            out.extend_from_slice(br#","attributes":"#);
            write_attrs(out, &e.attributes);
            out.push(b'}');
        }
        out.push(b']');
    }
    if sp.dropped_events_count > 0 {
        key(out, &mut first, "dropped_events_count");
        write_u64(out, u64::from(sp.dropped_events_count));
    }
    if !sp.links.is_empty() {
        key(out, &mut first, "links");
        out.push(b'[');
        for (i, l) in sp.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut f = true;
            out.push(b'{');
            write_ids(
                out,
                &mut f,
                ("trace_id", &l.trace_id),
                ("span_id", &l.span_id),
            );
            if !l.trace_state.is_empty() {
                key(out, &mut f, "trace_state");
                write_json_str(out, &l.trace_state);
            }
            key(out, &mut f, "attributes");
            write_attrs(out, &l.attributes);
            out.push(b'}');
        }
        out.push(b']');
    }
    if sp.dropped_links_count > 0 {
        key(out, &mut first, "dropped_links_count");
        write_u64(out, u64::from(sp.dropped_links_count));
    }
    key(out, &mut first, "status");
    out.extend_from_slice(br#"{"code":"#);
    let st = sp.status.as_ref();
    write_json_str(out, status_name(st.map_or(0, |s| s.code)));
    if let Some(m) = st.map(|s| s.message.as_str()).filter(|m| !m.is_empty()) {
        out.extend_from_slice(br#","message":"#);
        write_json_str(out, m);
    }
    out.push(b'}');
    write_resource_scope(out, &mut first, ctx);
    out.push(b'}');
}

/// OTel resource attributes that keep (or get) an ECS name.
fn ecs_resource_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "service.name" => "service.name",
        "service.version" => "service.version",
        "service.namespace" => "service.namespace",
        "service.instance.id" => "service.node.name",
        "deployment.environment" | "deployment.environment.name" => "service.environment",
        "host.name" => "host.name",
        "host.id" => "host.id",
        "host.arch" => "host.architecture",
        "host.ip" => "host.ip",
        "os.type" => "host.os.platform",
        "os.description" => "host.os.full",
        "os.name" => "host.os.name",
        "os.version" => "host.os.version",
        "process.pid" => "process.pid",
        "process.executable.name" => "process.name",
        "process.executable.path" => "process.executable",
        "process.command_line" => "process.command_line",
        "container.id" => "container.id",
        "container.name" => "container.name",
        "container.image.name" => "container.image.name",
        "cloud.provider" => "cloud.provider",
        "cloud.region" => "cloud.region",
        "cloud.availability_zone" => "cloud.availability_zone",
        "cloud.account.id" => "cloud.account.id",
        "k8s.namespace.name" => "kubernetes.namespace",
        "k8s.pod.name" => "kubernetes.pod.name",
        "k8s.pod.uid" => "kubernetes.pod.uid",
        "k8s.node.name" => "kubernetes.node.name",
        "k8s.deployment.name" => "kubernetes.deployment.name",
        _ => return None,
    })
}

/// Record or span attributes with an ECS name.
fn ecs_attr_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "exception.message" => "error.message",
        "exception.type" => "error.type",
        "exception.stacktrace" => "error.stack_trace",
        "event.name" => "event.action",
        _ => return None,
    })
}

/// `labels.<key>`: ECS label keys hold no dots. A second attribute that
/// maps to the same label is skipped (a JSON document cannot repeat a key).
fn write_label(s: &mut Scratch, first: &mut bool, k: &str, v: &AnyValue) {
    let mut label = String::with_capacity(7 + k.len());
    label.push_str("labels.");
    label.extend(k.chars().map(|c| if c == '.' { '_' } else { c }));
    if s.labels.contains(&label) {
        return;
    }
    key(&mut s.doc, first, &label);
    write_json(v, &mut s.doc);
    s.labels.push(label);
}

fn ecs_common(s: &mut Scratch, first: &mut bool, ctx: &Context, item_attrs: &[KeyValue]) {
    s.labels.clear();
    let mut written: Vec<&'static str> = Vec::new();
    for kv in ctx.resource_attrs() {
        let Some(v) = &kv.value else { continue };
        if kv.key.starts_with("data_stream.") {
            continue;
        }
        match ecs_resource_name(&kv.key) {
            Some(name) if !written.contains(&name) => {
                written.push(name);
                key(&mut s.doc, first, name);
                write_json(v, &mut s.doc);
            }
            Some(_) => {}
            None => write_label(s, first, &kv.key, v),
        }
    }
    for kv in item_attrs {
        let Some(v) = &kv.value else { continue };
        if kv.key.starts_with("data_stream.") {
            continue;
        }
        match ecs_attr_name(&kv.key) {
            Some(name) if !written.contains(&name) => {
                written.push(name);
                key(&mut s.doc, first, name);
                write_json(v, &mut s.doc);
            }
            Some(_) => {}
            None => write_label(s, first, &kv.key, v),
        }
    }
}

/// A log record in `ecs` mode.
pub(crate) fn ecs_log(s: &mut Scratch, ctx: &Context, rec: &LogRecord, ds: Option<DataStream>) {
    let mut first = true;
    let out = &mut s.doc;
    out.push(b'{');
    key(out, &mut first, "@timestamp");
    write_rfc3339(out, log_time(rec));
    if let Some(body) = rec.body.as_ref().filter(|b| b.value.is_some()) {
        key(out, &mut first, "message");
        match &body.value {
            Some(Value::StringValue(m)) => write_json_str(out, m),
            _ => write_json_str(out, &attrs::to_text(body)),
        }
    }
    if !rec.severity_text.is_empty() {
        key(out, &mut first, "log.level");
        write_json_str(out, &rec.severity_text);
    }
    if rec.severity_number != 0 {
        key(out, &mut first, "event.severity");
        out.extend_from_slice(rec.severity_number.to_string().as_bytes());
    }
    write_ids(
        out,
        &mut first,
        ("trace.id", &rec.trace_id),
        ("span.id", &rec.span_id),
    );
    if let Some(name) = ctx.scope.map(|s| s.name.as_str()).filter(|n| !n.is_empty()) {
        key(out, &mut first, "log.logger");
        write_json_str(out, name);
    }
    if let Some(ds) = &ds {
        write_data_stream(out, &mut first, ds);
    }
    ecs_common(s, &mut first, ctx, &rec.attributes);
    s.doc.push(b'}');
}

/// A span in `ecs` mode (APM-like names).
pub(crate) fn ecs_span(s: &mut Scratch, ctx: &Context, sp: &Span, ds: Option<DataStream>) {
    let mut first = true;
    let out = &mut s.doc;
    out.push(b'{');
    key(out, &mut first, "@timestamp");
    write_rfc3339(out, sp.start_time_unix_nano);
    write_ids(
        out,
        &mut first,
        ("trace.id", &sp.trace_id),
        ("span.id", &sp.span_id),
    );
    if attrs::is_valid_span_id(&sp.parent_span_id) {
        key(out, &mut first, "parent.id");
        write_json_str(out, &attrs::id_hex(&sp.parent_span_id));
    }
    key(out, &mut first, "span.name");
    write_json_str(out, &sp.name);
    key(out, &mut first, "span.kind");
    write_json_str(out, kind_name(sp.kind));
    key(out, &mut first, "event.duration");
    write_u64(
        out,
        sp.end_time_unix_nano
            .saturating_sub(sp.start_time_unix_nano),
    );
    key(out, &mut first, "event.outcome");
    let code = sp.status.as_ref().map_or(0, |s| s.code);
    write_json_str(
        out,
        match status_name(code) {
            "Ok" => "success",
            "Error" => "failure",
            _ => "unknown",
        },
    );
    if let Some(m) = sp
        .status
        .as_ref()
        .map(|s| s.message.as_str())
        .filter(|m| !m.is_empty())
    {
        key(out, &mut first, "event.reason");
        write_json_str(out, m);
    }
    if let Some(ds) = &ds {
        write_data_stream(out, &mut first, ds);
    }
    ecs_common(s, &mut first, ctx, &sp.attributes);
    s.doc.push(b'}');
}
