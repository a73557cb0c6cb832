"""POST /api/v1/email/send to fidesmail: one pooled session per process, retries that cannot send twice.

The request carries the bearer token and the email (address, one-time code), so it goes to FIDESMAIL_URL
and nowhere else: no redirect is followed (requests would re-post the body to wherever a Location
points, without the token), and the environment's HTTP_PROXY/HTTPS_PROXY, set for fidesops' other
traffic, are not used (trust_env off): a proxy only when FIDESMAIL_PROXY names one. A 200 that is not
fidesmail's send answer (no `message_id`) is a failure, never taken for a sent email.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import requests

from .settings import Settings

log = logging.getLogger("fidesmail_fidesops")

_BACKOFF_SECONDS = 0.5


class SendFailed(Exception):
    """fidesmail did not send the email; the message is safe to show (no token, no address)."""


class Refused(SendFailed):
    """fidesmail answered, but not 200: its status and `detail`."""

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
    """Sends through fidesmail with the adapter's settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._sessions: dict[int, requests.Session] = {}
        self._lock = threading.Lock()
        # Set once fidesmail answers that it does not know `reference` (a fidesmail older than
        # message records): later sends in this process leave it out instead of asking twice.
        self.reference_supported = True

    def send(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """fidesmail's 200 answer; Refused for any other answer, SendFailed when it cannot be reached."""
        if "reference" in payload and not self.reference_supported:
            payload = {k: v for k, v in payload.items() if k != "reference"}
        try:
            return self._post(payload, idempotency_key)
        except Refused as refusal:
            if "reference" not in payload or not _only_reference_refused(refusal):
                raise
            log.warning("fidesmail does not accept `reference` (it is older than message records); "
                        "sending without the privacy request id")
            self.reference_supported = False
            return self._post({k: v for k, v in payload.items() if k != "reference"}, idempotency_key)

    def _post(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        settings = self.settings
        headers = {"Authorization": f"Bearer {settings.token}", "Idempotency-Key": idempotency_key}
        for attempt in range(settings.retries + 1):
            try:
                response = self._session().post(settings.send_url, json=payload, headers=headers,
                                                timeout=(min(5.0, settings.timeout), settings.timeout),
                                                allow_redirects=False)
                break
            except requests.Timeout as exc:
                if isinstance(exc, requests.ConnectTimeout) and attempt < settings.retries:
                    self._pause(attempt, exc)
                    continue
                raise SendFailed(f"fidesmail did not answer within {settings.timeout:g} s; it may still send "
                                 "the email (a retry of this email with the same Idempotency-Key sends it once)"
                                 ) from None
            except requests.ConnectionError as exc:
                # Refused or reset: fidesmail restarting. The same Idempotency-Key makes the next try
                # safe even if the first reached it: fidesmail then answers the first outcome.
                if attempt < settings.retries:
                    self._pause(attempt, exc)
                    continue
                log.error("fidesmail at %s cannot be reached after %d tries: %s", settings.url, attempt + 1,
                          type(exc).__name__)
                raise SendFailed(f"fidesmail cannot be reached (tried {attempt + 1} times)") from None
        body = _json(response)
        if response.status_code == 200:
            if isinstance(body, dict) and isinstance(body.get("message_id"), str) and body["message_id"]:
                return body
            log.error("fidesmail at %s answered 200 without a message_id: not its send answer", settings.url)
            raise SendFailed("fidesmail's answer (200) is not a send answer (no message_id); the email may or may "
                             "not have been sent")
        if 300 <= response.status_code < 400:
            log.error("fidesmail at %s answered %d (a redirect, not followed): check FIDESMAIL_URL", settings.url,
                      response.status_code)
            raise SendFailed(f"fidesmail answered {response.status_code} (a redirect, not followed); the email was "
                             "not sent")
        detail = body.get("detail") if isinstance(body, dict) and "detail" in body else (
            response.text[:500] or response.reason)
        raise Refused(response.status_code, detail)

    def _pause(self, attempt: int, exc: Exception) -> None:
        log.warning("fidesmail at %s not reachable (%s); trying again", self.settings.url, type(exc).__name__)
        time.sleep(_BACKOFF_SECONDS * 2 ** attempt)

    def _session(self) -> requests.Session:
        # Celery's prefork workers fork after fidesops is imported: a child must not reuse its
        # parent's pooled sockets, so each process makes its own session.
        pid = os.getpid()
        session = self._sessions.get(pid)
        if session is None:
            with self._lock:
                session = self._sessions.get(pid)
                if session is None:
                    session = self._new_session()
                    self._sessions = {pid: session}
        return session


    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no HTTP_PROXY, NO_PROXY or .netrc: the token goes where FIDESMAIL_URL says
        if self.settings.proxy:
            session.proxies = {"http": self.settings.proxy, "https": self.settings.proxy}
        # trust_env off also stops requests reading a CA bundle from the environment: kept, it sends nothing.
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        return session


def _json(response: requests.Response) -> Any | None:
    try:
        return response.json()
    except ValueError:
        return None


def _only_reference_refused(refusal: Refused) -> bool:
    detail = refusal.detail
    return (refusal.status == 422 and isinstance(detail, list) and bool(detail)
            and all(isinstance(item, dict) and list(item.get("loc") or []) == ["body", "reference"]
                    for item in detail))
