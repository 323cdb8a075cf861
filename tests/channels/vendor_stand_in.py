"""A local stand-in for a vendor's HTTP API (VK API, Meta Graph API): records every request and answers
from a script of responses (status, JSON body or raw bytes, headers) per path, or a default handler."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, Any, dict[str, str]]


class VendorStandIn:
    def __init__(self, default: Callable[[str, dict[str, Any]], Reply]):
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.script: dict[str, list[Reply]] = {}
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                ctype = self.headers.get("content-type", "")
                if ctype.startswith("application/json"):
                    body: dict[str, Any] = json.loads(raw)
                elif ctype.startswith("multipart/form-data"):
                    body = _multipart(ctype, raw)
                else:
                    body = dict(urllib.parse.parse_qsl(raw.decode()))
                path = urllib.parse.urlsplit(self.path).path
                with stand_in.lock:
                    stand_in.requests.append({"method": self.command, "path": path, "body": body,
                                              "headers": dict(self.headers.items())})
                    queued = stand_in.script.get(path)
                    reply = queued.pop(0) if queued else None
                status, payload, headers = reply if reply else stand_in.default(path, body)
                binary = isinstance(payload, bytes)
                data = payload if binary else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/octet-stream" if binary else "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def queue(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.script.setdefault(path, []).extend(replies)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _multipart(ctype: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body as {field: text} and, for files, {field: (filename, bytes, content type)}."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"content-type: {ctype}\r\n\r\n".encode() + raw)
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        out[str(name)] = (filename, payload, part.get_content_type()) if filename else payload.decode()
    return out
