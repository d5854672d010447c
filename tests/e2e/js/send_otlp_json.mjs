#!/usr/bin/env node
// Send traces, metrics or logs as OTLP/JSON over HTTP with the REAL
// OpenTelemetry JavaScript SDK (@opentelemetry/exporter-*-otlp-http).
//
// Used by confluo's end-to-end tests. Prints exactly ONE JSON line on stdout
// describing what the SDK exporter was handed and reported as exported, in the
// same shape as tests/e2e/python/send_otlp.py:
//   {"signal","protocol":"http/json","ok","count","trace_ids","span_names",
//    "resource": {k: AnyValue}, "attributes": {k: AnyValue}, ...details}
// AnyValue uses the OTLP/JSON encoding that confluo's file exporter writes
// (int64 as strings). Exit status 0 when every export succeeded and exactly
// --count items were exported, 1 otherwise, 2 for bad arguments.
//
// Usage: node send_otlp_json.mjs --endpoint http://127.0.0.1:PORT
//          --signal traces|metrics|logs --count N [--service NAME]
//          [--attr k=v]... [--request-id ID] [--timeout SECONDS] [--compression gzip|none]

import { context, trace, SpanKind, SpanStatusCode, diag, DiagLogLevel, ValueType } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { MeterProvider, PeriodicExportingMetricReader, DataPointType, AggregationTemporality } from '@opentelemetry/sdk-metrics';

// SDK enum -> OTLP AggregationTemporality (DELTA=1, CUMULATIVE=2).
const otlpTemporality = (t) => (t === AggregationTemporality.DELTA ? 1 : t === AggregationTemporality.CUMULATIVE ? 2 : null);
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';

// Attributes set on every span / log record / data point.
const COMMON_ATTRIBUTES = {
  'test.string': 'hello confluo',
  'test.int': 42,
  'test.double': 3.25,
  'test.bool': true,
  'test.array.string': ['a', 'b', 'c'],
  'test.array.int': [1, 2, 3],
};

function usage(msg) {
  process.stderr.write(`send_otlp_json.mjs: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = { signal: null, endpoint: null, count: 10, service: 'confluo-e2e-js', attr: [], requestId: null, timeout: 10, compression: 'none' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--endpoint': a.endpoint = v(); break;
      case '--signal': a.signal = v(); break;
      case '--count': a.count = Number.parseInt(v(), 10); break;
      case '--service': a.service = v(); break;
      case '--attr': a.attr.push(v()); break;
      case '--request-id': a.requestId = v(); break;
      case '--timeout': a.timeout = Number.parseFloat(v()); break;
      case '--compression': a.compression = v(); break;
      case '--protocol': if (v() !== 'http') usage('only --protocol http (OTLP/JSON) is supported'); break;
      case '-h': case '--help': process.stdout.write('see the header of this file\n'); process.exit(0); break;
      default: usage(`unknown argument ${k}`);
    }
  }
  if (!['traces', 'metrics', 'logs'].includes(a.signal)) usage('--signal traces|metrics|logs is required');
  if (!a.endpoint) usage('--endpoint http://127.0.0.1:PORT is required');
  if (!Number.isInteger(a.count) || a.count < 1) usage('--count must be >= 1');
  if (!['gzip', 'none'].includes(a.compression)) usage('--compression gzip|none');
  return a;
}

// JS value -> OTLP/JSON AnyValue as confluo's file exporter writes it.
function anyValue(v) {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (v && typeof v === 'object') return { kvlistValue: { values: Object.entries(v).map(([key, x]) => ({ key, value: anyValue(x) })) } };
  throw new Error(`unsupported attribute value ${v}`);
}
const anyMap = (attrs) => Object.fromEntries(Object.entries(attrs ?? {}).map(([k, v]) => [k, anyValue(v)]));

function urlFor(base, signal) {
  const u = new URL(base);
  if (u.pathname === '/' || u.pathname === '') u.pathname = `/v1/${signal}`;
  return u.toString();
}

// Wraps a real exporter: forwards every call and records result codes and items.
class Recorder {
  constructor() { this.calls = 0; this.errors = []; this.items = []; }
  // forceFlush/shutdown reject when an export failed: record, don't crash.
  async settle(what, promise) {
    try { await promise; } catch (e) { this.errors.push(`${what}: ${e && e.message ? e.message : e}`); }
  }
  wrap(inner) {
    const rec = this;
    return new Proxy(inner, {
      get(target, prop) {
        if (prop === 'export') {
          return (items, cb) => target.export(items, (result) => {
            rec.calls += 1;
            if (result.code === ExportResultCode.SUCCESS) rec.items.push(...(Array.isArray(items) ? items : [items]));
            else rec.errors.push(`export failed: ${result.error ? result.error.message || String(result.error) : 'code ' + result.code}`);
            cb(result);
          });
        }
        const val = target[prop];
        return typeof val === 'function' ? val.bind(target) : val;
      },
    });
  }
}

function resourceFor(a) {
  const attrs = { 'service.name': a.service };
  for (const kv of a.attr) {
    const i = kv.indexOf('=');
    if (i <= 0) usage(`--attr expects k=v, got ${kv}`);
    attrs[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (a.requestId) attrs['confluo.test.request_id'] = a.requestId;
  return defaultResource().merge(resourceFromAttributes(attrs));
}

const exporterConfig = (a, signal) => ({
  url: urlFor(a.endpoint, signal),
  timeoutMillis: Math.round(a.timeout * 1000),
  compression: a.compression,
});

async function sendTraces(a, resource, rec) {
  const exporter = rec.wrap(new OTLPTraceExporter(exporterConfig(a, 'traces')));
  const provider = new TracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: Math.max(2048, 2 * a.count), scheduledDelayMillis: 200 })],
  });
  const tracer = provider.getTracer('confluo.e2e.js', '1.0.0');
  const nTraces = Math.max(1, Math.min(3, a.count));
  const roots = new Map();
  const spans = [];
  let firstCtx = null;
  for (let i = 0; i < a.count; i++) {
    const t = i % nTraces;
    const attributes = { ...COMMON_ATTRIBUTES, 'span.index': i };
    const links = i === 1 && firstCtx ? [{ context: firstCtx, attributes: { 'link.kind': 'follows' } }] : [];
    let span;
    if (!roots.has(t)) {
      span = tracer.startSpan(`root-${t}`, { kind: SpanKind.SERVER, attributes, links }, context.active());
      roots.set(t, span);
    } else {
      span = tracer.startSpan(`child-${t}-${i}`, { kind: SpanKind.CLIENT, attributes, links }, trace.setSpan(context.active(), roots.get(t)));
    }
    if (!firstCtx) firstCtx = span.spanContext();
    span.addEvent(`event-${i}`, { 'event.index': i, 'event.note': 'something happened' });
    if (i === a.count - 1) span.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    spans.push(span);
  }
  for (const s of spans.reverse()) s.end();
  await rec.settle('forceFlush', provider.forceFlush());
  await rec.settle('shutdown', provider.shutdown());

  const exported = rec.items.map((s) => ({
    name: s.name,
    trace_id: s.spanContext().traceId,
    span_id: s.spanContext().spanId,
    parent_span_id: s.parentSpanContext ? s.parentSpanContext.spanId : '',
    kind: s.kind + 1, // api SpanKind.INTERNAL=0 -> OTLP SPAN_KIND_INTERNAL=1
    status_code: s.status.code,
    status_message: s.status.message ?? '',
    attributes: anyMap(s.attributes),
    events: s.events.map((e) => ({ name: e.name, attributes: anyMap(e.attributes) })),
    links: s.links.map((l) => ({ trace_id: l.context.traceId, span_id: l.context.spanId, attributes: anyMap(l.attributes) })),
  })).sort((x, y) => (x.span_id < y.span_id ? -1 : 1));
  return {
    count: exported.length,
    trace_ids: [...new Set(exported.map((s) => s.trace_id))].sort(),
    span_ids: exported.map((s) => s.span_id),
    span_names: exported.map((s) => s.name).sort(),
    spans: exported,
    resource: rec.items.length ? anyMap(rec.items[0].resource.attributes) : anyMap(resource.attributes),
  };
}

async function sendLogs(a, resource, rec) {
  const exporter = rec.wrap(new OTLPLogExporter(exporterConfig(a, 'logs')));
  const provider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter, maxQueueSize: Math.max(2048, 2 * a.count), scheduledDelayMillis: 200 })],
  });
  const logger = provider.getLogger('confluo.e2e.js', '1.0.0');
  // Spans only give the records their trace context; they are not exported.
  const tracer = new TracerProvider({ resource }).getTracer('confluo.e2e.js');
  const nTraces = Math.max(1, Math.min(3, a.count));
  for (let t = 0; t < nTraces; t++) {
    const span = tracer.startSpan(`log-parent-${t}`);
    const ctx = trace.setSpan(context.active(), span);
    for (let i = t; i < a.count; i += nTraces) {
      const warn = i % 2 === 0;
      logger.emit({
        body: `log record ${i}`,
        severityNumber: warn ? SeverityNumber.WARN : SeverityNumber.INFO,
        severityText: warn ? 'WARN' : 'INFO',
        attributes: { ...COMMON_ATTRIBUTES, 'log.index': i },
        context: ctx,
      });
    }
    span.end();
  }
  await rec.settle('forceFlush', provider.forceFlush());
  await rec.settle('shutdown', provider.shutdown());

  const records = rec.items.map((r) => ({
    body: r.body,
    severity_number: r.severityNumber ?? 0,
    severity_text: r.severityText ?? '',
    trace_id: r.spanContext ? r.spanContext.traceId : '',
    span_id: r.spanContext ? r.spanContext.spanId : '',
    attributes: anyMap(r.attributes),
  })).sort((x, y) => (x.body < y.body ? -1 : 1));
  return {
    count: records.length,
    trace_ids: [...new Set(records.map((r) => r.trace_id).filter(Boolean))].sort(),
    span_names: [],
    bodies: records.map((r) => r.body).sort(),
    log_records: records,
    resource: rec.items.length ? anyMap(rec.items[0].resource.attributes) : anyMap(resource.attributes),
  };
}

async function sendMetrics(a, resource, rec) {
  const exporter = rec.wrap(new OTLPMetricExporter(exporterConfig(a, 'metrics')));
  // Huge interval: the only collection is the one done by shutdown(), so every
  // data point is exported exactly once.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, exportTimeoutMillis: Math.round(a.timeout * 1000) + 5000 });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const meter = provider.getMeter('confluo.e2e.js', '1.0.0');
  const counter = meter.createCounter('confluo.e2e.requests', { unit: '1', description: 'requests handled' });
  const updown = meter.createUpDownCounter('confluo.e2e.inflight', { unit: '1', description: 'in flight' });
  const hist = meter.createHistogram('confluo.e2e.latency', { unit: 'ms', description: 'latency' });
  const gauge = meter.createObservableGauge('confluo.e2e.temperature', { unit: 'Cel', description: 'temp' });
  const gaugePoints = [];
  for (let j = 0; j < a.count; j++) if (j % 4 === 3) gaugePoints.push(j);
  gauge.addCallback((result) => { for (const j of gaugePoints) result.observe(j + 0.5, { ...COMMON_ATTRIBUTES, 'point.index': j }); });
  for (let j = 0; j < a.count; j++) {
    const attrs = { ...COMMON_ATTRIBUTES, 'point.index': j };
    switch (j % 4) {
      case 0: counter.add(j + 1, attrs); break;
      case 1: updown.add(-(j + 1), attrs); break;
      case 2: hist.record(j + 1.5, attrs); hist.record(10, attrs); break;
      default: break;
    }
  }
  await rec.settle('shutdown', provider.shutdown());

  const points = [];
  const metrics = new Map();
  let res = null;
  for (const rm of rec.items) {
    res = res ?? rm.resource;
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        const type = { [DataPointType.SUM]: 'sum', [DataPointType.GAUGE]: 'gauge', [DataPointType.HISTOGRAM]: 'histogram' }[m.dataPointType] ?? String(m.dataPointType);
        if (!metrics.has(m.descriptor.name)) {
          metrics.set(m.descriptor.name, { name: m.descriptor.name, type, unit: m.descriptor.unit ?? '', monotonic: type === 'sum' ? Boolean(m.isMonotonic) : null, temporality: otlpTemporality(m.aggregationTemporality), points: 0 });
        }
        const info = metrics.get(m.descriptor.name);
        for (const p of m.dataPoints) {
          info.points += 1;
          const e = { metric: m.descriptor.name, index: p.attributes['point.index'] ?? null, attributes: anyMap(p.attributes) };
          if (type === 'histogram') { e.value = p.value.sum; e.histogram_count = p.value.count; } else { e.value = p.value; e.is_int = m.descriptor.valueType === ValueType.INT; }
          points.push(e);
        }
      }
    }
  }
  points.sort((x, y) => (x.index - y.index) || (x.metric < y.metric ? -1 : 1));
  return {
    count: points.length,
    trace_ids: [],
    span_names: [],
    metric_names: [...metrics.keys()].sort(),
    metrics: [...metrics.values()].sort((x, y) => (x.name < y.name ? -1 : 1)),
    points,
    resource: anyMap((res ?? resource).attributes),
  };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  // SDK diagnostics (export errors) go to stderr.
  diag.setLogger({
    error: (...m) => process.stderr.write(`otel error: ${m.join(' ')}\n`),
    warn: (...m) => process.stderr.write(`otel warn: ${m.join(' ')}\n`),
    info: () => {}, debug: () => {}, verbose: () => {},
  }, DiagLogLevel.WARN);
  const resource = resourceFor(a);
  const rec = new Recorder();
  const started = Date.now();
  const detail = a.signal === 'traces' ? await sendTraces(a, resource, rec)
    : a.signal === 'logs' ? await sendLogs(a, resource, rec)
      : await sendMetrics(a, resource, rec);
  const errors = [...rec.errors];
  if (rec.calls === 0) errors.push('the exporter never reported an export result');
  if (detail.count !== a.count) errors.push(`exporter successfully sent ${detail.count} items, expected ${a.count}`);
  const summary = {
    signal: a.signal,
    protocol: 'http/json',
    sdk: 'js',
    ok: errors.length === 0,
    errors,
    export_calls: rec.calls,
    elapsed_s: (Date.now() - started) / 1000,
    requested: a.count,
    service: a.service,
    request_id: a.requestId,
    attributes: anyMap(COMMON_ATTRIBUTES),
    ...detail,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
  for (const e of errors) process.stderr.write(`send_otlp_json.mjs: ${e}\n`);
  process.exitCode = errors.length ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`send_otlp_json.mjs: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
