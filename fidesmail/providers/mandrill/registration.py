"""Pointing a Mailchimp Transactional (Mandrill) webhook at fidesmail through its webhooks API; its key.

As Mandrill's API 1.0 has it (and the stand-in, tests/standins/mandrill.py): `webhooks/list`, then
`webhooks/add` (`url`, `description`, `events`) or `webhooks/update` for the one already posting to the
URL; each answers the webhook with the `auth_key` its posts are signed with. Mandrill signs the URL as
registered: it must be the one fidesmail sees (FIDESMAIL_PUBLIC_URL behind a proxy).
"""

from __future__ import annotations

import json

import requests

from fidesmail.providers import bounded

EVENTS = ("send", "deferral", "hard_bounce", "soft_bounce", "open", "click", "spam", "unsub", "reject")
_MAX_ANSWER = 256 * 1024


class RegistrationError(Exception):
    """Mandrill refused or could not be reached; the message names no key."""


class MandrillWebhooks:
    """The webhooks of the account the API key belongs to."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0):
        self.base = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, call: str, body: dict):
        try:
            answer = bounded.request(self._session, "POST", f"{self.base}/webhooks/{call}.json", timeout=self.timeout,
                                     max_bytes=_MAX_ANSWER, headers={"Content-Type": "application/json"},
                                     data=json.dumps({"key": self.api_key, **body}).encode())
        except bounded.BoundedError as exc:
            raise RegistrationError(f"Mandrill could not be reached: {exc}") from None
        try:
            parsed = json.loads(answer.body or b"null")
        except ValueError:
            parsed = None
        if answer.status != 200:
            words = parsed.get("message") if isinstance(parsed, dict) else None
            raise RegistrationError(f"Mandrill answered {answer.status}" + (f": {words}" if words else ""))
        return parsed

    def register(self, url: str) -> tuple[str, str]:
        """Every delivery event posted to `url`: ("created" or "updated", the webhook's auth_key)."""
        hooks = self._call("list", {})
        mine = next((hook for hook in hooks or [] if isinstance(hook, dict) and hook.get("url") == url), None)
        body = {"url": url, "description": "fidesmail", "events": list(EVENTS)}
        hook, done = (self._call("add", body), "created") if mine is None else \
            (self._call("update", {**body, "id": mine["id"]}), "updated")
        key = hook.get("auth_key") if isinstance(hook, dict) else None
        if not isinstance(key, str) or not key:
            raise RegistrationError("Mandrill did not answer the webhook's auth_key")
        return done, key
