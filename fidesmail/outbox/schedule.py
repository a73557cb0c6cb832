"""What comes of one background attempt: done (and how), or tried again when, within the delivery deadline.

Pure decisions, no I/O: the deliverer asks, records/outbox.py writes the answer in one transaction.
A message refused for now (5xx, no connection) is tried again after an exponential backoff with
jitter (from FIDESMAIL_OUTBOX_BACKOFF, about 30 s, to at most 1 h). When that is an outage rather
than a hiccup, the config's gate closes: on GATE_THRESHOLD failures in a row across its messages,
at once on a 429/420 (the provider names a moment for the whole account) or a key that cannot be opened.
Then its queue waits, in order of creation, behind its oldest message, tried again at the moment
the provider named or after the gate's own backoff; a 200 or a 4xx (the provider answers) opens it again.

With a fallback (contract section 14) one claim may try several configs of the chain (sending/failover.py):
each try moves its own config's gate, and a message no config took comes back when the first of them may
be tried again (a named moment, a backoff, a gate's time).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from fidesmail.core import outcomes
from fidesmail.core.outcomes import KEY, LATER, PARKED, Accepted, NotSent, Outcome, Refused, Retry, Unknown
from fidesmail.outbox.gates import FAIL, GATE_THRESHOLD, OPEN, GateChange
from fidesmail.outbox.queue import Claimed, Settlement
from fidesmail.outbox.sweep import gave_up
from fidesmail.providers.base import Provider
from fidesmail.records import messages as records
from fidesmail.sending import delivery
from fidesmail.sending.retrying import backoff_delay


@dataclass(frozen=True)
class Tried:
    """One config of the chain tried for a claimed message: its provider's outcome, and its gate as it was."""

    config_key: str
    provider: Provider
    outcome: Outcome
    gate_failures: int = 0  # its refusals in a row before this try
    parks: bool = True  # its own queue waits behind its gate (it has no fallback)
    opens_at: int = 0  # not tried, its gate closed: when a message may try it again (ms)
    probed: bool = False  # tried as its closed gate's probe (gates.take_probe)


@dataclass
class Policy:
    """Backoff from `base` seconds doubling to `cap`, jittered; every message done by `deadline` seconds."""

    base: float = 30.0
    cap: float = 3600.0
    deadline: float = 86400.0
    rng: random.Random = field(default_factory=random.Random)

    def after(self, claimed: Claimed, tried: Sequence[Tried], now: int) -> Settlement:
        """What the outcomes of one claim's tries make of the message (the last tried decides its status)."""
        kept = tuple(delivery.attempt_json(t.outcome, t.config_key, t.provider.service_type) for t in tried)
        judged = [self._judge(claimed, t, index == len(tried) - 1, now) for index, t in enumerate(tried)]
        changes = tuple(change for change, _, _ in judged if change is not None)
        posted = [t for t in tried if not isinstance(t.outcome, NotSent)]
        went = {"provider": posted[-1].provider.service_type, "sent_via": posted[-1].config_key} if posted else {}
        last = tried[-1]
        reason = outcomes.describe(last.outcome, last.provider.label) + delivery.tried_before(list(kept),
                                                                                            last.config_key)
        if isinstance(last.outcome, Accepted):
            return Settlement(outcomes.ACCEPTED, kept, provider_message_id=last.outcome.provider_id, gates=changes,
                              **went)
        if isinstance(last.outcome, Refused):
            return Settlement(outcomes.FAILED, kept, failure_reason=reason, gates=changes, **went)
        if isinstance(last.outcome, Unknown):  # never posted again on its own
            return Settlement(outcomes.UNKNOWN, kept, failure_reason=reason, gates=changes, **went)
        _, next_at, named = min(judged, key=lambda item: item[1])  # the first moment a config of the chain may
        return self._again(claimed, now, next_at, reason, kept, changes, named, went)

    def hold(self, claimed: Claimed, reason: str, now: int, parks: bool = True) -> Settlement:
        """Not posted (the config or its key cannot be used now): its config waits, as in an outage."""
        until = now + self._gate_backoff_ms(claimed.gate_failures)
        change = GateChange(claimed.config_key, FAIL, until, force=True, reason=reason, parks=parks)
        return self._again(claimed, now, until, reason, (), (change,), False, {})

    def broken(self, reason: str) -> Settlement:
        """A payload that cannot be opened can never be posted."""
        return Settlement(outcomes.FAILED, failure_reason=reason)

    def deadline_at(self, created_at: int) -> int:
        return created_at + int(self.deadline * 1000)

    def _judge(self, claimed: Claimed, t: Tried, last: bool, now: int) -> tuple[GateChange | None, int, bool]:
        """One try: what it does to its config's gate, and when it could be tried again (and whether that moment
        is one the provider named)."""
        outcome, reason = t.outcome, outcomes.describe(t.outcome, t.provider.label)
        gate_until = now + self._gate_backoff_ms(t.gate_failures)

        def gate(action: str, until: int = 0, force: bool = False) -> GateChange:
            return GateChange(t.config_key, action, until, force, reason, t.parks, t.probed)

        if isinstance(outcome, Accepted):
            return gate(OPEN), now, False
        if isinstance(outcome, Refused):  # the provider answers; a refused key with a fallback after it: it waits
            return (gate(FAIL, gate_until, True) if outcome.key_refused and not last else gate(OPEN)), gate_until, False
        if isinstance(outcome, Unknown):
            return gate(FAIL, gate_until), gate_until, False
        if isinstance(outcome, Retry):
            if outcome.delay is not None:  # the moment the provider named holds for the whole account
                until = now + int(outcome.delay * 1000)
                return gate(FAIL, until, True), until, True
            next_at = now + self._backoff_ms(claimed.attempts + 1)
            if outcome.rate_limited:
                next_at = max(next_at, gate_until)
            return gate(FAIL, gate_until, outcome.rate_limited), next_at, False
        if outcome.why == PARKED:
            return None, t.opens_at, False
        if outcome.why == LATER:
            return None, now, False
        assert outcome.why == KEY  # a key missing or not opening: a person may fix it in time
        return (gate(FAIL, gate_until, True) if last else None), gate_until, False

    def _again(self, claimed: Claimed, now: int, next_at: int, reason: str, kept: tuple, changes: tuple,
               named: bool, went: dict) -> Settlement:
        posted = sum(1 for attempt in kept if attempt["outcome"] != "not_sent")
        attempts = claimed.attempts + posted
        deadline_at = self.deadline_at(claimed.created_at)
        if now >= deadline_at or (named and next_at > deadline_at):
            why = reason if not named or next_at <= deadline_at else \
                f"{reason} (asked to wait until {records.iso(next_at)}, after the delivery deadline)"
            return Settlement(outcomes.FAILED, kept, failure_reason=gave_up(attempts, now - claimed.created_at, why),
                              gates=changes, **went)
        next_at = min(next_at, deadline_at)  # the last try: the deadline
        return Settlement(outcomes.QUEUED, kept, failure_reason=f"{reason} (next try at {records.iso(next_at)})",
                          next_at=next_at, last_error=reason, gates=changes, **went)

    def _gate_backoff_ms(self, gate_failures: int) -> int:
        """A config's wait once its gate closes: doubling with each failure past the threshold."""
        return self._backoff_ms(max(1, gate_failures + 2 - GATE_THRESHOLD))

    def _backoff_ms(self, failures_in_row: int) -> int:
        return int(1000 * backoff_delay(failures_in_row, self.base, self.cap, self.rng))
