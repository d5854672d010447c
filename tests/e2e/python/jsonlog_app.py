#!/usr/bin/env python3
"""A small application that logs JSON with a REAL logging library and ships
its lines to confluo's `jsonlog` receiver over HTTP (NDJSON batches POSTed
with urllib), as a sidecar-less app would.

  --lib structlog          structlog: merge_contextvars, add_log_level,
                           TimeStamper(iso, utc), format_exc_info, JSONRenderer;
                           request_id bound with bind_contextvars, user bound
                           with .bind(); inside an OpenTelemetry span, a
                           processor adds its trace_id/span_id.
  --lib python-json-logger python-json-logger's JsonFormatter on a stdlib
                           logging.Handler, asctime in UTC, request_id as extra.

Used by tests/e2e_jsonlog.rs. Prints ONE JSON line on stdout:

  {"ok": true, "lib": "...", "sent": N, "accepted": N, "responses": [...],
   "lines": [ {the JSON object of every line, as the library rendered it,
               plus "_time_ns": the line's time in Unix ns computed here}, ...]}

Exit status: 0 when every POST got 200 and confluo accepted every line; 1 otherwise.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import gzip
import json
import logging
import sys
import time
import urllib.error
import urllib.request


class Shipper:
    """Buffers rendered JSON lines and POSTs them as NDJSON batches."""

    def __init__(self, url: str, batch: int, token: str | None, use_gzip: bool):
        self.url = url
        self.batch = batch
        self.token = token
        self.gzip = use_gzip
        self.buf: list[str] = []
        self.lines: list[str] = []
        self.responses: list[dict] = []
        self.errors: list[str] = []

    # The file-like interface structlog's WriteLogger uses.
    def write(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self.add(line)

    def flush(self) -> None:
        if self.buf:
            self._post(self.buf)
            self.buf = []

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.buf.append(line)
        if len(self.buf) >= self.batch:
            self.flush()

    def _post(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode("utf-8")
        headers = {"Content-Type": "application/x-ndjson"}
        if self.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        except OSError as e:
            self.errors.append(f"POST {self.url}: {e}")
            return
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = {"raw": payload.decode("utf-8", "replace")}
        answer["status"] = status
        answer["lines"] = len(lines)
        self.responses.append(answer)
        if status != 200 or answer.get("accepted") != len(lines):
            self.errors.append(f"HTTP {status}: {answer}")


class HttpNdjsonHandler(logging.Handler):
    """A logging.Handler that ships each formatted record through a Shipper."""

    def __init__(self, shipper: Shipper):
        super().__init__()
        self.shipper = shipper

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.shipper.add(self.format(record))
        except Exception:  # noqa: BLE001 - logging handlers must not raise
            self.handleError(record)

    def flush(self) -> None:
        self.shipper.flush()


def iso_to_ns(text: str) -> int:
    """RFC 3339 / asctime text (UTC) → Unix ns, with exact integer arithmetic."""
    text = text.replace("Z", "+00:00").replace(",", ".")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    secs = calendar.timegm(parsed.utctimetuple())
    return secs * 1_000_000_000 + parsed.microsecond * 1_000


def configure_structlog(shipper: Shipper) -> None:
    """structlog renders JSON lines into `shipper`: level, ISO UTC timestamp,
    the contextvars (request_id) and the current span's trace_id / span_id."""
    import structlog
    from opentelemetry import trace

    def add_otel_ids(_logger, _method, event_dict):
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event_dict["trace_id"] = format(ctx.trace_id, "032x")
            event_dict["span_id"] = format(ctx.span_id, "016x")
        return event_dict

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_otel_ids,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=shipper),
        cache_logger_on_first_use=False,
    )


def python_json_logger(shipper: Shipper) -> tuple[logging.Logger, HttpNdjsonHandler]:
    """The `shop.payments` logger, every level, formatted by python-json-logger
    (asctime in UTC) into `shipper` only."""
    from pythonjsonlogger.json import JsonFormatter

    handler = HttpNdjsonHandler(shipper)
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logger = logging.getLogger("shop.payments")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, handler


def run_structlog(shipper: Shipper, count: int, service: str) -> None:
    import structlog
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("jsonlog_app")

    configure_structlog(shipper)
    log = structlog.get_logger().bind(logger="shop.checkout", service=service)
    for i in range(count):
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=f"req-{i:04d}")
        user_log = log.bind(user_id=1000 + i)
        with tracer.start_as_current_span(f"checkout-{i}"):
            if i % 5 == 4:
                try:
                    raise ValueError(f"card declined #{i}")
                except ValueError:
                    user_log.exception("payment failed", amount=i * 1.5)
            elif i % 3 == 2:
                user_log.warning("cart is large", items=i, tags=["big", "slow"])
            else:
                user_log.info("order placed", order={"id": i, "total": 9.99})


def run_python_json_logger(shipper: Shipper, count: int, service: str) -> None:
    logger, handler = python_json_logger(shipper)
    levels = [logging.INFO, logging.WARNING, logging.ERROR, logging.DEBUG]
    for i in range(count):
        logger.log(
            levels[i % len(levels)],
            "payment %s processed",
            i,
            extra={"request_id": f"pay-{i:04d}", "service": service, "amount": i + 0.5, "cart": {"items": i}},
        )
    handler.flush()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--lib", choices=["structlog", "python-json-logger"], required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--service", default="shop")
    p.add_argument("--token")
    p.add_argument("--gzip", action="store_true")
    args = p.parse_args()

    shipper = Shipper(args.url, args.batch, args.token, args.gzip)
    if args.lib == "structlog":
        run_structlog(shipper, args.count, args.service)
    else:
        run_python_json_logger(shipper, args.count, args.service)
    shipper.flush()

    lines = []
    for raw in shipper.lines:
        obj = json.loads(raw)
        stamp = obj.get("timestamp") or obj.get("asctime")
        obj["_time_ns"] = iso_to_ns(stamp) if stamp else None
        lines.append(obj)
    accepted = sum(r.get("accepted", 0) for r in shipper.responses)
    ok = not shipper.errors and accepted == len(lines) == args.count
    print(
        json.dumps(
            {
                "ok": ok,
                "lib": args.lib,
                "sent": len(lines),
                "accepted": accepted,
                "responses": shipper.responses,
                "errors": shipper.errors,
                "lines": lines,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
