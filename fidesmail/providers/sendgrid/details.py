"""A SendGrid config's `details` (contract section 13, fides' `twilio_email` names)."""

from __future__ import annotations

from marshmallow import RAISE, Schema

from fidesmail.providers.fields import normalise_senders, sender


class SendGridDetailsSchema(Schema):
    """`details` of a twilio_email (SendGrid) config."""

    class Meta:
        unknown = RAISE

    twilio_email_from = sender(required=True, metadata={
        "description": "The From address, a verified Sender Identity in SendGrid (a display name is allowed)"})

    _normalise = normalise_senders("twilio_email_from")
