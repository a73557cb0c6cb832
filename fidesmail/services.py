"""The long-lived objects of one app, built once by `create_app`, and the one way code finds them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .idempotency import Ledger
from .mailgun.client import Mailer
from .metrics import Metrics
from .sealing.vault import Vault
from .tree.store import Store

_EXTENSION = "fidesmail"


@dataclass
class Services:
    """Everything a request may need that outlives it."""

    store: Store
    vault: Vault
    mailer: Mailer
    ledger: Ledger
    metrics: Metrics


def build(config) -> Services:
    """The objects for `config` (app.config); nothing is written anywhere until they are used."""
    return Services(
        store=Store(config["CONFIG_DIR"], config["INSTANCE_DIR"], read_only=config["READ_ONLY"],
                    watch_interval=config["WATCH_INTERVAL"]),
        vault=Vault(config["SEAL_KEY_FILE"]),
        mailer=Mailer(config["MAILGUN_TIMEOUT"], config["MAILGUN_RETRIES"], backoff=config["MAILGUN_BACKOFF"]),
        ledger=Ledger(config["INSTANCE_DIR"] / "idempotency"),
        metrics=Metrics(),
    )


def attach(app: Flask, services: Services) -> None:
    app.extensions[_EXTENSION] = services


def of(app: Flask) -> Services:
    """The services of `app`."""
    return app.extensions[_EXTENSION]


def current() -> Services:
    """The services of the app serving this request or command."""
    return current_app.extensions[_EXTENSION]
