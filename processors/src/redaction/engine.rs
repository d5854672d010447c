//! The compiled rules and the walk over a signal that applies them.

use super::config::{Detector, HashFunction, RedactionConfig, Summary};
use super::db::{self, DbSanitizers};
use super::detectors::{self, Kind};
use super::sanitize::{self, UrlPart};
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, KeyValue};
use confluo_pipeline::Signal;
use md5::Digest as _;
use regex_automata::meta::{Cache, Regex};
use regex_automata::Input;
use std::collections::HashSet;
use std::sync::Mutex;

pub const MASK: &str = "****";

pub const REDACTED_KEYS: &str = "redaction.redacted.keys";
pub const REDACTED_COUNT: &str = "redaction.redacted.count";
pub const MASKED_KEYS: &str = "redaction.masked.keys";
pub const MASKED_COUNT: &str = "redaction.masked.count";
pub const ALLOWED_KEYS: &str = "redaction.allowed.keys";
pub const ALLOWED_COUNT: &str = "redaction.allowed.count";
pub const IGNORED_COUNT: &str = "redaction.ignored.count";

/// A problem compiling the config: the option it is in and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{option}: {message}")]
pub struct BuildError {
    pub option: String,
    pub message: String,
}

/// Totals of one call, for the processor's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub redacted: u64,
    pub masked: u64,
    pub allowed: u64,
    pub ignored: u64,
}

enum Hasher {
    Md5,
    Sha1,
    Sha3,
    Hmac(ring::hmac::Key),
}

pub struct Redactor {
    allow_all_keys: bool,
    allowed_keys: HashSet<String>,
    ignored_keys: HashSet<String>,
    ignored_key_patterns: Option<Regex>,
    blocked_key_patterns: Option<Regex>,
    /// User `blocked_values` first (they win ties), then the detectors.
    values: Option<Regex>,
    kinds: Vec<Kind>,
    allowed_values: Option<Regex>,
    password_keys: bool,
    hasher: Option<Hasher>,
    summary: Summary,
    redact_all_types: bool,
    url_attributes: HashSet<String>,
    url_span_names: bool,
    db: DbSanitizers,
    /// Search caches of the regexes, reused across calls: a meta regex's
    /// own pool is a mutex per search on every thread but its first, and a
    /// fresh cache would rebuild the lazy DFA's states every batch.
    cache_pool: Mutex<Vec<Caches>>,
}

/// The lazy-DFA caches of one walk: taken from the pool once per batch, then
/// every search of the walk uses them without synchronisation.
pub struct Caches {
    values: Option<Cache>,
    ignored: Option<Cache>,
    blocked_keys: Option<Cache>,
    allowed: Option<Cache>,
}

/// A [`Caches`] on loan from its redactor's pool, returned on drop.
pub struct CacheLoan<'r> {
    caches: Option<Caches>,
    pool: &'r Mutex<Vec<Caches>>,
}

impl std::ops::Deref for CacheLoan<'_> {
    type Target = Caches;
    fn deref(&self) -> &Caches {
        self.caches.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for CacheLoan<'_> {
    fn deref_mut(&mut self) -> &mut Caches {
        self.caches.as_mut().expect("present until drop")
    }
}

impl Drop for CacheLoan<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut pool)) = (self.caches.take(), self.pool.lock()) {
            pool.push(c);
        }
    }
}

/// What the rules say about an attribute, from its key alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyRule {
    /// Left untouched and counted as ignored.
    Ignored,
    /// Removed: not in `allowed_keys`.
    Redacted,
    /// The whole value is masked.
    Masked,
    /// The value is scanned; `sanitized`: first rewritten by the URL or a
    /// database sanitizer, which lists the key.
    Scan { sanitized: bool },
}

fn compile_each(option: &str, patterns: &[String]) -> Result<Option<Regex>, BuildError> {
    compile(
        option,
        &patterns.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

/// One regex over many patterns. Each is compiled alone first so that an
/// error names the pattern's index.
fn compile(option: &str, patterns: &[&str]) -> Result<Option<Regex>, BuildError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    for (i, p) in patterns.iter().enumerate() {
        if let Err(e) = Regex::new(p) {
            return Err(BuildError {
                option: format!("{option}[{i}]"),
                message: format!("invalid regular expression {p:?}: {}", regex_error(&e)),
            });
        }
    }
    Regex::new_many(patterns).map(Some).map_err(|e| BuildError {
        option: option.to_string(),
        message: format!("cannot compile the patterns together: {e}"),
    })
}

/// The one-line reason of a regex error (the syntax error's own text is a
/// multi-line diagram).
fn regex_error(e: &regex_automata::meta::BuildError) -> String {
    match e.syntax_error() {
        Some(syntax) => {
            let text = syntax.to_string();
            text.lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(&text)
                .to_string()
        }
        None => e.to_string(),
    }
}

impl Redactor {
    pub fn new(cfg: &RedactionConfig) -> Result<Redactor, Vec<BuildError>> {
        let mut errors: Vec<BuildError> = cfg
            .validate()
            .into_iter()
            .map(|(option, message)| BuildError { option, message })
            .collect();
        let mut take = |r: Result<Option<Regex>, BuildError>| match r {
            Ok(re) => re,
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let ignored_key_patterns = take(compile_each(
            "ignored_key_patterns",
            &cfg.ignored_key_patterns,
        ));
        let blocked_key_patterns = take(compile_each(
            "blocked_key_patterns",
            &cfg.blocked_key_patterns,
        ));
        let allowed_values = take(compile_each("allowed_values", &cfg.allowed_values));
        let blocked = take(compile_each("blocked_values", &cfg.blocked_values));

        let mut detectors: Vec<Detector> = cfg.detectors.clone();
        detectors.sort();
        detectors.dedup();
        // `authorization` is an alias of `bearer_token`.
        if detectors.contains(&Detector::BearerToken) {
            detectors.retain(|d| *d != Detector::Authorization);
        }
        let mut patterns: Vec<&str> = cfg.blocked_values.iter().map(String::as_str).collect();
        let mut kinds = vec![Kind::Blocked; patterns.len()];
        for d in &detectors {
            for (kind, p) in detectors::patterns(*d) {
                kinds.push(*kind);
                patterns.push(p);
            }
        }
        let values = if blocked.is_some() || cfg.blocked_values.is_empty() {
            take(compile("blocked_values", &patterns))
        } else {
            None
        };

        let hasher =
            match (cfg.hash_function, &cfg.hmac_key) {
                (None, _) => None,
                (Some(HashFunction::Md5), _) => Some(Hasher::Md5),
                (Some(HashFunction::Sha1), _) => Some(Hasher::Sha1),
                (Some(HashFunction::Sha3), _) => Some(Hasher::Sha3),
                (Some(HashFunction::HmacSha256), Some(k)) => Some(Hasher::Hmac(
                    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.expose().as_bytes()),
                )),
                (Some(HashFunction::HmacSha512), Some(k)) => Some(Hasher::Hmac(
                    ring::hmac::Key::new(ring::hmac::HMAC_SHA512, k.expose().as_bytes()),
                )),
                // Reported by validate().
                (Some(_), None) => None,
            };
        if !errors.is_empty() {
            return Err(errors);
        }
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<String>>();
        Ok(Redactor {
            allow_all_keys: cfg.allow_all_keys,
            allowed_keys: set(&cfg.allowed_keys),
            ignored_keys: set(&cfg.ignored_keys),
            ignored_key_patterns,
            blocked_key_patterns,
            values,
            kinds,
            allowed_values,
            password_keys: detectors.contains(&Detector::PasswordKeys),
            hasher,
            summary: cfg.summary,
            redact_all_types: cfg.redact_all_types,
            url_attributes: if cfg.url_sanitizer.enabled {
                set(&cfg.url_sanitizer.attributes)
            } else {
                HashSet::new()
            },
            url_span_names: cfg.url_sanitizer.enabled && cfg.url_sanitizer.sanitize_span_name,
            db: DbSanitizers::new(&cfg.db_sanitizer),
            cache_pool: Mutex::new(Vec::new()),
        })
    }

    /// Search caches for one walk, from the pool when one is free.
    pub fn caches(&self) -> CacheLoan<'_> {
        let pooled = self.cache_pool.lock().ok().and_then(|mut p| p.pop());
        let caches = pooled.unwrap_or_else(|| Caches {
            values: self.values.as_ref().map(Regex::create_cache),
            ignored: self.ignored_key_patterns.as_ref().map(Regex::create_cache),
            blocked_keys: self.blocked_key_patterns.as_ref().map(Regex::create_cache),
            allowed: self.allowed_values.as_ref().map(Regex::create_cache),
        });
        CacheLoan {
            caches: Some(caches),
            pool: &self.cache_pool,
        }
    }

    pub(super) fn summary(&self) -> Summary {
        self.summary
    }

    pub(super) fn db(&self) -> &DbSanitizers {
        &self.db
    }

    /// Whether scalar values (ints, doubles, bools, bytes) are scanned too.
    pub(super) fn redact_all_types(&self) -> bool {
        self.redact_all_types
    }

    /// Whether a whole-value mask depends on the value (it is hashed).
    pub(super) fn hashes(&self) -> bool {
        self.hasher.is_some()
    }

    /// The Collector's order: ignored keys first, then the allow-list, then
    /// blocked keys.
    pub(super) fn key_rule(&self, key: &str, c: &mut Caches) -> KeyRule {
        if self.is_ignored(key, c) {
            KeyRule::Ignored
        } else if !self.allow_all_keys && !self.allowed_keys.contains(key) {
            KeyRule::Redacted
        } else if self.is_blocked_key(key, c) {
            KeyRule::Masked
        } else {
            KeyRule::Scan {
                sanitized: (!self.url_attributes.is_empty() && self.url_attributes.contains(key))
                    || (!self.db.is_empty() && self.db.lists(key)),
            }
        }
    }

    /// A string attribute value under [`KeyRule::Scan`]: the URL and
    /// database sanitizers when `sanitized` (they list the key), then the
    /// value patterns. None when unchanged.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scan_attr_str(
        &self,
        key: &str,
        value: &str,
        sanitized: bool,
        system: Option<&str>,
        log_record: bool,
        allowed: &mut bool,
        c: &mut Caches,
    ) -> Option<String> {
        if !sanitized {
            return self.scan_str_with(value, allowed, c);
        }
        let mut out: Option<String> = None;
        if !self.url_attributes.is_empty() && self.url_attributes.contains(key) {
            out = sanitize::sanitize_url(value, UrlPart::for_key(key));
        }
        if !self.db.is_empty() && self.db.lists(key) {
            let cur = out.as_deref().unwrap_or(value);
            if let Some(new) = self.db.sanitize(key, cur, system, log_record) {
                out = Some(new);
            }
        }
        let cur = out.as_deref().unwrap_or(value);
        match self.scan_str_with(cur, allowed, c) {
            Some(new) => Some(new),
            None => out,
        }
    }

    /// Whether the value rules leave `text` as it is: no value pattern
    /// matches anywhere in it. Checked on the bytes, so that text nothing
    /// matches is never even read as UTF-8.
    pub(super) fn leaves_text(&self, text: &[u8], c: &mut Caches) -> bool {
        match (&self.values, &mut c.values) {
            (Some(re), Some(cache)) => !re.is_match_with(cache, &Input::new(text)),
            _ => true,
        }
    }

    /// Whether [`Redactor::scan_attr_str`] leaves a string value as it is
    /// and allows nothing in it: no sanitizer lists its key and no value
    /// pattern matches.
    pub(super) fn leaves_attr(&self, sanitized: bool, value: &[u8], c: &mut Caches) -> bool {
        !sanitized && self.leaves_text(value, c)
    }

    /// Whether [`Redactor::span_name`] without a database block leaves the
    /// name as it is.
    pub(super) fn leaves_span_name(&self, name: &[u8], c: &mut Caches) -> bool {
        !self.url_span_names && self.leaves_text(name, c)
    }

    /// The text of a whole-masked value: `****` or the hash of `text`.
    pub(super) fn whole_mask(&self, text: &str) -> String {
        let mut out = String::new();
        self.write_replacement(text, &mut out);
        out
    }

    /// Applies every rule to every part of the signal that can carry data.
    /// Whether `process` adds `redaction.*` summary attributes where it
    /// counted something.
    pub fn writes_summary(&self) -> bool {
        self.summary != Summary::Silent
    }

    /// Whether a walk with these totals changed the data: something was
    /// redacted or masked, or a summary was written.
    pub fn changed(&self, stats: &Stats) -> bool {
        stats.redacted > 0
            || stats.masked > 0
            || (self.writes_summary() && (stats.allowed > 0 || stats.ignored > 0))
    }

    pub fn process(&self, signal: &mut Signal) -> Stats {
        let mut caches = self.caches();
        let c: &mut Caches = &mut caches;
        let mut stats = Stats::default();
        match signal {
            Signal::Traces(rs) => {
                for r in rs {
                    if let Some(res) = &mut r.resource {
                        self.process_attrs(&mut res.attributes, None, false, &mut stats, c);
                    }
                    for ss in &mut r.scope_spans {
                        if let Some(scope) = &mut ss.scope {
                            self.process_attrs(&mut scope.attributes, None, false, &mut stats, c);
                        }
                        for span in &mut ss.spans {
                            // Decided before the attributes are rewritten.
                            let db_name = self
                                .db
                                .span_name_block(span.kind, span.attributes.as_slice());
                            self.process_attrs(&mut span.attributes, None, false, &mut stats, c);
                            if let Some(n) = self.span_name(&span.name, db_name, &mut stats, c) {
                                span.name = n;
                            }
                            if let Some(status) = &mut span.status {
                                self.scan_field(&mut status.message, &mut stats, c);
                            }
                            for e in &mut span.events {
                                self.scan_field(&mut e.name, &mut stats, c);
                                self.process_attrs(&mut e.attributes, None, false, &mut stats, c);
                            }
                            for l in &mut span.links {
                                self.process_attrs(&mut l.attributes, None, false, &mut stats, c);
                            }
                        }
                    }
                }
            }
            Signal::Logs(rl) => {
                for r in rl {
                    if let Some(res) = &mut r.resource {
                        self.process_attrs(&mut res.attributes, None, false, &mut stats, c);
                    }
                    for sl in &mut r.scope_logs {
                        if let Some(scope) = &mut sl.scope {
                            self.process_attrs(&mut scope.attributes, None, false, &mut stats, c);
                        }
                        for rec in &mut sl.log_records {
                            self.scan_field(&mut rec.event_name, &mut stats, c);
                            self.process_attrs(
                                &mut rec.attributes,
                                rec.body.as_mut(),
                                true,
                                &mut stats,
                                c,
                            );
                        }
                    }
                }
            }
            Signal::Metrics(rm) => {
                use confluo_pipeline::proto::metrics::metric::Data;
                for r in rm {
                    if let Some(res) = &mut r.resource {
                        self.process_attrs(&mut res.attributes, None, false, &mut stats, c);
                    }
                    for sm in &mut r.scope_metrics {
                        if let Some(scope) = &mut sm.scope {
                            self.process_attrs(&mut scope.attributes, None, false, &mut stats, c);
                        }
                        for m in &mut sm.metrics {
                            macro_rules! points {
                                ($points:expr) => {
                                    for p in $points {
                                        self.process_attrs(
                                            &mut p.attributes,
                                            None,
                                            false,
                                            &mut stats,
                                            c,
                                        );
                                        for e in &mut p.exemplars {
                                            self.process_attrs(
                                                &mut e.filtered_attributes,
                                                None,
                                                false,
                                                &mut stats,
                                                c,
                                            );
                                        }
                                    }
                                };
                            }
                            match m.data.as_mut() {
                                Some(Data::Gauge(g)) => points!(&mut g.data_points),
                                Some(Data::Sum(s)) => points!(&mut s.data_points),
                                Some(Data::Histogram(h)) => points!(&mut h.data_points),
                                Some(Data::ExponentialHistogram(h)) => points!(&mut h.data_points),
                                Some(Data::Summary(s)) => {
                                    for p in &mut s.data_points {
                                        self.process_attrs(
                                            &mut p.attributes,
                                            None,
                                            false,
                                            &mut stats,
                                            c,
                                        );
                                    }
                                }
                                None => {}
                            }
                        }
                    }
                }
            }
        }
        stats
    }

    /// A span's name: the URLs in it (with `url_sanitizer.sanitize_span_name`),
    /// the database block chosen from the span's attributes, then the value
    /// rules; each step that changes it counts one masked value. None when
    /// unchanged.
    pub(super) fn span_name(
        &self,
        name: &str,
        db_block: Option<db::Block>,
        stats: &mut Stats,
        c: &mut Caches,
    ) -> Option<String> {
        let mut out: Option<String> = None;
        if self.url_span_names {
            if let Some(n) = sanitize::sanitize_span_name_urls(name) {
                out = Some(n);
                stats.masked += 1;
            }
        }
        if let Some(block) = db_block {
            if let Some(n) = block.apply(out.as_deref().unwrap_or(name)) {
                out = Some(n);
                stats.masked += 1;
            }
        }
        let mut allowed = false;
        if let Some(n) = self.scan_str_with(out.as_deref().unwrap_or(name), &mut allowed, c) {
            out = Some(n);
            stats.masked += 1;
        }
        out
    }

    /// A plain text field (span name, status message, event name): only
    /// the value rules apply.
    pub(super) fn scan_field(&self, s: &mut String, stats: &mut Stats, c: &mut Caches) {
        let mut allowed = false;
        if let Some(new) = self.scan_str_with(s, &mut allowed, c) {
            *s = new;
            stats.masked += 1;
        }
    }

    fn is_ignored(&self, key: &str, c: &mut Caches) -> bool {
        // The emptiness check spares hashing the key in the common case.
        (!self.ignored_keys.is_empty() && self.ignored_keys.contains(key))
            || matches(self.ignored_key_patterns.as_ref(), &mut c.ignored, key)
    }

    /// A key whose whole value is masked.
    fn is_blocked_key(&self, key: &str, c: &mut Caches) -> bool {
        (self.password_keys && detectors::is_password_key(key))
            || matches(self.blocked_key_patterns.as_ref(), &mut c.blocked_keys, key)
    }

    /// The Collector's `processAttrs`: ignored keys are skipped, keys not
    /// allowed are removed, blocked keys are masked whole, other values are
    /// scanned; then the summary goes into the same map. A log body is
    /// scanned with its record's attributes and audited as key `body`.
    pub(super) fn process_attrs(
        &self,
        attrs: &mut Vec<KeyValue>,
        body: Option<&mut AnyValue>,
        log_record: bool,
        stats: &mut Stats,
        c: &mut Caches,
    ) {
        if attrs.is_empty() && body.is_none() {
            return;
        }
        // Read before any attribute is removed or rewritten.
        let system = if self.db.needs_system() {
            db::db_system(attrs.as_slice())
        } else {
            None
        };
        let mut audit = Audit::new(self.summary);
        attrs.retain_mut(|kv| {
            let rule = self.key_rule(&kv.key, c);
            match rule {
                KeyRule::Ignored => {
                    audit.ignored += 1;
                    return true;
                }
                KeyRule::Redacted => {
                    audit.redacted(&kv.key);
                    return false;
                }
                KeyRule::Masked | KeyRule::Scan { .. } => {}
            }
            let Some(value) = kv.value.as_mut() else {
                return true;
            };
            if rule == KeyRule::Masked {
                self.mask_whole(value);
                audit.masked(&kv.key);
                return true;
            }
            let sanitized = matches!(rule, KeyRule::Scan { sanitized: true });
            let mut allowed = false;
            let changed = match &mut value.value {
                Some(Value::StringValue(s)) => {
                    match self.scan_attr_str(
                        &kv.key,
                        s,
                        sanitized,
                        system.as_deref(),
                        log_record,
                        &mut allowed,
                        c,
                    ) {
                        Some(new) => {
                            *s = new;
                            true
                        }
                        None => false,
                    }
                }
                _ => self.scan_value(value, &mut allowed, c),
            };
            audit.record(&kv.key, changed, allowed);
            true
        });
        if let Some(body) = body {
            let mut allowed = false;
            let changed = self.scan_value(body, &mut allowed, c);
            audit.record("body", changed, allowed);
        }
        audit.finish(attrs, stats);
    }

    pub(super) fn mask_whole(&self, value: &mut AnyValue) {
        let masked = match &self.hasher {
            None => MASK.to_string(),
            Some(_) => {
                let mut out = String::new();
                self.write_replacement(&confluo_pipeline::attrs::to_text(value), &mut out);
                out
            }
        };
        value.value = Some(Value::StringValue(masked));
    }

    /// Scans a value and everything nested in it; true when it changed.
    pub(super) fn scan_value(
        &self,
        value: &mut AnyValue,
        allowed: &mut bool,
        c: &mut Caches,
    ) -> bool {
        match &mut value.value {
            Some(Value::StringValue(s)) => match self.scan_str_with(s, allowed, c) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            Some(Value::ArrayValue(a)) => {
                let mut changed = false;
                for v in &mut a.values {
                    changed |= self.scan_value(v, allowed, c);
                }
                changed
            }
            Some(Value::KvlistValue(kvs)) => {
                let mut changed = false;
                for kv in &mut kvs.values {
                    let Some(v) = kv.value.as_mut() else { continue };
                    if self.is_blocked_key(&kv.key, c) {
                        self.mask_whole(v);
                        changed = true;
                    } else {
                        changed |= self.scan_value(v, allowed, c);
                    }
                }
                changed
            }
            Some(Value::IntValue(_)) | Some(Value::DoubleValue(_)) | Some(Value::BoolValue(_))
                if self.redact_all_types =>
            {
                let text = confluo_pipeline::attrs::to_text(value);
                match self.scan_str_with(&text, allowed, c) {
                    Some(new) => {
                        value.value = Some(Value::StringValue(new));
                        true
                    }
                    None => false,
                }
            }
            Some(Value::BytesValue(b)) if self.redact_all_types => {
                let Ok(text) = std::str::from_utf8(b) else {
                    return false;
                };
                match self.scan_str_with(text, allowed, c) {
                    Some(new) => {
                        value.value = Some(Value::StringValue(new));
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// The text with every blocked or detected part replaced, or None when
    /// nothing matched (no allocation then). One pass of the combined
    /// matcher; a candidate a detector rejects is skipped whole.
    pub fn scan_str(&self, s: &str, allowed: &mut bool) -> Option<String> {
        self.scan_str_with(s, allowed, &mut self.caches())
    }

    pub(super) fn scan_str_with(
        &self,
        s: &str,
        allowed: &mut bool,
        c: &mut Caches,
    ) -> Option<String> {
        let re = self.values.as_ref()?;
        let cache = c.values.as_mut()?;
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut at = 0;
        while at < s.len() {
            let Some(m) = re.search_with(cache, &Input::new(s).span(at..s.len())) else {
                break;
            };
            let (ms, me) = (m.start(), m.end());
            if ms == me {
                // An empty match of a user pattern: step over one character.
                at = ms + s[ms..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            at = me;
            let kind = self
                .kinds
                .get(m.pattern().as_usize())
                .copied()
                .unwrap_or(Kind::Blocked);
            let Some((a, b)) = detectors::mask_range(kind, &s[ms..me]) else {
                continue;
            };
            let (a, b) = (ms + a, ms + b);
            if matches(self.allowed_values.as_ref(), &mut c.allowed, &s[a..b]) {
                *allowed = true;
                continue;
            }
            let o = out.get_or_insert_with(|| String::with_capacity(s.len() + 64));
            o.push_str(&s[copied..a]);
            self.write_replacement(&s[a..b], o);
            copied = b;
        }
        out.map(|mut o| {
            o.push_str(&s[copied..]);
            o
        })
    }

    /// `****`, or the lower-case hex hash of the text.
    fn write_replacement(&self, text: &str, out: &mut String) {
        match &self.hasher {
            None => out.push_str(MASK),
            Some(Hasher::Md5) => push_hex(out, &md5::Md5::digest(text.as_bytes())),
            Some(Hasher::Sha1) => push_hex(
                out,
                ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes())
                    .as_ref(),
            ),
            Some(Hasher::Sha3) => push_hex(out, &sha3::Sha3_256::digest(text.as_bytes())),
            Some(Hasher::Hmac(key)) => {
                push_hex(out, ring::hmac::sign(key, text.as_bytes()).as_ref())
            }
        }
    }
}

/// Whether the optional regex matches anywhere in `text`.
fn matches(re: Option<&Regex>, cache: &mut Option<Cache>, text: &str) -> bool {
    match (re, cache) {
        (Some(re), Some(cache)) => re.is_match_with(cache, &Input::new(text)),
        _ => false,
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// What happened to one attribute map; key names only kept for `debug`.
pub(super) struct Audit {
    summary: Summary,
    keep_keys: bool,
    redacted: u64,
    masked: u64,
    allowed: u64,
    pub(super) ignored: u64,
    redacted_keys: Vec<String>,
    masked_keys: Vec<String>,
    allowed_keys: Vec<String>,
}

impl Audit {
    pub(super) fn new(summary: Summary) -> Audit {
        Audit {
            summary,
            keep_keys: summary == Summary::Debug,
            redacted: 0,
            masked: 0,
            allowed: 0,
            ignored: 0,
            redacted_keys: Vec::new(),
            masked_keys: Vec::new(),
            allowed_keys: Vec::new(),
        }
    }

    /// Nothing counted: no summary to write, no totals to add.
    pub(super) fn is_empty(&self) -> bool {
        self.redacted == 0 && self.masked == 0 && self.allowed == 0 && self.ignored == 0
    }

    /// A value scanned: masked when it changed, else allowed when a blocked
    /// match in it was allowed.
    pub(super) fn record(&mut self, key: &str, changed: bool, allowed: bool) {
        if changed {
            self.masked(key);
        } else if allowed {
            self.allowed(key);
        }
    }

    /// Adds the totals to `stats` and, unless silent, the summary to `attrs`.
    pub(super) fn finish(self, attrs: &mut Vec<KeyValue>, stats: &mut Stats) {
        stats.redacted += self.redacted;
        stats.masked += self.masked;
        stats.allowed += self.allowed;
        stats.ignored += self.ignored;
        if self.summary != Summary::Silent {
            self.write(attrs);
        }
    }

    pub(super) fn redacted(&mut self, key: &str) {
        self.redacted += 1;
        if self.keep_keys {
            self.redacted_keys.push(key.to_string());
        }
    }

    pub(super) fn masked(&mut self, key: &str) {
        self.masked += 1;
        if self.keep_keys {
            self.masked_keys.push(key.to_string());
        }
    }

    fn allowed(&mut self, key: &str) {
        self.allowed += 1;
        if self.keep_keys {
            self.allowed_keys.push(key.to_string());
        }
    }

    /// The Collector's `addMetaAttrs`: counts (and, for debug, sorted key
    /// lists) merged with what an earlier redaction stage wrote.
    fn write(self, attrs: &mut Vec<KeyValue>) {
        let keep = self.keep_keys;
        add_meta(
            attrs,
            keep,
            self.redacted_keys,
            self.redacted,
            Some(REDACTED_KEYS),
            REDACTED_COUNT,
        );
        add_meta(
            attrs,
            keep,
            self.masked_keys,
            self.masked,
            Some(MASKED_KEYS),
            MASKED_COUNT,
        );
        add_meta(
            attrs,
            keep,
            self.allowed_keys,
            self.allowed,
            Some(ALLOWED_KEYS),
            ALLOWED_COUNT,
        );
        add_meta(attrs, keep, Vec::new(), self.ignored, None, IGNORED_COUNT);
    }
}

fn add_meta(
    attrs: &mut Vec<KeyValue>,
    keep_keys: bool,
    mut keys: Vec<String>,
    count: u64,
    keys_attr: Option<&str>,
    count_attr: &str,
) {
    use confluo_pipeline::attrs;
    if count == 0 {
        return;
    }
    if keep_keys {
        if let Some(keys_attr) = keys_attr {
            if let Some(existing) = attrs::get_str(attrs, keys_attr) {
                if !existing.is_empty() {
                    keys.extend(existing.split(',').map(str::to_string));
                }
            }
            keys.sort();
            attrs::set_str(attrs, keys_attr, keys.join(","));
        }
    }
    let previous = match attrs::get(attrs, count_attr).and_then(|v| v.value.as_ref()) {
        Some(Value::IntValue(i)) => *i,
        _ => 0,
    };
    attrs::set(
        attrs,
        count_attr,
        attrs::int(previous.saturating_add(count as i64)),
    );
}
