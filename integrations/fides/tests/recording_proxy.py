"""A real HTTP hop between the adapter and fidesmail that keeps what the adapter sent.

Every request is recorded (path, headers, JSON body) and forwarded to fidesmail, whose answer goes
back unchanged, so a test sees both the exact send body (the mapping) and what fidesmail made of it.
`answer_next(status, body, headers)` makes the next answer the proxy's own instead (a redirect, a 200
that is not fidesmail's), without forwarding.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class RecordingProxy:
    """`with RecordingProxy(target_url) as proxy:`; proxy.url goes into FIDESMAIL_URL."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.requests: list[dict] = []
        self._canned: list[tuple[int, bytes, dict]] = []
        self._lock = threading.Lock()
        self._forward = requests.Session()
        self._forward.trust_env = False  # a test may point HTTP_PROXY elsewhere: this hop goes straight
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with proxy._lock:
                    proxy.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
                    canned = proxy._canned.pop(0) if proxy._canned else None
                if canned is None:
                    forwarded = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    answer = proxy._forward.post(proxy.target + self.path, data=raw, headers=forwarded, timeout=60,
                                           allow_redirects=False)
                    canned = (answer.status_code, answer.content,
                              {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP})
                status, content, headers = canned
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer_next(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self._canned.append((status, body, dict(headers or {})))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._canned.clear()

    @property
    def sent(self) -> list[dict]:
        """The JSON bodies of the sends that reached the proxy, in order."""
        return [r["json"] for r in self.requests if r["path"] == "/api/v1/email/send"]

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
