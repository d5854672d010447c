//! Component and pipeline identifiers, signal kinds.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use crate::error::Span;

/// Why an id could not be parsed. The message names the offending id: ids are
/// keys, never secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IdError {
    pub message: String,
    pub hint: Option<String>,
}

impl IdError {
    fn new(message: impl Into<String>) -> Self {
        IdError {
            message: message.into(),
            hint: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    Traces,
    Metrics,
    Logs,
}

impl SignalKind {
    pub const ALL: [SignalKind; 3] = [SignalKind::Traces, SignalKind::Metrics, SignalKind::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Traces => "traces",
            SignalKind::Metrics => "metrics",
            SignalKind::Logs => "logs",
        }
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignalKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "traces" => Ok(SignalKind::Traces),
            "metrics" => Ok(SignalKind::Metrics),
            "logs" => Ok(SignalKind::Logs),
            _ => {
                let names = SignalKind::ALL.map(SignalKind::as_str);
                Err(IdError {
                    message: format!(
                        "unknown signal `{s}`, expected one of `traces`, `metrics`, `logs`"
                    ),
                    hint: crate::error::did_you_mean(
                        s,
                        names.iter(),
                        crate::error::Quote::Backtick,
                    ),
                })
            }
        }
    }
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SignalSet {
    pub traces: bool,
    pub metrics: bool,
    pub logs: bool,
}

impl SignalSet {
    pub const ALL: SignalSet = SignalSet {
        traces: true,
        metrics: true,
        logs: true,
    };
    pub const NONE: SignalSet = SignalSet {
        traces: false,
        metrics: false,
        logs: false,
    };

    pub fn only(kind: SignalKind) -> Self {
        SignalSet::NONE.with(kind)
    }

    pub fn with(mut self, kind: SignalKind) -> Self {
        match kind {
            SignalKind::Traces => self.traces = true,
            SignalKind::Metrics => self.metrics = true,
            SignalKind::Logs => self.logs = true,
        }
        self
    }

    pub fn contains(&self, kind: SignalKind) -> bool {
        match kind {
            SignalKind::Traces => self.traces,
            SignalKind::Metrics => self.metrics,
            SignalKind::Logs => self.logs,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = SignalKind> + '_ {
        SignalKind::ALL.into_iter().filter(|k| self.contains(*k))
    }
}

impl fmt::Display for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(SignalKind::as_str).collect();
        if names.is_empty() {
            f.write_str("no signals")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    Receiver,
    Processor,
    Exporter,
    Connector,
    Extension,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 5] = [
        ComponentKind::Receiver,
        ComponentKind::Processor,
        ComponentKind::Exporter,
        ComponentKind::Connector,
        ComponentKind::Extension,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receiver",
            ComponentKind::Processor => "processor",
            ComponentKind::Exporter => "exporter",
            ComponentKind::Connector => "connector",
            ComponentKind::Extension => "extension",
        }
    }

    /// The top-level config key holding components of this kind.
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receivers",
            ComponentKind::Processor => "processors",
            ComponentKind::Exporter => "exporters",
            ComponentKind::Connector => "connectors",
            ComponentKind::Extension => "extensions",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `type` or `type/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    type_name: String,
    name: Option<String>,
}

impl ComponentId {
    pub fn new(type_name: &str, name: Option<&str>) -> Result<Self, IdError> {
        validate_type(type_name)?;
        if let Some(n) = name {
            validate_name(n)?;
        }
        Ok(ComponentId {
            type_name: type_name.to_string(),
            name: name.map(str::to_string),
        })
    }

    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

fn validate_type(t: &str) -> Result<(), IdError> {
    let mut chars = t.chars();
    match chars.next() {
        None => return Err(IdError::new("the component type is empty")),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(IdError::new(format!(
                "invalid component type `{t}`: it must start with a letter"
            )))
        }
        _ => {}
    }
    if chars.any(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
        return Err(IdError::new(format!(
            "invalid component type `{t}`: only letters, digits and `_` are allowed"
        )));
    }
    Ok(())
}

fn validate_name(n: &str) -> Result<(), IdError> {
    if n.is_empty() {
        return Err(IdError::new(
            "the name after `/` is empty; write `type` or `type/name`",
        ));
    }
    if n.contains('/') {
        return Err(IdError::new(format!(
            "invalid name `{n}`: it must not contain `/`"
        )));
    }
    if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(IdError::new(
            "invalid name: it must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.type_name, n),
            None => f.write_str(&self.type_name),
        }
    }
}

impl FromStr for ComponentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.split_once('/') {
            Some((t, n)) => ComponentId::new(t, Some(n)),
            None => ComponentId::new(s, None),
        }
    }
}

/// Components may reference other components (an extension id in an
/// exporter's config, say); the id is validated like a config key.
impl<'de> serde::Deserialize<'de> for ComponentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match ComponentId::from_str(&s) {
            Ok(id) => Ok(id),
            Err(IdError {
                message,
                hint: Some(h),
            }) => Err(crate::de::error_with_hint(message, h)),
            Err(e) => Err(serde::de::Error::custom(e.message)),
        }
    }
}

/// `traces`, `metrics/2`, ...
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: SignalKind,
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.signal, n),
            None => write!(f, "{}", self.signal),
        }
    }
}

impl FromStr for PipelineId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let (sig, name) = match s.split_once('/') {
            Some((t, n)) => (t, Some(n)),
            None => (s, None),
        };
        let signal = sig.parse::<SignalKind>()?;
        if let Some(n) = name {
            validate_name(n)?;
        }
        Ok(PipelineId {
            signal,
            name: name.map(str::to_string),
        })
    }
}

/// A value with the position it came from in the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
    pub path: String,
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids() {
        let id: ComponentId = "otlp/2".parse().unwrap();
        assert_eq!(id.type_name(), "otlp");
        assert_eq!(id.name(), Some("2"));
        assert_eq!(id.to_string(), "otlp/2");
        let id: ComponentId = "memory_limiter".parse().unwrap();
        assert_eq!(id.name(), None);
        assert_eq!(id.to_string(), "memory_limiter");
        for bad in ["", "1otlp", "ot-lp", "otlp/", "otlp/a/b", "/x", "otlp/a b"] {
            assert!(bad.parse::<ComponentId>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            "otlp/".parse::<ComponentId>().unwrap_err().to_string(),
            "the name after `/` is empty; write `type` or `type/name`"
        );
        assert!("a" < "b");
        let mut ids: Vec<ComponentId> = ["otlp/b", "batch", "otlp", "otlp/a"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["batch", "otlp", "otlp/a", "otlp/b"]);
    }

    #[test]
    fn component_id_deserializes() {
        #[derive(Debug, serde::Deserialize)]
        struct S {
            storage: ComponentId,
        }
        let n = crate::Node::from_yaml_str("i.yaml", "storage: file_storage/x\n").unwrap();
        let s: S = n.deserialize().unwrap();
        assert_eq!(s.storage.to_string(), "file_storage/x");
        let n = crate::Node::from_yaml_str("i.yaml", "storage: 'a/'\n").unwrap();
        let e = n.deserialize::<S>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "i.yaml:1:10: error: storage: the name after `/` is empty; write `type` or `type/name`"
        );
    }

    #[test]
    fn pipeline_ids() {
        let p: PipelineId = "traces/x".parse().unwrap();
        assert_eq!(p.signal, SignalKind::Traces);
        assert_eq!(p.to_string(), "traces/x");
        assert_eq!("logs".parse::<PipelineId>().unwrap().to_string(), "logs");
        let e = "trace".parse::<PipelineId>().unwrap_err();
        assert_eq!(
            e.message,
            "unknown signal `trace`, expected one of `traces`, `metrics`, `logs`"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `traces`?"));
        assert!("metrics/".parse::<PipelineId>().is_err());
    }

    #[test]
    fn signal_sets() {
        let s = SignalSet::only(SignalKind::Logs);
        assert!(s.contains(SignalKind::Logs));
        assert!(!s.contains(SignalKind::Traces));
        assert!(SignalSet::ALL.contains(SignalKind::Metrics));
        assert_eq!(SignalSet::default(), SignalSet::NONE);
        assert_eq!(s.with(SignalKind::Traces).to_string(), "traces, logs");
        assert_eq!(ComponentKind::Exporter.to_string(), "exporter");
        assert_eq!("metrics".parse::<SignalKind>(), Ok(SignalKind::Metrics));
    }
}
