#!/usr/bin/env python3
"""A Jaeger collector gRPC (api_v2) contract server for confluo's end-to-end
tests.

It shares no code with the exporter: requests are decoded by grpcio with the
generated `model_pb2` / `collector_pb2_grpc` that the PyPI package
opentelemetry-exporter-jaeger-proto-grpc ships (built from jaeger-idl's
proto/api_v2/{model,collector}.proto). Run it with .venv-jaeger's Python
(tests/e2e/requirements-jaeger.txt).

Service: jaeger.api_v2.CollectorService/PostSpans(PostSpansRequest{Batch batch})
  -> PostSpansResponse{}.
  - the first --fail-first calls are answered with --fail-code (a gRPC status
    name, e.g. UNAVAILABLE) and nothing is stored, as a collector that is
    overloaded or shutting down;
  - a request that breaks the model's rules is answered INVALID_ARGUMENT
    (nothing stored) and its violations are recorded: trace ids must be 16
    bytes, span ids 8, references must carry 16/8-byte ids and a known type,
    start_time and duration must be set, the batch must name a process with a
    service name, every KeyValue must use a known ValueType and carry no value
    of another type (the model keeps exactly one), span.process/process_id
    must be empty when the batch has a process (the exporter promises one
    process per batch).

Every call and every stored span is appended to the JSONL file given as the
first argument:
  {"type": "call", "n": 1, "code": "OK", "spans": 3, "service": "svc",
   "metadata": {"x-tenant": "t"}, "violations": []}
  {"type": "span", "call": 1, "trace_id": hex, "span_id": hex,
   "operation_name": ..., "flags": 0, "start_ns": int, "duration_ns": int,
   "tags": [{"key", "type": "STRING|BOOL|INT64|FLOAT64|BINARY", "value"}],
   "logs": [{"ts_ns": int, "fields": [...tags]}],
   "references": [{"ref_type": "CHILD_OF|FOLLOWS_FROM", "trace_id", "span_id"}],
   "process": {"service_name": ..., "tags": [...]}}
BINARY values are hex. The listening port is printed as the first line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.exporter.jaeger.proto.grpc.gen import collector_pb2, collector_pb2_grpc, model_pb2

VALUE_FIELDS = {
    model_pb2.STRING: "v_str",
    model_pb2.BOOL: "v_bool",
    model_pb2.INT64: "v_int64",
    model_pb2.FLOAT64: "v_float64",
    model_pb2.BINARY: "v_binary",
}


def kv_json(kv, where: str, violations: list) -> dict:
    if kv.v_type not in VALUE_FIELDS:
        violations.append(f"{where}: tag {kv.key!r} has unknown v_type {kv.v_type}")
        return {"key": kv.key, "type": str(kv.v_type), "value": None}
    own = VALUE_FIELDS[kv.v_type]
    for field in VALUE_FIELDS.values():
        # proto3 scalars have no presence: a non-default value is "set".
        if field != own and getattr(kv, field):
            violations.append(f"{where}: tag {kv.key!r} of type {model_pb2.ValueType.Name(kv.v_type)} also sets {field}")
    value = getattr(kv, own)
    if own == "v_binary":
        value = value.hex()
    return {"key": kv.key, "type": model_pb2.ValueType.Name(kv.v_type), "value": value}


def ts_ns(ts) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


class Collector(collector_pb2_grpc.CollectorServiceServicer):
    def __init__(self, record: str, fail_first: int, fail_code: grpc.StatusCode):
        self.record = record
        self.fail_first = fail_first
        self.fail_code = fail_code
        self.lock = threading.Lock()
        self.calls = 0

    def write(self, rows: list[dict]) -> None:
        with open(self.record, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")

    def PostSpans(self, request, context):  # noqa: N802 - gRPC method name
        metadata = {k: v for k, v in context.invocation_metadata() if not k.startswith("grpc-") and not k.endswith("-bin")}
        with self.lock:
            self.calls += 1
            n = self.calls
            batch = request.batch
            call = {
                "type": "call",
                "n": n,
                "spans": len(batch.spans),
                "service": batch.process.service_name if batch.HasField("process") else None,
                "metadata": metadata,
                "violations": [],
            }
            if n <= self.fail_first:
                call["code"] = self.fail_code.name
                self.write([call])
                context.abort(self.fail_code, f"scripted failure {n} of {self.fail_first}")
            violations = call["violations"]
            rows = []
            process = None
            if not batch.HasField("process"):
                violations.append("batch has no process")
            else:
                if not batch.process.service_name:
                    violations.append("batch process has an empty service_name")
                process = {
                    "service_name": batch.process.service_name,
                    "tags": [kv_json(t, "process", violations) for t in batch.process.tags],
                }
            if not batch.spans:
                violations.append("batch has no spans")
            for i, span in enumerate(batch.spans):
                where = f"span {i} ({span.operation_name!r})"
                if len(span.trace_id) != 16:
                    violations.append(f"{where}: trace_id has {len(span.trace_id)} bytes, want 16")
                if len(span.span_id) != 8:
                    violations.append(f"{where}: span_id has {len(span.span_id)} bytes, want 8")
                if not span.HasField("start_time"):
                    violations.append(f"{where}: no start_time")
                if not span.HasField("duration"):
                    violations.append(f"{where}: no duration")
                if span.HasField("process") or span.process_id:
                    violations.append(f"{where}: span carries its own process")
                refs = []
                for r in span.references:
                    if len(r.trace_id) != 16 or len(r.span_id) != 8:
                        violations.append(f"{where}: reference with {len(r.trace_id)}/{len(r.span_id)}-byte ids")
                    if r.ref_type not in (model_pb2.CHILD_OF, model_pb2.FOLLOWS_FROM):
                        violations.append(f"{where}: unknown ref_type {r.ref_type}")
                        continue
                    refs.append(
                        {
                            "ref_type": model_pb2.SpanRefType.Name(r.ref_type),
                            "trace_id": r.trace_id.hex(),
                            "span_id": r.span_id.hex(),
                        }
                    )
                logs = []
                for log in span.logs:
                    if not log.HasField("timestamp"):
                        violations.append(f"{where}: log without timestamp")
                    logs.append(
                        {"ts_ns": ts_ns(log.timestamp), "fields": [kv_json(f, where + " log", violations) for f in log.fields]}
                    )
                rows.append(
                    {
                        "type": "span",
                        "call": n,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "operation_name": span.operation_name,
                        "flags": span.flags,
                        "start_ns": ts_ns(span.start_time),
                        "duration_ns": span.duration.seconds * 1_000_000_000 + span.duration.nanos,
                        "tags": [kv_json(t, where, violations) for t in span.tags],
                        "logs": logs,
                        "references": refs,
                        "process": process,
                        "warnings": list(span.warnings),
                    }
                )
            if violations:
                call["code"] = "INVALID_ARGUMENT"
                self.write([call])
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(violations)[:1000])
            call["code"] = "OK"
            self.write([call] + rows)
            return collector_pb2.PostSpansResponse()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", help="JSONL file to append calls and spans to")
    ap.add_argument("--fail-first", type=int, default=0, help="answer the first N calls with --fail-code")
    ap.add_argument("--fail-code", default="UNAVAILABLE", help="gRPC status name for scripted failures")
    args = ap.parse_args()
    try:
        code = grpc.StatusCode[args.fail_code]
    except KeyError:
        ap.error(f"unknown gRPC status {args.fail_code!r}")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    collector_pb2_grpc.add_CollectorServiceServicer_to_server(Collector(args.record, args.fail_first, code), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
