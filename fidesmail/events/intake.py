"""Taking in one Mailgun webhook: the config's signing key, the signature, its age, the event, the record, a count.

No HTTP here: a webhook that cannot be shown to come from Mailgun is refused as NotVerified (401,
nothing recorded). Every verified token is taken once, whatever its event says or matches: a signed
one whose event is not one is Invalid (422); a signed event is kept once for the message it names; and
everything else (a token taken before, with any event, or a message fidesmail did not send) is a 200
that records nothing, so Mailgun stops retrying. Every outcome is counted by event type.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from marshmallow import ValidationError

from fidesmail.core.exceptions import Invalid, NotVerified, Unavailable
from fidesmail.core.validation import validation_detail
from fidesmail.providers.mailgun import secrets as mailgun_secrets
from fidesmail.providers.mailgun import webhooks
from fidesmail.records import events as records_events
from fidesmail.sealing import envelope, keys

log = logging.getLogger("fidesmail.webhooks")

# Labels of the events counter: Mailgun's event names; anything else is "other" (bounded series).
EVENT_TYPES = frozenset({"accepted", "rejected", "delivered", "failed", "opened", "clicked", "unsubscribed",
                         "complained", "stored"})
MAILGUN = "mailgun"
BAD_SIGNATURE, STALE, NO_SIGNING_KEY, INVALID = "bad_signature", "stale", "no_signing_key", "invalid"
NOT_VERIFIED = "Mailgun webhook signature missing or wrong."
TOO_OLD = "Mailgun webhook timestamp is more than 5 minutes away from now."


@dataclass(frozen=True)
class Taken:
    """A webhook that was answered 200: what became of it."""

    outcome: str  # verified (recorded), replay, unknown_message
    message_id: str | None = None
    status: str | None = None


def event_label(body) -> str:
    """The event type as a metric label (from the body: unverified bodies count under their claimed type)."""
    data = body.get("event-data") if isinstance(body, dict) else None
    name = data.get("event") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name in EVENT_TYPES else "other"


def signing_key_of(services, config_key: str) -> str | None:
    """The config's webhook signing key, opened; None when there is no such config or no key."""
    snapshot = services.store.snapshot()
    if config_key not in snapshot.configs:
        return None
    try:
        return services.vault.open(snapshot.sealed, config_key, mailgun_secrets.WEBHOOK_SIGNING_KEY)
    except (keys.KeyringError, envelope.SealError) as exc:
        log.error("cannot open the webhook signing key of %s: %s", config_key, exc)
        return None


def take(services, config_key: str, body: dict, now: float | None = None) -> Taken:
    """Verify one webhook for `config_key` and keep its event once; NotVerified or Invalid otherwise."""
    label = event_label(body)
    counter = services.metrics.webhook_events

    def refuse(outcome: str, error: Exception):
        counter.labels(label, outcome, MAILGUN).inc()
        log.warning("webhook refused: %s", outcome, extra={"config_key": config_key, "outcome": outcome})
        raise error

    signing_key = signing_key_of(services, config_key)
    if signing_key is None:
        log.warning("a webhook for %s cannot be verified: no such config, or it has no mailgun_webhook_signing_key",
                    config_key)
        refuse(NO_SIGNING_KEY, NotVerified(NOT_VERIFIED))
    signature = webhooks.signature_of(body)
    if signature is None or not webhooks.signed_by(signature, signing_key):
        refuse(BAD_SIGNATURE, NotVerified(NOT_VERIFIED))
    if not webhooks.is_fresh(signature, time.time() if now is None else now):
        refuse(STALE, NotVerified(TOO_OLD))
    try:
        services.maintenance.ready()
    except Unavailable:  # 503: Mailgun sends it again later (its token not taken: nothing was)
        raise Unavailable("The event was not recorded (Mailgun retries): message records cannot be kept: "
                          f"{services.maintenance.problem}") from None
    try:
        event = webhooks.parse_event(body.get("event-data"), signature)
    except ValidationError as exc:
        # Verified, so its token is taken all the same: it can never carry another event later.
        if not services.events.take(signature):
            counter.labels(label, records_events.REPLAY, MAILGUN).inc()
            return Taken(records_events.REPLAY)
        refuse(INVALID, Invalid(validation_detail(exc.messages)))
    kept = services.events.record(config_key, event, signature)
    counter.labels(label, kept.outcome, MAILGUN).inc()
    facts = {"config_key": config_key, "event": event.event, "outcome": kept.outcome}
    if kept.outcome == records_events.RECORDED:
        log.info("delivery event", extra={**facts, "message_id": kept.message_id, "status": kept.status})
    else:
        log.info("delivery event not recorded: %s", kept.outcome, extra=facts)
    return Taken(kept.outcome, kept.message_id, kept.status)
