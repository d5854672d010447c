//! OTLP spans → Datadog: to the intake (`/api/v0.2/traces`, AgentPayload
//! protobuf, with APM stats to `/api/v0.2/stats`) or to an Agent
//! (`/v0.4/traces`, msgpack, with stats to `/v0.6/stats`).
//!
//! `convert` maps spans as the Agent's OTLP ingest does, `intake` and
//! `agent` encode them, `stats` computes the APM stats of each encoded
//! batch (the Collector moved stats to its `datadog` connector; without
//! them Datadog's service pages stay empty).

pub mod agent;
pub mod convert;
pub mod intake;
pub mod msgpack;
pub mod stats;

#[cfg(test)]
mod tests;

use super::config::{DatadogConfig, TracesProtocol};
use super::payload::{Count, DatadogRequest, Framing, Route};
use bytes::Bytes;
use confluo_pipeline::proto::trace::ResourceSpans;
use convert::{Converted, Converter};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What the exporter reports as its version wherever the Agent puts its own.
pub const TRACER_VERSION: &str = concat!("confluo-", env!("CARGO_PKG_VERSION"));
/// `Datadog-Meta-Lang`: the spans come from OTLP, whatever SDK made them.
pub const META_LANG: &str = "otlp";
/// `Datadog-Meta-Lang-Version`: the OTLP protocol version.
pub const META_LANG_VERSION: &str = "1";
/// The Agent's defaults for `AgentPayload.targetTPS` / `errorTPS`.
const TARGET_TPS: f64 = 10.0;
const ERROR_TPS: f64 = 10.0;
/// Languages kept for `X-Datadog-Reported-Languages`.
const MAX_LANGUAGES: usize = 32;

static TRACE_COUNT: HeaderName = HeaderName::from_static("x-datadog-trace-count");
static META_LANG_H: HeaderName = HeaderName::from_static("datadog-meta-lang");
static META_LANG_VERSION_H: HeaderName = HeaderName::from_static("datadog-meta-lang-version");
static META_TRACER_VERSION_H: HeaderName = HeaderName::from_static("datadog-meta-tracer-version");
static COMPUTED_TOP_LEVEL: HeaderName =
    HeaderName::from_static("datadog-client-computed-top-level");
static COMPUTED_STATS: HeaderName = HeaderName::from_static("datadog-client-computed-stats");
static REPORTED_LANGUAGES: HeaderName = HeaderName::from_static("x-datadog-reported-languages");

/// Converts and encodes spans (and the stats computed from them).
pub struct TracesEncoder {
    converter: Converter,
    protocol: TracesProtocol,
    send_stats: bool,
    stats_by_kind: bool,
    intake_framing: Arc<Framing>,
    agent_framing: Arc<Framing>,
    stats_intake_framing: Arc<Framing>,
    stats_agent_framing: Arc<Framing>,
    /// `telemetry.sdk.language`s seen so far (the Agent reports the
    /// languages of its tracers since it started).
    languages: Mutex<BTreeSet<String>>,
}

impl TracesEncoder {
    pub fn new(cfg: &DatadogConfig, hostname: &str) -> Result<TracesEncoder, String> {
        let t = &cfg.traces;
        let ignore_resources = t
            .ignore_resources
            .iter()
            .map(|re| {
                regex::Regex::new(re).map_err(|e| {
                    format!(
                        "traces.ignore_resources: `{re}` is not a valid regular expression: {e}"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (stats_prefix, stats_suffix) = stats::intake_envelope(hostname, TRACER_VERSION);
        Ok(TracesEncoder {
            converter: Converter {
                span_name_as_resource_name: t.span_name_as_resource_name,
                remappings: t
                    .span_name_remappings
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                ignore_resources,
                hostname: hostname.to_string(),
            },
            protocol: t.protocol,
            send_stats: t.send_stats,
            stats_by_kind: t.compute_stats_by_span_kind,
            intake_framing: Arc::new(Framing::protobuf(intake::prefix(
                hostname,
                TRACER_VERSION,
                TARGET_TPS,
                ERROR_TPS,
            ))),
            agent_framing: Arc::new(Framing::msgpack_array()),
            stats_intake_framing: Arc::new(Framing {
                prefix: Bytes::from(stats_prefix),
                separator: b"",
                suffix: Bytes::from(stats_suffix),
                count: Count::MsgpackArray,
            }),
            stats_agent_framing: Arc::new(Framing {
                prefix: Bytes::new(),
                separator: b"",
                suffix: Bytes::new(),
                count: Count::None,
            }),
            languages: Mutex::new(BTreeSet::new()),
        })
    }

    /// Adds `part` to the last request of `out` or to a new one.
    fn push(
        out: &mut Vec<DatadogRequest>,
        route: Route,
        framing: &Arc<Framing>,
        part: Bytes,
        items: u32,
    ) {
        match out.last_mut() {
            Some(r) if r.route == route && r.fits(part.len()) => r.push(part, items),
            _ => {
                let mut r = DatadogRequest::new(route, framing.clone());
                r.push(part, items);
                out.push(r);
            }
        }
    }

    pub fn encode(&self, resource_spans: &[ResourceSpans]) -> Result<Vec<DatadogRequest>, String> {
        let converted = self.converter.convert(resource_spans);
        if converted.ignored_spans > 0 {
            tracing::debug!(
                spans = converted.ignored_spans,
                "datadog: traces dropped by traces.ignore_resources"
            );
        }
        self.remember_languages(&converted);
        // Stats borrow the spans, so they are encoded before the intake
        // encoding consumes them; they are sent after the traces.
        let mut stats_requests = Vec::new();
        if self.send_stats {
            let mut stats = stats::Stats::default();
            for rt in &converted.resources {
                stats.add(rt, self.stats_by_kind);
            }
            let (route, framing) = match self.protocol {
                TracesProtocol::Agent => (Route::StatsAgent, &self.stats_agent_framing),
                TracesProtocol::Intake => (Route::StatsIntake, &self.stats_intake_framing),
            };
            for (payload, groups) in stats.encode_client_payloads(META_LANG, TRACER_VERSION) {
                Self::push(
                    &mut stats_requests,
                    route,
                    framing,
                    Bytes::from(payload),
                    groups,
                );
            }
        }
        let mut out = Vec::new();
        match self.protocol {
            TracesProtocol::Agent => self.encode_agent(&converted, &mut out),
            TracesProtocol::Intake => self.encode_intake(converted, &mut out),
        }
        out.extend(stats_requests);
        Ok(out)
    }

    fn remember_languages(&self, converted: &Converted) {
        let mut langs = match self.languages.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        for rt in &converted.resources {
            if !rt.language.is_empty()
                && langs.len() < MAX_LANGUAGES
                && !langs.contains(&rt.language)
            {
                langs.insert(rt.language.clone());
            }
        }
    }

    /// One part per trace, spans grouped by trace id across the batch.
    fn encode_agent(&self, converted: &Converted, out: &mut Vec<DatadogRequest>) {
        let mut traces: Vec<Vec<&convert::DdSpan>> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for rt in &converted.resources {
            for chunk in &rt.chunks {
                let Some(first) = chunk.spans.first() else {
                    continue;
                };
                let i = *index.entry(first.trace_id).or_insert_with(|| {
                    traces.push(Vec::with_capacity(chunk.spans.len()));
                    traces.len() - 1
                });
                traces[i].extend(chunk.spans.iter());
            }
        }
        for spans in traces {
            let n = spans.len() as u32;
            let part = agent::encode_trace(spans.into_iter());
            Self::push(
                out,
                Route::TracesAgent,
                &self.agent_framing,
                Bytes::from(part),
                n,
            );
        }
    }

    /// One `tracerPayloads` entry per resource (more when it is large).
    fn encode_intake(&self, converted: Converted, out: &mut Vec<DatadogRequest>) {
        let budget = Route::TracesIntake
            .max_body_bytes()
            .saturating_sub(self.intake_framing.prefix.len() + 64);
        for rt in converted.resources {
            for (part, spans) in intake::encode_resource(rt, budget) {
                Self::push(out, Route::TracesIntake, &self.intake_framing, part, spans);
            }
        }
    }

    /// Headers a trace or stats route needs besides the common ones.
    pub fn route_headers(&self, request: &DatadogRequest, headers: &mut HeaderMap) {
        match request.route {
            Route::TracesAgent => {
                headers.insert(TRACE_COUNT.clone(), HeaderValue::from(request.parts.len()));
                self.meta_headers(headers);
                // `_top_level`/`_dd.measured` are set here: the Agent must not
                // recompute them, nor stats when this exporter sends its own.
                headers.insert(COMPUTED_TOP_LEVEL.clone(), HeaderValue::from_static("yes"));
                if self.send_stats {
                    headers.insert(COMPUTED_STATS.clone(), HeaderValue::from_static("yes"));
                }
            }
            Route::StatsAgent => self.meta_headers(headers),
            Route::TracesIntake => {
                let langs = match self.languages.lock() {
                    Ok(l) => l,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let joined = langs
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("|");
                if let Ok(v) = HeaderValue::from_str(&joined) {
                    headers.insert(REPORTED_LANGUAGES.clone(), v);
                }
            }
            _ => {}
        }
    }

    fn meta_headers(&self, headers: &mut HeaderMap) {
        headers.insert(META_LANG_H.clone(), HeaderValue::from_static(META_LANG));
        headers.insert(
            META_LANG_VERSION_H.clone(),
            HeaderValue::from_static(META_LANG_VERSION),
        );
        headers.insert(
            META_TRACER_VERSION_H.clone(),
            HeaderValue::from_static(TRACER_VERSION),
        );
    }
}
