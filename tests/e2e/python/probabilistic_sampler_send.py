#!/usr/bin/env python3
"""Emit traces and logs correlated by trace id with the REAL OpenTelemetry
Python SDK (OTLP/gRPC exporters), for confluo's probabilistic_sampler e2e test.

Each of --count traces has a root span and a child span; inside the child a
log record is emitted through the SDK's LoggingHandler, so it carries the
trace id (and span id) of its trace. Traces and logs may go to different
endpoints (agent / gateway set-ups).

Prints one JSON line: {"ok": bool, "trace_ids": [hex...] (of exported spans,
deduplicated, in order), "log_trace_ids": [hex...] (of exported log records),
"spans": n, "logs": n, "errors": [...]}. Exit status 0 when every export
succeeded and the exporters were handed 2*count spans and count log records.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import warnings


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces-endpoint", required=True, help="host:port (gRPC, plaintext)")
    ap.add_argument("--logs-endpoint", required=True, help="host:port (gRPC, plaintext)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--service", default="sampler-e2e")
    args = ap.parse_args()

    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from opentelemetry.sdk._logs import LoggingHandler

    lock = threading.Lock()
    errors: list[str] = []
    span_ids: list[str] = []
    log_ids: list[str] = []

    def ok(result) -> bool:
        return getattr(result, "name", str(result)) == "SUCCESS"

    class Spans(SpanExporter):
        def __init__(self, inner):
            self.inner = inner

        def export(self, spans):
            r = self.inner.export(spans)
            with lock:
                if ok(r):
                    span_ids.extend(format(s.context.trace_id, "032x") for s in spans)
                else:
                    errors.append(f"span export returned {r!r}")
            return r

        def shutdown(self):
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    class Logs(LogRecordExporter):
        def __init__(self, inner):
            self.inner = inner

        def export(self, batch):
            r = self.inner.export(batch)
            with lock:
                if ok(r):
                    for rec in batch:
                        lr = getattr(rec, "log_record", rec)
                        log_ids.append(format(lr.trace_id or 0, "032x"))
                else:
                    errors.append(f"log export returned {r!r}")
            return r

        def shutdown(self):
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    resource = Resource.create({"service.name": args.service})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(
        BatchSpanProcessor(
            Spans(OTLPSpanExporter(endpoint=args.traces_endpoint, insecure=True)),
            max_queue_size=max(2048, 4 * args.count),
            schedule_delay_millis=200,
        )
    )
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(
        BatchLogRecordProcessor(
            Logs(OTLPLogExporter(endpoint=args.logs_endpoint, insecure=True)),
            max_queue_size=max(2048, 2 * args.count),
            schedule_delay_millis=200,
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.INFO, logger_provider=lp)
    pylog = logging.getLogger("confluo.e2e.sampler")
    pylog.propagate = False
    pylog.setLevel(logging.INFO)
    pylog.addHandler(handler)

    tracer = tp.get_tracer("confluo.e2e.sampler")
    for i in range(args.count):
        with tracer.start_as_current_span(f"request-{i}"):
            with tracer.start_as_current_span(f"work-{i}"):
                pylog.info("handled request %d", i, extra={"request.index": i})

    pylog.removeHandler(handler)
    tp.force_flush(30000)
    lp.force_flush(30000)
    tp.shutdown()
    lp.shutdown()

    trace_ids = list(dict.fromkeys(span_ids))
    good = (
        not errors
        and len(span_ids) == 2 * args.count
        and len(log_ids) == args.count
        and set(trace_ids) == set(log_ids)
    )
    if not good and not errors:
        errors.append(
            f"exporters were handed {len(span_ids)} spans and {len(log_ids)} log records"
        )
    print(
        json.dumps(
            {
                "ok": good,
                "trace_ids": trace_ids,
                "log_trace_ids": log_ids,
                "spans": len(span_ids),
                "logs": len(log_ids),
                "errors": errors,
            }
        )
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
