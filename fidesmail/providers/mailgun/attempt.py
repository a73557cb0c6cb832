"""One POST to Mailgun and what came of it, as a value: accepted, retry (and when), refused, or unknown.

The synchronous sender (client.py) and the outbox both decide what to do next from this alone, so
the rules of what may be sent again live in one place: a 429/420 names its moment, a 5xx or a
connection that never carried the request may be tried again, and anything after the request went
out without a clean answer (a timeout, a dropped connection, a 200 without an id) may have been
queued by Mailgun and must never be posted again on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError, ReadTimeoutError

from fidesmail.providers.mailgun import failures
from fidesmail.providers.mailgun.request import MailgunRequest

# A date first: "try again after 2026-12-01 10:00:00 UTC" must not read as 2026 seconds.
_TRY_AGAIN = re.compile(r"try again after\s+(?P<when>[^.;()]{6,40}?\d{2}:\d{2}(?::\d{2})?"
                        r"(?:\s*(?:GMT|UTC|[+-]\d{2}:?\d{2}|Z))?|\d+(?:\.\d+)?\s*(?:seconds?|s)?\b)", re.IGNORECASE)
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Accepted:
    """Mailgun answered 200 with a message id."""

    mailgun_id: str
    message: str
    http_status: int = 200


@dataclass(frozen=True)
class Retry:
    """May be tried again: after `delay` seconds when Mailgun named the moment, else after a backoff."""

    reason: str
    http_status: int | None  # None: no connection was made
    delay: float | None = None

    @property
    def rate_limited(self) -> bool:
        return self.http_status in (420, 429)


@dataclass(frozen=True)
class Refused:
    """Mailgun refused for good (a 4xx other than 420/429); sending again would be refused again."""

    reason: str
    http_status: int


@dataclass(frozen=True)
class Unknown:
    """The request went out and no clean answer came: Mailgun may have queued it."""

    reason: str
    http_status: int | None = None


Outcome = Accepted | Retry | Refused | Unknown


def post_once(session: requests.Session, request: MailgunRequest, timeout: float, **settings) -> Outcome:
    """POST `request` once; never raises for anything Mailgun or the network does."""
    secrets = failures.secret_forms(request.auth)
    host = failures.host_of(request.url)
    try:
        response = session.request(
            request.method, request.url, data=request.data, auth=request.auth, timeout=timeout,
            # A redirect would turn the POST into a GET, or carry the key to another host.
            allow_redirects=False, **settings,
        )
    except requests.RequestException as exc:
        return _failed_connection(exc, host, timeout)
    status = response.status_code
    if 200 <= status < 300:
        return _accepted(response, secrets, host)
    text = failures.mailgun_message(response, secrets)
    if status in (420, 429):
        return Retry(text, status, retry_after(response.headers.get("Retry-After", ""), text))
    if status >= 500:
        return Retry(text, status)
    return Refused(failures.with_hint(status, text, host), status)


def _accepted(response: requests.Response, secrets: tuple[str, ...], host: str) -> Outcome:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        shown = failures.one_line(response.text, secrets)
        return Unknown(f"Mailgun ({host}) answered {response.status_code} without a message id: "
                       f"{shown or '(empty body)'}", response.status_code)
    message = body.get("message")  # Mailgun's words, kept in the record: scrubbed like its errors
    return Accepted(body["id"], failures.one_line(message, secrets) if isinstance(message, str) else "",
                    response.status_code)


def _never_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached Mailgun: no connection was ever made."""
    if isinstance(exc, (requests.ConnectTimeout,)):
        return True
    return any(isinstance(cause, (NewConnectionError, NameResolutionError, ConnectTimeoutError,
                                  ConnectionRefusedError)) for cause in failures.causes(exc)) \
        or isinstance(exc, requests.exceptions.SSLError)  # the TLS handshake comes before the request


def _failed_connection(exc: requests.RequestException, host: str, timeout: float) -> Outcome:
    if _never_sent(exc):
        return Retry(failures.unreachable_reason(exc, host), None)
    if isinstance(exc, requests.ReadTimeout) or any(isinstance(c, ReadTimeoutError) for c in failures.causes(exc)):
        return Unknown(f"Mailgun ({host}) did not answer within {timeout:g} s; the message may still be sent, "
                       "so it was not sent again")
    if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
        return Unknown(f"Mailgun ({host}) broke off its answer; the message may still be sent, so it was not "
                       "sent again")
    return Unknown(f"the connection to {host} was closed or reset after the request was sent, before Mailgun "
                   "answered; the message may still be sent, so it was not sent again")


def retry_after(header: str, text: str, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or HTTP date), else from "try again after <seconds or date>"."""
    header = header.strip()
    if _SECONDS.match(header):
        return float(header)
    when = _moment(header, now) if header else None
    if when is not None:
        return when
    found = _TRY_AGAIN.search(text)
    if found is None:
        return None
    phrase = found.group("when").strip()
    number = re.match(r"\d+(?:\.\d+)?", phrase)
    if number and not re.search(r"\d{2}:\d{2}", phrase):
        return float(number.group(0))
    return _moment(phrase, now)


def _moment(text: str, now: datetime | None) -> float | None:
    """Seconds until a date written as an HTTP date or ISO 8601; None when it is neither."""
    when = None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.replace(" UTC", "+00:00").replace("Z", "+00:00"))
        except ValueError:
            return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
