"""PUT/POST /api/v1/email/config/{key}/secret: seal a config's provider keys; they are never shown again."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from fidesmail.core.exceptions import NotFound, Unavailable
from fidesmail.providers import catalog
from fidesmail.sealing import envelope, keys
from fidesmail.web import auth, context
from fidesmail.web.blueprint import Blueprint, config_must_exist
from fidesmail.web.errors import ErrorSchema

blp = Blueprint("email_secret", __name__, url_prefix="/api/v1/email", description="Email config secrets")

# The body as documented: every provider's fields (each config takes its own provider's, checked in the view).
SecretsSchema = Schema.from_dict({
    name: field for service_type in catalog.SERVICE_TYPES
    for name, field in catalog.secrets_schema(service_type).declared_fields.items()
}, name="Secrets")
SecretsSchema.__doc__ = ("The secrets of a config (write-only): its provider's fields only (contract section 13); "
                         "a body that sets only webhook keys keeps the stored sending fields.")


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


def sealed_with(sealed, kind, key: str, secrets: dict, public_key):
    """The sealed file with `secrets` sealed for config `key`. A body that sets any of the provider's sending
    fields replaces them all (SES' `automatic` leaves no old keys behind); its webhook keys are kept unless set."""
    sending = set(kind.send_fields) | set(kind.optional_send_fields)
    if sending & secrets.keys():
        for field in sorted(sending - secrets.keys()):
            sealed = sealed.without_value(key, field)
    for field, value in secrets.items():
        sealed = sealed.with_value(key, field, envelope.seal(public_key, key, field, value))
    return sealed


def store_secrets(found, key: str, service_type: str, secrets: dict, not_found: Exception) -> None:
    """Seal a config's validated secrets; `not_found` when it is gone, 503 when its type changed meanwhile."""

    def seal_all(snapshot):
        current = snapshot.configs.get(key)
        if current is None:
            raise not_found
        if current.document["service_type"] != service_type:  # changed meanwhile: judged by another provider
            raise Unavailable("The config changed while its secrets were being set; send them again.")
        found.store.check_sealed_file_writable(snapshot)
        public_key = sealing_key(snapshot, found.vault)
        kind = catalog.KINDS[service_type]
        found.store.save_sealed(sealed_with(snapshot.sealed, kind, key, secrets, public_key))

    found.store.write(seal_all)


@blp.route("/config/<key>/secret", methods=["PUT", "POST"])
class EmailConfigSecret(MethodView):
    """The sealed secrets of one config."""

    @auth.require(auth.CREATE_OR_UPDATE, writes_config=True)
    @config_must_exist
    @blp.documented_arguments(SecretsSchema())
    @blp.response(200, SecretsAnswerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such config")
    @blp.alt_response(503, schema=ErrorSchema, description="seal.pub does not belong to the private keyring")
    def put(self, key):
        """Seal and store the config's provider keys (e.g. the Mailgun API key and/or webhook signing key)."""
        found = context.current()
        entry = found.store.snapshot().configs.get(key)
        if entry is None:  # removed since config_must_exist looked
            raise NotFound(f"No email config found with key {key}")
        service_type = entry.document["service_type"]
        secrets = blp.parse_body(catalog.secrets_schema(service_type))

        store_secrets(found, key, service_type, secrets, NotFound(f"No email config found with key {key}"))
        return {"msg": f"Secrets updated for EmailConfig with key: {key}.", "test_status": None,
                "failure_reason": None}

    post = put
