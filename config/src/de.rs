//! A serde `Deserializer` over [`Node`] that keeps positions in errors.
//!
//! Errors are located by the innermost node that produced them: every
//! `deserialize_*` call stamps its node's span onto an error that has none yet,
//! so the stamp from the deepest node wins. Errors raised while reading a map
//! key (unknown field, unknown variant) are stamped with the key's span.

use std::fmt;

use indexmap::map::Iter as MapIter;
use serde::de::{
    self, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::error::{did_you_mean, ConfigError, Quote, Span};
use crate::node::{is_null_text, Node, Value};

/// The error type of the [`Node`] deserializer. Convert with `Into<ConfigError>`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeError {
    message: String,
    hint: Option<String>,
    span: Option<Span>,
    path: Option<String>,
}

impl DeError {
    fn locate(mut self, span: &Span, path: &str) -> Self {
        if self.span.is_none() {
            self.span = Some(span.clone());
            self.path = Some(path.to_string());
        }
        self
    }

    fn at_node(self, node: &Node) -> Self {
        self.locate(&node.span, &node.path)
    }

    pub(crate) fn into_config_error(self, root: &Node) -> ConfigError {
        ConfigError {
            severity: crate::error::Severity::Error,
            span: Some(self.span.unwrap_or_else(|| root.span.clone())),
            path: self.path.unwrap_or_else(|| root.path.clone()),
            message: self.message,
            hint: self.hint,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeError {}

const HINT_OPEN: &str = " (hint: ";

/// Builds a serde error carrying a hint. With this crate's deserializer the
/// hint lands in [`ConfigError::hint`]; other deserializers show it inline.
pub fn error_with_hint<E: de::Error>(message: impl fmt::Display, hint: impl fmt::Display) -> E {
    E::custom(format!("{message}{HINT_OPEN}{hint})"))
}

/// Describes what was found without quoting it: the value may be a secret.
fn describe(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(_) => "a boolean".into(),
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer".into(),
        Unexpected::Float(_) => "a float".into(),
        Unexpected::Char(_) => "a character".into(),
        Unexpected::Str(_) => "a string".into(),
        Unexpected::Bytes(_) => "bytes".into(),
        Unexpected::Unit => "null".into(),
        Unexpected::Option => "an optional value".into(),
        Unexpected::NewtypeStruct => "a newtype struct".into(),
        Unexpected::Seq => "a sequence".into(),
        Unexpected::Map => "a map".into(),
        Unexpected::Enum => "an enum".into(),
        Unexpected::UnitVariant => "a unit variant".into(),
        Unexpected::NewtypeVariant => "a newtype variant".into(),
        Unexpected::TupleVariant => "a tuple variant".into(),
        Unexpected::StructVariant => "a struct variant".into(),
        Unexpected::Other(s) => (*s).to_string(),
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "there are none".to_string(),
        [one] => format!("`{one}`"),
        _ => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let text = msg.to_string();
        let (message, hint) = match (text.find(HINT_OPEN), text.strip_suffix(')')) {
            (Some(i), Some(_)) => (
                text[..i].to_string(),
                Some(text[i + HINT_OPEN.len()..text.len() - 1].to_string()),
            ),
            _ => (text, None),
        };
        DeError {
            message,
            hint,
            span: None,
            path: None,
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::custom(format_args!(
            "invalid type: expected {exp}, found {}",
            describe(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::custom(format_args!(
            "invalid value: expected {exp}, found {}",
            describe(&unexp)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        // Variants are values (`level: verbose`), so the input is not quoted.
        let mut e = DeError::custom(format_args!("unknown value, expected {}", one_of(expected)));
        e.hint = did_you_mean(variant, expected.iter(), Quote::Backtick);
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::custom(format_args!(
            "unknown field `{field}`, expected {}",
            one_of(expected)
        ));
        e.hint = did_you_mean(field, expected.iter(), Quote::Backtick);
        e
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::custom(format_args!("missing field `{field}`"))
    }
}

/// A plain scalar typed by the YAML 1.2 core schema.
#[derive(Debug, PartialEq)]
pub(crate) enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn is_digits(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_digit(radix))
}

fn parse_core_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let negative = s.starts_with('-');
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        ".nan" | ".NaN" | ".NAN" if unsigned.len() == s.len() => return Some(f64::NAN),
        _ => {}
    }
    // [0-9]+(\.[0-9]*)? | \.[0-9]+, then optional exponent
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (is_digits(int, 10) && (frac.is_empty() || is_digits(frac, 10)))
                || (int.is_empty() && is_digits(frac, 10))
        }
        None => is_digits(mantissa, 10),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => is_digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10),
    };
    if mantissa_ok && exponent_ok {
        s.parse::<f64>().ok()
    } else {
        None
    }
}

pub(crate) fn type_plain(text: &str) -> Typed<'_> {
    if is_null_text(text) {
        return Typed::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Typed::Bool(true),
        "false" | "False" | "FALSE" => return Typed::Bool(false),
        _ => {}
    }
    if let Some(h) = text.strip_prefix("0x") {
        if is_digits(h, 16) {
            if let Ok(v) = i128::from_str_radix(h, 16) {
                return Typed::Int(v);
            }
        }
    }
    if let Some(o) = text.strip_prefix("0o") {
        if is_digits(o, 8) {
            if let Ok(v) = i128::from_str_radix(o, 8) {
                return Typed::Int(v);
            }
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if is_digits(digits, 10) {
        if let Ok(v) = text.parse::<i128>() {
            return Typed::Int(v);
        }
    }
    match parse_core_float(text) {
        Some(f) => Typed::Float(f),
        None => Typed::Str(text),
    }
}

impl Node {
    /// The node's scalar typed as YAML does; quoted scalars are strings.
    fn typed(&self) -> Option<Typed<'_>> {
        match &self.value {
            Value::Scalar { text, quoted: true } => Some(Typed::Str(text)),
            Value::Scalar {
                text,
                quoted: false,
            } => Some(type_plain(text)),
            _ => None,
        }
    }

    /// Deserialize into a typed config. A null node deserializes as an empty
    /// map (or an empty list), so `#[serde(default)]` structs get all defaults.
    pub fn deserialize<T: de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(NodeDe::new(self)).map_err(|e| e.into_config_error(self))
    }
}

/// The serde `Deserializer` over a borrowed [`Node`].
#[derive(Clone, Copy)]
pub struct NodeDe<'a> {
    node: &'a Node,
    /// Keys are always text; `~` as a key is the string "~", not null.
    is_key: bool,
}

impl<'a> NodeDe<'a> {
    pub fn new(node: &'a Node) -> Self {
        NodeDe {
            node,
            is_key: false,
        }
    }

    fn unexpected(&self) -> Unexpected<'static> {
        match self.node.typed() {
            Some(Typed::Null) => Unexpected::Unit,
            Some(Typed::Bool(_)) => Unexpected::Bool(false),
            Some(Typed::Int(_)) => Unexpected::Signed(0),
            Some(Typed::Float(_)) => Unexpected::Float(0.0),
            Some(Typed::Str(_)) => Unexpected::Str(""),
            None => match self.node.value {
                Value::Seq(_) => Unexpected::Seq,
                _ => Unexpected::Map,
            },
        }
    }

    fn any<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => visit_seq(items, v),
            Value::Map(m) => visit_map(self.node, m, v),
            Value::Scalar { text, .. } => match self.node.typed() {
                Some(Typed::Null) if self.is_key => v.visit_str(text),
                Some(Typed::Null) | None => v.visit_unit(),
                Some(Typed::Bool(b)) => v.visit_bool(b),
                Some(Typed::Int(i)) => {
                    if let Ok(u) = u64::try_from(i) {
                        v.visit_u64(u)
                    } else if let Ok(s) = i64::try_from(i) {
                        v.visit_i64(s)
                    } else {
                        v.visit_i128(i)
                    }
                }
                Some(Typed::Float(f)) => v.visit_f64(f),
                Some(Typed::Str(s)) => v.visit_str(s),
            },
        }
    }

    fn string<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            // The Collector keeps the original text for string fields, so a
            // plain `123` or `true` is a valid string.
            Value::Scalar { text, .. } if self.is_key || !self.node.is_null() => v.visit_str(text),
            _ => Err(de::Error::invalid_type(self.unexpected(), &v)),
        }
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: &[Node], v: V) -> Result<V::Value, DeError> {
    let mut access = SeqDe {
        iter: items.iter(),
        index: 0,
    };
    let out = v.visit_seq(&mut access)?;
    let rest = access.iter.len();
    if rest > 0 {
        return Err(de::Error::invalid_length(
            access.index + rest,
            &"fewer elements",
        ));
    }
    Ok(out)
}

fn visit_map<'de, V: Visitor<'de>>(
    node: &Node,
    m: &indexmap::IndexMap<String, Node>,
    v: V,
) -> Result<V::Value, DeError> {
    v.visit_map(MapDe {
        parent: node,
        iter: m.iter(),
        value: None,
    })
}

macro_rules! forward_to_any {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
                let node = self.node;
                self.any(v).map_err(|e: DeError| e.at_node(node))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    // The primitive visitors do their own range checks and reject other
    // kinds with `invalid_type`, so typing the scalar is enough.
    forward_to_any! {
        deserialize_any deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        self.string(v).map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => v.visit_bytes(text.as_bytes()),
            _ => self.any(v),
        }
        .map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        if node.is_null() && !self.is_key {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
        .map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        if node.is_null() {
            v.visit_unit()
        } else {
            Err(de::Error::invalid_type(self.unexpected(), &v))
        }
        .map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        v.visit_newtype_struct(self)
            .map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        match &node.value {
            Value::Seq(items) => visit_seq(items, v),
            // An empty `processors:` means no processors.
            _ if node.is_null() => visit_seq(&[], v),
            _ => Err(de::Error::invalid_type(self.unexpected(), &v)),
        }
        .map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        match &node.value {
            Value::Map(m) => visit_map(node, m, v),
            // `otlp:` with no value means "all defaults".
            _ if node.is_null() => visit_map(node, &indexmap::IndexMap::new(), v),
            _ => Err(de::Error::invalid_type(self.unexpected(), &v)),
        }
        .map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        let r = match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => v.visit_enum(EnumDe {
                name: text,
                name_span: &node.span,
                path: &node.path,
                value: None,
            }),
            Value::Map(m) if m.len() == 1 => match m.iter().next() {
                Some((k, value)) => v.visit_enum(EnumDe {
                    name: k,
                    name_span: value.key_span(),
                    path: &node.path,
                    value: Some(value),
                }),
                None => Err(de::Error::invalid_type(Unexpected::Map, &v)),
            },
            Value::Map(_) => Err(de::Error::invalid_value(
                Unexpected::Map,
                &"a single variant name, or a map with exactly one key",
            )),
            _ => Err(de::Error::invalid_type(self.unexpected(), &v)),
        };
        r.map_err(|e: DeError| e.at_node(node))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct SeqDe<'a> {
    iter: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            None => Ok(None),
            Some(n) => {
                self.index += 1;
                seed.deserialize(NodeDe::new(n))
                    .map(Some)
                    .map_err(|e| e.at_node(n))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'a> {
    parent: &'a Node,
    iter: MapIter<'a, String, Node>,
    value: Option<&'a Node>,
}

/// A stand-in node for a key so that key text goes through the same typing
/// rules; it carries the key's span and the parent map's path.
fn key_node(key: &str, value: &Node, parent: &Node) -> Node {
    Node {
        value: Value::Scalar {
            text: key.to_string(),
            quoted: false,
        },
        span: value.key_span().clone(),
        key_span: None,
        path: parent.path.clone(),
    }
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some(v);
                let key = key_node(k, v, self.parent);
                seed.deserialize(NodeDe {
                    node: &key,
                    is_key: true,
                })
                .map(Some)
                .map_err(|e| e.at_node(&key))
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(v) => seed.deserialize(NodeDe::new(v)).map_err(|e| e.at_node(v)),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct EnumDe<'a> {
    name: &'a str,
    name_span: &'a Span,
    /// Path of the enum's node; errors about the variant name belong to it.
    path: &'a str,
    /// The variant's value for the `{variant: value}` form.
    value: Option<&'a Node>,
}

impl<'de, 'a> EnumAccess<'de> for EnumDe<'a> {
    type Error = DeError;
    type Variant = VariantDe<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDe<'a>), DeError> {
        let key = Node {
            value: Value::Scalar {
                text: self.name.to_string(),
                quoted: false,
            },
            span: self.name_span.clone(),
            key_span: None,
            path: self.path.to_string(),
        };
        let v = seed
            .deserialize(NodeDe {
                node: &key,
                is_key: true,
            })
            .map_err(|e| e.at_node(&key))?;
        Ok((v, VariantDe { value: self.value }))
    }
}

struct VariantDe<'a> {
    value: Option<&'a Node>,
}

impl<'de> VariantAccess<'de> for VariantDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(n) if n.is_null() => Ok(()),
            Some(n) => Err(<DeError as de::Error>::invalid_type(
                NodeDe::new(n).unexpected(),
                &"no value (a unit variant)",
            )
            .at_node(n)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(n) => seed.deserialize(NodeDe::new(n)).map_err(|e| e.at_node(n)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a map with the variant name as its key",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(n) => de::Deserializer::deserialize_seq(NodeDe::new(n), v),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &v)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(n) => de::Deserializer::deserialize_map(NodeDe::new(n), v),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &v)),
        }
    }
}

impl<'de> IntoDeserializer<'de, DeError> for NodeDe<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    fn node(text: &str) -> Node {
        Node::from_yaml_str("c.yaml", text).unwrap()
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Grpc {
        endpoint: String,
        max_recv_msg_size_mib: u32,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Protocols {
        grpc: Option<Grpc>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Otlp {
        protocols: Protocols,
    }

    #[test]
    fn typed_scalars() {
        assert_eq!(type_plain("true"), Typed::Bool(true));
        assert_eq!(type_plain("FALSE"), Typed::Bool(false));
        assert_eq!(type_plain("yes"), Typed::Str("yes"));
        assert_eq!(type_plain("0x1F"), Typed::Int(31));
        assert_eq!(type_plain("0o17"), Typed::Int(15));
        assert_eq!(type_plain("-42"), Typed::Int(-42));
        assert_eq!(type_plain("+7"), Typed::Int(7));
        assert_eq!(type_plain("1.5"), Typed::Float(1.5));
        assert_eq!(type_plain(".5"), Typed::Float(0.5));
        assert_eq!(type_plain("1e3"), Typed::Float(1000.0));
        assert_eq!(type_plain("-.inf"), Typed::Float(f64::NEG_INFINITY));
        assert!(matches!(type_plain(".nan"), Typed::Float(f) if f.is_nan()));
        assert_eq!(type_plain("~"), Typed::Null);
        assert_eq!(type_plain("1_000"), Typed::Str("1_000"));
        assert_eq!(type_plain("0.0.0.0:4317"), Typed::Str("0.0.0.0:4317"));
        assert_eq!(type_plain("inf"), Typed::Str("inf"));
        assert_eq!(type_plain("e5"), Typed::Str("e5"));
        assert_eq!(type_plain("1."), Typed::Float(1.0));
        assert_eq!(type_plain("."), Typed::Str("."));
    }

    #[test]
    fn null_is_all_defaults() {
        let n = node("otlp:\n");
        let o: Otlp = n.get("otlp").unwrap().deserialize().unwrap();
        assert_eq!(o, Otlp::default());
        let v: Vec<String> = n.get("otlp").unwrap().deserialize().unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn nested_struct() {
        let n = node(
            "protocols:\n  grpc:\n    endpoint: 0.0.0.0:4317\n    max_recv_msg_size_mib: 0x10\n",
        );
        let o: Otlp = n.deserialize().unwrap();
        assert_eq!(
            o.protocols.grpc,
            Some(Grpc {
                endpoint: "0.0.0.0:4317".into(),
                max_recv_msg_size_mib: 16
            })
        );
    }

    #[test]
    fn unknown_field_points_at_key() {
        let n = node("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: x\n      \n        endpont: y\n");
        let _ = n;
        let n = node("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: x\n        endpont: y\n");
        let e = n
            .get("receivers")
            .unwrap()
            .get("otlp")
            .unwrap()
            .deserialize::<Otlp>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:6:9: error: receivers.otlp.protocols.grpc: unknown field `endpont`, expected one of `endpoint`, `max_recv_msg_size_mib` (hint: did you mean `endpoint`?)"
        );
    }

    #[test]
    fn wrong_type_points_at_value() {
        let n = node("protocols:\n  grpc:\n    max_recv_msg_size_mib: lots\n");
        let e = n.deserialize::<Otlp>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:3:28: error: protocols.grpc.max_recv_msg_size_mib: invalid type: expected u32, found a string"
        );
        let n = node("protocols:\n  grpc:\n    max_recv_msg_size_mib: '12'\n");
        let e = n.deserialize::<Otlp>().unwrap_err();
        assert!(e.message.contains("found a string"), "{e}");
        let n = node("protocols:\n  grpc:\n    max_recv_msg_size_mib: -1\n");
        let e = n.deserialize::<Otlp>().unwrap_err();
        assert_eq!(e.message, "invalid value: expected u32, found an integer");
        let n = node("protocols: [1]\n");
        let e = n.deserialize::<Otlp>().unwrap_err();
        assert_eq!(e.path, "protocols");
        assert!(e.message.contains("found a sequence"), "{e}");
    }

    #[test]
    fn missing_field_points_at_map() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Need {
            endpoint: String,
        }
        let n = node("x:\n  other: 1\n");
        let e = n.get("x").unwrap().deserialize::<Need>().unwrap_err();
        assert!(e.message.starts_with("unknown field `other`"), "{e}");
        let n = node("x: {}\n");
        let e = n.get("x").unwrap().deserialize::<Need>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:1:4: error: x: missing field `endpoint`"
        );
    }

    #[test]
    fn strings_keep_plain_text() {
        #[derive(Debug, Deserialize)]
        struct S {
            a: String,
            b: String,
            c: String,
            d: char,
        }
        let s: S = node("a: 123\nb: true\nc: 0x10\nd: z\n")
            .deserialize()
            .unwrap();
        assert_eq!(
            (s.a.as_str(), s.b.as_str(), s.c.as_str(), s.d),
            ("123", "true", "0x10", 'z')
        );
    }

    #[test]
    fn quoted_scalars_are_strings() {
        let v: serde_json::Value =
            node("a: '1'\nb: 1\nc: \"true\"\nd: true\ne: ~\nf: 1.5\ng: [x]\n")
                .deserialize()
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "1", "b": 1, "c": "true", "d": true, "e": null, "f": 1.5, "g": ["x"]})
        );
    }

    #[test]
    fn enums() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum Level {
            Debug,
            Info,
        }
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "snake_case", deny_unknown_fields)]
        enum Exporter {
            Prometheus { host: String, port: u16 },
            Console,
            Named(String),
        }
        let l: Level = node("info").deserialize().unwrap();
        assert_eq!(l, Level::Info);
        let e = node("x: infoo\n")
            .get("x")
            .unwrap()
            .deserialize::<Level>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:1:4: error: x: unknown value, expected one of `debug`, `info` (hint: did you mean `info`?)"
        );
        let x: Exporter = node("prometheus: {host: h, port: 9}")
            .deserialize()
            .unwrap();
        assert_eq!(
            x,
            Exporter::Prometheus {
                host: "h".into(),
                port: 9
            }
        );
        let x: Exporter = node("console").deserialize().unwrap();
        assert_eq!(x, Exporter::Console);
        let x: Exporter = node("console:").deserialize().unwrap();
        assert_eq!(x, Exporter::Console);
        let x: Exporter = node("named: n").deserialize().unwrap();
        assert_eq!(x, Exporter::Named("n".into()));
        let e = node("e:\n  promethus: {}\n")
            .get("e")
            .unwrap()
            .deserialize::<Exporter>()
            .unwrap_err();
        assert_eq!(e.span.as_ref().unwrap().to_string(), "c.yaml:2:3");
        assert_eq!(e.path, "e");
        assert_eq!(e.hint.as_deref(), Some("did you mean `prometheus`?"));
        let e = node("{a: 1, b: 2}").deserialize::<Exporter>().unwrap_err();
        assert!(e.message.starts_with("invalid value"), "{e}");
    }

    #[test]
    fn maps_options_newtypes_tuples() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Port(u16);
        #[derive(Debug, Deserialize, PartialEq)]
        struct S {
            m: BTreeMap<String, i64>,
            o: Option<u8>,
            n: Option<u8>,
            p: Port,
            t: (u8, String),
            f: f32,
            u: (),
            big: i128,
        }
        let s: S = node("m: {a: -1, ~: 2}\no: 3\nn:\np: 80\nt: [1, x]\nf: 2\nu: ~\nbig: 170141183460469231731687303715884105727\n")
            .deserialize()
            .unwrap();
        assert_eq!(s.m.get("a"), Some(&-1));
        assert_eq!(s.m.get("~"), Some(&2));
        assert_eq!(s.o, Some(3));
        assert_eq!(s.n, None);
        assert_eq!(s.p, Port(80));
        assert_eq!(s.t, (1, "x".into()));
        assert_eq!(s.f, 2.0);
        assert_eq!(s.big, i128::MAX);
        let e = node("[1, 2, 3]").deserialize::<(u8, u8)>().unwrap_err();
        assert!(e.message.starts_with("invalid length 3"), "{e}");
    }

    #[test]
    fn int_keys() {
        let m: BTreeMap<u16, String> = node("80: http\n443: https\n").deserialize().unwrap();
        assert_eq!(m.get(&443).map(String::as_str), Some("https"));
    }

    #[test]
    fn ignored_any() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            keep: u8,
        }
        let s: S = node("keep: 1\nextra: {deep: [1, 2]}\n")
            .deserialize()
            .unwrap();
        assert_eq!(s.keep, 1);
    }

    #[test]
    fn custom_errors_keep_hints() {
        let e: DeError = error_with_hint("bad thing", "do this");
        assert_eq!(e.message, "bad thing");
        assert_eq!(e.hint.as_deref(), Some("do this"));
        let e: serde_json::Error = error_with_hint("bad thing", "do this");
        assert_eq!(e.to_string(), "bad thing (hint: do this)");
    }

    #[test]
    fn secret_never_quoted() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            port: u16,
            flag: bool,
            list: Vec<u8>,
        }
        for doc in [
            "port: hunter2-secret\n",
            "port: 99999999\nflag: true\nlist: []\n",
            "port: 1\nflag: hunter2-secret\nlist: []\n",
            "port: 1\nflag: true\nlist: hunter2-secret\n",
            "port: 1\nflag: true\nlist: [hunter2-secret]\n",
        ] {
            let e = node(doc).deserialize::<S>().unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("99999999"), "{shown}");
        }
    }
}
