"""A span exporter wrapper for the SDK senders: it records which spans the
wrapped OTLP exporter delivered and every failure, so that a sender can print
what it really sent and exit non-zero when an export failed.

A sibling script imports it as `from sdk_recording import Recording` (Python
puts the script's folder first on sys.path).
"""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SpanExportResult


class Recording:
    """Wraps a span exporter: `spans` holds what it delivered, `errors` why
    an export failed (an exception or a non-SUCCESS result)."""

    def __init__(self, inner):
        self.inner = inner
        self.spans = []
        self.errors = []

    def export(self, spans):
        try:
            result = self.inner.export(spans)
        except Exception as e:  # noqa: BLE001 - reported in the JSON line
            self.errors.append(repr(e))
            return SpanExportResult.FAILURE
        if result != SpanExportResult.SUCCESS:
            self.errors.append(f"export result {result}")
        else:
            self.spans.extend(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
