"""What the sending endpoints take and answer."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from fidesmail.content import body_params
from fidesmail.core.addresses import AddressError, parse_address

SUBJECT_LIMIT = 998  # a header line (RFC 5322)
BODY_LIMIT = 100_000


def subject_override() -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=[
        validate.Length(max=SUBJECT_LIMIT), validate.Predicate("strip", error="Must not be blank.")], metadata={
        "description": "The subject to send instead of the action type's (one line: whitespace runs, CR/LF "
                       "included, become one space). The fides adapter sends fides' own where it was customised"})


def body_override() -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=[
        validate.Length(max=BODY_LIMIT), validate.Predicate("strip", error="Must not be blank.")], metadata={
        "description": "Plain text to send instead of the action type's body, HTML-escaped into the built-in "
                       "layout (blank lines: paragraphs); for manual_task_digest and external_user_welcome it is "
                       "the introduction"})


def _recipient(value: str) -> None:
    try:
        parse_address(value)
    except AddressError as exc:
        raise ValidationError(f"Not a single valid email address: {exc}.") from None


class SendSchema(Schema):
    """What to send, to whom, through which config."""

    class Meta:
        unknown = RAISE

    config_key = fields.String(load_default=None, metadata={"description": "May be left out when exactly one "
                                                                            "config exists"})
    action_type = fields.String(required=True, validate=validate.OneOf(body_params.ACTION_TYPES))
    to = fields.String(required=True, validate=_recipient)
    body_params = fields.Raw(load_default=None, metadata={"description": "Parameters of the action type"})
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200), metadata={
        "description": "The caller's own id for this send (e.g. the privacy request id); kept in its record"})
    subject_override = subject_override()
    body_override = body_override()

    @validates_schema
    def _check_body_params(self, data, **kwargs):
        """Validated here for a 422 naming each field; loaded once, in post_load."""
        if data.get("action_type") in body_params.ACTION_TYPES:
            try:
                body_params.load_body_params(data["action_type"], data.get("body_params"))
            except ValidationError as exc:
                raise ValidationError({"body_params": exc.messages}) from None

    @post_load
    def _normalise(self, data, **kwargs):
        if data.get("to") is not None:
            data["to"] = parse_address(data["to"])
        data["body_params"] = body_params.load_body_params(data["action_type"], data.get("body_params"))
        return data


class PreviewSchema(SendSchema):
    """A send without a recipient: render only."""

    to = fields.String(load_default=None, validate=_recipient)


class TestSchema(Schema):
    """The address a test message goes to."""

    class Meta:
        unknown = RAISE

    to = fields.String(required=True, validate=_recipient)


class SentSchema(Schema):
    id = fields.String(allow_none=True, metadata={
        "description": "The provider's id of the message (Mailgun's message id, SES' MessageId, SendGrid's "
                       "X-Message-Id, Mandrill's _id); null for a SendGrid test in sandbox mode"})
    message = fields.String(metadata={"description": "The provider's answer, e.g. Mailgun's 'Queued. Thank you.'"})
    config_key = fields.String()
    message_id = fields.String(metadata={"description": "fidesmail's id of the message record (see Location)"})
    status = fields.String(metadata={"description": "accepted"})
    provider = fields.String(metadata={"description": "The service type that took it: mailgun, aws_ses, "
                                                      "twilio_email or mailchimp_transactional"})


class PreviewAnswerSchema(Schema):
    subject = fields.String()
    html = fields.String()
    text = fields.String()


class TestAnswerSchema(Schema):
    test_status = fields.String(metadata={"description": "succeeded or failed"})
    failure_reason = fields.String(allow_none=True)
