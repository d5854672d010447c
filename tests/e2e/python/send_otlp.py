#!/usr/bin/env python3
"""Send traces, metrics or logs to an OTLP endpoint with the REAL OpenTelemetry
Python SDK and its OTLP exporters (gRPC or HTTP/protobuf).

Used by confluo's end-to-end tests (tests/e2e_*.rs). Prints exactly ONE JSON
line on stdout describing what the SDK exporter actually sent (taken from the
data handed to the exporter, not from what we meant to send), so that the Rust
test can compare it with what confluo's file exporter wrote:

  {"signal": "traces", "protocol": "grpc", "ok": true, "count": 10,
   "trace_ids": [hex...], "span_names": [...],
   "resource": {"service.name": {"stringValue": "svc"}, ...},    # OTLP/JSON AnyValue
   "attributes": {"test.int": {"intValue": "42"}, ...},           # on EVERY item
   "spans" | "log_records" | "metrics" | "points": [...per item details...]}

"resource" is the complete resource of the SDK (including telemetry.sdk.*);
"attributes" are the attributes set on every span / log record / data point
(items may carry more: span.index, code.* for logs, point.index for metrics).
Values use the OTLP/JSON encoding (lowerCamelCase, int64 as strings, hex ids).

Exit status: 0 when every export call succeeded and the exporter was handed
exactly --count items; 1 otherwise (the JSON line is still printed, with
"ok": false and "errors"); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import warnings

from opentelemetry import trace as trace_api
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

# Attributes set on every span / log record / metric data point, with their
# expected OTLP/JSON encoding. Covers string, int, double, bool and arrays.
COMMON_ATTRIBUTES = {
    "test.string": "hello confluo",
    "test.int": 42,
    "test.double": 3.25,
    "test.bool": True,
    "test.array.string": ("a", "b", "c"),
    "test.array.int": (1, 2, 3),
}


def any_value(v):
    """Python attribute value -> OTLP/JSON AnyValue (proto3 JSON mapping)."""
    if isinstance(v, bool):  # before int: bool is an int subclass
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, bytes):
        import base64

        return {"bytesValue": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(x)} for k, x in v.items()]}}
    raise TypeError(f"unsupported attribute value {v!r}")


def any_map(attrs) -> dict:
    return {k: any_value(v) for k, v in (attrs or {}).items()}


def hex_trace(i: int) -> str:
    return format(i, "032x")


def hex_span(i: int) -> str:
    return format(i, "016x")


def result_ok(result) -> bool:
    # SpanExportResult / LogRecordExportResult / LogExportResult / MetricExportResult
    # are all enums whose success member is named SUCCESS.
    return getattr(result, "name", None) == "SUCCESS"


class Recorder:
    """Wraps a real OTLP exporter: forwards every export call and records the
    result code and what was handed to it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0
        self.errors: list[str] = []
        self.items: list = []

    def record(self, items, result=None, exc=None):
        with self.lock:
            self.calls += 1
            if exc is not None:
                self.errors.append(f"export raised {type(exc).__name__}: {exc}")
            elif not result_ok(result):
                self.errors.append(f"export returned {result!r}")
            else:
                self.items.extend(items)


def wrap_span_exporter(inner, rec: Recorder):
    from opentelemetry.sdk.trace.export import SpanExporter

    class Wrapped(SpanExporter):
        def export(self, spans):
            try:
                r = inner.export(spans)
            except Exception as e:  # noqa: BLE001
                rec.record(spans, exc=e)
                raise
            rec.record(list(spans), result=r)
            return r

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return Wrapped()


def wrap_log_exporter(inner, rec: Recorder):
    from opentelemetry.sdk._logs.export import LogRecordExporter

    class Wrapped(LogRecordExporter):
        def export(self, batch):
            try:
                r = inner.export(batch)
            except Exception as e:  # noqa: BLE001
                rec.record(batch, exc=e)
                raise
            rec.record(list(batch), result=r)
            return r

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return Wrapped()


def wrap_metric_exporter(inner, rec: Recorder):
    from opentelemetry.sdk.metrics.export import MetricExporter

    class Wrapped(MetricExporter):
        def __init__(self):
            super().__init__(
                preferred_temporality=inner._preferred_temporality,
                preferred_aggregation=inner._preferred_aggregation,
            )

        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
            try:
                r = inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            except Exception as e:  # noqa: BLE001
                rec.record([metrics_data], exc=e)
                raise
            rec.record([metrics_data], result=r)
            return r

        def shutdown(self, timeout_millis: float = 30_000, **kwargs):
            inner.shutdown(timeout_millis=timeout_millis, **kwargs)

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return inner.force_flush(timeout_millis=timeout_millis)

    return Wrapped()


def endpoint_for(args, signal_path: str) -> str:
    ep = args.endpoint
    if args.protocol == "grpc":
        return ep  # host:port or http://host:port; insecure=True below
    if not ep.startswith(("http://", "https://")):
        ep = "http://" + ep
    # A bare base URL gets the standard per-signal path, as OTEL_EXPORTER_OTLP_ENDPOINT does.
    rest = ep.split("://", 1)[1]
    if "/" not in rest or rest.endswith("/") and rest.count("/") == 1:
        ep = ep.rstrip("/") + "/v1/" + signal_path
    return ep


def make_exporter(args, signal: str):
    headers = dict(h.split("=", 1) for h in args.header)
    if args.protocol == "grpc":
        import grpc

        compression = grpc.Compression.Gzip if args.compression == "gzip" else grpc.Compression.NoCompression
        kw = dict(endpoint=endpoint_for(args, signal), insecure=True, timeout=args.timeout, compression=compression)
        if headers:
            kw["headers"] = headers
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as E
        elif signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as E
        else:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as E
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression

        compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
        kw = dict(endpoint=endpoint_for(args, signal), timeout=args.timeout, compression=compression)
        if headers:
            kw["headers"] = headers
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as E
        elif signal == "metrics":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as E
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as E
    return E(**kw)


def build_resource(args) -> Resource:
    attrs = {"service.name": args.service}
    for kv in args.attr:
        k, _, v = kv.partition("=")
        if not k or not _:
            raise SystemExit(f"--attr expects k=v, got {kv!r}")
        attrs[k] = v
    if args.request_id:
        attrs["confluo.test.request_id"] = args.request_id
    return Resource.create(attrs)


# --------------------------------------------------------------------- traces
def send_traces(args, resource, rec: Recorder) -> dict:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = wrap_span_exporter(make_exporter(args, "traces"), rec)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=max(2048, 2 * args.count), schedule_delay_millis=200)
    )
    tracer = provider.get_tracer("confluo.e2e.python", "1.0.0")

    n = args.count
    n_traces = max(1, min(3, n))
    roots = {}
    first_ctx = None
    spans = []
    for i in range(n):
        t = i % n_traces
        attrs = dict(COMMON_ATTRIBUTES)
        attrs["span.index"] = i
        links = []
        if i == 1 and first_ctx is not None:
            links = [Link(first_ctx, {"link.kind": "follows"})]
        if t not in roots:
            span = tracer.start_span(f"root-{t}", kind=SpanKind.SERVER, attributes=attrs, links=links)
            roots[t] = span
        else:
            parent_ctx = trace_api.set_span_in_context(roots[t])
            span = tracer.start_span(f"child-{t}-{i}", context=parent_ctx, kind=SpanKind.CLIENT, attributes=attrs, links=links)
        if first_ctx is None:
            first_ctx = span.get_span_context()
        span.add_event(f"event-{i}", {"event.index": i, "event.note": "something happened"})
        if i == n - 1:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        spans.append(span)
    for span in reversed(spans):  # children before their roots
        span.end()

    provider.force_flush(int(args.timeout * 1000) + 5000)
    provider.shutdown()

    exported = []
    for s in rec.items:
        ctx = s.get_span_context()
        exported.append(
            {
                "name": s.name,
                "trace_id": hex_trace(ctx.trace_id),
                "span_id": hex_span(ctx.span_id),
                "parent_span_id": hex_span(s.parent.span_id) if s.parent is not None else "",
                "kind": s.kind.value + 1,  # SDK SpanKind.INTERNAL=0 -> OTLP SPAN_KIND_INTERNAL=1
                "status_code": {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}[s.status.status_code],
                "status_message": s.status.description or "",
                "attributes": any_map(s.attributes),
                "events": [{"name": e.name, "attributes": any_map(e.attributes)} for e in s.events],
                "links": [
                    {
                        "trace_id": hex_trace(link.context.trace_id),
                        "span_id": hex_span(link.context.span_id),
                        "attributes": any_map(link.attributes),
                    }
                    for link in s.links
                ],
            }
        )
    exported.sort(key=lambda x: x["span_id"])
    return {
        "count": len(exported),
        "trace_ids": sorted({s["trace_id"] for s in exported}),
        "span_ids": [s["span_id"] for s in exported],
        "span_names": sorted(s["name"] for s in exported),
        "spans": exported,
    }


# ----------------------------------------------------------------------- logs
def send_logs(args, resource, rec: Recorder) -> dict:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from opentelemetry.sdk._logs import LoggingHandler

    exporter = wrap_log_exporter(make_exporter(args, "logs"), rec)
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_queue_size=max(2048, 2 * args.count), schedule_delay_millis=200)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    pylog = logging.getLogger("confluo.e2e.python")
    pylog.propagate = False
    pylog.setLevel(logging.DEBUG)
    pylog.addHandler(handler)

    # Spans only give the log records their trace context; they are not exported.
    tracer = TracerProvider(resource=resource).get_tracer("confluo.e2e.python")
    n = args.count
    n_traces = max(1, min(3, n))
    per_trace = [list(range(t, n, n_traces)) for t in range(n_traces)]
    for t, indices in enumerate(per_trace):
        with tracer.start_as_current_span(f"log-parent-{t}"):
            for i in indices:
                extra = dict(COMMON_ATTRIBUTES)
                extra["log.index"] = i
                if i % 2 == 0:
                    pylog.warning("log record %d", i, extra=extra)
                else:
                    pylog.info("log record %d", i, extra=extra)

    pylog.removeHandler(handler)
    provider.force_flush(int(args.timeout * 1000) + 5000)
    provider.shutdown()

    records = []
    for r in rec.items:
        lr = r.log_record
        records.append(
            {
                "body": lr.body,
                "severity_number": lr.severity_number.value if lr.severity_number is not None else 0,
                "severity_text": lr.severity_text or "",
                "trace_id": hex_trace(lr.trace_id) if lr.trace_id else "",
                "span_id": hex_span(lr.span_id) if lr.span_id else "",
                "attributes": any_map({k: v for k, v in (lr.attributes or {}).items() if not k.startswith("code.")}),
            }
        )
    records.sort(key=lambda x: x["body"])
    return {
        "count": len(records),
        "trace_ids": sorted({r["trace_id"] for r in records if r["trace_id"]}),
        "span_names": [],
        "bodies": sorted(r["body"] for r in records),
        "log_records": records,
    }


# -------------------------------------------------------------------- metrics
def send_metrics(args, resource, rec: Recorder) -> dict:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        Gauge,
        Histogram,
        PeriodicExportingMetricReader,
        Sum,
    )

    exporter = wrap_metric_exporter(make_exporter(args, "metrics"), rec)
    # A huge interval: the only collection is the final one done by shutdown(),
    # so every data point is exported exactly once.
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=3_600_000, export_timeout_millis=int(args.timeout * 1000) + 5000
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("confluo.e2e.python", "1.0.0")

    n = args.count
    counter = meter.create_counter("confluo.e2e.requests", unit="1", description="requests handled")
    updown = meter.create_up_down_counter("confluo.e2e.inflight", unit="1", description="in flight")
    hist = meter.create_histogram("confluo.e2e.latency", unit="ms", description="latency")
    gauge_points = [j for j in range(n) if j % 4 == 3]

    def gauge_cb(_options: CallbackOptions):
        for j in gauge_points:
            a = dict(COMMON_ATTRIBUTES)
            a["point.index"] = j
            yield Observation(j + 0.5, a)

    meter.create_observable_gauge("confluo.e2e.temperature", callbacks=[gauge_cb], unit="Cel", description="temp")

    for j in range(n):
        a = dict(COMMON_ATTRIBUTES)
        a["point.index"] = j
        k = j % 4
        if k == 0:
            counter.add(j + 1, a)
        elif k == 1:
            updown.add(-(j + 1), a)
        elif k == 2:
            hist.record(j + 1.5, a)
            hist.record(10.0, a)

    provider.shutdown()

    points = []
    metrics = {}
    for md in rec.items:
        for rm in md.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    d = m.data
                    if isinstance(d, Sum):
                        kind = "sum"
                    elif isinstance(d, Gauge):
                        kind = "gauge"
                    elif isinstance(d, Histogram):
                        kind = "histogram"
                    else:
                        kind = type(d).__name__
                    info = metrics.setdefault(
                        m.name,
                        {
                            "name": m.name,
                            "type": kind,
                            "unit": m.unit or "",
                            "monotonic": getattr(d, "is_monotonic", None),
                            "temporality": getattr(getattr(d, "aggregation_temporality", None), "value", None),
                            "points": 0,
                        },
                    )
                    for p in d.data_points:
                        info["points"] += 1
                        attrs = dict(p.attributes or {})
                        entry = {"metric": m.name, "index": attrs.get("point.index"), "attributes": any_map(attrs)}
                        if kind == "histogram":
                            entry.update(value=float(p.sum), histogram_count=int(p.count))
                        else:
                            entry["value"] = float(p.value)
                            entry["is_int"] = isinstance(p.value, int)
                        points.append(entry)
    points.sort(key=lambda p: (p["index"] is None, p["index"] or 0, p["metric"]))
    return {
        "count": len(points),
        "trace_ids": [],
        "span_names": [],
        "metric_names": sorted(metrics),
        "metrics": sorted(metrics.values(), key=lambda m: m["name"]),
        "points": points,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=["grpc", "http"], required=True)
    ap.add_argument("--endpoint", required=True, help="grpc: 127.0.0.1:PORT; http: http://127.0.0.1:PORT[/v1/…]")
    ap.add_argument("--signal", choices=["traces", "metrics", "logs"], required=True)
    ap.add_argument("--count", type=int, default=10, help="spans / log records / metric data points")
    ap.add_argument("--service", default="confluo-e2e-python")
    ap.add_argument("--attr", action="append", default=[], help="resource attribute k=v (repeatable)")
    ap.add_argument("--request-id", default=None, help="added as resource attribute confluo.test.request_id")
    ap.add_argument("--timeout", type=float, default=10.0, help="exporter timeout in seconds (retries included)")
    ap.add_argument("--compression", choices=["none", "gzip"], default="none")
    ap.add_argument("--header", action="append", default=[], help="request header k=v (repeatable)")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be >= 1")

    # The SDK logs export failures through `logging`; keep them on stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    resource = build_resource(args)
    rec = Recorder()
    started = time.monotonic()
    if args.signal == "traces":
        detail = send_traces(args, resource, rec)
    elif args.signal == "logs":
        detail = send_logs(args, resource, rec)
    else:
        detail = send_metrics(args, resource, rec)

    errors = list(rec.errors)
    if rec.calls == 0:
        errors.append("the exporter was never called")
    if detail["count"] != args.count:
        errors.append(f"exporter successfully sent {detail['count']} items, expected {args.count}")
    summary = {
        "signal": args.signal,
        "protocol": args.protocol,
        "sdk": "python",
        "ok": not errors,
        "errors": errors,
        "export_calls": rec.calls,
        "elapsed_s": round(time.monotonic() - started, 3),
        "requested": args.count,
        "service": args.service,
        "request_id": args.request_id,
        "resource": any_map(resource.attributes),
        "attributes": any_map(COMMON_ATTRIBUTES),
        **detail,
    }
    print(json.dumps(summary, sort_keys=True), flush=True)
    if errors:
        for e in errors:
            print(f"send_otlp.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
