"""What every provider is: a small object with two jobs for sending (build the request, post it once).

A provider knows its own API and nothing of records, retries, queues or HTTP answers: it builds one
request as plain data from a config's details, its opened secrets and the email, and it posts that
request once and classifies the answer into core.outcomes' vocabulary. Everything else is written once
above it (sending/, outbox/). Its static facts (service type, label, secret fields, the schemas of its
`details` and of its secrets) are class attributes, so the config tree and the API can validate a config
without building a provider.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from marshmallow import Schema

from fidesmail.core.email import Message
from fidesmail.core.outcomes import Outcome


@dataclass(frozen=True, repr=False)
class Email:
    """One message to one address, as a provider is asked to post it."""

    to: str
    message: Message
    message_id: str  # the record's id, carried so that the provider's events can be matched to it
    test_mode: bool = False

    def __repr__(self) -> str:  # never the address or the body
        return f"Email(message_id={self.message_id!r}, tag={self.message.tag!r}, test_mode={self.test_mode})"


class MissingSecret(ValueError):
    """The config's sealed secrets are not enough to send (e.g. SES' `secret_keys` without its keys)."""


class Provider(ABC):
    """One email provider's API."""

    service_type: ClassVar[str]  # fides' name: "mailgun", ...
    label: ClassVar[str]  # for people: "Mailgun"
    secret_fields: ClassVar[tuple[str, ...]]  # every sealed field PUT /secret takes for it (fides' names)
    send_fields: ClassVar[tuple[str, ...]]  # the ones every send needs (`secrets_set`; 409 without one)
    optional_send_fields: ClassVar[tuple[str, ...]] = ()  # also opened for a send when they are sealed
    details_schema: ClassVar[type[Schema]]  # its config's `details`
    secrets_schema: ClassVar[type[Schema]]  # a PUT /secret body (providers/secrets.py)
    # How fides names and shows it (its messaging API, contract section 16): the name of a config fides makes
    # for it, and the fields of fides' own `details` model, in fides' order (answered null where unset).
    fides_label: ClassVar[str]
    fides_details: ClassVar[tuple[str, ...]]

    @abstractmethod
    def request(self, details: Mapping, secrets: Mapping[str, str], email: Email):
        """The request that posts `email`, as plain data (ValueError when the config cannot be used: MissingSecret
        when the sealed secrets do not say enough to send)."""

    @abstractmethod
    def post(self, request) -> Outcome:
        """Post once and say what came of it; never raises for anything the provider or the network does."""
