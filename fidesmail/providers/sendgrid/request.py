"""One SendGrid v3 Mail Send call as plain data: the URL, the key and the JSON body, built from a config and a message.

What reaches SendGrid (contract section 13): `POST {base}/v3/mail/send`, `Authorization: Bearer {key}`, one
personalization to the recipient, `from`, `subject`, `content` (text/plain, then text/html: SendGrid's
order), `categories` = [the action type], `custom_args.fidesmail_message_id` = the record's id (SendGrid
hands it back in every event), and for the test endpoint `mail_settings.sandbox_mode` (checked, not sent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from fidesmail.core.addresses import parse_address
from fidesmail.providers.base import Email
from fidesmail.providers.fields import split_sender
from fidesmail.providers.http import JsonRequest

BASE_URL = "https://api.sendgrid.com"
MESSAGE_ID_ARG = "fidesmail_message_id"


@dataclass(frozen=True, repr=False)
class SendGridRequest(JsonRequest):
    """One Mail Send call (the key goes in a header)."""

    sandbox: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}


def body_of(details: Mapping, email: Email) -> dict:
    """The Mail Send JSON for one message to one address."""
    name, address = split_sender(details["twilio_email_from"])
    message = email.message
    # Empty parts are left out: SendGrid refuses an empty content value (400), one part is enough.
    content = [{"type": kind, "value": value} for kind, value in (("text/plain", message.text),
                                                                   ("text/html", message.html)) if value]
    body = {
        "personalizations": [{"to": [{"email": parse_address(email.to)}]}],
        "from": {"email": address, **({"name": name} if name else {})},
        "subject": message.subject,
        "content": content,
        "categories": [message.tag],
        "custom_args": {MESSAGE_ID_ARG: email.message_id},
    }
    if email.test_mode:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def build_request(details: Mapping, api_key: str, email: Email, base_url: str | None = None) -> SendGridRequest:
    """The POST /v3/mail/send call for `email`."""
    if not api_key:
        raise ValueError("a SendGrid API key is required")
    body = json.dumps(body_of(details, email), ensure_ascii=False, separators=(",", ":")).encode()
    return SendGridRequest(f"{(base_url or BASE_URL).rstrip('/')}/v3/mail/send", api_key, body, email.test_mode)
