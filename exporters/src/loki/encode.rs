//! OTLP log records → Loki pushes: streams keyed by their label set, entries
//! sorted by time within each stream, lines in the configured format,
//! structured metadata, pushes cut at a byte cap and partitioned by tenant.

use super::config::{
    is_valid_tenant, LineFormat, LokiConfig, MetadataConfig, Protocol, DEFAULT_MAX_LABELS,
};
use confluo_pipeline::attrs;
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
pub fn normalize_label_name(name: &str) -> Cow<'_, str> {
    if name.is_empty() || super::config::is_valid_label_name(name) && !name.starts_with('_') {
        return Cow::Borrowed(name);
    }
    if name.starts_with("__") && super::config::is_valid_label_name(name) {
        return Cow::Borrowed(name);
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
    Cow::Owned(out)
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

/// The (group, stream, record labels) last seen under one resource, most
/// recent last: records of a resource share a few label sets (the levels,
/// mostly) and switch between them often, and a known set builds no
/// selector. Bounded, as a label from a high-cardinality attribute would
/// make every set new.
type SeenStreams<'a> = Vec<(usize, usize, Vec<(&'a str, Cow<'a, str>)>)>;
const MAX_SEEN_STREAMS: usize = 16;

/// One stream's entries, already in wire form (protobuf `EntryAdapter`
/// bodies, or JSON `["ns","line",{…}]` arrays) back to back in `buf`: no
/// per-entry allocation. `idx` locates each entry, for sorting and cutting.
struct StreamBuf {
    selector: String,
    labels: Vec<(String, String)>,
    buf: Vec<u8>,
    /// (timestamp, start, end) of each entry in `buf`.
    idx: Vec<(u64, usize, usize)>,
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
    meta: Vec<(String, String)>,
}

/// What one entry is made of, borrowed for the time it is written.
struct EntryParts<'x> {
    ts: u64,
    line: &'x [u8],
    trace_id: Option<&'x str>,
    span_id: Option<&'x str>,
    meta: &'x [(Cow<'x, str>, Cow<'x, str>)],
    resource_meta: &'x [(String, String)],
}

impl EntryParts<'_> {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let ids = [("trace_id", self.trace_id), ("span_id", self.span_id)]
            .into_iter()
            .filter_map(|(n, v)| Some((n, v?)));
        ids.chain(self.meta.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
            .chain(
                self.resource_meta
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
    }
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
            let label = label
                .clone()
                .unwrap_or_else(|| normalize_label_name(attr).into_owned());
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
                meta.push((label.clone(), value.into_owned()));
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
                meta.push((
                    normalize_label_name(&kv.key).into_owned(),
                    text(v).into_owned(),
                ));
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
        let json = self.protocol == Protocol::PushJson;
        let mut groups: Vec<Group> = Vec::new();
        let mut dropped = Dropped::default();
        let empty = Vec::new();
        let mut selector = String::with_capacity(128);
        // Scratch space reused by every record: no allocation per entry.
        let mut extra: Vec<(&str, Cow<str>)> = Vec::new();
        let mut meta: Vec<(Cow<str>, Cow<str>)> = Vec::new();
        let mut line: Vec<u8> = Vec::with_capacity(512);
        for rl in rls {
            let res_attrs = rl.resource.as_ref().map_or(&empty, |r| &r.attributes);
            let res = self.resource_ctx(res_attrs);
            let mut seen: SeenStreams = Vec::new();
            for sl in &rl.scope_logs {
                for rec in &sl.log_records {
                    let tenant = match self.tenant_of(res_attrs, &rec.attributes) {
                        Ok(t) => t,
                        Err(()) => {
                            dropped.invalid_tenant += 1;
                            continue;
                        }
                    };
                    meta.clear();
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
                            meta.push((Cow::Borrowed(name), value));
                            continue;
                        }
                        counted += usize::from(counts);
                        level_is_label |= name == "level";
                        extra.push((name, value));
                    }
                    if !level_is_label {
                        if let Some(l) = &level {
                            if !meta.iter().any(|(n, _)| n == "level") {
                                meta.push((Cow::Borrowed("level"), l.clone()));
                            }
                        }
                    }
                    line.clear();
                    self.line(rec, &mut line, &mut meta);
                    let mut trace_hex = [0u8; 32];
                    let mut span_hex = [0u8; 16];
                    let (trace_id, span_id) = if self.meta.trace_context {
                        (
                            attrs::is_valid_trace_id(&rec.trace_id)
                                .then(|| hex_into(&rec.trace_id, &mut trace_hex)),
                            attrs::is_valid_span_id(&rec.span_id)
                                .then(|| hex_into(&rec.span_id, &mut span_hex)),
                        )
                    } else {
                        (None, None)
                    };
                    let ts = match (rec.time_unix_nano, rec.observed_time_unix_nano) {
                        (0, 0) => now_ns,
                        (0, t) | (t, _) => t,
                    };
                    let parts = EntryParts {
                        ts,
                        line: &line,
                        trace_id,
                        span_id,
                        meta: &meta,
                        resource_meta: &res.meta,
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
                    let known = seen
                        .iter()
                        .rev()
                        .find(|(g, _, e)| *g == gi && *e == extra)
                        .map(|(_, s, _)| *s);
                    let si = match known {
                        Some(si) => si,
                        None => {
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
                                        buf: Vec::new(),
                                        idx: Vec::new(),
                                    });
                                    g.index.insert(selector.clone(), g.streams.len() - 1);
                                    g.streams.len() - 1
                                }
                            };
                            if seen.len() == MAX_SEEN_STREAMS {
                                seen.remove(0);
                            }
                            seen.push((gi, si, extra.clone()));
                            si
                        }
                    };
                    let st = &mut groups[gi].streams[si];
                    let start = st.buf.len();
                    if json {
                        write_json_entry(&mut st.buf, &parts);
                    } else {
                        write_proto_entry(&mut st.buf, &parts);
                    }
                    st.idx.push((ts, start, st.buf.len()));
                }
            }
        }
        (groups, dropped)
    }

    /// Writes the line of a record into `out`; attributes that do not go
    /// into the line (raw format) are added to `meta`.
    fn line<'a>(
        &self,
        rec: &'a LogRecord,
        out: &mut Vec<u8>,
        meta: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    ) {
        let is_label = |key: &str| self.attr_labels.iter().any(|(a, _)| a == key);
        match self.line_format {
            LineFormat::Json => write_json_line(out, rec.body.as_ref(), &rec.attributes, &is_label),
            LineFormat::Logfmt => {
                write_logfmt_line(out, rec.body.as_ref(), &rec.attributes, &is_label)
            }
            LineFormat::Raw => {
                for kv in &rec.attributes {
                    if is_label(&kv.key) {
                        continue;
                    }
                    if let Some(v) = &kv.value {
                        meta.push((normalize_label_name(&kv.key), text(v)));
                    }
                }
                if let Some(b) = &rec.body {
                    out.extend_from_slice(text(b).as_bytes());
                }
            }
        }
    }

    /// Sorts each stream's entries by time and cuts a tenant's streams into
    /// pushes of at most `max_push_bytes` (a single larger entry goes alone).
    fn serialize(&self, g: Group, out: &mut Vec<Push>) {
        let json = self.protocol == Protocol::PushJson;
        let max = self.max_push_bytes;
        let head_of = |s: &StreamBuf| {
            if json {
                JSON_PREFIX.len()
                    + 32
                    + s.labels
                        .iter()
                        .map(|(n, v)| n.len() + v.len() + 6)
                        .sum::<usize>()
            } else {
                // Stream tag and length, labels field.
                1 + 10 + 1 + varint_len(s.selector.len() as u64) + s.selector.len()
            }
        };
        // An upper bound of what is left to write (an entry's key and length
        // take at most 6 bytes, a JSON entry 1): each push body is sized once
        // instead of doubling its way up (a copy and fresh pages each time).
        let mut left: usize = g
            .streams
            .iter()
            .map(|s| head_of(s) + s.buf.len() + 6 * s.idx.len())
            .sum::<usize>()
            + JSON_SUFFIX.len();
        let mut body: Vec<u8> = Vec::with_capacity(left.min(max));
        let mut items = 0usize;
        let flush =
            |body: &mut Vec<u8>, items: &mut usize, left: &mut usize, out: &mut Vec<Push>| {
                if *items == 0 {
                    return;
                }
                if json {
                    body.extend_from_slice(JSON_SUFFIX);
                }
                *left = left.saturating_sub(body.len());
                out.push(Push {
                    tenant: g.tenant.clone(),
                    items: std::mem::take(items),
                    body: std::mem::replace(body, Vec::with_capacity((*left).min(max))),
                });
            };
        for mut s in g.streams {
            // Stable, and skipped when already in order (the usual case).
            if s.idx.windows(2).any(|w| w[0].0 > w[1].0) {
                s.idx.sort_by_key(|e| e.0);
            }
            let head = head_of(&s);
            let mut first = 0;
            let mut part = 0;
            for k in 0..s.idx.len() {
                let (_, a, b) = s.idx[k];
                let size = if json {
                    b - a + 1
                } else {
                    1 + varint_len((b - a) as u64) + (b - a)
                };
                if body.len() + head + part + size > max && (k > first || !body.is_empty()) {
                    if k > first {
                        emit_part(&mut body, json, &s, &s.idx[first..k]);
                        items += k - first;
                    }
                    flush(&mut body, &mut items, &mut left, out);
                    first = k;
                    part = 0;
                }
                part += size;
            }
            if first < s.idx.len() {
                emit_part(&mut body, json, &s, &s.idx[first..]);
                items += s.idx.len() - first;
            }
        }
        left = 0;
        flush(&mut body, &mut items, &mut left, out);
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

/// Lower-case hex of an id into `buf` (32 or 16 bytes), as a `&str`.
fn hex_into<'b>(id: &[u8], buf: &'b mut [u8]) -> &'b str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = id.len().min(buf.len() / 2);
    for (i, b) in id[..n].iter().enumerate() {
        buf[2 * i] = HEX[(b >> 4) as usize];
        buf[2 * i + 1] = HEX[(b & 15) as usize];
    }
    std::str::from_utf8(&buf[..2 * n]).unwrap_or_default()
}

pub const JSON_PREFIX: &[u8] = br#"{"streams":["#;
pub const JSON_SUFFIX: &[u8] = b"]}";

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length of a `string` field on the wire (omitted when empty, as proto3).
fn str_field_len(s: &[u8]) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + varint_len(s.len() as u64) + s.len()
    }
}

fn put_str_field(out: &mut Vec<u8>, key: u8, s: &[u8]) {
    if !s.is_empty() {
        out.push(key);
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

// Wire keys (field number << 3 | wire type) of `logproto`, see proto.rs.
const KEY_1_LEN: u8 = 0x0a; // PushRequest.streams, StreamAdapter.labels, EntryAdapter.timestamp, LabelPair.name
const KEY_2_LEN: u8 = 0x12; // StreamAdapter.entries, EntryAdapter.line, LabelPair.value
const KEY_3_LEN: u8 = 0x1a; // EntryAdapter.structuredMetadata
const KEY_1_VARINT: u8 = 0x08; // Timestamp.seconds
const KEY_2_VARINT: u8 = 0x10; // Timestamp.nanos

/// An `EntryAdapter` message body (without its own key and length).
fn write_proto_entry(out: &mut Vec<u8>, e: &EntryParts) {
    let secs = e.ts / 1_000_000_000;
    let nanos = e.ts % 1_000_000_000;
    let ts_len = if secs > 0 { 1 + varint_len(secs) } else { 0 }
        + if nanos > 0 { 1 + varint_len(nanos) } else { 0 };
    out.push(KEY_1_LEN);
    put_varint(out, ts_len as u64);
    if secs > 0 {
        out.push(KEY_1_VARINT);
        put_varint(out, secs);
    }
    if nanos > 0 {
        out.push(KEY_2_VARINT);
        put_varint(out, nanos);
    }
    put_str_field(out, KEY_2_LEN, e.line);
    for (name, value) in e.pairs() {
        let len = str_field_len(name.as_bytes()) + str_field_len(value.as_bytes());
        out.push(KEY_3_LEN);
        put_varint(out, len as u64);
        put_str_field(out, KEY_1_LEN, name.as_bytes());
        put_str_field(out, KEY_2_LEN, value.as_bytes());
    }
}

/// A JSON push value: `["<ns>","<line>"]` or with `{metadata}` third; the
/// timestamp is a string (a number gets a 400 from Loki).
fn write_json_entry(out: &mut Vec<u8>, e: &EntryParts) {
    out.extend_from_slice(b"[\"");
    write_u64(out, e.ts);
    out.extend_from_slice(b"\",");
    write_json_string(out, &String::from_utf8_lossy(e.line));
    let mut first = true;
    for (name, value) in e.pairs() {
        out.extend_from_slice(if first { b",{" } else { b"," });
        first = false;
        write_json_string(out, name);
        out.push(b':');
        write_json_string(out, value);
    }
    if !first {
        out.push(b'}');
    }
    out.push(b']');
}

/// Appends one stream holding `entries` of `s` to a push body.
fn emit_part(body: &mut Vec<u8>, json: bool, s: &StreamBuf, entries: &[(u64, usize, usize)]) {
    if json {
        if body.is_empty() {
            body.extend_from_slice(JSON_PREFIX);
        } else {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"stream":{"#);
        for (i, (n, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            write_json_string(body, n);
            body.push(b':');
            write_json_string(body, v);
        }
        body.extend_from_slice(br#"},"values":["#);
        for (i, &(_, a, b)) in entries.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&s.buf[a..b]);
        }
        body.extend_from_slice(b"]}");
    } else {
        let labels = s.selector.as_bytes();
        let content = str_field_len(labels)
            + entries
                .iter()
                .map(|&(_, a, b)| 1 + varint_len((b - a) as u64) + (b - a))
                .sum::<usize>();
        body.push(KEY_1_LEN);
        put_varint(body, content as u64);
        put_str_field(body, KEY_1_LEN, labels);
        for &(_, a, b) in entries {
            body.push(KEY_2_LEN);
            put_varint(body, (b - a) as u64);
            body.extend_from_slice(&s.buf[a..b]);
        }
    }
}

/// Whether any byte of `w` is `"`, `\` or a control character (SWAR: eight
/// bytes per test, the usual case being none).
#[inline]
fn needs_escape(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(LO * 0x20) & !w & HI;
    let q = w ^ (LO * u64::from(b'"'));
    let quote = q.wrapping_sub(LO) & !q & HI;
    let bs = w ^ (LO * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(LO) & !bs & HI;
    (control | quote | backslash) != 0
}

/// A JSON string (RFC 8259), scanning eight bytes at a time: log lines are
/// mostly plain text, and this is the hottest loop of the encoder.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    let escape = |out: &mut Vec<u8>, j: usize, start: &mut usize| {
        let b = bytes[j];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[*start..j]);
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
                *start = j + 1;
                return;
            }
            _ => return,
        };
        out.extend_from_slice(&bytes[*start..j]);
        out.extend_from_slice(short);
        *start = j + 1;
    };
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        if needs_escape(u64::from_le_bytes(word)) {
            for j in i..i + 8 {
                escape(out, j, &mut start);
            }
        }
        i += 8;
    }
    // The tail, byte by byte: copying it into a padded word and loading
    // that as a u64 stalls on store-to-load forwarding, which cost more
    // than the whole scan of short strings (most keys and values).
    if bytes[i..]
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
    {
        for j in i..bytes.len() {
            escape(out, j, &mut start);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Decimal digits of an integer, without `fmt` (its machinery cost more
/// than the digits on lines full of ids, counts and status codes).
fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A float as `Display` writes it (shortest round-trip digits, never an
/// exponent), formatted on the stack: `write!` into the Vec goes through
/// `io::Write`'s adapter for every piece.
fn write_f64(out: &mut Vec<u8>, d: f64) {
    struct Stack {
        buf: [u8; 48],
        len: usize,
    }
    impl std::fmt::Write for Stack {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut st = Stack {
        buf: [0; 48],
        len: 0,
    };
    if std::fmt::Write::write_fmt(&mut st, format_args!("{d}")).is_ok() {
        out.extend_from_slice(&st.buf[..st.len]);
    } else {
        // Very large or very small magnitudes print hundreds of digits.
        use std::io::Write;
        let _ = write!(out, "{d}");
    }
}

/// A value as natural JSON (as `attrs::write_json`), with the fast string
/// writer and no allocation for numbers.
pub fn write_json_value(out: &mut Vec<u8>, v: &AnyValue) {
    match &v.value {
        Some(Value::StringValue(s)) => write_json_string(out, s),
        Some(Value::IntValue(i)) => write_i64(out, *i),
        Some(Value::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Value::DoubleValue(d)) if d.is_finite() => write_f64(out, *d),
        Some(Value::ArrayValue(a)) => {
            out.push(b'[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(out, item);
            }
            out.push(b']');
        }
        Some(Value::KvlistValue(kv)) => {
            out.push(b'{');
            for (i, e) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, &e.key);
                out.push(b':');
                match &e.value {
                    Some(v) => write_json_value(out, v),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b'}');
        }
        _ => attrs::write_json(v, out),
    }
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
        write_json_string(out, key);
        out.push(b':');
        match v {
            Some(v) => write_json_value(out, v),
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
