//! Targets: `static_configs`, `file_sd_configs` (JSON/YAML files, polled for
//! changes and re-read every `refresh_interval`), and Prometheus's
//! `PopulateLabels` (meta labels, target relabeling, `instance`, the URL).

use super::config::{FileSdResolved, ScrapeConfig};
use super::relabel::{self, LabelSet};
use confluo_config::Node;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A `static_configs` entry or one group of a file_sd file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads one file_sd file; `__meta_filepath` is added to every group.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    let groups: Vec<FileGroup> = if name.ends_with(".json") {
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        let node = Node::from_yaml_str(&name, &text).map_err(|e| e.to_string())?;
        if node.is_null() {
            Vec::new()
        } else {
            node.deserialize().map_err(|e| e.to_string())?
        }
    };
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        if let Some(bad) = g.labels.keys().find(|k| !relabel::is_valid_label_name(k)) {
            return Err(format!("{name}: {bad:?} is not a valid label name"));
        }
        let mut labels = g.labels;
        labels.insert("__meta_filepath".into(), name.clone());
        out.push(TargetGroup {
            targets: g.targets,
            labels,
        });
    }
    Ok(out)
}

/// `*` and `?` in the last path element, as Prometheus's `filepath.Glob` use.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub fn expand_patterns(patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pat in patterns {
        let path = Path::new(pat);
        let file = path.file_name().map(|f| f.to_string_lossy().to_string());
        match file {
            Some(f) if f.contains(['*', '?']) => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if let Ok(rd) = std::fs::read_dir(dir) {
                    let mut found: Vec<PathBuf> = rd
                        .flatten()
                        .filter(|e| wildcard(&f, &e.file_name().to_string_lossy()))
                        .map(|e| e.path())
                        .collect();
                    found.sort();
                    out.extend(found);
                }
            }
            _ => out.push(path.to_path_buf()),
        }
    }
    out
}

/// One `file_sd_configs` entry's state.
pub struct FileSd {
    cfg: FileSdResolved,
    stamps: BTreeMap<PathBuf, Option<(SystemTime, u64)>>,
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
    last_full: Option<Instant>,
}

impl FileSd {
    pub fn new(cfg: FileSdResolved) -> FileSd {
        FileSd {
            cfg,
            stamps: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_full: None,
        }
    }

    /// Re-reads files that changed (or all of them once per
    /// `refresh_interval`); returns whether the target groups changed. A
    /// file that fails to read keeps its previous groups, as Prometheus
    /// does; the errors are returned for logging.
    pub fn refresh(&mut self) -> (bool, Vec<String>) {
        let full = self
            .last_full
            .is_none_or(|t| t.elapsed() >= self.cfg.refresh_interval);
        if full {
            self.last_full = Some(Instant::now());
        }
        let paths = expand_patterns(&self.cfg.files);
        let mut changed = false;
        let mut errors = Vec::new();
        let gone: Vec<PathBuf> = self
            .groups
            .keys()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect();
        for p in gone {
            self.groups.remove(&p);
            self.stamps.remove(&p);
            changed = true;
        }
        for p in paths {
            let stamp = std::fs::metadata(&p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            if !full && self.stamps.get(&p) == Some(&stamp) {
                continue;
            }
            self.stamps.insert(p.clone(), stamp);
            match read_file(&p) {
                Ok(g) => {
                    if self.groups.get(&p) != Some(&g) {
                        self.groups.insert(p, g);
                        changed = true;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        (changed, errors)
    }

    pub fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.groups.values().flatten()
    }

    /// How often to look for changed files.
    pub fn poll_interval(&self) -> Duration {
        self.cfg.refresh_interval.min(Duration::from_secs(1))
    }
}

/// A target after relabeling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// Public labels (no `__` names), sorted; includes `job` and `instance`.
    pub labels: LabelSet,
    pub scheme: String,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl ResolvedTarget {
    /// Identity (for deduplication and the scrape offset).
    pub fn key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.labels.hash(&mut h);
        self.url.hash(&mut h);
        h.finish()
    }
}

/// Prometheus's `PopulateLabels` for one target of a group. `Ok(None)` when
/// relabeling drops it.
pub fn populate(
    sc: &ScrapeConfig,
    group: &TargetGroup,
    address: &str,
) -> Result<Option<ResolvedTarget>, String> {
    let mut ls: LabelSet = group
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ls.sort();
    relabel::set(&mut ls, "__address__", address.to_string());
    let defaults = [
        ("job", sc.job_name.clone()),
        ("__scheme__", sc.scheme.clone()),
        ("__metrics_path__", sc.metrics_path.clone()),
        ("__scrape_interval__", format_prom_duration(sc.interval)),
        ("__scrape_timeout__", format_prom_duration(sc.timeout)),
    ];
    for (k, v) in defaults {
        if relabel::get(&ls, k).is_empty() {
            relabel::set(&mut ls, k, v);
        }
    }
    for (k, v) in &sc.params {
        let name = format!("__param_{k}");
        if relabel::get(&ls, &name).is_empty() {
            if let Some(first) = v.first() {
                relabel::set(&mut ls, &name, first.clone());
            }
        }
    }
    if !relabel::process(&mut ls, &sc.relabel_configs) {
        return Ok(None);
    }
    let addr = relabel::get(&ls, "__address__").to_string();
    if addr.is_empty() {
        return Err("no address".into());
    }
    if addr.contains('/') {
        return Err(format!("invalid (non-empty) address: {addr:?}"));
    }
    let interval = super::config::parse_prom_duration(relabel::get(&ls, "__scrape_interval__"))
        .map_err(|e| format!("error parsing scrape interval: {e}"))?;
    let timeout = super::config::parse_prom_duration(relabel::get(&ls, "__scrape_timeout__"))
        .map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"
        ));
    }
    ls.retain(|(k, _)| !k.starts_with("__meta_"));
    if relabel::get(&ls, "instance").is_empty() {
        relabel::set(&mut ls, "instance", addr.clone());
    }
    let scheme = relabel::get(&ls, "__scheme__").to_string();
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?}"));
    }
    let path = relabel::get(&ls, "__metrics_path__").to_string();
    // Query: the config's params, with `__param_<name>` overriding the first value.
    let mut params: BTreeMap<String, Vec<String>> = sc.params.clone();
    for (k, v) in &ls {
        if let Some(p) = k.strip_prefix("__param_") {
            let e = params.entry(p.to_string()).or_default();
            if e.is_empty() {
                e.push(v.clone());
            } else {
                e[0] = v.clone();
            }
        }
    }
    let mut url = format!("{scheme}://{addr}{path}");
    let mut first = true;
    for (k, vs) in &params {
        for v in vs {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(&form_encode(k));
            url.push('=');
            url.push_str(&form_encode(v));
        }
    }
    ls.retain(|(k, _)| !k.starts_with("__"));
    Ok(Some(ResolvedTarget {
        labels: ls,
        scheme,
        url,
        interval,
        timeout,
    }))
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prometheus's `model.Duration.String()`: `1m30s`, `15s`, `500ms`, `0s`.
pub fn format_prom_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Every target of a job, deduplicated, with the errors of the targets
/// that could not be built.
pub fn resolve_all<'a>(
    sc: &ScrapeConfig,
    groups: impl Iterator<Item = &'a TargetGroup>,
) -> (Vec<ResolvedTarget>, Vec<String>) {
    let mut out: Vec<ResolvedTarget> = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for g in groups {
        for t in &g.targets {
            match populate(sc, g, t) {
                Ok(Some(rt)) => {
                    if seen.insert(rt.key()) {
                        out.push(rt);
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(format!("target {t:?}: {e}")),
            }
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::config::PrometheusConfig;

    fn sc(yaml: &str) -> ScrapeConfig {
        let node = Node::from_yaml_str("t.yaml", yaml).unwrap();
        PrometheusConfig::from_node(&node)
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    #[test]
    fn populate_defaults_and_relabel() {
        let c = sc("config:\n  scrape_configs:\n    - job_name: j\n      scrape_interval: 15s\n      params: {module: [http_2xx, x]}\n      relabel_configs:\n        - source_labels: [__address__]\n          regex: '(.*):9100'\n          target_label: node\n          replacement: $1\n        - source_labels: [__meta_filepath]\n          target_label: file\n");
        let g = TargetGroup {
            targets: vec!["h:9100".into()],
            labels: [
                ("env".to_string(), "prod".to_string()),
                ("__meta_filepath".into(), "/a.json".into()),
            ]
            .into_iter()
            .collect(),
        };
        let t = populate(&c, &g, "h:9100").unwrap().unwrap();
        assert_eq!(
            t.labels,
            vec![
                ("env".to_string(), "prod".to_string()),
                ("file".into(), "/a.json".into()),
                ("instance".into(), "h:9100".into()),
                ("job".into(), "j".into()),
                ("node".into(), "h".into()),
            ]
        );
        assert_eq!(t.url, "http://h:9100/metrics?module=http_2xx&module=x");
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
    }

    #[test]
    fn relabel_address_param_and_drop() {
        // The blackbox-exporter pattern.
        let c = sc("config:\n  scrape_configs:\n    - job_name: bb\n      metrics_path: /probe\n      relabel_configs:\n        - source_labels: [__address__]\n          target_label: __param_target\n        - source_labels: [__param_target]\n          target_label: instance\n        - target_label: __address__\n          replacement: 127.0.0.1:9115\n        - source_labels: [instance]\n          regex: drop.me\n          action: drop\n");
        let g = TargetGroup {
            targets: vec!["https://example.com".into(), "drop.me".into()],
            labels: BTreeMap::new(),
        };
        let (ts, errs) = resolve_all(&c, std::iter::once(&g));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(ts.len(), 1);
        assert_eq!(
            ts[0].url,
            "http://127.0.0.1:9115/probe?target=https%3A%2F%2Fexample.com"
        );
        assert_eq!(
            relabel::get(&ts[0].labels, "instance"),
            "https://example.com"
        );
        let c = sc("config:\n  scrape_configs:\n    - job_name: x\n      relabel_configs:\n        - target_label: __address__\n          replacement: ''\n");
        let (ts, errs) = resolve_all(&c, std::iter::once(&g));
        assert!(ts.is_empty());
        assert!(errs[0].contains("no address"), "{errs:?}");
    }

    #[test]
    fn file_sd_reads_json_and_yaml_and_globs() {
        let dir = std::env::temp_dir().join(format!("confluo-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.json"),
            r#"[{"targets":["a:1"],"labels":{"x":"1"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.join("b.yml"), "- targets: ['b:2']\n").unwrap();
        std::fs::write(dir.join("c.txt"), "nope").unwrap();
        let mut sd = FileSd::new(FileSdResolved {
            files: vec![
                format!("{}/*.json", dir.display()),
                format!("{}/b.yml", dir.display()),
            ],
            refresh_interval: Duration::from_secs(300),
        });
        let (changed, errs) = sd.refresh();
        assert!(changed && errs.is_empty(), "{errs:?}");
        let targets: Vec<&str> = sd
            .groups()
            .flat_map(|g| g.targets.iter().map(|s| s.as_str()))
            .collect();
        assert_eq!(targets, vec!["a:1", "b:2"]);
        // Unchanged: nothing to do. A broken file keeps its old groups.
        assert!(!sd.refresh().0);
        std::fs::write(dir.join("b.yml"), "- targets: [\n").unwrap();
        let (changed, errs) = sd.refresh();
        assert!(!changed && errs.len() == 1, "{errs:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wildcards_and_durations() {
        assert!(wildcard("*.json", "a.json"));
        assert!(!wildcard("*.json", "a.yml"));
        assert!(wildcard("t?.y*", "t1.yaml"));
        assert_eq!(format_prom_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_prom_duration(Duration::from_millis(1500)), "1s500ms");
    }
}
