#!/usr/bin/env python3
"""A Grafana Loki push-API contract server for confluo's end-to-end tests.

It shares no code with the exporter: the body is snappy-BLOCK-decoded with
python-snappy and the protobuf is read with the wire-format reader of
protowire.py, by the decoders below written from the field numbers Loki
publishes in pkg/push/push.proto:

    PushRequest      { repeated StreamAdapter streams = 1; }
    StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
                       repeated LabelPairAdapter structuredMetadata = 3; }   # 4 = parsed: query side only
    LabelPairAdapter { string name = 1; string value = 2; }
    Timestamp        { int64 seconds = 1; int32 nanos = 2; }

Endpoints
  POST /loki/api/v1/push   application/x-protobuf (raw snappy) or application/json
                           (optionally Content-Encoding: gzip)
  POST /otlp/v1/logs       Loki 3 native OTLP (protobuf, optionally gzip): records counted
  POST /control            JSON {"fail_next": N, "status": 429, "retry_after": "1"}
  GET  /stats              JSON counters

Answers as Loki does (docs/sources/reference/loki-http-api.md, pkg/distributor,
pkg/ingester/stream.go, pkg/validation/validate.go):
  204 when every entry was stored;
  400 with Loki's texts when some entries were rejected -- the valid ones are
      STORED first (a 400 is partial), e.g. lines containing REJECT_ME get the
      ingester's "entry with timestamp ... ignored, reason: 'entry too far
      behind ...'" + "user 'T', total ignored: N out of M for stream: {...}";
  400 for malformed requests (bad snappy, bad protobuf, bad selector, labels
      over the limit, numeric JSON timestamps...), nothing stored;
  401 "no org id" without X-Scope-OrgID when --require-tenant;
  scripted 429 / 5xx with Retry-After for the first --fail-first pushes.

Stricter than Loki where the exporter promises more: entries of each stream
must be sorted by timestamp (an unsorted stream is recorded as a violation and
answered 400), and the Content-Type must be explicit.

Every push and every stored entry is appended to the JSONL file given as the
first argument:
  {"type": "push", "n": 1, "status": 204, "tenant": "t", "content_type": ...,
   "content_encoding": ..., "streams": 2, "entries": 10, "rejected": 0,
   "violations": [...], "path": "/loki/api/v1/push"}
  {"type": "entry", "push": 1, "tenant": "t", "labels": {...}, "selector": "{...}",
   "ts": 1700000000000000000, "line": "...", "metadata": {...}}
  {"type": "otlp", "n": 3, "tenant": ..., "records": 5, "bodies": [...], "status": 204}

The listening port is printed as the first line of stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import snappy  # python-snappy: snappy.uncompress is the raw (block) format
from protowire import Invalid as BadRequest, fields, signed, utf8, wire_type

MAX_LABELS = 15  # max_label_names_per_series; service_name not counted
MAX_AGE_NS = 7 * 24 * 3600 * 10**9  # reject_old_samples_max_age
GRACE_NS = 10 * 60 * 10**9  # creation_grace_period
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# ------------------------------------------------------------------ protobuf


def decode_label_pair(buf: bytes) -> tuple[str, str]:
    name = value = ""
    for f, wt, v in fields(buf):
        if f == 1:
            wire_type(wt, 2, "LabelPairAdapter.name")
            name = utf8(v, "label name")
        elif f == 2:
            wire_type(wt, 2, "LabelPairAdapter.value")
            value = utf8(v, "label value")
        else:
            raise BadRequest(f"proto: unknown LabelPairAdapter field {f}")
    return name, value


def decode_timestamp(buf: bytes) -> int:
    seconds = nanos = 0
    for f, wt, v in fields(buf):
        if f == 1:
            wire_type(wt, 0, "Timestamp.seconds")
            seconds = signed(v)
        elif f == 2:
            wire_type(wt, 0, "Timestamp.nanos")
            nanos = signed(v)
        else:
            raise BadRequest(f"proto: unknown Timestamp field {f}")
    if not 0 <= nanos < 10**9:
        raise BadRequest(f"proto: Timestamp.nanos out of range: {nanos}")
    return seconds * 10**9 + nanos


def decode_entry(buf: bytes) -> dict:
    entry = {"ts": None, "line": "", "metadata": []}
    for f, wt, v in fields(buf):
        if f == 1:
            wire_type(wt, 2, "EntryAdapter.timestamp")
            entry["ts"] = decode_timestamp(v)
        elif f == 2:
            wire_type(wt, 2, "EntryAdapter.line")
            entry["line"] = utf8(v, "line")
        elif f == 3:
            wire_type(wt, 2, "EntryAdapter.structuredMetadata")
            entry["metadata"].append(decode_label_pair(v))
        elif f == 4:
            raise BadRequest("proto: EntryAdapter.parsed (4) is query-side only; clients must not send it")
        else:
            raise BadRequest(f"proto: unknown EntryAdapter field {f}")
    if entry["ts"] is None:
        raise BadRequest("proto: entry without timestamp")
    return entry


def decode_push(buf: bytes) -> list[dict]:
    streams = []
    for f, wt, v in fields(buf):
        if f != 1:
            raise BadRequest(f"proto: unexpected PushRequest field {f} (clients send only streams = 1)")
        wire_type(wt, 2, "PushRequest.streams")
        stream = {"labels": None, "entries": []}
        for sf, swt, sv in fields(v):
            if sf == 1:
                wire_type(swt, 2, "StreamAdapter.labels")
                stream["labels"] = utf8(sv, "labels")
            elif sf == 2:
                wire_type(swt, 2, "StreamAdapter.entries")
                stream["entries"].append(decode_entry(sv))
            elif sf == 3:
                wire_type(swt, 0, "StreamAdapter.hash")
            else:
                raise BadRequest(f"proto: unknown StreamAdapter field {sf}")
        if stream["labels"] is None:
            raise BadRequest("proto: stream without labels")
        streams.append(stream)
    return streams


# ------------------------------------------------------------------ selectors
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def parse_selector(s: str) -> list[tuple[str, str]]:
    """A Prometheus-style `{name="value", ...}` as Loki's ParseLabels reads it."""
    s = s.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise BadRequest(f"parse error: labels {s!r} must be enclosed in braces")
    body = s[1:-1]
    out = []
    i = 0
    n = len(body)
    while True:
        while i < n and body[i] in " \t":
            i += 1
        if i >= n:
            break
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", body[i:])
        if not m:
            raise BadRequest(f"parse error: invalid label name at {body[i:i+20]!r} in {s!r}")
        name = m.group(0)
        i += len(name)
        while i < n and body[i] == " ":
            i += 1
        if i >= n or body[i] != "=":
            raise BadRequest(f"parse error: expected '=' after {name!r} in {s!r}")
        i += 1
        while i < n and body[i] == " ":
            i += 1
        if i >= n or body[i] != '"':
            raise BadRequest(f"parse error: expected '\"' for {name!r} in {s!r}")
        i += 1
        value = []
        while True:
            if i >= n:
                raise BadRequest(f"parse error: unterminated quoted string in {s!r}")
            c = body[i]
            if c == "\n":
                raise BadRequest(f"parse error: newline in quoted string in {s!r}")
            if c == '"':
                i += 1
                break
            if c == "\\":
                i += 1
                if i >= n:
                    raise BadRequest("parse error: escape at end")
                e = body[i]
                if e in ESCAPES:
                    value.append(ESCAPES[e])
                    i += 1
                elif e == "x":
                    value.append(chr(int(body[i + 1 : i + 3], 16)))
                    i += 3
                else:
                    raise BadRequest(f"parse error: unknown escape sequence \\{e} in {s!r}")
                continue
            value.append(c)
            i += 1
        out.append((name, "".join(value)))
        while i < n and body[i] == " ":
            i += 1
        if i < n:
            if body[i] != ",":
                raise BadRequest(f"parse error: expected ',' in {s!r}")
            i += 1
    return out


def validate_labels(selector: str) -> dict:
    pairs = parse_selector(selector)
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise BadRequest(f"stream '{selector}' has duplicate label name")
    labels = {k: v for k, v in pairs if v != ""}  # Loki drops empty values
    if not labels:
        raise BadRequest("error at least one label pair is required per stream")
    counted = [k for k in labels if k != "service_name"]
    if len(counted) > MAX_LABELS:
        raise BadRequest(f"entry for stream '{selector}' has {len(counted)} label names; limit {MAX_LABELS}")
    return labels


def go_time(ns: int) -> str:
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)) + f".{frac:09d} +0000 UTC"


# ------------------------------------------------------------------ server
class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.out = open(args.record, "a", encoding="utf-8")
        self.fail_next = args.fail_first
        self.fail_status = args.fail_status
        self.retry_after = args.retry_after
        self.require_tenant = args.require_tenant
        self.pushes = 0
        self.stored = 0
        self.rejected = 0
        self.otlp_records = 0

    def write(self, obj):
        self.out.write(json.dumps(obj, sort_keys=True) + "\n")
        self.out.flush()


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def answer(self, status: int, text: str = "", headers=None):
            body = text.encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if status != 204:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 204:
                self.wfile.write(body)

        def read_body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            if self.path == "/stats":
                with state.lock:
                    s = {
                        "pushes": state.pushes,
                        "stored": state.stored,
                        "rejected": state.rejected,
                        "otlp_records": state.otlp_records,
                    }
                self.answer(200, json.dumps(s))
            elif self.path == "/ready":
                self.answer(200, "ready")
            else:
                self.answer(404, "404 page not found")

        def do_POST(self):
            raw = self.read_body()
            if self.path == "/control":
                c = json.loads(raw or b"{}")
                with state.lock:
                    state.fail_next = int(c.get("fail_next", state.fail_next))
                    state.fail_status = int(c.get("status", state.fail_status))
                    state.retry_after = str(c.get("retry_after", state.retry_after))
                    state.require_tenant = bool(c.get("require_tenant", state.require_tenant))
                self.answer(200, "ok")
                return
            if self.path not in ("/loki/api/v1/push", "/otlp/v1/logs"):
                self.answer(404, "404 page not found")
                return
            tenant = self.headers.get("X-Scope-OrgID")
            with state.lock:
                state.pushes += 1
                n = state.pushes
                record = {
                    "type": "push",
                    "n": n,
                    "at": time.time(),
                    "path": self.path,
                    "tenant": tenant,
                    "content_type": self.headers.get("Content-Type"),
                    "content_encoding": self.headers.get("Content-Encoding"),
                    "bytes": len(raw),
                    "violations": [],
                }
                if state.fail_next > 0:
                    state.fail_next -= 1
                    record["status"] = state.fail_status
                    state.write(record)
                    hdrs = {"Retry-After": state.retry_after} if state.retry_after else {}
                    text = "Ingestion rate limit exceeded" if state.fail_status == 429 else "internal server error"
                    self.answer(state.fail_status, text, hdrs)
                    return
                if state.require_tenant and not tenant:
                    record["status"] = 401
                    state.write(record)
                    self.answer(401, "no org id")
                    return
                if tenant and "|" in tenant:
                    record["status"] = 400
                    state.write(record)
                    self.answer(400, "multiple org IDs present")
                    return
            try:
                if self.path == "/otlp/v1/logs":
                    self.otlp(raw, record, tenant)
                else:
                    self.push(raw, record, tenant or "fake")
            except BadRequest as e:
                with state.lock:
                    record["status"] = 400
                    record["error"] = str(e)
                    state.write(record)
                self.answer(400, str(e))

        def body_bytes(self, raw: bytes, allowed_encodings) -> bytes:
            enc = (self.headers.get("Content-Encoding") or "").strip().lower()
            if enc not in allowed_encodings:
                raise BadRequest(f'Content-Encoding "{enc}" not supported')
            if enc == "gzip":
                try:
                    return gzip.decompress(raw)
                except OSError as e:
                    raise BadRequest(f"gzip: {e}") from None
            return raw

        def push(self, raw: bytes, record: dict, tenant: str):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/json":
                streams = self.decode_json(self.body_bytes(raw, ("", "gzip")))
            elif ctype == "application/x-protobuf":
                # Loki ignores Content-Encoding: snappy and always raw-snappy-decodes protobuf.
                data = self.body_bytes(raw, ("", "snappy"))
                try:
                    data = snappy.uncompress(data)
                except Exception as e:  # noqa: BLE001
                    raise BadRequest(f"snappy: corrupt input: {e}") from None
                streams = decode_push(data)
            else:
                raise BadRequest(f"contract: Content-Type must be application/x-protobuf or application/json, got {ctype!r}")
            now = time.time_ns()
            errors = []
            ingester_errors = []
            stored = []
            total = 0
            for st in streams:
                entries = st["entries"]
                total += len(entries)
                try:
                    labels = validate_labels(st["labels"])
                except BadRequest as e:
                    # As the distributor: this stream is refused, the others stored.
                    errors.append(str(e))
                    continue
                ts = [e["ts"] for e in entries]
                if ts != sorted(ts):
                    record["violations"].append(f"entries of stream {st['labels']} are not sorted by timestamp")
                ignored = []
                for e in entries:
                    for name, _ in e["metadata"]:
                        if not LABEL_NAME.match(name):
                            record["violations"].append(f"structured metadata name {name!r} is not a valid label name")
                    if e["ts"] < now - MAX_AGE_NS:
                        errors.append(
                            f"entry for stream '{st['labels']}' has timestamp too old: {go_time(e['ts'])}, "
                            f"oldest acceptable timestamp is: {go_time(now - MAX_AGE_NS)}"
                        )
                        continue
                    if e["ts"] > now + GRACE_NS:
                        errors.append(f"entry for stream '{st['labels']}' has timestamp too new: {go_time(e['ts'])}")
                        continue
                    if "REJECT_ME" in e["line"]:
                        ignored.append(e)
                        continue
                    stored.append((st["labels"], labels, e))
                if ignored:
                    msg = "".join(
                        f"entry with timestamp {go_time(e['ts'])} ignored, reason: 'entry too far behind, "
                        f"entry timestamp is: {go_time(e['ts'])}, oldest acceptable timestamp is: {go_time(now)}',\n"
                        for e in ignored
                    )
                    msg += f"user '{tenant}', total ignored: {len(ignored)} out of {len(entries)} for stream: {st['labels']}"
                    ingester_errors.append(msg)
            if record["violations"]:
                # Contract violations: nothing stored, so the test sees them.
                raise BadRequest("contract: " + "; ".join(record["violations"][:5]))
            with state.lock:
                for selector, labels, e in stored:
                    state.write(
                        {
                            "type": "entry",
                            "push": record["n"],
                            "tenant": tenant,
                            "selector": selector,
                            "labels": labels,
                            "ts": e["ts"],
                            "line": e["line"],
                            "metadata": dict(e["metadata"]),
                        }
                    )
                state.stored += len(stored)
                rejected = total - len(stored)
                state.rejected += rejected
                record.update(streams=len(streams), entries=total, rejected=rejected)
                text = "\n".join(errors + ingester_errors)
                record["status"] = 400 if text else 204
                state.write(record)
            if text:
                self.answer(400, text)
            else:
                self.answer(204)

        def decode_json(self, data: bytes) -> list[dict]:
            try:
                doc = json.loads(data)
            except ValueError as e:
                raise BadRequest(f"loghttp: invalid JSON: {e}") from None
            streams = []
            for st in doc.get("streams", []):
                labels = st.get("stream")
                if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                    raise BadRequest("loghttp: stream must be an object of strings")
                for k in labels:
                    if not LABEL_NAME.match(k):
                        raise BadRequest(f"loghttp: invalid label name {k!r}")
                selector = "{" + ", ".join(f'{k}="{json.dumps(v)[1:-1]}"' for k, v in sorted(labels.items())) + "}"
                entries = []
                for v in st.get("values", []):
                    if not isinstance(v, list) or len(v) not in (2, 3):
                        raise BadRequest("loghttp: values must be [ts, line] or [ts, line, {metadata}]")
                    if not isinstance(v[0], str):
                        raise BadRequest("loghttp: timestamp must be a string of unix nanoseconds")
                    if not isinstance(v[1], str):
                        raise BadRequest("loghttp: line must be a string")
                    meta = v[2] if len(v) == 3 else {}
                    if not isinstance(meta, dict) or not all(isinstance(x, str) for x in meta.values()):
                        raise BadRequest("loghttp: structured metadata must be an object of strings")
                    entries.append({"ts": int(v[0]), "line": v[1], "metadata": list(meta.items())})
                streams.append({"labels": selector, "entries": entries})
            return streams

        def otlp(self, raw: bytes, record: dict, tenant):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/x-protobuf":
                raise BadRequest(f"contract: OTLP Content-Type must be application/x-protobuf, got {ctype!r}")
            data = self.body_bytes(raw, ("", "gzip"))
            records = 0
            bodies = []
            services = []
            # ExportLogsServiceRequest.resource_logs = 1 -> ResourceLogs{resource = 1, scope_logs = 2}
            # -> ScopeLogs{log_records = 2} -> LogRecord{body = 5: AnyValue{string_value = 1}}
            for f, wt, rl in fields(data):
                if f != 1:
                    continue
                wire_type(wt, 2, "resource_logs")
                for rf, _, rv in fields(rl):
                    if rf == 1:  # Resource{attributes = 1: KeyValue{key = 1, value = 2}}
                        for af, _, kv in fields(rv):
                            if af != 1:
                                continue
                            key = val = None
                            for kf, _, x in fields(kv):
                                if kf == 1:
                                    key = utf8(x, "key")
                                elif kf == 2:
                                    for vf, _, y in fields(x):
                                        if vf == 1:
                                            val = utf8(y, "value")
                            if key == "service.name":
                                services.append(val)
                    if rf != 2:
                        continue
                    for sf, _, sv in fields(rv):
                        if sf != 2:
                            continue
                        records += 1
                        for lf, _, lv in fields(sv):
                            if lf == 5:
                                for bf, _, bv in fields(lv):
                                    if bf == 1:
                                        bodies.append(utf8(bv, "body"))
            with state.lock:
                state.otlp_records += records
                record.update(type="otlp", records=records, bodies=bodies, services=services, status=204)
                state.write(record)
            self.answer(204)  # Loki answers 204 here too, not OTLP's 200

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", help="JSONL file to append pushes and stored entries to")
    ap.add_argument("--fail-first", type=int, default=0, help="answer the first N pushes with --fail-status")
    ap.add_argument("--fail-status", type=int, default=429)
    ap.add_argument("--retry-after", default="1", help="Retry-After of scripted failures ('' for none)")
    ap.add_argument("--require-tenant", action="store_true", help="401 without X-Scope-OrgID (auth_enabled)")
    args = ap.parse_args()
    state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
