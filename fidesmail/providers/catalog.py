"""Every provider fidesmail speaks, by fides' service type: the one list configs, secrets and sends read."""

from __future__ import annotations

from fidesmail.providers.base import Provider
from fidesmail.providers.mailgun.provider import Mailgun

# In the order a 422's permitted list names them (contract section 13: mailgun first).
KINDS: dict[str, type[Provider]] = {kind.service_type: kind for kind in (Mailgun,)}
SERVICE_TYPES = tuple(KINDS)
_DETAILS_SCHEMAS = {service_type: kind.details_schema() for service_type, kind in KINDS.items()}  # built once


def details_schema(service_type: str):
    """The (shared, stateless) schema instance of a service type's `details`."""
    return _DETAILS_SCHEMAS[service_type]


def details_document(service_type: str, details: dict) -> dict:
    """The canonical stored form of validated `details`: the schema's field order, unset values left out."""
    order = _DETAILS_SCHEMAS[service_type].fields
    return {name: details[name] for name in order if details.get(name) is not None}
