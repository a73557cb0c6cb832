"""A Mailchimp Transactional config's `details` (contract section 13, fides' `mailchimp_transactional` names)."""

from __future__ import annotations

from marshmallow import RAISE, Schema

from fidesmail.providers.fields import normalise_senders, sender


class MandrillDetailsSchema(Schema):
    """`details` of a mailchimp_transactional config."""

    class Meta:
        unknown = RAISE

    email_from = sender(required=True, metadata={
        "description": "The From address, on a sending domain verified in Mailchimp Transactional (a display name "
                       "is allowed)"})

    _normalise = normalise_senders("email_from")
