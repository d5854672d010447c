#!/usr/bin/env python3
"""Send a fixed set of traces with the REAL OpenTelemetry Python SDK (OTLP/HTTP
exporter) for confluo's Datadog traces end-to-end test (tests/e2e_datadog_traces.rs).

Per repetition (--repeat N):
  trace "items":  SERVER  "GET /items/{id}"  http.request.method=GET, http.route=/items/{id},
                                              http.response.status_code=200
                  └ CLIENT "SELECT items"    db.system=postgresql, db.statement=SELECT * FROM items
                    └ INTERNAL "compute"     status ERROR, a recorded ValueError("bad value")
  trace "orders": SERVER  "POST /orders"     http.request.method=POST, http.route=/orders,
                                              http.response.status_code=500, status ERROR "payment failed"

Prints ONE JSON line: {"ok": true, "spans": [...]} where each span is what the
SDK handed to its exporter (taken from an in-memory exporter on the same
provider): trace_id / span_id / parent_id (hex), name, kind, status, start/end
(ns), attributes, events, scope.
"""

from __future__ import annotations

import argparse
import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

RESOURCE = {
    "service.name": "shop",
    "service.version": "2.0.1",
    "deployment.environment": "staging",
    "host.name": "e2e-host",
}
SCOPE = ("shop.instrumentation", "0.1")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True, help="OTLP/HTTP traces URL")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    provider = TracerProvider(resource=Resource.create(RESOURCE))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otlp = OTLPSpanExporter(endpoint=args.endpoint, timeout=10)
    provider.add_span_processor(BatchSpanProcessor(otlp, max_export_batch_size=512, schedule_delay_millis=200))
    tracer = provider.get_tracer(*SCOPE)

    for _ in range(args.repeat):
        with tracer.start_as_current_span(
            "GET /items/{id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "http.route": "/items/{id}",
                "http.response.status_code": 200,
                "app.items": 3,
            },
        ):
            with tracer.start_as_current_span(
                "SELECT items",
                kind=SpanKind.CLIENT,
                attributes={"db.system": "postgresql", "db.statement": "SELECT * FROM items"},
            ):
                with tracer.start_as_current_span("compute", kind=SpanKind.INTERNAL, record_exception=False) as s:
                    try:
                        raise ValueError("bad value")
                    except ValueError as e:
                        s.record_exception(e)
                        s.set_status(Status(StatusCode.ERROR, "compute failed"))
        with tracer.start_as_current_span(
            "POST /orders",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "POST",
                "http.route": "/orders",
                "http.response.status_code": 500,
            },
        ) as s:
            s.set_status(Status(StatusCode.ERROR, "payment failed"))

    ok = provider.force_flush(10_000)
    provider.shutdown()
    spans = []
    for s in memory.get_finished_spans():
        ctx = s.get_span_context()
        spans.append(
            {
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "parent_id": format(s.parent.span_id, "016x") if s.parent else "",
                "name": s.name,
                "kind": s.kind.name.lower(),
                "status": s.status.status_code.name,
                "status_description": s.status.description or "",
                "start": s.start_time,
                "end": s.end_time,
                "attributes": dict(s.attributes or {}),
                "events": [{"name": e.name, "attributes": {k: str(v) for k, v in (e.attributes or {}).items()}} for e in s.events],
                "scope": s.instrumentation_scope.name if s.instrumentation_scope else "",
            }
        )
    print(json.dumps({"ok": bool(ok), "count": len(spans), "spans": spans}, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
