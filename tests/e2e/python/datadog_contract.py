#!/usr/bin/env python3
"""A Datadog intake contract server (metrics series v2, sketches, logs v2)
for confluo's end-to-end tests. It shares no code with the exporter:

* Series v2 (POST /api/v2/series) and logs (POST /api/v2/logs) bodies are
  deserialized by Datadog's own model classes from `datadog-api-client`
  (MetricPayload, HTTPLogItem) with type checking on. The client marks
  invalid nested data as "unparsed" instead of raising, so the server walks
  the result and rejects unparsed models, unknown fields (not in a model's
  attribute map) and mistyped fields with 400, as the intake does.
* Sketches (POST /api/beta/sketches) are read with protowire.py's wire
  reader by the decoders below, written from DataDog/agent-payload
  proto/metrics/agent_payload.proto:

    SketchPayload { repeated Sketch sketches = 1; CommonMetadata metadata = 2; }
    Sketch        { string metric = 1; string host = 2; repeated Distribution
                    distributions = 3; repeated string tags = 4;
                    repeated Dogsketch dogsketches = 7; }
    Dogsketch     { int64 ts = 1; int64 cnt = 2; double min = 3; double max = 4;
                    double avg = 5; double sum = 6; repeated sint32 k = 7;
                    repeated uint32 n = 8; }

  and checked: keys sorted, counts summing to cnt, min <= avg <= max.

Answers as the intake does: 202 `{"errors":[]}`; 403 without the right
DD-API-KEY; 400 for invalid payloads; 413 when a decompressed body is over
the published limit (series/sketches 5 MiB, logs 5 MB) or a logs array holds
more than 1000 items; scripted answers (e.g. 429 with Retry-After, 500, 400,
413) for the first requests of a route with --script ROUTE=STATUS,STATUS,...

Every request and every accepted element is appended to the JSONL file given
as the first argument:
  {"type": "request", "path": ..., "status": 202, "encoding": "gzip", "items": N, "reason": ...}
  {"type": "series", "metric": ..., "type_": 1, "points": [[ts, v]], "host": ..., "tags": [...]}
  {"type": "sketch", "metric": ..., "host": ..., "tags": [...], "dogsketches": [...]}
  {"type": "log", "item": {...}}

The listening port is printed as the first line of stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from datadog_api_client.configuration import Configuration
from datadog_api_client.model_utils import OpenApiModel, validate_and_convert_types
from datadog_api_client.v2.model.http_log_item import HTTPLogItem
from datadog_api_client.v2.model.metric_payload import MetricPayload
from protowire import Invalid, fields, read_varint, signed

SERIES_LIMIT = 5 * 1024 * 1024
LOGS_LIMIT = 5_000_000
LOGS_MAX_ITEMS = 1000
LOG_ITEM_LIMIT = 1_000_000
MAX_WIRE = 64 << 20

CONFIG = Configuration()


# ------------------------------------------------------------ model checking

def check_model(m, path):
    """Rejects what the client let through as 'unparsed' (wrong types,
    invalid enum values, missing required fields), at any depth."""
    if isinstance(m, list):
        for i, x in enumerate(m):
            check_model(x, f"{path}[{i}]")
        return
    if not isinstance(m, OpenApiModel):
        return
    if getattr(m, "_unparsed", False):
        raise Invalid(f"{path}: does not match {type(m).__name__}")
    for key, value in getattr(m, "_data_store", {}).items():
        check_model(value, f"{path}.{key}")


def strict(body, model, raw):
    """Deserializes with the client's type checks, then checks unknown keys
    against the raw JSON (the client keeps unknown keys as extra data)."""
    try:
        m = validate_and_convert_types(body, (model,), ["body"], True, True, CONFIG)
    except Exception as e:  # ApiTypeError / ApiValueError
        raise Invalid(str(e))
    check_model(m, "body")
    check_unknown(raw, model, "body")
    return m


def check_unknown(raw, model, path):
    if not isinstance(raw, dict):
        return
    amap = model.attribute_map
    if model.__name__ != "HTTPLogItem":
        for k in raw:
            if k not in amap.values():
                raise Invalid(f"{path}: unknown field {k!r} in {model.__name__}")
    types = model.openapi_types
    for attr, key in amap.items():
        if key not in raw:
            continue
        t = types[attr][0]
        if isinstance(t, list):
            inner = t[0]
            if isinstance(inner, type) and issubclass(inner, OpenApiModel) and hasattr(inner, "attribute_map"):
                for i, x in enumerate(raw[key] or []):
                    check_unknown(x, inner, f"{path}.{key}[{i}]")
        elif isinstance(t, type) and issubclass(t, OpenApiModel) and hasattr(t, "attribute_map"):
            check_unknown(raw[key], t, f"{path}.{key}")


# ------------------------------------------------------------ protobuf reader

def zigzag(v):
    return (v >> 1) ^ -(v & 1)


def packed(v, wt, conv):
    if wt == 0:
        return [conv(v)]
    out = []
    i = 0
    while i < len(v):
        x, i = read_varint(v, i)
        out.append(conv(x))
    return out


def double(v, wt):
    if wt != 1:
        raise Invalid("expected a double (wire type 1)")
    return struct.unpack("<d", v)[0]


def decode_dogsketch(b):
    d = {"ts": 0, "cnt": 0, "min": 0.0, "max": 0.0, "avg": 0.0, "sum": 0.0, "k": [], "n": []}
    for num, wt, v in fields(b):
        if num == 1 and wt == 0:
            d["ts"] = signed(v)
        elif num == 2 and wt == 0:
            d["cnt"] = signed(v)
        elif num in (3, 4, 5, 6):
            d[{3: "min", 4: "max", 5: "avg", 6: "sum"}[num]] = double(v, wt)
        elif num == 7:
            d["k"] += packed(v, wt, zigzag)
        elif num == 8:
            d["n"] += packed(v, wt, lambda x: x)
        else:
            raise Invalid(f"unexpected Dogsketch field {num}")
    return d


def decode_sketch(b):
    s = {"metric": "", "host": "", "tags": [], "dogsketches": []}
    for num, wt, v in fields(b):
        if wt != 2:
            raise Invalid(f"Sketch field {num}: wire type {wt}")
        if num == 1:
            s["metric"] = v.decode("utf-8")
        elif num == 2:
            s["host"] = v.decode("utf-8")
        elif num == 4:
            s["tags"].append(v.decode("utf-8"))
        elif num == 7:
            s["dogsketches"].append(decode_dogsketch(v))
        elif num == 3:
            raise Invalid("legacy distributions are not expected")
        else:
            raise Invalid(f"unexpected Sketch field {num}")
    return s


def decode_sketch_payload(b):
    out = []
    for num, wt, v in fields(b):
        if num == 1 and wt == 2:
            out.append(decode_sketch(v))
        elif num == 2 and wt == 2:
            pass  # CommonMetadata
        else:
            raise Invalid(f"unexpected SketchPayload field {num}")
    for s in out:
        if not s["metric"]:
            raise Invalid("sketch without a metric name")
        for d in s["dogsketches"]:
            if len(d["k"]) != len(d["n"]):
                raise Invalid("k and n differ in length")
            if any(a > b for a, b in zip(d["k"], d["k"][1:])):
                raise Invalid("keys not sorted")
            if any(n > 0xFFFF for n in d["n"]):
                raise Invalid("a bin count over uint16")
            if d["cnt"] <= 0:
                raise Invalid("sketch with no values")
            if not (d["min"] <= d["max"]):
                raise Invalid("min > max")
    return out


# ------------------------------------------------------------ server

class State:
    def __init__(self, record, api_key, script):
        self.lock = threading.Lock()
        self.record = open(record, "a", buffering=1)
        self.api_key = api_key
        self.script = script

    def write(self, row):
        with self.lock:
            self.record.write(json.dumps(row) + "\n")

    def scripted(self, path):
        with self.lock:
            q = self.script.get(path)
            if q:
                return q.pop(0)
        return None


STATE: State | None = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, reason=None, items=0, encoding=None, headers=()):
        STATE.write({"type": "request", "path": self.path, "status": status,
                     "encoding": encoding, "items": items, "reason": reason,
                     "content_type": self.headers.get("Content-Type")})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_WIRE:
            self.answer(413, {"errors": ["Request Entity Too Large"]}, "wire size")
            return
        raw = self.rfile.read(n)
        enc = self.headers.get("Content-Encoding")
        path = self.path.split("?")[0]
        if self.headers.get("DD-API-KEY") != STATE.api_key:
            self.answer(403, {"errors": ["Forbidden"]}, "api key", encoding=enc)
            return
        try:
            if enc in (None, "", "identity"):
                body = raw
            elif enc == "gzip":
                body = gzip.decompress(raw)
            elif enc == "deflate":
                body = zlib.decompress(raw)
            else:
                self.answer(415, {"errors": [f"unsupported encoding {enc}"]}, "encoding", encoding=enc)
                return
        except Exception as e:
            self.answer(400, {"errors": [f"bad {enc} body: {e}"]}, "decompress", encoding=enc)
            return
        scripted = STATE.scripted(path)
        if scripted is not None:
            headers = [("Retry-After", "1")] if scripted == 429 else []
            self.answer(scripted, {"errors": [f"scripted {scripted}"]}, "scripted", encoding=enc, headers=headers)
            return
        try:
            if path == "/api/v2/series":
                self.series(body, enc)
            elif path == "/api/beta/sketches":
                self.sketches(body, enc)
            elif path == "/api/v2/logs":
                self.logs(body, enc)
            else:
                self.answer(404, {"errors": ["Not Found"]}, "path", encoding=enc)
        except Invalid as e:
            self.answer(400, {"errors": [str(e)]}, f"invalid: {e}", encoding=enc)

    def series(self, body, enc):
        if self.headers.get("Content-Type") != "application/json":
            raise Invalid("Content-Type must be application/json")
        if len(body) > SERIES_LIMIT:
            self.answer(413, {"errors": ["Payload too large"]}, "too large", encoding=enc)
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise Invalid(f"not JSON: {e}")
        if not isinstance(doc, dict):
            raise Invalid("body must be an object")
        m = strict(doc, MetricPayload, doc)
        rows = []
        for s in m.series:
            host = next((r.name for r in getattr(s, "resources", []) if r.type == "host"), None)
            rows.append({"type": "series", "metric": s.metric, "type_": int(s.type.value),
                         "points": [[p.timestamp, p.value] for p in s.points],
                         "host": host, "tags": list(getattr(s, "tags", []))})
        for r in rows:
            STATE.write(r)
        self.answer(202, {"errors": []}, items=len(rows), encoding=enc)

    def sketches(self, body, enc):
        if self.headers.get("Content-Type") != "application/x-protobuf":
            raise Invalid("Content-Type must be application/x-protobuf")
        if len(body) > SERIES_LIMIT:
            self.answer(413, {"errors": ["Payload too large"]}, "too large", encoding=enc)
            return
        out = decode_sketch_payload(body)
        for s in out:
            STATE.write({"type": "sketch", **s})
        self.answer(202, {"errors": []}, items=len(out), encoding=enc)

    def logs(self, body, enc):
        if len(body) > LOGS_LIMIT:
            self.answer(413, {"errors": ["Payload too large"]}, "too large", encoding=enc)
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise Invalid(f"not JSON: {e}")
        if not isinstance(doc, list):
            raise Invalid("body must be a JSON array")
        if len(doc) > LOGS_MAX_ITEMS:
            self.answer(413, {"errors": ["Too many items"]}, "too many items", encoding=enc)
            return
        items = []
        for i, raw in enumerate(doc):
            if not isinstance(raw, dict):
                raise Invalid(f"item {i} is not an object")
            if len(json.dumps(raw, ensure_ascii=False).encode()) > LOG_ITEM_LIMIT + 1000:
                raise Invalid(f"item {i} over 1 MB")
            strict(raw, HTTPLogItem, raw)
            items.append(raw)
        for it in items:
            STATE.write({"type": "log", "item": it})
        self.answer(202, {"errors": []}, items=len(items), encoding=enc)


def main():
    global STATE
    ap = argparse.ArgumentParser()
    ap.add_argument("record")
    ap.add_argument("--api-key", default="test-key")
    ap.add_argument("--script", action="append", default=[],
                    help="PATH=STATUS,STATUS,... answered to the first requests of PATH")
    args = ap.parse_args()
    script = {}
    for s in args.script:
        path, _, statuses = s.partition("=")
        script[path] = [int(x) for x in statuses.split(",") if x]
    STATE = State(args.record, args.api_key, script)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
