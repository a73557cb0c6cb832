"""A provider's words made fit to keep (secrets scrubbed, addresses masked, one line, cut), and failed connections told.

Whatever a provider says (an error, a success message) may quote the key it was given, and may quote
the recipient (Mailgun does in some errors); this is where the key is taken out (plain, in an auth
header, base64, hex, URL-encoded) and every address masked (plain, <quoted>, "quoted", %40-encoded)
before the text is cut to length, answered, logged or stored: records keep no address. The
connection's failures are told here too, naming the host and what a person can check.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import quote, quote_plus, urlsplit

import requests
from urllib3.exceptions import NameResolutionError

from fidesmail.core.addresses import mask_addresses

MAX_MESSAGE = 300
# OpenSSL's reasons when the other side answered a TLS hello with something that is not TLS.
_NOT_TLS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
            "UNKNOWN_PROTOCOL"}


def secret_forms(auth: tuple[str, str]) -> tuple[str, ...]:
    """The key as it may come back in a provider's words: plain, in a Basic auth header, base64, hex, URL-encoded."""
    user, key = auth
    if not key:
        return ()
    raw = key.encode("utf-8", "surrogatepass")
    forms = {key, base64.b64encode(f"{user}:{key}".encode()).decode(), raw.hex(), quote(key, safe=""),
             quote_plus(key)}
    for offset in range(3):  # base64 of the key inside a longer blob: whole groups of key bytes, per alignment
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        middle = encoded[4 * -(-offset // 3): 4 * ((offset + len(raw)) // 3)]
        if len(middle) >= 8:
            forms.add(middle)
    return tuple(sorted(forms, key=len, reverse=True))  # longest first: no partial form left behind


def forms_of(*secrets: str) -> tuple[str, ...]:
    """Every form of several secrets (API keys sent in a header or a body rather than as HTTP Basic auth)."""
    found = {form for secret in secrets if secret for form in secret_forms(("", secret))}
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every form of the key replaced (case-insensitively for the encoded forms)."""
    lowered = text.lower()
    for secret in secrets:
        needle = secret.lower()
        start = lowered.find(needle)
        while start >= 0:
            text = text[:start] + "***" + text[start + len(secret):]
            lowered = text.lower()
            start = lowered.find(needle, start + 3)
    return text


def one_line(text: str, secrets: tuple[str, ...]) -> str:
    """A provider's words as they may be stored, answered or logged: keys scrubbed, addresses masked, then
    cut (cutting first could leave the start of a key or an address that scrubbing no longer finds)."""
    text = " ".join(mask_addresses(scrub(text, secrets)).split())
    return text[:MAX_MESSAGE] + "..." if len(text) > MAX_MESSAGE else text


def host_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def causes(exc: BaseException) -> Iterator[BaseException]:
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


def unreachable_reason(exc: requests.RequestException, host: str) -> str:
    """What a person can act on: refused, DNS, TLS or a connect timeout; naming the host."""
    found = list(causes(exc))
    if isinstance(exc, requests.ConnectTimeout):
        return f"connecting to {host} timed out (is the host reachable from here, through any proxy?)"
    for cause in found:
        if isinstance(cause, (NameResolutionError, socket.gaierror)):
            return f"cannot resolve {host} (DNS lookup failed; check the base URL and the network)"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection to {host} refused (is the base URL right and the service up?)"
    for cause in found:
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
    return f"cannot connect to {host}"
