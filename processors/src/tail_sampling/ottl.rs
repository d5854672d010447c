//! The subset of OTTL boolean conditions used by the `ottl_condition` policy.
//!
//! Conditions are parsed and type-checked once, at config load; anything
//! outside the subset is a load error that names the construct and its
//! column, never a condition that is silently false. The subset (documented
//! in docs/components/tail-sampling.md):
//!
//! - paths, span context: `name`, `kind`, `status.code`, `status.message`,
//!   `attributes["k"]`, `trace_id.string`, `span_id.string`,
//!   `parent_span_id.string`, `trace_state`, `start_time_unix_nano`,
//!   `end_time_unix_nano`, `dropped_attributes_count`, `dropped_events_count`,
//!   `dropped_links_count`, `resource.attributes["k"]`,
//!   `instrumentation_scope.name` / `.version` / `.attributes["k"]`; a
//!   leading `span.` is accepted;
//! - span event context: `name`, `attributes["k"]`, `time_unix_nano`,
//!   `dropped_attributes_count` (also with `spanevent.`), every span path
//!   above as `span.<path>`, and `resource.…` / `instrumentation_scope.…`;
//! - literals: strings, ints, floats, `true`, `false`, `nil`; the enums
//!   `SPAN_KIND_*` and `STATUS_CODE_*`;
//! - `==`, `!=`, `<`, `<=`, `>`, `>=`; `+`, `-`, `*`, `/` on numbers;
//!   `and`, `or`, `not`, parentheses;
//! - `IsMatch(value, "regex")`, `IsString`, `IsInt`, `IsDouble`, `IsBool`,
//!   `IsMap`, `IsList`.
//!
//! Comparison follows OTTL: values of different types are never equal and
//! never ordered (`!=` is true, `<` is false), `nil` equals only `nil`, ints
//! and floats compare numerically, strings byte-wise. Evaluation errors
//! (division by zero, arithmetic on a non-number, `IsMatch` on a map or a
//! list) are handled by the policy's `error_mode`.

use confluo_pipeline::proto::common::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use confluo_pipeline::proto::trace::{span::Event, Span};
use std::cmp::Ordering;
use std::fmt;

/// A load error: what is wrong and the 1-based column where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.column)
    }
}

/// An evaluation error (the OTTL runtime errors the subset can raise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

/// Which record the condition is evaluated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Span,
    SpanEvent,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Str(usize),
    Int(i64),
    Float(f64),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Dot,
    Op(CmpOp),
    Arith(ArithOp),
    Bytes,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

struct Lexer<'a> {
    src: &'a str,
    toks: Vec<(Tok<'a>, usize)>,
    strings: Vec<String>,
}

fn err<T>(src: &str, at: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        column: src[..at.min(src.len())].chars().count() + 1,
        message: message.into(),
    })
}

fn lex(src: &str) -> Result<Lexer<'_>, ParseError> {
    let b = src.as_bytes();
    let mut lx = Lexer {
        src,
        toks: Vec::new(),
        strings: Vec::new(),
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b',' => Tok::Comma,
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => Tok::Dot,
            b'+' => Tok::Arith(ArithOp::Add),
            b'*' => Tok::Arith(ArithOp::Mul),
            b'/' => Tok::Arith(ArithOp::Div),
            b'-' if !b
                .get(i + 1)
                .is_some_and(|d| d.is_ascii_digit() || *d == b'.')
                || matches!(
                    lx.toks.last(),
                    Some((
                        Tok::Int(_) | Tok::Float(_) | Tok::Str(..) | Tok::RParen | Tok::RBracket,
                        _
                    ))
                )
                || matches!(lx.toks.last(), Some((Tok::Ident(w), _)) if !matches!(*w, "and" | "or" | "not")) =>
            {
                Tok::Arith(ArithOp::Sub)
            }
            b'=' | b'!' | b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'=', true) => CmpOp::Eq,
                    (b'!', true) => CmpOp::Ne,
                    (b'<', true) => CmpOp::Le,
                    (b'>', true) => CmpOp::Ge,
                    (b'<', false) => CmpOp::Lt,
                    (b'>', false) => CmpOp::Gt,
                    _ => return err(src, i, format!("unexpected `{}`", c as char)),
                };
                i += if eq { 2 } else { 1 };
                lx.toks.push((Tok::Op(op), start));
                continue;
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return err(src, start, "unterminated string"),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let e = match b.get(i + 1) {
                                Some(b'"') => '"',
                                Some(b'\\') => '\\',
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                Some(b'r') => '\r',
                                _ => return err(src, i, "unsupported escape in string"),
                            };
                            s.push(e);
                            i += 2;
                        }
                        Some(_) => {
                            let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                lx.strings.push(s);
                lx.toks.push((Tok::Str(lx.strings.len() - 1), start));
                continue;
            }
            b'0' if matches!(b.get(i + 1), Some(b'x' | b'X')) => {
                i += 2;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                lx.toks.push((Tok::Bytes, start));
                continue;
            }
            b'0'..=b'9' | b'-' | b'.' => {
                i += 1;
                let mut float = c == b'.';
                while i < b.len() {
                    let d = b[i];
                    let sign_after_exp =
                        matches!(d, b'+' | b'-') && matches!(b[i - 1], b'e' | b'E');
                    if d.is_ascii_digit() || sign_after_exp {
                        i += 1;
                    } else if matches!(d, b'.' | b'e' | b'E') {
                        float = true;
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text = &src[start..i];
                let tok = if float {
                    text.parse::<f64>().map(Tok::Float).ok()
                } else {
                    text.parse::<i64>().map(Tok::Int).ok()
                };
                match tok {
                    Some(t) => lx.toks.push((t, start)),
                    None => return err(src, start, format!("invalid number `{text}`")),
                }
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                lx.toks.push((Tok::Ident(&src[start..i]), start));
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(src, i, format!("unexpected character `{ch}`"));
            }
        };
        lx.toks.push((tok, start));
        i += 1;
    }
    lx.toks.push((Tok::End, src.len()));
    Ok(lx)
}

/// Where a path reads from.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    Name,
    Kind,
    StatusCode,
    StatusMessage,
    TraceId,
    SpanId,
    ParentSpanId,
    TraceState,
    StartTime,
    EndTime,
    DroppedAttributes,
    DroppedEvents,
    DroppedLinks,
    Attr(String),
    EventName,
    EventTime,
    EventDroppedAttributes,
    EventAttr(String),
    ResourceAttr(String),
    ScopeName,
    ScopeVersion,
    ScopeAttr(String),
}

#[derive(Clone, Debug)]
enum Lit {
    Nil,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TypeFn {
    String,
    Int,
    Double,
    Bool,
    Map,
    List,
}

#[derive(Debug)]
enum Node {
    Lit(Lit),
    Path(Field),
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    IsMatch(Box<Node>, regex_automata::meta::Regex),
    IsType(TypeFn, Box<Node>),
}

impl Node {
    /// Statically boolean: a condition, not a value.
    fn is_condition(&self) -> bool {
        matches!(
            self,
            Node::Or(..)
                | Node::And(..)
                | Node::Not(_)
                | Node::Cmp(..)
                | Node::IsMatch(..)
                | Node::IsType(..)
        ) || matches!(self, Node::Lit(Lit::Bool(_)))
    }
}

struct Parser<'a> {
    lx: Lexer<'a>,
    pos: usize,
    ctx: Context,
}

const ENUMS: [(&str, i64); 9] = [
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
];

impl<'a> Parser<'a> {
    fn peek(&self) -> Tok<'a> {
        self.lx.toks[self.pos].0
    }
    fn at(&self) -> usize {
        self.lx.toks[self.pos].1
    }
    fn bump(&mut self) -> Tok<'a> {
        let t = self.peek();
        if self.pos + 1 < self.lx.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn fail<T>(&self, at: usize, msg: impl Into<String>) -> Result<T, ParseError> {
        err(self.lx.src, at, msg)
    }
    fn describe(&self, t: Tok<'_>) -> String {
        match t {
            Tok::End => "end of condition".into(),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(i) => format!("string \"{}\"", self.lx.strings[i]),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Float(f) => format!("`{f}`"),
            Tok::Bytes => "byte literal".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Dot => "`.`".into(),
            Tok::Op(_) => "comparison operator".into(),
            Tok::Arith(_) => "arithmetic operator".into(),
        }
    }
    fn expect(&mut self, want: Tok<'_>, what: &str) -> Result<(), ParseError> {
        if self.peek() == want {
            self.bump();
            Ok(())
        } else {
            let t = self.peek();
            self.fail(
                self.at(),
                format!("expected {what}, found {}", self.describe(t)),
            )
        }
    }

    fn condition(&mut self) -> Result<Node, ParseError> {
        let at = self.at();
        let n = self.or()?;
        if !n.is_condition() {
            return self.fail(
                at,
                "a value is not a condition; compare it (for example `== true` or `!= nil`)",
            );
        }
        Ok(n)
    }

    fn bool_operand(
        &mut self,
        next: fn(&mut Self) -> Result<Node, ParseError>,
    ) -> Result<Node, ParseError> {
        let at = self.at();
        let n = next(self)?;
        if !n.is_condition() {
            return self.fail(at, "operands of `and`, `or` and `not` must be conditions");
        }
        Ok(n)
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        let mut left = self.and()?;
        while self.peek() == Tok::Ident("or") {
            if !left.is_condition() {
                return self.fail(
                    self.at(),
                    "operands of `and`, `or` and `not` must be conditions",
                );
            }
            self.bump();
            let right = self.bool_operand(Self::and)?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        let mut left = self.not()?;
        while self.peek() == Tok::Ident("and") {
            if !left.is_condition() {
                return self.fail(
                    self.at(),
                    "operands of `and`, `or` and `not` must be conditions",
                );
            }
            self.bump();
            let right = self.bool_operand(Self::not)?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, ParseError> {
        if self.peek() == Tok::Ident("not") {
            self.bump();
            let inner = self.bool_operand(Self::not)?;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Node, ParseError> {
        let left_at = self.at();
        let left = self.add()?;
        if let Tok::Op(op) = self.peek() {
            let op_at = self.at();
            self.bump();
            let right_at = self.at();
            let right = self.add()?;
            for (n, at) in [(&left, left_at), (&right, right_at)] {
                if n.is_condition()
                    && !matches!(n, Node::Lit(_) | Node::IsMatch(..) | Node::IsType(..))
                {
                    return self.fail(at, "a comparison cannot be compared; use `and` / `or`");
                }
            }
            if let Tok::Op(_) = self.peek() {
                return self.fail(self.at(), "comparisons cannot be chained");
            }
            let _ = op_at;
            return Ok(Node::Cmp(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn arith_operand(
        &mut self,
        next: fn(&mut Self) -> Result<Node, ParseError>,
    ) -> Result<Node, ParseError> {
        let at = self.at();
        let n = next(self)?;
        if n.is_condition() {
            return self.fail(at, "arithmetic needs numbers, not conditions");
        }
        Ok(n)
    }

    fn add(&mut self) -> Result<Node, ParseError> {
        let mut left = self.mul()?;
        while let Tok::Arith(op @ (ArithOp::Add | ArithOp::Sub)) = self.peek() {
            if left.is_condition() {
                return self.fail(self.at(), "arithmetic needs numbers, not conditions");
            }
            self.bump();
            let right = self.arith_operand(Self::mul)?;
            left = Node::Arith(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn mul(&mut self) -> Result<Node, ParseError> {
        let mut left = self.primary()?;
        while let Tok::Arith(op @ (ArithOp::Mul | ArithOp::Div)) = self.peek() {
            if left.is_condition() {
                return self.fail(self.at(), "arithmetic needs numbers, not conditions");
            }
            self.bump();
            let right = self.arith_operand(Self::primary)?;
            left = Node::Arith(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let at = self.at();
        match self.bump() {
            Tok::LParen => {
                let n = self.or()?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(n)
            }
            Tok::Str(i) => Ok(Node::Lit(Lit::Str(self.lx.strings[i].clone()))),
            Tok::Int(i) => Ok(Node::Lit(Lit::Int(i))),
            Tok::Float(f) => Ok(Node::Lit(Lit::Float(f))),
            Tok::Bytes => self.fail(at, "unsupported construct: byte literals (0x…)"),
            Tok::Ident("true") => Ok(Node::Lit(Lit::Bool(true))),
            Tok::Ident("false") => Ok(Node::Lit(Lit::Bool(false))),
            Tok::Ident("nil") => Ok(Node::Lit(Lit::Nil)),
            Tok::Ident(id) if id.starts_with(|c: char| c.is_ascii_uppercase()) => {
                if self.peek() == Tok::LParen {
                    return self.call(id, at);
                }
                match ENUMS.iter().find(|(n, _)| *n == id) {
                    Some((_, v)) => Ok(Node::Lit(Lit::Int(*v))),
                    None => self.fail(at, format!("unsupported enum `{id}`")),
                }
            }
            Tok::Ident(id) => {
                if self.peek() == Tok::LParen {
                    return self.fail(at, format!("unsupported function `{id}`"));
                }
                self.path(id, at)
            }
            t => self.fail(at, format!("expected a value, found {}", self.describe(t))),
        }
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Node, ParseError> {
        let type_fn = match name {
            "IsMatch" => None,
            "IsString" => Some(TypeFn::String),
            "IsInt" => Some(TypeFn::Int),
            "IsDouble" => Some(TypeFn::Double),
            "IsBool" => Some(TypeFn::Bool),
            "IsMap" => Some(TypeFn::Map),
            "IsList" => Some(TypeFn::List),
            _ => return self.fail(at, format!("unsupported function `{name}`")),
        };
        self.bump(); // (
        let arg_at = self.at();
        let target = self.add()?;
        if target.is_condition() {
            return self.fail(
                arg_at,
                format!("the first argument of `{name}` must be a value"),
            );
        }
        let node = match type_fn {
            Some(t) => Node::IsType(t, Box::new(target)),
            None => {
                self.expect(Tok::Comma, "`,` and a regular expression")?;
                let re_at = self.at();
                let Tok::Str(i) = self.bump() else {
                    return self.fail(re_at, "the pattern of `IsMatch` must be a string literal");
                };
                let re = regex_automata::meta::Regex::new(&self.lx.strings[i]).map_err(|e| {
                    ParseError {
                        column: self.lx.src[..re_at].chars().count() + 1,
                        message: format!("invalid regular expression: {e}"),
                    }
                })?;
                Node::IsMatch(Box::new(target), re)
            }
        };
        self.expect(Tok::RParen, &format!("`)` closing `{name}`"))?;
        Ok(node)
    }

    /// `a.b.c["k"]`: dotted segments, then at most one string key.
    fn path(&mut self, first: &str, at: usize) -> Result<Node, ParseError> {
        let mut segs: Vec<&str> = vec![first];
        while self.peek() == Tok::Dot {
            self.bump();
            let seg_at = self.at();
            match self.bump() {
                Tok::Ident(s) => segs.push(s),
                t => {
                    return self.fail(
                        seg_at,
                        format!("expected a path segment, found {}", self.describe(t)),
                    )
                }
            }
        }
        let mut key = None;
        if self.peek() == Tok::LBracket {
            self.bump();
            let key_at = self.at();
            match self.bump() {
                Tok::Str(i) => key = Some(self.lx.strings[i].clone()),
                _ => return self.fail(key_at, "attribute keys must be string literals"),
            }
            self.expect(Tok::RBracket, "`]`")?;
            if self.peek() == Tok::LBracket {
                return self.fail(
                    self.at(),
                    "unsupported construct: nested indexing (`[…][…]`)",
                );
            }
        }
        let text = segs.join(".");
        match resolve(self.ctx, &segs, key) {
            Some(f) => Ok(Node::Path(f)),
            None => self.fail(
                at,
                format!(
                    "unsupported path `{text}` in the {} context",
                    match self.ctx {
                        Context::Span => "span",
                        Context::SpanEvent => "spanevent",
                    }
                ),
            ),
        }
    }
}

fn resolve(ctx: Context, segs: &[&str], key: Option<String>) -> Option<Field> {
    let (head, rest) = segs.split_first()?;
    match (*head, rest) {
        ("resource", ["attributes"]) => return key.map(Field::ResourceAttr),
        ("instrumentation_scope", [f]) => {
            return match (*f, key) {
                ("name", None) => Some(Field::ScopeName),
                ("version", None) => Some(Field::ScopeVersion),
                ("attributes", Some(k)) => Some(Field::ScopeAttr(k)),
                _ => None,
            }
        }
        _ => {}
    }
    match ctx {
        Context::Span => {
            let fields = if *head == "span" { rest } else { segs };
            span_field(fields, key)
        }
        Context::SpanEvent => {
            if *head == "span" {
                return span_field(rest, key);
            }
            let fields = if *head == "spanevent" { rest } else { segs };
            match (fields, key) {
                (["name"], None) => Some(Field::EventName),
                (["time_unix_nano"], None) => Some(Field::EventTime),
                (["dropped_attributes_count"], None) => Some(Field::EventDroppedAttributes),
                (["attributes"], Some(k)) => Some(Field::EventAttr(k)),
                _ => None,
            }
        }
    }
}

fn span_field(fields: &[&str], key: Option<String>) -> Option<Field> {
    Some(match (fields, key) {
        (["attributes"], Some(k)) => Field::Attr(k),
        (_, Some(_)) => return None,
        (["name"], None) => Field::Name,
        (["kind"], None) => Field::Kind,
        (["status", "code"], None) => Field::StatusCode,
        (["status", "message"], None) => Field::StatusMessage,
        (["trace_id", "string"], None) => Field::TraceId,
        (["span_id", "string"], None) => Field::SpanId,
        (["parent_span_id", "string"], None) => Field::ParentSpanId,
        (["trace_state"], None) => Field::TraceState,
        (["start_time_unix_nano"], None) => Field::StartTime,
        (["end_time_unix_nano"], None) => Field::EndTime,
        (["dropped_attributes_count"], None) => Field::DroppedAttributes,
        (["dropped_events_count"], None) => Field::DroppedEvents,
        (["dropped_links_count"], None) => Field::DroppedLinks,
        _ => return None,
    })
}

/// One compiled condition.
#[derive(Debug)]
pub struct Condition {
    root: Node,
}

impl Condition {
    pub fn parse(src: &str, ctx: Context) -> Result<Condition, ParseError> {
        let lx = lex(src)?;
        let mut p = Parser { lx, pos: 0, ctx };
        if p.peek() == Tok::End {
            return p.fail(0, "empty condition");
        }
        let root = p.condition()?;
        if p.peek() != Tok::End {
            let t = p.peek();
            let what = match t {
                Tok::Ident("where") => {
                    "unsupported construct: `where` (write the condition alone)".to_string()
                }
                _ => format!("unexpected {} after the condition", p.describe(t)),
            };
            return p.fail(p.at(), what);
        }
        Ok(Condition { root })
    }

    pub fn eval(&self, r: &Record<'_>) -> Result<bool, EvalError> {
        eval_bool(&self.root, r)
    }
}

/// What a condition is evaluated on.
pub struct Record<'a> {
    pub resource: &'a [KeyValue],
    pub scope: Option<&'a InstrumentationScope>,
    pub span: &'a Span,
    pub event: Option<&'a Event>,
}

#[derive(Debug, PartialEq)]
enum Val<'a> {
    Nil,
    Str(std::borrow::Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(&'a [u8]),
    Map(&'a AnyValue),
    List(&'a AnyValue),
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Val<'a> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map_or(Val::Nil, any)
}

fn any(v: &AnyValue) -> Val<'_> {
    match &v.value {
        None => Val::Nil,
        Some(Value::StringValue(s)) => Val::Str(s.as_str().into()),
        Some(Value::IntValue(i)) => Val::Int(*i),
        Some(Value::DoubleValue(f)) => Val::Float(*f),
        Some(Value::BoolValue(b)) => Val::Bool(*b),
        Some(Value::BytesValue(b)) => Val::Bytes(b),
        Some(Value::KvlistValue(_)) => Val::Map(v),
        Some(Value::ArrayValue(_)) => Val::List(v),
        // A profiles dictionary index: no value outside profiles.
        Some(Value::StringValueStrindex(_)) => Val::Nil,
    }
}

fn hex_id(b: &[u8]) -> Val<'static> {
    // OTTL renders an empty (invalid) id as the empty string.
    if b.iter().all(|x| *x == 0) {
        return Val::Str("".into());
    }
    Val::Str(lower_hex(b).into())
}

fn lower_hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        out.push(DIGITS[usize::from(x >> 4)] as char);
        out.push(DIGITS[usize::from(x & 15)] as char);
    }
    out
}

fn read<'a>(f: &'a Field, r: &Record<'a>) -> Val<'a> {
    let s = r.span;
    let u = |n: u64| Val::Int(i64::try_from(n).unwrap_or(i64::MAX));
    match f {
        Field::Name => Val::Str(s.name.as_str().into()),
        Field::Kind => Val::Int(i64::from(s.kind)),
        Field::StatusCode => Val::Int(s.status.as_ref().map_or(0, |st| i64::from(st.code))),
        Field::StatusMessage => Val::Str(
            s.status
                .as_ref()
                .map_or("", |st| st.message.as_str())
                .into(),
        ),
        Field::TraceId => hex_id(&s.trace_id),
        Field::SpanId => hex_id(&s.span_id),
        Field::ParentSpanId => hex_id(&s.parent_span_id),
        Field::TraceState => Val::Str(s.trace_state.as_str().into()),
        Field::StartTime => u(s.start_time_unix_nano),
        Field::EndTime => u(s.end_time_unix_nano),
        Field::DroppedAttributes => Val::Int(i64::from(s.dropped_attributes_count)),
        Field::DroppedEvents => Val::Int(i64::from(s.dropped_events_count)),
        Field::DroppedLinks => Val::Int(i64::from(s.dropped_links_count)),
        Field::Attr(k) => attr(&s.attributes, k),
        Field::EventName => Val::Str(r.event.map_or("", |e| e.name.as_str()).into()),
        Field::EventTime => u(r.event.map_or(0, |e| e.time_unix_nano)),
        Field::EventDroppedAttributes => {
            Val::Int(i64::from(r.event.map_or(0, |e| e.dropped_attributes_count)))
        }
        Field::EventAttr(k) => r.event.map_or(Val::Nil, |e| attr(&e.attributes, k)),
        Field::ResourceAttr(k) => attr(r.resource, k),
        Field::ScopeName => Val::Str(r.scope.map_or("", |sc| sc.name.as_str()).into()),
        Field::ScopeVersion => Val::Str(r.scope.map_or("", |sc| sc.version.as_str()).into()),
        Field::ScopeAttr(k) => r.scope.map_or(Val::Nil, |sc| attr(&sc.attributes, k)),
    }
}

fn eval_value<'a>(n: &'a Node, r: &Record<'a>) -> Result<Val<'a>, EvalError> {
    Ok(match n {
        Node::Lit(Lit::Nil) => Val::Nil,
        Node::Lit(Lit::Str(s)) => Val::Str(s.as_str().into()),
        Node::Lit(Lit::Int(i)) => Val::Int(*i),
        Node::Lit(Lit::Float(f)) => Val::Float(*f),
        Node::Lit(Lit::Bool(b)) => Val::Bool(*b),
        Node::Path(f) => read(f, r),
        Node::Arith(op, a, b) => arith(*op, eval_value(a, r)?, eval_value(b, r)?)?,
        // Conditions used as values (`IsMatch(…) == true`).
        _ => Val::Bool(eval_bool(n, r)?),
    })
}

fn arith<'a>(op: ArithOp, a: Val<'a>, b: Val<'a>) -> Result<Val<'a>, EvalError> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => {
            let v = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div if y == 0 => return Err(EvalError("division by zero".into())),
                ArithOp::Div => x.checked_div(y),
            };
            v.map(Val::Int)
                .ok_or_else(|| EvalError("integer overflow".into()))
        }
        (Val::Int(x), Val::Float(y)) => float_arith(op, x as f64, y),
        (Val::Float(x), Val::Int(y)) => float_arith(op, x, y as f64),
        (Val::Float(x), Val::Float(y)) => float_arith(op, x, y),
        (a, b) => Err(EvalError(format!(
            "arithmetic on {} and {}",
            type_name(&a),
            type_name(&b)
        ))),
    }
}

fn float_arith(op: ArithOp, x: f64, y: f64) -> Result<Val<'static>, EvalError> {
    Ok(Val::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div if y == 0.0 => return Err(EvalError("division by zero".into())),
        ArithOp::Div => x / y,
    }))
}

fn type_name(v: &Val<'_>) -> &'static str {
    match v {
        Val::Nil => "nil",
        Val::Str(_) => "a string",
        Val::Int(_) => "an int",
        Val::Float(_) => "a double",
        Val::Bool(_) => "a bool",
        Val::Bytes(_) => "bytes",
        Val::Map(_) => "a map",
        Val::List(_) => "a list",
    }
}

fn eval_bool(n: &Node, r: &Record<'_>) -> Result<bool, EvalError> {
    match n {
        Node::Lit(Lit::Bool(b)) => Ok(*b),
        Node::Or(a, b) => Ok(eval_bool(a, r)? || eval_bool(b, r)?),
        Node::And(a, b) => Ok(eval_bool(a, r)? && eval_bool(b, r)?),
        Node::Not(a) => Ok(!eval_bool(a, r)?),
        Node::Cmp(op, a, b) => Ok(compare(*op, &eval_value(a, r)?, &eval_value(b, r)?)),
        Node::IsType(t, a) => {
            let v = eval_value(a, r)?;
            Ok(matches!(
                (t, v),
                (TypeFn::String, Val::Str(_))
                    | (TypeFn::Int, Val::Int(_))
                    | (TypeFn::Double, Val::Float(_))
                    | (TypeFn::Bool, Val::Bool(_))
                    | (TypeFn::Map, Val::Map(_))
                    | (TypeFn::List, Val::List(_))
            ))
        }
        Node::IsMatch(a, re) => match eval_value(a, r)? {
            Val::Nil => Ok(false),
            Val::Str(s) => Ok(re.is_match(s.as_ref())),
            Val::Int(i) => Ok(re.is_match(i.to_string().as_str())),
            Val::Float(f) => Ok(re.is_match(f.to_string().as_str())),
            Val::Bool(b) => Ok(re.is_match(if b { "true" } else { "false" })),
            Val::Bytes(b) => Ok(re.is_match(lower_hex(b).as_str())),
            v => Err(EvalError(format!("IsMatch on {}", type_name(&v)))),
        },
        // Rejected at parse time: values are never conditions.
        Node::Lit(_) | Node::Path(_) | Node::Arith(..) => {
            Err(EvalError("a value is not a condition".into()))
        }
    }
}

/// OTTL comparison: mismatched types are unequal and unordered.
fn compare(op: CmpOp, a: &Val<'_>, b: &Val<'_>) -> bool {
    let ord = match (a, b) {
        (Val::Nil, Val::Nil) => Some(Ordering::Equal),
        (Val::Str(x), Val::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Float(y)) => (*x as f64).partial_cmp(y),
        (Val::Float(x), Val::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y),
        (Val::Bytes(x), Val::Bytes(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => {
            // Booleans are only equal or not.
            return match op {
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
                _ => false,
            };
        }
        (Val::Map(x), Val::Map(y)) | (Val::List(x), Val::List(y)) => {
            return match op {
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
                _ => false,
            };
        }
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_pipeline::attrs;
    use confluo_pipeline::proto::trace::Status;

    fn span() -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            name: "GET /users".into(),
            kind: 2,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 3_500_000_000,
            status: Some(Status {
                code: 2,
                message: "boom".into(),
            }),
            attributes: vec![
                attrs::key_value("http.status_code", attrs::int(503)),
                attrs::key_value("ratio", attrs::double(0.25)),
                attrs::key_value("user", attrs::string("alice")),
                attrs::key_value("retry", attrs::boolean(true)),
            ],
            events: vec![Event {
                name: "exception".into(),
                attributes: vec![attrs::key_value(
                    "exception.type",
                    attrs::string("ValueError"),
                )],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn check(src: &str, ctx: Context) -> Result<bool, EvalError> {
        let s = span();
        let resource = vec![attrs::key_value("service.name", attrs::string("checkout"))];
        let scope = InstrumentationScope {
            name: "io.opentelemetry.flask".into(),
            version: "1.2".into(),
            ..Default::default()
        };
        let r = Record {
            resource: &resource,
            scope: Some(&scope),
            span: &s,
            event: (ctx == Context::SpanEvent).then(|| &s.events[0]),
        };
        Condition::parse(src, ctx)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval(&r)
    }

    fn yes(src: &str) {
        assert_eq!(check(src, Context::Span), Ok(true), "{src}");
    }
    fn no(src: &str) {
        assert_eq!(check(src, Context::Span), Ok(false), "{src}");
    }

    #[test]
    fn span_paths_literals_and_enums() {
        yes(r#"name == "GET /users""#);
        yes(r#"span.name != "other""#);
        yes("kind == SPAN_KIND_SERVER");
        no("kind == SPAN_KIND_CLIENT");
        yes("status.code == STATUS_CODE_ERROR");
        yes(r#"status.message == "boom""#);
        yes(r#"attributes["http.status_code"] >= 500"#);
        yes(r#"attributes["http.status_code"] == 503.0"#);
        yes(r#"attributes["ratio"] < 0.5"#);
        yes(r#"attributes["retry"] == true"#);
        yes(r#"attributes["missing"] == nil"#);
        no(r#"attributes["user"] == nil"#);
        yes(r#"resource.attributes["service.name"] == "checkout""#);
        yes(r#"instrumentation_scope.name == "io.opentelemetry.flask""#);
        yes(r#"instrumentation_scope.version == "1.2""#);
        yes(r#"trace_id.string == "abababababababababababababababab""#);
        yes(r#"span_id.string == "0102030405060708""#);
        yes(r#"parent_span_id.string == """#);
        yes("end_time_unix_nano - start_time_unix_nano > 2000000000");
        yes("(end_time_unix_nano - start_time_unix_nano) / 1000000 == 2500");
        yes("-1 < 0");
        yes("2 * 3 + 1 == 7");
    }

    #[test]
    fn mismatched_types_are_unequal_and_unordered() {
        no(r#"attributes["http.status_code"] == "503""#);
        yes(r#"attributes["http.status_code"] != "503""#);
        no(r#"attributes["user"] > 1"#);
        no(r#"attributes["user"] < 1"#);
        no(r#"attributes["missing"] > 0"#);
        no(r#"attributes["retry"] > false"#);
        yes(r#""b" > "a""#);
    }

    #[test]
    fn logic_and_functions() {
        yes(r#"name == "x" or kind == SPAN_KIND_SERVER"#);
        no(r#"name == "x" or kind == SPAN_KIND_CLIENT and true"#);
        yes(r#"not (name == "x")"#);
        yes(r#"not name == "x""#);
        yes(r#"(name == "x" or true) and not false"#);
        yes(r#"IsMatch(name, "^GET /")"#);
        no(r#"IsMatch(name, "^POST")"#);
        yes(r#"IsMatch(attributes["http.status_code"], "^5\\d\\d$")"#);
        no(r#"IsMatch(attributes["missing"], ".*")"#);
        yes(r#"IsMatch(name, "users") == true"#);
        yes(r#"IsString(attributes["user"]) and IsInt(attributes["http.status_code"])"#);
        yes(r#"IsDouble(attributes["ratio"]) and IsBool(attributes["retry"])"#);
        no(r#"IsString(attributes["missing"])"#);
    }

    #[test]
    fn span_event_context() {
        let ev = |s: &str| check(s, Context::SpanEvent);
        assert_eq!(ev(r#"name == "exception""#), Ok(true));
        assert_eq!(ev(r#"spanevent.name == "exception""#), Ok(true));
        assert_eq!(
            ev(r#"attributes["exception.type"] == "ValueError""#),
            Ok(true)
        );
        assert_eq!(ev(r#"span.name == "GET /users""#), Ok(true));
        assert_eq!(ev(r#"span.attributes["user"] == "alice""#), Ok(true));
        assert_eq!(
            ev(r#"resource.attributes["service.name"] == "checkout""#),
            Ok(true)
        );
        assert_eq!(ev(r#"attributes["user"] == "alice""#), Ok(false));
    }

    #[test]
    fn evaluation_errors() {
        assert!(check("1 / 0 == 1", Context::Span).is_err());
        assert!(check(r#"attributes["user"] + 1 == 2"#, Context::Span).is_err());
        assert!(check(r#"attributes["missing"] * 2 == 0"#, Context::Span).is_err());
        assert!(check("9223372036854775807 + 1 == 0", Context::Span).is_err());
    }

    proptest::proptest! {
        /// Arbitrary text (biased towards OTTL tokens) never panics the
        /// parser, and whatever parses evaluates without panicking.
        #[test]
        fn parser_never_panics(parts in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just("name".to_string()),
            proptest::strategy::Just("attributes[\"user\"]".to_string()),
            proptest::strategy::Just("==".to_string()),
            proptest::strategy::Just(" and ".to_string()),
            proptest::strategy::Just(" or not ".to_string()),
            proptest::strategy::Just("(".to_string()),
            proptest::strategy::Just(")".to_string()),
            proptest::strategy::Just("IsMatch(".to_string()),
            proptest::strategy::Just(",".to_string()),
            proptest::strategy::Just("-1.5".to_string()),
            proptest::strategy::Just("/ 0".to_string()),
            proptest::strategy::Just("\"é\"".to_string()),
            "\\PC{0,4}",
        ], 0..12)) {
            let src = parts.concat();
            for ctx in [Context::Span, Context::SpanEvent] {
                match Condition::parse(&src, ctx) {
                    Ok(c) => {
                        let s = span();
                        let r = Record { resource: &[], scope: None, span: &s, event: s.events.first() };
                        let _ = c.eval(&r);
                    }
                    Err(e) => {
                        proptest::prop_assert!(e.column >= 1 && e.column <= src.chars().count() + 1);
                    }
                }
            }
        }
    }

    fn rejected(src: &str, ctx: Context, column: usize, needle: &str) {
        let e = Condition::parse(src, ctx).expect_err(src);
        assert_eq!(e.column, column, "{src}: {e}");
        assert!(e.message.contains(needle), "{src}: {e}");
    }

    #[test]
    fn outside_the_subset_is_a_load_error_with_its_column() {
        let s = Context::Span;
        rejected(
            r#"Substring(name, 0, 4) == "GET ""#,
            s,
            1,
            "unsupported function `Substring`",
        );
        rejected(r#"attributes["a"]["b"] == 1"#, s, 16, "nested indexing");
        rejected(r#"events == nil"#, s, 1, "unsupported path `events`");
        rejected(
            r#"name == "a" and links == nil"#,
            s,
            17,
            "unsupported path `links`",
        );
        rejected("kind == SPAN_KIND_WHATEVER", s, 9, "unsupported enum");
        rejected(r#"attributes["x"]"#, s, 1, "not a condition");
        rejected(
            r#"name == "a" and attributes["x"]"#,
            s,
            17,
            "must be conditions",
        );
        rejected("trace_id == nil", s, 1, "unsupported path `trace_id`");
        rejected("span_id.string == 0x0102", s, 19, "byte literals");
        rejected(r#"IsMatch(name, "(")"#, s, 15, "invalid regular expression");
        rejected(r#"IsMatch(name, attributes["p"])"#, s, 15, "string literal");
        rejected(r#"name == "a" where true"#, s, 13, "`where`");
        rejected("1 < 2 < 3", s, 7, "chained");
        rejected(r#"name == "a" =="#, s, 13, "chained");
        rejected("(name == \"a\"", s, 13, "expected `)`");
        rejected("name ~ 1", s, 6, "unexpected character `~`");
        rejected("", s, 1, "empty condition");
        rejected(r#"time_unix_nano > 0"#, s, 1, "unsupported path");
        rejected(r#"name == "a" and 1 + true == 2"#, s, 21, "arithmetic");
        rejected(
            r#"isMatch(name, "a")"#,
            s,
            1,
            "unsupported function `isMatch`",
        );
        rejected(r#"name == "unterminated"#, s, 9, "unterminated string");
        rejected(r#"name == "bad \q""#, s, 14, "escape");
        // Span-only paths are not event paths without `span.`.
        rejected(
            r#"kind == SPAN_KIND_SERVER"#,
            Context::SpanEvent,
            1,
            "spanevent context",
        );
    }
}
