"""A Mailgun stand-in on 127.0.0.1: the v3 messages endpoint, its auth and errors, scripted faults, and webhooks.

Use it in tests (`with MailgunFake(domains={"mg.example.com": "key-123"}) as fake: fake.base_url`)
or standalone: `python tests/mailgun_fake.py --port 9999 --domain mg.example.com=key-123`.

Webhooks as Mailgun has them: the domain webhooks API (`GET/POST /v3/domains/{domain}/webhooks`,
`GET/PUT/DELETE .../webhooks/{type}`), and after accepting a message, signed events posted to the
URLs registered for its domain (HMAC-SHA256 of timestamp + token under the domain's signing key:
`signing_keys={...}`, or `--signing-key DOMAIN=KEY` standalone). By default a message is `accepted`
then `delivered`; per recipient (`script_events`, or `--events ADDRESS=OUTCOME`) it can instead fail
permanently, fail temporarily then be delivered, or be delivered and then complained about.
Its faults (fail_next, throttle_next, slow_next, close_next, reset_next, non_json_200_next, down/up,
refuse_for, random_faults, attempts) are the ones every stand-in shares: tests/standins/faults.py.
Only the standard library is used, so it runs anywhere Python does.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

if __package__ in (None, ""):  # run as a script (python tests/mailgun_fake.py): the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standins.faults import Fault, Faults  # noqa: E402  (after the path, for the script case)
from tests.standins.standalone import run_in_foreground  # noqa: E402

_MESSAGES_PATH = re.compile(r"^/v3/([^/]+)/messages$")
_WEBHOOKS_PATH = re.compile(r"^/v3/domains/([^/]+)/webhooks(?:/([^/]+))?$")
# Mailgun's webhook types (its domain webhooks API), and which one each event is posted to.
WEBHOOK_TYPES = ("accepted", "clicked", "opened", "unsubscribed", "delivered", "permanent_fail", "temporary_fail",
                 "complained")
MAX_WEBHOOK_URLS = 3
# What happens to a message after Mailgun accepted it, per recipient (the default: delivered).
OUTCOMES = {
    "delivered": ("accepted", "delivered"),
    "permanent_failure": ("accepted", "permanent_fail"),
    "temporary_failure": ("accepted", "temporary_fail", "delivered"),
    "complained": ("accepted", "delivered", "complained"),
    "none": (),
}
_NEED_BODY = "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified"
_STATUS_MESSAGES = {
    420: "Domain {domain} is not allowed to send: rate limit exceeded, try again after {retry} seconds",
    429: (
        "Domain {domain} is not allowed to send: account-requests-per-sec limit exceeded,"
        " try again after {retry} seconds"
    ),
}


@dataclass(frozen=True)
class Recorded:
    """One request as the fake saw it; status is None when the fake closed the connection instead."""

    method: str
    path: str
    headers: dict[str, str]
    form: tuple[tuple[str, str], ...]
    auth_user: str | None
    domain: str | None
    status: int | None
    client_port: int
    message_id: str | None = None
    at: float = 0.0  # time.time() when it was answered

    def field(self, name: str) -> str | None:
        """The first value of a form field."""
        return next((value for key, value in self.form if key == name), None)


@dataclass(frozen=True)
class WebhookPost:
    """One webhook the fake posted: where, which event and token, and fidesmail's answer (None: no answer)."""

    url: str
    domain: str
    event: str  # the webhook type: accepted, delivered, permanent_fail, ...
    token: str
    message_id: str
    status: int | None
    answer: str = ""


@dataclass
class _Accepted:
    """A message the fake accepted, as its events describe it."""

    domain: str
    message_id: str  # with angle brackets, as the send answer has it
    recipient: str
    form: tuple[tuple[str, str], ...]
    outcome: tuple[str, ...] = field(default=())


class MailgunFake(Faults):
    """A threaded HTTP/1.1 server that answers POST /v3/{domain}/messages like Mailgun, and posts its webhooks."""

    def __init__(self, domains: Mapping[str, str] | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 signing_keys: Mapping[str, str] | None = None):
        self.domains = dict(domains or {})
        self.signing_keys = dict(signing_keys or {})  # domain -> webhook signing key
        self.webhooks: dict[str, dict[str, list[str]]] = {}  # domain -> webhook type -> URLs
        self.redeliver = 1  # post each event this many times at once, same token (Mailgun retrying)
        self.events_before_answer = False  # post a message's events before answering its send
        self.before_answer: Callable[[str], None] | None = None  # called with the message id, then it answers
        self.webhook_retries = 2  # further posts of an event fidesmail did not answer 2xx (or 406)
        self.webhook_retry_delay = 0.2
        self._scripts: dict[str, str] = {}
        self._posts: list[WebhookPost] = []
        self._jobs: deque[_Accepted] = deque()
        self._jobs_ready = threading.Condition()
        self._dispatcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._init_faults()  # fail_next, slow_next, down/up, refuse_for, random_faults, attempts (standins/faults.py)
        self._requests: list[Recorded] = []
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._counter = 0
        self._accepted_count: tuple[int, float | None, float | None] = (0, None, None)  # count, first, last at
        self.latency = 0.0  # seconds every answer waits before it is given (a slow but healthy Mailgun)
        self.accepted_message = "Queued. Thank you."  # the `message` of a 200 (Mailgun's words, to be scrubbed)
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    @property
    def base_url(self) -> str:
        """The base URL to use in place of https://api.mailgun.net."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> MailgunFake:
        """Serve in a background thread."""
        # A short poll interval makes close() quick; shutdown waits for the loop to notice.
        serve = lambda: self._server.serve_forever(poll_interval=0.01)
        self._thread = threading.Thread(target=serve, name="mailgun-fake", daemon=True)
        self._thread.start()
        self._dispatcher = threading.Thread(target=self._dispatch, name="mailgun-fake-webhooks", daemon=True)
        self._dispatcher.start()
        return self

    def close(self) -> None:
        """Stop serving and drop every open connection (also ones kept alive by clients)."""
        self._closing.set()
        with self._jobs_ready:
            self._jobs_ready.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join(10)
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> MailgunFake:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- what happened ---

    @property
    def requests(self) -> list[Recorded]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def sent(self) -> list[Recorded]:
        """The requests that were accepted (answered with a message id)."""
        return [r for r in self.requests if r.message_id]

    def reset(self) -> None:
        """Forget recorded requests and pending faults; random faults off."""
        self.clear_faults()
        with self._lock:
            self._requests.clear()
            self._accepted_count = (0, None, None)

    def posts_by_message(self, accepted_only: bool = False) -> dict[str, int]:
        """How many requests (or accepted ones) carried each `v:fidesmail-message-id`."""
        counts: dict[str, int] = {}
        for entry in self.sent if accepted_only else self.requests:
            message_id = entry.field("v:fidesmail-message-id")
            if message_id is not None:
                counts[message_id] = counts.get(message_id, 0) + 1
        return counts

    # --- webhooks ---

    def script_events(self, recipient: str, outcome: str) -> None:
        """What happens to messages for `recipient` after they are accepted: a key of OUTCOMES."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (known: {', '.join(OUTCOMES)})")
        with self._lock:
            self._scripts[recipient.strip().lower()] = outcome

    @property
    def webhook_posts(self) -> list[WebhookPost]:
        """Every webhook posted so far (each retry and redelivery its own entry), in order."""
        with self._lock:
            return list(self._posts)

    def wait_for_webhooks(self, count: int, timeout: float = 10.0) -> list[WebhookPost]:
        """Wait until at least `count` webhooks were posted and answered (or `timeout` passed); all of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._jobs_ready:
                idle = not self._jobs
            posts = self.webhook_posts
            if len(posts) >= count and idle:
                return posts
            time.sleep(0.01)
        return self.webhook_posts

    def sign(self, domain: str, timestamp: str | None = None, token: str | None = None) -> dict[str, str]:
        """A signature block as Mailgun makes it, with the domain's signing key."""
        timestamp = timestamp or str(int(time.time()))
        token = token or secrets.token_hex(25)
        digest = hmac.new(self.signing_keys[domain].encode(), (timestamp + token).encode(), hashlib.sha256)
        return {"timestamp": timestamp, "token": token, "signature": digest.hexdigest()}

    def _accepted(self, domain: str, message_id: str, form: tuple) -> _Accepted | None:
        """The message's events to post, or None when nothing would be posted."""
        recipient = next((value for name, value in form if name == "to"), "")
        with self._lock:
            outcome = self._scripts.get(recipient.strip().lower(), "delivered")
            registered = domain in self.webhooks and domain in self.signing_keys
        if not registered or not OUTCOMES[outcome]:
            return None
        return _Accepted(domain, message_id, recipient, form, OUTCOMES[outcome])

    def _enqueue(self, job: _Accepted) -> None:
        with self._jobs_ready:
            self._jobs.append(job)
            self._jobs_ready.notify()

    def _dispatch(self) -> None:
        """Post the events of accepted messages, one message after another, each message's in order."""
        while not self._closing.is_set():
            with self._jobs_ready:
                while not self._jobs and not self._closing.is_set():
                    self._jobs_ready.wait(0.1)
                if self._closing.is_set():
                    return
                job = self._jobs[0]
            try:
                self._post_events(job)
            finally:
                with self._jobs_ready:
                    self._jobs.popleft()

    def _post_events(self, job: _Accepted) -> None:
        for webhook_type in job.outcome:
            with self._lock:
                urls = list(self.webhooks.get(job.domain, {}).get(webhook_type, ()))
            if not urls:
                continue
            body = self._event_body(job, webhook_type)
            for url in urls:
                threads = [threading.Thread(target=self._deliver, args=(url, job, webhook_type, body))
                           for _ in range(max(1, self.redeliver))]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

    def _deliver(self, url: str, job: _Accepted, webhook_type: str, body: dict) -> None:
        """Post one event, and again (same token) while fidesmail does not take it, as Mailgun retries."""
        data = json.dumps(body).encode()
        for attempt in range(1 + self.webhook_retries):
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "mailgun-fake/webhooks"})
            status, answer = None, ""
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, answer = response.status, response.read(2000).decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, exc.read(2000).decode("utf-8", "replace")
            except (OSError, ValueError) as exc:
                answer = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._posts.append(WebhookPost(url, job.domain, webhook_type, body["signature"]["token"],
                                               job.message_id, status, answer))
            if status is not None and (200 <= status < 300 or status == 406):
                return
            if attempt < self.webhook_retries and self._closing.wait(self.webhook_retry_delay):
                return

    def _event_body(self, job: _Accepted, webhook_type: str) -> dict:
        """Mailgun's webhook JSON for one event of the message (its shape: event-data as Mailgun sends it)."""
        form = dict(job.form)
        now = time.time()
        data = {
            "id": secrets.token_urlsafe(16), "timestamp": now, "log-level": "info", "recipient": job.recipient,
            "recipient-domain": job.recipient.rpartition("@")[2], "tags": [form["o:tag"]] if "o:tag" in form else [],
            "envelope": {"sender": form.get("from", ""), "transport": "smtp", "targets": job.recipient},
            "message": {"headers": {"message-id": job.message_id.strip("<>"), "to": job.recipient,
                                    "from": form.get("from", ""), "subject": form.get("subject", "")},
                        "size": sum(len(value) for value in form.values())},
            "user-variables": {name[2:]: value for name, value in job.form if name.startswith("v:")},
            "flags": {"is-test-mode": form.get("o:testmode") == "yes"},
        }
        if webhook_type == "accepted":
            data.update(event="accepted", method="HTTP")
        elif webhook_type == "delivered":
            data.update(event="delivered", **{"delivery-status": {
                "code": 250, "message": "OK", "description": "", "attempt-no": 1, "tls": True}})
        elif webhook_type == "permanent_fail":
            data.update(event="failed", severity="permanent", reason="bounce", **{"delivery-status": {
                "code": 550, "attempt-no": 1, "description": "",
                "message": f"5.1.1 <{job.recipient}>: The email account that you tried to reach does not exist"}})
        elif webhook_type == "temporary_fail":
            data.update(event="failed", severity="temporary", reason="generic", **{"delivery-status": {
                "code": 452, "attempt-no": 1, "description": "",
                "message": "4.2.2 The email account that you tried to reach is over quota", "retry-seconds": 600}})
        else:  # complained, opened, clicked, unsubscribed
            data.update(event=webhook_type)
        return {"signature": self.sign(job.domain), "event-data": data}

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self._requests.append(entry)
            if entry.message_id:  # kept as they come, so /fake/stats costs nothing with many requests
                self._accepted_count = (self._accepted_count[0] + 1, self._accepted_count[1] or entry.at, entry.at)

    def _message_id(self, domain: str) -> str:
        with self._lock:
            self._counter += 1
            counter = self._counter
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        return f"<{stamp}.{counter}.{secrets.token_hex(6).upper()}@{domain}>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: MailgunFake

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout) makes the late answer fail; that is expected, not news.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Mailgun does
    server_version = "mailgun-fake"
    disable_nagle_algorithm = True
    wbufsize = 65536  # headers and body leave in one write
    timeout = 60  # idle keep-alive connections end eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.command == "GET" and urlsplit(self.path).path == "/fake/stats":
            self._control("/fake/stats", {})
            return
        if _WEBHOOKS_PATH.match(urlsplit(self.path).path) and self.command != "PATCH":
            self._webhooks_api(body)
            return
        self._answer(405, {"message": "Method Not Allowed"})

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _webhooks_api(self, body: bytes) -> None:
        """Mailgun's domain webhooks API: list, create, show, update (replace the URLs), delete."""
        fake = self.server.fake
        path = urlsplit(self.path).path
        domain, webhook_type = (unquote(part) if part else None for part in _WEBHOOKS_PATH.match(path).groups())
        form = _parse_form(self.headers.get("Content-Type", ""), body)
        user, password = _basic_auth(self.headers.get("Authorization", ""))
        status, answer = self._webhooks_answer(fake, domain, webhook_type, form, user, password)
        fake._record(Recorded(self.command, path, dict(self.headers.items()), form, user, domain, status,
                              self.client_address[1]))
        self._answer(status, answer, content_type="text/plain" if isinstance(answer, str) else None)

    def _webhooks_answer(self, fake: MailgunFake, domain, webhook_type, form, user, password):
        if domain not in fake.domains:
            if user == "api" and password in fake.domains.values():
                return 404, {"message": "Domain not found"}
            return 401, "Forbidden"
        if user != "api" or password != fake.domains[domain]:
            return 401, "Forbidden"
        method = self.command
        urls = [value for name, value in form if name == "url"]
        with fake._lock:
            hooks = fake.webhooks.setdefault(domain, {})
            if webhook_type is None and method == "GET":
                return 200, {"webhooks": {name: {"urls": list(found)} for name, found in hooks.items()}}
            if webhook_type is None and method == "POST":
                webhook_type = next((value for name, value in form if name == "id"), None)
                if webhook_type not in WEBHOOK_TYPES:
                    return 400, {"message": "Invalid webhook id"}
                if webhook_type in hooks:
                    return 400, {"message": "Webhook already exists"}
                if not urls or len(urls) > MAX_WEBHOOK_URLS:
                    return 400, {"message": f"Between 1 and {MAX_WEBHOOK_URLS} url parameters are required"}
                hooks[webhook_type] = urls
                return 200, {"message": "Webhook has been created", "webhook": {"urls": urls}}
            if webhook_type is None:
                return 405, {"message": "Method Not Allowed"}
            if webhook_type not in hooks:
                return 404, {"message": "Webhook not found"}
            if method == "GET":
                return 200, {"webhook": {"urls": list(hooks[webhook_type])}}
            if method == "PUT":
                if not urls or len(urls) > MAX_WEBHOOK_URLS:
                    return 400, {"message": f"Between 1 and {MAX_WEBHOOK_URLS} url parameters are required"}
                hooks[webhook_type] = urls
                return 200, {"message": "Webhook has been updated", "webhook": {"urls": urls}}
            if method == "DELETE":
                return 200, {"message": "Webhook has been deleted", "webhook": {"urls": hooks.pop(webhook_type)}}
        return 405, {"message": "Method Not Allowed"}

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path.startswith("/fake/"):
            self._control(path, dict(parse_qsl(urlsplit(self.path).query)))
            return
        if _WEBHOOKS_PATH.match(path):
            self._webhooks_api(body)
            return
        match = _MESSAGES_PATH.match(path)
        domain = unquote(match.group(1)) if match else None
        form = _parse_form(self.headers.get("Content-Type", ""), body)
        user, password = _basic_auth(self.headers.get("Authorization", ""))
        fault = fake._arrive()

        def record(status: int | None, message_id: str | None = None) -> None:
            headers = dict(self.headers.items())
            port = self.client_address[1]
            fake._record(Recorded("POST", path, headers, form, user, domain, status, port, message_id, time.time()))

        if fake.latency:
            fake._closing.wait(fake.latency)
        if fault is not None and fault.kind == "slow":
            fake._closing.wait(fault.seconds)
        elif fault is not None and fault.kind == "close":
            record(None)
            self.close_connection = True
            return
        elif fault is not None and fault.kind == "reset":
            record(None)
            # SO_LINGER with a zero timeout: close() sends RST, as a crashed proxy or load balancer would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        elif fault is not None and fault.kind == "non_json":
            record(200)
            self._answer(200, "<html><body>OK</body></html>", content_type="text/html")
            return
        elif fault is not None:
            record(fault.status)
            self._fault_answer(fault, domain or "unknown")
            return

        status, answer = self._mailgun(domain, form, user, password)
        message_id = answer.get("id") if isinstance(answer, dict) else None
        record(status, message_id)
        accepted = fake._accepted(domain, message_id, form) if message_id else None
        if accepted is not None and fake.events_before_answer:
            fake._post_events(accepted)  # Mailgun's events may reach fidesmail before this answer does
        if message_id and fake.before_answer is not None:
            fake.before_answer(message_id)
        self._answer(status, answer, content_type="text/plain" if isinstance(answer, str) else "application/json")
        if accepted is not None and not fake.events_before_answer:
            fake._enqueue(accepted)

    def _control(self, path: str, query: dict) -> None:
        """POST /fake/down[?status=503][&seconds=N], /fake/up, /fake/stats: an outage by hand (curl)."""
        fake = self.server.fake
        if path == "/fake/down":
            fake.refuse_for(float(query.get("seconds", "inf")), status=int(query.get("status", "503")))
        elif path == "/fake/up":
            fake.up()
        elif path != "/fake/stats":
            self._answer(404, {"message": "Not Found"})
            return
        with fake._lock:
            accepted, first, last = fake._accepted_count
        self._answer(200, {"down": fake.is_down, "attempts": fake.attempts, "accepted": accepted,
                           "first_accepted_at": first, "last_accepted_at": last})

    def _mailgun(self, domain: str | None, form: tuple, user: str | None, password: str | None):
        fake = self.server.fake
        if domain is None:
            return 404, {"message": "Not Found"}
        if domain not in fake.domains:
            # An account-wide valid key on an unknown domain: 404; any other key: 401.
            if user == "api" and password in fake.domains.values():
                return 404, {"message": f"Domain not found: {domain}"}
            return 401, "Forbidden"
        if user != "api" or password != fake.domains[domain]:
            return 401, "Forbidden"
        names = {name for name, _ in form}
        for required in ("from", "to"):
            if required not in names:
                return 400, {"message": f"'{required}' parameter is missing"}
        if not names & {"text", "html", "amp-html", "template"}:
            return 400, {"message": _NEED_BODY}
        for _, value in (pair for pair in form if pair[0] == "to"):
            if "@" not in value or any(c in value for c in "\r\n"):
                return 400, {"message": "'to' parameter is not a valid address. please check documentation"}
        return 200, {"id": fake._message_id(domain), "message": fake.accepted_message}

    def _fault_answer(self, fault: Fault, domain: str) -> None:
        retry = fault.retry_after
        template = _STATUS_MESSAGES.get(fault.status) if retry is not None else None
        message = fault.message or (template.format(domain=domain, retry=f"{retry:g}") if template else None)
        headers = {"Retry-After": f"{retry:g}"} if retry is not None else {}
        self._answer(fault.status, {"message": message or self.responses.get(fault.status, ("Error",))[0]}, headers)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self._answer(411, {"message": "Length Required"})
                self.close_connection = True
                return None
            return b""
        return self.rfile.read(int(length))

    def _answer(self, status: int, body, headers: Mapping[str, str] | None = None, content_type=None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _basic_auth(header: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


def _parse_form(content_type: str, body: bytes) -> tuple[tuple[str, str], ...]:
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        if not message.is_multipart():
            return ()
        pairs = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            # Attachments are recorded by file name, not content.
            pairs.append((name, part.get_filename() or payload.decode("utf-8", "replace")))
        return tuple(pairs)
    if content_type.startswith("application/x-www-form-urlencoded"):
        return tuple(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return ()


def main(argv: list[str] | None = None) -> None:
    """Run the fake in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument(
        "--domain", action="append", default=[], metavar="DOMAIN=KEY", help="a domain and its API key (repeatable)"
    )
    parser.add_argument("--random-faults", action="store_true", help="5%% 5xx, 2%% 429, 1%% slow (1 s), 1%% closed")
    parser.add_argument("--signing-key", action="append", default=[], metavar="[DOMAIN=]KEY",
                        help="the webhook signing key of a domain, or of every domain (repeatable)")
    parser.add_argument("--events", action="append", default=[], metavar="ADDRESS=OUTCOME",
                        help=f"what happens after a message to ADDRESS is accepted: {', '.join(OUTCOMES)} "
                             "(default delivered; repeatable)")
    parser.add_argument("--refuse-for", type=float, metavar="SECONDS",
                        help="an outage: answer 503 for this long from the start (also POST /fake/down, /fake/up)")
    args = parser.parse_args(argv)
    domains = {}
    for item in args.domain:
        domain, equals, key = item.partition("=")
        if not equals or not domain or not key:
            parser.error(f"--domain wants DOMAIN=KEY, not {item!r}")
        domains[domain] = key
    signing_keys = {}
    for item in args.signing_key:
        domain, equals, key = item.partition("=")
        if equals and domain in domains and key:
            signing_keys[domain] = key
        else:
            signing_keys.update({name: item for name in domains if name not in signing_keys})

    def prepare(fake: MailgunFake) -> list[str]:
        for item in args.events:
            address, _, outcome = item.rpartition("=")
            if not address or outcome not in OUTCOMES:
                parser.error(f"--events wants ADDRESS=OUTCOME ({', '.join(OUTCOMES)}), not {item!r}")
            fake.script_events(address, outcome)
        if args.random_faults:
            fake.random_faults()
        if args.refuse_for:
            fake.refuse_for(args.refuse_for)
        return [f"Mailgun fake on {fake.base_url} for {', '.join(domains) or 'no domains'}"]

    run_in_foreground(MailgunFake(domains, host=args.host, port=args.port, signing_keys=signing_keys), prepare)


if __name__ == "__main__":
    main()
