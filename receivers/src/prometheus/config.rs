//! The `prometheus` receiver's configuration: the Collector's shape (a
//! Prometheus config under `config:`), read with `deny_unknown_fields` at
//! every level so that any Prometheus option confluo does not implement is
//! an error naming it, never silently ignored.

use super::relabel::{is_valid_label_name, RelabelConfig, RelabelConfigYaml};
use confluo_config::{error_with_hint, ConfigError, Node, Secret};
use confluo_pipeline::tls::TlsClientSettings;
use serde::de::{Deserializer, Error as _, IgnoredAny};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Prometheus's defaults.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);

/// `receivers.prometheus`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusReceiverYaml {
    pub config: PromConfigYaml,
    /// confluo keeps the Collector's former in-receiver start-time
    /// adjustment (on by default); `false` leaves start times unset unless
    /// the exposition has `_created`.
    #[serde(default = "yes")]
    pub adjust_start_time: bool,
    /// The Collector's option; only `false` (the default) is supported.
    #[serde(default)]
    pub trim_metric_suffixes: bool,
}

fn yes() -> bool {
    true
}

/// The Prometheus config under `config:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromConfigYaml {
    #[serde(default)]
    pub global: GlobalYaml,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfigYaml>,
    #[serde(default, deserialize_with = "reject_feature")]
    pub alerting: (),
    #[serde(default, deserialize_with = "reject_feature")]
    pub rule_files: (),
    #[serde(default, deserialize_with = "reject_feature")]
    pub remote_read: (),
    #[serde(default, deserialize_with = "reject_feature")]
    pub remote_write: (),
}

/// The Collector rejects these: a receiver only scrapes.
fn reject_feature<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    IgnoredAny::deserialize(d)?;
    Err(error_with_hint(
        "unsupported features: alerting, rule_files, remote_read and remote_write are not supported by the prometheus receiver",
        "remove it: the receiver only scrapes; export with an exporter instead",
    ))
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalYaml {
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    /// Used by rules only; accepted so that whole Prometheus configs load.
    pub evaluation_interval: Option<PromDuration>,
    pub body_size_limit: Option<PromBytes>,
    pub sample_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfigYaml {
    pub job_name: String,
    #[serde(default)]
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub metrics_path: Option<String>,
    pub scheme: Option<String>,
    pub enable_compression: Option<bool>,
    pub body_size_limit: Option<PromBytes>,
    pub sample_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<Rule>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<Rule>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfigYaml>,
}

/// A relabel rule, checked while deserializing so that an error carries the
/// rule's position.
#[derive(Clone, Debug)]
pub struct Rule(pub RelabelConfig);

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let y = RelabelConfigYaml::deserialize(d)?;
        y.build().map(Rule).map_err(D::Error::custom)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default, deserialize_with = "label_map")]
    pub labels: BTreeMap<String, String>,
}

fn label_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, String>::deserialize(d)?;
    if let Some(bad) = m.keys().find(|k| !is_valid_label_name(k)) {
        return Err(D::Error::custom(format!(
            "{bad:?} is not a valid label name"
        )));
    }
    Ok(m)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Option<PromDuration>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<Secret>,
    pub credentials_file: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfigYaml {
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
}

/// A Prometheus duration (`model.Duration`): `1d12h`, `30s`, `500ms`; units
/// y, w, d, h, m, s, ms in that order, integers only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_prom_duration(&s).map(PromDuration).map_err(|e| {
            error_with_hint(
                format!("invalid duration: {e}"),
                "Prometheus syntax: e.g. `15s`, `1m30s`, `1h`, `1d`, `500ms` (units y w d h m s ms, no fractions)",
            )
        })
    }
}

pub fn parse_prom_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration out of range: {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("not a valid duration string: {s:?}"));
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        last_unit = Some(idx);
        total_ms = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// A size in Prometheus's `units.Base2Bytes` syntax: `10MB` and `10MiB` are
/// both 10 × 2²⁰ bytes; a bare integer is bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromBytes(pub u64);

impl<'de> Deserialize<'de> for PromBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_prom_bytes(&s).map(PromBytes).ok_or_else(|| {
            error_with_hint(
                "invalid size",
                "e.g. `10MB`, `512KiB`, `1GB` (base 2: KB = KiB = 1024 bytes) or a number of bytes",
            )
        })
    }
}

pub fn parse_prom_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, unit) = s.split_at(num_len);
    let num: f64 = num.parse().ok()?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        "PB" | "PiB" => 1 << 50,
        _ => return None,
    };
    let v = num * scale as f64;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

/// Credentials sent with each scrape. Files are read on every scrape, as
/// Prometheus does, so rotated secrets are picked up.
#[derive(Clone, Debug)]
pub enum Auth {
    Basic {
        username: String,
        password: Option<Secret>,
        password_file: Option<String>,
    },
    Authorization {
        kind: String,
        credentials: Option<Secret>,
        credentials_file: Option<String>,
    },
}

/// One scrape config with the global defaults applied.
#[derive(Clone, Debug)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub enable_compression: bool,
    /// 0 = no limit.
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdResolved>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub auth: Option<Auth>,
    pub tls: TlsClientSettings,
}

#[derive(Clone, Debug)]
pub struct FileSdResolved {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

/// The whole receiver config, checked.
#[derive(Clone, Debug)]
pub struct PrometheusConfig {
    pub scrape_configs: Vec<ScrapeConfig>,
    pub adjust_start_time: bool,
}

impl PrometheusConfig {
    /// Parses and checks a `receivers.prometheus` node, returning every problem.
    pub fn from_node(node: &Node) -> Result<PrometheusConfig, Vec<ConfigError>> {
        if node.is_null() {
            return Err(vec![ConfigError::error(
                node.span().clone(),
                node.path().to_string(),
                "the prometheus receiver needs a `config:` with `scrape_configs`",
            )]);
        }
        let yaml: PrometheusReceiverYaml = node.deserialize().map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let at = |path: &[PathPart<'_>]| -> (confluo_config::Span, String) {
            let mut n = node;
            for p in path {
                let next = match p {
                    PathPart::Key(k) => n.get(k),
                    PathPart::Index(i) => n.as_seq().and_then(|s| s.get(*i)),
                };
                match next {
                    Some(c) => n = c,
                    None => break,
                }
            }
            (n.span().clone(), n.path().to_string())
        };
        let mut push = |path: &[PathPart<'_>], msg: String, hint: Option<&str>| {
            let (span, p) = at(path);
            let mut e = ConfigError::error(span, p, msg);
            if let Some(h) = hint {
                e = e.with_hint(h);
            }
            errors.push(e);
        };
        use PathPart::{Index, Key};
        if yaml.trim_metric_suffixes {
            push(
                &[Key("trim_metric_suffixes")],
                "trim_metric_suffixes: true is not supported by confluo's prometheus receiver"
                    .into(),
                Some("remove it; metric names are kept as exposed"),
            );
        }
        let g = &yaml.config.global;
        let g_interval = g.scrape_interval.map_or(DEFAULT_SCRAPE_INTERVAL, |d| d.0);
        let g_timeout = match g.scrape_timeout {
            Some(t) => t.0,
            None => DEFAULT_SCRAPE_TIMEOUT.min(g_interval),
        };
        if g_timeout > g_interval {
            push(
                &[Key("config"), Key("global"), Key("scrape_timeout")],
                "global scrape timeout greater than scrape interval".into(),
                None,
            );
        }
        if g_interval.is_zero() {
            push(
                &[Key("config"), Key("global"), Key("scrape_interval")],
                "scrape_interval must be greater than 0".into(),
                None,
            );
        }
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, sc) in yaml.config.scrape_configs.iter().enumerate() {
            let base = [Key("config"), Key("scrape_configs"), Index(i)];
            let at_key = |k: &'static str| [base[0], base[1], base[2], Key(k)];
            if sc.job_name.is_empty() {
                push(&at_key("job_name"), "job_name is empty".into(), None);
            }
            if !seen.insert(sc.job_name.clone()) {
                push(
                    &at_key("job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                    None,
                );
            }
            let interval = sc.scrape_interval.map_or(g_interval, |d| d.0);
            let timeout = match sc.scrape_timeout {
                Some(t) => t.0,
                None => g_timeout.min(interval),
            };
            if interval.is_zero() {
                push(
                    &at_key("scrape_interval"),
                    "scrape_interval must be greater than 0".into(),
                    None,
                );
            }
            if timeout > interval {
                push(
                    &at_key("scrape_timeout"),
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                        sc.job_name
                    ),
                    None,
                );
            }
            let scheme = sc.scheme.clone().unwrap_or_else(|| "http".into());
            if scheme != "http" && scheme != "https" {
                push(
                    &at_key("scheme"),
                    format!("unsupported scheme {scheme:?} for target"),
                    Some("use `http` or `https`"),
                );
            }
            let metrics_path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
            let auth = match (
                &sc.basic_auth,
                &sc.authorization,
                &sc.bearer_token,
                &sc.bearer_token_file,
            ) {
                (Some(_), Some(_), _, _) | (Some(_), _, Some(_), _) | (Some(_), _, _, Some(_)) => {
                    push(
                        &at_key("basic_auth"),
                        "at most one of basic_auth, authorization, bearer_token & bearer_token_file must be configured".into(),
                        None,
                    );
                    None
                }
                (None, Some(_), Some(_), _)
                | (None, Some(_), _, Some(_))
                | (None, None, Some(_), Some(_)) => {
                    push(
                        &at_key("authorization"),
                        "at most one of authorization, bearer_token & bearer_token_file must be configured".into(),
                        None,
                    );
                    None
                }
                (Some(b), None, None, None) => {
                    if b.password.is_some() && b.password_file.is_some() {
                        push(
                            &at_key("basic_auth"),
                            "at most one of basic_auth password & password_file must be configured"
                                .into(),
                            None,
                        );
                    }
                    Some(Auth::Basic {
                        username: b.username.clone(),
                        password: b.password.clone(),
                        password_file: b.password_file.clone(),
                    })
                }
                (None, Some(a), None, None) => {
                    if a.credentials.is_some() && a.credentials_file.is_some() {
                        push(
                            &at_key("authorization"),
                            "at most one of authorization credentials & credentials_file must be configured".into(),
                            None,
                        );
                    }
                    let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
                    if kind.eq_ignore_ascii_case("basic") {
                        push(
                            &at_key("authorization"),
                            "authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into(),
                            None,
                        );
                    }
                    Some(Auth::Authorization {
                        kind,
                        credentials: a.credentials.clone(),
                        credentials_file: a.credentials_file.clone(),
                    })
                }
                (None, None, t, f) if t.is_some() || f.is_some() => Some(Auth::Authorization {
                    kind: "Bearer".into(),
                    credentials: t.clone(),
                    credentials_file: f.clone(),
                }),
                _ => None,
            };
            let tls = match &sc.tls_config {
                None => TlsClientSettings::default(),
                Some(t) => {
                    let min_version = match t.min_version.as_deref() {
                        None | Some("") => None,
                        Some("TLS12") => Some("1.2".to_string()),
                        Some("TLS13") => Some("1.3".to_string()),
                        Some(other) => {
                            push(
                                &[
                                    base[0],
                                    base[1],
                                    base[2],
                                    Key("tls_config"),
                                    Key("min_version"),
                                ],
                                format!("unsupported TLS version {other:?}"),
                                Some("TLS12 or TLS13"),
                            );
                            None
                        }
                    };
                    TlsClientSettings {
                        insecure: false,
                        insecure_skip_verify: t.insecure_skip_verify,
                        ca_file: t.ca_file.clone(),
                        ca_pem: t.ca.clone(),
                        cert_file: t.cert_file.clone(),
                        key_file: t.key_file.clone(),
                        server_name_override: t.server_name.clone(),
                        min_version,
                    }
                }
            };
            let mut file_sd = Vec::new();
            for (j, f) in sc.file_sd_configs.iter().enumerate() {
                for (k, p) in f.files.iter().enumerate() {
                    let ok = [".json", ".yml", ".yaml"].iter().any(|e| p.ends_with(e));
                    let dir_glob = std::path::Path::new(p)
                        .parent()
                        .is_some_and(|d| d.to_string_lossy().contains(['*', '?', '[']));
                    if !ok || dir_glob {
                        push(
                            &[base[0], base[1], base[2], Key("file_sd_configs"), Index(j), Key("files"), Index(k)],
                            format!("path name {p:?} is not valid for file discovery"),
                            Some("files end in .json, .yml or .yaml; only the last path element may hold `*`"),
                        );
                    }
                }
                file_sd.push(FileSdResolved {
                    files: f.files.clone(),
                    refresh_interval: f.refresh_interval.map_or(DEFAULT_FILE_SD_REFRESH, |d| d.0),
                });
            }
            let or_global = |v: Option<u64>, gv: Option<u64>| v.or(gv).unwrap_or(0);
            out.push(ScrapeConfig {
                job_name: sc.job_name.clone(),
                interval,
                timeout,
                metrics_path,
                scheme,
                params: sc.params.clone(),
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps.unwrap_or(true),
                enable_compression: sc.enable_compression.unwrap_or(true),
                body_size_limit: sc.body_size_limit.or(g.body_size_limit).map_or(0, |b| b.0),
                sample_limit: or_global(sc.sample_limit, g.sample_limit),
                label_limit: or_global(sc.label_limit, g.label_limit),
                label_name_length_limit: or_global(
                    sc.label_name_length_limit,
                    g.label_name_length_limit,
                ),
                label_value_length_limit: or_global(
                    sc.label_value_length_limit,
                    g.label_value_length_limit,
                ),
                static_configs: sc.static_configs.clone(),
                file_sd_configs: file_sd,
                relabel_configs: sc.relabel_configs.iter().map(|r| r.0.clone()).collect(),
                metric_relabel_configs: sc
                    .metric_relabel_configs
                    .iter()
                    .map(|r| r.0.clone())
                    .collect(),
                auth,
                tls,
            });
        }
        if out.is_empty() {
            push(
                &[Key("config")],
                "no scrape_configs: the prometheus receiver has nothing to scrape".into(),
                Some("add `scrape_configs: [{ job_name: ..., static_configs: [{ targets: [host:port] }] }]`"),
            );
        }
        if errors.is_empty() {
            Ok(PrometheusConfig {
                scrape_configs: out,
                adjust_start_time: yaml.adjust_start_time,
            })
        } else {
            Err(errors)
        }
    }
}

#[derive(Clone, Copy)]
enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<PrometheusConfig, Vec<ConfigError>> {
        let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
        PrometheusConfig::from_node(&node)
    }

    fn err_text(yaml: &str) -> String {
        load(yaml)
            .unwrap_err()
            .iter()
            .map(|e| format!("{e}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn durations() {
        for (s, ms) in [
            ("0", 0),
            ("15s", 15_000),
            ("1m", 60_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("500ms", 500),
            ("1m500ms", 60_500),
        ] {
            assert_eq!(
                parse_prom_duration(s).unwrap(),
                Duration::from_millis(ms),
                "{s}"
            );
        }
        for s in ["", "1.5s", "1s1m", "1x", "s", "1h1h", "-1s"] {
            assert!(parse_prom_duration(s).is_err(), "{s}");
        }
        assert_eq!(parse_prom_bytes("10MB"), Some(10 << 20));
        assert_eq!(parse_prom_bytes("512KiB"), Some(512 << 10));
        assert_eq!(parse_prom_bytes("100"), Some(100));
        assert_eq!(parse_prom_bytes("1ZB"), None);
    }

    #[test]
    fn defaults_and_overrides() {
        let c = load(
            "config:\n  global:\n    scrape_interval: 5s\n  scrape_configs:\n    - job_name: a\n      static_configs: [{targets: ['h:1'], labels: {env: prod}}]\n    - job_name: b\n      scrape_interval: 30s\n      scrape_timeout: 20s\n      metrics_path: /m\n      scheme: https\n      honor_timestamps: false\n      sample_limit: 10\n      params: {module: [x]}\n      relabel_configs:\n        - source_labels: [__address__]\n          target_label: instance\n",
        )
        .unwrap();
        assert!(c.adjust_start_time);
        let a = &c.scrape_configs[0];
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.metrics_path, "/metrics");
        assert!(a.honor_timestamps && !a.honor_labels && a.enable_compression);
        let b = &c.scrape_configs[1];
        assert_eq!(
            (b.interval, b.timeout),
            (Duration::from_secs(30), Duration::from_secs(20))
        );
        assert_eq!(b.scheme, "https");
        assert_eq!(b.sample_limit, 10);
        assert_eq!(b.relabel_configs.len(), 1);
        assert_eq!(b.params["module"], vec!["x".to_string()]);
    }

    #[test]
    fn errors_name_unsupported_options() {
        let e = err_text(
            "config:\n  scrape_configs:\n    - job_name: a\n      kubernetes_sd_configs: []\n",
        );
        assert!(e.contains("kubernetes_sd_configs"), "{e}");
        assert!(e.contains("t.yaml:4"), "{e}");
        let e = err_text("config:\n  remote_write: [{url: 'http://x'}]\n  scrape_configs: []\n");
        assert!(e.contains("unsupported features"), "{e}");
        let e = err_text("config:\n  rule_files: [a.yml]\n");
        assert!(e.contains("unsupported features"), "{e}");
        let e = err_text("config:\n  global:\n    external_labels: {a: b}\n");
        assert!(e.contains("external_labels"), "{e}");
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n      scrape_interval: 5s\n      scrape_timeout: 10s\n");
        assert!(
            e.contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n    - job_name: a\n");
        assert!(e.contains("multiple scrape configs"), "{e}");
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n      relabel_configs:\n        - action: hashmod\n          target_label: x\n");
        assert!(
            e.contains("non-zero modulus") && e.contains("t.yaml:5"),
            "{e}"
        );
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n      relabel_configs:\n        - action: bogus\n");
        assert!(e.contains("unknown value") && e.contains("labelmap"), "{e}");
        let e = err_text(
            "config:\n  scrape_configs:\n    - job_name: a\n      scrape_interval: 1.5s\n",
        );
        assert!(e.contains("invalid duration"), "{e}");
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n      bearer_token: x\n      bearer_token_file: y\n");
        assert!(e.contains("at most one"), "{e}");
        assert!(!e.contains(": x"), "no secret in errors: {e}");
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n      file_sd_configs: [{files: [a.txt]}]\n");
        assert!(e.contains("not valid for file discovery"), "{e}");
        let e = err_text("target_allocator: {}\nconfig:\n  scrape_configs: []\n");
        assert!(e.contains("target_allocator"), "{e}");
        let e = err_text("config:\n  scrape_configs:\n    - job_name: a\n      static_configs: [{labels: {'a-b': c}}]\n");
        assert!(e.contains("not a valid label name"), "{e}");
    }
}
