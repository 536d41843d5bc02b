#!/usr/bin/env python3
"""A webhook receiver for posthaste's interop suite (scripts/interop.sh).

Verifies every request it receives -- first attempts and retries -- with the independent
`standardwebhooks` package from PyPI, the Standard Webhooks reference verifier, using the secret
in $WEBHOOK_SECRET. A gzip body is decompressed first (the signature covers the uncompressed
body). Answers 401 when verification fails, 503 to the first attempt of every message whose
path starts with /flaky (so posthaste retries it), 200 otherwise. `GET /log` returns one JSON
record per request: path, webhook-id, timestamp, attempt number, verified or not and why.

    WEBHOOK_SECRET=whsec_... python3 scripts/webhook_receiver.py PORT_FILE

Listens on 127.0.0.1 on a free port and writes the port to PORT_FILE.
"""
import gzip
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

HOOK = Webhook(os.environ["WEBHOOK_SECRET"])
LOCK = threading.Lock()
LOG = []
ATTEMPTS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        headers = dict(self.headers.items())
        try:
            HOOK.verify(body, headers)
            verified, why = True, ""
        except Exception as e:  # WebhookVerificationError, or a malformed header
            verified, why = False, f"{type(e).__name__}: {e}"
        msg_id = self.headers.get("webhook-id")
        with LOCK:
            attempt = ATTEMPTS.get(msg_id, 0) + 1
            ATTEMPTS[msg_id] = attempt
            LOG.append({
                "path": self.path,
                "id": msg_id,
                "timestamp": self.headers.get("webhook-timestamp"),
                "attempt": attempt,
                "verified": verified,
                "why": why,
                "events": len(json.loads(body)) if body.startswith(b"[") else 1,
            })
        if not verified:
            self.answer(401, why.encode())
        elif self.path.startswith("/flaky") and attempt == 1:
            self.answer(503)
        else:
            self.answer(200)

    def do_GET(self):
        if self.path != "/log":
            return self.answer(404)
        with LOCK:
            data = json.dumps(LOG).encode()
        self.answer(200, data)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
