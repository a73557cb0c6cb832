"""The long-lived objects of one app, built once by `create_app`, and the one way code finds them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app

from fidesmail.outbox.deliverer import Deliverer
from fidesmail.outbox.queue import Queue
from fidesmail.providers.base import Provider
from fidesmail.providers.http import Transport
from fidesmail.providers.mailgun.provider import Mailgun
from fidesmail.providers.mandrill.provider import Mandrill
from fidesmail.providers.sendgrid.provider import SendGrid
from fidesmail.providers.ses.clients import SesClients
from fidesmail.providers.ses.provider import SesProvider
from fidesmail.providers.ses.sns import Certificates
from fidesmail.records.config_tests import ConfigTests
from fidesmail.records.database import Database
from fidesmail.records.events import DeliveryEvents
from fidesmail.records.evidence import EVIDENCE_KEY_FILE, EvidenceKey
from fidesmail.records.maintenance import Maintenance
from fidesmail.records.messages import MessageRecords
from fidesmail.records.pacing import Pacer
from fidesmail.records.privacy import CONTENT_KEY_FILE, KEY_FILE, ContentKey, RecordsKey
from fidesmail.records.webhook_posts import PostCipher
from fidesmail.runtime import settings
from fidesmail.runtime.loops import Loop
from fidesmail.runtime.metrics import Metrics
from fidesmail.runtime.readiness import Readiness
from fidesmail.sealing.vault import Vault
from fidesmail.sending.delivery import Sender
from fidesmail.sending.retrying import Retrier
from fidesmail.tree.store import Store
from fidesmail.web import context

_EXTENSION = context.EXTENSION


@dataclass
class Services:
    """Everything a request may need that outlives it."""

    store: Store
    vault: Vault
    transport: Transport
    providers: dict[str, Provider]
    sender: Sender
    database: Database
    records: MessageRecords
    records_key: RecordsKey
    content_key: ContentKey
    maintenance: Maintenance
    metrics: Metrics
    events: DeliveryEvents
    queue: Queue  # the outbox's rows: queued messages, their claims and gates
    sns_certificates: Certificates  # SNS signing certificates, fetched by FIDESMAIL_SNS_CERT_URL_PATTERN's rule
    config_tests: ConfigTests  # each config's last test through fides' test endpoint
    evidence_key: EvidenceKey  # signs evidence bundles (instance dir)
    readiness: Readiness
    loops: list[Loop] = field(default_factory=list)  # started in each serving process (startup.start_in_worker)
    deliverer: Deliverer | None = None  # the background posting of queued messages (needs the rest)


def providers_of(config, transport: Transport) -> dict[str, Provider]:
    """One object per provider fidesmail speaks, by service type (each pointed where its setting says)."""
    timeout = config["MAILGUN_TIMEOUT"]  # every provider's (contract section 13)
    built = (Mailgun(transport, config["MAILGUN_BASE_URL"], config["MAILGUN_EU_BASE_URL"]),
             SendGrid(transport, config["SENDGRID_BASE_URL"]), Mandrill(transport, config["MANDRILL_BASE_URL"]),
             SesProvider(SesClients(timeout, config["SES_ENDPOINT_URL"]), timeout))
    return {provider.service_type: provider for provider in built}


def sync_lease_ms(config) -> int:
    """The longest a synchronous send can take (every attempt, every wait), and a margin."""
    return int(1000 * (config["MAILGUN_TIMEOUT"] * (config["MAILGUN_RETRIES"] + 1) + 30 + 10))


HOUSEKEEPING_SECONDS = 60.0


def _tree_problem(store: Store) -> str | None:
    """Why the config tree cannot be read (a mount or git-sync link gone), or None."""
    if not os.path.isdir(store.config_dir) or not os.access(store.config_dir, os.R_OK | os.X_OK):
        return f"the config tree {store.config_dir} is not a folder this process can read"
    return None


def _tree_check(store: Store) -> Callable[[], str | None]:
    """The tree's readiness check. When the tree comes back (a volume remounted, a link restored) it is read again
    at once: nothing changed inside it, so no inotify event would bring that before the next full look (30 s),
    and until then seal.pub and the configs would stay as the tree's absence left them."""
    gone = False

    def check() -> str | None:
        nonlocal gone
        problem = _tree_problem(store)
        if problem is None and gone:
            store.reload()
        gone = problem is not None
        return problem

    return check


def build(config) -> Services:
    """The objects for `config` (app.config); nothing is written anywhere until they are used."""
    database = Database(settings.database_url(config))
    records_key = RecordsKey(config["INSTANCE_DIR"] / KEY_FILE)
    content_key = ContentKey(config["INSTANCE_DIR"] / CONTENT_KEY_FILE)
    records = MessageRecords(database, content_key, verification_limit=config["VERIFICATION_LIMIT"])
    store = Store(config["CONFIG_DIR"], config["INSTANCE_DIR"], read_only=config["READ_ONLY"],
                  watch_interval=config["WATCH_INTERVAL"])
    vault = Vault(config["SEAL_KEY_FILE"])
    transport = Transport(config["MAILGUN_TIMEOUT"])
    providers = providers_of(config, transport)
    maintenance = Maintenance(database, records, (records_key, content_key), config["RECORD_RETENTION_DAYS"])
    metrics = Metrics()
    readiness = Readiness({
        "database": maintenance.check,
        "sealing": lambda: vault.sealing_problem(store.snapshot().public_key_id),
        "tree": _tree_check(store),
    })
    sender = Sender(store=store, vault=vault, records_store=records, records_key=records_key, content_key=content_key,
                    maintenance=maintenance, metrics=metrics, providers=providers, lease_ms=sync_lease_ms(config),
                    retrier=Retrier(config["MAILGUN_RETRIES"], backoff=config["MAILGUN_BACKOFF"]),
                    pacer=Pacer(database))
    found = Services(store=store, vault=vault, transport=transport, providers=providers, sender=sender,
                     database=database, records=records, records_key=records_key, content_key=content_key,
                     maintenance=maintenance, metrics=metrics, events=DeliveryEvents(database, PostCipher(records_key)),
                     queue=Queue(database, records), config_tests=ConfigTests(database), readiness=readiness,
                     sns_certificates=Certificates(config["SNS_CERT_URL_PATTERN"], config["MAILGUN_TIMEOUT"]),
                     evidence_key=EvidenceKey(config["INSTANCE_DIR"] / EVIDENCE_KEY_FILE),
                     loops=[Loop("readiness", readiness.refresh, config["READINESS_INTERVAL"]),
                            Loop("records-housekeeping", maintenance.housekeep, HOUSEKEEPING_SECONDS)])
    found.deliverer = Deliverer(found, config)  # it reaches the other services through `found`
    return found


def attach(app: Flask, services: Services) -> None:
    app.extensions[_EXTENSION] = services


def of(app: Flask) -> Services:
    """The services of `app`."""
    return app.extensions[_EXTENSION]


def current() -> Services:
    """The services of the app serving this request or command."""
    return current_app.extensions[_EXTENSION]
