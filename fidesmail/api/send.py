"""Sending: /email/send, /email/preview and /email/config/{key}/test (the sidecar's job)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from flask import current_app, request
from flask.views import MethodView
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from .. import auth, idempotency, logs, mailer, messages, sealed
from ..addresses import AddressError, parse_address
from ..errors import ErrorSchema, error_response, validation_detail
from ..vault import Vault
from . import Blueprint, config_must_exist, current_store

log = logging.getLogger("fidesmail.send")
blp = Blueprint("email_send", __name__, url_prefix="/api/v1/email", description="Sending email")

SECRET_FIELD = "mailgun_api_key"
MAX_TOTAL_WAIT = 30  # seconds of retry waits a caller is kept waiting, at most


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
    action_type = fields.String(required=True, validate=validate.OneOf(messages.ACTION_TYPES))
    to = fields.String(required=True, validate=_recipient)
    body_params = fields.Raw(load_default=None, metadata={"description": "Parameters of the action type"})

    @validates_schema
    def _check_body_params(self, data, **kwargs):
        """Checked here for a 422 naming each field; kept raw, since rendering loads them itself."""
        if data.get("action_type") in messages.ACTION_TYPES:
            try:
                messages.load_body_params(data["action_type"], data.get("body_params"))
            except ValidationError as exc:
                raise ValidationError({"body_params": exc.messages}) from None

    @post_load
    def _normalise(self, data, **kwargs):
        if data.get("to") is not None:
            data["to"] = parse_address(data["to"])
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
    id = fields.String(metadata={"description": "Mailgun's message id"})
    message = fields.String(metadata={"description": "Mailgun's answer, e.g. 'Queued. Thank you.'"})
    config_key = fields.String()


class PreviewAnswerSchema(Schema):
    subject = fields.String()
    html = fields.String()
    text = fields.String()


class TestAnswerSchema(Schema):
    test_status = fields.String(metadata={"description": "succeeded or failed"})
    failure_reason = fields.String(allow_none=True)


@dataclass(frozen=True)
class _Refusal(Exception):
    """An answer other than 200, and whether Mailgun may have seen the request."""

    status: int
    detail: object
    reached_mailgun: bool = False


_mailer_lock = threading.Lock()


def _current_mailer() -> mailer.Mailer:
    """One pooled Mailer per process (a forked worker makes its own)."""
    made = current_app.extensions.get("fidesmail.mailer")
    if made is None or made[0] != os.getpid():
        with _mailer_lock:  # threads of a new worker race here; one builds the Mailer
            made = current_app.extensions.get("fidesmail.mailer")
            if made is None or made[0] != os.getpid():
                config = current_app.config
                made = (os.getpid(), mailer.Mailer(config["MAILGUN_TIMEOUT"], config["MAILGUN_RETRIES"],
                                                   max_total_wait=MAX_TOTAL_WAIT,
                                                   backoff=config.get("MAILGUN_BACKOFF", 0.5)))  # tests: shorter
                current_app.extensions["fidesmail.mailer"] = made
    return made[1]


def _vault() -> Vault:
    return current_app.extensions["fidesmail.vault"]


def _pick_config(snapshot, key):
    if key is None:
        if not snapshot.keys:  # fidesops' words when it had no config to send with
            raise _Refusal(404, "No email config found.")
        if len(snapshot.keys) != 1:
            raise _Refusal(422, [{"loc": ["body", "config_key"], "type": "missing",
                                  "msg": f"Required: there are {len(snapshot.keys)} configs, not exactly one."}])
        key = snapshot.keys[0]
    entry = snapshot.configs.get(key)
    if entry is None:
        raise _Refusal(404, f"No email config found with key {key}")
    return entry


def _render(data) -> messages.Message:
    try:
        return messages.render(data["action_type"], data["body_params"],
                               current_store().config_dir / "templates")
    except messages.TemplateRenderError as exc:
        log.error("email template failed: %s", exc)
        raise _Refusal(503, f"The email template failed: {exc}") from None


def _deliver(data: dict, *, test_mode: bool = False) -> dict:
    """Render and send one message; the 200 body, or a _Refusal."""
    snapshot = current_store().snapshot()
    entry = _pick_config(snapshot, data.get("config_key"))
    try:
        api_key = _vault().open(snapshot.sealed, entry.key, SECRET_FIELD)
    except (sealed.KeyringError, sealed.SealError) as exc:
        log.error("cannot open the Mailgun key of %s: %s", entry.key, exc)
        raise _Refusal(503, f"The Mailgun key of {entry.key} cannot be opened: {exc}") from None
    if api_key is None:
        raise _Refusal(409, f"Email secrets not found for config with key: {entry.key}")
    message = _render(data)
    config = current_app.config
    mailgun_request = mailer.build_request(entry.document["details"], api_key, message, data["to"],
                                           base_url=config["MAILGUN_BASE_URL"],
                                           eu_base_url=config["MAILGUN_EU_BASE_URL"], test_mode=test_mode)
    metrics = current_app.extensions["fidesmail.metrics"]
    facts = {"config_key": entry.key, "action_type": data["action_type"], "to": logs.mask_address(data["to"])}
    started = time.perf_counter()
    try:
        result = _current_mailer().send(mailgun_request)
    except mailer.MailgunError as exc:
        outcome = _OUTCOMES.get(type(exc), "refused")
        metrics.sends.labels(data["action_type"], outcome).inc()
        log.warning("send failed after %d attempt(s): %s", exc.attempts, exc,
                    extra={**facts, "outcome": outcome, "attempts": exc.attempts})
        reached = not isinstance(exc, mailer.MailgunUnreachable)
        raise _Refusal(exc.status, str(exc), reached_mailgun=reached) from None
    finally:
        metrics.mailgun_seconds.observe(time.perf_counter() - started)
    metrics.sends.labels(data["action_type"], "sent").inc()
    log.info("sent", extra={**facts, "outcome": "sent", "mailgun_id": result.id, "attempts": result.attempts})
    return {"id": result.id, "message": result.message, "config_key": entry.key}


_OUTCOMES = {mailer.MailgunTimeout: "timeout", mailer.MailgunUnreachable: "unreachable",
             mailer.MailgunBadAnswer: "bad_answer", mailer.MailgunRefused: "refused"}


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isprintable():
        raise _Refusal(422, [{"loc": ["header", "Idempotency-Key"], "type": "value_error",
                              "msg": "Must be 1 to 255 printable characters."}])
    return key


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
        try:
            key = _idempotency_key()
            if key is None:
                return _deliver(data)
            answer, _ = _ledger().run(key, idempotency.fingerprint(request.get_json()), lambda: _answer(data))
        except _Refusal as refusal:
            return error_response(refusal.status, refusal.detail)
        except idempotency.KeyReused as exc:
            return error_response(422, [{"loc": ["header", "Idempotency-Key"], "type": "value_error",
                                         "msg": f"{exc}."}])
        return answer.body if answer.status == 200 else error_response(answer.status, answer.body["detail"])


def _answer(data) -> tuple[idempotency.Answer, bool]:
    """The send's outcome, and whether to keep it: kept once Mailgun may have seen the message,
    so a retry replays it instead of sending twice; an answer given before that is not kept."""
    try:
        return idempotency.Answer(200, _deliver(data)), True
    except _Refusal as refusal:
        return idempotency.Answer(refusal.status, {"detail": refusal.detail}), refusal.reached_mailgun


def _ledger() -> idempotency.Ledger:
    return current_app.extensions["fidesmail.ledger"]


@blp.route("/preview")
class Preview(MethodView):
    @auth.require(auth.READ)
    @blp.arguments(PreviewSchema())
    @blp.response(200, PreviewAnswerSchema)
    def post(self, data):
        """Render the email a send would send, without sending it."""
        try:
            if data.get("config_key") is not None:
                _pick_config(current_store().snapshot(), data["config_key"])
            message = _render(data)
        except _Refusal as refusal:
            return error_response(refusal.status, refusal.detail)
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
        try:
            _deliver({"config_key": key, "action_type": "test_message", "to": data["to"], "body_params": {}},
                     test_mode=True)
        except _Refusal as refusal:
            reason = refusal.detail if isinstance(refusal.detail, str) else validation_detail(refusal.detail)
            return {"test_status": "failed", "failure_reason": reason}
        return {"test_status": "succeeded", "failure_reason": None}
