"""The long-lived objects of one app, built once by `create_app`, and the one way code finds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from fidesmail.outbox.queue import Outbox
from fidesmail.providers.mailgun.client import Mailer
from fidesmail.records.database import Database
from fidesmail.records.events import DeliveryEvents
from fidesmail.records.maintenance import Maintenance
from fidesmail.records.messages import MessageRecords
from fidesmail.records.privacy import CONTENT_KEY_FILE, KEY_FILE, ContentKey, RecordsKey
from fidesmail.runtime import settings
from fidesmail.runtime.metrics import Metrics
from fidesmail.sealing.vault import Vault
from fidesmail.tree.store import Store

if TYPE_CHECKING:
    from fidesmail.outbox.deliverer import Deliverer

_EXTENSION = "fidesmail"


@dataclass
class Services:
    """Everything a request may need that outlives it."""

    store: Store
    vault: Vault
    mailer: Mailer
    database: Database
    records: MessageRecords
    records_key: RecordsKey
    content_key: ContentKey
    maintenance: Maintenance
    metrics: Metrics
    events: DeliveryEvents
    outbox: Outbox
    deliverer: Deliverer | None = None  # the background posting of queued messages (needs the rest)


def build(config) -> Services:
    """The objects for `config` (app.config); nothing is written anywhere until they are used."""
    database = Database(settings.database_url(config))
    records_key = RecordsKey(config["INSTANCE_DIR"] / KEY_FILE)
    content_key = ContentKey(config["INSTANCE_DIR"] / CONTENT_KEY_FILE)
    records = MessageRecords(database, content_key)
    found = Services(
        store=Store(config["CONFIG_DIR"], config["INSTANCE_DIR"], read_only=config["READ_ONLY"],
                    watch_interval=config["WATCH_INTERVAL"]),
        vault=Vault(config["SEAL_KEY_FILE"]),
        mailer=Mailer(config["MAILGUN_TIMEOUT"], config["MAILGUN_RETRIES"], backoff=config["MAILGUN_BACKOFF"]),
        database=database,
        records=records,
        records_key=records_key,
        content_key=content_key,
        maintenance=Maintenance(database, records, (records_key, content_key), config["RECORD_RETENTION_DAYS"]),
        metrics=Metrics(),
        events=DeliveryEvents(database),
        outbox=Outbox(database, records),
    )
    from fidesmail.outbox.deliverer import Deliverer  # it reaches the other services through `found`

    found.deliverer = Deliverer(found, config)
    return found


def attach(app: Flask, services: Services) -> None:
    app.extensions[_EXTENSION] = services


def of(app: Flask) -> Services:
    """The services of `app`."""
    return app.extensions[_EXTENSION]


def current() -> Services:
    """The services of the app serving this request or command."""
    return current_app.extensions[_EXTENSION]
