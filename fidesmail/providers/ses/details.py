"""An SES config's `details` (contract section 13, fides' `aws_ses` names): its region, and a From address or domain."""

from __future__ import annotations

import re

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from fidesmail.providers.fields import domain, normalise_senders, sender

# us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1, cn-northwest-1...
TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
NEITHER = "Either 'email_from' or 'domain' must be provided."  # fides' words


class SesDetailsSchema(Schema):
    """`details` of an aws_ses config."""

    class Meta:
        unknown = RAISE

    aws_region = fields.String(required=True, validate=validate.Regexp(REGION, error="Must be an AWS region such as "
                                                                                     "us-east-1."),
                               metadata={"example": "us-east-1"})
    email_from = sender(load_default=None, allow_none=True, metadata={
        "description": "The From address, verified in SES (a display name is allowed)"})
    domain = domain(load_default=None, allow_none=True, metadata={
        "description": "A domain verified in SES; the From address is then noreply@{domain}"})

    sns_topic_arn = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        TOPIC_ARN, error="Must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:ses-events."),
        metadata={"description": "The SNS topic SES publishes this config's events to: SNS messages from any other "
                                 "topic are refused (contract section 15)"})

    @validates_schema
    def _a_sender(self, data, **kwargs):
        if data.get("email_from") is None and data.get("domain") is None:
            raise ValidationError(NEITHER)

    _normalise = normalise_senders("email_from")
