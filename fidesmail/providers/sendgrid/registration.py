"""Pointing SendGrid's Event Webhook at fidesmail through its settings API, signed; its verification key.

As SendGrid's v3 API has it (and the stand-in, tests/standins/sendgrid.py): the account's event
webhooks (`GET /v3/user/webhooks/event/settings/all`), one created (`POST .../settings`) or updated
(`PATCH .../settings/{id}`) to post every event to the URL, then signing turned on
(`PATCH .../settings/signed/{id}` `{"enabled": true}`), which answers the public key to verify with.
"""

from __future__ import annotations

import json

import requests

from fidesmail.providers import bounded

SETTINGS = "/v3/user/webhooks/event/settings"
# The settings' switch of each event (SendGrid's names: `processed`, `delivered`, `bounce`, ... , `open`...).
SWITCHES = tuple(sorted({"processed", "delivered", "bounce", "dropped", "deferred", "open", "click", "spam_report",
                         "unsubscribe", "group_unsubscribe", "group_resubscribe"}))
_MAX_ANSWER = 256 * 1024


class RegistrationError(Exception):
    """SendGrid refused or could not be reached; the message names no key."""


class SendGridWebhooks:
    """The Event Webhook settings of the account the API key belongs to."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0):
        self.base = base_url.rstrip("/") + SETTINGS
        self.timeout = timeout
        self._session = requests.Session()
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        try:
            answer = bounded.request(self._session, method, self.base + path, timeout=self.timeout,
                                     max_bytes=_MAX_ANSWER, headers=self._headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        except bounded.BoundedError as exc:
            raise RegistrationError(f"SendGrid could not be reached: {exc}") from None
        try:
            parsed = json.loads(answer.body or b"{}")
        except ValueError:
            parsed = {}
        if not 200 <= answer.status < 300:
            errors = parsed.get("errors") if isinstance(parsed, dict) else None
            words = errors[0].get("message") if isinstance(errors, list) and errors and isinstance(errors[0], dict) \
                else None
            raise RegistrationError(f"SendGrid answered {answer.status}" + (f": {words}" if words else ""))
        return parsed if isinstance(parsed, dict) else {}

    def register(self, url: str) -> tuple[str, str]:
        """Every event posted to `url`, signed: ("created" or "updated", the base64 public key)."""
        settings = {"enabled": True, "url": url, **dict.fromkeys(SWITCHES, True)}
        existing = self._call("GET", "/all").get("webhooks") or []
        mine = next((hook for hook in existing if isinstance(hook, dict) and hook.get("url") == url), None)
        if mine is None:
            hook, done = self._call("POST", "", {**settings, "friendly_name": "fidesmail"}), "created"
        else:
            hook, done = self._call("PATCH", f"/{mine['id']}", settings), "updated"
        signed = self._call("PATCH", f"/signed/{hook['id']}", {"enabled": True})
        key = signed.get("public_key")
        if not isinstance(key, str) or not key:
            raise RegistrationError("SendGrid did not answer a verification key for the signed webhook")
        return done, key
