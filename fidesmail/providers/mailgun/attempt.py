"""Mailgun's answer to one messages POST, classified: accepted, retry (and when), refused, or unknown.

The rules of what may be sent again live here for Mailgun (providers/http.py has the connection's):
a 429/420 names its moment, a 5xx may be tried again, a 401 is the key refused, any other 4xx refuses
the message, and a 200 without an id may have been queued by Mailgun (Unknown: never posted again).
"""

from __future__ import annotations

import requests

from fidesmail.core.outcomes import Accepted, Outcome, Refused, Retry, Unknown
from fidesmail.providers import scrub
from fidesmail.providers.retry_after import retry_after


def classify(response: requests.Response, secrets: tuple[str, ...], host: str) -> Outcome:
    """What one answer of Mailgun's messages endpoint means."""
    status = response.status_code
    if 200 <= status < 300:
        return _accepted(response, secrets, host)
    text = mailgun_message(response, secrets)
    if status in (420, 429):
        return Retry(text, status, retry_after(response.headers.get("Retry-After", ""), text), rate_limited=True)
    if status >= 500:
        return Retry(text, status)
    return Refused(with_hint(status, text, host), status, key_refused=status in (401, 403))


def _accepted(response: requests.Response, secrets: tuple[str, ...], host: str) -> Outcome:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        shown = scrub.one_line(response.text, secrets)
        return Unknown(f"Mailgun ({host}) answered {response.status_code} without a message id: "
                       f"{shown or '(empty body)'}", response.status_code)
    message = body.get("message")  # Mailgun's words, kept in the record: scrubbed like its errors
    return Accepted(body["id"], scrub.one_line(message, secrets) if isinstance(message, str) else "",
                    response.status_code)


def mailgun_message(response: requests.Response, secrets: tuple[str, ...]) -> str:
    """Mailgun's own `message` when the body is JSON, else the body text; scrubbed, short, one line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body["message"] if isinstance(body, dict) and isinstance(body.get("message"), str) else response.text
    return scrub.one_line(text, secrets) or response.reason or "no message"


def with_hint(status: int, text: str, host: str) -> str:
    """Mailgun's words, and what to check for the refusals people hit most."""
    if status == 404 and "domain not found" in text.lower():
        return (
            f"{text} (a Mailgun domain lives in one region; this was sent to {host}: set details.is_eu_domain"
            " to true for a domain in the EU region, false for the US region)"
        )
    if status == 401:
        return f"{text} (check the config's mailgun_api_key secret)"
    return text
