//! Positions, diagnostics and the "did you mean" helper shared by every stage.

use std::fmt;
use std::sync::Arc;

/// A 1-based position in a config file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl Span {
    pub fn new(file: impl Into<Arc<str>>, line: usize, col: usize) -> Self {
        Span {
            file: file.into(),
            line,
            col,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in the configuration.
///
/// Messages never quote configured values (only key names and component ids),
/// because a value might be a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub severity: Severity,
    pub span: Option<Span>,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn error(
        span: impl Into<Option<Span>>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            severity: Severity::Error,
            span: span.into(),
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(
        span: impl Into<Option<Span>>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            severity: Severity::Warning,
            ..ConfigError::error(span, path, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the hint only when there is one, which keeps call sites using
    /// "did you mean" helpers short.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{span}: ")?;
        }
        write!(f, "{}: ", self.severity)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// All problems found, errors and warnings, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<ConfigError>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(ConfigError::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter().filter(|e| e.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter().filter(|e| e.severity == Severity::Warning)
    }

    pub fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Extend<ConfigError> for Diagnostics {
    fn extend<I: IntoIterator<Item = ConfigError>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl From<ConfigError> for Diagnostics {
    fn from(e: ConfigError) -> Self {
        Diagnostics(vec![e])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Levenshtein distance over chars; inputs are short identifiers.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `input`, if it is close enough to be a plausible typo.
pub fn closest<'a, I, S>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    // Allow roughly one typo per three characters so that short names do not
    // attract unrelated suggestions.
    let limit = (input.chars().count() / 3).max(1);
    let lower = input.to_lowercase();
    candidates
        .into_iter()
        .map(|c| c.as_ref())
        .filter(|c| *c != input)
        .map(|c| {
            let d = if c.to_lowercase() == lower {
                0
            } else {
                edit_distance(input, c)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// `did you mean `x`?` hint text, with the quoting style of the message it goes with.
pub(crate) fn did_you_mean<'a, I, S>(input: &str, candidates: I, quote: Quote) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    closest(input, candidates).map(|c| match quote {
        Quote::Backtick => format!("did you mean `{c}`?"),
        Quote::Double => format!("did you mean \"{c}\"?"),
    })
}

#[derive(Clone, Copy)]
pub(crate) enum Quote {
    Backtick,
    Double,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_full() {
        let e = ConfigError::error(
            Span::new("config.yaml", 12, 7),
            "receivers.otlp.protocols.grpc",
            "unknown field `endpont`, expected one of `endpoint`, `max_recv_msg_size_mib`",
        )
        .with_hint("did you mean `endpoint`?");
        assert_eq!(
            e.to_string(),
            "config.yaml:12:7: error: receivers.otlp.protocols.grpc: unknown field `endpont`, expected one of `endpoint`, `max_recv_msg_size_mib` (hint: did you mean `endpoint`?)"
        );
    }

    #[test]
    fn display_without_span_or_path() {
        let e = ConfigError::warning(None, "", "something");
        assert_eq!(e.to_string(), "warning: something");
    }

    #[test]
    fn diagnostics_split() {
        let d = Diagnostics(vec![
            ConfigError::warning(None, "a", "w"),
            ConfigError::error(None, "b", "e"),
        ]);
        assert!(d.has_errors());
        assert_eq!(d.errors().count(), 1);
        assert_eq!(d.warnings().count(), 1);
        assert_eq!(d.to_string(), "warning: a: w\nerror: b: e");
        let only_warn = Diagnostics(vec![ConfigError::warning(None, "a", "w")]);
        assert!(!only_warn.has_errors());
    }

    #[test]
    fn distance_and_closest() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("endpont", ["endpoint", "max_recv_msg_size_mib"].iter()),
            Some("endpoint".into())
        );
        assert_eq!(closest("batchh", ["batch"].iter()), Some("batch".into()));
        assert_eq!(closest("zzzzzz", ["batch"].iter()), None);
        assert_eq!(closest("OTLP", ["otlp"].iter()), Some("otlp".into()));
        // short inputs must not match everything
        assert_eq!(closest("ab", ["xy"].iter()), None);
    }
}
