"""Sending: /email/send, /email/preview and /email/config/{key}/test (the sidecar's job)."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from .. import auth, delivery, errors, idempotency, services
from ..errors import ErrorSchema
from ..exceptions import FidesmailError, Invalid, problem
from ..mailgun import failures
from . import Blueprint, config_must_exist
from .send_schemas import PreviewAnswerSchema, PreviewSchema, SendSchema, SentSchema, TestAnswerSchema, TestSchema

blp = Blueprint("email_send", __name__, url_prefix="/api/v1/email", description="Sending email")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isprintable():
        raise Invalid([problem(["header", "Idempotency-Key"], "Must be 1 to 255 printable characters.")])
    return key


def _send_of(data: dict, test_mode: bool = False) -> delivery.Send:
    return delivery.Send(action_type=data["action_type"], to=data["to"], body_params=data["body_params"],
                         config_key=data.get("config_key"), test_mode=test_mode)


def _answer(send: delivery.Send) -> tuple[idempotency.Answer, bool]:
    """The send's outcome, and whether to keep it: kept once Mailgun may have seen the message,
    so a retry replays it instead of sending twice; an answer given before that is not kept."""
    try:
        return idempotency.Answer(200, delivery.deliver(services.current(), current_app.config, send)), True
    except (FidesmailError, failures.MailgunError) as exc:
        reached = isinstance(exc, failures.MailgunError) and exc.reached_mailgun
        return idempotency.Answer(errors.status_of(exc), {"detail": errors.detail_of(exc)}), reached


@blp.route("/send")
class Send(MethodView):
    @auth.require(auth.SEND)
    @blp.arguments(SendSchema())
    @blp.response(200, SentSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.alt_response(409, schema=ErrorSchema, description="The config has no Mailgun key")
    @blp.alt_response(502, schema=ErrorSchema, description="Mailgun refused (its status and message in detail)")
    @blp.alt_response(504, schema=ErrorSchema, description="Mailgun did not answer in time; it may still send")
    def post(self, data):
        """Render the action type's email and send it through Mailgun; Idempotency-Key sends once."""
        send = _send_of(data)
        key = _idempotency_key()
        if key is None:
            return delivery.deliver(services.current(), current_app.config, send)
        try:
            answer, _ = services.current().ledger.run(key, idempotency.fingerprint(request.get_json()),
                                                      lambda: _answer(send))
        except idempotency.KeyReused as exc:
            raise Invalid([problem(["header", "Idempotency-Key"], f"{exc}.")]) from None
        if answer.status != 200:
            return errors.error_response(answer.status, answer.body["detail"])
        return answer.body


@blp.route("/preview")
class Preview(MethodView):
    @auth.require(auth.READ)
    @blp.arguments(PreviewSchema())
    @blp.response(200, PreviewAnswerSchema)
    def post(self, data):
        """Render the email a send would send, without sending it."""
        snapshot = services.current().store.snapshot()
        if data.get("config_key") is not None:
            delivery.pick_config(snapshot, data["config_key"])
        message = delivery.render(snapshot, data["action_type"], data["body_params"])
        return {"subject": message.subject, "html": message.html, "text": message.text}


@blp.route("/config/<key>/test")
class TestConfig(MethodView):
    @auth.require(auth.SEND)
    @config_must_exist
    @blp.arguments(TestSchema())
    @blp.response(200, TestAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def post(self, data, key):
        """Send a test message with o:testmode=yes; Mailgun accepts it but delivers nothing."""
        send = delivery.Send(action_type="test_message", to=data["to"], body_params={}, config_key=key,
                             test_mode=True)
        try:
            delivery.deliver(services.current(), current_app.config, send)
        except (FidesmailError, failures.MailgunError) as exc:
            detail = errors.detail_of(exc)
            return {"test_status": "failed", "failure_reason": detail if isinstance(detail, str)
                    else "; ".join(item["msg"] for item in detail)}
        return {"test_status": "succeeded", "failure_reason": None}
