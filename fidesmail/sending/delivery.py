"""Sending one message: pick the config, open its key, render, record, build the Mailgun request, send, count.

No HTTP here: refusals before anything could reach Mailgun are raised as the service's exceptions
(errors.py answers them, and no record is made: nothing was sent); once the record exists, the
outcome is an Answer (what the API replies, and what an Idempotency-Key replays).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from fidesmail.content import rendering
from fidesmail.core.addresses import mask
from fidesmail.core.exceptions import Conflict, Invalid, NotFound, Unavailable, problem
from fidesmail.providers.mailgun import attempt, failures
from fidesmail.providers.mailgun.request import MailgunRequest, build_request
from fidesmail.records import messages as records
from fidesmail.records.messages import Answer, NewRecord
from fidesmail.runtime.services import Services
from fidesmail.sealing import envelope, keys
from fidesmail.tree.snapshot import ConfigEntry, Snapshot
from fidesmail.web.errors import status_of

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
    reference: str | None = None
    resend_of: str | None = None


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


@dataclass(frozen=True)
class Prepared:
    """A message ready to go: its config, record and Mailgun request (and the rendered message in it)."""

    entry: ConfigEntry
    record: NewRecord
    request: MailgunRequest
    message: rendering.Message | None = None


def prepare(services: Services, config, send: Send) -> Prepared:
    """Everything up to the Mailgun request, refusing what cannot be sent before anything goes out."""
    services.maintenance.ready()
    snapshot = services.store.snapshot()
    entry = pick_config(snapshot, send.config_key)
    api_key = api_key_of(services, snapshot, entry)
    message = render(snapshot, send.action_type, send.body_params)
    record = NewRecord(config_key=entry.key, action_type=send.action_type, to_masked=mask(send.to),
                       to_digest=services.records_key.digest(send.to),
                       content_digest=services.content_key.content_digest(message),
                       reference=send.reference, test_mode=send.test_mode, resend_of=send.resend_of,
                       lease_ms=_lease_ms(config))
    request = build_request(entry.document["details"], api_key, message, send.to,
                            base_url=config["MAILGUN_BASE_URL"], eu_base_url=config["MAILGUN_EU_BASE_URL"],
                            test_mode=send.test_mode, message_id=record.id)
    return Prepared(entry, record, request, message)


def _lease_ms(config) -> int:
    """The longest a synchronous send can take (every attempt, every wait), and a margin."""
    return int(1000 * (config["MAILGUN_TIMEOUT"] * (config["MAILGUN_RETRIES"] + 1) + 30 + 10))


def attempt_json(outcome: attempt.Outcome) -> dict:
    """One attempt as a record keeps it: when, what came of it, Mailgun's status and words (scrubbed)."""
    if isinstance(outcome, attempt.Accepted):
        kind, detail = "accepted", outcome.message
    elif isinstance(outcome, attempt.Retry):
        kind = "rate_limited" if outcome.rate_limited else "server_error" if outcome.http_status else \
            "connection_failed"
        detail = outcome.reason
    elif isinstance(outcome, attempt.Refused):
        kind, detail = "refused", outcome.reason
    else:
        kind, detail = "unknown", outcome.reason
    return {"at": records.iso(records.now_ms()), "outcome": kind, "http_status": outcome.http_status,
            "detail": detail}


def deliver(services: Services, config, send: Send, idempotency: tuple[str, bytes] | None = None) -> Answer:
    """Send one message while the caller waits; the answer, recorded (and kept for its Idempotency-Key)."""
    if idempotency is not None:
        replay = services.records.replay_of(*idempotency)
        if replay is not None:
            return replay
    prepared = prepare(services, config, send)
    try:
        if idempotency is not None:
            claim = services.records.claim(prepared.record, *idempotency)
            if claim.replay is not None:
                return claim.replay
        else:
            services.records.create(prepared.record)
    except Unavailable as exc:  # no record, no send: a caller's retry is then safe
        raise Unavailable(f"Nothing was sent: {exc.detail}") from None
    return _send(services, prepared, send)


def _send(services: Services, prepared: Prepared, send: Send) -> Answer:
    record_id, entry = prepared.record.id, prepared.entry
    attempts: list[dict] = []

    def on_attempt(outcome: attempt.Outcome) -> None:
        attempts.append(attempt_json(outcome))
        if isinstance(outcome, attempt.Retry):  # about to wait: keep what happened so far
            services.records.add_attempt(record_id, attempts[-1])

    metrics = services.metrics
    facts = {"config_key": entry.key, "action_type": send.action_type, "to": prepared.record.to_masked,
             "message_id": record_id}
    started = time.perf_counter()
    try:
        result = services.mailer.send(prepared.request, on_attempt)
    except failures.MailgunError as exc:
        outcome = _OUTCOMES.get(type(exc), "refused")
        metrics.sends.labels(send.action_type, outcome).inc()
        log.warning("send failed after %d attempt(s): %s", exc.attempts, exc,
                    extra={**facts, "outcome": outcome, "attempts": exc.attempts})
        answer = Answer(status_of(exc), {"detail": str(exc), "message_id": record_id})
        status = records.UNKNOWN if isinstance(exc, (failures.MailgunTimeout, failures.MailgunBadAnswer)) \
            else records.FAILED
        _finish(services, record_id, status=status, attempts=attempts, failure_reason=str(exc),
                answer=answer, keep_key=exc.reached_mailgun)
        return answer
    finally:
        metrics.mailgun_seconds.observe(time.perf_counter() - started)
    metrics.sends.labels(send.action_type, "sent").inc()
    log.info("sent", extra={**facts, "outcome": "sent", "mailgun_id": result.id, "attempts": result.attempts})
    answer = Answer(200, {"id": result.id, "message": result.message, "config_key": entry.key,
                          "message_id": record_id, "status": records.ACCEPTED})
    _finish(services, record_id, status=records.ACCEPTED, attempts=attempts, mailgun_id=result.id, answer=answer)
    return answer


def _finish(services: Services, record_id: str, **outcome) -> None:
    """Record the outcome; if the database fails now, the caller still learns what Mailgun said (the
    message is out), and the record turns `unknown` when its lease ends."""
    try:
        services.records.finish(record_id, **outcome)
    except Unavailable as exc:
        log.error("the outcome of message %s could not be recorded: %s", record_id, exc.detail)
