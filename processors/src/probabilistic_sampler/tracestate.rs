//! W3C `tracestate` with its OpenTelemetry `ot` entry (`th`, `rv` and other
//! sub-keys), parsed and re-serialized the way the Collector's
//! `pkg/sampling` does (`w3ctracestate.go`, `oteltracestate.go`):
//!
//! - other vendors' entries and other `ot` sub-keys are kept, in order;
//! - on output the `ot` entry comes first (W3C: a modified entry moves to
//!   the front), its sub-keys as `rv`, `th`, then the others;
//! - optional whitespace and empty list members are dropped on output.
//!
//! Parsing borrows from the input; nothing is allocated unless a value is
//! rewritten.

use super::sampling::{Randomness, Threshold, ValueError};
use std::borrow::Cow;

const MAX_W3C_LENGTH: usize = 1024;
const MAX_MEMBERS: usize = 32;
const MAX_KEY_LENGTH: usize = 256;
const MAX_TENANT_LENGTH: usize = 241;
const MAX_SYSTEM_LENGTH: usize = 14;
const MAX_OTEL_LENGTH: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    #[error("tracestate is too long or has too many members")]
    Size,
    #[error("tracestate syntax error")]
    Syntax,
    #[error("ot entry of the tracestate: syntax error")]
    OtSyntax,
    #[error("ot entry of the tracestate: {0}")]
    Value(ValueError),
}

/// The `ot` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelTraceState<'a> {
    /// `rv`: the parsed value and its text as received (or re-encoded).
    pub rv: Option<(Randomness, Cow<'a, str>)>,
    /// `th`: the parsed value and its text.
    pub th: Option<(Threshold, Cow<'a, str>)>,
    /// Other sub-keys, in order.
    pub extra: Vec<(&'a str, &'a str)>,
}

impl<'a> OtelTraceState<'a> {
    pub fn parse(input: &'a str) -> Result<OtelTraceState<'a>, TraceStateError> {
        if input.len() > MAX_OTEL_LENGTH {
            return Err(TraceStateError::Size);
        }
        if input.is_empty() || input.ends_with(';') {
            return Err(TraceStateError::OtSyntax);
        }
        let mut ot = OtelTraceState::default();
        let mut first_error = None;
        for member in input.split(';') {
            let (key, value) = member.split_once(':').ok_or(TraceStateError::OtSyntax)?;
            if !valid_otel_key(key) || !value.bytes().all(otel_value_char) {
                return Err(TraceStateError::OtSyntax);
            }
            match key {
                "rv" => match Randomness::parse_rvalue(value) {
                    Ok(r) => ot.rv = Some((r, Cow::Borrowed(value))),
                    Err(e) => {
                        ot.rv = None;
                        first_error.get_or_insert(TraceStateError::Value(e));
                    }
                },
                "th" => match Threshold::parse_tvalue(value) {
                    Ok(t) => ot.th = Some((t, Cow::Borrowed(value))),
                    Err(e) => {
                        ot.th = None;
                        first_error.get_or_insert(TraceStateError::Value(e));
                    }
                },
                _ => ot.extra.push((key, value)),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(ot),
        }
    }

    pub fn has_any(&self) -> bool {
        self.rv.is_some() || self.th.is_some() || !self.extra.is_empty()
    }

    pub fn threshold(&self) -> Option<Threshold> {
        self.th.as_ref().map(|(t, _)| *t)
    }

    pub fn randomness(&self) -> Option<Randomness> {
        self.rv.as_ref().map(|(r, _)| *r)
    }

    pub fn set_randomness(&mut self, r: Randomness) {
        self.rv = Some((r, Cow::Owned(r.rvalue())));
    }

    pub fn clear_threshold(&mut self) {
        self.th = None;
    }

    /// Writes a new threshold unless that would raise the probability the
    /// item already carries (the spec forbids it); returns whether it did.
    /// [`Threshold::NEVER`] has no encoding and clears `th`.
    pub fn update_threshold(&mut self, t: Threshold) -> bool {
        if let Some((existing, _)) = &self.th {
            if *existing > t {
                return false;
            }
        }
        let text = t.tvalue();
        self.th = if text.is_empty() {
            None
        } else {
            Some((t, Cow::Owned(text)))
        };
        true
    }

    pub fn serialize(&self, out: &mut String) {
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push(';');
            }
            first = false;
        };
        if let Some((_, text)) = &self.rv {
            sep(out);
            out.push_str("rv:");
            out.push_str(text);
        }
        if let Some((_, text)) = &self.th {
            sep(out);
            out.push_str("th:");
            out.push_str(text);
        }
        for (k, v) in &self.extra {
            sep(out);
            out.push_str(k);
            out.push(':');
            out.push_str(v);
        }
    }
}

/// A parsed W3C `tracestate`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState<'a> {
    pub ot: OtelTraceState<'a>,
    /// Other vendors' entries, in order, without surrounding whitespace.
    pub others: Vec<(&'a str, &'a str)>,
}

impl<'a> TraceState<'a> {
    pub fn parse(input: &'a str) -> Result<TraceState<'a>, TraceStateError> {
        let mut ts = TraceState::default();
        if input.is_empty() {
            return Ok(ts);
        }
        if input.len() > MAX_W3C_LENGTH {
            return Err(TraceStateError::Size);
        }
        let mut members = 0;
        for member in input.split(',') {
            let member = member.trim_matches(|c| c == ' ' || c == '\t');
            if member.is_empty() {
                continue;
            }
            members += 1;
            // W3C allows 32 list members. (The Collector's scanner stops at
            // the 32nd, counting empty members too; we follow W3C.)
            if members > MAX_MEMBERS {
                return Err(TraceStateError::Size);
            }
            let (key, value) = member.split_once('=').ok_or(TraceStateError::Syntax)?;
            check_w3c_key(key)?;
            if !valid_w3c_value(value) {
                return Err(TraceStateError::Syntax);
            }
            if key == "ot" {
                ts.ot = OtelTraceState::parse(value)?;
            } else {
                ts.others.push((key, value));
            }
        }
        Ok(ts)
    }

    /// Appends the W3C encoding to `out`.
    pub fn serialize(&self, out: &mut String) {
        let mut first = true;
        if self.ot.has_any() {
            out.push_str("ot=");
            self.ot.serialize(out);
            first = false;
        }
        for (k, v) in &self.others {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        self.serialize(&mut s);
        s
    }
}

fn check_w3c_key(key: &str) -> Result<(), TraceStateError> {
    if key.is_empty() {
        return Err(TraceStateError::Syntax);
    }
    if key.len() > MAX_KEY_LENGTH {
        return Err(TraceStateError::Size);
    }
    let b = key.as_bytes();
    let key_chars = |s: &[u8]| {
        s.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(c))
    };
    match key.split_once('@') {
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            if t.is_empty() || s.is_empty() {
                return Err(TraceStateError::Syntax);
            }
            if !(t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                || !s[0].is_ascii_lowercase()
                || !key_chars(&t[1..])
                || !key_chars(&s[1..])
            {
                return Err(TraceStateError::Syntax);
            }
            if t.len() > MAX_TENANT_LENGTH || s.len() > MAX_SYSTEM_LENGTH {
                return Err(TraceStateError::Size);
            }
            Ok(())
        }
        None => {
            if b[0].is_ascii_lowercase() && key_chars(&b[1..]) {
                Ok(())
            } else {
                Err(TraceStateError::Syntax)
            }
        }
    }
}

/// value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr;
/// nblk-chr = %x21-2B / %x2D-3C / %x3E-7E.
fn valid_w3c_value(v: &str) -> bool {
    let b = v.as_bytes();
    let nonblank = |c: u8| matches!(c, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match b.split_last() {
        None => false,
        Some((last, rest)) => {
            b.len() <= 256 && nonblank(*last) && rest.iter().all(|c| *c == 0x20 || nonblank(*c))
        }
    }
}

/// key = lcalpha *(lcalpha / DIGIT)
fn valid_otel_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// chr = ucalpha / lcalpha / DIGIT / "." / "_" / "-"
fn otel_value_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-'
}
