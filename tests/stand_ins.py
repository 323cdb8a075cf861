"""Local protocol peers for tests: an HTTP webhook receiver that behaves like a careful integrator."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """Records signed deliveries; applies each Idempotency-Key once; can fail on demand."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.requests: list[dict] = []
        self.applied: dict[str, dict] = {}
        self.fail_next: list[int] = []  # status codes to answer with, one per request
        self.hold_first = 0.0  # seconds to sit on the first request after applying it (a slow vendor)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    record = {"key": self.headers.get("idempotency-key"), "body": json.loads(body),
                              "signature_ok": hmac.compare_digest(expected, self.headers.get("x-otklik-signature", "")),
                              "attempt": self.headers.get("x-otklik-attempt")}
                    receiver.requests.append(record)
                    status = receiver.fail_next.pop(0) if receiver.fail_next else 200
                    if status == 200 and record["signature_ok"]:
                        receiver.applied.setdefault(record["key"], record)
                    hold = receiver.hold_first if len(receiver.requests) == 1 else 0.0
                if hold:
                    import time

                    time.sleep(hold)
                self.send_response(status if record["signature_ok"] else 401)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"id": f"remote-{len(receiver.applied)}"}).encode())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
