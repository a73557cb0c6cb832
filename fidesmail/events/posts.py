"""Taking in one signed webhook post of SendGrid, Mandrill or SNS: the config, the signature, its events, counts.

No HTTP here: a post that cannot be shown to come from the config's provider is refused as NotVerified
(401, nothing recorded); a verified post whose body is not the provider's events is Invalid (422); an
SNS SubscriptionConfirmation is confirmed by fetching its SubscribeURL (under the certificate rule);
every other verified post is a 200: each event kept once for the message it names (records/events.py),
and events for messages fidesmail did not send counted and ignored. Every outcome is counted, by provider
and event type.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from fidesmail.core.exceptions import Invalid, NotVerified, Unavailable, problem
from fidesmail.providers import bounded, webhooks
from fidesmail.providers.mandrill import webhooks as mandrill
from fidesmail.providers.sendgrid import webhooks as sendgrid
from fidesmail.providers.ses import webhooks as ses
from fidesmail.providers.webhooks import Inbound, NotAnEvent, WebhookRefused
from fidesmail.records import events as records_events
from fidesmail.sealing import envelope, keys

log = logging.getLogger("fidesmail.webhooks")

# The providers whose webhooks are verified with a key of the config (SES's SNS messages: a certificate).
KEYED = {sendgrid.SERVICE_TYPE: sendgrid, mandrill.SERVICE_TYPE: mandrill}
SERVICE_TYPES = (sendgrid.SERVICE_TYPE, mandrill.SERVICE_TYPE, ses.SERVICE_TYPE)
SUBSCRIBED, IGNORED = "subscribed", "ignored"


@dataclass(frozen=True)
class TakenPost:
    """A post that was answered 200: what became of it, and of each of its events."""

    outcome: str  # verified (at least one event recorded), replay, unknown_message, ignored, subscribed
    events: list[records_events.Kept] = field(default_factory=list)

    @property
    def first(self) -> records_events.Kept | None:
        return next((kept for kept in self.events if kept.outcome == records_events.RECORDED), None)


def webhook_key(services, service_type: str, config_key: str):
    """(the config's details, its webhook key opened) for a config of this provider; NotVerified otherwise."""
    snapshot = services.store.snapshot()
    entry = snapshot.configs.get(config_key)
    if entry is None or entry.document["service_type"] != service_type:
        raise WebhookRefused(webhooks.NO_KEY, f"No {service_type} config {config_key}: its webhook cannot be verified.")
    module = KEYED.get(service_type)
    if module is None:
        return entry.document["details"], None
    try:
        key = services.vault.open(snapshot.sealed, config_key, module.KEY_FIELD)
    except (keys.KeyringError, envelope.SealError) as exc:
        log.error("cannot open the %s of %s: %s", module.KEY_FIELD, config_key, exc)
        key = None
    if key is None:
        raise WebhookRefused(webhooks.NO_KEY, f"The config {config_key} has no {module.KEY_FIELD}: its webhooks "
                                              "cannot be verified.")
    return entry.document["details"], key


def take_post(services, service_type: str, config_key: str, inbound: Inbound, now: float | None = None) -> TakenPost:
    """Verify one post for `config_key` and keep its events once; NotVerified, Invalid or Unavailable otherwise."""
    counter = services.metrics.webhook_events
    facts = {"config_key": config_key, "provider": service_type}
    try:
        details, key = webhook_key(services, service_type, config_key)
        now = time.time() if now is None else now
        if service_type == ses.SERVICE_TYPE:
            verified = ses.verify(services.sns_certificates, inbound, details, now)
        else:
            verified = KEYED[service_type].verify(key, inbound, details, now)
    except WebhookRefused as exc:
        counter.labels("other", exc.outcome, service_type).inc()
        log.warning("webhook refused: %s", exc.outcome, extra={**facts, "outcome": exc.outcome})
        raise NotVerified(exc.detail) from None
    except NotAnEvent as exc:  # signed, so it is the provider's: its body is not what fidesmail reads
        counter.labels("other", "invalid", service_type).inc()
        raise Invalid([problem(["body"], f"Not {service_type}'s webhook events: {exc}")]) from None
    if verified.subscribe_url is not None:
        return _subscribe(services, verified.subscribe_url, facts)
    try:
        services.maintenance.ready()
    except Unavailable:  # 503: the provider posts it again later
        raise Unavailable("The events were not recorded (the provider retries): message records cannot be kept: "
                          f"{services.maintenance.problem}") from None
    kept = services.events.record_post(service_type, config_key, verified.events, verified.post) \
        if verified.events else []
    for label, one in zip(verified.labels, kept, strict=True):
        counter.labels(label, one.outcome, service_type).inc()
    if verified.ignored:
        counter.labels("other", IGNORED, service_type).inc(verified.ignored)
    outcomes = Counter(one.outcome for one in kept)
    log.info("webhook post", extra={**facts, **{f"events_{name}": count for name, count in outcomes.items()},
                                    "ignored": verified.ignored})
    for event, one in zip(verified.events, kept, strict=True):
        if one.outcome == records_events.RECORDED:
            log.info("delivery event", extra={**facts, "event": event.event, "outcome": one.outcome,
                                              "message_id": one.message_id, "status": one.status})
    overall = next((name for name in (records_events.RECORDED, records_events.REPLAY, records_events.UNKNOWN_MESSAGE)
                    if outcomes[name]), IGNORED)
    return TakenPost(overall, kept)


def _subscribe(services, url: str, facts: dict) -> TakenPost:
    """Confirm an SNS subscription by fetching its SubscribeURL (already matched against the rule)."""
    try:
        services.sns_certificates.confirm(url)
    except bounded.BoundedError as exc:
        log.warning("SNS subscription not confirmed: %s", exc, extra=facts)
        raise Unavailable(f"The SNS subscription could not be confirmed (SNS sends the confirmation again): "
                          f"{exc}") from None
    services.metrics.webhook_events.labels("other", SUBSCRIBED, facts["provider"]).inc()
    log.info("SNS subscription confirmed", extra=facts)
    return TakenPost(SUBSCRIBED)
