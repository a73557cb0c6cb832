"""fides' messaging defaults as a file of the tree: `messaging.yaml`, kept by the API, reviewed like any config.

fides keeps one config per service type and a setting (`notification_service_type`) naming the active
one. fidesmail keeps several configs of a type (contract section 16), so this file says which config is
the default of each type and which type is the active default:

    active: mailgun                  # GET /api/v1/messaging/default/active answers this type's default
    created:                         # each type's configs in the order they were created: the first
      mailgun: [my_mailgun, second]  # that is a config of the type is its default (reorder to change it)

The API keeps it (a config created through either view is listed; the first becomes the active
default; PUT /messaging/default names another); a config of the type that is not listed (made by
hand) comes after the listed ones, by key. It is state a reviewer can read, not a config: a key it
lists that is no config (any more) is passed over, never a problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from fidesmail.core import yamlio
from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.core.problems import Problem
from fidesmail.core.validation import flatten_messages
from fidesmail.providers.catalog import SERVICE_TYPES

FILE_NAME = "messaging.yaml"
_HEADER = (b"# fides' messaging defaults (GET /api/v1/messaging/default/...), kept by the API.\n"
           b"# active: the service type whose default config is the active default.\n"
           b"# created: each type's configs in the order they were created; the first is the type's default.\n")


@dataclass(frozen=True)
class MessagingDefaults:
    """Which type is the active default, and each type's configs in the order they were created."""

    active: str | None = None
    created: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def configs_of(self, configs: Mapping, service_type: str) -> list[str]:
        """The keys of the configs of `service_type` in `configs` (key -> entry), the default first."""
        of_type = {key for key, entry in configs.items() if entry.document["service_type"] == service_type}
        listed = [key for key in dict.fromkeys(self.created.get(service_type, ())) if key in of_type]
        return listed + sorted(of_type - set(listed))

    def default_of(self, configs: Mapping, service_type: str) -> str | None:
        """The key of the default config of `service_type`, or None when it has none."""
        found = self.configs_of(configs, service_type)
        return found[0] if found else None

    def active_default(self, configs: Mapping) -> str | None:
        """The key of the active default config, or None (no active type, or no config of it)."""
        return self.default_of(configs, self.active) if self.active else None

    def with_created(self, key: str, service_type: str) -> MessagingDefaults:
        """`key` listed last among its type's configs (and nowhere else: a changed type moves it)."""
        created = {t: keys for t, keys in self.without(key).created.items()}
        created[service_type] = (*created.get(service_type, ()), key)
        return MessagingDefaults(self.active, MappingProxyType(created))

    def without(self, key: str) -> MessagingDefaults:
        """`key` listed nowhere (its config was deleted)."""
        created = {t: tuple(k for k in keys if k != key) for t, keys in self.created.items()}
        return MessagingDefaults(self.active, MappingProxyType({t: keys for t, keys in created.items() if keys}))

    def with_active(self, service_type: str) -> MessagingDefaults:
        return MessagingDefaults(service_type, self.created)

    def document(self) -> dict:
        """The file's content as plain data (also what the service's last good state keeps)."""
        document: dict = {"active": self.active} if self.active else {}
        created = {t: list(self.created[t]) for t in SERVICE_TYPES if self.created.get(t)}
        if created:
            document["created"] = created
        return document


EMPTY = MessagingDefaults()


def _key(value: str) -> None:
    if not KEY_PATTERN.fullmatch(value):
        raise ValidationError("Not a config key.")


class _DefaultsSchema(Schema):
    class Meta:
        unknown = RAISE

    active = fields.String(allow_none=True, validate=validate.OneOf(SERVICE_TYPES))
    created = fields.Dict(keys=fields.String(validate=validate.OneOf(SERVICE_TYPES)),
                          values=fields.List(fields.String(validate=_key)))


_SCHEMA = _DefaultsSchema()


def from_document(document: Mapping) -> MessagingDefaults:
    """The defaults of a validated document (the file's, or the last good state's)."""
    created = {t: tuple(keys) for t, keys in (document.get("created") or {}).items() if keys}
    return MessagingDefaults(document.get("active"), MappingProxyType(created))


def parse(data: bytes) -> tuple[MessagingDefaults | None, tuple[Problem, ...]]:
    """The file's defaults, or None and the problems (with their line) that kept it out."""
    try:
        document, line_of = yamlio.load(data)
    except yamlio.YAMLProblem as exc:
        if exc.message == yamlio.EMPTY:  # nothing but comments: no defaults yet
            return EMPTY, ()
        return None, (Problem(FILE_NAME, exc.line, exc.message),)
    if document is None:
        return EMPTY, ()
    if not isinstance(document, dict):
        return None, (Problem(FILE_NAME, 1, "the messaging defaults file must be a YAML mapping"),)
    try:
        valid = _SCHEMA.load(document)
    except ValidationError as exc:
        return None, tuple(Problem(FILE_NAME, line_of(loc), f"{'.'.join(map(str, loc)) or 'file'}: {msg}")
                           for loc, msg in flatten_messages(exc.messages))
    return from_document(valid), ()


def dump(defaults: MessagingDefaults) -> bytes:
    """The file for `defaults`: a comment saying what it is, then plain YAML."""
    return _HEADER + yamlio.dump(defaults.document())
