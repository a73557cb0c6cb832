"""POST /api/v1/email/send to fidesmail: one pooled session per process, retries that cannot send twice.

What the session does on purpose (the bearer token and the recipient's address travel in each request):
- `trust_env = False`: HTTP(S)_PROXY, ALL_PROXY, NO_PROXY and ~/.netrc are not read. The hosts' containers
  often carry a proxy for the SaaS APIs they call; fidesmail is a sidecar or a service inside the cluster,
  and the token must not reach a proxy by accident (nor a .netrc entry replace the Authorization header).
  A proxy is used only when FIDESMAIL_PROXY names one; a private CA is named with FIDESMAIL_CA_BUNDLE.
- No redirect is followed: requests would re-send the address and the one-time code to wherever a
  3xx points (without the token). A redirect is a failure that names its status.
- A 200 without a `message_id` is not a send: fidesmail names its record in every answer it sends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import requests

from .settings import Settings

_BACKOFF_SECONDS = 0.5


class SendFailed(Exception):
    """fidesmail did not send the message; the text is safe to show (no token, no address, no URL)."""


class Unavailable(SendFailed):
    """fidesmail could not be reached, or did not answer in time: a later try may work."""


class Refused(SendFailed):
    """fidesmail answered, but not with a sent message: its status and `detail`."""

    def __init__(self, status: int, detail: Any):
        self.status = status
        self.detail = detail
        super().__init__(f"fidesmail refused the email ({status}): {describe_detail(detail)}")


def describe_detail(detail: Any) -> str:
    """fidesmail's `detail` as one line: a string as it is, a validation list as `loc: msg; ...`."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc") or [])
                parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class Client:
    """Sends through fidesmail with the adapter's settings; `adapter` names the logger."""

    def __init__(self, settings: Settings, adapter: str = "fidesmail_sidecar"):
        self.settings = settings
        self.log = logging.getLogger(adapter)
        self._sessions: dict[int, requests.Session] = {}
        self._lock = threading.Lock()
        # Set once fidesmail answers that it does not know `reference` (a fidesmail older than
        # message records): later sends in this process leave it out instead of asking twice.
        self.reference_supported = True

    def send(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """fidesmail's 200 answer (it has a message_id); Refused for any other answer, Unavailable
        when fidesmail cannot be reached or does not answer in time."""
        if "reference" in payload and not self.reference_supported:
            payload = {k: v for k, v in payload.items() if k != "reference"}
        try:
            return self._answer(self._post(payload, idempotency_key))
        except Refused as refusal:
            if "reference" not in payload or not _only_reference_refused(refusal):
                raise
            self.log.warning("fidesmail does not accept `reference` (it is older than message records); "
                             "sending without the privacy request id")
            self.reference_supported = False
            return self._answer(self._post({k: v for k, v in payload.items() if k != "reference"}, idempotency_key))

    def _answer(self, response: requests.Response) -> dict[str, Any]:
        if 300 <= response.status_code < 400:
            self.log.error("fidesmail at %s answered %d (a redirect, not followed): check FIDESMAIL_URL",
                           self.settings.url, response.status_code)
            raise Refused(response.status_code, "fidesmail answered with a redirect, which is not followed; "
                                                "FIDESMAIL_URL must name fidesmail itself")
        body = _json(response)
        if response.status_code == 200:
            if isinstance(body, dict) and isinstance(body.get("message_id"), str) and body["message_id"]:
                return body
            raise Refused(200, "fidesmail's answer names no message_id, so nothing proves the email was "
                               "accepted; is FIDESMAIL_URL fidesmail?")
        detail = body.get("detail") if isinstance(body, dict) and "detail" in body else (
            response.text[:500] or response.reason)
        raise Refused(response.status_code, detail)

    def _post(self, payload: dict[str, Any], idempotency_key: str) -> requests.Response:
        settings = self.settings
        headers = {"Authorization": f"Bearer {settings.token}", "Idempotency-Key": idempotency_key}
        for attempt in range(settings.retries + 1):
            try:
                return self._session().post(settings.send_url, json=payload, headers=headers,
                                            timeout=(min(5.0, settings.timeout), settings.timeout),
                                            allow_redirects=False, verify=settings.verify)
            except requests.Timeout as exc:
                if isinstance(exc, requests.ConnectTimeout) and attempt < settings.retries:
                    self._pause(attempt, exc)
                    continue
                raise Unavailable(f"fidesmail did not answer within {settings.timeout:g} s; it may still send "
                                  "the email (a retry of this email with the same Idempotency-Key sends it once)"
                                  ) from None
            except requests.ConnectionError as exc:
                # Refused or reset: fidesmail restarting. The same Idempotency-Key makes the next try
                # safe even if the first reached it: fidesmail then answers the first outcome.
                if attempt < settings.retries:
                    self._pause(attempt, exc)
                    continue
                self.log.error("fidesmail at %s cannot be reached after %d tries: %s", settings.url, attempt + 1,
                               type(exc).__name__)
                raise Unavailable(f"fidesmail cannot be reached (tried {attempt + 1} times)") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pause(self, attempt: int, exc: Exception) -> None:
        self.log.warning("fidesmail at %s not reachable (%s); trying again", self.settings.url, type(exc).__name__)
        time.sleep(_BACKOFF_SECONDS * 2 ** attempt)

    def _session(self) -> requests.Session:
        # Celery's prefork workers fork after the host is imported: a child must not reuse its
        # parent's pooled sockets, so each process makes its own session.
        pid = os.getpid()
        session = self._sessions.get(pid)
        if session is None:
            with self._lock:
                session = self._sessions.get(pid)
                if session is None:
                    session = requests.Session()
                    session.trust_env = False  # see the module docstring
                    if self.settings.proxy:
                        session.proxies = {"http": self.settings.proxy, "https": self.settings.proxy}
                    self._sessions = {pid: session}
        return session


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _only_reference_refused(refusal: Refused) -> bool:
    detail = refusal.detail
    return (refusal.status == 422 and isinstance(detail, list) and bool(detail)
            and all(isinstance(item, dict) and list(item.get("loc") or []) == ["body", "reference"]
                    for item in detail))
