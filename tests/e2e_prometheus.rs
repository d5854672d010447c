//! The `prometheus` receiver against a real Prometheus (Debian's
//! `prometheus` package): both scrape the same targets with the same scrape
//! config (target and metric relabeling included), and the series they end up
//! with are compared.
//!
//! - A `prometheus_client` app with values that stand still
//!   (tests/e2e/python/prom_app.py: counter, gauge, histogram, summary, info,
//!   enum), scraped as OpenMetrics (job `om`) and as text 0.0.4 (job `text`):
//!   the series sets **and values** must be equal.
//! - Live targets (Debian's `prometheus-node-exporter`, Prometheus's own
//!   `/metrics`): the metric name sets and the types must be equal.
//!
//! Normalisation between the two models (confluo's OTLP → Prometheus series):
//! - Resource `service.name` / `service.instance.id` → `job` / `instance`.
//! - Gauge / Sum → one series named as the OTLP metric (confluo keeps the
//!   exposed name: counters keep `_total`, info keeps `_info`, stateset and
//!   enum keep one series per state with the state label).
//! - Histogram → `_bucket{le}` (cumulative again), `_sum`, `_count`;
//!   Summary → `{quantile}`, `_sum`, `_count`. `le`/`quantile` are compared
//!   as numbers (Prometheus 2.x keeps the exposed text, `1.0`; OTLP bounds
//!   are floats).
//! - `_created`: in text 0.0.4 prometheus_client writes `x_created` as a gauge
//!   family of its own, and both sides keep it as a series. In OpenMetrics it
//!   belongs to the counter/histogram/summary; confluo turns it into the
//!   points' start time, while Prometheus 2.42 ingests it as a series
//!   `x_created` (newer Prometheus versions skip it when created-timestamp
//!   ingestion is on). So for the OpenMetrics job a monotonic Sum, Histogram
//!   or Summary with a start time yields `<family>_created = start / 1e9`,
//!   compared to the millisecond (confluo keeps `_created` at Prometheus's
//!   millisecond resolution).
//! - Stale points (`NO_RECORDED_VALUE`) remove a series, as a staleness
//!   marker does in Prometheus.
//! - `scrape_duration_seconds` and `scrape_series_added` are compared by
//!   presence only (their values depend on timing and on which scrape is
//!   looked at).
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A child process killed (by its pid) when dropped.
struct Proc(Child, #[allow(dead_code)] &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(what: &'static str, cmd: &str, args: &[String], dir: &Path) -> Proc {
    let child = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{what}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{what}.err"))).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd} ({e}): install the Debian packages `prometheus` and `prometheus-node-exporter`")
        });
    Proc(child, what)
}

fn wait_listening(port: u16, what: &str) {
    assert!(
        wait_until(Duration::from_secs(30), || port_in_use(port)),
        "{what} did not listen on {port}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn prom_api(addr: &str, path: &str) -> Value {
    let r = http_get(addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    let v: Value = serde_json::from_str(&r.text()).unwrap();
    v["data"].clone()
}

type Series = BTreeMap<String, f64>;

fn canon_number(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(f) if f == f64::INFINITY => "+Inf".into(),
        Ok(f) => format!("{f}"),
        Err(_) => v.into(),
    }
}

fn key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut s = format!("{name}{{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = if k == "le" || k == "quantile" {
            canon_number(v)
        } else {
            v.clone()
        };
        s.push_str(&format!("{k}={v:?}"));
    }
    s.push('}');
    s
}

/// Prometheus's current series for `selector` with their values.
fn prometheus_series(addr: &str, selector: &str) -> Series {
    let data = prom_api(
        addr,
        &format!("/api/v1/query?query={}", urlencode(selector)),
    );
    let mut out = Series::new();
    for r in data["result"].as_array().unwrap() {
        let mut labels: BTreeMap<String, String> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let name = labels.remove("__name__").unwrap();
        let v: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        out.insert(key(&name, &labels), v);
    }
    out
}

fn str_attrs(attrs: &Value) -> BTreeMap<String, String> {
    attr_map(attrs)
        .into_iter()
        .map(|(k, v)| (k, v["stringValue"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// confluo's file output as Prometheus series (see the normalisation
/// above), latest value per series, for one job. Also returns each OTLP
/// metric's kind ("counter", "gauge", "histogram", "summary", "sum").
fn confluo_series(
    rows: &[Value],
    job: &str,
    synth_created: bool,
) -> (Series, BTreeMap<String, String>) {
    let mut out = Series::new();
    let mut kinds = BTreeMap::new();
    for row in rows {
        for rm in row["resourceMetrics"].as_array().into_iter().flatten() {
            let res = str_attrs(&rm["resource"]["attributes"]);
            if res.get("service.name").map(String::as_str) != Some(job) {
                continue;
            }
            let mut base = BTreeMap::new();
            base.insert("job".to_string(), job.to_string());
            base.insert("instance".to_string(), res["service.instance.id"].clone());
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    let name = m["name"].as_str().unwrap();
                    let (kind, body, points) = data_points(m);
                    let kind_name = match kind.as_str() {
                        "sum" if body["isMonotonic"].as_bool() == Some(true) => "counter",
                        other => other,
                    };
                    kinds.insert(name.to_string(), kind_name.to_string());
                    for p in points {
                        let mut labels = base.clone();
                        labels.extend(str_attrs(&p["attributes"]));
                        let stale = num(&p["flags"]).unwrap_or(0.0) as u64 & 1 == 1;
                        let mut put = |n: String, l: &BTreeMap<String, String>, v: Option<f64>| {
                            let k = key(&n, l);
                            match (stale, v) {
                                (false, Some(v)) => {
                                    out.insert(k, v);
                                }
                                _ => {
                                    out.remove(&k);
                                }
                            }
                        };
                        let value = |field: &str| num(&p[field]);
                        let start = num(&p["startTimeUnixNano"]).unwrap_or(0.0);
                        let family = name.strip_suffix("_total").unwrap_or(name);
                        match kind.as_str() {
                            "gauge" | "sum" => {
                                let v = value("asDouble").or(value("asInt"));
                                put(name.to_string(), &labels, v);
                                if synth_created && kind_name == "counter" && start > 0.0 {
                                    put(format!("{family}_created"), &labels, Some(start / 1e9));
                                }
                            }
                            "histogram" => {
                                let counts: Vec<f64> = p["bucketCounts"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(num)
                                    .collect();
                                let bounds: Vec<f64> = p["explicitBounds"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(num)
                                    .collect();
                                let mut cum = 0.0;
                                for (i, c) in counts.iter().enumerate() {
                                    cum += c;
                                    let le =
                                        bounds.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                                    let mut l = labels.clone();
                                    l.insert("le".into(), le);
                                    put(format!("{name}_bucket"), &l, Some(cum));
                                }
                                put(format!("{name}_sum"), &labels, value("sum"));
                                put(
                                    format!("{name}_count"),
                                    &labels,
                                    Some(value("count").unwrap_or(0.0)),
                                );
                                if synth_created && start > 0.0 {
                                    put(format!("{name}_created"), &labels, Some(start / 1e9));
                                }
                            }
                            "summary" => {
                                for q in p["quantileValues"].as_array().into_iter().flatten() {
                                    let mut l = labels.clone();
                                    l.insert(
                                        "quantile".into(),
                                        num(&q["quantile"]).unwrap_or(0.0).to_string(),
                                    );
                                    put(name.to_string(), &l, num(&q["value"]));
                                }
                                put(
                                    format!("{name}_sum"),
                                    &labels,
                                    Some(value("sum").unwrap_or(0.0)),
                                );
                                put(
                                    format!("{name}_count"),
                                    &labels,
                                    Some(value("count").unwrap_or(0.0)),
                                );
                                if synth_created && start > 0.0 {
                                    put(format!("{name}_created"), &labels, Some(start / 1e9));
                                }
                            }
                            other => panic!("unexpected OTLP kind {other}"),
                        }
                    }
                }
            }
        }
    }
    (out, kinds)
}

/// Series whose values are compared by presence only.
fn presence_only(k: &str) -> bool {
    k.starts_with("scrape_duration_seconds{") || k.starts_with("scrape_series_added{")
}

fn compare_values(job: &str, prom: &Series, ours: &Series) {
    let pk: BTreeSet<&String> = prom.keys().collect();
    let ok: BTreeSet<&String> = ours.keys().collect();
    assert_eq!(
        pk,
        ok,
        "job {job}: series differ\nonly in Prometheus: {:#?}\nonly in confluo: {:#?}",
        pk.difference(&ok).collect::<Vec<_>>(),
        ok.difference(&pk).collect::<Vec<_>>()
    );
    for (k, pv) in prom {
        if presence_only(k) {
            continue;
        }
        let ov = ours[k];
        let tol = if k.contains("_created{") { 1e-3 } else { 0.0 };
        assert!(
            (pv - ov).abs() <= tol || (pv.is_nan() && ov.is_nan()),
            "job {job}: {k}: Prometheus {pv}, confluo {ov}"
        );
    }
}

fn names(s: &Series) -> BTreeSet<String> {
    s.keys()
        .map(|k| k[..k.find('{').unwrap()].to_string())
        .collect()
}

const SCRAPE_CONFIGS: &str = r#"
      global:
        scrape_interval: 1s
        scrape_timeout: 1s
      scrape_configs:
        - job_name: om
          static_configs: [{ targets: ['127.0.0.1:APP'], labels: { team: blue } }]
          relabel_configs:
            - source_labels: [__address__]
              regex: '(.*):\d+'
              target_label: host
              replacement: 'R1'
          metric_relabel_configs:
            - source_labels: [__name__, room]
              regex: 'app_temperature_celsius;cellar'
              target_label: underground
              replacement: 'yes'
        - job_name: text
          metrics_path: /text
          static_configs: [{ targets: ['127.0.0.1:APP'] }]
          metric_relabel_configs:
            - source_labels: [__name__]
              regex: 'app_payload_bytes_created'
              action: drop
        - job_name: node
          static_configs: [{ targets: ['127.0.0.1:NODE'] }]
        - job_name: prometheus
          static_configs: [{ targets: ['127.0.0.1:PROM'] }]
"#;

#[test]
fn same_series_as_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (app, node, prom, tel) = (free_port(), free_port(), free_port(), free_port());
    let scrape = SCRAPE_CONFIGS
        .replace("APP", &app.to_string())
        .replace("NODE", &node.to_string())
        .replace("PROM", &prom.to_string());

    let _app = spawn(
        "app",
        python().to_str().unwrap(),
        &[
            e2e_dir().join("python/prom_app.py").display().to_string(),
            app.to_string(),
        ],
        dir.path(),
    );
    let _node = spawn(
        "node_exporter",
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{node}")],
        dir.path(),
    );
    // Prometheus's own config: the same block, unindented, `$1` as is.
    let prom_yaml: String = scrape
        .replace("R1", "$1")
        .lines()
        .map(|l| l.strip_prefix("      ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("prometheus.yml"), &prom_yaml).unwrap();
    let _prom = spawn(
        "prometheus",
        "prometheus",
        &[
            format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            format!("--web.listen-address=127.0.0.1:{prom}"),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
        ],
        dir.path(),
    );
    // confluo: `$` is written `$$` in its configs, as in the Collector's.
    let confluo_yaml = format!(
        "receivers:\n  prometheus:\n    config:{}\nexporters:\n  file:\n    path: {{{{DIR}}}}/out.jsonl\nservice:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{tel}\n  pipelines:\n    metrics:\n      receivers: [prometheus]\n      exporters: [file]\n",
        scrape.replace("R1", "$$1")
    );
    for (p, w) in [
        (app, "prom_app.py"),
        (node, "node exporter"),
        (prom, "prometheus"),
    ] {
        wait_listening(p, w);
    }
    let confluo = Confluo::start(&confluo_yaml);
    let paddr = format!("127.0.0.1:{prom}");

    // Both have scraped every job a few times.
    let jobs = ["om", "text", "node", "prometheus"];
    assert!(
        wait_until(Duration::from_secs(60), || {
            let up = prometheus_series(&paddr, "up == 1");
            jobs.iter()
                .all(|j| up.keys().any(|k| k.contains(&format!("job=\"{j}\""))))
        }),
        "Prometheus did not scrape every job:\n{}",
        std::fs::read_to_string(dir.path().join("prometheus.err")).unwrap_or_default()
    );
    let out = confluo.path("out.jsonl");
    assert!(
        wait_until(Duration::from_secs(30), || {
            let rows = read_file_exporter(&out);
            jobs.iter().all(|j| {
                confluo_series(&rows, j, false)
                    .0
                    .iter()
                    .any(|(k, v)| k.starts_with("up{") && *v == 1.0)
            })
        }),
        "confluo did not scrape every job:\n{}",
        confluo.stderr()
    );
    // Let both take another scrape of the still values.
    std::thread::sleep(Duration::from_millis(2500));
    let rows = read_file_exporter(&out);

    // prometheus_client app: series and values.
    for (job, om) in [("om", true), ("text", false)] {
        let prom_series = prometheus_series(&paddr, &format!("{{job=\"{job}\"}}"));
        let (ours, _) = confluo_series(&rows, job, om);
        assert!(prom_series.len() > 20, "{job}: {prom_series:#?}");
        compare_values(job, &prom_series, &ours);
    }

    // Live targets: metric names and types.
    for job in ["node", "prometheus"] {
        let prom_series = prometheus_series(&paddr, &format!("{{job=\"{job}\"}}"));
        let (ours, kinds) = confluo_series(&rows, job, false);
        let (pn, on) = (names(&prom_series), names(&ours));
        assert_eq!(
            pn,
            on,
            "job {job}: metric names differ\nonly in Prometheus: {:#?}\nonly in confluo: {:#?}",
            pn.difference(&on).collect::<Vec<_>>(),
            on.difference(&pn).collect::<Vec<_>>()
        );
        let meta = prom_api(
            &paddr,
            &format!(
                "/api/v1/targets/metadata?match_target={}",
                urlencode(&format!("{{job=\"{job}\"}}"))
            ),
        );
        let mut checked = 0;
        for m in meta.as_array().unwrap() {
            let family = m["metric"].as_str().unwrap();
            let ptype = m["type"].as_str().unwrap();
            let ours = kinds
                .get(family)
                .or_else(|| kinds.get(&format!("{family}_total")));
            let Some(ours) = ours else { continue };
            let expected = match ptype {
                "counter" => "counter",
                "gauge" | "untyped" | "unknown" => "gauge",
                "histogram" => "histogram",
                "summary" => "summary",
                "info" | "stateset" => "sum",
                other => other,
            };
            assert_eq!(ours, expected, "job {job}: type of {family}");
            checked += 1;
        }
        assert!(
            checked > 10,
            "job {job}: only {checked} families had metadata"
        );
    }
}
