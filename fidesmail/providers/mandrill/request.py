"""One Mailchimp Transactional messages/send call as plain data: the URL and the JSON body (the key is in it).

What reaches it (contract section 13): `POST {base}/messages/send` with `{"key", "message": {"from_email",
"from_name", "subject", "html", "text", "to": [{"email", "type": "to"}], "tags": [the action type],
"metadata": {"fidesmail_message_id": the record's id}}}`; Mandrill hands the metadata back in every event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from fidesmail.core.addresses import parse_address
from fidesmail.providers.base import Email
from fidesmail.providers.fields import split_sender
from fidesmail.providers.http import JsonRequest

BASE_URL = "https://mandrillapp.com/api/1.0"
MESSAGE_ID_METADATA = "fidesmail_message_id"


@dataclass(frozen=True, repr=False)
class MandrillRequest(JsonRequest):
    """One messages/send call (the key goes in the body)."""

    recipient: str = ""  # to find its own answer among the per-recipient ones


def message_of(details: Mapping, email: Email) -> dict:
    """The `message` object for one message to one address."""
    name, address = split_sender(details["email_from"])
    message = email.message
    return {
        "from_email": address,
        **({"from_name": name} if name else {}),
        "subject": message.subject,
        "html": message.html,
        "text": message.text,
        "to": [{"email": parse_address(email.to), "type": "to"}],
        "tags": [message.tag],
        "metadata": {MESSAGE_ID_METADATA: email.message_id},
    }


def build_request(details: Mapping, api_key: str, email: Email, base_url: str | None = None) -> MandrillRequest:
    """The POST /messages/send call for `email` (Mandrill sends test messages as any other)."""
    if not api_key:
        raise ValueError("a Mailchimp Transactional API key is required")
    body = json.dumps({"key": api_key, "message": message_of(details, email)}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    return MandrillRequest(f"{(base_url or BASE_URL).rstrip('/')}/messages/send", api_key, body,
                           parse_address(email.to))
