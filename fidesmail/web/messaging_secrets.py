"""fides' secrets endpoints: PUT /messaging/config/{key}/secret and PUT /messaging/default/{type}/secret.

fides validates a secrets body by hand against the config's type (every required field in every PUT,
no other provider's field) and answers its problems with the field alone as `loc` (`["mailgun_api_key"]`,
or `[]` for the whole body). The values are sealed into the tree as /email/config/{key}/secret seals
them; fidesmail's own webhook keys may ride along and are kept when a body leaves them out.
"""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from marshmallow import ValidationError

from fidesmail.core.exceptions import Invalid, NotFound
from fidesmail.core.validation import fides_problem, flatten_messages
from fidesmail.providers import catalog
from fidesmail.providers.ses import secrets as ses_secrets
from fidesmail.web import context
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.messaging_scopes import PREFIX, require
from fidesmail.web.messaging_view import config_key_in_path, service_type_in_path
from fidesmail.web.secrets import SecretsAnswerSchema, SecretsSchema, store_secrets

blp = Blueprint("messaging_secrets", __name__, url_prefix=PREFIX, description="fides' messaging config secrets")

# fides' own words (its BaseAWSSchema) for an SES body without the one field it always needs.
_SES_NEEDS = f"MessagingServiceSecretsAWS_SES must be supplied all of: ['{ses_secrets.AUTH_METHOD}']."


def fides_secrets(service_type: str, body, loc: tuple = ()) -> dict:
    """A secrets body judged as fides judges it for `service_type`; 422 with fides' problems (`loc`: before each)."""
    if not isinstance(body, dict):
        raise Invalid([fides_problem([*loc] or ["body"], "Not a valid mapping type.")])
    if service_type == "aws_ses" and ses_secrets.AUTH_METHOD not in body:
        raise Invalid([fides_problem([*loc], _SES_NEEDS)])  # fides' before-validator: nothing else is judged
    schema = catalog.secrets_schema(service_type)
    try:
        secrets = schema.load(body)
        problems = []
    except ValidationError as exc:
        secrets, problems = {}, flatten_messages(exc.messages)
    reported = {found[0] for found, _ in problems if found}
    problems += [((name,), "Missing data for required field.") for name in catalog.KINDS[service_type].send_fields
                 if name not in body and name not in reported]  # fides: no PUT keeps a stored API key
    if problems:
        order = {name: index for index, name in enumerate((*schema.fields, *body))}
        problems.sort(key=lambda item: order.get(item[0][0], -1) if item[0] else -1)
        raise Invalid([fides_problem([*loc, *found], msg) for found, msg in problems])
    return secrets


def _answer(key: str) -> dict:
    return {"msg": f"Secrets updated for MessagingConfig with key: {key}.", "test_status": None,
            "failure_reason": None}


def _body():
    return Blueprint.ARGUMENTS_PARSER.load_json(request, None)


@blp.route("/config/<config_key>/secret")
class ConfigSecret(MethodView):
    @require("PUT", "/config/<config_key>/secret")
    @blp.documented_arguments(SecretsSchema())
    @blp.response(200, SecretsAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def put(self, config_key):
        """Seal a config's provider secrets: all of its provider's required fields, as fides takes them."""
        key = config_key_in_path(config_key)
        found = context.current()
        entry = found.store.snapshot().configs.get(key)
        not_found = NotFound(f"No messaging configuration with key {key}.")  # fides' words
        if entry is None:
            raise not_found
        service_type = entry.document["service_type"]
        store_secrets(found, key, service_type, fides_secrets(service_type, _body()), not_found)
        return _answer(key)


@blp.route("/default/<service_type>/secret")
class DefaultSecret(MethodView):
    @require("PUT", "/default/<service_type>/secret")
    @blp.documented_arguments(SecretsSchema())
    @blp.response(200, SecretsAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No config of this type")
    def put(self, service_type):
        """Seal the provider secrets of the type's default config (its first, by creation)."""
        service_type = service_type_in_path(service_type)
        found = context.current()
        snapshot = found.store.snapshot()
        key = snapshot.messaging_defaults.default_of(snapshot.configs, service_type)
        not_found = no_default(service_type)
        if key is None:
            raise not_found
        store_secrets(found, key, service_type, fides_secrets(service_type, _body()), not_found)
        return _answer(key)


def no_default(service_type: str) -> NotFound:
    """fides' words (its f-string shows the enum member) for a type without a config."""
    return NotFound(f"No default messaging config found of type 'MessagingServiceType.{service_type}'")
