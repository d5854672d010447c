//! OTLP log records → Loki pushes: streams keyed by their label set, entries
//! sorted by time within each stream, lines in the configured format,
//! structured metadata, pushes cut at a byte cap and partitioned by tenant.

use super::config::{
    is_valid_tenant, LineFormat, LokiConfig, MetadataConfig, Protocol, DEFAULT_MAX_LABELS,
};
use super::proto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use confluo_pipeline::attrs;
use confluo_pipeline::otlp_json::write_json_str;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, KeyValue};
use confluo_pipeline::proto::logs::{LogRecord, ResourceLogs};
use confluo_pipeline::Signal;
use prost::Message;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Loki does not count `service_name` against `max_label_names_per_series`.
const SERVICE_NAME: &str = "service_name";
/// Loki's OTLP ingestion names a stream without `service.name` so.
const UNKNOWN_SERVICE: &str = "unknown_service";

/// One encoded push (uncompressed) for one tenant.
#[derive(Debug)]
pub struct Push {
    pub tenant: Option<Arc<str>>,
    pub items: usize,
    pub body: Vec<u8>,
}

/// Records the encoder dropped on purpose.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// `tenant.from_attribute` gave a value Loki would refuse, and there is
    /// no `tenant.id` to fall back to.
    pub invalid_tenant: usize,
}

/// Label names as Loki's OTLP ingestion normalises them (Prometheus
/// `otlptranslator.NormalizeLabel`, which Loki's distributor also applies to
/// structured metadata names): every character outside `[a-zA-Z0-9_]`
/// becomes `_`, a leading digit gets `key_`, a single leading `_` gets `key`.
pub fn normalize_label_name(name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(name.len() + 4);
    let first = name.as_bytes()[0];
    if first.is_ascii_digit() {
        out.push_str("key_");
    } else if first == b'_' && !name.starts_with("__") {
        out.push_str("key");
    }
    for c in name.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    out
}

/// Appends a Loki/PromQL selector `{a="x", b="y"}`; `labels` sorted by name.
/// Values are escaped as the PromQL lexer unquotes them (a raw newline would
/// end the string).
pub fn write_selector(out: &mut String, labels: &[(&str, &str)]) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// The `level` label of a record: from the severity number's range (OTel
/// log data model), else the severity text in lower case.
pub fn level_of(rec: &LogRecord) -> Option<Cow<'_, str>> {
    let named = match rec.severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => {
            let text = rec.severity_text.trim();
            if text.is_empty() {
                return None;
            }
            return Some(match text.to_ascii_lowercase().as_str() {
                "warning" => Cow::Borrowed("warn"),
                "err" => Cow::Borrowed("error"),
                "crit" | "critical" => Cow::Borrowed("critical"),
                _ if text.bytes().all(|b| b.is_ascii_lowercase()) => Cow::Borrowed(text),
                lower => Cow::Owned(lower.to_string()),
            });
        }
    };
    Some(Cow::Borrowed(named))
}

/// A value as label / metadata text, without copying strings.
fn text(v: &AnyValue) -> Cow<'_, str> {
    match &v.value {
        Some(Value::StringValue(s)) => Cow::Borrowed(s),
        _ => Cow::Owned(attrs::to_text(v)),
    }
}

struct StreamBuf {
    selector: String,
    labels: Vec<(String, String)>,
    entries: Vec<EntryAdapter>,
}

struct Group {
    tenant: Option<Arc<str>>,
    index: HashMap<String, usize>,
    streams: Vec<StreamBuf>,
}

/// The labels and metadata one resource gives every record under it.
struct ResourceCtx<'a> {
    /// Static + resource labels, sorted by name, unique.
    labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// How many of `labels` count against `max_labels`.
    counted: usize,
    meta: Vec<LabelPairAdapter>,
}

/// Turns batches into pushes. Built once from the config.
#[derive(Debug)]
pub struct Encoder {
    protocol: Protocol,
    line_format: LineFormat,
    max_labels: usize,
    max_push_bytes: usize,
    static_labels: Vec<(String, String)>,
    /// (attribute key, label name), in priority order.
    resource_labels: Vec<(String, String)>,
    attr_labels: Vec<(String, String)>,
    level: bool,
    meta: MetadataConfig,
    tenant_id: Option<Arc<str>>,
    tenant_attr: Option<String>,
}

impl Encoder {
    pub fn new(cfg: &LokiConfig) -> Encoder {
        let resolve = |(attr, label): &(String, Option<String>)| {
            let label = label.clone().unwrap_or_else(|| normalize_label_name(attr));
            (attr.clone(), label)
        };
        let tenant = cfg.tenant.clone().unwrap_or_default();
        Encoder {
            protocol: cfg.protocol,
            line_format: cfg.line_format,
            max_labels: if cfg.max_labels == 0 {
                DEFAULT_MAX_LABELS
            } else {
                cfg.max_labels
            },
            max_push_bytes: cfg.max_push_bytes.0.max(1024) as usize,
            static_labels: cfg
                .labels
                .static_labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            resource_labels: cfg.labels.resource_labels().0.iter().map(resolve).collect(),
            attr_labels: cfg.labels.attributes.0.iter().map(resolve).collect(),
            level: cfg.labels.level,
            meta: cfg.structured_metadata.clone(),
            tenant_id: tenant.id.map(Arc::from),
            tenant_attr: tenant.from_attribute,
        }
    }

    /// Encodes a signal (only logs are pushed). `now_ns` stamps records that
    /// carry neither a time nor an observed time.
    pub fn encode(&self, signal: &Signal, now_ns: u64) -> (Vec<Push>, Dropped) {
        let Signal::Logs(rls) = signal else {
            return (Vec::new(), Dropped::default());
        };
        match self.protocol {
            Protocol::Otlp => self.encode_otlp(rls),
            _ => {
                let (groups, dropped) = self.group(rls, now_ns);
                let mut pushes = Vec::new();
                for g in groups {
                    self.serialize(g, &mut pushes);
                }
                (pushes, dropped)
            }
        }
    }

    /// The tenant of a record: `Err` when the attribute holds an invalid
    /// tenant and there is nothing to fall back to.
    fn tenant_of<'a>(
        &'a self,
        res: &'a [KeyValue],
        rec: &'a [KeyValue],
    ) -> Result<Option<Cow<'a, str>>, ()> {
        let Some(key) = &self.tenant_attr else {
            return Ok(self.tenant_id.as_deref().map(Cow::Borrowed));
        };
        let fallback = || Ok(self.tenant_id.as_deref().map(Cow::Borrowed));
        match attrs::get(rec, key).or_else(|| attrs::get(res, key)) {
            None => fallback(),
            Some(v) => {
                let t = text(v);
                if is_valid_tenant(&t) {
                    Ok(Some(t))
                } else if self.tenant_id.is_some() {
                    fallback()
                } else {
                    Err(())
                }
            }
        }
    }

    fn resource_ctx<'a>(&'a self, res: &'a [KeyValue]) -> ResourceCtx<'a> {
        let mut labels: Vec<(Cow<'a, str>, Cow<'a, str>)> =
            Vec::with_capacity(self.static_labels.len() + 4);
        let mut counted = 0;
        let mut meta = Vec::new();
        for (k, v) in &self.static_labels {
            labels.push((Cow::Borrowed(k), Cow::Borrowed(v)));
            counted += usize::from(k != SERVICE_NAME);
        }
        for (attr, label) in &self.resource_labels {
            let value = match attrs::get(res, attr) {
                Some(v) => text(v),
                None if attr == "service.name" => Cow::Borrowed(UNKNOWN_SERVICE),
                None => continue,
            };
            if value.is_empty() {
                continue; // Loki drops empty label values.
            }
            let counts = label != SERVICE_NAME;
            if labels.iter().any(|(n, _)| n == label) || (counts && counted >= self.max_labels) {
                // A duplicate name, or one label too many: keep the value.
                meta.push(LabelPairAdapter {
                    name: label.clone(),
                    value: value.into_owned(),
                });
                continue;
            }
            counted += usize::from(counts);
            labels.push((Cow::Borrowed(label), value));
        }
        if self.meta.resource_attributes {
            for kv in res {
                if self.resource_labels.iter().any(|(a, _)| *a == kv.key) {
                    continue;
                }
                let Some(v) = &kv.value else { continue };
                meta.push(LabelPairAdapter {
                    name: normalize_label_name(&kv.key),
                    value: text(v).into_owned(),
                });
            }
        }
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        ResourceCtx {
            labels,
            counted,
            meta,
        }
    }

    fn group(&self, rls: &[ResourceLogs], now_ns: u64) -> (Vec<Group>, Dropped) {
        let mut groups: Vec<Group> = Vec::new();
        let mut dropped = Dropped::default();
        let empty = Vec::new();
        let mut selector = String::with_capacity(128);
        // Labels a record adds to its resource's: (name, value).
        let mut extra: Vec<(&str, Cow<str>)> = Vec::new();
        for rl in rls {
            let res_attrs = rl.resource.as_ref().map_or(&empty, |r| &r.attributes);
            let res = self.resource_ctx(res_attrs);
            // The previous record's stream, reused while its labels repeat.
            let mut last: Option<(usize, usize, Vec<(&str, Cow<str>)>)> = None;
            for sl in &rl.scope_logs {
                for rec in &sl.log_records {
                    let tenant = match self.tenant_of(res_attrs, &rec.attributes) {
                        Ok(t) => t,
                        Err(()) => {
                            dropped.invalid_tenant += 1;
                            continue;
                        }
                    };
                    let mut meta: Vec<LabelPairAdapter> = Vec::with_capacity(res.meta.len() + 3);
                    if self.meta.trace_context {
                        if attrs::is_valid_trace_id(&rec.trace_id) {
                            meta.push(pair("trace_id", hex::encode(&rec.trace_id)));
                        }
                        if attrs::is_valid_span_id(&rec.span_id) {
                            meta.push(pair("span_id", hex::encode(&rec.span_id)));
                        }
                    }
                    // The record's own labels, capped and unique.
                    extra.clear();
                    let mut counted = res.counted;
                    let mut level_is_label = false;
                    let level = level_of(rec);
                    let attr_candidates = self.attr_labels.iter().filter_map(|(attr, label)| {
                        let v = attrs::get(&rec.attributes, attr).map(text)?;
                        (!v.is_empty()).then_some((label.as_str(), v))
                    });
                    let level_candidate =
                        level.clone().filter(|_| self.level).map(|l| ("level", l));
                    for (name, value) in attr_candidates.chain(level_candidate) {
                        let taken = res.labels.iter().any(|(n, _)| n == name)
                            || extra.iter().any(|(n, _)| *n == name);
                        let counts = name != SERVICE_NAME;
                        if taken || (counts && counted >= self.max_labels) {
                            meta.push(pair(name, value.into_owned()));
                            continue;
                        }
                        counted += usize::from(counts);
                        level_is_label |= name == "level";
                        extra.push((name, value));
                    }
                    if !level_is_label {
                        if let Some(l) = &level {
                            if !meta.iter().any(|p| p.name == "level") {
                                meta.push(pair("level", l.to_string()));
                            }
                        }
                    }
                    let line = self.line(rec, &mut meta);
                    meta.extend(res.meta.iter().cloned());
                    let ts = match (rec.time_unix_nano, rec.observed_time_unix_nano) {
                        (0, 0) => now_ns,
                        (0, t) | (t, _) => t,
                    };
                    let entry = EntryAdapter {
                        timestamp: Some(Timestamp::from_unix_nanos(ts)),
                        line,
                        structured_metadata: meta,
                    };

                    let gi = match groups
                        .iter()
                        .position(|g| g.tenant.as_deref() == tenant.as_deref())
                    {
                        Some(i) => i,
                        None => {
                            groups.push(Group {
                                tenant: tenant.as_deref().map(Arc::from),
                                index: HashMap::new(),
                                streams: Vec::new(),
                            });
                            groups.len() - 1
                        }
                    };
                    if let Some((lg, ls, lextra)) = &last {
                        if *lg == gi && *lextra == extra {
                            groups[gi].streams[*ls].entries.push(entry);
                            continue;
                        }
                    }
                    let mut merged: Vec<(&str, &str)> =
                        Vec::with_capacity(res.labels.len() + extra.len() + 1);
                    merged.extend(res.labels.iter().map(|(n, v)| (n.as_ref(), v.as_ref())));
                    merged.extend(extra.iter().map(|(n, v)| (*n, v.as_ref())));
                    if merged.is_empty() {
                        // Loki refuses a stream without labels.
                        merged.push((SERVICE_NAME, UNKNOWN_SERVICE));
                    }
                    merged.sort_by(|a, b| a.0.cmp(b.0));
                    selector.clear();
                    write_selector(&mut selector, &merged);
                    let g = &mut groups[gi];
                    let si = match g.index.get(selector.as_str()) {
                        Some(&i) => i,
                        None => {
                            g.streams.push(StreamBuf {
                                selector: selector.clone(),
                                labels: merged
                                    .iter()
                                    .map(|(n, v)| (n.to_string(), v.to_string()))
                                    .collect(),
                                entries: Vec::new(),
                            });
                            g.index.insert(selector.clone(), g.streams.len() - 1);
                            g.streams.len() - 1
                        }
                    };
                    g.streams[si].entries.push(entry);
                    last = Some((gi, si, extra.clone()));
                }
            }
        }
        for g in &mut groups {
            for s in &mut g.streams {
                sort_entries(&mut s.entries);
            }
        }
        (groups, dropped)
    }

    /// The line of a record; attributes that do not go into the line (raw
    /// format) are added to `meta`.
    fn line(&self, rec: &LogRecord, meta: &mut Vec<LabelPairAdapter>) -> String {
        let is_label = |key: &str| self.attr_labels.iter().any(|(a, _)| a == key);
        let mut out: Vec<u8> = Vec::new();
        match self.line_format {
            LineFormat::Json => {
                out.reserve(64 + rec.attributes.len() * 32);
                write_json_line(&mut out, rec.body.as_ref(), &rec.attributes, &is_label);
            }
            LineFormat::Logfmt => {
                out.reserve(64 + rec.attributes.len() * 32);
                write_logfmt_line(&mut out, rec.body.as_ref(), &rec.attributes, &is_label);
            }
            LineFormat::Raw => {
                for kv in &rec.attributes {
                    if is_label(&kv.key) {
                        continue;
                    }
                    if let Some(v) = &kv.value {
                        meta.push(LabelPairAdapter {
                            name: normalize_label_name(&kv.key),
                            value: text(v).into_owned(),
                        });
                    }
                }
                return rec.body.as_ref().map(attrs::to_text).unwrap_or_default();
            }
        }
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Cuts a tenant's streams into pushes under `max_push_bytes`.
    fn serialize(&self, g: Group, out: &mut Vec<Push>) {
        let json = self.protocol == Protocol::PushJson;
        let mut batch = PushBuilder::new(json, g.tenant.clone());
        for s in g.streams {
            let overhead = if json {
                32 + s
                    .labels
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 6)
                    .sum::<usize>()
            } else {
                s.selector.len() + 8
            };
            let mut part: Vec<EntryAdapter> = Vec::new();
            let mut part_size = 0;
            for e in s.entries {
                let size = if json {
                    json_entry_size(&e)
                } else {
                    e.encoded_len() + 6
                };
                let fits = batch.size + overhead + part_size + size <= self.max_push_bytes;
                if !fits && (!part.is_empty() || batch.size > 0) {
                    if !part.is_empty() {
                        batch.add(&s.selector, &s.labels, std::mem::take(&mut part));
                        batch.size += overhead + part_size;
                    }
                    out.push(batch.finish());
                    batch = PushBuilder::new(json, g.tenant.clone());
                    part_size = 0;
                }
                part_size += size;
                part.push(e);
            }
            if !part.is_empty() {
                batch.add(&s.selector, &s.labels, part);
                batch.size += overhead + part_size;
            }
        }
        if batch.items > 0 {
            out.push(batch.finish());
        }
    }

    /// Loki's OTLP endpoint: export requests, one per tenant (taken from
    /// resource attributes only: records are not split out of a resource).
    fn encode_otlp(&self, rls: &[ResourceLogs]) -> (Vec<Push>, Dropped) {
        let mut dropped = Dropped::default();
        let empty = Vec::new();
        let mut open: Vec<Push> = Vec::new();
        let mut out = Vec::new();
        for rl in rls {
            let items: usize = rl.scope_logs.iter().map(|s| s.log_records.len()).sum();
            let res_attrs = rl.resource.as_ref().map_or(&empty, |r| &r.attributes);
            let tenant = match self.tenant_of(res_attrs, &[]) {
                Ok(t) => t.map(|t| Arc::<str>::from(t.as_ref())),
                Err(()) => {
                    dropped.invalid_tenant += items;
                    continue;
                }
            };
            let i = match open.iter().position(|p| p.tenant == tenant) {
                Some(i) => i,
                None => {
                    open.push(Push {
                        tenant,
                        items: 0,
                        body: Vec::new(),
                    });
                    open.len() - 1
                }
            };
            let len = rl.encoded_len() + 6;
            if !open[i].body.is_empty() && open[i].body.len() + len > self.max_push_bytes {
                let tenant = open[i].tenant.clone();
                out.push(std::mem::replace(
                    &mut open[i],
                    Push {
                        tenant,
                        items: 0,
                        body: Vec::new(),
                    },
                ));
            }
            // ExportLogsServiceRequest.resource_logs = 1, written from a
            // borrow: no copy of the batch.
            prost::encoding::message::encode(1, rl, &mut open[i].body);
            open[i].items += items;
        }
        out.extend(open.into_iter().filter(|p| p.items > 0));
        (out, dropped)
    }
}

fn pair(name: &str, value: String) -> LabelPairAdapter {
    LabelPairAdapter {
        name: name.to_string(),
        value,
    }
}

/// Stable sort by timestamp, skipped when already in order (the usual case).
pub fn sort_entries(entries: &mut [EntryAdapter]) {
    if entries.windows(2).any(|w| w[0].timestamp > w[1].timestamp) {
        entries.sort_by_key(|e| e.timestamp);
    }
}

fn json_entry_size(e: &EntryAdapter) -> usize {
    // Escaping can grow a line; an eighth is a fair allowance for log text.
    e.line.len()
        + e.line.len() / 8
        + 32
        + e.structured_metadata
            .iter()
            .map(|p| p.name.len() + p.value.len() + 6)
            .sum::<usize>()
}

/// Builds one push body.
struct PushBuilder {
    json: bool,
    tenant: Option<Arc<str>>,
    /// Estimated bytes so far.
    size: usize,
    items: usize,
    proto: PushRequest,
    body: Vec<u8>,
}

impl PushBuilder {
    fn new(json: bool, tenant: Option<Arc<str>>) -> PushBuilder {
        PushBuilder {
            json,
            tenant,
            size: 0,
            items: 0,
            proto: PushRequest::default(),
            body: Vec::new(),
        }
    }

    fn add(&mut self, selector: &str, labels: &[(String, String)], entries: Vec<EntryAdapter>) {
        self.items += entries.len();
        if self.json {
            if self.body.is_empty() {
                self.body.extend_from_slice(JSON_PREFIX);
            } else {
                self.body.push(b',');
            }
            write_json_stream(&mut self.body, labels, &entries);
        } else {
            self.proto.streams.push(StreamAdapter {
                labels: selector.to_string(),
                entries,
                hash: 0,
            });
        }
    }

    fn finish(self) -> Push {
        let body = if self.json {
            let mut body = self.body;
            if body.is_empty() {
                body.extend_from_slice(JSON_PREFIX);
            }
            body.extend_from_slice(JSON_SUFFIX);
            body
        } else {
            self.proto.encode_to_vec()
        };
        Push {
            tenant: self.tenant,
            items: self.items,
            body,
        }
    }
}

pub const JSON_PREFIX: &[u8] = br#"{"streams":["#;
pub const JSON_SUFFIX: &[u8] = b"]}";

/// `{"stream":{labels},"values":[["<ns>","<line>",{metadata}],…]}`; the
/// timestamp is a string (a number gets a 400 from Loki).
fn write_json_stream(out: &mut Vec<u8>, labels: &[(String, String)], entries: &[EntryAdapter]) {
    out.extend_from_slice(br#"{"stream":{"#);
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, n);
        out.push(b':');
        write_json_str(out, v);
    }
    out.extend_from_slice(br#"},"values":["#);
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"[\"");
        out.extend_from_slice(e.unix_nanos().to_string().as_bytes());
        out.extend_from_slice(b"\",");
        write_json_str(out, &e.line);
        if !e.structured_metadata.is_empty() {
            out.extend_from_slice(b",{");
            for (j, p) in e.structured_metadata.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_json_str(out, &p.name);
                out.push(b':');
                write_json_str(out, &p.value);
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
}

/// The `json` line: the body's keys when it is a map, else `"body"`, then
/// the record attributes that are not labels.
pub fn write_json_line(
    out: &mut Vec<u8>,
    body: Option<&AnyValue>,
    attributes: &[KeyValue],
    skip: &dyn Fn(&str) -> bool,
) {
    out.push(b'{');
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, key: &str, v: Option<&AnyValue>| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, key);
        out.push(b':');
        match v {
            Some(v) => attrs::write_json(v, out),
            None => out.extend_from_slice(b"null"),
        }
    };
    match body.and_then(|b| b.value.as_ref()) {
        None => {}
        Some(Value::KvlistValue(kv)) => {
            for e in &kv.values {
                field(out, &e.key, e.value.as_ref());
            }
        }
        Some(_) => field(out, "body", body),
    }
    for kv in attributes {
        if !skip(&kv.key) {
            field(out, &kv.key, kv.value.as_ref());
        }
    }
    out.push(b'}');
}

/// The `logfmt` line: `msg=<body>` (or the body's keys when it is a map),
/// then the record attributes that are not labels.
pub fn write_logfmt_line(
    out: &mut Vec<u8>,
    body: Option<&AnyValue>,
    attributes: &[KeyValue],
    skip: &dyn Fn(&str) -> bool,
) {
    let pair = |out: &mut Vec<u8>, key: &str, v: Option<&AnyValue>| {
        if !out.is_empty() {
            out.push(b' ');
        }
        write_logfmt_key(out, key);
        out.push(b'=');
        let t = v.map(text).unwrap_or_default();
        write_logfmt_value(out, &t);
    };
    match body.and_then(|b| b.value.as_ref()) {
        None => {}
        Some(Value::KvlistValue(kv)) => {
            for e in &kv.values {
                pair(out, &e.key, e.value.as_ref());
            }
        }
        Some(_) => pair(out, "msg", body),
    }
    for kv in attributes {
        if !skip(&kv.key) {
            pair(out, &kv.key, kv.value.as_ref());
        }
    }
}

fn write_logfmt_key(out: &mut Vec<u8>, key: &str) {
    if key.is_empty() {
        out.push(b'_');
        return;
    }
    for b in key.bytes() {
        out.push(if b <= b' ' || b == b'=' || b == b'"' || b == 0x7f {
            b'_'
        } else {
            b
        });
    }
}

fn write_logfmt_value(out: &mut Vec<u8>, v: &str) {
    let quote = v.is_empty()
        || v.bytes()
            .any(|b| b <= b' ' || b == b'=' || b == b'"' || b == b'\\' || b == 0x7f);
    if !quote {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    out.push(b'"');
    for c in v.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}
