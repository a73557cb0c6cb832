"""PUT/POST /api/v1/email/config/{key}/secret: seal a config's Mailgun keys; they are never shown again."""

from __future__ import annotations

from collections.abc import Mapping

from flask.views import MethodView
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow import missing as missing_

from fidesmail.core.exceptions import NotFound, Unavailable
from fidesmail.sealing import envelope, keys, vault
from fidesmail.web import auth, context
from fidesmail.web.blueprint import Blueprint, config_must_exist
from fidesmail.web.errors import ErrorSchema

blp = Blueprint("email_secret", __name__, url_prefix="/api/v1/email", description="Email config secrets")


def _printable_ascii(value: str) -> None:
    # Mailgun keys are printable ASCII; anything else cannot travel in an HTTP Basic header.
    if not vault.is_usable(value):
        raise ValidationError("Must be a non-empty string of printable ASCII characters.")


class _ApiKey(fields.String):
    """Required, as in fidesops, unless the body sets the webhook signing key alone (the stored API key is kept)."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is missing_ and not (isinstance(data, Mapping) and envelope.WEBHOOK_SIGNING_KEY in data):
            raise self.make_error("required")
        return super().deserialize(value, attr, data, **kwargs)


def _secret(field_class=fields.String, **kwargs) -> fields.String:
    return field_class(load_only=True, validate=[validate.Length(min=1, max=1024), _printable_ascii], **kwargs)


class SecretsSchema(Schema):
    """The secrets of a Mailgun config (write-only); fields left out keep their stored values."""

    class Meta:
        unknown = RAISE

    mailgun_api_key = _secret(_ApiKey, metadata={
        "description": "The Mailgun API key (sending). Required unless mailgun_webhook_signing_key is given alone."})
    mailgun_webhook_signing_key = _secret(metadata={
        "description": "Mailgun's HTTP webhook signing key: verifies delivery events (POST /email/webhooks/mailgun/"
                       "{key})."})


class SecretsAnswerSchema(Schema):
    """fidesops' answer to a secrets update."""

    msg = fields.String()
    test_status = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)


def sealing_key(snapshot, vault):
    """seal.pub's key, once it is known to be the public half of the keyring's newest key."""
    if snapshot.public_key is None:
        raise Unavailable("Cannot seal: the public sealing key file seal.pub is missing or unreadable in the "
                          "config tree.")
    try:
        keyring = vault.keyring()
    except keys.KeyringError as exc:
        raise Unavailable(f"Cannot seal: {exc}") from None
    mismatch = keys.mismatch(snapshot.public_key_id, keyring)
    if mismatch:
        raise Unavailable(f"Cannot seal: {mismatch}.")
    return snapshot.public_key


@blp.route("/config/<key>/secret", methods=["PUT", "POST"])
class EmailConfigSecret(MethodView):
    """The sealed secrets of one config."""

    @auth.require(auth.CREATE_OR_UPDATE, writes_config=True)
    @config_must_exist
    @blp.arguments(SecretsSchema())
    @blp.response(200, SecretsAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.alt_response(503, schema=ErrorSchema, description="seal.pub does not belong to the private keyring")
    def put(self, secrets, key):
        """Seal and store the config's Mailgun API key and/or webhook signing key."""
        found = context.current()
        store = found.store

        def seal_all(snapshot):
            if key not in snapshot.configs:
                raise NotFound(f"No email config found with key {key}")
            store.check_sealed_file_writable(snapshot)
            public_key = sealing_key(snapshot, found.vault)
            updated = snapshot.sealed
            for field, value in secrets.items():
                updated = updated.with_value(key, field, envelope.seal(public_key, key, field, value))
            store.save_sealed(updated)

        store.write(seal_all)
        return {"msg": f"Secrets updated for EmailConfig with key: {key}.", "test_status": None,
                "failure_reason": None}

    post = put
