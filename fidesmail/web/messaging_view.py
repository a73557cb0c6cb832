"""fides' view of the configs (contract section 16): fides' request bodies in, fides' answers out.

The configs are the ones /email/config serves (one tree, two views); this module only translates at
the edge. A fides body (`service_type`, `details`, optional `name`, `key`, `secrets`) becomes the
config document the tree keeps, judged as fides 2.78's pydantic models judge it and refused in their
words; a config becomes fides' `MessagingConfigResponse` (its `details` as fides shows them, null where
unset, and `last_test_timestamp`/`last_test_succeeded` from the database).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Response, request
from marshmallow import ValidationError, fields

from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.core.exceptions import Invalid, Unavailable
from fidesmail.core.validation import fides_detail, fides_problem, flatten_messages, one_of_words
from fidesmail.providers import catalog
from fidesmail.tree.documents import ConfigSchema, validate_config
from fidesmail.web.blueprint import Blueprint

log = logging.getLogger("fidesmail.messaging")

_FIDES_KEY = re.compile(r"^[a-zA-Z0-9_.<>-]+$")  # fideslang's FidesKey
_FIDES_FIELDS = ("service_type", "details", "name", "key", "secrets")  # MessagingConfigRequest's, in its order
# fidesmail's own top-level config fields (sections 14, 15, 17) pass through a fides body to the config.
_OWN_FIELDS = frozenset(ConfigSchema().fields) - set(_FIDES_FIELDS)
_TRUE, _FALSE = {"1", "on", "t", "true", "y", "yes"}, {"0", "off", "f", "false", "n", "no"}  # pydantic's lax bool


def json_response(body, status: int = 200) -> Response:
    """`body` as JSON, its keys in the order given (fides' own order), not sorted."""
    return Response(json.dumps(body, separators=(", ", ": ")), status=status, mimetype="application/json")


def enum_problem(loc: list) -> dict:
    """pydantic's words for a service type fidesmail does not send with (twilio_text is left out)."""
    return {"type": "enum", "loc": loc, "msg": one_of_words(catalog.SERVICE_TYPES)}


def service_type_in_path(value: str) -> str:
    """A path's service type, in any case (fides' enum lower-cases it); 422 in fides' words otherwise."""
    if value.lower() not in catalog.KINDS:
        raise Invalid([enum_problem(["path", "service_type"])])
    return value.lower()


def fides_key_problem(loc: list, value: str) -> dict | None:
    """fides' FidesKey refusal, or fidesmail's where fides would take a key no file of the tree can be named."""
    if not _FIDES_KEY.fullmatch(value):
        return fides_problem(loc, "FidesKeys must only contain alphanumeric characters, '.', '_', '<', '>' or "
                                  f"'-'. Value provided: {value}")
    if not KEY_PATTERN.fullmatch(value):
        return fides_problem(loc, "A config key names a file of the config tree: at most 100 letters, digits, "
                                  f"'_', '.' or '-', not starting with '.' or '-'. Value provided: {value}")
    return None


def config_key_in_path(value: str) -> str:
    """A path's config key; 422 in fides' words when it is not a FidesKey."""
    problem = fides_key_problem(["path", "config_key"], value)
    if problem is not None and problem["msg"].startswith("Value error, FidesKeys"):
        raise Invalid([problem])
    return value  # a FidesKey no file can be named after is simply no config (404)


# --- answers -------------------------------------------------------------------------------------


def fides_details(document: Mapping) -> dict:
    """A config's `details` as fides shows them: its model's fields in its order (null where unset), then
    fidesmail's own (a Mailgun `sender`, ...) where set."""
    details = document["details"]
    shown = {name: details.get(name) for name in catalog.KINDS[document["service_type"]].fides_details}
    shown.update((name, value) for name, value in details.items() if name not in shown)
    return shown


def answer(document: Mapping, last_test=None) -> dict:
    """fides' MessagingConfigResponse of a config (and fidesmail's own top-level fields where set)."""
    body = {"service_type": document["service_type"], "details": fides_details(document),
            "name": document["name"], "key": document["key"],
            "last_test_timestamp": last_test.at if last_test else None,
            "last_test_succeeded": last_test.succeeded if last_test else None}
    body.update((name, value) for name, value in document.items() if name in _OWN_FIELDS)
    return body


def last_tests(found, keys) -> dict:
    """The last test of each config (none while the database cannot be used: config answers keep working)."""
    try:
        found.maintenance.ready()
        return found.config_tests.of(keys)
    except Unavailable as exc:
        log.warning("answering configs without their last tests: %s", exc.detail)
        return {}


def forget_last_test(found, key: str) -> None:
    """A deleted config's last test goes with it (logged, not refused, while the database cannot be used)."""
    try:
        found.maintenance.ready()
        found.config_tests.forget(key)
    except Unavailable as exc:
        log.warning("the last test of the deleted config %s stays recorded: %s", key, exc.detail)


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigRequest:
    """A fides config body, judged: what it asks of the config, and its secrets (judged by the secrets' rules)."""

    service_type: str
    details: dict
    name: str | None
    key: str | None
    secrets: dict | None
    own: dict  # fidesmail's own top-level fields it carries (fallback, ...)

    def document(self, key: str, name: str, base: Mapping | None = None) -> dict:
        """The config document it makes of `base` (the stored one, or none), validated; 422 in fides' words."""
        raw = {**(base or {}), **self.own, "key": key, "name": name, "service_type": self.service_type,
               "details": self.details}
        try:
            return validate_config(raw)
        except ValidationError as exc:
            raise Invalid(fides_detail(exc.messages, "body")) from None


def read_config_request(*, key_and_name: bool = True) -> ConfigRequest:
    """The JSON body as fides' MessagingConfigRequest (`key_and_name` False: MessagingConfigRequestBase, which
    PUT /messaging/default takes: no key, name or secrets); 422 with fides' problems, in fides' order."""
    body = Blueprint.ARGUMENTS_PARSER.load_json(request, None)
    if not isinstance(body, dict):
        raise Invalid([{"type": "model_attributes_type", "loc": ["body"],
                        "msg": "Input should be a valid dictionary or object to extract fields from"}])
    service_type = body.get("service_type")
    service_type = service_type.lower() if isinstance(service_type, str) else service_type
    if service_type in catalog.KINDS:  # fides judges the details first (a before-validator), alone
        details_problems = _details_problems(service_type, body.get("details"))
        if details_problems:
            raise Invalid(details_problems)
    allowed = _FIDES_FIELDS if key_and_name else ("service_type", "details")
    problems = []
    if "service_type" not in body:
        problems.append(fides_problem(["body", "service_type"], "Missing data for required field."))
    elif service_type not in catalog.KINDS:
        problems.append(enum_problem(["body", "service_type"]))
    for name in ("name", "key"):
        value = body.get(name) if key_and_name else None
        if value is not None and not isinstance(value, str):
            problems.append(fides_problem(["body", name], "Not a valid string."))
        elif name == "key" and value is not None:
            problems.extend(p for p in [fides_key_problem(["body", "key"], value)] if p)
    secrets = body.get("secrets") if key_and_name else None
    if secrets is not None and not isinstance(secrets, dict):
        problems.append(fides_problem(["body", "secrets"], "Not a valid mapping type."))
    problems += [fides_problem(["body", name], "Unknown field.") for name in body
                 if name not in allowed and name not in _OWN_FIELDS]
    if problems:
        raise Invalid(problems)
    return ConfigRequest(service_type, _lax_booleans(service_type, body["details"]), body.get("name") or None,
                         body.get("key"), secrets, {n: body[n] for n in body if n in _OWN_FIELDS})


def _details_problems(service_type: str, details) -> list[dict]:
    """fides' problems with a type's `details`: located at ["body", <field>], as its before-validator raises them."""
    if not details:
        return [fides_problem(["body"], "Messaging config must include details")]
    if not isinstance(details, dict):
        return [fides_problem(["body"], "Not a valid mapping type.")]
    schema = catalog.details_schema(service_type)
    try:
        schema.load(_lax_booleans(service_type, details))
    except ValidationError as exc:
        order = {name: index for index, name in enumerate((*schema.fields, *details))}
        found = sorted(flatten_messages(exc.messages), key=lambda item: order.get(item[0][0], -1) if item[0] else -1)
        return [fides_problem(["body", *loc], msg) for loc, msg in found]
    return []


def _lax_booleans(service_type: str, details: dict) -> dict:
    """`details` with pydantic's lax booleans ("false", 0, "yes"...) as booleans, and null optional fields left
    out (fides' admin UI sends `is_eu_domain: "false"`); the tree keeps strict ones."""
    declared = catalog.details_schema(service_type).fields
    lax = {}
    for name, value in details.items():
        field = declared.get(name)
        if value is None and field is not None and not field.required:
            continue
        if isinstance(field, fields.Boolean) and not isinstance(value, bool):
            word = str(value).strip().lower() if isinstance(value, (str, int, float)) else None
            value = True if word in _TRUE or word == "1.0" else False if word in _FALSE or word == "0.0" else value
        lax[name] = value
    return lax
