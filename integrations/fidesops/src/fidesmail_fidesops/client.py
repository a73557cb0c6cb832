"""POST /api/v1/email/send to fidesmail: one pooled session per process, retries that cannot send twice."""

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
                                                timeout=(min(5.0, settings.timeout), settings.timeout))
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
        if response.status_code == 200:
            return _json(response) or {}
        body = _json(response)
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
                    session = requests.Session()
                    self._sessions = {pid: session}
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
