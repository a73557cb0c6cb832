"""Marshmallow schemas for email configs: one set, used by the API and the YAML loader alike."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.providers import catalog
from fidesmail.providers.catalog import SERVICE_TYPES

_FIDESKEY_CHARACTERS = re.compile(r"^[A-Za-z0-9_.-]+$")  # fidesops' (fideslang's) FidesKey


def derive_key(name: str) -> str:
    """ASCII-folded snake case of a name: "My Mailgun Config" -> "my_mailgun_config"."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    snake = re.sub(r"[^A-Za-z0-9]+", "_", folded).strip("_").lower()
    return snake[:100].rstrip("_")


class ServiceType(fields.String):
    """A provider's service type ("mailgun", ...) in any case on input, lowercase on output."""

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


class Details(fields.Field):
    """`details`, validated by the schema of the config's own service type (documented as any provider's)."""

    def __init__(self, **kwargs):
        metadata = {"anyOf": catalog.details_refs(), "description": "The provider's details: as its service_type "
                    "says (contract section 13)", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        service_type = data.get("service_type") if isinstance(data, Mapping) else None
        service_type = service_type.lower() if isinstance(service_type, str) else None
        if not isinstance(value, Mapping):
            raise ValidationError({"_schema": ["Invalid input type."]})
        if service_type not in catalog.KINDS:  # the type is judged on its own; a PATCH's details, merged
            return value  # into the stored ones, are judged with the stored config's type
        return catalog.details_schema(service_type).load(value, partial=partial)


class CallbackSchema(Schema):
    """Where the status changes of a config's messages are POSTed (contract section 15)."""

    class Meta:
        unknown = RAISE
        ordered = True

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=2000), metadata={
                         "description": "Any http(s) URL: each status change of this config's messages is POSTed "
                                        "there, signed with the config's sealed callback_signing_key"})
MAX_RATE_LIMIT = 1_000_000  # messages per second: slots a microsecond apart


class RateLimit(fields.Number):
    """`rate_limit`: messages per second to the config's provider, a number > 0 (a JSON or YAML number:
    "10", true or NaN are type errors, not rates); kept as given (10 stays 10, 0.5 stays 0.5)."""

    num_type = float

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Must be a number: messages per second, such as 10 or 0.5.")
        if not 0 < value <= MAX_RATE_LIMIT:  # NaN fails this too
            raise ValidationError(f"Must be greater than 0 and at most {MAX_RATE_LIMIT:,} (messages per second).")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value


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
    service_type = ServiceType(required=True, metadata={"description": f"{', '.join(SERVICE_TYPES)}, in any case"})
    details = Details(required=True)
    fallback = ConfigKey(load_default=None, allow_none=True, metadata={
        "pattern": KEY_PATTERN.pattern, "description": "Another config's key: a message this config's provider "
        "proves it did not take goes there at once, and on down its chain (absent or null: none)"})
    callback = fields.Nested(CallbackSchema, load_default=None, allow_none=True, metadata={
        "description": "Where status changes of this config's messages are POSTed (null: none)"})
    rate_limit = RateLimit(load_default=None, allow_none=True, metadata={
        "description": "At most this many messages per second go to the provider, across workers and replicas "
                       "(absent or null: no limit)", "minimum": 0, "exclusiveMinimum": True,
        "maximum": MAX_RATE_LIMIT})

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


def config_document(data: dict) -> dict:
    """The canonical stored form of a validated config: fixed key order, unset details, fallback, limits and
    callback left out."""
    document = {
        "key": data["key"],
        "name": data["name"],
        "service_type": data["service_type"],
        "details": catalog.details_document(data["service_type"], data["details"]),
    }
    if data.get("fallback") is not None:
        document["fallback"] = data["fallback"]
    if data.get("rate_limit") is not None:
        document["rate_limit"] = data["rate_limit"]
    if data.get("callback") is not None:  # left out when unset: fidesops' shape stays as it was
        document["callback"] = {"url": data["callback"]["url"]}
    return document


_CONFIG_SCHEMA = ConfigSchema()  # built once: building a schema costs more than loading a small document


def validate_config(raw) -> dict:
    """Validate a whole config (API body or YAML document) into its canonical document."""
    return config_document(_CONFIG_SCHEMA.load(raw))
