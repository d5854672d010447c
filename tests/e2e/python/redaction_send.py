#!/usr/bin/env python3
"""Send spans and log records full of secrets to confluo with the REAL
OpenTelemetry Python SDK (OTLP/gRPC exporters), for tests/e2e_redaction.rs.

Usage: redaction_send.py --endpoint 127.0.0.1:PORT

The secrets are planted in span attributes (plain, nested in arrays), span
names, event names and attributes, status messages, resource attributes,
log bodies (a string and a structured map with nested maps and lists) and
log attributes. Prints ONE JSON line: {"ok": true, "secrets": [...],
"spans": N, "logs": N}; exit 1 when an export failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Status, StatusCode

CARD = "4111111111111111"
CARD_SPACED = "5555 5555 5555 4444"
EMAIL = "alice.smith@example.com"
BEARER = "sk_live_9f8e7d6c5b4a"
PASSWORD = "hunter2-Correct-Horse"
AWS = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
SECRETS = [CARD, CARD_SPACED, EMAIL, BEARER, PASSWORD, AWS, JWT]
# Kept as it is: an ignored key, and an order id that fails the Luhn check.
IGNORED_VALUE = "ignored " + CARD
ORDER_ID = "4111111111111112"


class Recorder:
    def __init__(self):
        self.results = []


def wrap(inner, rec, base):
    class Wrapped(base):
        def export(self, batch):
            r = inner.export(batch)
            rec.results.append(r)
            return r

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return Wrapped()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

    resource = Resource.create({"service.name": "checkout", "deployment.owner": EMAIL})
    rec = Recorder()

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(
        SimpleSpanProcessor(wrap(OTLPSpanExporter(endpoint=args.endpoint, insecure=True), rec, SpanExporter))
    )
    tracer = tp.get_tracer("redaction.e2e")
    with tracer.start_as_current_span(f"charge {EMAIL}") as span:
        span.set_attribute("payment.card", CARD)
        span.set_attribute("customer.email", EMAIL)
        span.set_attribute("http.request.header.authorization", f"Bearer {BEARER}")
        span.set_attribute("note", f"Authorization: Bearer {BEARER}")
        span.set_attribute("db.password", PASSWORD)
        span.set_attribute("PassWord", PASSWORD)
        span.set_attribute("cards", [CARD_SPACED, "fine"])
        span.set_attribute("aws.key", f"key={AWS}")
        span.set_attribute("session", JWT)
        span.set_attribute("order.id", ORDER_ID)
        span.set_attribute("safe_attribute", IGNORED_VALUE)
        span.set_attribute("url.full", "https://shop.example/orders/12345?card=4111&coupon=X")
        span.add_event(f"mail sent to {EMAIL}", {"to": EMAIL, "card": CARD})
        span.set_status(Status(StatusCode.ERROR, f"declined card {CARD}"))
    tp.shutdown()

    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(
        SimpleLogRecordProcessor(wrap(OTLPLogExporter(endpoint=args.endpoint, insecure=True), rec, LogRecordExporter))
    )
    logger = lp.get_logger("redaction.e2e")
    logger.emit(body=f"user {EMAIL} paid with {CARD} password={PASSWORD}", attributes={"api_key": BEARER})
    logger.emit(
        body={
            "event": "login",
            "user": {"email": EMAIL, "password": PASSWORD, "tokens": [JWT, f"Bearer {BEARER}"]},
            "cards": [CARD, {"backup": CARD_SPACED}],
            "order": ORDER_ID,
        },
        attributes={"safe_attribute": IGNORED_VALUE, "aws": AWS},
    )
    lp.shutdown()

    ok = len(rec.results) == 3 and all(r.name == "SUCCESS" for r in rec.results)
    print(json.dumps({"ok": ok, "secrets": SECRETS, "spans": 1, "logs": 2, "results": [r.name for r in rec.results]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
