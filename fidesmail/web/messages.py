"""Message records: GET one, the filtered list, proving a message's content, and resending an `unknown` or
`failed` message."""

from __future__ import annotations

from datetime import UTC

from flask import current_app
from flask.views import MethodView
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from fidesmail.content import body_params
from fidesmail.core import outcomes
from fidesmail.core.addresses import AddressError, parse_address
from fidesmail.core.email import Message as EmailMessage
from fidesmail.core.exceptions import Conflict, Invalid, NotFound, TooManyRequests, problem
from fidesmail.core.validation import validation_detail
from fidesmail.records import record_json
from fidesmail.sending import delivery
from fidesmail.web import auth, context, headers_doc, send_schemas
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.send import ACCEPTED_DOC, idempotency, send_or_queue

blp = Blueprint("email_messages", __name__, url_prefix="/api/v1/email", description="Message records")

RESENDABLE = (outcomes.UNKNOWN, outcomes.FAILED)
# Content checks of one message that may fail: enough for whoever holds the email and a typo or two; far
# too few to find a one-time code by trying them all (a million for six digits).
CONTENT_CHECKS = 10


def _address(value: str) -> None:
    try:
        parse_address(value)
    except AddressError as exc:
        raise ValidationError(f"Not a single valid email address: {exc}.") from None


class _Moment(fields.DateTime):
    """An ISO 8601 moment (UTC when it names no zone), loaded as milliseconds since the epoch."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)


class MessageListArgs(Schema):
    """?status=&config_key=&action_type=&reference=&to=&since=&until=&page=&size= (others are ignored)"""

    status = fields.String(validate=validate.OneOf(outcomes.STATUSES))
    config_key = fields.String(validate=validate.Length(max=100))
    action_type = fields.String(validate=validate.OneOf(body_params.ACTION_TYPES))
    reference = fields.String(validate=validate.Length(max=200))
    to = fields.String(validate=_address, metadata={"description": "An address: finds its records by digest"})
    since = _Moment(metadata={"description": "Created at or after (ISO 8601)"})
    until = _Moment(metadata={"description": "Created before (ISO 8601)"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class ResendSchema(Schema):
    """What a resend needs again: records keep neither the address nor the body."""

    class Meta:
        unknown = RAISE

    to = fields.String(required=True, validate=_address, metadata={
        "description": "The original recipient (checked against the record's digest)"})
    body_params = fields.Raw(load_default=None, metadata={"description": "The original message's parameters"})
    subject_override = send_schemas.subject_override()
    body_override = send_schemas.body_override()

    @post_load
    def _normalise(self, data, **kwargs):
        data["to"] = parse_address(data["to"])
        return data


class ContentSchema(Schema):
    """An email as its holder has it: subject, HTML and text exactly as they were sent."""

    class Meta:
        unknown = RAISE

    subject = fields.String(required=True)
    html = fields.String(required=True)
    text = fields.String(required=True)


class ContentAnswerSchema(Schema):
    matches = fields.Boolean(metadata={"description": "Whether this is exactly the email the message sent"})


class RecordSchema(Schema):
    """One message record (contract section 9)."""

    message_id = fields.String()
    config_key = fields.String()
    action_type = fields.String()
    reference = fields.String(allow_none=True)
    to = fields.Dict(metadata={"description": "{masked, digest}: never the address itself"})
    status = fields.String(metadata={"enum": list(outcomes.STATUSES)})
    failure_reason = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    provider = fields.String(allow_none=True, metadata={"description": "The service type that took it (or was "
                                                                       "last tried)"})
    provider_message_id = fields.String(allow_none=True, metadata={"description": "Its id at the provider"})
    sent_via = fields.String(allow_none=True, metadata={"description": "The config whose provider took it"})
    mailgun_id = fields.String(allow_none=True, metadata={"description": "Mailgun's id (Mailgun's messages only)"})
    content_digest = fields.String(allow_none=True)
    test_mode = fields.Boolean()
    resend_of = fields.String(allow_none=True)
    attempts = fields.List(fields.Dict())
    events = fields.List(fields.Dict())


class RecordPageSchema(Schema):
    items = fields.List(fields.Nested(RecordSchema))
    total = fields.Integer()
    page = fields.Integer()
    size = fields.Integer()


def record_or_404(message_id: str):
    """The record's row; NotFound otherwise."""
    row = context.current().records.get(message_id) if len(message_id) <= 32 else None
    if row is None:
        raise NotFound(f"No message found with id {message_id}")
    return row


@blp.route("/messages")
class Messages(MethodView):
    @auth.require(auth.READ)
    @blp.arguments(MessageListArgs(), location="query")
    @blp.response(200, RecordPageSchema)
    def get(self, args):
        """List message records, newest first; to=<address> finds an address's records by its digest."""
        found = context.current()
        page, size = args.pop("page"), args.pop("size")
        if "to" in args:
            args["to_digest"] = found.records_key.digest(parse_address(args.pop("to")))
        rows, total = found.records.page(args, page, size)
        events = found.events.for_messages(row.id for row in rows)
        return {"items": [record_json.as_json(row, events[row.id]) for row in rows], "total": total, "page": page,
                "size": size}


@blp.route("/messages/<message_id>")
class Message(MethodView):
    @auth.require(auth.READ)
    @blp.documented_response(200, RecordSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such message")
    def get(self, message_id):
        """One message record: status, attempts, the provider's id and events; never the address or the body."""
        row, events = context.current().events.with_record(message_id) if len(message_id) <= 32 else (None, [])
        if row is None:
            raise NotFound(f"No message found with id {message_id}")
        # as_json already is the answer's shape: answered as it is, without a schema dump on the hot path.
        return current_app.json.response(record_json.as_json(row, events))


@blp.route("/messages/<message_id>/content")
class Content(MethodView):
    @auth.require(auth.READ)
    @blp.arguments(ContentSchema())
    @blp.response(200, ContentAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such message")
    @blp.alt_response(409, schema=ErrorSchema, description="The record has no content digest (recorded before "
                                                            "digests were keyed)")
    @blp.alt_response(429, schema=ErrorSchema, description=f"{CONTENT_CHECKS} checks of this message did not "
                                                            "match: no more are answered")
    def post(self, data, message_id):
        """Prove that an email is the one this message sent.

        Its content digest (an HMAC-SHA256 under a key of the instance dir) is computed again and compared."""
        found = context.current()
        found.maintenance.ready()  # 503 while the content key cannot be used
        row = record_or_404(message_id)
        if row.content_hmac is None:
            raise Conflict(f"Message {message_id} has no content digest (it was recorded before content digests "
                           "were keyed, and its unkeyed one was removed): its content cannot be proven.")
        if not found.records.reserve_content_check(message_id, CONTENT_CHECKS):
            raise TooManyRequests(f"{CONTENT_CHECKS} content checks of message {message_id} did not match: no "
                                  "more are answered for it.")
        email = EmailMessage(subject=data["subject"], html=data["html"], text=data["text"], tag="")
        matches = found.content_key.matches(row.content_hmac, email)
        if matches:
            found.records.content_matched(message_id)
        return {"matches": matches}


@blp.route("/messages/<message_id>/resend")
class Resend(MethodView):
    @auth.require(auth.SEND)
    @blp.arguments(ResendSchema())
    @blp.response(200, description="As POST /email/send: the new record's id and Location")
    @blp.alt_response(202, description=ACCEPTED_DOC)
    @blp.alt_response(404, schema=ErrorSchema, description="No such message")
    @blp.alt_response(409, schema=ErrorSchema, description="Only unknown or failed messages are resent")
    @blp.doc(**headers_doc.parameters(headers_doc.IDEMPOTENCY_KEY, headers_doc.PREFER))
    def post(self, data, message_id):
        """Send an unknown or failed message again, as a new record pointing to the old one (resend_of).

        With an `Idempotency-Key` it is resent once."""
        found = context.current()
        row = record_or_404(message_id)
        asked = idempotency(found, resend_of=message_id)
        # A repeat of a resend that went out answers as the first did, whatever became of the old message since.
        if row.status not in RESENDABLE and (asked is None or found.records.replay_of(*asked) is None):
            raise Conflict(f"Message {message_id} is {row.status}: only unknown or failed messages are resent.")
        if found.records_key.digest(data["to"]) != row.to_digest:
            raise Invalid([problem(["body", "to"], "Must be the original recipient of the message.")])
        try:
            params = body_params.load_body_params(row.action_type, data["body_params"])
        except ValidationError as exc:
            raise Invalid(validation_detail({"body_params": exc.messages})) from None
        send = delivery.Send(action_type=row.action_type, to=data["to"], body_params=params,
                             config_key=row.config_key, test_mode=bool(row.test_mode), reference=row.reference,
                             resend_of=row.id, subject_override=data.get("subject_override"),
                             body_override=data.get("body_override"))
        return send_or_queue(found, send, asked)
