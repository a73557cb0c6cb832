"""SES events through Amazon SNS: the SNS message verified (sns.py), the SES event in it normalised.

SES publishes a message's events to an SNS topic (event publishing: `eventType`, the message's tags in
`mail.tags`; or identity notifications: `notificationType`, no tags), and SNS posts each as a signed
message to the subscribed URL. As django-anymail reads them (anymail/webhooks/amazon_ses.py): `mail.messageId`
is SendEmail's MessageId, `mail.tags["fidesmail-message-id"]` the record's id the send carried. The SNS
MessageId is the event's id, kept once. A config may name its topic (`details.sns_topic_arn`): messages
from any other topic are refused, since anyone can point their own topic at the URL and SNS signs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from fidesmail.core.outcomes import ACCEPTED, DELIVERED, FAILED
from fidesmail.providers import webhooks
from fidesmail.providers.ses import sns
from fidesmail.providers.webhooks import Inbound, NotAnEvent, Verified, WebhookRefused
from fidesmail.records.events import Event
from fidesmail.records.webhook_posts import SignedPost

SERVICE_TYPE = "aws_ses"
KEY_FIELD = None  # SNS signs with a certificate, not a key of the config
MESSAGE_ID_TAG = "fidesmail-message-id"
EVENT_NAMES = frozenset({"Send", "Delivery", "Bounce", "Complaint", "Reject", "DeliveryDelay", "Open", "Click",
                         "Rendering Failure", "Subscription"})
WRONG_TOPIC = "The SNS message comes from a topic other than the config's sns_topic_arn."


def verify(certificates: sns.Certificates, inbound: Inbound, details: Mapping, now: float) -> Verified:
    """The SES event of a verified SNS message (or the SubscribeURL of a confirmation); WebhookRefused otherwise."""
    message = sns.message_of(inbound.body)
    sns.verify(certificates, message)
    wanted = details.get("sns_topic_arn")
    if wanted is not None and message["TopicArn"] != wanted:
        raise WebhookRefused(webhooks.WRONG_TOPIC, WRONG_TOPIC)
    post = SignedPost(sns.shown_signature(message), inbound.body)
    if message["Type"] == sns.SUBSCRIPTION:
        url = message.get("SubscribeURL")
        if not certificates.trusted(url):
            raise WebhookRefused(webhooks.UNTRUSTED_URL, "The SubscriptionConfirmation's SubscribeURL does not match "
                                                         "FIDESMAIL_SNS_CERT_URL_PATTERN: nothing was fetched.")
        return Verified(post, [], ignored=1, subscribe_url=url)
    events = events_in(inbound.body)
    return Verified(post, events, ignored=0 if events else 1,
                    labels=[webhooks.label(e.event, EVENT_NAMES) for e in events])


def verify_stored(certificates: sns.Certificates, signature: Mapping, signed: bytes) -> str | None:
    """Why a kept SNS message no longer verifies (None: it does); its certificate fetched under the same rule."""
    try:
        message = sns.message_of(signed)
        sns.verify(certificates, message)
    except (WebhookRefused, NotAnEvent) as exc:
        return str(exc)
    if dict(signature) != sns.shown_signature(message):  # what the record shows is what was verified
        return "the signature shown in the record is not the one in the SNS message"
    return None


def events_in(body: bytes) -> list[Event]:
    """The SES event an SNS Notification carries (none for other messages, e.g. SES's "Successfully validated
    SNS topic" notice); NotAnEvent when it claims to be an SES event and is not one."""
    message = sns.message_of(body)
    if message.get("Type") != sns.NOTIFICATION:
        return []
    try:
        ses_event = json.loads(message.get("Message") or "")
    except (TypeError, ValueError):
        return []  # not JSON: a notice, not an event
    if not isinstance(ses_event, dict) or not ({"eventType", "notificationType"} & ses_event.keys()):
        return []
    name = webhooks.name(ses_event.get("eventType") or ses_event.get("notificationType"), "eventType")
    mail = ses_event.get("mail") if isinstance(ses_event.get("mail"), dict) else {}
    detail = ses_event.get(name[:1].lower() + name[1:].replace(" ", ""))
    detail = detail if isinstance(detail, dict) else {}
    status, severity, reason = _outcome(name, detail)
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}
    tagged = tags.get(MESSAGE_ID_TAG)
    fidesmail_id = webhooks.record_id(tagged[0] if isinstance(tagged, list) and tagged else tagged)
    provider_id = webhooks.optional_token(mail.get("messageId"))
    return [Event(event=name, key=webhooks.token(message.get("MessageId"), "MessageId"),
                  occurred_at_ms=_ms(detail.get("timestamp")) or _ms(message.get("Timestamp")), status=status,
                  severity=severity, reason=reason, fidesmail_id=fidesmail_id,
                  provider_ids=(provider_id,) if provider_id else ())]


def _outcome(name: str, detail: Mapping) -> tuple[str | None, str | None, str | None]:
    """(status, severity, reason) of an SES event (contract section 15)."""
    if name == "Send":
        return ACCEPTED, None, None
    if name == "Delivery":
        return DELIVERED, None, None
    if name == "Reject":
        return FAILED, "permanent", webhooks.reason_text(detail.get("reason")) or name
    if name == "Bounce":
        recipients = detail.get("bouncedRecipients")
        first = recipients[0] if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict) \
            else {}
        reason = webhooks.reason_text(first.get("diagnosticCode"), detail.get("bounceSubType")) or name
        if detail.get("bounceType") == "Permanent":
            return FAILED, "permanent", reason
        return None, "temporary", reason
    if name == "DeliveryDelay":
        return None, "temporary", webhooks.reason_text(detail.get("delayType"))
    return None, None, None


def _ms(value) -> int | None:
    """An ISO-8601 time as SES and SNS write it (2026-01-01T08:00:00.000Z) in milliseconds; None if not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
