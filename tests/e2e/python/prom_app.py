"""A prometheus_client app whose values stand still, for tests/e2e_prometheus.rs.

Serves the same registry on one port: on /metrics the exposition format
follows the Accept header (OpenMetrics when asked for, text 0.0.4
otherwise), as prometheus_client's own handler does; /text always answers
text 0.0.4. Prints "ready <port>" when listening.

usage: prom_app.py PORT
"""
import sys
import time
from http.server import HTTPServer, BaseHTTPRequestHandler

from prometheus_client import (CollectorRegistry, Counter, Enum, Gauge,
                               Histogram, Info, Summary)
from prometheus_client.exposition import choose_encoder

registry = CollectorRegistry(auto_describe=True)

c = Counter("app_requests", "Requests handled.", ["method", "code"], registry=registry)
c.labels("get", "200").inc(7)
c.labels("post", "500").inc(2)
g = Gauge("app_temperature_celsius", "Temperature.", ["room"], registry=registry)
g.labels("kitchen").set(21.5)
g.labels("cellar").set(-3.25)
h = Histogram("app_latency_seconds", "Latency.", buckets=(0.1, 0.5, 1.0), registry=registry)
for v in (0.05, 0.2, 0.3, 0.7, 2.0):
    h.observe(v)
s = Summary("app_payload_bytes", "Payload sizes.", registry=registry)
for v in (100, 250):
    s.observe(v)
i = Info("app_build", "Build information.", registry=registry)
i.info({"version": "1.2.3", "commit": "abc"})
e = Enum("app_state", "State.", states=["starting", "running", "stopped"], registry=registry)
e.state("running")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        # /text always answers text 0.0.4; other paths negotiate.
        accept = "" if self.path.startswith("/text") else self.headers.get("Accept", "")
        encoder, content_type = choose_encoder(accept)
        body = encoder(registry)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    server = HTTPServer(("127.0.0.1", port), Handler)
    print("ready", port, flush=True)
    server.serve_forever()
