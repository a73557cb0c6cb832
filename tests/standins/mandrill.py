"""A Mailchimp Transactional (Mandrill) stand-in on 127.0.0.1: messages/send, its errors, and the webhooks API.

    with MandrillFake(api_keys={"md-test-key"}) as fake:
        requests.post(fake.base_url + "/messages/send", json={"key": "md-test-key", "message": {...}})
        fake.wait_for_accepted(1)[0].fidesmail_message_id

`base_url` is `http://127.0.0.1:PORT/api/1.0` (fidesmail's `FIDESMAIL_MANDRILL_BASE_URL`); the official
client is pointed at it with `client.api_client.host = fake.base_url` (it appends `.json`, which is
accepted, as are `/api/1.3`). The /fake/ control endpoints are at `root_url`. Standalone:
`python -m tests.standins.mandrill --port 9996 --key md-test-key`.

Built from Mailchimp Transactional's API reference (its published OpenAPI description):
- `POST /messages/send` with JSON `{"key", "message": {"from_email", "from_name", "subject", "html",
  "text", "to": [{"email", "type"}], "tags", "metadata"}}` answers 200 with one item per recipient:
  `{"email", "status": sent|queued|scheduled|rejected|invalid, "reject_reason", "queued_reason", "_id"}`.
  An address that is not one is `invalid`; with `verified_domains` set, a From domain outside them is
  `rejected` (`unsigned`); `script_events(address, outcome)` (`mandrill_events.OUTCOMES`) decides the
  rest, by default `sent`. Each sent, queued or scheduled recipient is an `Accepted` (its
  `fidesmail_message_id` from `metadata`; `extra`: `tags`, `metadata`, `status`).
- Errors are always HTTP 500 with `{"status": "error", "code", "name", "message"}`: `Invalid_Key`
  (missing or unknown key), `ValidationError` (a malformed body), `Unknown_Webhook`; `fail_next(500)`
  gives `GeneralError`. `throttle_next()` answers 429 with `Retry-After` and a `GeneralError` body
  (Mandrill publishes no rate-limit answer; queue limits show as status `queued` instead).
- Webhooks: `POST /webhooks/add` (`url`, `description`, `events`; answers the webhook with its
  `auth_key`), `/webhooks/list`, `/webhooks/info`, `/webhooks/update`, `/webhooks/delete`, or
  `add_webhook(url)` in a test. After a message is accepted, each event is posted to every webhook
  listening for it (all events when its list is empty) as form field `mandrill_events`, signed with
  `X-Mandrill-Signature` under that webhook's `auth_key` (`mandrill_events.py`). `webhook_posts`,
  `wait_for_webhooks(n)`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable

from .faults import Fault
from .mandrill_events import EVENTS, OUTCOMES, event_body, signed_post
from .server import Accepted, Request
from .standalone import run_in_foreground, script_events, standalone_arguments
from .webhooks import WebhookStandin

_PATH = re.compile(r"^/api/1\.\d+(/[a-z_-]+/[a-z_-]+?)(?:\.json)?$")
_EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+$")
_CODES = {"Invalid_Key": -1, "ValidationError": -2, "GeneralError": -1, "Unknown_Webhook": 2}


def error(name: str, message: str) -> dict:
    return {"status": "error", "code": _CODES.get(name, -1), "name": name, "message": message}


class MandrillFake(WebhookStandin):
    """A threaded HTTP/1.1 server that answers Mandrill's messages/send and webhooks API, and posts events."""

    server_name = "mandrill-fake"
    OUTCOMES, DEFAULT_OUTCOME = OUTCOMES, "sent"

    def __init__(self, api_keys: Iterable[str] = ("md-test-key",), *, verified_domains: Iterable[str] | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.api_keys = set(api_keys)
        self.verified_domains = {d.lower() for d in verified_domains} if verified_domains is not None else None
        self.webhooks: list[dict] = []
        self._next_webhook_id = 1

    @property
    def root_url(self) -> str:
        """Where the /fake/ control endpoints are."""
        return super().base_url

    @property
    def base_url(self) -> str:
        """The API base, as fidesmail's FIDESMAIL_MANDRILL_BASE_URL and the client's host take it."""
        return super().base_url + "/api/1.0"

    # --- for tests ---

    def add_webhook(self, url: str, events: Iterable[str] = (), description: str = "") -> dict:
        """Register a webhook as /webhooks/add would; the webhook, with its `auth_key`."""
        with self._lock:
            return dict(self._add({"url": url, "events": list(events), "description": description}))

    # --- serving ---

    def handle(self, request: Request) -> None:
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            request.answer(404 if match is None else 405, error("GeneralError", "Not Found"))
            return
        payload = request.json()
        if not isinstance(payload, dict):
            request.answer(500, error("ValidationError", "You must specify a key value"))
            return
        if not payload.get("key"):
            request.answer(500, error("Invalid_Key", "You must specify a key value"))
            return
        if payload["key"] not in self.api_keys:
            request.answer(500, error("Invalid_Key", "Invalid API key"))
            return
        call = match.group(1)
        if call == "/messages/send":
            self._send(request, payload)
        elif call.startswith("/webhooks/"):
            with self._lock:
                status, body = self._webhooks(call.rpartition("/")[2], payload)
            request.answer(status, body)
        elif call == "/users/ping":
            request.answer(200, '"PONG!"')  # a JSON string, as Mandrill answers it
        else:
            request.answer(500, error("GeneralError", f"Unknown call {call}"))

    def fault_answer(self, request: Request, fault: Fault) -> None:
        if fault.kind == "throttle":
            request.answer(429, error("GeneralError", fault.message or "Too many requests"),
                           {"Retry-After": f"{fault.retry_after or 1:g}"})
            return
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        request.answer(fault.status, error("GeneralError", fault.message or "An unexpected error occurred"), headers)

    def _send(self, request: Request, payload: dict) -> None:
        message = payload.get("message")
        problem = _message_problem(message)
        if problem:
            request.answer(500, error("ValidationError", f"Validation error: {problem}"))
            return
        answers, accepted, followups = [], [], []
        for recipient in message["to"]:
            status, reason, events = self._outcome(recipient.get("email", ""), message, payload)
            message_id = secrets.token_hex(16)
            answers.append({"email": recipient.get("email", ""), "status": status, "_id": message_id,
                            "reject_reason": reason, "queued_reason": None})
            if status in ("sent", "queued", "scheduled"):
                accepted.append(Accepted(
                    message_id, recipient["email"], _sender(message), message.get("subject", ""),
                    message.get("html"), message.get("text"),
                    (message.get("metadata") or {}).get("fidesmail_message_id"),
                    {"tags": list(message.get("tags") or []), "metadata": dict(message.get("metadata") or {}),
                     "status": status}, time.time()))
            followups.append((message_id, recipient.get("email", ""), events))
        for item in accepted:
            self._accept(item)
        request.answer(200, answers)
        for message_id, email, events in followups:  # after the answer, as Mandrill's events come later
            self._post_events(message_id, email, message, events)

    def _outcome(self, email: str, message: dict, payload: dict) -> tuple[str, str | None, tuple[str, ...]]:
        if not _EMAIL.match(email or ""):
            return "invalid", None, ()
        domain = message["from_email"].rpartition("@")[2].lower()
        if self.verified_domains is not None and domain not in self.verified_domains:
            return "rejected", "unsigned", ("reject",)
        status, reason, events = self.outcome_for(email)
        if status == "sent" and payload.get("send_at"):
            return "scheduled", None, ()
        return status, reason, events

    def _post_events(self, message_id: str, email: str, message: dict, events: tuple[str, ...]) -> None:
        with self._lock:
            hooks = list(self.webhooks)
        for event in events:
            body = event_body(event, message_id=message_id, email=email, sender=message["from_email"],
                              subject=message.get("subject", ""), tags=message.get("tags") or (),
                              metadata=message.get("metadata"))
            for hook in hooks:
                if hook["events"] and event not in hook["events"]:
                    continue
                headers, data = signed_post(hook["auth_key"], hook["url"], [body])
                self.events.submit(hook["url"], data, headers, (event,), (message_id,))

    # --- the webhooks API (called with self._lock held) ---

    def _webhooks(self, verb: str, payload: dict) -> tuple[int, object]:
        if verb == "list":
            return 200, [dict(hook) for hook in self.webhooks]
        if verb == "add":
            problem = _webhook_problem(payload)
            return (500, error("ValidationError", problem)) if problem else (200, dict(self._add(payload)))
        hook = next((h for h in self.webhooks if str(h["id"]) == str(payload.get("id"))), None)
        if hook is None:
            return 500, error("Unknown_Webhook", f"No webhook exists with the id '{payload.get('id')}'")
        if verb == "info":
            return 200, dict(hook)
        if verb == "update":
            problem = _webhook_problem(payload)
            if problem:
                return 500, error("ValidationError", problem)
            hook.update(url=payload["url"], description=payload.get("description", hook["description"]),
                        events=list(payload.get("events") or []))
            return 200, dict(hook)
        if verb == "delete":
            self.webhooks.remove(hook)
            return 200, dict(hook)
        return 500, error("GeneralError", f"Unknown call /webhooks/{verb}")

    def _add(self, payload: dict) -> dict:
        hook = {"id": self._next_webhook_id, "url": payload["url"], "description": payload.get("description", ""),
                "auth_key": secrets.token_urlsafe(16)[:22], "events": list(payload.get("events") or []),
                "created_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "last_sent_at": None,
                "batches_sent": 0, "events_sent": 0, "last_error": None}
        self._next_webhook_id += 1
        self.webhooks.append(hook)
        return hook


def _message_problem(message) -> str | None:
    """Mandrill's validation error text for a malformed message, or None."""
    if not isinstance(message, dict):
        return '{"message":"Please enter an array"}'
    if not isinstance(message.get("to"), list) or not message["to"]:
        return '{"message":{"to":"Please enter an array"}}'
    if any(not isinstance(item, dict) or item.get("type", "to") not in ("to", "cc", "bcc") for item in message["to"]):
        return '{"message":{"to":[{"type":"Please select a valid option"}]}}'
    if not isinstance(message.get("from_email"), str) or not _EMAIL.match(message["from_email"]):
        return '{"message":{"from_email":"An email address must contain a single @"}}'
    for name in ("subject", "html", "text", "from_name"):
        if name in message and not isinstance(message[name], str):
            return '{"message":{"' + name + '":"Please enter a string"}}'
    if "metadata" in message and not isinstance(message["metadata"], dict):
        return '{"message":{"metadata":"Please enter an array"}}'
    return None


def _webhook_problem(payload: dict) -> str | None:
    url = payload.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return "Validation error: {\"url\":\"Please enter a valid URL\"}"
    unknown = [event for event in payload.get("events") or [] if event not in EVENTS]
    return f"Validation error: {{\"events\":\"Unknown event {unknown[0]}\"}}" if unknown else None


def _sender(message: dict) -> str:
    name = message.get("from_name")
    return f"{name} <{message['from_email']}>" if name else message["from_email"]


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until Ctrl-C or SIGTERM."""
    args = standalone_arguments(__doc__.splitlines()[0], 9996, OUTCOMES,
                                "register a webhook to this URL (prints its auth_key)").parse_args(argv)

    def prepare(fake: MandrillFake) -> list[str]:
        script_events(fake, args.events)
        lines = [f"Mandrill stand-in on {fake.base_url}"]
        if args.webhook:
            lines.append(f"webhook auth_key: {fake.add_webhook(args.webhook)['auth_key']}")
        return lines

    run_in_foreground(MandrillFake(args.key or ["md-test-key"], host=args.host, port=args.port), prepare)


if __name__ == "__main__":
    main()
