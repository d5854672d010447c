//! The `redaction` processor's options: the Collector's names and defaults,
//! plus `detectors` (built-in secret detectors) which the Collector lacks.

use confluo_config::Secret;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Keep every attribute key (the allow-list is off). Default false: only
    /// `allowed_keys` survive, so an empty list removes every attribute.
    pub allow_all_keys: bool,
    pub allowed_keys: Vec<String>,
    /// Keys left exactly as they are: neither removed, masked nor scanned.
    pub ignored_keys: Vec<String>,
    /// Regexes; a key matching one is treated like an `ignored_keys` entry.
    pub ignored_key_patterns: Vec<String>,
    /// Regexes; the whole value of a matching key is masked.
    pub blocked_key_patterns: Vec<String>,
    /// Regexes; the matching part of a value is masked (or hashed).
    pub blocked_values: Vec<String>,
    /// Regexes; a blocked match that also matches one of these is kept.
    pub allowed_values: Vec<String>,
    /// Replace masked text with its hash instead of `****`.
    pub hash_function: Option<HashFunction>,
    /// Key for `hmac-sha256` / `hmac-sha512`; at least 32 bytes.
    pub hmac_key: Option<Secret>,
    pub summary: Summary,
    /// Also scan int, double, bool and (UTF-8) bytes values as text; a value
    /// that had to be masked becomes a string.
    pub redact_all_types: bool,
    /// Built-in detectors to switch on (confluo's addition).
    pub detectors: Vec<Detector>,
    pub url_sanitizer: UrlSanitizerConfig,
    pub db_sanitizer: DbSanitizerConfig,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum HashFunction {
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "sha1")]
    Sha1,
    /// SHA3-256, as the Collector's `sha3`.
    #[serde(rename = "sha3")]
    Sha3,
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

impl HashFunction {
    pub fn is_hmac(self) -> bool {
        matches!(self, HashFunction::HmacSha256 | HashFunction::HmacSha512)
    }
}

/// How much of an audit the processor writes into each attribute map it changed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Summary {
    /// Counts and the sorted, comma-separated key lists.
    Debug,
    /// Counts only.
    Info,
    /// Nothing (the Collector's behaviour when `summary` is unset).
    #[default]
    Silent,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// 13–19 digit card numbers (spaces or dashes allowed) with a card
    /// network prefix that pass the Luhn check.
    CreditCard,
    Email,
    /// Three base64url parts, the first starting `eyJ` (`{"`).
    Jwt,
    /// `Bearer <token>` and `Basic <base64>` credentials.
    BearerToken,
    /// Same as `bearer_token`.
    Authorization,
    /// AWS access key ids (`AKIA…`, `ASIA…`, …).
    AwsAccessKey,
    /// PEM private key blocks, whole (to the end of the text if unterminated).
    PrivateKey,
    /// Values of keys named like password / passwd / secret / token /
    /// api_key / authorization, in attribute and body maps and as
    /// `key=value` / `"key": "value"` inside text.
    PasswordKeys,
}

impl Detector {
    pub const ALL: [Detector; 8] = [
        Detector::CreditCard,
        Detector::Email,
        Detector::Jwt,
        Detector::BearerToken,
        Detector::Authorization,
        Detector::AwsAccessKey,
        Detector::PrivateKey,
        Detector::PasswordKeys,
    ];
}

pub const DEFAULT_URL_ATTRIBUTES: [&str; 6] = [
    "url.full",
    "http.url",
    "http.target",
    "url.path",
    "url.query",
    "url.original",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UrlSanitizerConfig {
    pub enabled: bool,
    pub attributes: Vec<String>,
    /// Also sanitize URL paths that appear in span names (`GET /users/123`).
    pub sanitize_span_name: bool,
}

impl Default for UrlSanitizerConfig {
    fn default() -> Self {
        UrlSanitizerConfig {
            enabled: false,
            attributes: DEFAULT_URL_ATTRIBUTES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            sanitize_span_name: true,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbSanitizerConfig {
    /// SQL literals → `?`.
    pub sql: DbBlockConfig,
    /// Redis commands: values in arguments → `?` (keys, options kept).
    pub redis: DbBlockConfig,
    /// Valkey commands, as `redis`.
    pub valkey: DbBlockConfig,
    /// Memcached commands: the data block of storage commands removed.
    pub memcached: DbBlockConfig,
    /// MongoDB JSON queries: every value → `"?"`.
    pub mongo: DbBlockConfig,
    /// OpenSearch JSON queries, as `mongo`.
    pub opensearch: DbBlockConfig,
    /// Elasticsearch JSON queries, as `mongo`.
    pub es: DbBlockConfig,
    /// Also rewrite the names of database spans (client, server, internal)
    /// with the block of their `db.system`; with `sql`, the names of spans
    /// that carry one of its attributes.
    pub sanitize_span_name: bool,
}

/// Attributes each `db_sanitizer` block rewrites unless configured.
pub const DEFAULT_DB_ATTRIBUTES: [&str; 2] = ["db.statement", "db.query.text"];
pub const DEFAULT_SQL_ATTRIBUTES: [&str; 2] = DEFAULT_DB_ATTRIBUTES;

/// One `db_sanitizer` block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbBlockConfig {
    pub enabled: bool,
    pub attributes: Vec<String>,
}

pub type SqlSanitizerConfig = DbBlockConfig;

impl Default for DbBlockConfig {
    fn default() -> Self {
        DbBlockConfig {
            enabled: false,
            attributes: DEFAULT_DB_ATTRIBUTES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Minimum HMAC key length: the output size of SHA-256, below which the key
/// is weaker than the hash.
pub const MIN_HMAC_KEY_BYTES: usize = 32;

impl RedactionConfig {
    /// Problems that serde cannot see, as (option path, message). Regex
    /// errors come from compiling, in [`super::engine::Redactor::new`].
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match (self.hash_function, &self.hmac_key) {
            (Some(h), None) if h.is_hmac() => out.push((
                "hmac_key".to_string(),
                "hash_function hmac-* needs hmac_key (at least 32 bytes)".to_string(),
            )),
            (Some(h), Some(k)) if h.is_hmac() && k.expose().len() < MIN_HMAC_KEY_BYTES => {
                out.push((
                    "hmac_key".to_string(),
                    format!("hmac_key must be at least {MIN_HMAC_KEY_BYTES} bytes"),
                ))
            }
            (h, Some(_)) if !h.is_some_and(HashFunction::is_hmac) => out.push((
                "hmac_key".to_string(),
                "hmac_key is only used with hash_function hmac-sha256 or hmac-sha512".to_string(),
            )),
            _ => {}
        }
        out
    }
}
