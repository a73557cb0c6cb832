"""A Twilio SendGrid stand-in on 127.0.0.1: v3 Mail Send, its auth and errors, the Event Webhook and its settings.

    with SendGridFake(api_keys={"SG.test-key"}, verified_senders={"privacy@example.com"}) as fake:
        requests.post(fake.base_url + "/v3/mail/send", json=..., headers={"Authorization": "Bearer SG.test-key"})
        fake.wait_for_accepted(1)[0].fidesmail_message_id

Standalone: `python -m tests.standins.sendgrid --port 9997 --key SG.test-key --verify privacy@example.com`.

`POST /v3/mail/send` (built from SendGrid's v3 API reference and its OpenAPI description):
- `Authorization: Bearer <key>`: missing, 401 `authorization required`; a key not in `api_keys`, 401
  `The provided authorization grant is invalid, expired, or revoked`.
- The body checked as SendGrid does (`sendgrid_mail.py`): 400 `{"errors": [{"message", "field", "help"}]}`.
- A `from` that is not a verified sender (`verified_senders`: addresses, or `@domain` for an
  authenticated domain), 403 with SendGrid's words and `"field": "from"`.
- `mail_settings.sandbox_mode.enable`: 200, empty body, no `X-Message-Id`, nothing accepted.
- Otherwise 202, empty body, `X-Message-Id` header; one `Accepted` per `to` address (its
  `fidesmail_message_id` is the custom arg of that name; `extra` has `custom_args`, `categories`).
- Faults (`faults.py`): `fail_next(status)` answers SendGrid's error JSON; `throttle_next(retry_after=)`
  answers 429 `too many requests` with `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset`.

Event Webhook: `add_webhook(url, signed=True)` (or the settings API: `POST /v3/user/webhooks/event/settings`,
legacy `GET/PATCH .../settings`, `GET .../settings/all`, `GET/PATCH/DELETE .../settings/{id}`,
`GET/PATCH .../settings/signed[/{id}]` which enables signing and returns the public key). After a
message is accepted, its events (`script_events(address, outcome)`, outcomes in
`sendgrid_events.OUTCOMES`, default processed + delivered) are posted to every enabled webhook whose
switch for them is on, one JSON array per post, signed when signing is on (`signer(id)`).
`webhook_posts`, `wait_for_webhooks(n)`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable

from .faults import Fault
from .sendgrid_events import EVENT_SWITCHES, OUTCOMES, EventSigner, event_body, switch_for
from .sendgrid_mail import mail_errors
from .server import Accepted, Request
from .standalone import run_in_foreground, script_events, standalone_arguments
from .webhooks import WebhookStandin

SETTINGS = "/v3/user/webhooks/event/settings"
MAX_WEBHOOKS = 5
FROM_NOT_VERIFIED = ("The from address does not match a verified Sender Identity. Mail cannot be sent until this "
                     "error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/"
                     " to see the Sender Identity requirements")
_STATUS_WORDS = {400: "invalid request", 401: "authorization required", 403: "access forbidden", 404: "not found",
                 413: "content too large", 429: "too many requests", 500: "internal server error",
                 502: "bad gateway", 503: "service unavailable", 504: "gateway timeout"}


def errors(message: str, field: str | None = None, help: str | None = None) -> dict:
    return {"errors": [{"message": message, "field": field, "help": help}]}


class SendGridFake(WebhookStandin):
    """A threaded HTTP/1.1 server that answers SendGrid's Mail Send and event webhook settings, and posts events."""

    server_name = "sendgrid-fake"
    OUTCOMES, DEFAULT_OUTCOME = OUTCOMES, "delivered"

    def __init__(self, api_keys: Iterable[str] = ("SG.test-key",), *,
                 verified_senders: Iterable[str] = ("privacy@example.com",), host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.api_keys = set(api_keys)
        self.verified_senders = {sender.lower() for sender in verified_senders}
        self.rate_limit = 600  # X-RateLimit-Limit in a 429
        self.webhooks: list[dict] = []  # the event webhook settings, oldest first
        self._signers: dict[str, EventSigner] = {}

    # --- webhooks, for tests ---

    def add_webhook(self, url: str, *, signed: bool = True, events: Iterable[str] = EVENT_SWITCHES) -> dict:
        """Register an enabled event webhook (as the settings API would); its settings, with `public_key` if signed."""
        with self._lock:
            hook = self._new_webhook({"url": url, "enabled": True, **{name: True for name in events}})
            if signed:
                self._signers[hook["id"]] = EventSigner()
            return self._shown(hook)

    def signer(self, webhook_id: str | None = None) -> EventSigner:
        """The key that signs a webhook's posts (the oldest webhook's when no id is given)."""
        with self._lock:
            return self._signers[webhook_id or self.webhooks[0]["id"]]

    # --- serving ---

    def handle(self, request: Request) -> None:
        key = _bearer(request.headers.get("Authorization", ""))
        if key is None:
            request.answer(401, errors("authorization required"))
        elif key not in self.api_keys:
            request.answer(401, errors("The provided authorization grant is invalid, expired, or revoked"))
        elif request.path == "/v3/mail/send" and request.method == "POST":
            self._send(request)
        elif request.path == SETTINGS or request.path.startswith(SETTINGS + "/"):
            with self._lock:
                status, body = self._settings(request)
            request.answer(status, body)
        else:
            request.answer(404, errors("not found"))

    def fault_answer(self, request: Request, fault: Fault) -> None:
        status = 429 if fault.kind == "throttle" else fault.status
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if status == 429:
            reset = int(time.time() + (fault.retry_after or 1))
            headers = {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": str(reset)}
        request.answer(status, errors(fault.message or _STATUS_WORDS.get(status, "error")), headers)

    def _send(self, request: Request) -> None:
        body = request.json()
        problems = mail_errors(body)
        if problems:
            request.answer(400, {"errors": problems})
            return
        sender = body["from"]["email"].lower()
        if sender not in self.verified_senders and "@" + sender.rpartition("@")[2] not in self.verified_senders:
            request.answer(403, errors(FROM_NOT_VERIFIED, "from"))
            return
        if ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable") is True:
            request.answer(200)  # sandbox: validated, not sent, no id
            return
        x_message_id = secrets.token_urlsafe(16)[:22]
        accepted = list(self._messages(body, x_message_id))
        for message in accepted:
            self._accept(message)
        request.answer(202, headers={"X-Message-Id": x_message_id})
        for message in accepted:
            self._post_events(message)

    def _messages(self, body: dict, x_message_id: str) -> Iterable[Accepted]:
        content = {block["type"]: block["value"] for block in body.get("content", [])}
        for personalization in body["personalizations"]:
            custom_args = {**(body.get("custom_args") or {}), **(personalization.get("custom_args") or {})}
            for to in personalization["to"]:
                yield Accepted(x_message_id, to["email"], _address(body["from"]),
                               personalization.get("subject") or body.get("subject", ""), content.get("text/html"),
                               content.get("text/plain"), custom_args.get("fidesmail_message_id"),
                               {"custom_args": custom_args, "categories": list(body.get("categories") or [])},
                               time.time())

    def _post_events(self, message: Accepted) -> None:
        outcome = self.outcome_for(message.recipient)
        with self._lock:
            hooks = [(hook, self._signers.get(hook["id"])) for hook in self.webhooks if hook["enabled"] and hook["url"]]
        for event in outcome:
            body = event_body(event, email=message.recipient, x_message_id=message.provider_id,
                              custom_args=message.extra["custom_args"], categories=message.extra["categories"])
            for hook, signer in hooks:
                if not hook.get(switch_for(event)):
                    continue
                data = json.dumps([body], separators=(",", ":")).encode()
                headers = signer.headers(data) if signer else {"Content-Type": "application/json"}
                self.events.submit(hook["url"], data, headers, (body["event"],), (message.provider_id,))

    # --- the event webhook settings API (called with self._lock held) ---

    def _settings(self, request: Request) -> tuple[int, dict | None]:
        rest = request.path[len(SETTINGS):].strip("/")
        method, payload = request.method, request.json()
        if rest == "all" and method == "GET":
            return 200, {"max_allowed": MAX_WEBHOOKS, "webhooks": [self._shown(hook) for hook in self.webhooks]}
        if rest == "signed" or rest.startswith("signed/"):
            return self._signed(method, rest.partition("/")[2], payload)
        if not isinstance(payload, dict) and method in ("POST", "PATCH"):
            return 400, errors("invalid request body")
        if rest == "" and method == "POST":
            problem = self._url_problem(payload.get("url"))
            if problem:
                return 400, problem
            if len(self.webhooks) >= MAX_WEBHOOKS:
                return 400, errors("You have reached the maximum number of webhooks per your current billing plan.")
            return 201, self._shown(self._new_webhook(payload))
        if rest == "" and not self.webhooks:
            if method == "GET":
                return 200, {"enabled": False, "url": "", **{name: False for name in EVENT_SWITCHES}}
            if method == "PATCH":
                return 200, self._shown(self._new_webhook(payload))
        hook = self._find(rest)
        if hook is None:
            return 404, {"errors": [{"message": "Invalid id provided."}]}
        if method == "GET":
            return 200, self._shown(hook)
        if method == "PATCH":
            if "url" in payload and self._url_problem(payload["url"], hook["id"]):
                return 400, self._url_problem(payload["url"], hook["id"])
            hook.update({name: value for name, value in payload.items()
                         if name in ("enabled", "url", "friendly_name", *EVENT_SWITCHES)})
            hook["updated_date"] = _now()
            return 200, self._shown(hook)
        if method == "DELETE" and rest:
            self.webhooks.remove(hook)
            self._signers.pop(hook["id"], None)
            return 204, None
        return 405, errors("method not allowed")

    def _signed(self, method: str, webhook_id: str, payload) -> tuple[int, dict]:
        hook = self._find(webhook_id)
        if hook is None:
            return 404, {"errors": [{"message": "Invalid id provided."}]}
        if method == "PATCH":
            if not isinstance(payload, dict) or not isinstance(payload.get("enabled"), bool):
                return 400, errors("enabled is required and must be a boolean", "enabled")
            if payload["enabled"]:
                self._signers.setdefault(hook["id"], EventSigner())
            else:
                self._signers.pop(hook["id"], None)
        elif method != "GET":
            return 405, errors("method not allowed")
        signer = self._signers.get(hook["id"])
        return 200, {"id": hook["id"], "public_key": signer.public_key if signer else ""}

    def _find(self, webhook_id: str) -> dict | None:
        if not webhook_id:
            return self.webhooks[0] if self.webhooks else None
        return next((hook for hook in self.webhooks if hook["id"] == webhook_id), None)

    def _url_problem(self, url, own_id: str | None = None) -> dict | None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return errors(f"'{url}' is not a valid url")
        for hook in self.webhooks:
            if hook["url"] == url and hook["id"] != own_id:
                return {"errors": [{"id": hook["id"], "url": url,
                                    "message": f"Webhook at '{url}' already exists. Please provide a unique URL."}]}
        return None

    def _new_webhook(self, payload: dict) -> dict:
        hook = {"enabled": bool(payload.get("enabled", True)), "url": payload.get("url", ""),
                **{name: bool(payload.get(name, False)) for name in EVENT_SWITCHES},
                "friendly_name": payload.get("friendly_name"), "id": secrets.token_hex(16),
                "created_date": _now(), "updated_date": _now()}
        self.webhooks.append(hook)
        return hook

    def _shown(self, hook: dict) -> dict:
        signer = self._signers.get(hook["id"])
        return {**hook, **({"public_key": signer.public_key} if signer else {})}


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _address(value: dict) -> str:
    return f"{value['name']} <{value['email']}>" if value.get("name") else value["email"]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until Ctrl-C or SIGTERM."""
    parser = standalone_arguments(__doc__.splitlines()[0], 9997, OUTCOMES,
                                  "register a signed event webhook to this URL (prints its public key)")
    parser.add_argument("--verify", action="append", default=[], metavar="ADDRESS|@DOMAIN",
                        help="a verified sender (repeatable)")
    args = parser.parse_args(argv)

    def prepare(fake: SendGridFake) -> list[str]:
        script_events(fake, args.events)
        lines = [f"SendGrid stand-in on {fake.base_url}"]
        if args.webhook:
            lines.append(f"event webhook public key: {fake.add_webhook(args.webhook)['public_key']}")
        return lines

    run_in_foreground(SendGridFake(args.key or ["SG.test-key"], verified_senders=args.verify or ["privacy@example.com"],
                                   host=args.host, port=args.port), prepare)


if __name__ == "__main__":
    main()
