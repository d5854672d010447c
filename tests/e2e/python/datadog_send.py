#!/usr/bin/env python3
"""Source data for the datadog exporter's end-to-end tests, produced with the
REAL OpenTelemetry Python SDK and sent over OTLP/HTTP to confluo.

  datadog_send.py metrics ENDPOINT   two collection cycles (cumulative temporality,
                                     the SDK default) of: a counter, an up-down
                                     counter, a synchronous gauge and a histogram
  datadog_send.py logs ENDPOINT      records through the SDK's logging handler,
                                     one inside a span (trace correlation)

Prints one JSON line with what was recorded, for the Rust test to compare.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry.sdk.resources import Resource

RESOURCE = Resource.create({
    "service.name": "dd-e2e",
    "service.version": "1.2.3",
    "deployment.environment": "test",
    "host.name": "e2e-host",
})


def metrics(endpoint):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter = OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    # A huge interval: collections happen only on force_flush.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    # No collection at exit: exactly the two cycles below are exported.
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader], shutdown_on_exit=False)
    meter = provider.get_meter("dd-e2e-meter", "0.1")
    requests = meter.create_counter("dd.requests", unit="1")
    depth = meter.create_up_down_counter("dd.queue.depth")
    temp = meter.create_gauge("dd.temperature")
    latency = meter.create_histogram("dd.latency", unit="ms")
    attrs = {"route": "/a"}

    requests.add(5, attrs)
    depth.add(10, attrs)
    depth.add(-4, attrs)
    temp.set(21.5, attrs)
    for v in (3.0, 40.0, 400.0):
        latency.record(v, attrs)
    ok1 = provider.force_flush(10_000)
    # Datadog timestamps are seconds: keep the two cycles in different ones.
    time.sleep(1.2)
    requests.add(3, attrs)
    depth.add(1, attrs)
    temp.set(22.5, attrs)
    for v in (7.0, 60.0):
        latency.record(v, attrs)
    ok2 = provider.force_flush(10_000)
    print(json.dumps({
        "ok": bool(ok1 and ok2),
        "requests": [5, 3],
        "queue_depth": [6, 7],
        "temperature": [21.5, 22.5],
        "latency_cycle2": [7.0, 60.0],
        "latency_cycle1": [3.0, 40.0, 400.0],
    }))
    return 0 if ok1 and ok2 else 1


def logs(endpoint):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint + "/v1/logs")))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    log = logging.getLogger("dd-e2e")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)
    tracer = TracerProvider(resource=RESOURCE).get_tracer("dd-e2e")

    log.warning("disk almost full", extra={"disk.free_mb": 12, "mount": "/var"})
    with tracer.start_as_current_span("work") as span:
        ctx = span.get_span_context()
        log.error("request failed")
    log.info("plain info")
    provider.force_flush()
    provider.shutdown()
    print(json.dumps({
        "ok": True,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "messages": ["disk almost full", "request failed", "plain info"],
    }))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("metrics", "logs"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(metrics(sys.argv[2]) if sys.argv[1] == "metrics" else logs(sys.argv[2]))
