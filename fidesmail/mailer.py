"""Mailgun v3 sending: the request as plain data, and one pooled session with the contract's retry policy."""

from __future__ import annotations

import base64
import logging
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3.exceptions import NameResolutionError, ReadTimeoutError

from fidesmail.addresses import parse_address
from fidesmail.messages import Message

US_BASE_URL = "https://api.mailgun.net"
EU_BASE_URL = "https://api.eu.mailgun.net"

log = logging.getLogger(__name__)

_TRY_AGAIN = re.compile(r"try again after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_MAX_MESSAGE = 300
# OpenSSL's reasons when the other side answered a TLS hello with something that is not TLS.
_NOT_TLS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
            "UNKNOWN_PROTOCOL"}


@dataclass(frozen=True, repr=False)
class MailgunRequest:
    """One Mailgun API call as plain data; its repr never shows the key."""

    method: str
    url: str
    auth: tuple[str, str]
    data: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        names = [name for name, _ in self.data]
        auth = f"({self.auth[0]!r}, '***')"
        return f"MailgunRequest(method={self.method!r}, url={self.url!r}, auth={auth}, fields={names!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class SendResult:
    """Mailgun accepted the message."""

    id: str
    message: str
    attempts: int


class MailgunError(Exception):
    """Sending failed; `status` is what the API answers with, the message says why (never the key)."""

    status = 502

    def __init__(self, message: str, *, attempts: int = 1):
        super().__init__(message)
        self.message = message
        self.attempts = attempts


class MailgunRefused(MailgunError):
    """Mailgun answered with an error (after retries, for 420/429/5xx)."""

    def __init__(self, mailgun_status: int, message: str, *, attempts: int = 1):
        super().__init__(f"Mailgun answered {mailgun_status}: {message}", attempts=attempts)
        self.mailgun_status = mailgun_status
        self.mailgun_message = message


class MailgunBadAnswer(MailgunError):
    """Mailgun answered success without a message id."""


class MailgunUnreachable(MailgunError):
    """No connection to Mailgun could be made or kept, even after retries."""


class MailgunTimeout(MailgunError):
    """Mailgun did not answer in time after the request went out (it may still send)."""

    status = 504


def build_request(
    details: Mapping,
    api_key: str,
    message: Message,
    to: str,
    *,
    base_url: str | None = None,
    eu_base_url: str | None = None,
    test_mode: bool = False,
) -> MailgunRequest:
    """The POST /{api_version}/{domain}/messages call for one message to one address."""
    domain = details["domain"]
    version = details.get("api_version") or "v3"
    for name, value in (("domain", domain), ("api_version", version)):
        if not isinstance(value, str) or not value or "/" in value:
            raise ValueError(f"{name} must be a non-empty name without '/'")
    if not api_key:
        raise ValueError("a Mailgun API key is required")
    base = (eu_base_url or EU_BASE_URL) if details.get("is_eu_domain") else (base_url or US_BASE_URL)
    url = f"{base.rstrip('/')}/{quote(version, safe='')}/{quote(domain, safe='')}/messages"
    sender = details.get("sender")
    data = [
        ("from", parse_address(sender, allow_display_name=True) if sender else f"mailgun@{domain}"),
        ("to", parse_address(to)),
        ("subject", message.subject),
        ("html", message.html),
        ("text", message.text),
        ("o:tag", message.tag),
    ]
    if test_mode:
        data.append(("o:testmode", "yes"))
    return MailgunRequest("POST", url, ("api", api_key), tuple(data))


class Mailer:
    """Sends MailgunRequests over one pooled session: retries 420/429/5xx/failed connections only."""

    def __init__(
        self,
        timeout: float = 10,
        retries: int = 3,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_total_wait: float = 60,
        backoff: float = 0.5,
        max_backoff: float = 8,
        pool_size: int = 32,
    ):
        self.timeout = timeout
        self.retries = retries
        self.max_total_wait = max_total_wait
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._random = random.Random()
        self._environment: dict[str, dict] | None = None
        if session is None:
            session = requests.Session()
            # max_retries=0: urllib3 must not retry on its own; send() applies the contract's policy.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            # requests reads proxies and CA bundle from the environment on every call (~80 us a
            # send); read them once per Mailgun origin instead, then hand them in explicitly.
            self._environment = {}
        self.session = session

    def _environment_settings(self, url: str) -> dict:
        """HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE... as requests would apply them to `url`."""
        if self._environment is None:
            return {}
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        settings = self._environment.get(key)
        if settings is None:
            settings = requests.Session().merge_environment_settings(url, {}, None, None, None)
            self._environment[key] = settings
            self.session.trust_env = False  # the settings are passed in explicitly from now on
        return settings

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, request: MailgunRequest) -> SendResult:
        """Send with retries; return Mailgun's id or raise a MailgunError subclass."""
        secrets = _secret_forms(request.auth)
        host = _host(request.url)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    request.method,
                    request.url,
                    data=request.data,
                    auth=request.auth,
                    timeout=self.timeout,
                    # A redirect would turn the POST into a GET, or carry the key to another host.
                    allow_redirects=False,
                    **self._environment_settings(request.url),
                )
            except requests.RequestException as exc:
                if _is_read_timeout(exc):
                    raise MailgunTimeout(
                        f"Mailgun ({host}) did not answer within {self.timeout:g} s; the message may still be sent,"
                        " so it was not retried",
                        attempts=attempt,
                    ) from None
                if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
                    raise MailgunBadAnswer(f"Mailgun ({host}) broke off its answer", attempts=attempt) from None
                if not isinstance(exc, requests.ConnectionError):
                    raise MailgunUnreachable(f"cannot send to {host}: {type(exc).__name__}", attempts=attempt) from None
                status, text = None, _unreachable_reason(exc, host)
                delay = self._backoff_delay(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _result(response, attempt, secrets, host)
                text = _mailgun_message(response, secrets)
                if status in (420, 429):
                    delay = _retry_after(response, text)
                    delay = self._backoff_delay(attempt) if delay is None else delay
                elif status >= 500:
                    delay = self._backoff_delay(attempt)
                else:
                    raise MailgunRefused(status, _with_hint(status, text, host), attempts=attempt) from None
            if attempt > self.retries:
                note = ""
            elif time.monotonic() - started + delay > self.max_total_wait:
                note = f" (gave up: waiting {delay:g} s more would pass the {self.max_total_wait:g} s limit)"
            else:
                log.warning(
                    "Mailgun %s: %s %s; retry %d of %d in %.2f s",
                    host,
                    status or "connection failed:",
                    text,
                    attempt,
                    self.retries,
                    delay,
                )
                self._sleep(delay)
                continue
            if status is None:
                raise MailgunUnreachable(text + note, attempts=attempt)
            raise MailgunRefused(status, text + note, attempts=attempt)

    def _backoff_delay(self, attempt: int) -> float:
        # Exponential with jitter, so many senders failing together do not retry in lockstep.
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * self._random.uniform(0.5, 1.0)


def _secret_forms(auth: tuple[str, str]) -> tuple[str, ...]:
    user, key = auth
    header = base64.b64encode(f"{user}:{key}".encode()).decode()
    return tuple(s for s in (key, header) if s)


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _host(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _result(response: requests.Response, attempts: int, secrets: tuple[str, ...], host: str) -> SendResult:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        shown = _scrub(" ".join(response.text.split())[:_MAX_MESSAGE], secrets)
        raise MailgunBadAnswer(
            f"Mailgun ({host}) answered {response.status_code} without a message id: {shown or '(empty body)'}",
            attempts=attempts,
        )
    message = body.get("message")
    return SendResult(body["id"], message if isinstance(message, str) else "", attempts)


def _mailgun_message(response: requests.Response, secrets: tuple[str, ...]) -> str:
    """Mailgun's own `message` when the body is JSON, else the body text; short, one line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body["message"] if isinstance(body, dict) and isinstance(body.get("message"), str) else response.text
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return _scrub(text, secrets) or response.reason or "no message"


def _with_hint(status: int, text: str, host: str) -> str:
    if status == 404 and "domain not found" in text.lower():
        return (
            f"{text} (a Mailgun domain lives in one region; this was sent to {host}: set details.is_eu_domain"
            " to true for a domain in the EU region, false for the US region)"
        )
    if status == 401:
        return f"{text} (check the config's mailgun_api_key secret)"
    return text


def _retry_after(response: requests.Response, text: str) -> float | None:
    """Seconds from a Retry-After header (seconds or HTTP date), else from "try again after N seconds"."""
    header = response.headers.get("Retry-After", "").strip()
    if _SECONDS.match(header):
        return float(header)
    if header:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    found = _TRY_AGAIN.search(text)
    return float(found.group(1)) if found else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (requests and urllib3 nest them in args and .reason)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(e for e in inner if isinstance(e, BaseException))


def _is_read_timeout(exc: requests.RequestException) -> bool:
    # requests reports a stall while reading the body as a ConnectionError wrapping ReadTimeoutError.
    if isinstance(exc, requests.ConnectTimeout):
        return False
    return isinstance(exc, requests.ReadTimeout) or any(isinstance(e, ReadTimeoutError) for e in _causes(exc))


def _unreachable_reason(exc: requests.RequestException, host: str) -> str:
    """What a person can act on: refused, DNS, TLS, timeout or a dropped connection; naming the host."""
    causes = list(_causes(exc))
    if isinstance(exc, requests.ConnectTimeout):
        return f"connecting to {host} timed out (is the host reachable from here, through any proxy?)"
    for cause in causes:
        if isinstance(cause, (NameResolutionError, socket.gaierror)):
            return f"cannot resolve {host} (DNS lookup failed; check the base URL and the network)"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection to {host} refused (is the base URL right and the service up?)"
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f"TLS error talking to {host}: its certificate is not trusted ({cause.verify_message}); "
                    "check the base URL, or if a proxy re-signs TLS, point REQUESTS_CA_BUNDLE at its CA")
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or "handshake failed"
            if reason in _NOT_TLS:
                return (f"TLS error talking to {host}: it does not speak TLS ({reason}); "
                        "is the base URL https:// to a plain http:// port?")
            return f"TLS error talking to {host}: {reason}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error talking to {host}"
    return f"connection to {host} failed: it was closed or reset before Mailgun answered"
