#!/usr/bin/env python3
"""A small traced web service for the logs-path e2e test (tests/e2e_logs_path.rs).

It handles --requests fake requests the way an instrumented Python service
does: the REAL OpenTelemetry SDK traces each request (a SERVER span carrying
the request id, exported over OTLP/gRPC by a BatchSpanProcessor) and a REAL
JSON logging library writes the logs, which are shipped as NDJSON to
confluo's `jsonlog` receiver (the Shipper of jsonlog_app.py).

  --lib structlog           service "shop-checkout". structlog with
                            merge_contextvars (request_id bound with
                            bind_contextvars), add_log_level,
                            TimeStamper(iso, utc), a processor adding
                            trace_id/span_id of the CURRENT OTel span,
                            format_exc_info, JSONRenderer. Lines logged
                            inside a span carry its ids; lines logged before
                            the span starts or after it ends (middleware)
                            carry only request_id. The server span has
                            http.request.header.x-request-id = [rid].
  --lib python-json-logger  service "shop-payments" (spans only: the log
                            lines name no service). JsonFormatter on a
                            stdlib handler, request_id and user fields as
                            `extra`; no trace context in any line. The server
                            span has the attribute request_id = rid.

Order, as in production: a request's logs are shipped before its spans (the
BatchSpanProcessor exports only when flushed), then a late audit line per
request is shipped after the spans. --orphans requests are logged but never
traced (health checks): their lines must stay unjoined.

Prints ONE JSON line:
  {"ok": bool, "lib": ..., "service": ..., "errors": [...],
   "spans": [{"request_id", "name", "kind", "trace_id", "span_id", "parent_span_id"}],
   "lines": [the JSON object of every shipped line as rendered, plus
             "_time_ns": its time in Unix ns]}
Exit status 0 when every POST and every span export succeeded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from jsonlog_app import Shipper, configure_structlog, iso_to_ns, python_json_logger
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


class RecordingExporter(SpanExporter):
    """Forwards to the OTLP exporter and remembers what was exported."""

    def __init__(self, inner: OTLPSpanExporter, errors: list[str]):
        self.inner = inner
        self.errors = errors
        self.sent = []

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.sent.extend(spans)
        else:
            self.errors.append(f"span export returned {result!r}")
        return result

    def shutdown(self):
        self.inner.shutdown()


def span_row(span) -> dict:
    ctx = span.get_span_context()
    return {
        # Only server spans carry the request id; children are tied by trace id.
        "request_id": span.attributes.get("request_id")
        or (span.attributes.get("http.request.header.x-request-id") or [None])[0],
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else "",
    }


def run_structlog(shipper: Shipper, tracer, flush_spans, args) -> None:
    import structlog

    configure_structlog(shipper)
    base = structlog.get_logger().bind(logger="shop.checkout", service="shop-checkout")
    rids = [f"chk-{i:03d}" for i in range(args.requests)]
    for i, rid in enumerate(rids):
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        log = base.bind(user_id=4200 + i, user={"tier": "gold" if i % 2 else "free", "country": "PT"})
        log.info("request received", path="/checkout", method="POST")
        with tracer.start_as_current_span(
            "POST /checkout",
            kind=SpanKind.SERVER,
            attributes={"http.request.header.x-request-id": (rid,), "http.route": "/checkout"},
        ) as server:
            log.info("cart loaded", items=i + 1, total=round(9.99 * (i + 1), 2))
            with tracer.start_as_current_span("charge card"):
                log.warning("card needs 3-D Secure", attempt=2, tags=["3ds", "slow"])
            if i % 3 == 2:
                try:
                    raise ValueError(f"card declined for {rid}")
                except ValueError:
                    log.exception("payment failed")
                server.set_status(Status(StatusCode.ERROR))
        log.info("response sent", status=402 if i % 3 == 2 else 200)
    for k in range(args.orphans):
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=f"chk-orphan-{k}")
        base.info("health check", path="/healthz")
    shipper.flush()
    flush_spans()
    for rid in rids:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        base.info("audit record written", audit={"kind": "checkout"})
    shipper.flush()


def run_python_json_logger(shipper: Shipper, tracer, flush_spans, args) -> None:
    logger, handler = python_json_logger(shipper)
    rids = [f"pay-{i:03d}" for i in range(args.requests)]
    for i, rid in enumerate(rids):
        user = {"request_id": rid, "customer_id": f"cus_{i:04d}", "user_id": 9100 + i}
        logger.info("payment requested", extra=dict(user, amount=10 + i + 0.25))
        with tracer.start_as_current_span(
            "POST /payments", kind=SpanKind.SERVER, attributes={"request_id": rid, "http.route": "/payments"}
        ):
            logger.info("calling the acquirer", extra=dict(user, acquirer="acme", cart={"items": i + 1}))
            level = logging.ERROR if i % 2 else logging.WARNING
            logger.log(level, "acquirer answered slowly", extra=dict(user, latency_ms=800 + i))
        logger.debug("payment settled", extra=user)
    for k in range(args.orphans):
        logger.info("health check", extra={"request_id": f"pay-orphan-{k}"})
    handler.flush()
    flush_spans()
    for rid in rids:
        logger.info("audit record written", extra={"request_id": rid, "audit": {"kind": "payment"}})
    handler.flush()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jsonlog-url", required=True)
    p.add_argument("--otlp-endpoint", required=True, help="127.0.0.1:PORT (OTLP/gRPC)")
    p.add_argument("--lib", choices=["structlog", "python-json-logger"], required=True)
    p.add_argument("--requests", type=int, default=4)
    p.add_argument("--orphans", type=int, default=2)
    p.add_argument("--batch", type=int, default=5, help="lines per POST")
    args = p.parse_args()

    service = "shop-checkout" if args.lib == "structlog" else "shop-payments"
    errors: list[str] = []
    exporter = RecordingExporter(OTLPSpanExporter(endpoint=args.otlp_endpoint, insecure=True, timeout=10), errors)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # A long schedule: spans leave only when flushed, after the request's logs.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    tracer = provider.get_tracer("logs_path_app")

    def flush_spans():
        if not provider.force_flush(15_000):
            errors.append("span flush timed out")

    shipper = Shipper(args.jsonlog_url, args.batch, None, use_gzip=False)
    try:
        if args.lib == "structlog":
            run_structlog(shipper, tracer, flush_spans, args)
        else:
            run_python_json_logger(shipper, tracer, flush_spans, args)
    except Exception as e:  # noqa: BLE001 - reported in the JSON line
        errors.append(f"{type(e).__name__}: {e}")
    provider.shutdown()
    errors.extend(shipper.errors)

    lines = []
    for raw in shipper.lines:
        obj = json.loads(raw)
        obj["_time_ns"] = iso_to_ns(obj.get("timestamp") or obj["asctime"])
        lines.append(obj)
    out = {
        "ok": not errors,
        "lib": args.lib,
        "service": service,
        "errors": errors,
        "spans": [span_row(s) for s in exporter.sent],
        "lines": lines,
    }
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
