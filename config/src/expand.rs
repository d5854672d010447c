//! `${env:VAR}` expansion, done per scalar after parsing so that a value can
//! never inject YAML structure.

use std::borrow::Cow;

use crate::error::ConfigError;
use crate::node::{Node, Value};

/// Why expansion of one scalar failed: message and hint, located by the caller.
#[derive(Debug, PartialEq)]
pub(crate) struct ExpandError {
    pub message: String,
    pub hint: Option<String>,
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

fn resolve(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    // `${VAR}` and `${env:VAR}` are the same; `${VAR:-x}` is accepted as a
    // shorthand for `${env:VAR:-x}` too.
    let spec = match inner.split_once(':') {
        Some(("env", rest)) => rest,
        Some((name, rest)) if rest.starts_with('-') && valid_env_name(name) => inner,
        Some((scheme, _)) if valid_scheme(scheme) => {
            return Err(ExpandError {
                message: format!("unsupported config provider `{scheme}`"),
                hint: Some("only `${env:NAME}` references are supported".into()),
            })
        }
        Some(_) => {
            return Err(ExpandError {
                message: "invalid `${...}` reference".into(),
                hint: Some("write `$$` for a literal `$`".into()),
            })
        }
        None => inner,
    };
    let (name, default) = match spec.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (spec, None),
    };
    if !valid_env_name(name) {
        return Err(ExpandError {
            message: format!("invalid environment variable name `{name}`"),
            hint: Some("names match `[a-zA-Z_][a-zA-Z0-9_]*`; write `$$` for a literal `$`".into()),
        });
    }
    match (env(name), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(ExpandError {
            message: format!("environment variable `{name}` is not set"),
            hint: Some(format!(
                "set it, or give a default: `${{env:{name}:-value}}`"
            )),
        }),
    }
}

/// Expands one scalar's text. `$$` is a literal `$`; a bare `$VAR` is left as
/// is (the Collector no longer expands it).
pub(crate) fn expand_str<'a>(
    text: &'a str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Cow<'a, str>, ExpandError> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                return Err(ExpandError {
                    message: "unterminated `${` reference".into(),
                    hint: Some("close it with `}`, or write `$$` for a literal `$`".into()),
                });
            };
            out.push_str(&resolve(&r[..end], env)?);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Expands every scalar value in the tree (not keys), collecting all errors.
pub(crate) fn expand_tree(
    node: &mut Node,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    match &mut node.value {
        Value::Scalar { text, .. } => match expand_str(text, env) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(s)) => *text = s,
            Err(e) => {
                let mut ce = ConfigError::error(node.span.clone(), node.path.clone(), e.message);
                ce.hint = e.hint;
                errors.push(ce);
            }
        },
        Value::Seq(items) => {
            for n in items {
                expand_tree(n, env, errors);
            }
        }
        Value::Map(m) => {
            for n in m.values_mut() {
                expand_tree(n, env, errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOST" => Some("collector".into()),
            "PORT" => Some("4317".into()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("${env:HOST} {a: b}".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> Result<String, ExpandError> {
        expand_str(s, &env).map(Cow::into_owned)
    }

    #[test]
    fn forms() {
        assert_eq!(x("${env:HOST}:${PORT}").unwrap(), "collector:4317");
        assert_eq!(x("${env:NOPE:-localhost}").unwrap(), "localhost");
        assert_eq!(x("${env:HOST:-localhost}").unwrap(), "collector");
        assert_eq!(x("${NOPE:-a:b}").unwrap(), "a:b");
        assert_eq!(x("${env:NOPE:-}").unwrap(), "");
        assert_eq!(x("${EMPTY}").unwrap(), "");
        assert_eq!(x("plain").unwrap(), "plain");
    }

    #[test]
    fn escapes_and_literals() {
        assert_eq!(x("$$").unwrap(), "$");
        assert_eq!(x("$${env:HOST}").unwrap(), "${env:HOST}");
        assert_eq!(x("a$$$${HOST}").unwrap(), "a$${HOST}");
        assert_eq!(x("a$$${HOST}").unwrap(), "a$collector");
        assert_eq!(x("$HOST").unwrap(), "$HOST");
        assert_eq!(x("cost: 5$").unwrap(), "cost: 5$");
        assert_eq!(x("^foo$").unwrap(), "^foo$");
    }

    #[test]
    fn values_are_not_re_expanded() {
        assert_eq!(x("${TRICKY}").unwrap(), "${env:HOST} {a: b}");
    }

    #[test]
    fn errors() {
        let e = x("${env:MISSING}").unwrap_err();
        assert_eq!(e.message, "environment variable `MISSING` is not set");
        assert_eq!(
            e.hint.as_deref(),
            Some("set it, or give a default: `${env:MISSING:-value}`")
        );
        let e = x("${file:/etc/x}").unwrap_err();
        assert_eq!(e.message, "unsupported config provider `file`");
        let e = x("${env:1BAD}").unwrap_err();
        assert_eq!(e.message, "invalid environment variable name `1BAD`");
        let e = x("abc ${env:HOST").unwrap_err();
        assert_eq!(e.message, "unterminated `${` reference");
        let e = x("${}").unwrap_err();
        assert_eq!(e.message, "invalid environment variable name ``");
    }
}
