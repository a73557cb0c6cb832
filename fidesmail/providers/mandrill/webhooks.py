"""Mailchimp Transactional (Mandrill) webhooks: HMAC-SHA1 over the URL and the form; its events, normalised.

As Mandrill documents it and django-anymail checks it (anymail/webhooks/mandrill.py): a post is
`application/x-www-form-urlencoded` with `mandrill_events`, a JSON array; `X-Mandrill-Signature` is the
base64 HMAC-SHA1, under the webhook's key (the config's `mailchimp_transactional_webhook_key`), of the
webhook URL exactly as registered followed by each form key and its value, sorted by key. The URL is
FIDESMAIL_PUBLIC_URL + the path when set (behind a proxy the URL received is not the one Mandrill
posted to), else the URL as received. Mandrill signs no timestamp: each event is kept once by its `_id`
with its `ts` and `event`. Sync events (allow and deny list changes) carry no message and are ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from urllib.parse import parse_qsl

from fidesmail.core.outcomes import DELIVERED, FAILED
from fidesmail.providers import webhooks
from fidesmail.providers.mandrill.secrets import WEBHOOK_KEY
from fidesmail.providers.webhooks import Inbound, NotAnEvent, Verified, WebhookRefused
from fidesmail.records.events import Event
from fidesmail.records.webhook_posts import SignedPost

SERVICE_TYPE = "mailchimp_transactional"
KEY_FIELD = WEBHOOK_KEY
SIGNATURE_HEADER = "X-Mandrill-Signature"
EVENTS_FIELD = "mandrill_events"
MESSAGE_ID_METADATA = "fidesmail_message_id"
EVENT_NAMES = frozenset({"send", "deferral", "hard_bounce", "soft_bounce", "open", "click", "spam", "unsub",
                         "reject"})
_STATUS = {"send": DELIVERED, "hard_bounce": FAILED, "reject": FAILED}
_SEVERITY = {"hard_bounce": "permanent", "reject": "permanent", "soft_bounce": "temporary", "deferral": "temporary"}
NOT_VERIFIED = "Mandrill webhook signature missing or wrong."


def form_of(body: bytes) -> list[tuple[str, str]]:
    """The form fields of the body, in order; NotAnEvent when it is not a form."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                         max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise NotAnEvent("the body is not a form (application/x-www-form-urlencoded)") from None


def expected_signature(key: str, url: str, form: list[tuple[str, str]]) -> str:
    """Mandrill's signature: base64 HMAC-SHA1 of the URL, then each key and value, sorted by key."""
    signed = url + "".join(name + value for name, value in sorted(form, key=lambda item: item[0]))
    return base64.b64encode(hmac.new(key.encode(), signed.encode("utf-8"), hashlib.sha1).digest()).decode()


def signed_by(key: str, url: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is Mandrill's over `url` and the form in `body` under the webhook key."""
    try:
        form = form_of(body)
    except NotAnEvent:
        return False
    if len({name for name, _ in form}) != len(form):  # a key twice: which value was signed is ambiguous
        return False
    expected = expected_signature(key, url, form).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def verify(key: str, inbound: Inbound, details: Mapping, now: float) -> Verified:
    """The post's events once its signature checks out; WebhookRefused or NotAnEvent otherwise."""
    signature = inbound.headers.get(SIGNATURE_HEADER) or ""
    if not signature or len(signature) > 512 or not signed_by(key, inbound.url, inbound.body, signature):
        raise WebhookRefused(webhooks.BAD_SIGNATURE, NOT_VERIFIED)
    events, ignored = events_in(inbound.body)
    post = SignedPost({"url": inbound.url, "signature": signature}, inbound.body)
    return Verified(post, events, ignored, labels=[webhooks.label(e.event, EVENT_NAMES) for e in events])


def verify_stored(key: str, signature: Mapping, signed: bytes) -> str | None:
    """Why a kept post no longer verifies under the config's key (None: it does)."""
    if not signed_by(key, str(signature.get("url", "")), signed, str(signature.get("signature", ""))):
        return "the signature does not match the config's mailchimp_transactional_webhook_key"
    return None


def events_in(body: bytes) -> tuple[list[Event], int]:
    """The delivery events of a post's body, normalised, and how many other items it had (sync events)."""
    fields = dict(form_of(body))
    if EVENTS_FIELD not in fields:
        raise NotAnEvent(f"the form has no {EVENTS_FIELD}")
    try:
        items = json.loads(fields[EVENTS_FIELD])
    except ValueError:
        raise NotAnEvent(f"{EVENTS_FIELD} is not JSON") from None
    if not isinstance(items, list):
        raise NotAnEvent(f"{EVENTS_FIELD} is not a JSON array")
    events = [_event(item, index) for index, item in enumerate(items)
              if not (isinstance(item, dict) and "event" not in item and "type" in item)]  # sync events
    return events, len(items) - len(events)


def _event(item, index: int) -> Event:
    where = f"{EVENTS_FIELD}[{index}]"
    if not isinstance(item, dict):
        raise NotAnEvent(f"{where}: not an event")
    name = webhooks.name(item.get("event"), f"{where}.event")
    msg = item.get("msg") if isinstance(item.get("msg"), dict) else {}
    metadata = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {}
    event_id = webhooks.token(item.get("_id") or msg.get("_id"), f"{where}._id")
    if len(event_id) > 160:  # with its ts and name, the event's key stays within its column
        raise NotAnEvent(f"{where}._id: longer than Mandrill's ids")
    ts = item.get("ts")
    status = _STATUS.get(name)
    reason = webhooks.reason_text(msg.get("diag"), msg.get("bounce_description")) if name in _SEVERITY else None
    if status == FAILED and reason is None:
        reason = f"Mandrill reported {name}"
    provider_id = webhooks.optional_token(msg.get("_id") or item.get("_id"))
    return Event(event=name, key=f"{event_id}:{ts if isinstance(ts, int) else ''}:{name}",
                 occurred_at_ms=webhooks.seconds_ms(ts), status=status, severity=_SEVERITY.get(name), reason=reason,
                 fidesmail_id=webhooks.record_id(metadata.get(MESSAGE_ID_METADATA)),
                 provider_ids=(provider_id,) if provider_id else ())
