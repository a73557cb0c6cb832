"""Email config endpoints, compatible with fidesops' /api/v1/email/config API."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from marshmallow import ValidationError

from fidesmail.core.exceptions import Conflict, Invalid, NotFound, PreconditionFailed, problem
from fidesmail.core.validation import validation_detail
from fidesmail.providers import catalog
from fidesmail.tree import fallbacks
from fidesmail.tree.documents import ConfigPatchSchema, ConfigSchema, config_document, validate_config
from fidesmail.web import auth, context, headers_doc
from fidesmail.web.blueprint import Blueprint, config_must_exist
from fidesmail.web.config_schemas import ConfigOutSchema, ConfigPageSchema, PageArgsSchema
from fidesmail.web.errors import ErrorSchema
from fidesmail.web.messaging_view import forget_last_test

blp = Blueprint("email_config", __name__, url_prefix="/api/v1/email", description="Email configs")


def not_found(key: str) -> NotFound:
    return NotFound(f"No email config found with key {key}")


def _config_response(entry, status: int = 200) -> Response:
    return Response(entry.body, status=status, mimetype="application/json", headers={"ETag": entry.etag})


def _entry_to_change(snapshot, key: str):
    """The config a PATCH or DELETE acts on: 404 when absent, 412 when If-Match names another version."""
    entry = snapshot.configs.get(key)
    if entry is None:
        raise not_found(key)
    if_match = request.if_match
    if if_match and not if_match.star_tag and not if_match.contains_raw(entry.etag):
        raise PreconditionFailed(f"The config with key {entry.key} has changed since it was read "
                                 "(If-Match does not match its ETag).")
    return entry


def _check_name_free(snapshot, name: str, key: str) -> None:
    """409 when another config already has this name."""
    taken = next((e.key for e in snapshot.configs.values() if e.name == name and e.key != key), None)
    if taken is not None:
        raise Conflict(f"An email config with name {name!r} already exists (key {taken}).")


def _check_fallback(snapshot, document: dict) -> None:
    """422 when the config's fallback names no config or closes a cycle (the chain named)."""
    documents = {key: entry.document for key, entry in snapshot.configs.items()}
    documents[document["key"]] = document
    why = fallbacks.link_problem(documents, document["key"])
    if why is not None:
        raise Invalid([problem(["body", "fallback"], why)])


def _drop_foreign_secrets(store, snapshot, key: str, service_type: str) -> None:
    """A config that changes provider loses the sealed secrets of the old one (they would open nothing it uses)."""
    foreign = sorted(snapshot.sealed.fields_of(key) - set(catalog.KINDS[service_type].secret_fields))
    if not foreign:
        return
    store.check_sealed_file_writable(snapshot)
    sealed = snapshot.sealed
    for field in foreign:
        sealed = sealed.without_value(key, field)
    store.save_sealed(sealed)


@blp.route("/config")
class EmailConfigs(MethodView):
    """The collection of email configs."""

    @auth.require(auth.READ)
    @blp.arguments(PageArgsSchema(), location="query")  # an instance: a class is instantiated per request
    @blp.documented_response(200, ConfigPageSchema)
    def get(self, args):
        """List configs, ordered by key."""
        snapshot = context.current().store.snapshot()
        page, size = args["page"], args["size"]
        body = b'{"items":[' + b",".join(e.body for e in snapshot.page(page, size)) + \
            b'],"total":%d,"page":%d,"size":%d}' % (len(snapshot.keys), page, size)
        return Response(body, mimetype="application/json")

    @auth.require(auth.CREATE_OR_UPDATE, writes_config=True)
    @blp.arguments(ConfigSchema())
    @blp.response(200, ConfigOutSchema, headers=headers_doc.ETAG)
    @blp.alt_response(409, schema=ErrorSchema, description="The key or the name is taken")
    def post(self, data):
        """Create a config; its key is derived from its name when not given."""
        document = config_document(data)
        store = context.current().store

        def create(snapshot):
            if document["key"] in snapshot.configs or (store.email_dir / f"{document['key']}.yaml").exists():
                raise Conflict(f"An email config with key {document['key']} already exists.")
            _check_name_free(snapshot, document["name"], document["key"])
            _check_fallback(snapshot, document)
            store.save_config(document)
            store.note_created(snapshot, document["key"], document["service_type"])

        _, written = store.write(create)
        return _config_response(written.configs[document["key"]])  # not snapshot(): it may be gone again


@blp.route("/config/<key>")
class EmailConfig(MethodView):
    """One email config."""

    @auth.require(auth.READ)
    @blp.documented_response(200, ConfigOutSchema, headers=headers_doc.ETAG)
    @blp.alt_response(304, description="Not modified: If-None-Match names this version", headers=headers_doc.ETAG)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.doc(**headers_doc.parameters(headers_doc.IF_NONE_MATCH))
    def get(self, key):
        """Get a config; its ETag names this version."""
        entry = context.current().store.snapshot().configs.get(key)
        if entry is None:
            raise not_found(key)
        if "HTTP_IF_NONE_MATCH" in request.environ and request.if_none_match.contains_raw(entry.etag):
            return Response(status=304, headers={"ETag": entry.etag})
        return _config_response(entry)

    @auth.require(auth.CREATE_OR_UPDATE, writes_config=True)
    @config_must_exist
    @blp.arguments(ConfigPatchSchema(partial=True))
    @blp.response(200, ConfigOutSchema, headers=headers_doc.ETAG)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.alt_response(412, schema=ErrorSchema, description="If-Match does not match the current ETag")
    @blp.doc(**headers_doc.parameters(headers_doc.IF_MATCH))
    def patch(self, changes, key):
        """Change some fields of a config; its details merge into the stored ones."""
        if "key" in changes and changes["key"] != key:
            raise Invalid([problem(["body", "key"], f"Must equal the key in the path ({key}); keys cannot be "
                                                    "changed.")])
        store = context.current().store

        def update(snapshot):
            entry = _entry_to_change(snapshot, key)
            merged = {**entry.document, **changes, "key": key}
            # Another provider's details mean nothing to the new one: a change of service_type replaces them.
            same_type = merged["service_type"] == entry.document["service_type"]
            merged["details"] = {**(entry.document["details"] if same_type else {}), **changes.get("details", {})}
            try:
                document = validate_config(merged)
            except ValidationError as exc:
                raise Invalid(validation_detail(exc.messages)) from None
            _check_name_free(snapshot, document["name"], key)
            _check_fallback(snapshot, document)
            if not same_type:
                _drop_foreign_secrets(store, snapshot, key, document["service_type"])
            if document != entry.document:
                store.save_config(document)
            if not same_type:  # fides' defaults list it among its new type's configs
                store.note_created(snapshot, key, document["service_type"])

        _, written = store.write(update)
        return _config_response(written.configs[key])  # not snapshot(): it may be gone or changed again

    @auth.require(auth.DELETE, writes_config=True)
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.alt_response(409, schema=ErrorSchema, description="Another config falls back to it")
    @blp.alt_response(412, schema=ErrorSchema, description="If-Match does not match the current ETag")
    @blp.doc(**headers_doc.parameters(headers_doc.IF_MATCH))
    def delete(self, key):
        """Delete a config and its sealed secrets."""
        store = context.current().store

        def remove(snapshot):
            _entry_to_change(snapshot, key)
            store.delete_config(snapshot, key)

        store.write(remove)
        forget_last_test(context.current(), key)
        return Response(status=204)
