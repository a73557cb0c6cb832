"""Mailchimp Transactional's answer to one messages/send, classified (contract section 13).

A 200 is a list with one answer per recipient: `sent`, `queued` or `scheduled` is accepted (its `_id` is
what the events carry); `rejected` or `invalid` refuses the message, with its `reject_reason`. Mandrill
answers every error with HTTP 500 and `{"status": "error", "name", "message"}`, so its error name decides:
`Invalid_Key` is the key refused, `ValidationError` the message refused, anything else may be tried again.
A 429 (a proxy's or a future limit's) is retried at its Retry-After.
"""

from __future__ import annotations

import requests

from fidesmail.core.outcomes import Accepted, Outcome, Refused, Retry, Unknown
from fidesmail.providers import scrub
from fidesmail.providers.retry_after import retry_after

LABEL = "Mailchimp Transactional"
TAKEN = ("sent", "queued", "scheduled")
REFUSED = ("rejected", "invalid")
KEY_REFUSED, MESSAGE_REFUSED = "Invalid_Key", "ValidationError"
# What to do about the reject reasons a sender (not the recipient) can fix.
_HINTS = {"unsigned": "the sending domain of details.email_from is not verified (DKIM/SPF) in Mailchimp Transactional",
          "invalid-sender": "details.email_from is not an address Mailchimp Transactional will send from",
          "test-mode-limit": "a test-mode API key sends to a few addresses only"}


def classify(response: requests.Response, secrets: tuple[str, ...], host: str, recipient: str) -> Outcome:
    """What one answer of messages/send means."""
    status = response.status_code
    body = _json(response)
    if status == 200 and isinstance(body, list):
        return _per_recipient(body, secrets, host, recipient)
    name, words = _error(body)
    text = scrub.one_line(f"{name}: {words}" if name else response.text, secrets) or response.reason
    if status == 429:
        return Retry(text, status, retry_after(response.headers.get("Retry-After", ""), text), rate_limited=True)
    if name == KEY_REFUSED or (name is None and status in (401, 403)):
        return Refused(f"{text} (check the config's mailchimp_transactional_api_key secret)", status,
                       key_refused=True)
    if name == MESSAGE_REFUSED or (name is None and 400 <= status < 500):
        return Refused(text, status)
    if name is not None or status >= 500:
        return Retry(text, status)
    return Unknown(f"{LABEL} ({host}) answered {status} without a list of recipients: {text}", status)


def _per_recipient(items: list, secrets: tuple[str, ...], host: str, recipient: str) -> Outcome:
    mine = [item for item in items if isinstance(item, dict)
            and str(item.get("email", "")).lower() == recipient.lower()] or \
        [item for item in items if isinstance(item, dict)]
    item = mine[0] if mine else {}
    status, message_id = item.get("status"), item.get("_id")
    if status in TAKEN and isinstance(message_id, str) and message_id:
        why = item.get("queued_reason")
        return Accepted(message_id, f"{status} ({why})" if isinstance(why, str) and why else status, 200)
    if status in REFUSED:
        reason = item.get("reject_reason")
        words = f"the recipient was {status}" + (f": {reason}" if isinstance(reason, str) and reason else "")
        words += f" ({_HINTS[reason]})" if reason in _HINTS else ""
        return Refused(scrub.one_line(words, secrets), 200)
    shown = scrub.one_line(repr(item)[:200], secrets)
    return Unknown(f"{LABEL} ({host}) answered 200 without a status and id it names as taken: {shown}", 200)


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _error(body) -> tuple[str | None, str]:
    """Mandrill's error name and message, or (None, "") when the body is not its error."""
    if not isinstance(body, dict) or body.get("status") != "error" or not isinstance(body.get("name"), str):
        return None, ""
    message = body.get("message")
    return body["name"], message if isinstance(message, str) else ""
