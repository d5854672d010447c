#!/usr/bin/env python3
"""Send traces for confluo's jaeger end-to-end test with the REAL OpenTelemetry
Python SDK and its OTLP/gRPC exporter, and describe exactly what was sent.

Two services (two TracerProviders, so two resources) produce spans that use
every part of the OTLP → Jaeger mapping:
  - "checkout" (SERVER) continues a remote parent whose context carries a W3C
    tracestate, has attributes of every SDK type (str, int, float, bool and
    arrays of each), an event, status OK;
  - "db.query" (CLIENT) is its child, status ERROR with a description, an
    event with an explicit `event` attribute;
  - "publish" (PRODUCER), another child of "checkout", links to "db.query"
    with link attributes;
  - "work" (INTERNAL) has more attributes than the span limit allows, so the
    SDK reports dropped attributes;
  - in the second service, "consume" (CONSUMER) links to "publish" with
    `opentracing.ref_type=child_of`.

Prints ONE JSON line:
  {"ok": bool, "errors": [...], "spans": [{"service", "resource": {k: [type, value]},
   "scope": [name, version], "name", "kind" (OTLP number), "trace_id", "span_id",
   "parent_span_id", "trace_state", "start_ns", "end_ns",
   "attributes": [[key, type, value]...], "dropped_attributes", "dropped_events",
   "dropped_links", "status_code" (OTLP number), "status_message",
   "events": [{"name", "ts_ns", "attributes"}], "links": [{"trace_id", "span_id",
   "attributes"}]}]}
where type is STRING/BOOL/INT64/FLOAT64, or ARRAY with the value a JSON list.
Exit 0 only when every export call succeeded.
"""

from __future__ import annotations

import argparse
import json
import sys

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from sdk_recording import Recording

KINDS = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}
CODES = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


def typed(v):
    if isinstance(v, bool):
        return ["BOOL", v]
    if isinstance(v, int):
        return ["INT64", v]
    if isinstance(v, float):
        return ["FLOAT64", v]
    if isinstance(v, str):
        return ["STRING", v]
    if isinstance(v, (list, tuple)):
        return ["ARRAY", list(v)]
    raise TypeError(f"unsupported attribute value {v!r}")


def typed_list(attrs) -> list:
    return [[k, *typed(v)] for k, v in (attrs or {}).items()]


def provider(service: str, endpoint: str, rec_list: list) -> TracerProvider:
    p = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "e2e", "host.cpus": 4}),
        span_limits=SpanLimits(max_span_attributes=4),
    )
    rec = Recording(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10))
    rec_list.append(rec)
    # One export call per span: each resource's spans reach confluo in
    # several requests, in the order they end.
    p.add_span_processor(SimpleSpanProcessor(rec))
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="confluo's OTLP/gRPC receiver, host:port")
    ap.add_argument("--service", default="jaeger-e2e", help="prefix of the two service names")
    args = ap.parse_args()

    recs: list[Recording] = []
    p1 = provider(f"{args.service}-shop", args.endpoint, recs)
    p2 = provider(f"{args.service}-worker", args.endpoint, recs)
    t1 = p1.get_tracer("confluo.e2e.jaeger", "3.1.4")
    t2 = p2.get_tracer("confluo.e2e.jaeger.worker")

    remote = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "abc"), ("other", "x1")]),
    )
    base = 1_700_000_000_000_000_000
    parent_ctx = trace_api.set_span_in_context(trace_api.NonRecordingSpan(remote))
    checkout = t1.start_span(
        "checkout",
        context=parent_ctx,
        kind=SpanKind.SERVER,
        start_time=base + 1_000,
        attributes={"http.method": "POST", "http.status_code": 200},
    )
    # Set one by one so that the limit (4) is not reached here.
    checkout.set_attribute("ratio", 0.125)
    checkout.set_attribute("cached", True)
    checkout.add_event("cache.miss", {"cache.key": "cart:42", "cache.size": 3}, timestamp=base + 2_000)
    checkout.set_status(Status(StatusCode.OK))

    ctx = trace_api.set_span_in_context(checkout)
    db = t1.start_span(
        "db.query",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=base + 3_000,
        attributes={"db.statement.parts": ("SELECT", "FROM"), "db.ports": (5432, 5433), "db.flags": (True, False)},
    )
    db.add_event("exception", {"event": "custom-event", "exception.message": "timeout"}, timestamp=base + 4_000)
    db.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
    db.end(end_time=base + 1_500_003_000)

    publish = t1.start_span(
        "publish",
        context=ctx,
        kind=SpanKind.PRODUCER,
        start_time=base + 5_000,
        links=[Link(db.get_span_context(), {"link.reason": "fan-out", "link.weights": (0.5, 1.5)})],
    )
    publish.end(end_time=base + 6_000)

    work = t1.start_span("work", context=ctx, kind=SpanKind.INTERNAL, start_time=base + 7_000)
    for j in range(7):
        work.set_attribute(f"work.attr{j}", j)
    work.end(end_time=base + 8_000)
    checkout.end(end_time=base + 2_000_000_000)

    consume = t2.start_span(
        "consume",
        kind=SpanKind.CONSUMER,
        start_time=base + 9_000,
        links=[Link(publish.get_span_context(), {"opentracing.ref_type": "child_of"})],
        attributes={"messaging.system": "kafka"},
    )
    consume.end(end_time=base + 10_000)

    p1.shutdown()
    p2.shutdown()

    errors = [e for r in recs for e in r.errors]
    spans = []
    for r in recs:
        for s in r.spans:
            c = s.get_span_context()
            spans.append(
                {
                    "service": s.resource.attributes["service.name"],
                    "resource": {k: typed(v) for k, v in s.resource.attributes.items()},
                    "scope": [s.instrumentation_scope.name, s.instrumentation_scope.version or ""],
                    "name": s.name,
                    "kind": KINDS[s.kind],
                    "trace_id": format(c.trace_id, "032x"),
                    "span_id": format(c.span_id, "016x"),
                    "parent_span_id": format(s.parent.span_id, "016x") if s.parent is not None else "",
                    "trace_state": c.trace_state.to_header(),
                    "start_ns": s.start_time,
                    "end_ns": s.end_time,
                    "attributes": typed_list(s.attributes),
                    "dropped_attributes": s.dropped_attributes,
                    "dropped_events": s.dropped_events,
                    "dropped_links": s.dropped_links,
                    "status_code": CODES[s.status.status_code],
                    "status_message": s.status.description or "",
                    "events": [
                        {"name": e.name, "ts_ns": e.timestamp, "attributes": typed_list(e.attributes)} for e in s.events
                    ],
                    "links": [
                        {
                            "trace_id": format(link.context.trace_id, "032x"),
                            "span_id": format(link.context.span_id, "016x"),
                            "attributes": typed_list(link.attributes),
                        }
                        for link in s.links
                    ],
                }
            )
    if len(spans) != 5:
        errors.append(f"{len(spans)} spans exported, expected 5")
    print(json.dumps({"ok": not errors, "errors": errors, "spans": spans}, sort_keys=True), flush=True)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
