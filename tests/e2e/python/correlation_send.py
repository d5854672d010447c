#!/usr/bin/env python3
"""One request's telemetry, sent with the REAL OpenTelemetry Python SDK and its
OTLP/gRPC exporters, for confluo's correlation e2e test (tests/e2e_correlation.rs).

  --signal logs:   --count log records through the SDK's LoggingHandler, emitted
                   OUTSIDE any span (no trace context), each carrying the
                   attribute request_id=<--request-id>; exported and flushed.
  --signal traces: one SERVER span whose attribute
                   http.request.header.x-request-id = [<--request-id>] (a string
                   array, as the semantic conventions capture headers), with a
                   child INTERNAL span; exported and flushed.

Prints exactly one JSON line: {"ok": bool, "signal": ..., "count": n,
"trace_id": hex, "span_id": hex (the server span), "errors": [...]}.
Exit status 0 when every export succeeded, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind


def ok(result) -> bool:
    return getattr(result, "name", None) == "SUCCESS"


def send_logs(args, resource, errors) -> int:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from opentelemetry.sdk._logs import LoggingHandler

    inner = OTLPLogExporter(endpoint=args.endpoint, insecure=True, timeout=args.timeout)
    sent = []

    def export(batch):
        r = inner.export(batch)
        if ok(r):
            sent.extend(batch)
        else:
            errors.append(f"log export returned {r!r}")
        return r

    class Exporter:
        def export(self, batch):
            return export(batch)

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(Exporter()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    log = logging.getLogger("confluo.e2e.correlation")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    for i in range(args.count):
        log.info("handling request step %d", i, extra={"request_id": args.request_id, "step": i})
    log.removeHandler(handler)
    provider.force_flush()
    provider.shutdown()
    for d in sent:
        if d.log_record.trace_id:
            errors.append("a log record carried trace context; the test needs logs without it")
    return len(sent)


def send_traces(args, resource, errors) -> tuple[int, str, str]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

    inner = OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=args.timeout)
    sent = []

    class Exporter(SpanExporter):
        def export(self, spans):
            r = inner.export(spans)
            if ok(r):
                sent.extend(spans)
            else:
                errors.append(f"span export returned {r!r}")
            return r

        def shutdown(self):
            inner.shutdown()

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(Exporter()))
    tracer = provider.get_tracer("confluo.e2e.correlation")
    with tracer.start_as_current_span(
        "GET /orders",
        kind=SpanKind.SERVER,
        attributes={"http.request.header.x-request-id": (args.request_id,), "http.route": "/orders"},
    ) as server:
        with tracer.start_as_current_span("load order"):
            pass
        ctx = server.get_span_context()
    provider.force_flush()
    provider.shutdown()
    return len(sent), format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True, help="127.0.0.1:PORT (OTLP/gRPC)")
    ap.add_argument("--signal", choices=["logs", "traces"], required=True)
    ap.add_argument("--request-id", required=True)
    ap.add_argument("--count", type=int, default=3, help="log records (logs only)")
    ap.add_argument("--service", default="", help="service.name (default: the SDK's unknown_service)")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    resource = Resource.create({"service.name": args.service} if args.service else {})
    errors: list[str] = []
    out = {"signal": args.signal, "request_id": args.request_id}
    try:
        if args.signal == "logs":
            out["count"] = send_logs(args, resource, errors)
        else:
            out["count"], out["trace_id"], out["span_id"] = send_traces(args, resource, errors)
    except Exception as e:  # noqa: BLE001 - reported in the JSON line
        errors.append(f"{type(e).__name__}: {e}")
    out["errors"] = errors
    out["ok"] = not errors
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
