"""fides' messaging defaults and test endpoints: PUT /messaging/default, GET /messaging/default/active and
/{service_type}, POST /messaging/test/{service_type}.

The default of a type is its first config by creation, the active default the type messaging.yaml names
(tree/messaging_defaults.py). Where fides differs: its PUT /messaging/default leaves the active default
to a setting of its own (`notification_service_type`, which fidesmail does not have), while here, as
the contract says, it names the type it sets as the active default. A test sends fides' test message
through the type's default config, as fides sends it (not in a provider's test mode), and its time and
outcome are kept in the database.
"""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from marshmallow import Schema, fields

from fidesmail.core import outcomes
from fidesmail.core.addresses import AddressError, parse_address
from fidesmail.core.exceptions import FidesmailError, Invalid, NotFound, NotSupported
from fidesmail.core.validation import fides_problem
from fidesmail.sending import delivery
from fidesmail.web import context, errors
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.messaging_configs import (
    MessagingConfigRequestSchema,
    MessagingConfigResponseSchema,
    answer_of,
    write_config,
)
from fidesmail.web.messaging_scopes import PREFIX, require
from fidesmail.web.messaging_secrets import no_default
from fidesmail.web.messaging_view import read_config_request, service_type_in_path

blp = Blueprint("messaging_default", __name__, url_prefix=PREFIX, description="fides' messaging defaults")


class DefaultRequestSchema(Schema):
    """fides' MessagingConfigRequestBase: a service type and its details (no key, name or secrets)."""

    service_type = MessagingConfigRequestSchema._declared_fields["service_type"]
    details = MessagingConfigRequestSchema._declared_fields["details"]


class IdentitySchema(Schema):
    email = fields.String(metadata={"format": "email"})
    phone_number = fields.String(metadata={"description": "Accepted, not used: SMS is fides' own"})


class MessagingTestRequestSchema(Schema):
    to_identity = fields.Nested(IdentitySchema, required=True)


class MessagingTestAnswerSchema(Schema):
    details = fields.String(metadata={"example": "Test message successfully sent"})


def _key_for_new_default(snapshot, service_type: str) -> str:
    """fides' key for a type's first config (the type itself), or the first free one after it."""
    key, number = service_type, 1
    while key in snapshot.configs:
        number += 1
        key = f"{service_type}_{number}"
    return key


@blp.route("/default")
class Default(MethodView):
    @require("PUT", "/default")
    @blp.documented_arguments(DefaultRequestSchema())
    @blp.documented_response(200, MessagingConfigResponseSchema)
    def put(self):
        """Set the type's default config (created when the type has none) and make the type the active default."""
        found = context.current()
        asked = read_config_request(key_and_name=False)
        snapshot = found.store.snapshot()
        key = snapshot.messaging_defaults.default_of(snapshot.configs, asked.service_type) or \
            _key_for_new_default(snapshot, asked.service_type)
        return answer_of(found, write_config(found, asked, key, activate=True))


@blp.route("/default/active")
class ActiveDefault(MethodView):
    @require("GET", "/default/active")
    @blp.documented_response(200, MessagingConfigResponseSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No active default (or no config of its type)")
    def get(self):
        """The active default config: the default of the type messaging.yaml names active."""
        found = context.current()
        snapshot = found.store.snapshot()
        key = snapshot.messaging_defaults.active_default(snapshot.configs)
        if key is None:
            raise NotFound("No active default messaging config found.")
        return answer_of(found, snapshot.configs[key].document)


@blp.route("/default/<service_type>")
class TypeDefault(MethodView):
    @require("GET", "/default/<service_type>")
    @blp.documented_response(200, MessagingConfigResponseSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No config of this type")
    def get(self, service_type):
        """The type's default config (its first, by creation)."""
        service_type = service_type_in_path(service_type)
        found = context.current()
        snapshot = found.store.snapshot()
        key = snapshot.messaging_defaults.default_of(snapshot.configs, service_type)
        if key is None:
            raise no_default(service_type)
        return answer_of(found, snapshot.configs[key].document)


def _test_address() -> str | None:
    """The body's `to_identity.email`, judged as fides judges it (None: no email identity); 422 otherwise."""
    body = Blueprint.ARGUMENTS_PARSER.load_json(request, None)
    if not isinstance(body, dict):
        raise Invalid([{"type": "model_attributes_type", "loc": ["body"],
                        "msg": "Input should be a valid dictionary or object to extract fields from"}])
    problems = [fides_problem(["body", name], "Unknown field.") for name in body if name != "to_identity"]
    identity = body.get("to_identity")
    if "to_identity" not in body:
        problems.insert(0, fides_problem(["body", "to_identity"], "Missing data for required field."))
    elif not isinstance(identity, dict):
        problems.insert(0, fides_problem(["body", "to_identity"], "Not a valid mapping type."))
    else:
        problems[:0] = [fides_problem(["body", "to_identity", name], "Unknown field.") for name in identity
                        if name not in ("email", "phone_number")]
        email = identity.get("email")
        if email is not None:
            try:
                parse_address(email) if isinstance(email, str) else parse_address("")
            except AddressError as exc:
                problems.insert(0, {"type": "value_error", "loc": ["body", "to_identity", "email"],
                                    "msg": f"value is not a valid email address: {exc}"})
    if problems:
        raise Invalid(problems)
    return identity.get("email")


@blp.route("/test/<service_type>")
class Test(MethodView):
    @require("POST", "/test/<service_type>")
    @blp.documented_arguments(MessagingTestRequestSchema())
    @blp.documented_response(200, MessagingTestAnswerSchema)
    @blp.alt_response(400, schema=ErrorSchema, description="The test message was not sent (the provider's words)")
    @blp.alt_response(404, schema=ErrorSchema, description="No config of this type")
    def post(self, service_type):
        """Send a test message through the type's default config.

        Its time and outcome become the config's last_test_timestamp and last_test_succeeded."""
        service_type = service_type_in_path(service_type)
        found = context.current()
        snapshot = found.store.snapshot()
        address = _test_address()
        key = snapshot.messaging_defaults.default_of(snapshot.configs, service_type)
        if key is None:
            raise NotFound(f"No messaging config found with service type: MessagingServiceType.{service_type}")
        failure = "No email identity supplied." if address is None else _send_test(found, key, address)
        found.maintenance.ready()
        found.config_tests.record(key, failure is None)
        if failure is not None:
            raise NotSupported(f"There was an error sending the test message: {failure}")
        return {"details": "Test message successfully sent"}


def _send_test(found, key: str, address: str) -> str | None:
    """Send the test message through config `key`; why it was not sent, or None."""
    send = delivery.Send(action_type="test_message", to=address, body_params={}, config_key=key)
    try:
        answer = found.sender.deliver(send)
    except FidesmailError as exc:
        detail = errors.detail_of(exc)
        return detail if isinstance(detail, str) else "; ".join(item["msg"] for item in detail)
    return None if answer.result == outcomes.SENT else answer.body["detail"]
