"""Marshmallow schemas for email configs: one set, used by the API and the YAML loader alike."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from fidesmail.core.addresses import DNS_NAME, AddressError, is_dns_name, parse_address

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_FIDESKEY_CHARACTERS = re.compile(r"^[A-Za-z0-9_.-]+$")  # fidesops' (fideslang's) FidesKey
SERVICE_TYPES = ("mailgun",)
API_VERSIONS = ("v3",)


def derive_key(name: str) -> str:
    """ASCII-folded snake case of a name: "My Mailgun Config" -> "my_mailgun_config"."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    snake = re.sub(r"[^A-Za-z0-9]+", "_", folded).strip("_").lower()
    return snake[:100].rstrip("_")


class StrictBoolean(fields.Boolean):
    """Only true and false: "yes", 1 or "on" are type errors, not booleans."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ServiceType(fields.String):
    """"mailgun" in any case on input, lowercase on output."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value.lower() not in SERVICE_TYPES:
            raise ValidationError(f"Must be one of: {', '.join(SERVICE_TYPES)}.")
        return value.lower()


class ConfigKey(fields.String):
    """A config key: safe as a file name and in a URL path."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not KEY_PATTERN.fullmatch(value):
            if not _FIDESKEY_CHARACTERS.fullmatch(value):
                # fidesops' own words for a key it refused (FidesOpsKey), so its clients read them unchanged.
                raise ValidationError("FidesKey must only contain alphanumeric characters, '.', '_' or '-'.")
            # Keys fidesops took but a file name and a URL path cannot: too long, or a leading '.' or '-'.
            raise ValidationError("FidesKey must be at most 100 characters and may not start with '.' or '-'.")
        return value


def _validate_domain(value: str) -> None:
    if not is_dns_name(value):
        raise ValidationError("Must be a DNS name such as mg.example.com.")


def _validate_sender(value: str | None) -> None:
    if value is None:
        return
    try:
        parse_address(value, allow_display_name=True)
    except AddressError as exc:
        raise ValidationError(f"Not a valid From address: {exc}.") from None


class MailgunDetailsSchema(Schema):
    """`details` of a Mailgun config."""

    class Meta:
        unknown = RAISE

    domain = fields.String(required=True, validate=_validate_domain,
                           metadata={"pattern": DNS_NAME.pattern, "example": "mg.example.com"})
    is_eu_domain = StrictBoolean(load_default=False)
    api_version = fields.String(load_default="v3", validate=validate.OneOf(API_VERSIONS))
    sender = fields.String(load_default=None, allow_none=True, validate=_validate_sender)

    @post_load
    def _normalise_sender(self, data, **kwargs):
        if data.get("sender") is not None:
            data["sender"] = parse_address(data["sender"], allow_display_name=True)
        return data


def _validate_name(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be empty.")


class ConfigSchema(Schema):
    """A whole config, as created by POST and as stored in config/email/<key>.yaml."""

    class Meta:
        unknown = RAISE
        ordered = True

    key = ConfigKey(load_default=None, allow_none=True, metadata={
        "pattern": KEY_PATTERN.pattern, "description": "Derived from name when absent (ASCII-folded snake case)"})
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _validate_name])
    service_type = ServiceType(required=True, metadata={"description": "mailgun, in any case"})
    details = fields.Nested(MailgunDetailsSchema, required=True)

    @validates_schema
    def _key_from_name(self, data, **kwargs):
        if data.get("key") is None and "name" in data and not derive_key(data["name"]):
            raise ValidationError(
                "No key can be derived from this name; send a 'key' as well.", "name"
            )

    @post_load
    def _fill_key(self, data, **kwargs):
        if data.get("key") is None:
            data["key"] = derive_key(data["name"])
        return data


class ConfigPatchSchema(ConfigSchema):
    """PATCH body: any subset of a config; `details` merge into the stored ones."""

    @validates_schema
    def _key_from_name(self, data, **kwargs):
        """A PATCH keeps its key: nothing to derive."""

    @post_load
    def _fill_key(self, data, **kwargs):
        return data


class ConfigDetailsOutSchema(Schema):
    """`details` as answered (documentation of the response)."""

    domain = fields.String(required=True)
    is_eu_domain = fields.Boolean(required=True)
    api_version = fields.String(required=True)
    sender = fields.String(metadata={"description": "From address; absent means mailgun@{domain}"})


class ConfigOutSchema(Schema):
    """A config as answered by the API."""

    key = fields.String(required=True)
    name = fields.String(required=True)
    service_type = fields.String(required=True)
    details = fields.Nested(ConfigDetailsOutSchema, required=True)
    secrets_set = fields.Boolean(required=True)


class ConfigPageSchema(Schema):
    """One page of configs, ordered by key."""

    items = fields.List(fields.Nested(ConfigOutSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    size = fields.Integer(required=True)


class PageArgsSchema(Schema):
    """?page=&size= of the list endpoint."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


def config_document(data: dict) -> dict:
    """The canonical stored form of a validated config: fixed key order, no empty sender."""
    details = data["details"]
    document_details = {
        "domain": details["domain"],
        "is_eu_domain": details["is_eu_domain"],
        "api_version": details["api_version"],
    }
    if details.get("sender") is not None:
        document_details["sender"] = details["sender"]
    return {
        "key": data["key"],
        "name": data["name"],
        "service_type": data["service_type"],
        "details": document_details,
    }


_CONFIG_SCHEMA = ConfigSchema()  # built once: building a schema costs more than loading a small document


def validate_config(raw) -> dict:
    """Validate a whole config (API body or YAML document) into its canonical document."""
    return config_document(_CONFIG_SCHEMA.load(raw))


def flatten_messages(messages, prefix=()) -> list[tuple[tuple, str]]:
    """Marshmallow's nested error messages as (location, message) pairs."""
    if isinstance(messages, Mapping):
        pairs = []
        for name, inner in messages.items():
            loc = prefix if name == "_schema" else (*prefix, name)
            pairs.extend(flatten_messages(inner, loc))
        return pairs
    if isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            return [(prefix, m) for m in messages]
        pairs = []
        for item in messages:
            pairs.extend(flatten_messages(item, prefix))
        return pairs
    return [(prefix, str(messages))]
