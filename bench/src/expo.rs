//! A large Prometheus text-format exposition (0.0.4): counters, gauges and
//! classic histograms with realistic label sets, built once per run.

use std::fmt::Write as _;

/// Histogram bucket bounds (seconds), as `prometheus_client`'s defaults.
const BUCKETS: [&str; 8] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1", "5"];
/// Sample lines per histogram child: buckets, +Inf, _sum, _count.
const HISTOGRAM_LINES: usize = BUCKETS.len() + 3;

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 5] = ["200", "201", "404", "429", "500"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposition {
    /// Sample lines (what Prometheus calls samples scraped).
    pub samples: usize,
    pub counters: usize,
    pub gauges: usize,
    pub histogram_series: usize,
    pub bytes: usize,
}

/// Labels of the `i`-th child of a family: four labels, every child distinct.
fn labels(out: &mut String, i: usize) {
    let _ = write!(
        out,
        "method=\"{}\",route=\"/api/v1/r{}\",code=\"{}\",pod=\"app-{:05}\"",
        METHODS[i % METHODS.len()],
        i / 20 % 50,
        CODES[i / 4 % CODES.len()],
        i / 1000,
    );
}

/// Builds an exposition of about `samples` sample lines: 40% counters, 30%
/// gauges and 30% histogram lines, in families of up to 2,000 children.
pub fn build(samples: usize) -> (String, Exposition) {
    let counters = samples * 4 / 10;
    let histograms = samples * 3 / 10 / HISTOGRAM_LINES;
    let gauges = samples - counters - histograms * HISTOGRAM_LINES;
    let mut out = String::with_capacity(samples * 110);
    let family = |out: &mut String,
                  kind: &str,
                  name: &str,
                  children: usize,
                  f: &mut dyn FnMut(&mut String, usize)| {
        let _ = writeln!(out, "# HELP {name} Benchmark {kind} {name}.");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for i in 0..children {
            f(out, i);
        }
    };
    let per_family = 2000;
    let mut value = 0u64;
    for (n, start) in (0..counters).step_by(per_family).enumerate() {
        let children = per_family.min(counters - start);
        family(
            &mut out,
            "counter",
            &format!("app_requests_{n}_total"),
            children,
            &mut |out, i| {
                value = value
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let _ = write!(out, "app_requests_{n}_total{{");
                labels(out, i);
                let _ = writeln!(out, "}} {}", value >> 44);
            },
        );
    }
    for (n, start) in (0..gauges).step_by(per_family).enumerate() {
        let children = per_family.min(gauges - start);
        family(
            &mut out,
            "gauge",
            &format!("app_inflight_{n}"),
            children,
            &mut |out, i| {
                let _ = write!(out, "app_inflight_{n}{{");
                labels(out, i);
                let _ = writeln!(out, "}} {}.{}", i % 97, i % 10);
            },
        );
    }
    for (n, start) in (0..histograms).step_by(per_family / 4).enumerate() {
        let children = (per_family / 4).min(histograms - start);
        let name = format!("app_request_duration_{n}_seconds");
        family(&mut out, "histogram", &name, children, &mut |out, i| {
            let mut label_text = String::new();
            labels(&mut label_text, i);
            let total = 1000 + (i as u64 % 500);
            for (b, le) in BUCKETS.iter().enumerate() {
                let cum = total * (b as u64 + 1) / (BUCKETS.len() as u64 + 1);
                let _ = writeln!(out, "{name}_bucket{{{label_text},le=\"{le}\"}} {cum}");
            }
            let _ = writeln!(out, "{name}_bucket{{{label_text},le=\"+Inf\"}} {total}");
            let _ = writeln!(out, "{name}_sum{{{label_text}}} {}.25", total / 7);
            let _ = writeln!(out, "{name}_count{{{label_text}}} {total}");
        });
    }
    let info = Exposition {
        samples: counters + gauges + histograms * HISTOGRAM_LINES,
        counters,
        gauges,
        histogram_series: histograms,
        bytes: out.len(),
    };
    (out, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn exposition_has_the_promised_sample_lines_all_distinct() {
        let (text, info) = build(100_000);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), info.samples);
        assert!((99_990..=100_000).contains(&info.samples), "{info:?}");
        let series: HashSet<&str> = lines
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().0)
            .collect();
        assert_eq!(series.len(), lines.len(), "every series distinct");
        assert!(info.histogram_series > 2000 && info.counters == 40_000);
        // Every TYPE line precedes its samples and names a known type.
        assert!(text
            .lines()
            .filter(|l| l.starts_with("# TYPE"))
            .all(|l| l.ends_with(" counter")
                || l.ends_with(" gauge")
                || l.ends_with(" histogram")));
    }
}
