//! Redaction applied to the undecoded OTLP protobuf of a batch.
//!
//! A pipeline that only forwards never decodes what the receivers validated
//! (`confluo_pipeline::otlp_wire`). Decoding the tree to rewrite a few
//! strings and encoding it again costs more than the rules themselves:
//! about 3 µs per 10-attribute span, against a budget of 1 µs for the whole
//! processor. So redaction reads the validated request in place, twice at
//! most: a checking walk writes nothing and stops at the first change (most
//! data has none, and then the received bytes go on); a writing walk then
//! builds the new request, copying what it leaves alone as bytes. In both,
//! each span or log record first gets a quick one-pass check, and one that
//! is certainly left alone is copied whole.
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
use confluo_config::SignalKind;
use confluo_pipeline::otlp_wire::{
    WT_END_GROUP, WT_FIXED32, WT_FIXED64, WT_LEN, WT_START_GROUP, WT_VARINT,
};
use confluo_pipeline::proto::common::{AnyValue, KeyValue};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use std::collections::HashSet;

/// The data has a shape left to the decoded path (a singular message field
/// that occurs twice), or bytes that were not a validated request.
#[derive(Debug, PartialEq, Eq)]
pub struct Fallback;

/// Why a walk stopped early.
#[derive(Debug)]
enum Stop {
    Fallback,
    /// The checking walk found a change: the writing walk takes over.
    Changed,
}

type Result<T> = std::result::Result<T, Stop>;

/// Redacts the validated export request `bytes` of `kind`. The new request
/// when anything changed, else None: the received bytes go on as they are.
///
/// Most data has nothing to redact, so a first walk only checks, writing
/// nothing; it stops at the first change, and a second walk writes the new
/// request from the start.
pub fn process_encoded(
    redactor: &Redactor,
    kind: SignalKind,
    bytes: &[u8],
) -> std::result::Result<(Stats, Option<Vec<u8>>), Fallback> {
    let mut caches = redactor.caches();
    let mut walk = Walk {
        r: redactor,
        c: &mut caches,
        stats: Stats::default(),
        kvs: Vec::new(),
        stack: Vec::new(),
        key_memo: Vec::new(),
    };
    match walk.request(kind, bytes, &mut Check) {
        Ok(()) => return Ok((walk.stats, None)),
        Err(Stop::Fallback) => return Err(Fallback),
        Err(Stop::Changed) => {}
    }
    walk.stats = Stats::default();
    walk.stack.clear();
    // Rewritten strings are rarely longer than the originals by much.
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 64);
    match walk.request(kind, bytes, &mut out) {
        Ok(()) => {
            let stats = walk.stats;
            Ok((stats, redactor.changed(&stats).then_some(out)))
        }
        Err(_) => Err(Fallback),
    }
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
    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut value = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(Stop::Fallback)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(Stop::Fallback)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.buf.len() - self.pos {
            return Err(Stop::Fallback);
        }
        self.pos += n;
        Ok(())
    }

    #[inline(always)]
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
                self.skip(usize::try_from(len).map_err(|_| Stop::Fallback)?)
            }
            WT_START_GROUP => loop {
                let (inner, inner_wt) = self.key()?;
                if inner_wt == WT_END_GROUP {
                    return if inner == tag {
                        Ok(())
                    } else {
                        Err(Stop::Fallback)
                    };
                }
                self.skip_value(inner, inner_wt)?;
            },
            _ => Err(Stop::Fallback),
        }
    }

    // Inlined: returned through memory, this `Result<Option<Field>>` was
    // copied back with overlapping loads that stalled on its stores.
    #[inline(always)]
    fn next(&mut self) -> Result<Option<Field<'a>>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let (tag, wt) = self.key()?;
        let payload_at = if wt == WT_LEN {
            let len = self.varint()?;
            let at = self.pos;
            self.skip(usize::try_from(len).map_err(|_| Stop::Fallback)?)?;
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
    std::str::from_utf8(bytes).map_err(|_| Stop::Fallback)
}

/// The varint at the end of a fixed-width field (prost stops at 10 bytes).
fn read_varint(bytes: &[u8]) -> Result<u64> {
    fields(bytes).varint()
}

// ------------------------------------------------------------ writing

/// Where a walk writes the new request: a buffer, or nowhere while it only
/// checks whether anything changes.
trait Sink {
    /// Whether this sink keeps what is written (false: a checking walk).
    const WRITES: bool;
    /// Bytes copied unchanged (whole fields).
    fn raw(&mut self, bytes: &[u8]);
    fn bytes_field(&mut self, tag: u32, bytes: &[u8]);
    fn message<M: Message>(&mut self, tag: u32, m: &M);
    /// `KeyValue { key, value: AnyValue { string_value } }` as field `tag`.
    fn string_kv(&mut self, tag: u32, key: &str, value: &str);
    /// `AnyValue { string_value }` as field `tag`.
    fn string_value(&mut self, tag: u32, value: &str);
    /// Field `tag` whose body `write` writes.
    fn nested(
        &mut self,
        tag: u32,
        hint: usize,
        write: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()>;
}

/// The sink of a walk that only checks.
struct Check;

impl Sink for Check {
    const WRITES: bool = false;
    fn raw(&mut self, _: &[u8]) {}
    fn bytes_field(&mut self, _: u32, _: &[u8]) {}
    fn message<M: Message>(&mut self, _: u32, _: &M) {}
    fn string_kv(&mut self, _: u32, _: &str, _: &str) {}
    fn string_value(&mut self, _: u32, _: &str) {}
    fn nested(
        &mut self,
        _: u32,
        _: usize,
        write: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        write(self)
    }
}

impl Sink for Vec<u8> {
    const WRITES: bool = true;

    fn raw(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn bytes_field(&mut self, tag: u32, bytes: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, self);
        encode_varint(bytes.len() as u64, self);
        self.extend_from_slice(bytes);
    }

    fn message<M: Message>(&mut self, tag: u32, m: &M) {
        encode_key(tag, WireType::LengthDelimited, self);
        encode_varint(m.encoded_len() as u64, self);
        m.encode_raw(self);
    }

    fn string_kv(&mut self, tag: u32, key: &str, value: &str) {
        let any_len = 1 + encoded_len_varint(value.len() as u64) + value.len();
        let kv_len = 1
            + encoded_len_varint(key.len() as u64)
            + key.len()
            + 1
            + encoded_len_varint(any_len as u64)
            + any_len;
        encode_key(tag, WireType::LengthDelimited, self);
        encode_varint(kv_len as u64, self);
        self.bytes_field(1, key.as_bytes());
        self.string_value(2, value);
    }

    fn string_value(&mut self, tag: u32, value: &str) {
        let any_len = 1 + encoded_len_varint(value.len() as u64) + value.len();
        encode_key(tag, WireType::LengthDelimited, self);
        encode_varint(any_len as u64, self);
        self.bytes_field(1, value.as_bytes());
    }

    /// The length's room is guessed from the original body's length `hint`
    /// and the body moved only when the varint needs another size.
    fn nested(
        &mut self,
        tag: u32,
        hint: usize,
        write: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        encode_key(tag, WireType::LengthDelimited, self);
        let len_at = self.len();
        let reserved = encoded_len_varint(hint as u64);
        self.resize(len_at + reserved, 0);
        let body_at = self.len();
        write(self)?;
        let len = self.len() - body_at;
        let need = encoded_len_varint(len as u64);
        if need > reserved {
            self.resize(self.len() + need - reserved, 0);
            self.copy_within(body_at..body_at + len, len_at + need);
        } else if need < reserved {
            self.copy_within(body_at..body_at + len, len_at + need);
            self.truncate(len_at + need + len);
        }
        let mut v = len as u64;
        for b in &mut self[len_at..len_at + need] {
            *b = (v as u8 & 0x7f) | 0x80;
            v >>= 7;
        }
        self[len_at + need - 1] &= 0x7f;
        Ok(())
    }
}

// ------------------------------------------------------------ attributes

/// An attribute value, as far as the in-place walk is concerned.
#[derive(Clone, Copy)]
enum Val<'a> {
    /// No `value` field.
    Absent,
    /// A string's bytes, read as text only when a rule needs the text.
    Str(&'a [u8]),
    /// A bool, int or double, or an empty `AnyValue`: no rule reads these
    /// unless `redact_all_types` is on or the mask is a hash.
    Scalar,
    /// Anything else (arrays, maps, bytes, unusual encodings): the list is
    /// decoded.
    Other,
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
            Val::Str(s) => std::str::from_utf8(s).ok(),
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

/// A varint at `pos` of `p`: its value and its length in bytes.
#[inline(always)]
fn varint_at(p: &[u8], pos: usize) -> Option<(usize, usize)> {
    let first = *p.get(pos)?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let mut value = 0usize;
    for i in 0..10 {
        let b = *p.get(pos + i)?;
        value |= usize::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A length-delimited field `key` at `pos` of `p`: its payload and the
/// position after it.
#[inline(always)]
fn delimited_at(p: &[u8], pos: usize, key: u8) -> Option<(&[u8], usize)> {
    if *p.get(pos)? != key {
        return None;
    }
    let (len, n) = varint_at(p, pos + 1)?;
    let start = pos + 1 + n;
    let end = start.checked_add(len)?;
    Some((p.get(start..end)?, end))
}

/// `KeyValue { key, value }` with nothing else, and a value the walk can
/// handle (see [`Val`]): its key's bytes and its value; None for anything
/// else (the list is then decoded, and prost reports what is wrong).
///
/// Small plain return types on purpose: nested `Result<Option<…>>` of
/// these enums compiled to overlapping copies that stalled the loads.
#[inline(always)]
fn parse_kv(payload: &[u8]) -> Option<(&[u8], Val<'_>)> {
    // Encoders write `key` (0x0a) then `value` (0x12): read that shape
    // directly, the general loop only for the rest.
    if let Some((key, end)) = delimited_at(payload, 0, 0x0a) {
        if end == payload.len() {
            return Some((key, Val::Absent));
        }
        if let Some((value, end)) = delimited_at(payload, end, 0x12) {
            if end == payload.len() {
                return match parse_value(value) {
                    Val::Other => None,
                    v => Some((key, v)),
                };
            }
        }
    }
    let mut key: Option<&[u8]> = None;
    let mut val: Option<Val<'_>> = None;
    let mut fs = fields(payload);
    loop {
        let f = match fs.next() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return None,
        };
        match (f.tag, f.wt) {
            (1, WT_LEN) if key.is_none() => key = Some(f.payload),
            (2, WT_LEN) if val.is_none() => match parse_value(f.payload) {
                Val::Other => return None,
                v => val = Some(v),
            },
            _ => return None,
        }
    }
    Some((key.unwrap_or(b""), val.unwrap_or(Val::Absent)))
}

/// An `AnyValue` of one string or scalar field, else [`Val::Other`].
#[inline(always)]
fn parse_value(payload: &[u8]) -> Val<'_> {
    // The common shapes first: a string (0x0a), a bool (0x10), an int
    // (0x18) or a double (0x21) filling the whole value.
    match payload.first() {
        None => return Val::Scalar,
        Some(0x0a) => {
            if let Some((s, end)) = delimited_at(payload, 0, 0x0a) {
                if end == payload.len() {
                    return Val::Str(s);
                }
            }
        }
        Some(0x10) | Some(0x18)
            if varint_at(payload, 1).is_some_and(|(_, n)| 1 + n == payload.len()) =>
        {
            return Val::Scalar;
        }
        Some(0x21) if payload.len() == 9 => return Val::Scalar,
        _ => {}
    }
    let mut fs = fields(payload);
    let (Ok(Some(f)), Ok(None)) = (fs.next(), fs.next()) else {
        return Val::Other;
    };
    match (f.tag, f.wt) {
        (1, WT_LEN) => Val::Str(f.payload),
        (2, WT_VARINT) | (3, WT_VARINT) | (4, WT_FIXED64) => Val::Scalar,
        _ => Val::Other,
    }
}

/// Whether a part of a message is certainly left alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quiet {
    Yes,
    No,
}

fn quiet(yes: bool) -> Quiet {
    if yes {
        Quiet::Yes
    } else {
        Quiet::No
    }
}

struct Walk<'a, 'r> {
    r: &'r Redactor,
    c: &'r mut Caches,
    stats: Stats,
    /// The attribute list being handled in place (one at a time: a
    /// message's list is finished before its nested messages are walked).
    kvs: Vec<Kv<'a>>,
    /// The fields of the messages being walked, innermost last: a message
    /// whose fields are visited more than once reads them once, here.
    stack: Vec<Field<'a>>,
    /// The key last seen at each position of an attribute list, with its
    /// rule. Consecutive spans (log records, points) mostly share their
    /// keys in the same order, so a key is usually known from one byte
    /// comparison, without its UTF-8 check or the key rules.
    key_memo: Vec<(&'a str, KeyRule)>,
}

/// A message's fields on the walk's stack.
type FieldRange = std::ops::Range<usize>;

impl<'a> Walk<'a, '_> {
    fn push_fields(&mut self, buf: &'a [u8]) -> Result<FieldRange> {
        let start = self.stack.len();
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            self.stack.push(f);
        }
        Ok(start..self.stack.len())
    }

    /// The key at `position` of a list and its rule, from the memo when the
    /// key there is the same as last time.
    fn key_rule(&mut self, position: usize, key: &'a [u8]) -> Result<(&'a str, KeyRule)> {
        if let Some(&(known, rule)) = self.key_memo.get(position) {
            if known.as_bytes() == key {
                return Ok((known, rule));
            }
        }
        let key = text(key)?;
        let rule = self.r.key_rule(key, self.c);
        if position < self.key_memo.len() {
            self.key_memo[position] = (key, rule);
        } else if position == self.key_memo.len() {
            self.key_memo.push((key, rule));
        }
        Ok((key, rule))
    }

    /// Reads the attribute fields `tag` among `at` (and a log record's body,
    /// field 5, when `with_body`) into a [`List`].
    fn read_list(&mut self, at: FieldRange, tag: u32, with_body: bool) -> Result<List<'a>> {
        self.kvs.clear();
        let mut body: Option<Field<'a>> = None;
        let mut in_place = true;
        let hashes = self.r.hashes();
        let all_types = self.r.redact_all_types();
        let summary = self.r.writes_summary();
        for i in at.clone() {
            let f = self.stack[i];
            if f.wt != WT_LEN {
                continue;
            }
            if f.tag == tag {
                if !in_place {
                    continue;
                }
                let Some((key_bytes, val)) = parse_kv(f.payload) else {
                    in_place = false;
                    continue;
                };
                let (key, rule) = self.key_rule(self.kvs.len(), key_bytes)?;
                let needs_tree = match (rule, val) {
                    // A hash of a scalar hashes its text form.
                    (KeyRule::Masked, Val::Scalar) => hashes,
                    (KeyRule::Scan { .. }, Val::Scalar) => all_types,
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
                    return Err(Stop::Fallback);
                }
                body = Some(f);
            }
        }
        let body_val = match body {
            None => None,
            Some(b) => match parse_value(b.payload) {
                Val::Str(s) => Some((Val::Str(s), b.raw)),
                Val::Scalar if !all_types => Some((Val::Scalar, b.raw)),
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
        for f in &self.stack[at] {
            if f.wt == WT_LEN && f.tag == tag {
                attrs.push(KeyValue::decode(f.payload).map_err(|_| Stop::Fallback)?);
            }
        }
        let body = body
            .map(|b| AnyValue::decode(b.payload).map_err(|_| Stop::Fallback))
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
    fn write_list<S: Sink>(
        &mut self,
        list: List<'a>,
        tag: u32,
        log_record: bool,
        out: &mut S,
    ) -> Result<()> {
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
                    out.message(tag, kv);
                }
                if let Some(body) = &body {
                    out.message(5, body);
                }
            }
            List::InPlace { body } => self.write_in_place(body, tag, log_record, out)?,
        }
        self.stop_if_changed::<S>()
    }

    /// A checking walk stops at the first change.
    fn stop_if_changed<S: Sink>(&self) -> Result<()> {
        if !S::WRITES && self.r.changed(&self.stats) {
            Err(Stop::Changed)
        } else {
            Ok(())
        }
    }

    /// [`Redactor::process_attrs`] on borrowed attributes.
    fn write_in_place<S: Sink>(
        &mut self,
        body: Option<(Val<'a>, &'a [u8])>,
        tag: u32,
        log_record: bool,
        out: &mut S,
    ) -> Result<()> {
        let r = self.r;
        let kvs = std::mem::take(&mut self.kvs);
        if kvs.is_empty() && body.is_none() {
            self.kvs = kvs;
            return Ok(());
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
                    out.raw(kv.raw);
                }
                (KeyRule::Redacted, _) => audit.redacted(kv.key),
                (_, Val::Absent) => out.raw(kv.raw),
                (KeyRule::Masked, val) => {
                    // Scalars reach here only when the mask is not a hash.
                    let masked = match val {
                        Val::Str(s) => r.whole_mask(text(s)?),
                        _ => MASK.to_string(),
                    };
                    out.string_kv(tag, kv.key, &masked);
                    audit.masked(kv.key);
                }
                (KeyRule::Scan { sanitized }, Val::Str(s)) => {
                    if r.leaves_attr(sanitized, s, self.c) {
                        out.raw(kv.raw);
                        continue;
                    }
                    let s = text(s)?;
                    let mut allowed = false;
                    let new = r.scan_attr_str(
                        kv.key,
                        s,
                        sanitized,
                        system.as_deref(),
                        log_record,
                        &mut allowed,
                        self.c,
                    );
                    match &new {
                        Some(new) => out.string_kv(tag, kv.key, new),
                        None => out.raw(kv.raw),
                    }
                    audit.record(kv.key, new.is_some(), allowed);
                }
                (KeyRule::Scan { .. }, _) => out.raw(kv.raw),
            }
        }
        match body {
            Some((Val::Str(s), raw)) if r.leaves_text(s, self.c) => {
                out.raw(raw);
            }
            Some((Val::Str(s), _)) => {
                let s = text(s)?;
                let mut allowed = false;
                let new = r.scan_str_with(s, &mut allowed, self.c);
                out.string_value(5, new.as_deref().unwrap_or(s));
                audit.record("body", new.is_some(), allowed);
            }
            // A scalar the rules do not read (else the list is decoded).
            Some((_, raw)) => out.raw(raw),
            None => {}
        }
        if audit.is_empty() {
            self.kvs = kvs;
            self.kvs.clear();
            return Ok(());
        }
        let mut summary = Vec::new();
        audit.finish(&mut summary, &mut self.stats);
        for kv in &summary {
            out.message(tag, kv);
        }
        self.kvs = kvs;
        self.kvs.clear();
        Ok(())
    }

    /// A text field only the value rules apply to.
    fn write_text<S: Sink>(&mut self, f: Field<'a>, out: &mut S) -> Result<()> {
        if self.r.leaves_text(f.payload, self.c) {
            out.raw(f.raw);
            return Ok(());
        }
        let s = text(f.payload)?;
        let mut allowed = false;
        match self.r.scan_str_with(s, &mut allowed, self.c) {
            Some(new) => {
                out.bytes_field(f.tag, new.as_bytes());
                self.stats.masked += 1;
            }
            None => out.raw(f.raw),
        }
        self.stop_if_changed::<S>()
    }

    /// Writes the fields `at` except the length-delimited ones numbered
    /// `skip` (already written), scanning the text fields `text_tag`.
    fn write_rest<S: Sink>(
        &mut self,
        at: FieldRange,
        skip: &[u32],
        text_tag: u32,
        out: &mut S,
    ) -> Result<()> {
        for i in at {
            let f = self.stack[i];
            if f.wt == WT_LEN && skip.contains(&f.tag) {
                continue;
            }
            if f.wt == WT_LEN && f.tag == text_tag {
                self.write_text(f, out)?;
            } else {
                out.raw(f.raw);
            }
        }
        Ok(())
    }

    // -------------------------------------------------------- messages

    fn request<S: Sink>(&mut self, kind: SignalKind, buf: &'a [u8], out: &mut S) -> Result<()> {
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            if f.tag == 1 && f.wt == WT_LEN {
                out.nested(1, f.payload.len(), |out| {
                    self.resource_group(kind, f.payload, out)
                })?;
            } else {
                out.raw(f.raw);
            }
        }
        Ok(())
    }

    /// `ResourceSpans`, `ResourceLogs` or `ResourceMetrics`.
    fn resource_group<S: Sink>(
        &mut self,
        kind: SignalKind,
        buf: &'a [u8],
        out: &mut S,
    ) -> Result<()> {
        let mut fs = fields(buf);
        let mut resources = 0;
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                (1, WT_LEN) => self.only_once(f, &mut resources, 1, out)?,
                (2, WT_LEN) => {
                    out.nested(2, f.payload.len(), |out| {
                        self.scope_group(kind, f.payload, out)
                    })?;
                }
                _ => out.raw(f.raw),
            }
        }
        Ok(())
    }

    /// Field 1 of a resource or scope group (the resource, the scope), whose
    /// attributes are fields `attrs_tag`. prost merges a second occurrence
    /// into the first, one attribute map: that is left to the decoded path.
    fn only_once<S: Sink>(
        &mut self,
        f: Field<'a>,
        seen: &mut u32,
        attrs_tag: u32,
        out: &mut S,
    ) -> Result<()> {
        *seen += 1;
        if *seen > 1 {
            return Err(Stop::Fallback);
        }
        out.nested(1, f.payload.len(), |out| {
            self.attributes_only(f.payload, attrs_tag, out)
        })
    }

    /// A message whose only field of interest is its attribute list
    /// (`Resource`, `InstrumentationScope`, `Link`, `Exemplar`).
    fn attributes_only<S: Sink>(&mut self, buf: &'a [u8], tag: u32, out: &mut S) -> Result<()> {
        let at = self.push_fields(buf)?;
        let list = self.read_list(at.clone(), tag, false)?;
        self.write_list(list, tag, false, out)?;
        self.write_rest(at.clone(), &[tag], 0, out)?;
        self.stack.truncate(at.start);
        Ok(())
    }

    /// `ScopeSpans`, `ScopeLogs` or `ScopeMetrics`.
    fn scope_group<S: Sink>(&mut self, kind: SignalKind, buf: &'a [u8], out: &mut S) -> Result<()> {
        let mut fs = fields(buf);
        let mut scopes = 0;
        while let Some(f) = fs.next()? {
            match (f.tag, f.wt) {
                (1, WT_LEN) => self.only_once(f, &mut scopes, 3, out)?,
                (2, WT_LEN) => {
                    let quiet = match kind {
                        SignalKind::Traces => self.check_span(f.payload)?,
                        SignalKind::Logs => self.check_log_record(f.payload)?,
                        SignalKind::Metrics => Quiet::No,
                    };
                    if quiet == Quiet::Yes {
                        out.raw(f.raw);
                        self.stop_if_changed::<S>()?;
                    } else {
                        out.nested(2, f.payload.len(), |out| match kind {
                            SignalKind::Traces => self.span(f.payload, out),
                            SignalKind::Logs => self.log_record(f.payload, out),
                            SignalKind::Metrics => self.metric(f.payload, out),
                        })?;
                    }
                }
                _ => out.raw(f.raw),
            }
        }
        Ok(())
    }

    // ------------------------------------------------ the quick check
    //
    // Most spans and log records have nothing to redact. Both walks first
    // read such a message in one pass, field by field, asking of each part
    // only whether it is certainly left alone ([`Quiet::Yes`]): then its
    // bytes are copied whole. At the first part it is unsure of, the message
    // goes through the general code above from its start, with the totals
    // as they were before it.

    /// Whether a span is certainly left alone; when not, the totals are as
    /// they were before it.
    fn check_span(&mut self, buf: &'a [u8]) -> Result<Quiet> {
        if self.r.db().span_names() {
            return Ok(Quiet::No);
        }
        self.check_or_restore(buf, 9, 5, &[(11, 3, 2), (13, 4, 0), (15, 0, 2)])
    }

    fn check_log_record(&mut self, buf: &'a [u8]) -> Result<Quiet> {
        self.check_or_restore(buf, 6, 12, &[])
    }

    fn check_or_restore(
        &mut self,
        buf: &'a [u8],
        attrs_tag: u32,
        text_tag: u32,
        children: &[(u32, u32, u32)],
    ) -> Result<Quiet> {
        let before = self.stats;
        let quiet = self.check_message(buf, attrs_tag, text_tag, children)?;
        if quiet == Quiet::No {
            self.stats = before;
        }
        Ok(quiet)
    }

    /// Whether message `buf` is certainly left alone: its attributes (fields
    /// `attrs_tag`, with a log record's body), its text field `text_tag` and
    /// its nested messages `(tag, their attributes' tag, their text's tag)`
    /// (0: none). Ignored attributes are counted as the general code does.
    fn check_message(
        &mut self,
        buf: &'a [u8],
        attrs_tag: u32,
        text_tag: u32,
        children: &[(u32, u32, u32)],
    ) -> Result<Quiet> {
        let with_body = attrs_tag == 6;
        let mut position = 0;
        let mut fs = fields(buf);
        while let Some(f) = fs.next()? {
            if f.wt != WT_LEN {
                continue;
            }
            let quiet = if f.tag == attrs_tag {
                position += 1;
                self.check_attr(position - 1, f.payload)?
            } else if f.tag == text_tag {
                // A span name: with URL sanitizing the general code decides.
                quiet(if attrs_tag == 9 {
                    self.r.leaves_span_name(f.payload, self.c)
                } else {
                    self.r.leaves_text(f.payload, self.c)
                })
            } else if with_body && f.tag == 5 {
                match parse_value(f.payload) {
                    Val::Str(s) => quiet(self.r.leaves_text(s, self.c)),
                    Val::Scalar => quiet(!self.r.redact_all_types()),
                    _ => Quiet::No,
                }
            } else if let Some(&(_, attrs, text)) = children.iter().find(|c| c.0 == f.tag) {
                self.check_message(f.payload, attrs, text, &[])?
            } else {
                Quiet::Yes
            };
            if quiet == Quiet::No {
                return Ok(Quiet::No);
            }
        }
        Ok(Quiet::Yes)
    }

    /// One attribute: ignored (counted) without a summary, absent, a scalar
    /// no rule reads, or a string no sanitizer lists and no pattern matches.
    fn check_attr(&mut self, position: usize, payload: &'a [u8]) -> Result<Quiet> {
        let Some((key_bytes, val)) = parse_kv(payload) else {
            return Ok(Quiet::No);
        };
        let (key, rule) = self.key_rule(position, key_bytes)?;
        if self.r.writes_summary() && key.starts_with("redaction.") {
            return Ok(Quiet::No);
        }
        Ok(match (rule, val) {
            // Counted; with a summary, it is written into the message.
            (KeyRule::Ignored, _) if !self.r.writes_summary() => {
                self.stats.ignored += 1;
                Quiet::Yes
            }
            (KeyRule::Masked | KeyRule::Scan { .. }, Val::Absent) => Quiet::Yes,
            (KeyRule::Scan { sanitized }, Val::Str(s)) => {
                quiet(self.r.leaves_attr(sanitized, s, self.c))
            }
            (KeyRule::Scan { .. }, Val::Scalar) => quiet(!self.r.redact_all_types()),
            _ => Quiet::No,
        })
    }

    fn span<S: Sink>(&mut self, buf: &'a [u8], out: &mut S) -> Result<()> {
        let at = self.push_fields(buf)?;
        let mut span_kind = 0i32;
        let mut statuses = 0;
        for f in &self.stack[at.clone()] {
            match (f.tag, f.wt) {
                // prost keeps the last of a repeated scalar; an enum is an
                // int32, the low 32 bits of the varint.
                (6, WT_VARINT) => span_kind = read_varint(&f.raw[1..])? as i32,
                (15, WT_LEN) => statuses += 1,
                _ => {}
            }
        }
        if statuses > 1 {
            return Err(Stop::Fallback);
        }
        let list = self.read_list(at.clone(), 9, false)?;
        let db_block = self.span_name_block(&list, span_kind);
        self.write_list(list, 9, false, out)?;
        for i in at.clone() {
            let f = self.stack[i];
            match (f.tag, f.wt) {
                (9, WT_LEN) => {}
                (5, WT_LEN) if db_block.is_none() && self.r.leaves_span_name(f.payload, self.c) => {
                    out.raw(f.raw);
                }
                (5, WT_LEN) => {
                    let name = text(f.payload)?;
                    match self.r.span_name(name, db_block, &mut self.stats, self.c) {
                        Some(new) => out.bytes_field(5, new.as_bytes()),
                        None => out.raw(f.raw),
                    }
                    self.stop_if_changed::<S>()?;
                }
                (11, WT_LEN) => out.nested(11, f.payload.len(), |out| {
                    self.attributes_and_text(f.payload, 3, 2, out)
                })?,
                (13, WT_LEN) => out.nested(13, f.payload.len(), |out| {
                    self.attributes_only(f.payload, 4, out)
                })?,
                (15, WT_LEN) => out.nested(15, f.payload.len(), |out| {
                    let at = self.push_fields(f.payload)?;
                    self.write_rest(at.clone(), &[], 2, out)?;
                    self.stack.truncate(at.start);
                    Ok(())
                })?,
                _ => out.raw(f.raw),
            }
        }
        self.stack.truncate(at.start);
        Ok(())
    }

    /// A message with an attribute list `attrs_tag` and a text field
    /// `text_tag` (`Span.Event`: attributes and name).
    fn attributes_and_text<S: Sink>(
        &mut self,
        buf: &'a [u8],
        attrs_tag: u32,
        text_tag: u32,
        out: &mut S,
    ) -> Result<()> {
        let at = self.push_fields(buf)?;
        let list = self.read_list(at.clone(), attrs_tag, false)?;
        self.write_list(list, attrs_tag, false, out)?;
        self.write_rest(at.clone(), &[attrs_tag], text_tag, out)?;
        self.stack.truncate(at.start);
        Ok(())
    }

    fn log_record<S: Sink>(&mut self, buf: &'a [u8], out: &mut S) -> Result<()> {
        let at = self.push_fields(buf)?;
        let list = self.read_list(at.clone(), 6, true)?;
        self.write_list(list, 6, true, out)?;
        self.write_rest(at.clone(), &[5, 6], 12, out)?;
        self.stack.truncate(at.start);
        Ok(())
    }

    fn metric<S: Sink>(&mut self, buf: &'a [u8], out: &mut S) -> Result<()> {
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
                out.raw(f.raw);
                continue;
            };
            data += 1;
            if data > 1 {
                return Err(Stop::Fallback);
            }
            out.nested(f.tag, f.payload.len(), |out| {
                let mut points = fields(f.payload);
                while let Some(p) = points.next()? {
                    if p.tag == 1 && p.wt == WT_LEN {
                        out.nested(1, p.payload.len(), |out| {
                            self.point(p.payload, attrs_tag, exemplars_tag, out)
                        })?;
                    } else {
                        out.raw(p.raw);
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn point<S: Sink>(
        &mut self,
        buf: &'a [u8],
        attrs_tag: u32,
        exemplars_tag: Option<u32>,
        out: &mut S,
    ) -> Result<()> {
        let at = self.push_fields(buf)?;
        let list = self.read_list(at.clone(), attrs_tag, false)?;
        self.write_list(list, attrs_tag, false, out)?;
        for i in at.clone() {
            let f = self.stack[i];
            let len_delimited = f.wt == WT_LEN;
            if len_delimited && Some(f.tag) == exemplars_tag {
                out.nested(f.tag, f.payload.len(), |out| {
                    self.attributes_only(f.payload, 7, out)
                })?;
            } else if !(len_delimited && f.tag == attrs_tag) {
                out.raw(f.raw);
            }
        }
        self.stack.truncate(at.start);
        Ok(())
    }
}
