"""SendGrid's answer to one Mail Send, classified: accepted, retry (and when), refused (key or message), unknown.

202 with an `X-Message-Id` is accepted (its id is what SendGrid's events carry, before a dot); a 200 to a
sandboxed request is a success without an id (contract section 13). 429 is retried at the moment its
`X-RateLimit-Reset` (Unix seconds) or `Retry-After` names, a 5xx may be tried again. A 401 is the key
refused; so is a 403, unless one of its errors names the `from` field (an unverified sender: the message
is refused). Any other 4xx refuses the message, in SendGrid's own words.
"""

from __future__ import annotations

import time

import requests

from fidesmail.core.outcomes import Accepted, Outcome, Refused, Retry, Unknown
from fidesmail.providers import scrub
from fidesmail.providers.retry_after import retry_after

LABEL = "SendGrid"


def classify(response: requests.Response, secrets: tuple[str, ...], host: str, sandboxed: bool) -> Outcome:
    """What one answer of SendGrid's Mail Send means."""
    status = response.status_code
    if 200 <= status < 300:
        return _accepted(response, secrets, host, sandboxed)
    errors = _errors(response)
    text = scrub.one_line(_words(errors), secrets) or scrub.one_line(response.text, secrets) or response.reason
    if status == 429:
        return Retry(text, status, _moment(response, text), rate_limited=True)
    if status >= 500:
        return Retry(text, status)
    if status == 401 or (status == 403 and not _names_from(errors)):
        return Refused(f"{text} (check the config's twilio_api_key secret: a SendGrid API key with the Mail "
                       "Send permission)", status, key_refused=True)
    if status == 403:
        return Refused(f"{text} (verify the address of details.twilio_email_from as a Sender Identity in "
                       "SendGrid)", status)
    return Refused(text, status)


def _accepted(response: requests.Response, secrets: tuple[str, ...], host: str, sandboxed: bool) -> Outcome:
    message_id = response.headers.get("X-Message-Id", "").strip()
    if message_id:
        return Accepted(scrub.one_line(message_id, secrets), response.reason or "Accepted", response.status_code)
    if sandboxed and response.status_code == 200:
        return Accepted(None, "sandbox mode: SendGrid checked the message and sent nothing", 200)
    shown = scrub.one_line(response.text, secrets)
    return Unknown(f"{LABEL} ({host}) answered {response.status_code} without an X-Message-Id: "
                   f"{shown or '(empty body)'}", response.status_code)


def _errors(response: requests.Response) -> list[dict]:
    """SendGrid's `{"errors": [{"message", "field", "help"}]}`, or [] when the body is not that."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []


def _words(errors: list[dict]) -> str:
    """Each error's message, with the field it names."""
    said = []
    for error in errors:
        message, field = error.get("message"), error.get("field")
        if isinstance(message, str) and message:
            said.append(f"{message} (field: {field})" if isinstance(field, str) and field else message)
    return "; ".join(said)


def _names_from(errors: list[dict]) -> bool:
    fields = [error.get("field") for error in errors]
    return any(isinstance(field, str) and (field == "from" or field.startswith("from.")) for field in fields)


def _moment(response: requests.Response, text: str) -> float | None:
    """Seconds until SendGrid's rate limit resets: Retry-After, else X-RateLimit-Reset (a Unix time)."""
    delay = retry_after(response.headers.get("Retry-After", ""), "")
    if delay is not None:
        return delay
    reset = response.headers.get("X-RateLimit-Reset", "").strip()
    if reset.isdigit():
        return max(0.0, int(reset) - time.time())
    return retry_after("", text)
