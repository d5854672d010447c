#!/usr/bin/env python3
"""Send database client spans (and one log record) carrying secrets in their
statements to confluo with the REAL OpenTelemetry Python SDK (OTLP/gRPC),
for the db_sanitizer case of tests/e2e_redaction.rs.

One CLIENT span per database system, named after its statement as some
instrumentations do, with `db.system.name` (newer semantic conventions) or
`db.system` (older) and the statement in `db.query.text` / `db.statement`;
and a log record with a Redis command in `db.statement` and no system.

Prints ONE JSON line: {"ok": bool, "secrets": [...], "spans": N, "logs": 1}.
"""

from __future__ import annotations

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

TOKEN = "tok_live_4f9a2c"
PASSWORD = "s3cr3t-Passw0rd"
EMAIL = "eve.adams@example.com"
SSN = "078-05-1120"
SECRETS = [TOKEN, PASSWORD, EMAIL, SSN, "hunter2"]

SPANS = [
    ("redis", "db.system.name", "db.query.text", f"SET session:42 {TOKEN} EX 3600"),
    ("valkey", "db.system.name", "db.query.text", f"AUTH {PASSWORD}"),
    ("memcached", "db.system", "db.statement", f"set user:7 0 60 21\r\n{EMAIL}\r\n"),
    ("mongodb", "db.system.name", "db.query.text", json.dumps({"find": "users", "filter": {"email": EMAIL, "age": {"$gt": 30}}})),
    ("elasticsearch", "db.system", "db.statement", json.dumps({"query": {"term": {"ssn": SSN}}})),
    ("opensearch", "db.system.name", "db.query.text", json.dumps({"query": {"match": {"note": f"password {PASSWORD}"}}})),
    ("postgresql", "db.system.name", "db.query.text", f"SELECT id FROM users WHERE email = '{EMAIL}' AND pin = 1234"),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    args = ap.parse_args()

    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": "db-client"})
    results = []

    class Spans(OTLPSpanExporter):
        def export(self, batch):
            r = super().export(batch)
            results.append(r.name)
            return r

    class Logs(OTLPLogExporter):
        def export(self, batch):
            r = super().export(batch)
            results.append(r.name)
            return r

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(Spans(endpoint=args.endpoint, insecure=True)))
    tracer = tp.get_tracer("redaction.e2e.db")
    for system, system_key, statement_key, statement in SPANS:
        with tracer.start_as_current_span(statement, kind=SpanKind.CLIENT) as span:
            span.set_attribute(system_key, system)
            span.set_attribute(statement_key, statement)
    tp.shutdown()

    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(Logs(endpoint=args.endpoint, insecure=True)))
    lp.get_logger("redaction.e2e.db").emit(body="slow command", attributes={"db.statement": "SET user:7:pw hunter2"})
    lp.shutdown()

    ok = len(results) == len(SPANS) + 1 and all(r == "SUCCESS" for r in results)
    print(json.dumps({"ok": ok, "secrets": SECRETS, "spans": len(SPANS), "logs": 1, "results": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
