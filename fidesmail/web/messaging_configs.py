"""fides' messaging config endpoints (fides 2.78.2's paths, bodies, statuses and words) over the config tree.

POST /messaging/config is fides' create-or-update by key (its key defaults to the service type, its name
to fides' name of the provider); where fides answers 500 (a second config of a type, a PATCH without a
key), fidesmail answers as the contract says: a second config, and the path's config. Configs are the
ones /email/config serves, listed by key.
"""

from __future__ import annotations

import math

from flask import Response, request
from flask.views import MethodView
from marshmallow import Schema, fields

from fidesmail.core.exceptions import Conflict, Invalid, NotFound
from fidesmail.core.validation import fides_problem
from fidesmail.providers import catalog
from fidesmail.tree import fallbacks
from fidesmail.web import context
from fidesmail.web.blueprint import Blueprint
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.messaging_scopes import PREFIX, require
from fidesmail.web.messaging_secrets import fides_secrets
from fidesmail.web.messaging_view import (
    ConfigRequest,
    answer,
    config_key_in_path,
    forget_last_test,
    last_tests,
    read_config_request,
)
from fidesmail.web.secrets import sealed_with, sealing_key

blp = Blueprint("messaging_config", __name__, url_prefix=PREFIX, description="fides' messaging configs")
_MAX_SIZE = 100  # fides' (fastapi-pagination's) largest page


class MessagingConfigRequestSchema(Schema):
    """fides' MessagingConfigRequest (documentation: the body is judged in fides' words by messaging_view)."""

    service_type = fields.String(required=True, metadata={"enum": list(catalog.SERVICE_TYPES)})
    details = fields.Dict(required=True, metadata={"anyOf": catalog.details_refs()})
    name = fields.String(metadata={"description": "Default: fides' name of the provider (e.g. Mailgun)"})
    key = fields.String(metadata={"description": "Default: the service type; an existing key is updated"})
    secrets = fields.Dict(metadata={"description": "Its provider's secrets, as PUT .../secret takes them"})


class MessagingConfigResponseSchema(Schema):
    """fides' MessagingConfigResponse."""

    service_type = fields.String()
    details = fields.Dict()
    name = fields.String()
    key = fields.String()
    last_test_timestamp = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_test_succeeded = fields.Boolean(allow_none=True)


class MessagingConfigPageSchema(Schema):
    items = fields.List(fields.Nested(MessagingConfigResponseSchema))
    total = fields.Integer()
    page = fields.Integer()
    size = fields.Integer()
    pages = fields.Integer()


def no_config(key: str) -> NotFound:
    return NotFound(f"No messaging config found with key {key}")


def answer_of(found, document) -> dict:
    """fides' answer for one config document, with its last test."""
    return answer(document, last_tests(found, [document["key"]]).get(document["key"]))


def _free_name(snapshot, wanted: str, key: str) -> str:
    """`wanted`, or (taken by another config: fidesmail's names are unique) `wanted (key)`."""
    taken = {entry.name for other, entry in snapshot.configs.items() if other != key}
    return wanted if wanted not in taken else f"{wanted} ({key})"


def write_config(found, asked: ConfigRequest, key: str, *, activate: bool = False) -> dict:
    """Create or replace config `key` from a fides body (and seal its secrets), in one write; its document.
    `activate`: its type becomes the active default (PUT /messaging/default)."""
    store = found.store
    secrets = fides_secrets(asked.service_type, asked.secrets, ("body", "secrets")) if asked.secrets else None

    def upsert(snapshot):
        entry = snapshot.configs.get(key)
        stored = entry.document if entry else None
        wanted = asked.name or (stored["name"] if stored else catalog.KINDS[asked.service_type].fides_label)
        document = asked.document(key, wanted if asked.name else _free_name(snapshot, wanted, key), stored)
        documents = {**{other: e.document for other, e in snapshot.configs.items()}, key: document}
        why = fallbacks.link_problem(documents, key)  # fidesmail's own `fallback`, checked as /email/config does
        if why is not None:
            raise Invalid([fides_problem(["body", "fallback"], why)])
        owner = next((k for k, e in snapshot.configs.items() if e.name == document["name"] and k != key), None)
        if owner is not None:
            raise Conflict(f"Config with key {key} failed to be added: the name {document['name']!r} is used by "
                           f"the config with key {owner}.")
        if entry is None and (store.email_dir / f"{key}.yaml").exists():  # a file the loader refused
            raise Conflict(f"Config with key {key} failed to be added: config/email/{key}.yaml exists but is not "
                           "served (see /health).")
        changed_type = stored is not None and stored["service_type"] != document["service_type"]
        sealed = _sealed_after(found, snapshot, document, secrets, drop_foreign=changed_type)  # may refuse: first
        if document != stored:
            store.save_config(document)
        if stored is None or changed_type:
            store.note_created(snapshot, key, document["service_type"], activate=activate)
        elif activate:
            store.save_messaging_defaults(snapshot, snapshot.messaging_defaults.with_active(document["service_type"]))
        if sealed is not None:
            store.save_sealed(sealed)
        return document

    document, _ = store.write(upsert)
    return document


def _sealed_after(found, snapshot, document: dict, secrets: dict | None, *, drop_foreign: bool):
    """The sealed file once `document` is written: `secrets` sealed, another provider's dropped when its type
    changed; None when it does not change. Refused (409, 503) before anything is written."""
    key, kind = document["key"], catalog.KINDS[document["service_type"]]
    sealed = snapshot.sealed
    if drop_foreign:  # another provider's secrets would open nothing the new one uses
        for field in sorted(sealed.fields_of(key) - set(kind.secret_fields)):
            sealed = sealed.without_value(key, field)
    if secrets:
        sealed = sealed_with(sealed, kind, key, secrets, sealing_key(snapshot, found.vault))
    if sealed == snapshot.sealed:
        return None
    found.store.check_sealed_file_writable(snapshot)
    return sealed


def _page_args() -> tuple[int, int]:
    """?page= and ?size= as fides (fastapi-pagination) takes them; 422 in its words."""
    problems, values = [], {}
    for name, default, maximum in (("page", 1, None), ("size", 50, _MAX_SIZE)):
        raw = request.args.get(name)
        values[name] = default
        if raw is None:
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            problems.append({"type": "int_parsing", "loc": ["query", name],
                             "msg": "Input should be a valid integer, unable to parse string as an integer"})
            continue
        if value < 1:
            problems.append({"type": "greater_than_equal", "loc": ["query", name],
                             "msg": "Input should be greater than or equal to 1"})
        elif maximum is not None and value > maximum:
            problems.append({"type": "less_than_equal", "loc": ["query", name],
                             "msg": f"Input should be less than or equal to {maximum}"})
        values[name] = value
    if problems:
        raise Invalid(problems)
    return values["page"], values["size"]


@blp.route("/config")
class MessagingConfigs(MethodView):
    @require("GET", "/config")
    @blp.documented_response(200, MessagingConfigPageSchema)
    def get(self):
        """One page of configs (fidesmail's configs of every view), ordered by key."""
        page, size = _page_args()
        found = context.current()
        snapshot = found.store.snapshot()
        entries = snapshot.page(page, size)
        tests = last_tests(found, [entry.key for entry in entries])
        total = len(snapshot.keys)
        return {"items": [answer(entry.document, tests.get(entry.key)) for entry in entries], "total": total,
                "page": page, "size": size, "pages": math.ceil(total / size)}

    @require("POST", "/config")
    @blp.documented_arguments(MessagingConfigRequestSchema())
    @blp.documented_response(200, MessagingConfigResponseSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="Its name is another config's")
    def post(self):
        """Create a config (or update the one with its key), with its secrets when given.

        The first config posted makes its type the active default."""
        found = context.current()
        asked = read_config_request()
        key = asked.key or asked.service_type
        return answer_of(found, write_config(found, asked, key))


@blp.route("/config/<config_key>")
class MessagingConfig(MethodView):
    @require("GET", "/config/<config_key>")
    @blp.documented_response(200, MessagingConfigResponseSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def get(self, config_key):
        """One config."""
        key = config_key_in_path(config_key)
        found = context.current()
        entry = found.store.snapshot().configs.get(key)
        if entry is None:
            raise no_config(key)
        return answer_of(found, entry.document)

    @require("PATCH", "/config/<config_key>")
    @blp.documented_arguments(MessagingConfigRequestSchema())
    @blp.documented_response(200, MessagingConfigResponseSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def patch(self, config_key):
        """Replace a config's service type and details (and its name, when given), as fides' full body says."""
        key = config_key_in_path(config_key)
        found = context.current()
        if key not in found.store.snapshot().configs:
            raise no_config(key)  # before the body is judged (contract section 5)
        asked = read_config_request()
        if asked.key is not None and asked.key != key:
            raise Invalid([fides_problem(["body", "key"], f"Must equal the key in the path ({key}); keys cannot "
                                                          "be changed.")])
        return answer_of(found, write_config(found, asked, key))

    @require("DELETE", "/config/<config_key>")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def delete(self, config_key):
        """Delete a config and its sealed secrets."""
        key = config_key_in_path(config_key)
        found = context.current()

        def remove(snapshot):
            if key not in snapshot.configs:
                raise no_config(key)
            found.store.delete_config(snapshot, key)

        found.store.write(remove)
        forget_last_test(found, key)
        return Response(status=204)
