"""Sending: /email/send, /email/preview and /email/config/{key}/test (the sidecar's job)."""

from __future__ import annotations

from flask import jsonify, request
from flask.views import MethodView

from fidesmail.core import outcomes
from fidesmail.core.exceptions import FidesmailError, Invalid, problem
from fidesmail.outbox import accept, prefer
from fidesmail.records.messages import Answer
from fidesmail.sending import delivery
from fidesmail.web import auth, context, errors, headers_doc
from fidesmail.web.blueprint import Blueprint, config_must_exist
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.send_schemas import (
    PreviewAnswerSchema,
    PreviewSchema,
    SendSchema,
    SentSchema,
    TestAnswerSchema,
    TestSchema,
)

blp = Blueprint("email_send", __name__, url_prefix="/api/v1/email", description="Sending email")


def idempotency(found, resend_of: str | None = None) -> tuple[str, bytes] | None:
    """The request's Idempotency-Key and the keyed fingerprint of what it asks (its body, and for a resend
    the message resent), or None."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isprintable():
        raise Invalid([problem(["header", "Idempotency-Key"], "Must be 1 to 255 printable characters.")])
    found.maintenance.ready()  # the content key is read from the instance dir: 503 while it cannot be
    asked = request.get_json() if resend_of is None else {"resend_of": resend_of, "body": request.get_json()}
    return key, found.content_key.request_digest(asked)


def respond(answer: Answer, applied: str | None = None):
    """A send's answer, with the record's Location when there is one (an error after the record was made
    names it too, so the caller can look it up or resend it). `applied`: the Preference-Applied header."""
    headers = {"Location": f"/api/v1/email/messages/{answer.body['message_id']}"} \
        if "message_id" in answer.body else {}
    if applied:
        headers["Preference-Applied"] = applied
    status = errors.status_of_result(answer.result)
    if status == 202:  # the record itself, not the 200's schema (flask-smorest applies it otherwise)
        response = jsonify(answer.body)
        response.status_code = 202
        response.headers.update(headers)
        return response
    if status != 200:
        return errors.error_response(status, answer.body["detail"], headers,
                                     message_id=answer.body.get("message_id"), provider=answer.body.get("provider"))
    return sent_fields(answer.body), 200, headers


_SENT_FIELDS = tuple(SentSchema().fields)


def sent_fields(body: dict) -> dict:
    """What SentSchema().dump(body) gives (its fields in its order, each a string or null), without running
    marshmallow on every send (7 us a send, measured); SentSchema documents it."""
    return {name: value if value is None or type(value) is str else str(value)
            for name, value in ((name, body[name]) for name in _SENT_FIELDS if name in body)}


def send_or_queue(found, send: delivery.Send, idempotency: tuple[str, bytes] | None = None):
    """Send now (contract section 6), or queue it when the caller prefers respond-async (section 11)."""
    preferences = prefer.parse(request.headers.getlist("Prefer"))
    if not preferences.respond_async:
        return respond(found.sender.deliver(send, idempotency))
    answer = accept.accept(found, send, idempotency, wait=preferences.wait)
    return respond(answer, applied=prefer.RESPOND_ASYNC)


ACCEPTED_DOC = ("Prefer: respond-async: stored durably and queued; the body is the message record (status queued), "
                "Location names it, Preference-Applied says respond-async")


def send_of(data: dict, **changes) -> delivery.Send:
    """What a validated send body asks for."""
    fields = {"action_type": data["action_type"], "to": data["to"], "body_params": data["body_params"],
              "config_key": data.get("config_key"), "reference": data.get("reference"),
              "subject_override": data.get("subject_override"), "body_override": data.get("body_override")}
    return delivery.Send(**{**fields, **changes})


@blp.route("/send")
class Send(MethodView):
    @auth.require(auth.SEND)
    @blp.arguments(SendSchema())
    @blp.documented_response(200, SentSchema, headers={"Location": {"description": "The message record",
                                                                    "schema": {"type": "string"}}})
    @blp.alt_response(202, description=ACCEPTED_DOC, headers={"Location": {"schema": {"type": "string"}},
                                                              "Preference-Applied": {"schema": {"type": "string"}}})
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.alt_response(409, schema=ErrorSchema, description="The config's provider keys are not set")
    @blp.alt_response(502, schema=ErrorSchema, description="The provider refused (its status and words in detail)")
    @blp.alt_response(503, schema=ErrorSchema, description="The message database (or a key or template) cannot "
                                                            "be used; nothing was sent")
    @blp.alt_response(504, schema=ErrorSchema, description="The provider did not answer in time; it may still "
                                                            "send")
    @blp.doc(**headers_doc.parameters(headers_doc.IDEMPOTENCY_KEY, headers_doc.PREFER))
    def post(self, data):
        """Render the action type's email, record it and send it through the config's provider, or queue it.

        With `Prefer: respond-async` it is queued (202); with an `Idempotency-Key` it is sent once."""
        found = context.current()
        return send_or_queue(found, send_of(data), idempotency(found))


@blp.route("/preview")
class Preview(MethodView):
    @auth.require(auth.READ)
    @blp.arguments(PreviewSchema())
    @blp.response(200, PreviewAnswerSchema)
    def post(self, data):
        """Render the email a send would send, without sending it.

        The tree's fides messaging templates and template overrides are included."""
        snapshot = context.current().store.snapshot()
        if data.get("config_key") is not None:
            delivery.pick_config(snapshot, data["config_key"])
        message = delivery.render(snapshot, data["action_type"], data["body_params"], data.get("subject_override"),
                                  data.get("body_override"))
        return {"subject": message.subject, "html": message.html, "text": message.text}


@blp.route("/config/<key>/test")
class TestConfig(MethodView):
    @auth.require(auth.SEND)
    @config_must_exist
    @blp.arguments(TestSchema())
    @blp.response(200, TestAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def post(self, data, key):
        """Send a test message through the config's provider.

        Mailgun (o:testmode=yes) and SendGrid (sandbox mode) accept it and deliver nothing; SES and Mailchimp
        Transactional send it."""
        send = delivery.Send(action_type="test_message", to=data["to"], body_params={}, config_key=key,
                             test_mode=True)
        try:
            answer = context.current().sender.deliver(send)
        except FidesmailError as exc:
            detail = errors.detail_of(exc)
            return {"test_status": "failed", "failure_reason": detail if isinstance(detail, str)
                    else "; ".join(item["msg"] for item in detail)}
        if answer.result != outcomes.SENT:
            return {"test_status": "failed", "failure_reason": answer.body["detail"]}
        return {"test_status": "succeeded", "failure_reason": None}
