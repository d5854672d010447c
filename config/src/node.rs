//! The position-aware YAML tree and its loader.
//!
//! The loader consumes yaml-rust2's pull parser directly (rather than its
//! `Yaml` tree) because that is the only way to keep a position on every node
//! and to stop early on hostile input: nesting, aliases and size are bounded
//! here before anything is allocated for them.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{ConfigError, Span};

/// Largest config text accepted.
pub const MAX_FILE_SIZE: usize = 16 * 1024 * 1024;
/// Deepest nesting of maps and sequences accepted.
pub const MAX_DEPTH: usize = 128;
/// Nodes that aliases and merge keys may materialise in total, which bounds
/// "billion laughs" documents to input size plus this.
pub const MAX_ALIAS_EXPANSIONS: usize = 10_000;
/// Nodes kept in the anchor table; anchors are copied when they complete, so
/// nested anchors would otherwise cost depth × size.
const MAX_ANCHORED_NODES: usize = 1_000_000;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Scalar { text: String, quoted: bool },
    Seq(Vec<Node>),
    Map(IndexMap<String, Node>),
}

/// A parsed YAML value that remembers where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub(crate) value: Value,
    pub(crate) span: Span,
    /// Position of the key this node is the value of, so that errors about the
    /// key (unknown field, bad component id) point at the key itself.
    pub(crate) key_span: Option<Span>,
    pub(crate) path: String,
}

pub(crate) fn is_null_text(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn join_index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

impl Node {
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Position of the map key this node is the value of (the node's own span when it has no key).
    pub fn key_span(&self) -> &Span {
        self.key_span.as_ref().unwrap_or(&self.span)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// `otlp:` with no value is null, which components read as "all defaults".
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if is_null_text(text))
    }

    /// Whether this is a quoted (or block) scalar, which is always a string.
    pub fn is_quoted(&self) -> bool {
        matches!(&self.value, Value::Scalar { quoted: true, .. })
    }

    /// Scalar text; `None` for null, maps and sequences.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// Short description of the node's kind for messages that must not quote values.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a map",
        }
    }

    /// Parses one YAML document. No `${...}` expansion is done.
    pub fn from_yaml_str(file_name: &str, text: &str) -> Result<Node, ConfigError> {
        parse(file_name, text).map_err(|errs| {
            errs.into_iter().next().unwrap_or_else(|| {
                ConfigError::error(Span::new(file_name, 1, 1), "", "invalid YAML")
            })
        })
    }

    pub(crate) fn empty_map(span: Span, path: String) -> Node {
        Node {
            value: Value::Map(IndexMap::new()),
            span,
            key_span: None,
            path,
        }
    }

    pub(crate) fn count(&self) -> usize {
        1 + match &self.value {
            Value::Scalar { .. } => 0,
            Value::Seq(s) => s.iter().map(Node::count).sum(),
            Value::Map(m) => m.values().map(Node::count).sum(),
        }
    }

    /// Rewrites paths below this node after it was moved (alias copy, merge).
    pub(crate) fn repath(&mut self, path: String) {
        match &mut self.value {
            Value::Scalar { .. } => {}
            Value::Seq(s) => {
                for (i, n) in s.iter_mut().enumerate() {
                    n.repath(join_index(&path, i));
                }
            }
            Value::Map(m) => {
                for (k, n) in m.iter_mut() {
                    n.repath(join_key(&path, k));
                }
            }
        }
        self.path = path;
    }

    fn depth(&self) -> usize {
        match &self.value {
            Value::Scalar { .. } => 0,
            Value::Seq(s) => 1 + s.iter().map(Node::depth).max().unwrap_or(0),
            Value::Map(m) => 1 + m.values().map(Node::depth).max().unwrap_or(0),
        }
    }
}

fn span_at(file: &Arc<str>, m: &Marker) -> Span {
    // yaml-rust2 lines are 1-based, columns 0-based.
    Span {
        file: file.clone(),
        line: m.line(),
        col: m.col() + 1,
    }
}

fn is_str_tag(tag: &Option<Tag>) -> bool {
    matches!(tag, Some(t) if t.suffix == "str" && (t.handle == "!!" || t.handle == "tag:yaml.org,2002:"))
}

struct PendingKey {
    text: String,
    span: Span,
    merge: bool,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        path: String,
        key_span: Option<Span>,
        anchor: usize,
    },
    Map {
        entries: IndexMap<String, Node>,
        key_spans: HashMap<String, Span>,
        merges: Vec<Node>,
        pending: Option<PendingKey>,
        span: Span,
        path: String,
        key_span: Option<Span>,
        anchor: usize,
    },
}

struct Loader {
    file: Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    anchored_nodes: usize,
    alias_budget: usize,
    root: Option<Node>,
    errors: Vec<ConfigError>,
}

/// Where the next node goes: its path and the span of the key it is a value of.
enum Slot {
    Key,
    Value {
        path: String,
        key_span: Option<Span>,
    },
}

impl Loader {
    fn slot(&self) -> Slot {
        match self.stack.last() {
            None => Slot::Value {
                path: String::new(),
                key_span: None,
            },
            Some(Frame::Seq { items, path, .. }) => Slot::Value {
                path: join_index(path, items.len()),
                key_span: None,
            },
            Some(Frame::Map { pending: None, .. }) => Slot::Key,
            Some(Frame::Map {
                pending: Some(k),
                path,
                ..
            }) => Slot::Value {
                path: if k.merge {
                    path.clone()
                } else {
                    join_key(path, &k.text)
                },
                key_span: Some(k.span.clone()),
            },
        }
    }

    fn err(&self, span: Span, path: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::error(span, path, msg)
    }

    fn current_path(&self) -> String {
        match self.stack.last() {
            Some(Frame::Seq { path, .. }) | Some(Frame::Map { path, .. }) => path.clone(),
            None => String::new(),
        }
    }

    fn push_key(&mut self, text: String, quoted: bool, span: Span) -> Result<(), ConfigError> {
        let path = self.current_path();
        let Some(Frame::Map {
            pending, key_spans, ..
        }) = self.stack.last_mut()
        else {
            return Ok(());
        };
        let merge = !quoted && text == "<<";
        if !merge {
            if let Some(first) = key_spans.get(&text) {
                // Keep going so that later keys are still checked; the value
                // of the duplicate is dropped.
                let e = ConfigError::error(
                    span.clone(),
                    path,
                    format!("duplicate key `{text}` (first defined at {first})"),
                );
                self.errors.push(e);
            }
        }
        *pending = Some(PendingKey { text, span, merge });
        Ok(())
    }

    /// Attaches a finished node to its parent (or makes it the root).
    fn attach(&mut self, node: Node, anchor: usize) -> Result<(), ConfigError> {
        if anchor != 0 {
            let n = node.count();
            self.anchored_nodes += n;
            if self.anchored_nodes > MAX_ANCHORED_NODES {
                return Err(self.err(
                    node.span.clone(),
                    &node.path,
                    format!("too many anchored nodes (limit {MAX_ANCHORED_NODES})"),
                ));
            }
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key_spans,
                merges,
                pending,
                path,
                ..
            }) => {
                let Some(key) = pending.take() else {
                    return Ok(());
                };
                if key.merge {
                    match &node.value {
                        Value::Map(_) => merges.push(node),
                        Value::Seq(items)
                            if items.iter().all(|i| matches!(i.value, Value::Map(_))) =>
                        {
                            merges.extend(items.iter().cloned());
                        }
                        _ => {
                            let e = ConfigError::error(
                                key.span,
                                path.clone(),
                                "the value of a merge key `<<` must be a map or a list of maps",
                            );
                            self.errors.push(e);
                        }
                    }
                } else if !key_spans.contains_key(&key.text) {
                    key_spans.insert(key.text.clone(), key.span);
                    entries.insert(key.text, node);
                }
            }
        }
        Ok(())
    }

    fn copy_alias(
        &mut self,
        src: &Node,
        path: String,
        key_span: Option<Span>,
        at: &Span,
    ) -> Result<Node, ConfigError> {
        let n = src.count();
        if n > self.alias_budget {
            return Err(self.err(
                at.clone(),
                &path,
                format!(
                    "too many alias expansions (limit {MAX_ALIAS_EXPANSIONS} nodes); \
                     is this a \"billion laughs\" document?"
                ),
            ));
        }
        self.alias_budget -= n;
        if self.stack.len() + src.depth() > MAX_DEPTH {
            return Err(self.depth_error(at.clone(), &path));
        }
        let mut copy = src.clone();
        copy.key_span = key_span;
        copy.repath(path);
        Ok(copy)
    }

    fn depth_error(&self, span: Span, path: &str) -> ConfigError {
        self.err(
            span,
            path,
            format!("nesting is too deep (limit {MAX_DEPTH} levels)"),
        )
    }

    fn on_event(&mut self, ev: Event, mark: Marker) -> Result<(), ConfigError> {
        let span = span_at(&self.file, &mark);
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = style != TScalarStyle::Plain || is_str_tag(&tag);
                match self.slot() {
                    Slot::Key => self.push_key(text, quoted, span)?,
                    Slot::Value { path, key_span } => {
                        let node = Node {
                            value: Value::Scalar { text, quoted },
                            span,
                            key_span,
                            path,
                        };
                        self.attach(node, anchor)?;
                    }
                }
            }
            Event::Alias(id) => {
                let Some(src) = self.anchors.get(&id).cloned() else {
                    return Err(self.err(
                        span,
                        &self.current_path(),
                        "alias refers to an anchor that is not complete yet (recursive alias)",
                    ));
                };
                match self.slot() {
                    Slot::Key => match &src.value {
                        Value::Scalar { text, quoted } => {
                            self.push_key(text.clone(), *quoted, span)?
                        }
                        _ => {
                            return Err(self.err(
                                span,
                                &self.current_path(),
                                "map keys must be scalars",
                            ))
                        }
                    },
                    Slot::Value { path, key_span } => {
                        let node = self.copy_alias(&src, path, key_span, &span)?;
                        self.attach(node, 0)?;
                    }
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (path, key_span) = match self.slot() {
                    Slot::Key => {
                        return Err(self.err(
                            span,
                            &self.current_path(),
                            "map keys must be scalars (complex keys are not supported)",
                        ))
                    }
                    Slot::Value { path, key_span } => (path, key_span),
                };
                if self.stack.len() >= MAX_DEPTH {
                    return Err(self.depth_error(span, &path));
                }
                self.stack.push(if is_map {
                    Frame::Map {
                        entries: IndexMap::new(),
                        key_spans: HashMap::new(),
                        merges: Vec::new(),
                        pending: None,
                        span,
                        path,
                        key_span,
                        anchor,
                    }
                } else {
                    Frame::Seq {
                        items: Vec::new(),
                        span,
                        path,
                        key_span,
                        anchor,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        items,
                        span,
                        path,
                        key_span,
                        anchor,
                    } => (
                        Node {
                            value: Value::Seq(items),
                            span,
                            key_span,
                            path,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        mut entries,
                        merges,
                        span,
                        path,
                        key_span,
                        anchor,
                        ..
                    } => {
                        // YAML merge keys: explicit keys win, then earlier sources.
                        for src in merges {
                            if let Value::Map(m) = src.value {
                                for (k, v) in m {
                                    if entries.contains_key(&k) {
                                        continue;
                                    }
                                    let n = v.count();
                                    if n > self.alias_budget {
                                        return Err(self.err(
                                            v.span.clone(),
                                            &path,
                                            format!(
                                                "too many alias expansions (limit {MAX_ALIAS_EXPANSIONS} nodes); \
                                                 is this a \"billion laughs\" document?"
                                            ),
                                        ));
                                    }
                                    self.alias_budget -= n;
                                    let mut v = v;
                                    v.repath(join_key(&path, &k));
                                    entries.insert(k, v);
                                }
                            }
                        }
                        (
                            Node {
                                value: Value::Map(entries),
                                span,
                                key_span,
                                path,
                            },
                            anchor,
                        )
                    }
                };
                self.attach(node, anchor)?;
            }
        }
        Ok(())
    }
}

/// Parses one YAML document into a tree. Returns every problem found, or the
/// first fatal one (syntax errors and limits stop the parse).
pub(crate) fn parse(file_name: &str, text: &str) -> Result<Node, Vec<ConfigError>> {
    let file: Arc<str> = Arc::from(file_name);
    if text.len() > MAX_FILE_SIZE {
        return Err(vec![ConfigError::error(
            Span::new(file, 1, 1),
            "",
            format!(
                "the config is too large ({} bytes; the limit is {} MiB)",
                text.len(),
                MAX_FILE_SIZE / (1024 * 1024)
            ),
        )]);
    }
    let mut loader = Loader {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        anchored_nodes: 0,
        alias_budget: MAX_ALIAS_EXPANSIONS,
        root: None,
        errors: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0usize;
    loop {
        let (ev, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let span = span_at(&file, e.marker());
                let path = loader.current_path();
                loader.errors.push(ConfigError::error(
                    span,
                    path,
                    format!("invalid YAML: {}", e.info()),
                ));
                return Err(loader.errors);
            }
        };
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    loader.errors.push(ConfigError::error(
                        span_at(&file, &mark),
                        "",
                        "a config file must contain a single YAML document",
                    ));
                    return Err(loader.errors);
                }
            }
            _ => {}
        }
        if let Err(e) = loader.on_event(ev, mark) {
            loader.errors.push(e);
            return Err(loader.errors);
        }
    }
    if !loader.errors.is_empty() {
        return Err(loader.errors);
    }
    Ok(loader
        .root
        .unwrap_or_else(|| Node::empty_map(Span::new(file, 1, 1), String::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        match Node::from_yaml_str("t.yaml", text) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        }
    }

    fn perr(text: &str) -> String {
        Node::from_yaml_str("t.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn positions_and_paths() {
        let n = p("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 0.0.0.0:4317\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp, foo]\n");
        let ep = n
            .get("receivers")
            .and_then(|r| r.get("otlp"))
            .and_then(|r| r.get("protocols"))
            .and_then(|r| r.get("grpc"))
            .and_then(|r| r.get("endpoint"))
            .unwrap();
        assert_eq!(ep.path(), "receivers.otlp.protocols.grpc.endpoint");
        assert_eq!(ep.span().to_string(), "t.yaml:5:19");
        assert_eq!(ep.key_span().to_string(), "t.yaml:5:9");
        assert_eq!(ep.as_str(), Some("0.0.0.0:4317"));
        let recv = n
            .get("service")
            .and_then(|s| s.get("pipelines"))
            .and_then(|s| s.get("traces"))
            .and_then(|s| s.get("receivers"))
            .and_then(Node::as_seq)
            .unwrap();
        assert_eq!(recv[1].path(), "service.pipelines.traces.receivers[1]");
        assert_eq!(recv[1].span().to_string(), "t.yaml:9:25");
    }

    #[test]
    fn nulls_and_quotes() {
        let n = p("a:\nb: ~\nc: null\nd: 'null'\ne: \"\"\nf: !!str 12\ng: |\n  text\n");
        assert!(n.get("a").unwrap().is_null());
        assert!(n.get("b").unwrap().is_null());
        assert!(n.get("c").unwrap().is_null());
        assert!(!n.get("d").unwrap().is_null());
        assert_eq!(n.get("d").unwrap().as_str(), Some("null"));
        assert!(!n.get("e").unwrap().is_null());
        assert!(n.get("f").unwrap().is_quoted());
        assert!(n.get("g").unwrap().is_quoted());
        assert_eq!(n.get("a").unwrap().as_str(), None);
    }

    #[test]
    fn empty_document_is_empty_map() {
        let n = p("");
        assert_eq!(n.as_map().map(|m| m.len()), Some(0));
        let n = p("# only a comment\n");
        assert!(n.as_map().is_some());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = perr("a: [1, 2\nb: c\n");
        assert!(e.starts_with("t.yaml:"), "{e}");
        assert!(e.contains("error: "), "{e}");
        assert!(e.contains("invalid YAML"), "{e}");
        let e = perr("a:\n  b: c\n d: e\n");
        assert!(e.starts_with("t.yaml:3:"), "{e}");
    }

    #[test]
    fn duplicate_keys_rejected() {
        let e = perr("a: 1\nb: 2\na: 3\n");
        assert_eq!(
            e,
            "t.yaml:3:1: error: duplicate key `a` (first defined at t.yaml:1:1)"
        );
        let e = perr("x:\n  a: 1\n  a: 2\n");
        assert_eq!(
            e,
            "t.yaml:3:3: error: x: duplicate key `a` (first defined at t.yaml:2:3)"
        );
    }

    #[test]
    fn aliases_copy_with_new_path() {
        let n = p("base: &b\n  endpoint: x\n  tls: {insecure: true}\nother: *b\n");
        let other = n.get("other").unwrap();
        let ep = other.get("endpoint").unwrap();
        assert_eq!(ep.path(), "other.endpoint");
        // the copy keeps the anchored node's position
        assert_eq!(ep.span().to_string(), "t.yaml:2:13");
        assert_eq!(
            other.get("tls").unwrap().get("insecure").unwrap().path(),
            "other.tls.insecure"
        );
        let n = p("a: &x 5\nb: *x\nc: [*x, *x]\n");
        assert_eq!(n.get("b").unwrap().as_str(), Some("5"));
        assert_eq!(n.get("c").unwrap().as_seq().unwrap()[1].path(), "c[1]");
    }

    #[test]
    fn merge_keys() {
        let n = p("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n  c: 4\n");
        let x = n.get("x").unwrap().as_map().unwrap();
        assert_eq!(x.get("a").unwrap().as_str(), Some("1"));
        assert_eq!(x.get("a").unwrap().path(), "x.a");
        assert_eq!(x.get("b").unwrap().as_str(), Some("3"));
        assert_eq!(x.get("c").unwrap().as_str(), Some("4"));
        assert!(!x.contains_key("<<"));
        let e = perr("x:\n  <<: 5\n");
        assert_eq!(
            e,
            "t.yaml:2:3: error: x: the value of a merge key `<<` must be a map or a list of maps"
        );
    }

    #[test]
    fn alias_bomb_rejected() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let e = perr(&doc);
        assert!(
            e.contains("too many alias expansions (limit 10000 nodes)"),
            "{e}"
        );
        assert!(e.starts_with("t.yaml:4:"), "{e}");
    }

    #[test]
    fn depth_bomb_rejected() {
        let doc = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = perr(&doc);
        assert_eq!(
            e,
            format!(
                "t.yaml:1:129: error: {}: nesting is too deep (limit 128 levels)",
                "[0]".repeat(128)
            )
        );
        let mut doc = String::new();
        for i in 0..130 {
            doc.push_str(&" ".repeat(i * 2));
            doc.push_str("k:\n");
        }
        doc.push_str(&" ".repeat(260));
        doc.push_str("v\n");
        let e = perr(&doc);
        assert!(e.contains("nesting is too deep (limit 128 levels)"), "{e}");
        // exactly at the limit is fine
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        p(&ok);
    }

    #[test]
    fn recursive_alias_rejected() {
        let e = perr("a: &a [1, *a]\n");
        assert!(e.contains("recursive alias"), "{e}");
    }

    #[test]
    fn too_large_rejected() {
        let big = "a".repeat(MAX_FILE_SIZE + 1);
        let e = perr(&big);
        assert_eq!(
            e,
            format!(
                "t.yaml:1:1: error: the config is too large ({} bytes; the limit is 16 MiB)",
                MAX_FILE_SIZE + 1
            )
        );
    }

    #[test]
    fn multiple_documents_rejected() {
        let e = perr("a: 1\n---\nb: 2\n");
        assert!(e.contains("single YAML document"), "{e}");
    }

    #[test]
    fn complex_keys_rejected() {
        let e = perr("? [a, b]\n: c\n");
        assert!(e.contains("map keys must be scalars"), "{e}");
    }
}
