//! Redaction applied to the undecoded OTLP protobuf of a batch.
//!
//! A pipeline that only forwards never decodes what the receivers validated
//! (`confluo_pipeline::otlp_wire`). Decoding the tree to rewrite a few
//! strings and encoding it again costs more than the rules themselves:
//! about 3 µs per 10-attribute span, against a budget of 1 µs for the whole
//! processor. So this walk reads the validated request in place: it borrows
//! every string it checks, copies what it leaves alone as bytes and writes
//! only what changes, into a new request.
//!
//! The rules are the decoded path's own functions (`key_rule`,
//! `scan_attr_str`, `span_name`, …). What the walk does not handle in place —
//! an attribute list with array, map or bytes values, keys of an earlier
//! redaction's summary, unusual field shapes — is decoded alone (that one
//! list) and goes through [`Redactor::process_attrs`] like decoded data. A
//! singular message that occurs twice (prost merges the occurrences) sends
//! the whole batch to the decoded path ([`Fallback`]). A differential test
//! holds the result to decode → `process` → encode.
//!
//! Field order: each message's attribute list is written first and its
//! other fields after it, in their order. Protobuf decoding keeps the order
//! within a field number, not across them, so the decoded result is the
//! same; the summary attributes go last in their list, as the decoded path
//! appends them.

use super::db::{self, AttrMap, Block};
use super::engine::{Audit, Caches, KeyRule, Redactor, Stats, MASK};
use super::Summary;
use confluo_config::SignalKind;
use confluo_pipeline::proto::common::{AnyValue, KeyValue};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use std::collections::HashSet;

/// The data has a shape left to the decoded path (a singular message field
/// that occurs twice), or bytes that were not a validated request.
#[derive(Debug, PartialEq, Eq)]
pub struct Fallback;

type Result<T> = std::result::Result<T, Fallback>;

const WT_VARINT: u8 = 0;
const WT_FIXED64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_START_GROUP: u8 = 3;
const WT_END_GROUP: u8 = 4;
const WT_FIXED32: u8 = 5;

/// Redacts the validated export request `bytes` of `kind`. The new request
/// when anything changed, else None: the received bytes go on as they are.
pub fn process_encoded(
    redactor: &Redactor,
    kind: SignalKind,
    bytes: &[u8],
) -> Result<(Stats, Option<Vec<u8>>)> {
    let mut caches = redactor.caches();
    let mut walk = Walk {
        r: redactor,
        c: &mut caches,
        stats: Stats::default(),
        kvs: Vec::new(),
    };
    // Rewritten strings are rarely longer than the originals by much.
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 64);
    walk.request(kind, bytes, &mut out)?;
    let stats = walk.stats;
    Ok((stats, redactor.changed(&stats).then_some(out)))
}

// ------------------------------------------------------------ reading

/// One field of a message: its number, wire type, all its bytes (key
/// included) and, for a length-delimited field, what the length delimits.
#[derive(Clone, Copy)]
struct Field<'a> {
    tag: u32,
    wt: u8,
    raw: &'a [u8],
    payload: &'a [u8],
}

struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(Fallback)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(Fallback)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.buf.len() - self.pos {
            return Err(Fallback);
        }
        self.pos += n;
        Ok(())
    }

    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        Ok(((key >> 3) as u32, (key & 7) as u8))
    }

    /// Skips a value of wire type `wt` (a group up to its end).
    fn skip_value(&mut self, tag: u32, wt: u8) -> Result<()> {
        match wt {
            WT_VARINT => self.varint().map(drop),
            WT_FIXED64 => self.skip(8),
            WT_FIXED32 => self.skip(4),
            WT_LEN => {
                let len = self.varint()?;
                self.skip(usize::try_from(len).map_err(|_| Fallback)?)
            }
            WT_START_GROUP => loop {
                let (inner, inner_wt) = self.key()?;
                if inner_wt == WT_END_GROUP {
                    return if inner == tag { Ok(()) } else { Err(Fallback) };
                }
                self.skip_value(inner, inner_wt)?;
            },
            _ => Err(Fallback),
        }
    }

    fn next(&mut self) -> Result<Option<Field<'a>>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let (tag, wt) = self.key()?;
        let payload_at = if wt == WT_LEN {
            let len = self.varint()?;
            let at = self.pos;
            self.skip(usize::try_from(len).map_err(|_| Fallback)?)?;
            at
        } else {
            self.skip_value(tag, wt)?;
            self.pos
        };
        Ok(Some(Field {
            tag,
            wt,
            raw: &self.buf[start..self.pos],
            payload: &self.buf[payload_at..self.pos],
        }))
    }
}

fn text(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| Fallback)
}

/// The varint at the end of a fixed-width field (prost stops at 10 bytes).
fn read_varint(bytes: &[u8]) -> Result<u64> {
    fields(bytes).varint()
}

// ------------------------------------------------------------ writing

fn put_bytes_field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_message<M: Message>(out: &mut Vec<u8>, tag: u32, m: &M) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(m.encoded_len() as u64, out);
    m.encode_raw(out);
}

/// `KeyValue { key, value: AnyValue { string_value } }` as field `tag`.
fn put_string_kv(out: &mut Vec<u8>, tag: u32, key: &str, value: &str) {
    let any_len = 1 + encoded_len_varint(value.len() as u64) + value.len();
    let kv_len = 1
        + encoded_len_varint(key.len() as u64)
        + key.len()
        + 1
        + encoded_len_varint(any_len as u64)
        + any_len;
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(kv_len as u64, out);
    put_bytes_field(out, 1, key.as_bytes());
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(any_len as u64, out);
    put_bytes_field(out, 1, value.as_bytes());
}

/// Writes field `tag` whose body `write` appends, then its length in front.
/// The length's room is guessed from the original body's length `hint` and
/// the body moved only when the varint needs another size.
fn nested(
    out: &mut Vec<u8>,
    tag: u32,
    hint: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    encode_key(tag, WireType::LengthDelimited, out);
    let len_at = out.len();
    let reserved = encoded_len_varint(hint as u64);
    out.resize(len_at + reserved, 0);
    let body_at = out.len();
    write(out)?;
    let len = out.len() - body_at;
    let need = encoded_len_varint(len as u64);
    if need > reserved {
        out.resize(out.len() + need - reserved, 0);
        out.copy_within(body_at..body_at + len, len_at + need);
    } else if need < reserved {
        out.copy_within(body_at..body_at + len, len_at + need);
        out.truncate(len_at + need + len);
    }
    let mut v = len as u64;
    for b in &mut out[len_at..len_at + need] {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    out[len_at + need - 1] &= 0x7f;
    Ok(())
}

// ------------------------------------------------------------ attributes

/// An attribute value, as far as the in-place walk is concerned.
#[derive(Clone, Copy)]
enum Val<'a> {
    /// No `value` field.
    Absent,
    Str(&'a str),
    /// A bool, int or double, or an empty `AnyValue`: no rule reads these
    /// unless `redact_all_types` is on or the mask is a hash.
    Scalar,
}

/// One attribute of a list handled in place.
struct Kv<'a> {
    /// The whole field, for copying it unchanged.
    raw: &'a [u8],
    key: &'a str,
    val: Val<'a>,
    rule: KeyRule,
}

impl AttrMap for [Kv<'_>] {
    fn first_str(&self, key: &str) -> Option<&str> {
        match self.iter().find(|kv| kv.key == key)?.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn has_key_in(&self, keys: &HashSet<String>) -> bool {
        self.iter().any(|kv| keys.contains(kv.key))
    }
}

/// The attribute list of one message (its fields with number `tag`) and,
/// for a log record, its body.
enum List<'a> {
    /// Handled in place; the attributes are in the walk's `kvs`, the body
    /// with its whole field.
    InPlace { body: Option<(Val<'a>, &'a [u8])> },
    /// Decoded, for the decoded path's `process_attrs`.
    Decoded {
        attrs: Vec<KeyValue>,
        body: Option<AnyValue>,
    },
}

/// `KeyValue { key, value }` with nothing else, and a value the walk can
/// handle (see [`Val`]); None for anything else.
fn parse_kv(payload: &[u8]) -> Result<Option<(&str, Val<'_>)>> {
    let mut key: Option<&str> = None;
    let mut val: Option<Val<'_>> = None;
    let mut fs = fields(payload);
    while let Some(f) = fs.next()? {
        match (f.tag, f.wt) {
            (1, WT_LEN) if key.is_none() => key = Some(text(f.payload)?),
            (2, WT_LEN) if val.is_none() => match parse_value(f.payload)? {
                Some(v) => val = Some(v),
                None => return Ok(None),
            },
            _ => return Ok(None),
        }
    }
    Ok(Some((key.unwrap_or(""), val.unwrap_or(Val::Absent))))
}

/// An `AnyValue` of one string or scalar field; None for anything else.
fn parse_value(payload: &[u8]) -> Result<Option<Val<'_>>> {
    let mut fs = fields(payload);
    let Some(f) = fs.next()? else {
        return Ok(Some(Val::Scalar));
    };
    if fs.next()?.is_some() {
        return Ok(None);
    }
    Ok(match (f.tag, f.wt) {
        (1, WT_LEN) => Some(Val::Str(text(f.payload)?)),
        (2, WT_VARINT) | (3, WT_VARINT) | (4, WT_FIXED64) => Some(Val::Scalar),
        _ => None,
    })
}

struct Walk<'a, 'r> {
    r: &'r Redactor,
    c: &'r mut Caches,
    stats: Stats,
    /// The attribute list being handled in place (one at a time: a
    /// message's list is finished before its nested messages are walked).
    kvs: Vec<Kv<'a>>,
}

impl<'a> Walk<'a, '_> {
    /// Reads the attribute fields `tag` of message `buf` (and a log record's
    /// body, field 5, when `with_body`) into a [`List`].
    fn read_list(&mut self, buf: &'a [u8], tag: u32, with_body: bool) -> Result<List<'a>> {
        self.kvs.clear();
        let mut body: Option<Field<'a>> = None;
        let mut in_place = true;
        let mut fs = fields(buf);
        let hashes = self.r.hashes();
        let all_types = self.r.redact_all_types();
        let summary = self.r.summary() != Summary::Silent;
        while let Some(f) = fs.next()? {
            if f.wt != WT_LEN {
                continue;
            }
            if f.tag == tag {
                if !in_place {
                    continue;
                }
                let Some((key, val)) = parse_kv(f.payload)? else {
                    in_place = false;
                    continue;
                };
                let rule = self.r.key_rule(key, self.c);
                let needs_tree = match (rule, val) {
                    // A hash of a scalar hashes its text form.
                    (KeyRule::Masked, Val::Scalar) => hashes,
                    (KeyRule::Scan, Val::Scalar) => all_types,
                    _ => false,
                } || (summary && key.starts_with("redaction."));
                if needs_tree {
                    in_place = false;
                    continue;
                }
                self.kvs.push(Kv {
                    raw: f.raw,
                    key,
                    val,
                    rule,
                });
            } else if with_body && f.tag == 5 {
                if body.is_some() {
                    return Err(Fallback);
                }
                body = Some(f);
            }
        }
        let body_val = match body {
            None => None,
            Some(b) => match parse_value(b.payload)? {
                Some(Val::Str(s)) => Some((Val::Str(s), b.raw)),
                Some(v) if !all_types => Some((v, b.raw)),
                _ => {
                    in_place = false;
                    None
                }
            },
        };
        if in_place {
            return Ok(List::InPlace { body: body_val });
        }
        self.kvs.clear();
        let mut attrs = Vec::new();
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            if f.wt == WT_LEN && f.tag == tag {
                attrs.push(KeyValue::decode(f.payload).map_err(|_| Fallback)?);
            }
        }
        let body = body
            .map(|b| AnyValue::decode(b.payload).map_err(|_| Fallback))
            .transpose()?;
        Ok(List::Decoded { attrs, body })
    }

    /// The database block for a span's name, read before its attributes
    /// are rewritten.
    fn span_name_block(&self, list: &List<'a>, span_kind: i32) -> Option<Block> {
        let db = self.r.db();
        if !db.span_names() {
            return None;
        }
        match list {
            List::InPlace { .. } => db.span_name_block(span_kind, self.kvs.as_slice()),
            List::Decoded { attrs, .. } => db.span_name_block(span_kind, attrs.as_slice()),
        }
    }

    /// Applies the rules to `list` and writes it as fields `tag` (and the
    /// body as field 5), the summary last.
    fn write_list(&mut self, list: List<'a>, tag: u32, log_record: bool, out: &mut Vec<u8>) {
        match list {
            List::Decoded {
                mut attrs,
                mut body,
            } => {
                self.r.process_attrs(
                    &mut attrs,
                    body.as_mut(),
                    log_record,
                    &mut self.stats,
                    self.c,
                );
                for kv in &attrs {
                    put_message(out, tag, kv);
                }
                if let Some(body) = &body {
                    put_message(out, 5, body);
                }
            }
            List::InPlace { body } => self.write_in_place(body, tag, log_record, out),
        }
    }

    /// [`Redactor::process_attrs`] on borrowed attributes.
    fn write_in_place(
        &mut self,
        body: Option<(Val<'a>, &'a [u8])>,
        tag: u32,
        log_record: bool,
        out: &mut Vec<u8>,
    ) {
        let r = self.r;
        let kvs = std::mem::take(&mut self.kvs);
        if kvs.is_empty() && body.is_none() {
            self.kvs = kvs;
            return;
        }
        let system = if r.db().needs_system() {
            db::db_system(kvs.as_slice())
        } else {
            None
        };
        let mut audit = Audit::new(r.summary());
        for kv in &kvs {
            match (kv.rule, kv.val) {
                (KeyRule::Ignored, _) => {
                    audit.ignored += 1;
                    out.extend_from_slice(kv.raw);
                }
                (KeyRule::Redacted, _) => audit.redacted(kv.key),
                (_, Val::Absent) => out.extend_from_slice(kv.raw),
                (KeyRule::Masked, val) => {
                    // Scalars reach here only when the mask is not a hash.
                    let masked = match val {
                        Val::Str(s) => r.whole_mask(s),
                        _ => MASK.to_string(),
                    };
                    put_string_kv(out, tag, kv.key, &masked);
                    audit.masked(kv.key);
                }
                (KeyRule::Scan, Val::Str(s)) => {
                    let mut allowed = false;
                    let new = r.scan_attr_str(
                        kv.key,
                        s,
                        system.as_deref(),
                        log_record,
                        &mut allowed,
                        self.c,
                    );
                    match &new {
                        Some(new) => put_string_kv(out, tag, kv.key, new),
                        None => out.extend_from_slice(kv.raw),
                    }
                    audit.record(kv.key, new.is_some(), allowed);
                }
                (KeyRule::Scan, Val::Scalar) => out.extend_from_slice(kv.raw),
            }
        }
        match body {
            Some((Val::Str(s), _)) => {
                let mut allowed = false;
                let new = r.scan_str_with(s, &mut allowed, self.c);
                let text = new.as_deref().unwrap_or(s);
                let any_len = 1 + encoded_len_varint(text.len() as u64) + text.len();
                encode_key(5, WireType::LengthDelimited, out);
                encode_varint(any_len as u64, out);
                put_bytes_field(out, 1, text.as_bytes());
                audit.record("body", new.is_some(), allowed);
            }
            // A scalar the rules do not read (else the list is decoded).
            Some((_, raw)) => out.extend_from_slice(raw),
            None => {}
        }
        let mut summary = Vec::new();
        audit.finish(&mut summary, &mut self.stats);
        for kv in &summary {
            put_message(out, tag, kv);
        }
        self.kvs = kvs;
        self.kvs.clear();
    }

    /// A text field only the value rules apply to.
    fn write_text(&mut self, f: Field<'a>, out: &mut Vec<u8>) -> Result<()> {
        let s = text(f.payload)?;
        let mut allowed = false;
        match self.r.scan_str_with(s, &mut allowed, self.c) {
            Some(new) => {
                put_bytes_field(out, f.tag, new.as_bytes());
                self.stats.masked += 1;
            }
            None => out.extend_from_slice(f.raw),
        }
        Ok(())
    }

    // -------------------------------------------------------- messages

    fn request(&mut self, kind: SignalKind, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            if f.tag == 1 && f.wt == WT_LEN {
                nested(out, 1, f.payload.len(), |out| {
                    self.resource_group(kind, f.payload, out)
                })?;
            } else {
                out.extend_from_slice(f.raw);
            }
        }
        Ok(())
    }

    /// `ResourceSpans`, `ResourceLogs` or `ResourceMetrics`.
    fn resource_group(&mut self, kind: SignalKind, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let mut fs = fields(buf);
        let mut resources = 0;
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                (1, WT_LEN) => {
                    resources += 1;
                    if resources > 1 {
                        return Err(Fallback);
                    }
                    nested(out, 1, f.payload.len(), |out| {
                        self.attributes_only(f.payload, 1, out)
                    })?;
                }
                (2, WT_LEN) => {
                    nested(out, 2, f.payload.len(), |out| {
                        self.scope_group(kind, f.payload, out)
                    })?;
                }
                _ => out.extend_from_slice(f.raw),
            }
        }
        Ok(())
    }

    /// A message whose only field of interest is its attribute list
    /// (`Resource`, `InstrumentationScope`, `Link`, `Exemplar`).
    fn attributes_only(&mut self, buf: &'a [u8], tag: u32, out: &mut Vec<u8>) -> Result<()> {
        let list = self.read_list(buf, tag, false)?;
        self.write_list(list, tag, false, out);
        copy_except(buf, &[tag], out)
    }

    /// `ScopeSpans`, `ScopeLogs` or `ScopeMetrics`.
    fn scope_group(&mut self, kind: SignalKind, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let mut fs = fields(buf);
        let mut scopes = 0;
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                (1, WT_LEN) => {
                    scopes += 1;
                    if scopes > 1 {
                        return Err(Fallback);
                    }
                    nested(out, 1, f.payload.len(), |out| {
                        self.attributes_only(f.payload, 3, out)
                    })?;
                }
                (2, WT_LEN) => nested(out, 2, f.payload.len(), |out| match kind {
                    SignalKind::Traces => self.span(f.payload, out),
                    SignalKind::Logs => self.log_record(f.payload, out),
                    SignalKind::Metrics => self.metric(f.payload, out),
                })?,
                _ => out.extend_from_slice(f.raw),
            }
        }
        Ok(())
    }

    fn span(&mut self, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let mut span_kind = 0i32;
        let mut statuses = 0;
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                // prost keeps the last of a repeated scalar; an enum is an
                // int32, the low 32 bits of the varint.
                (6, WT_VARINT) => span_kind = read_varint(&f.raw[1..])? as i32,
                (15, WT_LEN) => statuses += 1,
                _ => {}
            }
        }
        if statuses > 1 {
            return Err(Fallback);
        }
        let list = self.read_list(buf, 9, false)?;
        let db_block = self.span_name_block(&list, span_kind);
        self.write_list(list, 9, false, out);
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                (9, WT_LEN) => {}
                (5, WT_LEN) => {
                    let name = text(f.payload)?;
                    match self.r.span_name(name, db_block, &mut self.stats, self.c) {
                        Some(new) => put_bytes_field(out, 5, new.as_bytes()),
                        None => out.extend_from_slice(f.raw),
                    }
                }
                (11, WT_LEN) => nested(out, 11, f.payload.len(), |out| self.event(f.payload, out))?,
                (13, WT_LEN) => nested(out, 13, f.payload.len(), |out| {
                    self.attributes_only(f.payload, 4, out)
                })?,
                (15, WT_LEN) => nested(out, 15, f.payload.len(), |out| {
                    self.texts(f.payload, 2, out)
                })?,
                _ => out.extend_from_slice(f.raw),
            }
        }
        Ok(())
    }

    fn event(&mut self, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let list = self.read_list(buf, 3, false)?;
        self.write_list(list, 3, false, out);
        self.texts_except(buf, 2, 3, out)
    }

    /// A message with one text field `text_tag` to scan (`Status.message`).
    fn texts(&mut self, buf: &'a [u8], text_tag: u32, out: &mut Vec<u8>) -> Result<()> {
        self.texts_except(buf, text_tag, 0, out)
    }

    /// Copies `buf`'s fields, scanning the text fields `text_tag` and
    /// leaving out the fields `skip_tag` (already written).
    fn texts_except(
        &mut self,
        buf: &'a [u8],
        text_tag: u32,
        skip_tag: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            if f.wt == WT_LEN && f.tag == skip_tag {
                continue;
            }
            if f.wt == WT_LEN && f.tag == text_tag {
                self.write_text(f, out)?;
            } else {
                out.extend_from_slice(f.raw);
            }
        }
        Ok(())
    }

    fn log_record(&mut self, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let list = self.read_list(buf, 6, true)?;
        self.write_list(list, 6, true, out);
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                (5, WT_LEN) | (6, WT_LEN) => {}
                (12, WT_LEN) => self.write_text(f, out)?,
                _ => out.extend_from_slice(f.raw),
            }
        }
        Ok(())
    }

    fn metric(&mut self, buf: &'a [u8], out: &mut Vec<u8>) -> Result<()> {
        let mut fs = fields(buf);
        let mut data = 0;
        while let Some(f) = fs.next()? {
            // The `data` oneof: gauge, sum, histogram, exponential
            // histogram, summary; with its point's attribute and exemplar
            // field numbers.
            let point = match (f.tag, f.wt) {
                (5, WT_LEN) | (7, WT_LEN) => Some((7, Some(5))),
                (9, WT_LEN) => Some((9, Some(8))),
                (10, WT_LEN) => Some((1, Some(11))),
                (11, WT_LEN) => Some((7, None)),
                _ => None,
            };
            let Some((attrs_tag, exemplars_tag)) = point else {
                out.extend_from_slice(f.raw);
                continue;
            };
            data += 1;
            if data > 1 {
                return Err(Fallback);
            }
            nested(out, f.tag, f.payload.len(), |out| {
                let mut points = fields(f.payload);
                while let Some(p) = points.next()? {
                    if p.tag == 1 && p.wt == WT_LEN {
                        nested(out, 1, p.payload.len(), |out| {
                            self.point(p.payload, attrs_tag, exemplars_tag, out)
                        })?;
                    } else {
                        out.extend_from_slice(p.raw);
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn point(
        &mut self,
        buf: &'a [u8],
        attrs_tag: u32,
        exemplars_tag: Option<u32>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let list = self.read_list(buf, attrs_tag, false)?;
        self.write_list(list, attrs_tag, false, out);
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            let len_delimited = f.wt == WT_LEN;
            if len_delimited && Some(f.tag) == exemplars_tag {
                nested(out, f.tag, f.payload.len(), |out| {
                    self.attributes_only(f.payload, 7, out)
                })?;
            } else if !(len_delimited && f.tag == attrs_tag) {
                out.extend_from_slice(f.raw);
            }
        }
        Ok(())
    }
}

/// Copies the fields of `buf` except length-delimited fields numbered in `skip`.
fn copy_except(buf: &[u8], skip: &[u32], out: &mut Vec<u8>) -> Result<()> {
    let mut fs = fields(buf);
    while let Some(f) = fs.next()? {
        if !(f.wt == WT_LEN && skip.contains(&f.tag)) {
            out.extend_from_slice(f.raw);
        }
    }
    Ok(())
}
