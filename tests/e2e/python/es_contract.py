#!/usr/bin/env python3
"""A contract server for Elasticsearch's `_bulk` API, for confluo's e2e tests.

It checks requests against the published protocol strictly and answers the
way Elasticsearch does (elastic/elasticsearch rest-api-spec `bulk.json`,
elasticsearch-specification `_global/bulk`, docs-bulk):

- POST|PUT /_bulk and /{index}/_bulk; query parameters limited to bulk.json's
  (plus the common filter_path / error_trace / human / pretty), anything else
  is 400 "contains unrecognized parameter" as ES answers;
- Content-Type application/x-ndjson or application/json (else 406);
  Content-Encoding gzip honoured (anything but gzip/identity: 400);
- the body must end with "\\n" (else 400 illegal_argument_exception, ES's text);
- every action line is a JSON object with exactly one key, `index` or `create`,
  whose metadata keys are known and which names `_index` (or the URL gives
  one); every action is followed by a source line that is a JSON object —
  otherwise 400 with an ES-shaped error body;
- data streams (`logs-*`, `traces-*`, `metrics-*`) take only `create`.

Per-item behaviour (the document's `message` or `body.text`):
- contains "MAP_ERR"  -> 400 mapper_parsing_exception (every time);
- contains "RETRY429" -> 429 es_rejected_execution_exception, the first time only;
- contains "ITEM500"  -> 500 internal_server_error, the first time only;
- `create` with an `_id` already stored in that index -> 409
  version_conflict_engine_exception.

Whole-request behaviour, from the command line:
- --fail-first N --fail-status S: the first N bulk requests get S (429/503)
  and nothing is stored;
- --fail-after-store N: the first N bulk requests are processed and stored,
  then answered 503 (a response lost on the way back): the client's retry
  must not duplicate documents.
- --api-key K / --basic USER:PASS: require that Authorization (else 401).

Accepted documents are appended to --store FILE (JSONL:
{"index","id","op","source"}); every bulk request is appended to
--requests FILE (JSONL: {"status","items":[{"id","status","message"}],
"content_encoding","content_type","authorization","query"}).
GET / answers a version banner. The first line on stdout is the port.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import string
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

BULK_PARAMS = {
    "refresh", "routing", "timeout", "wait_for_active_shards", "pipeline", "require_alias",
    "require_data_stream", "_source", "_source_excludes", "_source_includes",
    "list_executed_pipelines", "include_source_on_error",
    # common to every API
    "filter_path", "error_trace", "human", "pretty",
}
ACTION_META = {
    "_index", "_id", "routing", "if_seq_no", "if_primary_term", "version", "version_type",
    "pipeline", "require_alias", "dynamic_templates", "require_data_stream", "list_executed_pipelines",
}
BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


def es_error(etype: str, reason: str, status: int) -> dict:
    return {
        "error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason},
        "status": status,
    }


class BadRequest(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(body)
        self.status = status
        self.body = body


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.docs: dict[tuple[str, str], dict] = {}
        self.seen_once: set[tuple[str, str]] = set()
        self.bulk_requests = 0
        self.seq = 0


def doc_message(source: dict) -> str:
    msg = source.get("message")
    if isinstance(msg, str):
        return msg
    body = source.get("body")
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return body["text"]
    if isinstance(source.get("name"), str):  # span documents
        return source["name"]
    if isinstance(source.get("span.name"), str):
        return source["span.name"]
    return ""


def new_id() -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(20))


def check_index_name(name: str) -> None:
    if not name or name != name.lower() or name[0] in "-_+" or any(c in BAD_INDEX_CHARS for c in name):
        raise BadRequest(400, es_error("invalid_index_name_exception", f"Invalid index name [{name}]", 400))


def parse_bulk(body: bytes, url_index: str | None) -> list[tuple[str, dict, dict]]:
    """-> [(op, meta, source)] or BadRequest."""
    if not body.endswith(b"\n"):
        raise BadRequest(400, es_error("illegal_argument_exception",
                                       "The bulk request must be terminated by a newline [\\n]", 400))
    lines = body.split(b"\n")[:-1]
    if not lines:
        raise BadRequest(400, es_error("action_request_validation_exception",
                                       "Validation Failed: 1: no requests added;", 400))
    out = []
    i = 0
    while i < len(lines):
        line_no = i + 1
        try:
            action = json.loads(lines[i])
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(400, es_error("x_content_parse_exception",
                                           f"[{line_no}:1] Malformed action/metadata line [{line_no}]: {e}", 400))
        if not isinstance(action, dict) or len(action) != 1:
            raise BadRequest(400, es_error("illegal_argument_exception",
                                           f"Malformed action/metadata line [{line_no}], expected a single-key object", 400))
        op, meta = next(iter(action.items()))
        if op not in ("index", "create"):
            raise BadRequest(400, es_error("illegal_argument_exception",
                                           f"Action/metadata line [{line_no}] contains an unsupported action [{op}] (this contract server takes index and create)", 400))
        if not isinstance(meta, dict):
            raise BadRequest(400, es_error("illegal_argument_exception",
                                           f"Malformed action/metadata line [{line_no}], expected START_OBJECT", 400))
        for k in meta:
            if k not in ACTION_META:
                raise BadRequest(400, es_error("illegal_argument_exception",
                                               f"Action/metadata line [{line_no}] contains an unknown parameter [{k}]", 400))
        index = meta.get("_index", url_index)
        if not isinstance(index, str):
            raise BadRequest(400, es_error("action_request_validation_exception",
                                           f"Validation Failed: 1: index is missing (line [{line_no}]);", 400))
        check_index_name(index)
        if "_id" in meta and (not isinstance(meta["_id"], str) or not meta["_id"] or len(meta["_id"].encode()) > 512):
            raise BadRequest(400, es_error("action_request_validation_exception",
                                           f"Validation Failed: 1: id is invalid (line [{line_no}]);", 400))
        if i + 1 >= len(lines):
            raise BadRequest(400, es_error("illegal_argument_exception",
                                           f"Action/metadata line [{line_no}] has no source line", 400))
        try:
            source = json.loads(lines[i + 1])
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(400, es_error("x_content_parse_exception",
                                           f"[{line_no + 1}:1] source line is not JSON: {e}", 400))
        if not isinstance(source, dict):
            raise BadRequest(400, es_error("x_content_parse_exception",
                                           f"[{line_no + 1}:1] source line is not a JSON object", 400))
        out.append((op, dict(meta, _index=index), source))
        i += 2
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "es-contract/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def reply(self, status: int, body: dict, extra: dict | None = None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if urlsplit(self.path).path == "/":
            self.reply(200, {
                "name": "es-contract", "cluster_name": "contract", "cluster_uuid": "contract",
                "version": {"number": "8.15.0", "build_flavor": "default", "lucene_version": "9.11.1",
                            "minimum_wire_compatibility_version": "7.17.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "You Know, for Search",
            })
        else:
            self.reply(404, es_error("resource_not_found_exception", f"no handler for GET {self.path}", 404))

    def do_PUT(self):
        self.do_POST()

    def log_request_line(self, entry: dict):
        path = self.state.args.requests
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_POST(self):
        st = self.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = urlsplit(self.path)
        segs = [s for s in parts.path.split("/") if s]
        entry = {
            "path": parts.path, "query": parts.query,
            "content_type": self.headers.get("Content-Type"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "authorization": self.headers.get("Authorization"),
            "items": [],
        }
        try:
            if segs == ["_bulk"]:
                url_index = None
            elif len(segs) == 2 and segs[1] == "_bulk":
                url_index = segs[0]
            else:
                raise BadRequest(404, es_error("resource_not_found_exception", f"no handler for POST {parts.path}", 404))
            for k, _ in parse_qsl(parts.query, keep_blank_values=True):
                if k not in BULK_PARAMS:
                    raise BadRequest(400, es_error("illegal_argument_exception",
                                                   f"request [{parts.path}] contains unrecognized parameter: [{k}]", 400))
            want = None
            if st.args.api_key:
                want = "ApiKey " + st.args.api_key
            elif st.args.basic:
                want = "Basic " + base64.b64encode(st.args.basic.encode()).decode()
            if want and self.headers.get("Authorization") != want:
                raise BadRequest(401, es_error("security_exception",
                                               "missing authentication credentials for REST request [/_bulk]", 401))
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype not in ("application/x-ndjson", "application/json"):
                raise BadRequest(406, {"error": f"Content-Type header [{self.headers.get('Content-Type')}] is not supported",
                                       "status": 406})
            enc = (self.headers.get("Content-Encoding") or "identity").strip().lower()
            if enc == "gzip":
                try:
                    body = gzip.decompress(raw)
                except OSError as e:
                    raise BadRequest(400, es_error("parse_exception", f"invalid gzip body: {e}", 400))
            elif enc == "identity":
                body = raw
            else:
                raise BadRequest(400, es_error("illegal_argument_exception", f"unsupported Content-Encoding [{enc}]", 400))
            actions = parse_bulk(body, url_index)
            with st.lock:
                st.bulk_requests += 1
                n = st.bulk_requests
                if n <= st.args.fail_first:
                    status = st.args.fail_status
                    etype = "es_rejected_execution_exception" if status == 429 else "unavailable_shards_exception"
                    raise BadRequest(status, es_error(etype, f"scripted whole-request failure {n}/{st.args.fail_first}", status))
                items = [self.apply(op, meta, source) for op, meta, source in actions]
                lost = n <= st.args.fail_after_store
            entry["items"] = [
                {"id": it[next(iter(it))].get("_id"), "status": it[next(iter(it))]["status"], "message": doc_message(src)}
                for it, (_, _, src) in zip(items, actions)
            ]
            if lost:
                entry["status"] = 503
                self.log_request_line(entry)
                self.reply(503, es_error("unavailable_shards_exception", "scripted: response lost after storing", 503))
                return
            errors = any(it[next(iter(it))]["status"] >= 300 for it in items)
            entry["status"] = 200
            self.log_request_line(entry)
            self.reply(200, {"took": 1, "errors": errors, "items": items})
        except BadRequest as e:
            entry["status"] = e.status
            entry["error"] = e.body
            self.log_request_line(entry)
            extra = {"Retry-After": "0"} if e.status == 429 else None
            self.reply(e.status, e.body, extra)

    def apply(self, op: str, meta: dict, source: dict) -> dict:
        """One item, under the state lock."""
        st = self.state
        index = meta["_index"]
        doc_id = meta.get("_id")
        msg = doc_message(source)

        def fail(status: int, etype: str, reason: str) -> dict:
            item = {"_index": index, "status": status, "error": {"type": etype, "reason": reason, "index": index}}
            if doc_id is not None:
                item["_id"] = doc_id
            return {op: item}

        if index.split("-")[0] in ("logs", "traces", "metrics") and index.count("-") >= 2 and op != "create":
            return fail(400, "illegal_argument_exception",
                        f"only write ops with an op_type of create are allowed in data streams")
        if "MAP_ERR" in msg:
            return fail(400, "mapper_parsing_exception",
                        "failed to parse field [message] of type [match_only_text] in document: MAP_ERR")
        for marker, status, etype in (("RETRY429", 429, "es_rejected_execution_exception"),
                                      ("ITEM500", 500, "internal_server_error")):
            if marker in msg and (marker, msg) not in st.seen_once:
                st.seen_once.add((marker, msg))
                return fail(status, etype, f"scripted {status} for the first attempt of this document")
        if doc_id is None:
            doc_id = new_id()
        key = (index, doc_id)
        if key in st.docs and op == "create":
            return fail(409, "version_conflict_engine_exception",
                        f"[{doc_id}]: version conflict, document already exists (current version [1])")
        result = "updated" if key in st.docs else "created"
        st.docs[key] = source
        st.seq += 1
        if st.args.store:
            with open(st.args.store, "a") as f:
                f.write(json.dumps({"index": index, "id": doc_id, "op": op, "source": source}) + "\n")
        return {op: {"_index": index, "_id": doc_id, "_version": 1, "result": result,
                     "_shards": {"total": 1, "successful": 1, "failed": 0},
                     "_seq_no": st.seq - 1, "_primary_term": 1, "status": 201 if result == "created" else 200}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", help="JSONL file of accepted documents")
    ap.add_argument("--requests", help="JSONL file of bulk requests and their item statuses")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=429, choices=[429, 503])
    ap.add_argument("--fail-after-store", type=int, default=0)
    ap.add_argument("--api-key")
    ap.add_argument("--basic", help="USER:PASS")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)  # type: ignore[attr-defined]
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
