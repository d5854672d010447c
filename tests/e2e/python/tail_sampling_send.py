#!/usr/bin/env python3
"""Send traces for confluo's tail_sampling end-to-end test with the REAL
OpenTelemetry Python SDK and its OTLP/gRPC exporter.

Three kinds of traces (a root span and children):
  error  - one child span has status ERROR; short
  slow   - the root lasts --slow-ms milliseconds (explicit timestamps, no sleep)
  normal - short, no error

A SimpleSpanProcessor exports every span in its own request as it ends, so
children arrive before their root: each trace reaches confluo in several
requests and out of order. Half the traces also get a late child that is
exported after the other traces' spans.

Prints ONE JSON line: {"ok": bool, "traces": {"error": {trace_hex: [span_hex...]}, ...},
"spans": N, "errors": [...]}; exit 0 only when every export call succeeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode
from sdk_recording import Recording


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True, help="127.0.0.1:PORT (gRPC)")
    ap.add_argument("--per-kind", type=int, default=5)
    ap.add_argument("--slow-ms", type=int, default=2000)
    args = ap.parse_args()

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = Recording(OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=10))
    provider = TracerProvider(resource=Resource.create({"service.name": "tail-e2e"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("confluo.e2e.tail_sampling")

    kinds = {"error": [], "slow": [], "normal": []}
    late = []  # (root context, start ns) of traces that get a late child
    now = time.time_ns()
    for i in range(args.per_kind):
        for kind in kinds:
            start = now + i * 1_000_000
            duration = args.slow_ms * 1_000_000 if kind == "slow" else 20_000_000
            root = tracer.start_span(f"{kind}-root-{i}", start_time=start)
            ctx = trace_api.set_span_in_context(root)
            for c in range(2):
                child = tracer.start_span(f"{kind}-child-{c}", context=ctx, start_time=start + 1_000_000)
                if kind == "error" and c == 1:
                    child.set_status(Status(StatusCode.ERROR, "boom"))
                child.set_attribute("test.kind", kind)
                child.end(end_time=start + 5_000_000)
            root.end(end_time=start + duration)
            kinds[kind].append(root.get_span_context().trace_id)
            if i % 2 == 0:
                late.append((ctx, start))
    # Late children: after every other trace's spans, still within decision_wait.
    for ctx, start in late:
        child = tracer.start_span("late-child", context=ctx, start_time=start + 2_000_000)
        child.end(end_time=start + 3_000_000)
    provider.shutdown()

    by_trace = {}
    for s in exporter.spans:
        by_trace.setdefault(s.context.trace_id, []).append(f"{s.context.span_id:016x}")
    out = {
        kind: {f"{t:032x}": sorted(by_trace.get(t, [])) for t in ids} for kind, ids in kinds.items()
    }
    ok = not exporter.errors and len(exporter.spans) == 3 * args.per_kind * 3 + len(late)
    print(json.dumps({"ok": ok, "traces": out, "spans": len(exporter.spans), "errors": exporter.errors}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
