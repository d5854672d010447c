//! A small pull parser over a UTF-8 JSON body, specialised for decoding
//! OTLP/JSON straight into the prost structs.
//!
//! Why not serde_json's `Deserializer`: without serde_json's
//! `float_roundtrip` feature (not enabled in this workspace) its float parser
//! is "best effort" and can be off by an ULP for 17-significant-digit values
//! or large exponents, so doubles would not survive a JSON round trip. Here
//! number tokens are sliced out of the input and handed to `str::parse`,
//! which is correctly rounded, and integers never take a detour through f64.
//! Owning the parser also gives cheap JSON-path tracking and error messages
//! that never echo more than a short snippet of the input.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::JsonError;

pub(super) type Result<T> = std::result::Result<T, JsonError>;

/// Objects + arrays nesting limit. Decoding recurses per level, so this bounds
/// stack use on hostile input (same limit serde_json uses by default).
const MAX_DEPTH: usize = 128;

/// Longest piece of input quoted back in an error message.
const SNIPPET_MAX: usize = 64;

#[derive(Clone, Copy, Debug)]
pub(super) enum Seg {
    Key(&'static str),
    Idx(usize),
}

/// A type that can be decoded from a JSON object, one member at a time.
pub(super) trait Decode: Default {
    /// Consume the value of member `key`. Unknown keys must call `p.skip()`.
    fn field(&mut self, p: &mut Parser<'_>, key: &str) -> Result<()>;
}

pub(super) struct Parser<'a> {
    src: &'a str,
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    /// Path of the value being decoded. Only known (static) keys are pushed;
    /// it is rendered only when an error is built.
    path: Vec<Seg>,
}

/// Cap `s` at `SNIPPET_MAX` bytes (on a char boundary) for error messages.
pub(super) fn snippet(s: &str) -> String {
    if s.len() <= SNIPPET_MAX {
        return format!("{s:?}");
    }
    let mut end = SNIPPET_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &s[..end])
}

impl<'a> Parser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Result<Self> {
        // Validating UTF-8 once up front lets every string slice below be a
        // `&str` without re-checking (the parser only ever stops at ASCII
        // bytes, which are always char boundaries).
        let src = std::str::from_utf8(body).map_err(|e| JsonError {
            path: "$".into(),
            message: format!("body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        })?;
        Ok(Self {
            src,
            buf: body,
            pos: 0,
            depth: 0,
            path: Vec::with_capacity(16),
        })
    }

    // ---- errors -----------------------------------------------------------

    #[cold]
    pub(super) fn error(&self, msg: impl std::fmt::Display) -> JsonError {
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Seg::Idx(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        if path.is_empty() {
            path.push('$');
        }
        JsonError {
            path,
            message: format!("{msg} (at byte {})", self.pos),
        }
    }

    #[cold]
    fn unexpected(&mut self, expected: &str) -> JsonError {
        let found = match self.peek() {
            None => "end of input",
            Some(b'{') => "object",
            Some(b'[') => "array",
            Some(b'"') => "string",
            Some(b't' | b'f') => "boolean",
            Some(b'n') => "null",
            Some(b'-' | b'0'..=b'9') => "number",
            Some(b'}') => "'}'",
            Some(b']') => "']'",
            Some(b',') => "','",
            Some(b':') => "':'",
            Some(_) => "invalid character",
        };
        self.error(format_args!("expected {expected}, found {found}"))
    }

    // ---- tokens -------------------------------------------------------------

    #[inline]
    fn ws(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.buf.get(self.pos).copied()
    }

    /// Require that only whitespace remains.
    pub(super) fn finish(&mut self) -> Result<()> {
        if self.peek().is_some() {
            return Err(self.error("trailing characters after the top-level value"));
        }
        Ok(())
    }

    fn literal(&mut self, lit: &'static [u8]) -> Result<()> {
        let rest = &self.buf[self.pos..];
        if rest.starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else if lit.starts_with(rest) {
            Err(self.error("unexpected end of input"))
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Consume a `null` if one is next. `null` means "field absent".
    #[inline]
    pub(super) fn try_null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        self.pos += 1; // the '{' or '['
        Ok(())
    }

    /// Walk an object, calling `f` once per member with the member's key;
    /// `f` must consume exactly the member's value.
    pub(super) fn object(
        &mut self,
        mut f: impl FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        if self.peek() != Some(b'{') {
            return Err(self.unexpected("object"));
        }
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("string key"));
            }
            let key = self.string()?;
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':'"));
            }
            self.pos += 1;
            f(self, &key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Walk an array, calling `f` once per element (with the index pushed on
    /// the path); `f` must consume exactly the element.
    pub(super) fn array(&mut self, mut f: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        if self.peek() != Some(b'[') {
            return Err(self.unexpected("array"));
        }
        self.enter()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            self.path.push(Seg::Idx(i));
            f(self)?;
            self.path.pop();
            i += 1;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Parse a string token (the cursor is on its opening quote). Borrows from
    /// the input unless the string contains escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes, borrow.
        loop {
            match self.buf.get(self.pos) {
                None => return Err(self.error("unexpected end of input in string")),
                Some(b'"') => {
                    let s = &self.src[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(&b) if b < 0x20 => return Err(self.error("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.src[start..self.pos]);
        loop {
            match self.buf.get(self.pos) {
                None => return Err(self.error("unexpected end of input in string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(&b) if b < 0x20 => return Err(self.error("control character in string")),
                Some(_) => {
                    let run = self.pos;
                    while let Some(&b) = self.buf.get(self.pos) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    out.push_str(&self.src[run..self.pos]);
                }
            }
        }
    }

    /// Decode one escape sequence (cursor just past the backslash).
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let Some(&c) = self.buf.get(self.pos) else {
            return Err(self.error("unexpected end of input in string"));
        };
        self.pos += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xD800..0xDC00).contains(&hi) && self.buf[self.pos..].starts_with(b"\\u") {
                    // Surrogate pair: peek at the next escape without
                    // committing, in case it is not a low surrogate.
                    let save = self.pos;
                    self.pos += 2;
                    let lo = self.hex4()?;
                    if (0xDC00..0xE000).contains(&lo) {
                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        char::from_u32(cp).unwrap_or('\u{FFFD}')
                    } else {
                        self.pos = save;
                        '\u{FFFD}'
                    }
                } else {
                    // Lone surrogates can't be represented in a Rust string;
                    // replace them like Go's encoding/json does rather than
                    // rejecting the whole request.
                    char::from_u32(hi).unwrap_or('\u{FFFD}')
                }
            }
            _ => return Err(self.error("invalid escape in string")),
        };
        out.push(ch);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.buf.get(self.pos..self.pos + 4) else {
            return Err(self.error("unexpected end of input in \\u escape"));
        };
        let mut v = 0u32;
        for &d in digits {
            let Some(n) = (d as char).to_digit(16) else {
                return Err(self.error("invalid \\u escape in string"));
            };
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }

    /// Slice out a number token, validating RFC 8259 number syntax.
    fn number(&mut self) -> Result<&'a str> {
        let start = self.pos;
        let digits = |p: &mut Self| -> Result<()> {
            let from = p.pos;
            while p.buf.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            if p.pos == from {
                return Err(if p.pos == p.buf.len() {
                    p.error("unexpected end of input in number")
                } else {
                    p.error("invalid number")
                });
            }
            Ok(())
        };
        if self.buf.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        if self.buf.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else {
            digits(self)?;
        }
        if self.buf.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            digits(self)?;
        }
        if matches!(self.buf.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.buf.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            digits(self)?;
        }
        Ok(&self.src[start..self.pos])
    }

    /// Skip any JSON value (used for unknown fields).
    pub(super) fn skip(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'{') => self.object(|p, _| p.skip()),
            Some(b'[') => self.array(|p| p.skip()),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    // ---- typed values -------------------------------------------------------

    pub(super) fn str_val(&mut self) -> Result<String> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("string"));
        }
        Ok(self.string()?.into_owned())
    }

    pub(super) fn bool_val(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| false),
            _ => Err(self.unexpected("boolean")),
        }
    }

    /// An integer given as a JSON number or a decimal string (proto3 JSON
    /// allows both for every integer type; 64-bit ones are usually strings).
    pub(super) fn int_val<T: TryFrom<i128>>(&mut self, ty: &'static str) -> Result<T> {
        let text: Cow<'a, str> = match self.peek() {
            Some(b'"') => self.string()?,
            Some(b'-' | b'0'..=b'9') => Cow::Borrowed(self.number()?),
            _ => return Err(self.unexpected(ty)),
        };
        let Some(v) = parse_integer(&text) else {
            return Err(self.error(format_args!("invalid {ty}: {}", snippet(&text))));
        };
        T::try_from(v)
            .map_err(|_| self.error(format_args!("{ty} out of range: {}", snippet(&text))))
    }

    /// A double: a JSON number, or a string holding "NaN", "Infinity",
    /// "-Infinity" or a number (proto3 JSON).
    pub(super) fn f64_val(&mut self) -> Result<f64> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => {
                let t = self.number()?;
                // Valid JSON number syntax always parses (overflow gives ±inf).
                t.parse::<f64>()
                    .map_err(|_| self.error(format_args!("invalid double: {}", snippet(t))))
            }
            Some(b'"') => {
                let t = self.string()?;
                match &*t {
                    "NaN" => Ok(f64::NAN),
                    "Infinity" => Ok(f64::INFINITY),
                    "-Infinity" => Ok(f64::NEG_INFINITY),
                    s => s
                        .parse::<f64>()
                        .map_err(|_| self.error(format_args!("invalid double: {}", snippet(s)))),
                }
            }
            _ => Err(self.unexpected("number")),
        }
    }

    /// An enum: its integer value (what OTLP/JSON emits) or, leniently, its
    /// proto name such as "SPAN_KIND_SERVER". Unknown integers are kept, as
    /// proto3 enums are open.
    pub(super) fn enum_val(&mut self, from_name: fn(&str) -> Option<i32>) -> Result<i32> {
        if self.peek() == Some(b'"') {
            let save = self.pos;
            let t = self.string()?;
            if let Some(v) = from_name(&t) {
                return Ok(v);
            }
            if let Some(v) = parse_integer(&t).and_then(|v| i32::try_from(v).ok()) {
                return Ok(v);
            }
            self.pos = save;
            return Err(self.error(format_args!("unknown enum value {}", snippet(&t))));
        }
        self.int_val::<i32>("enum integer")
    }

    /// A trace or span id: hex (either case), exactly `len` bytes, or the
    /// empty string meaning "no id".
    pub(super) fn id_val(&mut self, len: usize) -> Result<Vec<u8>> {
        let what = if len == 16 { "trace id" } else { "span id" };
        if self.peek() != Some(b'"') {
            return Err(self.unexpected(what));
        }
        let t = self.string()?;
        if t.is_empty() {
            return Ok(Vec::new());
        }
        if t.len() != len * 2 {
            return Err(self.error(format_args!(
                "{what} must be {} hex characters, got {} characters: {}",
                len * 2,
                t.chars().count(),
                snippet(&t)
            )));
        }
        let mut out = vec![0u8; len];
        hex::decode_to_slice(t.as_bytes(), &mut out)
            .map_err(|_| self.error(format_args!("{what} is not hex: {}", snippet(&t))))?;
        Ok(out)
    }

    /// A proto `bytes` value: base64 (standard or URL-safe alphabet, padding
    /// optional, as proto3 JSON parsers accept).
    pub(super) fn bytes_val(&mut self) -> Result<Vec<u8>> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("base64 string"));
        }
        let t = self.string()?;
        super::base64::decode(&t)
            .ok_or_else(|| self.error(format_args!("invalid base64: {}", snippet(&t))))
    }

    pub(super) fn message<M: Decode>(&mut self) -> Result<M> {
        let mut m = M::default();
        self.object(|p, key| m.field(p, key))?;
        Ok(m)
    }

    // ---- fields: push the field name on the path, map null to "absent" ------

    #[inline]
    pub(super) fn field<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<Option<T>> {
        self.path.push(Seg::Key(name));
        let v = if self.try_null()? {
            None
        } else {
            Some(f(self)?)
        };
        self.path.pop();
        Ok(v)
    }

    pub(super) fn string_f(&mut self, name: &'static str) -> Result<String> {
        Ok(self.field(name, Self::str_val)?.unwrap_or_default())
    }

    pub(super) fn bool_f(&mut self, name: &'static str) -> Result<bool> {
        Ok(self.field(name, Self::bool_val)?.unwrap_or_default())
    }

    pub(super) fn u32_f(&mut self, name: &'static str) -> Result<u32> {
        Ok(self
            .field(name, |p| p.int_val("uint32"))?
            .unwrap_or_default())
    }

    pub(super) fn i32_f(&mut self, name: &'static str) -> Result<i32> {
        Ok(self
            .field(name, |p| p.int_val("int32"))?
            .unwrap_or_default())
    }

    pub(super) fn u64_f(&mut self, name: &'static str) -> Result<u64> {
        Ok(self
            .field(name, |p| p.int_val("uint64"))?
            .unwrap_or_default())
    }

    pub(super) fn i64_f(&mut self, name: &'static str) -> Result<i64> {
        Ok(self
            .field(name, |p| p.int_val("int64"))?
            .unwrap_or_default())
    }

    pub(super) fn f64_f(&mut self, name: &'static str) -> Result<f64> {
        Ok(self.field(name, Self::f64_val)?.unwrap_or_default())
    }

    pub(super) fn enum_f(
        &mut self,
        name: &'static str,
        from_name: fn(&str) -> Option<i32>,
    ) -> Result<i32> {
        Ok(self
            .field(name, |p| p.enum_val(from_name))?
            .unwrap_or_default())
    }

    pub(super) fn id_f(&mut self, name: &'static str, len: usize) -> Result<Vec<u8>> {
        Ok(self.field(name, |p| p.id_val(len))?.unwrap_or_default())
    }

    pub(super) fn msg_f<M: Decode>(&mut self, name: &'static str) -> Result<Option<M>> {
        self.field(name, Self::message::<M>)
    }

    pub(super) fn msgs_f<M: Decode>(&mut self, name: &'static str) -> Result<Vec<M>> {
        self.list_f(name, Self::message::<M>)
    }

    /// A repeated field. Elements may not be null (proto3 JSON forbids it and
    /// there is no sensible default for a message element).
    pub(super) fn list_f<T>(
        &mut self,
        name: &'static str,
        elem: fn(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        Ok(self
            .field(name, |p| {
                let mut v = Vec::new();
                p.array(|p| {
                    v.push(elem(p)?);
                    Ok(())
                })?;
                Ok(v)
            })?
            .unwrap_or_default())
    }
}

/// Parse a decimal integer; also accept integral values written with a
/// fraction or exponent ("1.0", "1e3"), as proto3 JSON parsers do.
fn parse_integer(s: &str) -> Option<i128> {
    if let Ok(v) = s.parse::<i128>() {
        return Some(v);
    }
    let f = s.parse::<f64>().ok()?;
    // 1.7e38 keeps well inside i128 (max ~1.7014e38) and beyond every target.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.0e38 {
        Some(f as i128)
    } else {
        None
    }
}
