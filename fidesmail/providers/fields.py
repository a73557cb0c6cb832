"""Marshmallow fields the providers' `details` share: strict booleans, DNS names, From addresses."""

from __future__ import annotations

from email.utils import parseaddr

from marshmallow import ValidationError, fields, post_load

from fidesmail.core.addresses import DNS_NAME, AddressError, is_dns_name, parse_address


class StrictBoolean(fields.Boolean):
    """Only true and false: "yes", 1 or "on" are type errors, not booleans."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def validate_domain(value: str) -> None:
    if not is_dns_name(value):
        raise ValidationError("Must be a DNS name such as mg.example.com.")


def domain(**kwargs) -> fields.String:
    """A DNS name such as mg.example.com."""
    metadata = {"pattern": DNS_NAME.pattern, "example": "mg.example.com", **kwargs.pop("metadata", {})}
    return fields.String(validate=validate_domain, metadata=metadata, **kwargs)


def validate_sender(value: str | None) -> None:
    if value is None:
        return
    try:
        parse_address(value, allow_display_name=True)
    except AddressError as exc:
        raise ValidationError(f"Not a valid From address: {exc}.") from None


def normalised_sender(value: str | None) -> str | None:
    """A From address in the one form it is stored and sent in."""
    return None if value is None else parse_address(value, allow_display_name=True)


def sender(**kwargs) -> fields.String:
    """A From address, a display name allowed ("Privacy Team <privacy@example.com>"); stored normalised."""
    metadata = {"example": "Privacy Team <privacy@example.com>", **kwargs.pop("metadata", {})}
    return fields.String(validate=validate_sender, metadata=metadata, **kwargs)


def normalise_senders(*names: str):
    """A schema's post_load hook that stores the named From addresses in their one normalised form."""

    @post_load
    def normalise(self, data, **kwargs):
        for name in names:
            if name in data:
                data[name] = normalised_sender(data[name])
        return data

    return normalise


def split_sender(value: str) -> tuple[str, str]:
    """(display name, address) of a normalised From address; the name is "" when there is none."""
    name, address = parseaddr(value)
    return name, address
