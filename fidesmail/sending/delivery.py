"""Sending one message: pick the config, open its secrets, render, record, ask its provider, keep the outcome.

No HTTP here: refusals before anything could reach a provider are raised as the service's exceptions
(web/errors.py answers them, and no record is made: nothing was sent); once the record exists, what
came of the send is an Answer: a result in core.outcomes' words and its body (what the API replies,
and what an Idempotency-Key replays).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fidesmail.content import messaging_templates, rendering
from fidesmail.core import outcomes
from fidesmail.core.addresses import mask
from fidesmail.core.email import Message
from fidesmail.core.exceptions import Conflict, FidesmailError, Invalid, NotFound, TooManyRequests, Unavailable, problem
from fidesmail.core.outcomes import LATER, NotSent, Outcome
from fidesmail.providers.base import Email, MissingSecret, Provider
from fidesmail.records import messages as records
from fidesmail.records.messages import Answer, NewRecord
from fidesmail.records.pacing import Pace, Pacer
from fidesmail.sealing import envelope, keys
from fidesmail.sending import failover
from fidesmail.sending.failover import Leg
from fidesmail.sending.retrying import NoSlot, Retrier
from fidesmail.tree import fallbacks, messaging_files
from fidesmail.tree.snapshot import ConfigEntry, Snapshot

log = logging.getLogger("fidesmail.send")


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
    subject_override: str | None = None  # the caller's wording (fides' own, rendered by fides), used as given
    body_override: str | None = None


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


def render(snapshot: Snapshot, action_type: str, params: dict, subject_override: str | None = None,
           body_override: str | None = None) -> Message:
    """The email of an action type: the caller's wording where given, else the tree's enabled fides messaging
    template of the type, else its template overrides where usable, else the built-in templates."""
    template = snapshot.messaging_templates.get(action_type)
    try:
        wording = messaging_templates.wording_for(template, action_type, params, subject_override, body_override)
        return rendering.render(action_type, params, snapshot.overrides, wording)
    except messaging_templates.TooLarge as exc:
        error = f"{messaging_files.relpath_of(action_type)}: {exc} with this message's parameters"
    except rendering.TemplateRenderError as exc:
        error = str(exc)
    log.error("email template failed: %s", error)
    raise Unavailable(f"The email template failed: {error}")


def attempt_json(outcome: Outcome, config_key: str, provider: str) -> dict:
    """One attempt as a record keeps it: when, through which config and provider, what came of it, the
    provider's status and words (scrubbed)."""
    return {"at": records.iso(records.now_ms()), "config_key": config_key, "provider": provider,
            "outcome": outcomes.attempt_kind(outcome), "http_status": outcome.http_status, "detail": outcome.detail}


def tried_before(attempts: list[dict], last_key: str) -> str:
    """" (after a, b did not take it)" when the message failed over to `last_key` before failing there."""
    before = list(dict.fromkeys(a["config_key"] for a in attempts if a["config_key"] != last_key))
    return f" (after {', '.join(before)} did not take it)" if before else ""


def missing_secrets(config_key: str) -> str:
    """fidesops' words for a config whose provider keys are not (all) set (contract section 6: 409)."""
    return f"Email secrets not found for config with key: {config_key}"


@dataclass(frozen=True)
class Prepared:
    """A message ready to go: the config asked for, its record, the rendered message, and the configs it may go
    through (its own first, then its fallbacks: contract section 14), each with its request."""

    entry: ConfigEntry
    record: NewRecord
    message: Message
    legs: tuple[Leg, ...]


class Sender:
    """Sends messages while their callers wait; built once per process with what a send needs."""

    def __init__(self, *, store, vault, records_store, records_key, content_key, maintenance, metrics,
                 providers: Mapping[str, Provider], retrier: Retrier, lease_ms: int, pacer: Pacer | None = None):
        self.store, self.vault, self.records, self.records_key = store, vault, records_store, records_key
        self.content_key = content_key  # the content digest's HMAC (records/privacy.py)
        self.maintenance, self.metrics = maintenance, metrics
        self.providers = providers
        self.retrier = retrier
        self.pacer = pacer or Pacer(records_store.database)
        self.lease_ms = lease_ms  # the longest a synchronous send can take (every attempt, every wait), and a margin

    def provider_of(self, entry: ConfigEntry) -> Provider:
        return self.providers[entry.document["service_type"]]

    def secrets_of(self, snapshot: Snapshot, entry: ConfigEntry, provider: Provider) -> dict[str, str]:
        """The config's secrets a send uses, opened; Conflict when a needed one is missing, Unavailable when one
        won't open."""
        opened = {}
        for field in (*provider.send_fields, *provider.optional_send_fields):
            try:
                value = self.vault.open(snapshot.sealed, entry.key, field)
            except (keys.KeyringError, envelope.SealError) as exc:
                log.error("cannot open the %s key of %s: %s", provider.label, entry.key, exc)
                raise Unavailable(f"The {provider.label} key of {entry.key} cannot be opened: {exc}") from None
            if value is not None:
                opened[field] = value
            elif field in provider.send_fields:
                raise Conflict(missing_secrets(entry.key))
        return opened

    def _opened(self, snapshot: Snapshot, entry: ConfigEntry) -> tuple[ConfigEntry, Provider, dict | None,
                                                                       FidesmailError | None]:
        """A config with its provider and its secrets opened, or the refusal that keeps it from sending now."""
        provider = self.provider_of(entry)
        try:
            return entry, provider, self.secrets_of(snapshot, entry, provider), None
        except (Conflict, Unavailable) as exc:
            return entry, provider, None, exc

    @staticmethod
    def _leg(entry: ConfigEntry, provider: Provider, secrets: dict | None, error: FidesmailError | None,
             email: Email) -> Leg:
        if error is not None:
            return Leg(entry, provider, unusable=error)
        try:
            return Leg(entry, provider, provider.request(entry.document["details"], secrets, email))
        except MissingSecret:
            return Leg(entry, provider, unusable=Conflict(missing_secrets(entry.key)))
        except ValueError as exc:  # nothing was recorded or sent
            return Leg(entry, provider, unusable=Conflict(f"The config {entry.key} cannot be used: {exc}"))

    @staticmethod
    def chain_for(snapshot: Snapshot, entry: ConfigEntry, test_mode: bool = False) -> list[ConfigEntry]:
        """The configs a message of `entry` may go through: its own, then its fallbacks (a test: its own alone)."""
        return [entry] if test_mode else fallbacks.chain_of(snapshot.configs, entry.key)

    def legs_for(self, snapshot: Snapshot, entry: ConfigEntry, email: Email) -> tuple[Leg, ...]:
        """Each config of the chain with the request that posts `email` through it (its secrets as they are now)."""
        return tuple(self._leg(*self._opened(snapshot, config), email)
                     for config in self.chain_for(snapshot, entry, email.test_mode))

    def prepare(self, send: Send) -> Prepared:
        """Everything up to the providers' requests, refusing what cannot be sent before anything goes out (when no
        config of the chain can be used: the refusal its own config gives)."""
        self.maintenance.ready()
        snapshot = self.store.snapshot()
        entry = pick_config(snapshot, send.config_key)
        opened = [self._opened(snapshot, config) for config in self.chain_for(snapshot, entry, send.test_mode)]
        if all(error is not None for *_, error in opened):
            raise opened[0][3]
        message = render(snapshot, send.action_type, send.body_params, send.subject_override, send.body_override)
        email = Email(send.to, message, records.new_message_id(), send.test_mode)
        legs = tuple(self._leg(*config, email) for config in opened)
        usable = [leg for leg in legs if leg.request is not None]
        if not usable:
            raise legs[0].unusable
        record = NewRecord(config_key=entry.key, action_type=send.action_type, to_masked=mask(send.to),
                           to_digest=self.records_key.digest(send.to),
                           content_digest=self.content_key.content_digest(message),
                           reference=send.reference, test_mode=send.test_mode, resend_of=send.resend_of,
                           provider=usable[0].provider.service_type, sent_via=usable[0].key,
                           lease_ms=self.lease_ms * len(usable), id=email.message_id,
                           callback="callback" in entry.document)
        return Prepared(entry, record, message, legs)

    def deliver(self, send: Send, idempotency: tuple[str, bytes] | None = None) -> Answer:
        """Send one message while the caller waits; the answer, recorded (and kept for its Idempotency-Key)."""
        if idempotency is not None:
            replay = self.records.replay_of(*idempotency)
            if replay is not None:
                return replay
        prepared = self.prepare(send)
        pace = self.pace_of(prepared.entry)
        try:
            if idempotency is not None:
                claim = self.records.claim(prepared.record, *idempotency, pace=pace)
                if claim.replay is not None:
                    return claim.replay
                slot = claim.slot_us
            else:
                slot = self.records.create(prepared.record, pace)
        except Unavailable as exc:  # no record, no send: a caller's retry is then safe
            raise Unavailable(f"Nothing was sent: {exc.detail}") from None
        except TooManyRequests as exc:
            self.refused(exc, prepared.entry.key, send.action_type)
            raise
        return self._send(prepared, send, self._pacing(pace, slot))

    def pace_of(self, entry: ConfigEntry) -> Pace | None:
        """The config's rate_limit as a synchronous send keeps it: waiting for a slot within its budget."""
        rate = entry.document.get("rate_limit")
        return None if rate is None else Pace(entry.key, rate, self.retrier.max_total_wait)

    def _pacing(self, pace: Pace | None, first_slot: int | None):
        """Each post's wait for its slot: the first was taken with the record; each retry takes its own."""
        if pace is None:
            return None

        def wait(posted: int, budget_left: float) -> bool:
            within = Pace(pace.config_key, pace.per_second, max(0.0, budget_left))
            return self.pacer.wait(within, first_slot if posted == 0 else None)

        return wait

    def refused(self, exc: TooManyRequests, config_key: str, action_type: str) -> None:
        """A limit refused a send (nothing sent, no record): counted and logged, never with the address."""
        if exc.limit is not None:
            self.metrics.limited.labels(exc.limit).inc()
        log.warning("refused by the %s limit: %s", exc.limit, exc.detail,
                    extra={"config_key": config_key, "action_type": action_type, "limit": exc.limit,
                           "retry_after": exc.retry_after})

    def _send(self, prepared: Prepared, send: Send, pace=None) -> Answer:
        """Walk the chain (sending/failover); `pace`: the asked config's slots, the first taken with its record."""
        record_id, entry = prepared.record.id, prepared.entry
        attempts: list[dict] = []
        notes: list[str] = []
        going_to = [prepared.record.sent_via]  # the config the record names
        began = time.monotonic()

        def attempt(leg: Leg, last: bool) -> Outcome:
            if leg.request is None:
                attempts.append(attempt_json(leg.not_sent(), leg.key, leg.provider.service_type))
                return leg.not_sent()
            if leg.key != going_to[0]:  # failing over: the record says where it goes before it goes
                self.records.moving_on(record_id, attempts, leg.provider.service_type, leg.key)
                going_to[0] = leg.key

            def on_attempt(outcome: Outcome) -> None:
                attempts.append(attempt_json(outcome, leg.key, leg.provider.service_type))
                if last and isinstance(outcome, outcomes.Retry):  # about to wait: keep what happened so far
                    self.records.add_attempt(record_id, attempts[-1])

            # Each config's own rate_limit: the one asked for keeps the slot taken with its record.
            leg_pace = pace if leg.key == entry.key else self._pacing(self.pace_of(leg.entry), None)
            post = lambda: leg.provider.post(leg.request)  # noqa: E731
            started = time.perf_counter()
            try:
                if not last:  # a fallback follows: no retry here, the next provider at once
                    left = self.retrier.max_total_wait - (time.monotonic() - began)
                    if leg_pace is not None and not leg_pace(0, left):
                        return no_slot(leg)
                    outcome = post()
                    on_attempt(outcome)
                    return outcome
                try:
                    finished = self.retrier.run(post, on_attempt, leg.provider.label, getattr(leg.request, "host", ""),
                                                pace=leg_pace, spent=time.monotonic() - began)
                except NoSlot:  # its slot came while this process was busy, and no other is free in time
                    if not any(a["outcome"] != "not_sent" for a in attempts):
                        self._refuse_unposted(prepared, send, leg.entry)  # nothing was posted anywhere: 429
                    return no_slot(leg)
                notes.append(finished.note)
                return finished.outcome
            finally:
                self.metrics.observe_provider(leg.provider.service_type, time.perf_counter() - started)

        def no_slot(leg: Leg) -> Outcome:
            outcome = NotSent(f"not tried: the rate_limit of {leg.key} leaves no slot within the "
                              f"{self.retrier.max_total_wait:g} s limit", LATER)
            attempts.append(attempt_json(outcome, leg.key, leg.provider.service_type))
            return outcome

        leg, outcome = failover.walk(prepared.legs, attempt, self.metrics)
        provider, result = leg.provider, outcomes.result_of(outcome)
        self.metrics.count_send(send.action_type, result, provider.service_type)
        posted = sum(1 for a in attempts if a["outcome"] != "not_sent")
        facts = {"config_key": entry.key, "action_type": send.action_type, "to": prepared.record.to_masked,
                 "message_id": record_id, "outcome": result, "attempts": posted,
                 "provider": provider.service_type, "sent_via": leg.key}
        status = outcomes.RECORD_STATUS[result]
        went = {"provider": provider.service_type, "sent_via": leg.key}
        if result == outcomes.SENT:
            log.info("sent", extra={**facts, "provider_message_id": outcome.provider_id})
            answer = Answer(result, {"id": outcome.provider_id, "message": outcome.detail, "config_key": entry.key,
                                     "message_id": record_id, "status": status, "provider": provider.service_type})
            self._finish(record_id, status=status, attempts=attempts, provider_message_id=outcome.provider_id,
                         answer=answer, **went)
            return answer
        reason = outcomes.describe(outcome, provider.label) + "".join(notes) + tried_before(attempts, leg.key)
        log.warning("send failed after %d attempt(s): %s", posted, reason, extra=facts)
        answer = Answer(result, {"detail": reason, "message_id": record_id, "provider": provider.service_type})
        # Never reached the provider: the Idempotency-Key is released, so the caller's retry may send it.
        self._finish(record_id, status=status, attempts=attempts, failure_reason=reason, answer=answer,
                     keep_key=result != outcomes.UNREACHABLE, **went)
        return answer

    def _refuse_unposted(self, prepared: Prepared, send: Send, paced: ConfigEntry) -> None:
        """Rare: the record was made with a slot, but this process woke for it too late to post without
        bunching, and no other slot was free within the budget (of `paced`: the config whose rate_limit it
        waited for). Its record says so; the caller gets 429."""
        refusal = self.pacer.refusal(self.pace_of(paced))
        self._finish(prepared.record.id, status=outcomes.FAILED, attempts=[], failure_reason=refusal.detail,
                     answer=None, keep_key=False)
        self.refused(refusal, prepared.entry.key, send.action_type)
        raise refusal

    def _finish(self, record_id: str, **outcome) -> None:
        """Record the outcome; if the database fails now, the caller still learns what the provider said (the
        message is out), and the record turns `unknown` when its lease ends."""
        try:
            self.records.finish(record_id, **outcome)
        except Unavailable as exc:
            log.error("the outcome of message %s could not be recorded: %s", record_id, exc.detail)
