"""Sending one message: pick the config, open its key, render, build the Mailgun request, send, count.

No HTTP here: refusals are raised as the service's exceptions (errors.py answers them), and
Mailgun's failures as MailgunError.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from . import logs, rendering
from .exceptions import Conflict, Invalid, NotFound, Unavailable, problem
from .mailgun import failures
from .mailgun.request import MailgunRequest, build_request
from .sealing import envelope, keys
from .services import Services
from .tree.snapshot import ConfigEntry, Snapshot

log = logging.getLogger("fidesmail.send")

_OUTCOMES = {failures.MailgunTimeout: "timeout", failures.MailgunUnreachable: "unreachable",
             failures.MailgunBadAnswer: "bad_answer", failures.MailgunRefused: "refused"}


@dataclass(frozen=True)
class Send:
    """What a caller asked to send (body_params already validated)."""

    action_type: str
    to: str
    body_params: dict
    config_key: str | None = None
    test_mode: bool = False


def pick_config(snapshot: Snapshot, key: str | None) -> ConfigEntry:
    """The config to send through: the named one, or the only one."""
    if key is None:
        if not snapshot.keys:
            raise NotFound("No email config found.")
        if len(snapshot.keys) != 1:
            raise Invalid([problem(["body", "config_key"], f"Required: there are {len(snapshot.keys)} configs, "
                                                           "not exactly one.", "missing")])
        key = snapshot.keys[0]
    entry = snapshot.configs.get(key)
    if entry is None:
        raise NotFound(f"No email config found with key {key}")
    return entry


def render(snapshot: Snapshot, action_type: str, params: dict) -> rendering.Message:
    """The email of an action type, from the tree's overrides where they are usable."""
    try:
        return rendering.render(action_type, params, snapshot.overrides)
    except rendering.TemplateRenderError as exc:
        log.error("email template failed: %s", exc)
        raise Unavailable(f"The email template failed: {exc}") from None


def api_key_of(services: Services, snapshot: Snapshot, entry: ConfigEntry) -> str:
    """The config's Mailgun key, opened; Conflict when it has none, Unavailable when it cannot be opened."""
    try:
        api_key = services.vault.open(snapshot.sealed, entry.key, envelope.API_KEY)
    except (keys.KeyringError, envelope.SealError) as exc:
        log.error("cannot open the Mailgun key of %s: %s", entry.key, exc)
        raise Unavailable(f"The Mailgun key of {entry.key} cannot be opened: {exc}") from None
    if api_key is None:
        raise Conflict(f"Email secrets not found for config with key: {entry.key}")
    return api_key


def prepare(services: Services, config, send: Send) -> tuple[ConfigEntry, MailgunRequest]:
    """Everything up to the Mailgun request, refusing what cannot be sent before anything goes out."""
    snapshot = services.store.snapshot()
    entry = pick_config(snapshot, send.config_key)
    api_key = api_key_of(services, snapshot, entry)
    message = render(snapshot, send.action_type, send.body_params)
    request = build_request(entry.document["details"], api_key, message, send.to,
                            base_url=config["MAILGUN_BASE_URL"], eu_base_url=config["MAILGUN_EU_BASE_URL"],
                            test_mode=send.test_mode)
    return entry, request


def deliver(services: Services, config, send: Send) -> dict:
    """Send one message while the caller waits; the 200 answer, or the exception that says why not."""
    entry, request = prepare(services, config, send)
    metrics = services.metrics
    facts = {"config_key": entry.key, "action_type": send.action_type, "to": logs.mask_address(send.to)}
    started = time.perf_counter()
    try:
        result = services.mailer.send(request)
    except failures.MailgunError as exc:
        outcome = _OUTCOMES.get(type(exc), "refused")
        metrics.sends.labels(send.action_type, outcome).inc()
        log.warning("send failed after %d attempt(s): %s", exc.attempts, exc,
                    extra={**facts, "outcome": outcome, "attempts": exc.attempts})
        raise
    finally:
        metrics.mailgun_seconds.observe(time.perf_counter() - started)
    metrics.sends.labels(send.action_type, "sent").inc()
    log.info("sent", extra={**facts, "outcome": "sent", "mailgun_id": result.id, "attempts": result.attempts})
    return {"id": result.id, "message": result.message, "config_key": entry.key}
