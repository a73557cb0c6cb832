"""What every provider's PUT /secret body shares: its own fields only, each a usable key, fides' rules.

A provider's secrets schema lists fides' field names for it. Its sending fields are required, except
in a body that sets webhook keys alone (the stored sending fields are kept then, contract section 10);
a body that sets any sending field replaces them all (web/secrets.py), as fides replaces a config's
secrets on every PUT.
"""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow import missing as missing_

MAX_SECRET = 1024
# Signs the callbacks of a config's messages (contract section 15): any provider's config takes it.
CALLBACK_SIGNING_KEY = "callback_signing_key"


def _usable(value: str) -> None:
    # Keys are printable ASCII; anything else cannot travel in an HTTP header (sealing.vault.is_usable).
    if not (value.strip() and value.isascii() and value.isprintable()):
        raise ValidationError("Must be a non-empty string of printable ASCII characters.")


class _Secret(fields.String):
    """One write-only secret; `required_unless`: required, except in a body that sets one of these alone."""

    def __init__(self, *, required_unless: tuple[str, ...] = (), **kwargs):
        super().__init__(load_only=True, validate=[validate.Length(min=1, max=MAX_SECRET), _usable,
                                                   *kwargs.pop("checks", ())], **kwargs)
        self.required_unless = required_unless

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is missing_ and self.required_unless:
            if not (isinstance(data, Mapping) and any(name in data for name in self.required_unless)):
                raise self.make_error("required")
        return super().deserialize(value, attr, data, **kwargs)


def secret(description: str, *, required: bool = False, required_unless: tuple[str, ...] = (),
           checks: tuple = ()) -> fields.String:
    """A secret field of a provider's secrets schema (`checks`: more validators, e.g. OneOf)."""
    return _Secret(required=required, required_unless=required_unless, checks=checks,
                   metadata={"description": description})


class SecretsSchema(Schema):
    """Base of a provider's secrets: unknown fields (another provider's too) are refused."""

    class Meta:
        unknown = RAISE

    callback_signing_key = secret(
        "Signs the callbacks of this config's messages (X-Fidesmail-Signature, HMAC-SHA256; at least 16 "
        "characters); any provider's config takes it, alone or beside the other fields.",
        checks=(validate.Length(min=16, error="Must be at least 16 characters (a random one: openssl rand -hex 32)."),))
