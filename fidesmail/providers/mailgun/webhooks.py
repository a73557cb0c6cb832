"""Mailgun's webhook format: the signature (HMAC-SHA256 over timestamp + token) and one event, normalised.

Plain data and no I/O, as django-anymail reads them (`anymail/webhooks/mailgun.py`): the signature
block is `{"timestamp", "token", "signature"}`, the event is `event-data`. Mailgun signs only the
timestamp and the token, not the event: a token is therefore accepted once (records/events.py), and
a timestamp far from now is refused, so a captured webhook cannot be sent again later.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from fidesmail.core.addresses import mask_addresses
from fidesmail.core.outcomes import ACCEPTED, DELIVERED, FAILED
from fidesmail.records.events import Event, Signature

MAX_SKEW_SECONDS = 300  # a timestamp more than 5 minutes away from now is refused (contract section 10)
MESSAGE_ID_VARIABLE = "fidesmail-message-id"  # sent as v:fidesmail-message-id; back in user-variables
MAX_REASON = 500

# The signature triple as Mailgun sends it: a decimal timestamp, a random token, a hex HMAC.
_TIMESTAMP = re.compile(r"[0-9]{1,20}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
# Mailgun's names (events, severities) and fidesmail's record ids: plain tokens. Checked before they reach
# the database: PostgreSQL refuses a NUL in text outright, and records hold no control characters.
_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")  # \Z: marshmallow's Regexp matches at the start only
_RECORD_ID = re.compile(r"[A-Za-z0-9_]{1,32}")


def signature_of(body: Mapping) -> Signature | None:
    """The signature block of a webhook body, or None when it is missing or malformed."""
    block = body.get("signature") if isinstance(body, Mapping) else None
    if not isinstance(block, Mapping):
        return None
    values = [block.get(name) for name in ("timestamp", "token", "signature")]
    if not all(isinstance(value, str) for value in values):
        return None
    timestamp, token, signature = values
    if not (_TIMESTAMP.fullmatch(timestamp) and _TOKEN.fullmatch(token) and _SIGNATURE.fullmatch(signature)):
        return None
    return Signature(timestamp, token, signature)


def expected_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of timestamp + token under the webhook signing key."""
    message = (timestamp + token).encode("utf-8", "surrogatepass")
    return hmac.new(signing_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_by(signature: Signature, signing_key: str) -> bool:
    """Whether the triple was signed with `signing_key` (compared in constant time)."""
    expected = expected_signature(signing_key, signature.timestamp, signature.token).encode("ascii")
    # Bytes, so a stored triple altered into anything at all is a mismatch, never a TypeError.
    return hmac.compare_digest(expected, signature.signature.lower().encode("utf-8", "surrogatepass"))


def is_fresh(signature: Signature, now: float) -> bool:
    """Whether its timestamp is at most 5 minutes away from `now` (either way)."""
    return abs(int(signature.timestamp) - now) <= MAX_SKEW_SECONDS


# -- the event --------------------------------------------------------------------------------


def _text(maximum: int) -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(max=maximum))


class _Loose(Schema):
    """Mailgun sends many more fields than are read here: they are ignored, the ones read are checked."""

    class Meta:
        unknown = EXCLUDE


class _DeliveryStatus(_Loose):
    message = _text(4000)
    description = _text(4000)
    code = fields.Raw(allow_none=True)


class _Headers(_Loose):
    message_id = fields.String(data_key="message-id", allow_none=True, validate=validate.Length(max=998))


class _Message(_Loose):
    headers = fields.Nested(_Headers, allow_none=True)


class _Timestamp(fields.Float):
    """Seconds since the epoch, as Mailgun's event-data has them (a float)."""

    def _validated(self, value):
        number = super()._validated(value)
        if number is not None and not (math.isfinite(number) and 0 <= number < 1e11):
            raise self.make_error("invalid")
        return number


class EventDataSchema(_Loose):
    """The parts of `event-data` fidesmail reads."""

    event = fields.String(required=True, validate=[validate.Length(min=1, max=64), validate.Regexp(_NAME)])
    timestamp = _Timestamp(allow_none=True)
    severity = fields.String(allow_none=True, validate=[validate.Length(max=32), validate.Regexp(_NAME)])
    reason = _text(4000)
    delivery_status = fields.Nested(_DeliveryStatus, data_key="delivery-status", allow_none=True)
    message = fields.Nested(_Message, allow_none=True)
    user_variables = fields.Dict(data_key="user-variables", allow_none=True)


class WebhookSchema(_Loose):
    """A Mailgun webhook body: the signature block and the event (both checked by the view, in that order)."""

    signature = fields.Raw(allow_none=True, metadata={
        "description": "{timestamp, token, signature}: HMAC-SHA256 of timestamp + token under the config's "
                       "webhook signing key"})
    event_data = fields.Raw(data_key="event-data", allow_none=True, metadata={"description": "Mailgun's event"})


def status_after(name: str, severity: str | None) -> str | None:
    """The status an event reports (contract section 10), or None for events that are only kept."""
    if name == "accepted":
        return ACCEPTED
    if name == "delivered":
        return DELIVERED
    if name == "failed" and severity == "permanent":
        return FAILED
    return None


def parse_event(event_data, signature: Signature) -> Event:
    """The event its verified `signature` came with, normalised (its token is the event's key);
    ValidationError (marshmallow's messages) when it is not one."""
    if not isinstance(event_data, Mapping):
        raise ValidationError({"event-data": ["Missing data for required field." if event_data is None
                                              else "Not a valid mapping type."]})
    try:
        data = EventDataSchema().load(event_data)
    except ValidationError as exc:
        raise ValidationError({"event-data": exc.messages}) from None
    headers = (data.get("message") or {}).get("headers") or {}
    variables = data.get("user_variables") or {}
    fidesmail_id = variables.get(MESSAGE_ID_VARIABLE)
    timestamp = data.get("timestamp")
    severity = data.get("severity") or None
    status = status_after(data["event"], severity)
    reason = _reason(data)
    if status == FAILED and reason is None:
        reason = "Mailgun reported a permanent failure (it gave no reason)"
    return Event(
        event=data["event"],
        key=signature.token,
        occurred_at_ms=int(timestamp * 1000) if timestamp is not None else None,
        status=status,
        severity=severity,
        reason=reason,
        fidesmail_id=fidesmail_id if isinstance(fidesmail_id, str) and _RECORD_ID.fullmatch(fidesmail_id) else None,
        provider_ids=tuple(filter(None, [normalise_message_id(headers.get("message_id"))])),
    )


def normalise_message_id(value: str | None) -> str | None:
    """Mailgun's events name the message without the angle brackets its send answer has: add them."""
    if not value or not value.strip() or not value.isascii() or not value.isprintable():
        return None  # not a Message-ID (RFC 5322: printable ASCII), so no record has it
    value = value.strip()
    return value if value.startswith("<") and value.endswith(">") else f"<{value.strip('<>')}>"


def _reason(data: Mapping) -> str | None:
    """Why a delivery failed: the receiving server's words (with their SMTP code), else Mailgun's description,
    else its reason; for other events, Mailgun's reason if it gave one."""
    status = (data.get("delivery_status") or {}) if data["event"] == "failed" else {}
    words = next((w.strip() for w in (status.get("message"), status.get("description")) if w and w.strip()), None)
    if words is not None:
        code = status.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and str(code) not in words:
            words = f"{code} {words}"
    else:
        words = (data.get("reason") or "").strip() or None
    if words is None:
        return None
    words = "".join(char if char.isprintable() else " " for char in words)
    # Records keep no address: one in an MTA's words ("550 5.1.1 <a@b.c>: no such user") is masked.
    words = " ".join(mask_addresses(words).split())
    return words[:MAX_REASON] + "..." if len(words) > MAX_REASON else words
