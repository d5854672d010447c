//! APM stats computed from the converted spans, as the Agent's concentrator
//! does (`DataDog/datadog-agent:pkg/trace/stats`): per 10 s bucket (by span
//! end time) and per (service, name, resource, type, HTTP status code, span
//! kind, trace root), the hits, top-level hits, errors, summed duration and
//! two DDSketches of durations (ok and error). Only top-level and measured
//! spans count, plus, with `compute_stats_by_span_kind`, every span of kind
//! server, consumer, client or producer. Payloads are grouped by
//! (hostname, env, version).
//!
//! Encoded as msgpack with the Go field names of
//! `pkg/proto/datadog/trace/stats.proto` (what the Agent's msgp code reads):
//! a `StatsPayload` for the intake (`/api/v0.2/stats`), a bare
//! `ClientStatsPayload` for an Agent (`/v0.6/stats`). The sketches are the
//! `DDSketch` protobuf of `DataDog/sketches-go` (`pb/proto/ddsketch.proto`),
//! with the Agent's logarithmic mapping at 1 % relative accuracy and at most
//! 2048 bins (lowest bins collapsed).

use super::convert::{
    kind_name, DdSpan, ResourceTraces, KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER,
};
use super::msgpack;
use prost::Message;
use std::collections::{BTreeMap, HashMap};

/// The Agent's bucket size.
pub const BUCKET_NS: u64 = 10_000_000_000;

const RELATIVE_ACCURACY: f64 = 0.01;
const MAX_BINS: i32 = 2048;

/// `IsTraceRoot` (`Trilean`): 1 true, 2 false.
const TRILEAN_TRUE: i32 = 1;
const TRILEAN_FALSE: i32 = 2;

/// sketches-go `IndexMapping`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IndexMapping {
    #[prost(double, tag = "1")]
    pub gamma: f64,
    #[prost(double, tag = "2")]
    pub index_offset: f64,
    /// 0 = NONE (logarithmic).
    #[prost(int32, tag = "3")]
    pub interpolation: i32,
}

/// sketches-go `Store`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Store {
    #[prost(btree_map = "sint32, double", tag = "1")]
    pub bin_counts: BTreeMap<i32, f64>,
    #[prost(double, repeated, tag = "2")]
    pub contiguous_bin_counts: Vec<f64>,
    #[prost(sint32, tag = "3")]
    pub contiguous_bin_index_offset: i32,
}

/// sketches-go `DDSketch`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DdSketchProto {
    #[prost(message, optional, tag = "1")]
    pub mapping: Option<IndexMapping>,
    #[prost(message, optional, tag = "2")]
    pub positive_values: Option<Store>,
    #[prost(message, optional, tag = "3")]
    pub negative_values: Option<Store>,
    #[prost(double, tag = "4")]
    pub zero_count: f64,
}

/// A DDSketch of non-negative values (durations in ns).
#[derive(Debug, Default, Clone)]
pub struct Sketch {
    bins: BTreeMap<i32, f64>,
    zero: f64,
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

impl Sketch {
    /// sketches-go `LogarithmicMapping.Index`: floor(ln v / ln γ).
    pub fn index(v: f64) -> i32 {
        (v.ln() / gamma().ln()).floor() as i32
    }

    /// The value a bin stands for (sketches-go `Value`).
    pub fn value(index: i32) -> f64 {
        (index as f64 * gamma().ln()).exp() * (1.0 + RELATIVE_ACCURACY)
    }

    pub fn add(&mut self, v: f64) {
        if v <= 0.0 || !v.is_finite() {
            self.zero += 1.0;
            return;
        }
        *self.bins.entry(Self::index(v)).or_insert(0.0) += 1.0;
        if self.bins.len() as i32 > MAX_BINS {
            self.collapse();
        }
    }

    /// Folds the lowest bins into one so that the span of indexes stays
    /// within `MAX_BINS` (the "collapsing lowest" store).
    fn collapse(&mut self) {
        let Some((&max, _)) = self.bins.last_key_value() else {
            return;
        };
        let floor = max - MAX_BINS + 1;
        let low: Vec<i32> = self.bins.range(..floor).map(|(k, _)| *k).collect();
        let mut sum = 0.0;
        for k in low {
            sum += self.bins.remove(&k).unwrap_or(0.0);
        }
        if sum > 0.0 {
            *self.bins.entry(floor).or_insert(0.0) += sum;
        }
    }

    pub fn count(&self) -> f64 {
        self.zero + self.bins.values().sum::<f64>()
    }

    pub fn to_proto(&self) -> DdSketchProto {
        let positive = match (self.bins.first_key_value(), self.bins.last_key_value()) {
            (Some((&lo, _)), Some((&hi, _))) => {
                let lo = lo.max(hi - MAX_BINS + 1);
                let mut counts = vec![0.0; (hi - lo + 1) as usize];
                for (k, c) in &self.bins {
                    counts[(k.max(&lo) - lo) as usize] += c;
                }
                Some(Store {
                    contiguous_bin_counts: counts,
                    contiguous_bin_index_offset: lo,
                    ..Store::default()
                })
            }
            _ => None,
        };
        DdSketchProto {
            mapping: Some(IndexMapping {
                gamma: gamma(),
                index_offset: 0.0,
                interpolation: 0,
            }),
            positive_values: positive,
            negative_values: None,
            zero_count: self.zero,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }
}

/// Keys borrow from the converted spans: stats live only while one batch
/// is encoded, so no string is copied per span.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadKey<'a> {
    pub hostname: &'a str,
    pub env: &'a str,
    pub version: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey<'a> {
    pub service: &'a str,
    pub name: &'a str,
    pub resource: &'a str,
    pub r#type: &'a str,
    pub http_status_code: u32,
    pub span_kind: &'static str,
    pub is_trace_root: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Group {
    pub hits: u64,
    pub top_level_hits: u64,
    pub errors: u64,
    pub duration: u64,
    pub ok: Sketch,
    pub error: Sketch,
}

/// Stats of one encoded batch.
#[derive(Debug, Default)]
pub struct Stats<'a> {
    /// payload → bucket start → group.
    pub payloads: BTreeMap<PayloadKey<'a>, BTreeMap<u64, HashMap<GroupKey<'a>, Group>>>,
}

fn http_status_code(s: &DdSpan) -> u32 {
    s.meta
        .get("http.status_code")
        .and_then(|c| c.parse::<u32>().ok())
        .or_else(|| {
            ["http.status_code", "http.response.status_code"]
                .iter()
                .find_map(|k| s.metrics.get(*k))
                .map(|c| *c as u32)
        })
        .unwrap_or(0)
}

impl<'a> Stats<'a> {
    fn eligible(s: &DdSpan, by_kind: bool) -> bool {
        s.is_top_level()
            || s.is_measured()
            || (by_kind
                && matches!(
                    s.kind,
                    KIND_SERVER | KIND_CONSUMER | KIND_CLIENT | KIND_PRODUCER
                ))
    }

    /// Adds the spans of one resource.
    pub fn add(&mut self, rt: &'a ResourceTraces, by_kind: bool) {
        for chunk in &rt.chunks {
            for s in chunk.spans.iter().filter(|s| Self::eligible(s, by_kind)) {
                let pkey = PayloadKey {
                    hostname: &rt.hostname,
                    env: s.meta.get("env").unwrap_or(&rt.env),
                    version: s.meta.get("version").unwrap_or(&rt.app_version),
                };
                let end = (s.start.max(0) as u64).saturating_add(s.duration.max(0) as u64);
                let bucket = end - end % BUCKET_NS;
                let gkey = GroupKey {
                    service: &s.service,
                    name: &s.name,
                    resource: &s.resource,
                    r#type: &s.r#type,
                    http_status_code: http_status_code(s),
                    span_kind: kind_name(s.kind),
                    is_trace_root: s.parent_id == 0,
                };
                let g = self
                    .payloads
                    .entry(pkey)
                    .or_default()
                    .entry(bucket)
                    .or_default()
                    .entry(gkey)
                    .or_default();
                g.hits += 1;
                if s.is_top_level() {
                    g.top_level_hits += 1;
                }
                let d = s.duration.max(0) as u64;
                g.duration += d;
                if s.error != 0 {
                    g.errors += 1;
                    g.error.add(d as f64);
                } else {
                    g.ok.add(d as f64);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// One `ClientStatsPayload` per (hostname, env, version), msgpack.
    pub fn encode_client_payloads(&self, lang: &str, tracer_version: &str) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::with_capacity(self.payloads.len());
        for (key, buckets) in &self.payloads {
            let mut b = Vec::with_capacity(256);
            msgpack::map_header(&mut b, 8);
            msgpack::str(&mut b, "Hostname");
            msgpack::str(&mut b, key.hostname);
            msgpack::str(&mut b, "Env");
            msgpack::str(&mut b, key.env);
            msgpack::str(&mut b, "Version");
            msgpack::str(&mut b, key.version);
            msgpack::str(&mut b, "Lang");
            msgpack::str(&mut b, lang);
            msgpack::str(&mut b, "TracerVersion");
            msgpack::str(&mut b, tracer_version);
            msgpack::str(&mut b, "RuntimeID");
            msgpack::str(&mut b, "");
            msgpack::str(&mut b, "Sequence");
            msgpack::uint(&mut b, 0);
            msgpack::str(&mut b, "Stats");
            msgpack::array_header(&mut b, buckets.len());
            let mut groups_total = 0u32;
            for (start, groups) in buckets {
                msgpack::map_header(&mut b, 4);
                msgpack::str(&mut b, "Start");
                msgpack::uint(&mut b, *start);
                msgpack::str(&mut b, "Duration");
                msgpack::uint(&mut b, BUCKET_NS);
                msgpack::str(&mut b, "AgentTimeShift");
                msgpack::int(&mut b, 0);
                msgpack::str(&mut b, "Stats");
                msgpack::array_header(&mut b, groups.len());
                // Sorted for stable output.
                let mut sorted: Vec<_> = groups.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                for (k, g) in sorted {
                    encode_group(&mut b, k, g);
                    groups_total += 1;
                }
            }
            out.push((b, groups_total));
        }
        out
    }
}

fn encode_group(b: &mut Vec<u8>, k: &GroupKey, g: &Group) {
    msgpack::map_header(b, 16);
    msgpack::str(b, "Service");
    msgpack::str(b, k.service);
    msgpack::str(b, "Name");
    msgpack::str(b, k.name);
    msgpack::str(b, "Resource");
    msgpack::str(b, k.resource);
    msgpack::str(b, "HTTPStatusCode");
    msgpack::uint(b, k.http_status_code as u64);
    msgpack::str(b, "Type");
    msgpack::str(b, k.r#type);
    msgpack::str(b, "DBType");
    msgpack::str(b, "");
    msgpack::str(b, "Hits");
    msgpack::uint(b, g.hits);
    msgpack::str(b, "Errors");
    msgpack::uint(b, g.errors);
    msgpack::str(b, "Duration");
    msgpack::uint(b, g.duration);
    msgpack::str(b, "OkSummary");
    msgpack::bin(b, &g.ok.encode());
    msgpack::str(b, "ErrorSummary");
    msgpack::bin(b, &g.error.encode());
    msgpack::str(b, "Synthetics");
    msgpack::bool(b, false);
    msgpack::str(b, "TopLevelHits");
    msgpack::uint(b, g.top_level_hits);
    msgpack::str(b, "SpanKind");
    msgpack::str(b, k.span_kind);
    msgpack::str(b, "PeerTags");
    msgpack::array_header(b, 0);
    msgpack::str(b, "IsTraceRoot");
    msgpack::int(
        b,
        if k.is_trace_root {
            TRILEAN_TRUE
        } else {
            TRILEAN_FALSE
        } as i64,
    );
}

/// The envelope of an intake `StatsPayload` around its `Stats` array of
/// `ClientStatsPayload`s: (prefix up to the array, suffix after it).
pub fn intake_envelope(hostname: &str, agent_version: &str) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = Vec::with_capacity(64);
    msgpack::map_header(&mut prefix, 5);
    msgpack::str(&mut prefix, "AgentHostname");
    msgpack::str(&mut prefix, hostname);
    msgpack::str(&mut prefix, "AgentEnv");
    msgpack::str(&mut prefix, super::convert::DEFAULT_ENV);
    msgpack::str(&mut prefix, "Stats");
    let mut suffix = Vec::with_capacity(48);
    msgpack::str(&mut suffix, "AgentVersion");
    msgpack::str(&mut suffix, agent_version);
    msgpack::str(&mut suffix, "ClientComputed");
    msgpack::bool(&mut suffix, false);
    (prefix, suffix)
}
