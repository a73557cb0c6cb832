"""A Mailgun config's `details` (contract section 5)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, post_load, validate

from fidesmail.providers.fields import StrictBoolean, domain, normalised_sender, validate_sender

API_VERSIONS = ("v3",)


class MailgunDetailsSchema(Schema):
    """`details` of a Mailgun config."""

    class Meta:
        unknown = RAISE

    domain = domain(required=True)
    is_eu_domain = StrictBoolean(load_default=False)
    api_version = fields.String(load_default="v3", validate=validate.OneOf(API_VERSIONS))
    sender = fields.String(load_default=None, allow_none=True, validate=validate_sender)

    @post_load
    def _normalise_sender(self, data, **kwargs):
        data["sender"] = normalised_sender(data.get("sender"))
        return data
