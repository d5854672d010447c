#!/usr/bin/env python3
"""Send traces for the trace_flags, ottl_condition and bytes_limiting cases of
tests/e2e_tail_sampling.rs with the REAL OpenTelemetry Python SDK (OTLP/gRPC).

Kinds of traces (a root and two children, each span exported in its own
request by a SimpleSpanProcessor, children first):
  gold     - a child has attribute app.tier = "gold"
  declined - a child has an "exception" event whose message says "card declined"
  flagged  - every span carries the W3C sampled flag in its OTLP `flags`
  plain    - none of these

The SDK (1.45) writes only the "has is_remote" bits (0x100/0x200) into
`Span.flags`, not the W3C trace-flags byte the OTLP spec puts in bits 0-7;
for the `flagged` kind the sender adds that byte at encoding time, as the
spec asks. `plain` spans keep the SDK's own flags (0x100).

Prints ONE JSON line: {"ok": bool, "traces": {kind: {trace_hex: [span_hex]}},
"bytes": {trace_hex: N}, "errors": [...]} where N is the size of the trace's
export requests' resource_spans as the collector holds them (the sum over
its spans of ExportTraceServiceRequest{resource_spans: [one]} sizes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common._internal import trace_encoder
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

import sdk_recording

FLAGGED_ATTR = "e2e.w3c_flags"
_encode_span = trace_encoder._encode_span


def _encode_span_with_w3c_flags(sdk_span):
    pb = _encode_span(sdk_span)
    if (sdk_span.attributes or {}).get(FLAGGED_ATTR):
        pb.flags |= int(sdk_span.get_span_context().trace_flags) & 0xFF
    return pb


trace_encoder._encode_span = _encode_span_with_w3c_flags


class Recording(sdk_recording.Recording):
    """Also records each delivered trace's size (see the module docstring)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.bytes = {}

    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            return result
        for rs in trace_encoder.encode_spans(spans).resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    one = ExportTraceServiceRequest()
                    r = one.resource_spans.add()
                    r.resource.CopyFrom(rs.resource)
                    r.schema_url = rs.schema_url
                    sc = r.scope_spans.add()
                    sc.scope.CopyFrom(ss.scope)
                    sc.schema_url = ss.schema_url
                    sc.spans.append(s)
                    t = s.trace_id.hex()
                    self.bytes[t] = self.bytes.get(t, 0) + one.ByteSize()
        return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True, help="127.0.0.1:PORT (gRPC)")
    ap.add_argument("--per-kind", type=int, default=3)
    args = ap.parse_args()

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = Recording(OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=10))
    provider = TracerProvider(resource=Resource.create({"service.name": "tail-e2e"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("confluo.e2e.tail_policies")

    kinds = {"gold": [], "declined": [], "flagged": [], "plain": []}
    now = time.time_ns()
    for i in range(args.per_kind):
        for kind in kinds:
            start = now + i * 1_000_000
            flagged = {FLAGGED_ATTR: True} if kind == "flagged" else {}
            root = tracer.start_span(f"{kind}-root-{i}", start_time=start, attributes=flagged)
            ctx = trace_api.set_span_in_context(root)
            for c in range(2):
                child = tracer.start_span(f"{kind}-child-{c}", context=ctx, start_time=start + 1_000_000, attributes=flagged)
                child.set_attribute("app.tier", "gold" if kind == "gold" and c == 1 else "free")
                if kind == "declined" and c == 0:
                    child.add_event("exception", {"exception.message": "card declined: insufficient funds"})
                elif c == 0:
                    child.add_event("exception", {"exception.message": "timeout"})
                child.end(end_time=start + 5_000_000)
            root.end(end_time=start + 20_000_000)
            kinds[kind].append(root.get_span_context().trace_id)
    provider.shutdown()

    by_trace = {}
    for s in exporter.spans:
        by_trace.setdefault(s.context.trace_id, []).append(f"{s.context.span_id:016x}")
    out = {kind: {f"{t:032x}": sorted(by_trace.get(t, [])) for t in ids} for kind, ids in kinds.items()}
    ok = not exporter.errors and len(exporter.spans) == 3 * args.per_kind * len(kinds)
    print(json.dumps({"ok": ok, "traces": out, "bytes": exporter.bytes, "errors": exporter.errors}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
