//! `db_sanitizer` blocks other than `sql`: the obfuscations the Collector's
//! redaction processor applies (through the Datadog obfuscator it embeds)
//! to Redis / Valkey commands, Memcached commands and the JSON queries of
//! MongoDB, OpenSearch and Elasticsearch, and which block applies to an
//! attribute map, decided by its `db.system.name` / `db.system`.

use super::config::{DbBlockConfig, DbSanitizerConfig};
use confluo_pipeline::proto::common::{any_value::Value, KeyValue};
use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Sql,
    Redis,
    Valkey,
    Memcached,
    Mongo,
    OpenSearch,
    Es,
}

impl Block {
    /// The `db.system.name` values (lowercased) the block applies to.
    fn systems(self) -> &'static [&'static str] {
        match self {
            Block::Sql => &["other_sql", "mysql", "postgresql", "mariadb", "sqlite"],
            Block::Redis => &["redis"],
            Block::Valkey => &["valkey"],
            Block::Memcached => &["memcached"],
            Block::Mongo => &["mongodb"],
            Block::OpenSearch => &["opensearch"],
            Block::Es => &["elasticsearch"],
        }
    }

    pub fn apply(self, s: &str) -> Option<String> {
        match self {
            Block::Sql => super::sanitize::sanitize_sql(s),
            Block::Redis | Block::Valkey => obfuscate_redis(s),
            Block::Memcached => obfuscate_memcached(s),
            Block::Mongo | Block::OpenSearch | Block::Es => obfuscate_json(s),
        }
    }
}

/// The enabled blocks, in the Collector's order, with their attribute keys.
#[derive(Default)]
pub struct DbSanitizers {
    blocks: Vec<(Block, HashSet<String>)>,
    /// A non-SQL block is enabled: the db system has to be looked up.
    needs_system: bool,
    span_names: bool,
}

/// Read access to an attribute map, decoded or still protobuf.
pub trait AttrMap {
    /// The value of the first attribute named `key`, when it is a string.
    fn first_str(&self, key: &str) -> Option<&str>;
    /// Whether any attribute's key is in `keys`.
    fn has_key_in(&self, keys: &HashSet<String>) -> bool;
}

impl AttrMap for [KeyValue] {
    fn first_str(&self, key: &str) -> Option<&str> {
        self.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => Some(s.as_str()),
                _ => None,
            }
        })
    }

    fn has_key_in(&self, keys: &HashSet<String>) -> bool {
        self.iter().any(|kv| keys.contains(&kv.key))
    }
}

/// The attribute map's database system: `db.system.name`, else the older
/// `db.system`, lowercased.
pub fn db_system<A: AttrMap + ?Sized>(attrs: &A) -> Option<String> {
    let get = |key: &str| {
        attrs
            .first_str(key)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
    };
    get("db.system.name").or_else(|| get("db.system"))
}

impl DbSanitizers {
    pub fn new(cfg: &DbSanitizerConfig) -> DbSanitizers {
        let mut blocks = Vec::new();
        let mut add = |b: Block, c: &DbBlockConfig| {
            if c.enabled {
                blocks.push((b, c.attributes.iter().cloned().collect()));
            }
        };
        add(Block::Sql, &cfg.sql);
        add(Block::Redis, &cfg.redis);
        add(Block::Valkey, &cfg.valkey);
        add(Block::Memcached, &cfg.memcached);
        add(Block::Mongo, &cfg.mongo);
        add(Block::OpenSearch, &cfg.opensearch);
        add(Block::Es, &cfg.es);
        let needs_system = blocks.iter().any(|(b, _)| *b != Block::Sql);
        DbSanitizers {
            blocks,
            needs_system,
            span_names: cfg.sanitize_span_name,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn needs_system(&self) -> bool {
        self.needs_system
    }

    pub fn span_names(&self) -> bool {
        self.span_names
    }

    /// The non-SQL block that owns `system`, when it is enabled.
    fn owner(&self, system: Option<&str>) -> Option<Block> {
        let system = system?;
        self.blocks
            .iter()
            .map(|(b, _)| *b)
            .find(|b| *b != Block::Sql && b.systems().contains(&system))
    }

    pub fn lists(&self, key: &str) -> bool {
        self.blocks.iter().any(|(_, keys)| keys.contains(key))
    }

    /// The sanitized value of attribute `key`, or None when unchanged.
    ///
    /// With a system owned by an enabled non-SQL block, that block alone
    /// applies (when it lists the key). Otherwise `sql` applies to the keys
    /// it lists, whatever the system (confluo keeps SQL literals out even
    /// when `db.system` is missing or unknown); and in a log record without
    /// any system every other block listing the key applies in turn, as the
    /// Collector's logs fallback does.
    pub fn sanitize(
        &self,
        key: &str,
        value: &str,
        system: Option<&str>,
        log_fallback: bool,
    ) -> Option<String> {
        if let Some(owner) = self.owner(system) {
            let (_, keys) = self.blocks.iter().find(|(b, _)| *b == owner)?;
            return if keys.contains(key) {
                owner.apply(value)
            } else {
                None
            };
        }
        let mut out: Option<String> = None;
        for (b, keys) in &self.blocks {
            let applies = *b == Block::Sql || (system.is_none() && log_fallback);
            if applies && keys.contains(key) {
                let cur = out.as_deref().unwrap_or(value);
                if let Some(new) = b.apply(cur) {
                    out = Some(new);
                }
            }
        }
        out
    }

    /// The block that rewrites a span's name: the owner of the span's
    /// system (for client, server and internal spans, as the Collector),
    /// else `sql` when the span carries one of its attributes.
    pub fn span_name_block<A: AttrMap + ?Sized>(&self, kind: i32, attrs: &A) -> Option<Block> {
        if !self.span_names {
            return None;
        }
        if self.needs_system && matches!(kind, 1..=3) {
            if let Some(b) = self.owner(db_system(attrs).as_deref()) {
                return Some(b);
            }
        }
        let (_, keys) = self.blocks.iter().find(|(b, _)| *b == Block::Sql)?;
        attrs.has_key_in(keys).then_some(Block::Sql)
    }
}

// ------------------------------------------------------------------ redis

/// Commands (upper case) and which of their arguments hold values.
enum ArgRule {
    /// Keep only the first argument, as `?` (`AUTH password`).
    OnlyFirst,
    Nth(usize),
    /// Keep the first argument and one `?` for all the rest.
    FirstThenOne,
    /// Every `step`-th argument from `start + step - 1`.
    Step(usize, usize),
    ConfigSet,
    Bitfield,
    Zadd,
}

fn rule(cmd: &str) -> Option<ArgRule> {
    let up = cmd.to_ascii_uppercase();
    Some(match up.as_str() {
        "AUTH" => ArgRule::OnlyFirst,
        "APPEND" | "GETSET" | "LPUSHX" | "GEORADIUSBYMEMBER" | "RPUSHX" | "SET" | "SETNX"
        | "SISMEMBER" | "ZRANK" | "ZREVRANK" | "ZSCORE" => ArgRule::Nth(1),
        "HSET" | "HSETNX" | "LREM" | "LSET" | "SETBIT" | "SETEX" | "PSETEX" | "SETRANGE"
        | "ZINCRBY" | "SMOVE" | "RESTORE" => ArgRule::Nth(2),
        "LINSERT" => ArgRule::Nth(3),
        "GEOHASH" | "GEOPOS" | "GEODIST" | "LPUSH" | "RPUSH" | "SREM" | "ZREM" | "SADD" => {
            ArgRule::FirstThenOne
        }
        "GEOADD" => ArgRule::Step(1, 3),
        "HMSET" => ArgRule::Step(1, 2),
        "MSET" | "MSETNX" => ArgRule::Step(0, 2),
        "CONFIG" => ArgRule::ConfigSet,
        "BITFIELD" => ArgRule::Bitfield,
        "ZADD" => ArgRule::Zadd,
        _ => return None,
    })
}

fn step(args: &mut [&str], start: usize, step: usize) {
    let mut i = start + step - 1;
    while i < args.len() {
        args[i] = "?";
        i += step;
    }
}

fn obfuscate_args(cmd: &str, args: &mut Vec<&str>) {
    let Some(r) = rule(cmd) else { return };
    match r {
        ArgRule::OnlyFirst => {
            args.truncate(1);
            if let Some(a) = args.first_mut() {
                *a = "?";
            }
        }
        ArgRule::Nth(n) => {
            if let Some(a) = args.get_mut(n) {
                *a = "?";
            }
        }
        ArgRule::FirstThenOne => {
            if args.len() > 1 {
                args.truncate(2);
                args[1] = "?";
            }
        }
        ArgRule::Step(start, s) => step(args, start, s),
        ArgRule::ConfigSet => {
            if args.first().is_some_and(|a| a.eq_ignore_ascii_case("SET")) {
                if let Some(a) = args.get_mut(2) {
                    *a = "?";
                }
            }
        }
        ArgRule::Bitfield => {
            let mut set_at = 0;
            for (i, a) in args.iter_mut().enumerate() {
                if a.eq_ignore_ascii_case("SET") {
                    set_at = i;
                }
                if set_at > 0 && i - set_at == 3 {
                    *a = "?";
                    break;
                }
            }
        }
        ArgRule::Zadd => {
            // Past the key and the NX / XX / CH / INCR options, every
            // second argument (the member) is masked.
            let mut i = 0;
            for (k, a) in args.iter().enumerate() {
                i = k;
                if k > 0 && !matches!(*a, "NX" | "XX" | "CH" | "INCR") {
                    break;
                }
            }
            step(args, i, 2);
        }
    }
}

/// Redis commands (one per line) with the values in their arguments
/// replaced by `?`, keys and options kept; arguments may be `"quoted"`
/// (spaces and newlines inside) with `\` escapes. None when unchanged.
pub fn obfuscate_redis(text: &str) -> Option<String> {
    let s = text.trim();
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut first = true;
    let mut args: Vec<&str> = Vec::new();
    let skip_blank = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r') {
            *i += 1;
        }
    };
    loop {
        // The command: up to a space or the end of the line.
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'\n' {
            i += 1;
        }
        let cmd = &s[start..i];
        args.clear();
        let mut line_done = i >= b.len() || b[i] == b'\n';
        if i < b.len() {
            i += 1;
        }
        if !line_done {
            skip_blank(&mut i);
            if i < b.len() && b[i] == b'\n' {
                i += 1;
                line_done = true;
            }
        }
        while !line_done && i < b.len() {
            let start = i;
            let (mut quoted, mut escape) = (false, false);
            while i < b.len() {
                match b[i] {
                    b'\\' if !escape => {
                        escape = true;
                        i += 1;
                        continue;
                    }
                    b'"' if !escape => quoted = !quoted,
                    b' ' | b'\n' if !quoted => break,
                    _ => {}
                }
                escape = false;
                i += 1;
            }
            args.push(&s[start..i]);
            if i >= b.len() {
                break;
            }
            let nl = b[i] == b'\n';
            i += 1;
            if nl {
                break;
            }
            skip_blank(&mut i);
            if i < b.len() && b[i] == b'\n' {
                i += 1;
                break;
            }
        }
        if !first {
            out.push('\n');
        }
        first = false;
        obfuscate_args(cmd, &mut args);
        out.push_str(cmd);
        for a in &args {
            out.push(' ');
            out.push_str(a);
        }
        if i >= b.len() {
            break;
        }
    }
    (out != text).then_some(out)
}

// -------------------------------------------------------------- memcached

/// A Memcached command without the data block of storage commands (all
/// that follows the first `\r\n`). None when unchanged.
pub fn obfuscate_memcached(text: &str) -> Option<String> {
    let line = text.split("\r\n").next().unwrap_or("").trim();
    (line != text).then(|| line.to_string())
}

// ------------------------------------------------------------------- json

/// A JSON query (MongoDB, OpenSearch, Elasticsearch) with every scalar
/// value (string, number, true, false, null) replaced by `"?"`, keys and
/// structure kept, whitespace outside strings removed. None when the text
/// is not valid JSON (the Collector leaves it as it is) or unchanged.
pub fn obfuscate_json(text: &str) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Want {
        /// A value (top level, after `:`, in an array).
        Value,
        /// A key or `}` right after `{`.
        KeyOrEnd,
        /// A key after `,` in an object.
        Key,
        Colon,
        /// `,` or the container's end.
        Next,
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // true: object, false: array.
    let mut stack: Vec<bool> = Vec::new();
    let mut want = Want::Value;
    let mut i = 0;
    let mut done = false;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        if done {
            return None;
        }
        match (want, c) {
            (Want::Value, b'{') => {
                stack.push(true);
                out.push('{');
                want = Want::KeyOrEnd;
                i += 1;
            }
            (Want::Value, b'[') => {
                stack.push(false);
                out.push('[');
                i += 1;
                // An empty array.
                let mut j = i;
                while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\n' | b'\r') {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    stack.pop();
                    out.push(']');
                    i = j + 1;
                    want = Want::Next;
                    done = stack.is_empty();
                } else {
                    want = Want::Value;
                }
            }
            (Want::Value, _) => {
                let end = scalar_end(b, i)?;
                out.push_str("\"?\"");
                i = end;
                want = Want::Next;
                done = stack.is_empty();
            }
            (Want::KeyOrEnd | Want::Key, b'"') => {
                let end = string_end(b, i)?;
                out.push_str(&text[i..end]);
                i = end;
                want = Want::Colon;
            }
            (Want::KeyOrEnd, b'}') | (Want::Next, b'}') if stack.last() == Some(&true) => {
                stack.pop();
                out.push('}');
                i += 1;
                want = Want::Next;
                done = stack.is_empty();
            }
            (Want::Next, b']') if stack.last() == Some(&false) => {
                stack.pop();
                out.push(']');
                i += 1;
                want = Want::Next;
                done = stack.is_empty();
            }
            (Want::Colon, b':') => {
                out.push(':');
                i += 1;
                want = Want::Value;
            }
            (Want::Next, b',') if !stack.is_empty() => {
                out.push(',');
                i += 1;
                want = if stack.last() == Some(&true) {
                    Want::Key
                } else {
                    Want::Value
                };
            }
            _ => return None,
        }
    }
    if !done {
        return None;
    }
    (out != text).then_some(out)
}

/// The end of the JSON string starting at `i` (a `"`), escapes checked.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'"' => return Some(j + 1),
            b'\\' => match b.get(j + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                b'u' => {
                    let hex = b.get(j + 2..j + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    j += 6;
                }
                _ => return None,
            },
            0..=0x1f => return None,
            _ => j += 1,
        }
    }
    None
}

/// The end of the scalar (string, number, literal) starting at `i`.
fn scalar_end(b: &[u8], i: usize) -> Option<usize> {
    match b[i] {
        b'"' => string_end(b, i),
        b't' | b'f' | b'n' => {
            for lit in [&b"true"[..], b"false", b"null"] {
                if b[i..].starts_with(lit) {
                    return Some(i + lit.len());
                }
            }
            None
        }
        b'-' | b'0'..=b'9' => {
            let mut j = i;
            if b[j] == b'-' {
                j += 1;
            }
            let digits = |j: &mut usize| {
                let s = *j;
                while *j < b.len() && b[*j].is_ascii_digit() {
                    *j += 1;
                }
                *j > s
            };
            if b.get(j) == Some(&b'0') {
                j += 1;
            } else if !digits(&mut j) {
                return None;
            }
            if b.get(j) == Some(&b'.') {
                j += 1;
                if !digits(&mut j) {
                    return None;
                }
            }
            if matches!(b.get(j), Some(b'e' | b'E')) {
                j += 1;
                if matches!(b.get(j), Some(b'+' | b'-')) {
                    j += 1;
                }
                if !digits(&mut j) {
                    return None;
                }
            }
            Some(j)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(s: &str) -> String {
        obfuscate_redis(s).unwrap_or_else(|| s.to_string())
    }

    #[test]
    fn redis_keeps_commands_and_keys_and_masks_values() {
        // The Collector's own test cases.
        assert_eq!(redis("SET user:123 john"), "SET user:123 ?");
        assert_eq!(obfuscate_redis("GET user:123"), None);
        // The Datadog obfuscator's rules, one per family.
        for (input, want) in [
            ("AUTH my-secret-password", "AUTH ?"),
            ("AUTH james my-secret-password", "AUTH ?"),
            ("AUTH", "AUTH"),
            ("APPEND key value", "APPEND key ?"),
            ("set key value EX 10", "set key ? EX 10"),
            ("HSET key field value", "HSET key field ?"),
            ("SETEX key 10 value", "SETEX key 10 ?"),
            (
                "LINSERT key BEFORE pivot value",
                "LINSERT key BEFORE pivot ?",
            ),
            ("LPUSH key a b c", "LPUSH key ?"),
            ("SADD key", "SADD key"),
            (
                "GEOADD key 1.1 2.2 m1 3.3 4.4 m2",
                "GEOADD key 1.1 2.2 ? 3.3 4.4 ?",
            ),
            ("HMSET key f1 v1 f2 v2", "HMSET key f1 ? f2 ?"),
            ("MSET k1 v1 k2 v2", "MSET k1 ? k2 ?"),
            ("CONFIG SET masterauth secret", "CONFIG SET masterauth ?"),
            ("CONFIG GET maxmemory", "CONFIG GET maxmemory"),
            (
                "BITFIELD key GET u8 0 SET i5 100 1 INCRBY u2 102 1",
                "BITFIELD key GET u8 0 SET i5 100 ? INCRBY u2 102 1",
            ),
            ("ZADD key NX CH 1 m1 2 m2", "ZADD key NX CH 1 ? 2 ?"),
            ("ZADD key 1 m1", "ZADD key 1 ?"),
            ("HGETALL key", "HGETALL key"),
        ] {
            assert_eq!(redis(input), want, "{input}");
        }
    }

    #[test]
    fn redis_lines_quotes_and_spacing() {
        assert_eq!(
            redis("SET k \"a b\nc\"\nGET k\nSET k2 v2"),
            "SET k ?\nGET k\nSET k2 ?"
        );
        assert_eq!(redis("SET k \"x\\\" y\" EX 1"), "SET k ? EX 1");
        assert_eq!(redis("  SET   k    v  "), "SET k ?");
        // Only spaces separate arguments, as in the Datadog tokenizer.
        assert_eq!(redis("SET k\t v"), "SET k\t ?");
        assert_eq!(redis(""), "");
    }

    #[test]
    fn memcached_drops_the_data_block() {
        assert_eq!(
            obfuscate_memcached("set mykey 0 60 5\r\nhello\r\n").as_deref(),
            Some("set mykey 0 60 5")
        );
        assert_eq!(obfuscate_memcached("get mykey"), None);
        // The Collector's cases: commands without data are unchanged.
        assert_eq!(obfuscate_memcached("set mykey 0 60 5"), None);
    }

    #[test]
    fn json_values_become_question_marks() {
        let j = |s: &str| obfuscate_json(s).unwrap_or_else(|| s.to_string());
        // The Collector's expected output for its OpenSearch / ES case.
        assert_eq!(
            j(r#"{"query": {"match": {"title": "test"}}}"#),
            r#"{"query":{"match":{"title":"?"}}}"#
        );
        assert_eq!(
            j(
                r#"{"find": "users", "filter": {"age": {"$gt": 30}, "tags": ["a", 1, true, null, {"x": -1.5e3}]}, "ok": false}"#
            ),
            r#"{"find":"?","filter":{"age":{"$gt":"?"},"tags":["?","?","?","?",{"x":"?"}]},"ok":"?"}"#
        );
        assert_eq!(
            j(r#"{"a b\"c": "v", "e": {}, "f": []}"#),
            r#"{"a b\"c":"?","e":{},"f":[]}"#
        );
        assert_eq!(j(r#"[{"q": "\u00e9x"}]"#), r#"[{"q":"?"}]"#);
        assert_eq!(j(r#""secret""#), r#""?""#);
        // Not JSON: left as it is (the Collector checks json.Valid first).
        for bad in [
            "/foo/{bar}",
            "",
            "   ",
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            r#"{"a": 01}"#,
            r#"{"a": tru}"#,
            r#"{"a": "x"} {"b": 1}"#,
            r#"{"a": [1, 2}"#,
            r#"{"a": "\x"}"#,
            "{\"a\": \"tab\there\"}",
            r#"{"a": 1"#,
            "[1, 2,]",
        ] {
            assert_eq!(obfuscate_json(bad), None, "{bad}");
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as J;
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<i64>().prop_map(J::from),
            (-1e12f64..1e12).prop_map(J::from),
            "\\PC{0,12}".prop_map(J::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
                proptest::collection::btree_map("\\PC{0,8}", inner, 0..6)
                    .prop_map(|m| J::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every scalar leaf of `v` is the string "?".
    fn all_masked(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Array(a) => a.iter().all(all_masked),
            serde_json::Value::Object(o) => o.values().all(all_masked),
            serde_json::Value::String(s) => s == "?",
            _ => false,
        }
    }

    fn shape(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            J::Array(a) => J::Array(a.iter().map(shape).collect()),
            J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
            _ => J::String("?".into()),
        }
    }

    proptest::proptest! {
        /// Any JSON document, compact or pretty: the output is JSON with the
        /// same keys and structure and no value left.
        #[test]
        fn json_keeps_no_value(v in json_value(), pretty in proptest::bool::ANY) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let out = obfuscate_json(&text).unwrap_or(text);
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
            proptest::prop_assert!(all_masked(&parsed), "{}", out);
            proptest::prop_assert_eq!(parsed, shape(&v));
        }
    }

    #[test]
    fn blocks_follow_the_db_system() {
        use super::super::config::DbSanitizerConfig;
        use confluo_pipeline::attrs::{key_value, string};
        let cfg: DbSanitizerConfig = confluo_config::Node::from_yaml_str(
            "t.yaml",
            "{sql: {enabled: true}, redis: {enabled: true}, mongo: {enabled: true, attributes: [db.query.text]}}",
        )
        .unwrap()
        .deserialize()
        .unwrap();
        let d = DbSanitizers::new(&cfg);
        let sys = |s: &str| db_system(&[key_value("db.system.name", string(s))][..]);
        assert_eq!(sys("Redis").as_deref(), Some("redis"));
        assert_eq!(
            db_system(&[key_value("db.system", string("mongodb"))][..]).as_deref(),
            Some("mongodb")
        );
        // Redis owns `redis`: SQL does not also run.
        assert_eq!(
            d.sanitize("db.statement", "SET k 'v' 1", Some("redis"), false)
                .as_deref(),
            Some("SET k ? 1")
        );
        // Mongo lists only db.query.text.
        assert_eq!(
            d.sanitize("db.statement", r#"{"a": 1}"#, Some("mongodb"), false),
            None
        );
        assert_eq!(
            d.sanitize("db.query.text", r#"{"a": 1}"#, Some("mongodb"), false)
                .as_deref(),
            Some(r#"{"a":"?"}"#)
        );
        // SQL, unknown and missing systems: the sql block.
        for system in [Some("postgresql"), Some("cassandra"), None] {
            assert_eq!(
                d.sanitize("db.statement", "SELECT 1", system, false)
                    .as_deref(),
                Some("SELECT ?"),
                "{system:?}"
            );
        }
        // A log record without a system: every block listing the key, in turn.
        assert_eq!(
            d.sanitize("db.statement", "SET k v", None, true).as_deref(),
            Some("SET k ?")
        );
        assert_eq!(d.sanitize("db.statement", "SET k v", None, false), None);
    }
}
