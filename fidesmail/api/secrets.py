"""PUT/POST /api/v1/email/config/{key}/secret: seal a Mailgun key; it is never shown again."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .. import auth, sealed
from ..errors import ErrorSchema, error_response
from ..store import NotFound, StorageUnavailable, StoreError
from . import Blueprint, config_must_exist, current_store

blp = Blueprint("email_secret", __name__, url_prefix="/api/v1/email", description="Email config secrets")


def _printable(value: str) -> None:
    if not value.strip() or not value.isprintable():
        raise ValidationError("Must be a non-empty string of printable characters.")


class SecretsSchema(Schema):
    """The secrets of a Mailgun config (write-only)."""

    class Meta:
        unknown = RAISE

    mailgun_api_key = fields.String(required=True, load_only=True,
                                    validate=[validate.Length(min=1, max=1024), _printable])


class SecretsAnswerSchema(Schema):
    """fidesops' answer to a secrets update."""

    msg = fields.String()
    test_status = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)


@blp.route("/config/<key>/secret", methods=["PUT", "POST"])
class EmailConfigSecret(MethodView):
    """The sealed secrets of one config."""

    @auth.require(auth.CREATE_OR_UPDATE, writes_config=True)
    @config_must_exist
    @blp.arguments(SecretsSchema())
    @blp.response(200, SecretsAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    def put(self, secrets, key):
        """Seal and store the config's Mailgun key."""
        store = current_store()

        def seal_all(snapshot):
            if key not in snapshot.configs:
                raise NotFound(f"No email config found with key {key}")
            try:
                public_key = sealed.load_public_key(store.public_key_path)
            except sealed.KeyringError as exc:
                raise StorageUnavailable(f"Cannot seal: {exc}") from None
            updated = snapshot.sealed
            for field, value in secrets.items():
                updated = updated.with_value(key, field, sealed.seal(public_key, key, field, value))
            store.save_sealed(updated)

        try:
            store.write(seal_all)
        except StoreError as exc:
            return error_response(exc.status, exc.detail)
        return {"msg": f"Secrets updated for EmailConfig with key: {key}.", "test_status": None,
                "failure_reason": None}

    post = put
