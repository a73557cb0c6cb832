"""The HTTP part every provider stand-in shares: a threaded server on 127.0.0.1, faults acted out, state to wait on.

A stand-in subclasses `Standin` and implements `handle(request)`, answering with `request.answer(...)`
and calling `self._accept(Accepted(...))` for each message its provider would have taken. The base
gives it, on a free port of 127.0.0.1 unless told otherwise:

- `start()/close()` (or `with`), `base_url`, `port`;
- the faults of `faults.py` (`fail_next`, `throttle_next`, `slow_next`, `close_next`, `reset_next`,
  `non_json_200_next`, `down/up`, `refuse_for`, `random_faults`), the connection-level ones acted out
  here; `down(refuse=True)` stops listening altogether (clients see "connection refused") until `up()`;
- `POST /fake/down[?status=503][&seconds=N][&refuse=1]`, `POST /fake/up`, `GET|POST /fake/stats`
  (`{"down", "attempts", "accepted"}`) for curl;
- `attempts` (requests that arrived, faulted ones too), `accepted` (the `Accepted` messages, in
  order) and `wait_for_accepted(n)`, `wait_for(predicate)`, which wait on state, never a fixed sleep.

Only the standard library is used.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .faults import Fault, Faults


@dataclass(frozen=True)
class Accepted:
    """One message (one recipient) a stand-in accepted, as its provider would have taken it."""

    provider_id: str  # the provider's id for it (SES MessageId, SendGrid X-Message-Id, Mandrill _id)
    recipient: str
    sender: str  # the From address as sent (may carry a display name)
    subject: str
    html: str | None
    text: str | None
    fidesmail_message_id: str | None  # the record's id the request carried (tag, custom arg or metadata)
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific: tags, categories, metadata...
    at: float = 0.0  # time.time() when accepted


class Request:
    """One request as a stand-in's `handle` sees it, and the way to answer it."""

    def __init__(self, handler: _Handler, body: bytes):
        self._handler = handler
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.target = handler.path  # as sent: path and query
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query))
        self.headers = handler.headers
        self.body = body
        self.answered: int | None = None

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return None

    def answer(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None,
               content_type: str = "application/json") -> None:
        """Answer with a JSON value (dict or list), text, bytes, or no body (None)."""
        self.answered = status
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        handler = self._handler
        handler.send_response(status)
        if data or body is not None:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        if data and self.method != "HEAD":
            handler.wfile.write(data)

    def drop(self, reset: bool = False) -> None:
        """Answer nothing: close the connection (a TCP RST when `reset`)."""
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST, as a crashed proxy or load balancer would.
            self._handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._handler.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True  # listening again on the same port after down(refuse=True)
    standin: Standin

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout) makes the late answer fail; that is expected, not news.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the providers do
    disable_nagle_algorithm = True
    wbufsize = 65536  # headers and body leave in one write
    timeout = 60  # idle keep-alive connections end eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.standin._track(self.connection, True)

    def finish(self) -> None:
        self.server.standin._track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args) -> None:
        pass

    def version_string(self) -> str:
        return self.server.standin.server_name

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None and self.headers.get("Transfer-Encoding"):
            self.send_error(411)
            return
        self.server.standin._serve(Request(self, self.rfile.read(int(length or 0))))

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_POST


class Standin(Faults):
    """Base of the HTTP stand-ins: lifecycle, faults, control endpoints, accepted messages, waiting on state."""

    server_name = "standin"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        self._init_faults()
        self._host, self._port = host, port
        self._changed = threading.Condition()
        self._accepted: list[Accepted] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()  # ends slow answers at close()
        self._listening = threading.Lock()  # one start or stop of the listener at a time
        self._listen()

    # --- lifecycle ---

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """The base URL to use in place of the provider's (no trailing slash)."""
        return f"http://{self._host}:{self._port}"

    def start(self):
        """Serve in a background thread."""
        self._serve_forever()
        return self

    def close(self) -> None:
        """Stop serving and drop every open connection (also ones kept alive by clients)."""
        self._closing.set()
        self._stop_listening()
        with self._changed:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- outages that refuse connections ---

    def down(self, *, status: int = 503, refuse: bool = False) -> None:
        """An outage until up(): every request answered `status`, or with `refuse` no connection accepted at all."""
        if refuse:
            self._stop_listening()
        else:
            super().down(status=status)

    def up(self) -> None:
        super().up()
        with self._listening:
            if self._server is None:
                self._listen()
                self._serve_forever()

    @property
    def is_listening(self) -> bool:
        return self._server is not None

    # --- what happened ---

    @property
    def accepted(self) -> list[Accepted]:
        """Every message accepted so far (one per recipient), in order."""
        with self._changed:
            return list(self._accepted)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate()` is true (checked whenever the stand-in's state changes); its last value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return value
                self._changed.wait(min(left, 0.1))
        return value

    def wait_for_accepted(self, count: int = 1, timeout: float = 10.0) -> list[Accepted]:
        """Wait until at least `count` messages were accepted (or `timeout` passed); all of them."""
        self.wait_for(lambda: len(self._accepted) >= count, timeout)
        return self.accepted

    def reset(self) -> None:
        """Forget accepted messages, pending faults, the outage and the count of attempts."""
        self.clear_faults()
        with self._changed:
            self._accepted.clear()
            self._changed.notify_all()

    def _accept(self, message: Accepted) -> None:
        with self._changed:
            self._accepted.append(message)
            self._changed.notify_all()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # --- serving ---

    def handle(self, request: Request) -> None:
        """Answer one provider request (not called for /fake/ paths or faulted requests)."""
        raise NotImplementedError

    def fault_answer(self, request: Request, fault: Fault) -> None:
        """Answer a "status" or "throttle" fault with the provider's own error body (and headers)."""
        request.answer(fault.status, {"message": fault.message or "fault"})

    def _serve(self, request: Request) -> None:
        if request.path.startswith("/fake/"):
            self._control(request)
            return
        fault = self._arrive()
        self._notify()
        if fault is not None and fault.kind == "slow":
            self._closing.wait(fault.seconds)
        elif fault is not None and fault.kind in ("close", "reset"):
            request.drop(reset=fault.kind == "reset")
            return
        elif fault is not None and fault.kind == "non_json":
            request.answer(200, "<html><body>OK</body></html>", content_type="text/html")
            return
        elif fault is not None:
            self.fault_answer(request, fault)
            return
        try:
            self.handle(request)
        except Exception as exc:  # a bug in the stand-in: say so (500), never a dropped connection (that is a fault)
            traceback.print_exc()
            if request.answered is None:
                request.answer(500, {"standin_error": f"{type(exc).__name__}: {exc}"})

    def _control(self, request: Request) -> None:
        """POST /fake/down[?status=503][&seconds=N][&refuse=1], /fake/up; GET or POST /fake/stats."""
        query = request.query
        refuse = query.get("refuse") in ("1", "true", "yes")
        if request.path == "/fake/down" and request.method == "POST":
            if "seconds" in query and not refuse:
                self.refuse_for(float(query["seconds"]), status=int(query.get("status", "503")))
            elif not refuse:
                self.down(status=int(query.get("status", "503")))
        elif request.path == "/fake/up" and request.method == "POST":
            self.up()
        elif request.path != "/fake/stats":
            request.answer(404, {"message": "Not Found"})
            return
        request.answer(200, {"down": self.is_down or refuse, "attempts": self.attempts, "accepted": len(self.accepted)})
        if refuse:
            # After answering: the listener closes in another thread (shutdown waits for this request's loop).
            threading.Thread(target=self.down, kwargs={"refuse": True}, daemon=True).start()

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._changed:
            (self._connections.add if add else self._connections.discard)(connection)

    def _listen(self) -> None:
        server = _Server((self._host, self._port), _Handler)
        server.standin = self
        self._port = server.server_address[1]
        self._server = server

    def _serve_forever(self) -> None:
        server = self._server
        # A short poll interval makes close() quick; shutdown waits for the loop to notice.
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.01),
                                        name=f"{self.server_name}-server", daemon=True)
        self._thread.start()

    def _stop_listening(self) -> None:
        with self._listening:
            server, thread = self._server, self._thread
            if server is None:
                return
            if thread is not None:
                server.shutdown()
                thread.join()
            server.server_close()
            self._server = self._thread = None  # only now: is_listening false means connections are refused
