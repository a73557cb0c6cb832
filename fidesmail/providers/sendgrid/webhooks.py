"""SendGrid's Signed Event Webhook: ECDSA P-256 over the timestamp header and the raw body; its events, normalised.

As SendGrid documents it and its own `EventWebhook` helper checks it: the signature (base64 DER) in
`X-Twilio-Email-Event-Webhook-Signature` is ECDSA/SHA-256 over the
`X-Twilio-Email-Event-Webhook-Timestamp` header's value followed by the raw body, made with the key
whose public half SendGrid shows as base64 DER (the config's `twilio_email_webhook_public_key`). A
timestamp more than 5 minutes away is refused, so a captured post cannot be replayed later; each event
is kept once by its `sg_event_id`. Events as django-anymail reads them (anymail/webhooks/sendgrid.py):
a JSON array, the message's custom args flattened into each event.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fidesmail.core.outcomes import ACCEPTED, DELIVERED, FAILED
from fidesmail.providers import webhooks
from fidesmail.providers.sendgrid.secrets import WEBHOOK_PUBLIC_KEY
from fidesmail.providers.webhooks import Inbound, NotAnEvent, Verified, WebhookRefused
from fidesmail.records.events import Event
from fidesmail.records.webhook_posts import SignedPost

SERVICE_TYPE = "twilio_email"
KEY_FIELD = WEBHOOK_PUBLIC_KEY
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MESSAGE_ID_ARG = "fidesmail_message_id"  # the send's custom arg, flattened into each event
EVENT_NAMES = frozenset({"processed", "delivered", "bounce", "dropped", "deferred", "open", "click", "spamreport",
                         "unsubscribe", "group_unsubscribe", "group_resubscribe"})
_STATUS = {"processed": ACCEPTED, "delivered": DELIVERED, "bounce": FAILED, "dropped": FAILED}
_SEVERITY = {"bounce": "permanent", "dropped": "permanent", "deferred": "temporary"}
NOT_VERIFIED = "SendGrid event webhook signature missing or wrong."
TOO_OLD = "SendGrid event webhook timestamp is more than 5 minutes away from now."


def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER, P-256); ValueError when it is not one."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def signed_by(key_text: str, timestamp: str, signature: str, body: bytes) -> bool:
    """Whether `signature` is SendGrid's over timestamp + body under the config's public key."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key(key_text).verify(raw, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature, UnicodeEncodeError):
        return False
    return True


def verify(key_text: str, inbound: Inbound, details: Mapping, now: float) -> Verified:
    """The post's events once its signature and timestamp check out; WebhookRefused or NotAnEvent otherwise."""
    signature = inbound.headers.get(SIGNATURE_HEADER) or ""
    timestamp = (inbound.headers.get(TIMESTAMP_HEADER) or "").strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 20 or len(signature) > 512 \
            or not signed_by(key_text, timestamp, signature, inbound.body):
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED)
    if abs(int(timestamp) - now) > webhooks.MAX_SKEW_SECONDS:
        raise WebhookRefused(webhooks.STALE, TOO_OLD)
    events = events_in(inbound.body)
    post = SignedPost({"timestamp": timestamp, "signature": signature}, inbound.body)
    return Verified(post, events, labels=[webhooks.label(e.event, EVENT_NAMES) for e in events])


def verify_stored(key_text: str, signature: Mapping, signed: bytes) -> str | None:
    """Why a kept post no longer verifies under the config's key (None: it does)."""
    if not signed_by(key_text, str(signature.get("timestamp", "")), str(signature.get("signature", "")), signed):
        return "the signature does not match the config's twilio_email_webhook_public_key"
    return None


def events_in(body: bytes) -> list[Event]:
    """The events of a post's body, normalised; NotAnEvent when it is not SendGrid's JSON array of events."""
    try:
        items = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise NotAnEvent("the body is not JSON") from None
    if not isinstance(items, list):
        raise NotAnEvent("the body is not a JSON array of events")
    return [_event(item, index) for index, item in enumerate(items)]


def _event(item, index: int) -> Event:
    if not isinstance(item, dict):
        raise NotAnEvent(f"[{index}]: not an event")
    name = webhooks.name(item.get("event"), f"[{index}].event")
    status = _STATUS.get(name)
    reason = webhooks.reason_text(item.get("reason"), item.get("response")) if name in _SEVERITY else None
    if status == FAILED and reason is None:
        reason = f"SendGrid reported {name}"
    sg_message_id = webhooks.optional_token(item.get("sg_message_id"))
    return Event(event=name, key=webhooks.token(item.get("sg_event_id"), f"[{index}].sg_event_id"),
                 occurred_at_ms=webhooks.seconds_ms(item.get("timestamp")), status=status,
                 severity=_SEVERITY.get(name), reason=reason,
                 fidesmail_id=webhooks.record_id(item.get(MESSAGE_ID_ARG)),
                 provider_ids=send_ids(sg_message_id) if sg_message_id else ())


def send_ids(sg_message_id: str) -> tuple[str, ...]:
    """The send's X-Message-Id an event's sg_message_id may begin with (it, a dot, a filter suffix): every
    prefix that ends before a dot, longest first (an X-Message-Id may hold dots itself)."""
    return tuple(sg_message_id[:i] for i in range(len(sg_message_id) - 1, 0, -1) if sg_message_id[i] == ".")
