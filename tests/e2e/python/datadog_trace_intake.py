#!/usr/bin/env python3
"""A Datadog trace-intake contract server for confluo's end-to-end tests.

It shares no code with the exporter. Traces are read with the protobuf wire
reader of protowire.py, by the decoders below written from the field numbers
of DataDog/datadog-agent
pkg/proto/datadog/trace/{agent_payload,tracer_payload,span}.proto:

    AgentPayload  { string hostName = 1; string env = 2; repeated TracerPayload tracerPayloads = 5;
                    map<string,string> tags = 6; string agentVersion = 7; double targetTPS = 8;
                    double errorTPS = 9; bool rareSamplerEnabled = 10; }
    TracerPayload { string containerID = 1; string languageName = 2; string languageVersion = 3;
                    string tracerVersion = 4; string runtimeID = 5; repeated TraceChunk chunks = 6;
                    map<string,string> tags = 7; string env = 8; string hostname = 9; string appVersion = 10; }
    TraceChunk    { int32 priority = 1; string origin = 2; repeated Span spans = 3;
                    map<string,string> tags = 4; bool droppedTrace = 5; }
    Span          { string service = 1; string name = 2; string resource = 3; uint64 traceID = 4;
                    uint64 spanID = 5; uint64 parentID = 6; int64 start = 7; int64 duration = 8;
                    int32 error = 9; map<string,string> meta = 10; map<string,double> metrics = 11;
                    string type = 12; map<string,bytes> meta_struct = 13; repeated SpanLink spanLinks = 14; }

Stats (POST /api/v0.2/stats) are msgpack (the `msgpack` package from PyPI) with
the Go field names of pkg/proto/datadog/trace/stats.proto (StatsPayload,
ClientStatsPayload, ClientStatsBucket, ClientGroupedStats); the OkSummary /
ErrorSummary sketches are parsed with the DDSketch protobuf class that
Datadog's `ddsketch` package ships (ddsketch.pb.ddsketch_pb2).

Checks, each a 400 with the reason (recorded as a violation) when broken:
POST; DD-API-KEY equal to --api-key (403 otherwise); Content-Encoding gzip;
Content-Type application/x-protobuf (traces) / application/msgpack (stats);
X-Datadog-Reported-Languages present on traces; every protobuf field with the
published wire type; spans with non-zero ids, a name, service and resource;
stats with every bucket aligned on its Duration, every grouped stat carrying
the published keys, Errors <= Hits, TopLevelHits <= Hits and sketches whose
counts equal Hits - Errors (ok) and Errors (error).

Scripted answers: the first --fail-first requests get --fail-status (with
Retry-After: --retry-after); a traces request with more than --max-payloads
tracerPayloads gets 413. Otherwise 202 {}.

Every request is appended to the JSONL file given as the first argument:
  {"type": "traces"|"stats", "status": 202, "violations": [...], "headers": {...},
   "payload": {...decoded...}}
The listening port is printed as the first line of stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgpack
from ddsketch.pb import ddsketch_pb2
from protowire import Invalid, fields, signed, utf8, wire_type

MAX_BODY = 64 << 20


# ------------------------------------------------------------------ protobuf


def map_entry(b: bytes, what: str, value_kind: str):
    k, v = "", "" if value_kind == "string" else 0.0
    for num, wt, val in fields(b):
        if num == 1:
            wire_type(wt, 2, what + " key")
            k = utf8(val, what + " key")
        elif num == 2:
            if value_kind == "string":
                wire_type(wt, 2, what + " value")
                v = utf8(val, what + " value")
            else:
                wire_type(wt, 1, what + " value")
                v = struct.unpack("<d", val)[0]
    return k, v


STRING_SPAN = {1: "service", 2: "name", 3: "resource", 12: "type"}
VARINT_SPAN = {4: "trace_id", 5: "span_id", 6: "parent_id", 7: "start", 8: "duration", 9: "error"}


def decode_span(b: bytes) -> dict:
    s = {"service": "", "name": "", "resource": "", "type": "", "trace_id": 0, "span_id": 0,
         "parent_id": 0, "start": 0, "duration": 0, "error": 0, "meta": {}, "metrics": {}}
    for num, wt, v in fields(b):
        if num in STRING_SPAN:
            wire_type(wt, 2, "Span." + STRING_SPAN[num])
            s[STRING_SPAN[num]] = utf8(v, "Span." + STRING_SPAN[num])
        elif num in VARINT_SPAN:
            wire_type(wt, 0, "Span." + VARINT_SPAN[num])
            s[VARINT_SPAN[num]] = signed(v) if num in (7, 8) else v
        elif num == 10:
            wire_type(wt, 2, "Span.meta")
            k, val = map_entry(v, "Span.meta", "string")
            s["meta"][k] = val
        elif num == 11:
            wire_type(wt, 2, "Span.metrics")
            k, val = map_entry(v, "Span.metrics", "double")
            s["metrics"][k] = val
        elif num in (13, 14):
            wire_type(wt, 2, f"Span field {num}")
        else:
            raise Invalid(f"Span: unknown field {num}")
    for req in ("name", "service", "resource"):
        if not s[req]:
            raise Invalid(f"Span without {req}: {s}")
    if s["trace_id"] == 0 or s["span_id"] == 0:
        raise Invalid(f"Span with a zero id: {s}")
    if s["duration"] < 0:
        raise Invalid("negative duration")
    return s


def decode_chunk(b: bytes) -> dict:
    c = {"priority": 0, "origin": "", "spans": [], "tags": {}, "dropped": False}
    for num, wt, v in fields(b):
        if num == 1:
            wire_type(wt, 0, "TraceChunk.priority")
            c["priority"] = signed(v, 64)
        elif num == 2:
            wire_type(wt, 2, "TraceChunk.origin")
            c["origin"] = utf8(v, "origin")
        elif num == 3:
            wire_type(wt, 2, "TraceChunk.spans")
            c["spans"].append(decode_span(v))
        elif num == 4:
            wire_type(wt, 2, "TraceChunk.tags")
            k, val = map_entry(v, "TraceChunk.tags", "string")
            c["tags"][k] = val
        elif num == 5:
            wire_type(wt, 0, "TraceChunk.droppedTrace")
            c["dropped"] = bool(v)
        else:
            raise Invalid(f"TraceChunk: unknown field {num}")
    if not c["spans"]:
        raise Invalid("TraceChunk without spans")
    return c


TRACER_STRINGS = {1: "containerID", 2: "languageName", 3: "languageVersion", 4: "tracerVersion",
                  5: "runtimeID", 8: "env", 9: "hostname", 10: "appVersion"}


def decode_tracer_payload(b: bytes) -> dict:
    t = {k: "" for k in TRACER_STRINGS.values()}
    t["chunks"] = []
    t["tags"] = {}
    for num, wt, v in fields(b):
        if num in TRACER_STRINGS:
            wire_type(wt, 2, "TracerPayload." + TRACER_STRINGS[num])
            t[TRACER_STRINGS[num]] = utf8(v, TRACER_STRINGS[num])
        elif num == 6:
            wire_type(wt, 2, "TracerPayload.chunks")
            t["chunks"].append(decode_chunk(v))
        elif num == 7:
            wire_type(wt, 2, "TracerPayload.tags")
            k, val = map_entry(v, "TracerPayload.tags", "string")
            t["tags"][k] = val
        else:
            raise Invalid(f"TracerPayload: unknown field {num}")
    return t


def decode_agent_payload(b: bytes) -> dict:
    p = {"hostName": "", "env": "", "agentVersion": "", "targetTPS": 0.0, "errorTPS": 0.0,
         "tracerPayloads": [], "tags": {}}
    for num, wt, v in fields(b):
        if num in (1, 2, 7):
            wire_type(wt, 2, f"AgentPayload field {num}")
            p[{1: "hostName", 2: "env", 7: "agentVersion"}[num]] = utf8(v, "AgentPayload")
        elif num in (8, 9):
            wire_type(wt, 1, f"AgentPayload field {num}")
            p[{8: "targetTPS", 9: "errorTPS"}[num]] = struct.unpack("<d", v)[0]
        elif num == 5:
            wire_type(wt, 2, "AgentPayload.tracerPayloads")
            p["tracerPayloads"].append(decode_tracer_payload(v))
        elif num == 6:
            wire_type(wt, 2, "AgentPayload.tags")
            k, val = map_entry(v, "AgentPayload.tags", "string")
            p["tags"][k] = val
        elif num in (10, 11, 12):
            pass
        else:
            raise Invalid(f"AgentPayload: unknown field {num}")
    if not p["hostName"]:
        raise Invalid("AgentPayload without hostName")
    return p


# ------------------------------------------------------------------ stats

GROUP_KEYS = {"Service": str, "Name": str, "Resource": str, "HTTPStatusCode": int, "Type": str,
              "Hits": int, "Errors": int, "Duration": int, "OkSummary": bytes, "ErrorSummary": bytes,
              "Synthetics": bool, "TopLevelHits": int}


def sketch_count(b: bytes, what: str) -> tuple[float, dict]:
    sk = ddsketch_pb2.DDSketch()
    try:
        sk.ParseFromString(b)
    except Exception as e:  # noqa: BLE001 - any parse failure is a violation
        raise Invalid(f"{what}: not a DDSketch protobuf: {e}")
    if not sk.HasField("mapping") or not (1.0 < sk.mapping.gamma < 1.1):
        raise Invalid(f"{what}: missing or odd index mapping gamma {sk.mapping.gamma}")
    pos = sk.positiveValues
    count = sk.zeroCount + sum(pos.contiguousBinCounts) + sum(pos.binCounts.values())
    count += sum(sk.negativeValues.contiguousBinCounts) + sum(sk.negativeValues.binCounts.values())
    bins = {pos.contiguousBinIndexOffset + i: c for i, c in enumerate(pos.contiguousBinCounts) if c}
    bins.update({int(k): c for k, c in pos.binCounts.items()})
    return count, {"gamma": sk.mapping.gamma, "zero": sk.zeroCount, "bins": bins}


def decode_stats(b: bytes) -> dict:
    try:
        p = msgpack.unpackb(b, raw=False, strict_map_key=True)
    except Exception as e:  # noqa: BLE001
        raise Invalid(f"not msgpack: {e}")
    if not isinstance(p, dict):
        raise Invalid("StatsPayload is not a map")
    for k, t in (("AgentHostname", str), ("AgentEnv", str), ("Stats", list), ("AgentVersion", str)):
        if not isinstance(p.get(k), t):
            raise Invalid(f"StatsPayload.{k} missing or not {t.__name__}")
    for csp in p["Stats"]:
        for k, t in (("Hostname", str), ("Env", str), ("Version", str), ("Stats", list)):
            if not isinstance(csp.get(k), t):
                raise Invalid(f"ClientStatsPayload.{k} missing or not {t.__name__}")
        for bucket in csp["Stats"]:
            start, dur = bucket.get("Start"), bucket.get("Duration")
            if not isinstance(start, int) or not isinstance(dur, int) or dur <= 0:
                raise Invalid(f"bucket Start/Duration: {start!r}/{dur!r}")
            if start % dur != 0:
                raise Invalid(f"bucket Start {start} not aligned on {dur}")
            for g in bucket.get("Stats", []):
                for k, t in GROUP_KEYS.items():
                    if not isinstance(g.get(k), t):
                        raise Invalid(f"ClientGroupedStats.{k} missing or not {t.__name__}: {g.get(k)!r}")
                if g["Errors"] > g["Hits"] or g["TopLevelHits"] > g["Hits"]:
                    raise Invalid(f"counts out of order: {g}")
                ok, ok_sk = sketch_count(g["OkSummary"], "OkSummary")
                err, err_sk = sketch_count(g["ErrorSummary"], "ErrorSummary")
                if ok != g["Hits"] - g["Errors"] or err != g["Errors"]:
                    raise Invalid(f"sketch counts {ok}/{err} vs Hits {g['Hits']} Errors {g['Errors']}")
                g["OkSummary"] = ok_sk
                g["ErrorSummary"] = err_sk
    return p


# ------------------------------------------------------------------ server


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.n = 0
        self.out = open(args.record, "a", encoding="utf-8")

    def write(self, obj):
        with self.lock:
            self.out.write(json.dumps(obj, default=str) + "\n")
            self.out.flush()


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def answer(self, status: int, body: str = "{}", headers=None):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):
            self.read()
            self.answer(405, '{"errors":["method not allowed"]}')

        def read(self) -> bytes:
            n = int(self.headers.get("Content-Length", "0"))
            if n > MAX_BODY:
                raise Invalid("body too large")
            return self.rfile.read(n)

        def do_POST(self):
            raw = self.read()
            kind = {"/api/v0.2/traces": "traces", "/api/v0.2/stats": "stats"}.get(self.path)
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "dd-api-key"}
            record = {"type": kind or "unknown", "path": self.path, "headers": headers, "violations": []}
            with state.lock:
                state.n += 1
                n = state.n
            if kind is None:
                record["status"] = 404
                state.write(record)
                return self.answer(404, '{"errors":["not found"]}')
            if self.headers.get("DD-API-KEY") != state.args.api_key:
                record["status"] = 403
                state.write(record)
                return self.answer(403, '{"errors":["Forbidden"]}')
            if n <= state.args.fail_first:
                record["status"] = state.args.fail_status
                state.write(record)
                hdrs = {"Retry-After": state.args.retry_after} if state.args.retry_after else {}
                return self.answer(state.args.fail_status, '{"errors":["scripted"]}', hdrs)
            try:
                if self.headers.get("Content-Encoding") != "gzip":
                    raise Invalid(f"Content-Encoding {self.headers.get('Content-Encoding')!r}, want gzip")
                try:
                    body = gzip.decompress(raw)
                except OSError as e:
                    raise Invalid(f"bad gzip: {e}")
                if kind == "traces":
                    if self.headers.get("Content-Type") != "application/x-protobuf":
                        raise Invalid(f"Content-Type {self.headers.get('Content-Type')!r}")
                    if "X-Datadog-Reported-Languages" not in self.headers:
                        raise Invalid("no X-Datadog-Reported-Languages header")
                    payload = decode_agent_payload(body)
                    if len(payload["tracerPayloads"]) > state.args.max_payloads:
                        record["status"] = 413
                        record["tracer_payloads"] = len(payload["tracerPayloads"])
                        state.write(record)
                        return self.answer(413, '{"errors":["Request Entity Too Large"]}')
                else:
                    if self.headers.get("Content-Type") != "application/msgpack":
                        raise Invalid(f"Content-Type {self.headers.get('Content-Type')!r}")
                    payload = decode_stats(body)
            except Invalid as e:
                record["status"] = 400
                record["violations"].append(str(e))
                state.write(record)
                return self.answer(400, json.dumps({"errors": [str(e)]}))
            record["status"] = 202
            record["payload"] = payload
            state.write(record)
            self.answer(202, "{}")

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", help="JSONL file to append requests to")
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=429)
    ap.add_argument("--retry-after", default="1")
    ap.add_argument("--max-payloads", type=int, default=1 << 30, help="413 above this many tracerPayloads")
    args = ap.parse_args()
    state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
