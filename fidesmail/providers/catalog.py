"""Every provider fidesmail speaks, by fides' service type: the one list configs, secrets and sends read."""

from __future__ import annotations

from fidesmail.providers.base import Provider
from fidesmail.providers.mailgun.provider import Mailgun
from fidesmail.providers.mandrill.provider import Mandrill
from fidesmail.providers.sendgrid.provider import SendGrid
from fidesmail.providers.ses.provider import SesProvider

# In the order a 422's permitted list names them: mailgun first (contract section 13), then as fides lists them.
KINDS: dict[str, type[Provider]] = {kind.service_type: kind for kind in (Mailgun, SendGrid, Mandrill, SesProvider)}
SERVICE_TYPES = tuple(KINDS)
# Every secret field any provider takes (a field's name says whose it is: fides' names never overlap).
SECRET_FIELDS = tuple(dict.fromkeys(field for kind in KINDS.values() for field in kind.secret_fields))
# The schemas, built once (stateless; building one costs more than a load).
_DETAILS_SCHEMAS = {service_type: kind.details_schema() for service_type, kind in KINDS.items()}
_SECRETS_SCHEMAS = {service_type: kind.secrets_schema() for service_type, kind in KINDS.items()}


def details_schema(service_type: str):
    """The (shared, stateless) schema instance of a service type's `details`."""
    return _DETAILS_SCHEMAS[service_type]


def secrets_schema(service_type: str):
    """The (shared, stateless) schema instance of a service type's PUT /secret body."""
    return _SECRETS_SCHEMAS[service_type]


def details_refs() -> list[dict]:
    """`details` in the OpenAPI document: any provider's (each schema a component, named as apispec names it)."""
    return [{"$ref": f"#/components/schemas/{kind.details_schema.__name__.removesuffix('Schema')}"}
            for kind in KINDS.values()]


def details_document(service_type: str, details: dict) -> dict:
    """The canonical stored form of validated `details`: the schema's field order, unset values left out."""
    order = _DETAILS_SCHEMAS[service_type].fields
    return {name: details[name] for name in order if details.get(name) is not None}


def secrets_set(service_type: str, sealed_fields) -> bool:
    """Whether the fields a send needs are sealed (a config's `secrets_set`)."""
    return set(KINDS[service_type].send_fields) <= set(sealed_fields)
