"""What comes of one background attempt: done (and how), or tried again when, within the delivery deadline.

Pure decisions, no I/O: the deliverer asks, records/outbox.py writes the answer in one transaction.
A message refused for now (5xx, no connection) is tried again after an exponential backoff with
jitter (from FIDESMAIL_OUTBOX_BACKOFF, about 30 s, to at most 1 h). When that is an outage rather
than a hiccup, the config's gate closes: on GATE_THRESHOLD failures in a row across its messages,
at once on a 429/420 (the provider names a moment for the whole account) or a key that cannot be opened.
Then its queue waits, in order of creation, behind its oldest message, tried again at the moment
the provider named or after the gate's own backoff; a 200 or a 4xx (the provider answers) opens it again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fidesmail.core import outcomes
from fidesmail.core.outcomes import Accepted, Outcome, Refused, Unknown
from fidesmail.outbox.gates import FAIL, GATE_THRESHOLD, OPEN
from fidesmail.outbox.queue import Claimed, Settlement
from fidesmail.outbox.sweep import gave_up
from fidesmail.providers.base import Provider
from fidesmail.records import messages as records
from fidesmail.sending import delivery
from fidesmail.sending.retrying import backoff_delay


@dataclass
class Policy:
    """Backoff from `base` seconds doubling to `cap`, jittered; every message done by `deadline` seconds."""

    base: float = 30.0
    cap: float = 3600.0
    deadline: float = 86400.0
    rng: random.Random = field(default_factory=random.Random)

    def after(self, claimed: Claimed, outcome: Outcome, now: int, provider: Provider) -> Settlement:
        """What one post's outcome makes of the message (`provider`: the one that answered)."""
        kept = delivery.attempt_json(outcome, claimed.config_key, provider.service_type)
        posted = {"provider": provider.service_type}
        if isinstance(outcome, Accepted):
            return Settlement(outcomes.ACCEPTED, kept, provider_message_id=outcome.provider_id, gate=OPEN, **posted)
        reason = outcomes.describe(outcome, provider.label)
        if isinstance(outcome, Refused):
            return Settlement(outcomes.FAILED, kept, failure_reason=reason, gate=OPEN, **posted)
        gate_until = now + self._gate_backoff_ms(claimed)
        if isinstance(outcome, Unknown):  # never posted again on its own
            return Settlement(outcomes.UNKNOWN, kept, failure_reason=reason, gate=FAIL, gate_until=gate_until,
                              gate_reason=reason, **posted)
        if outcome.delay is not None:  # the moment the provider named holds for the whole account: the config waits
            until = now + int(outcome.delay * 1000)
            return self._again(claimed, now, until, reason, kept, gate_until=until, force=True, named=True,
                               provider=provider.service_type)
        next_at = now + self._backoff_ms(claimed.attempts + 1)
        return self._again(claimed, now, next_at, reason, kept, gate_until=gate_until, force=outcome.rate_limited,
                           named=False, provider=provider.service_type)

    def hold(self, claimed: Claimed, reason: str, now: int) -> Settlement:
        """Not posted (the config or its key cannot be used now): its config waits, as in an outage."""
        until = now + self._gate_backoff_ms(claimed)
        return self._again(claimed, now, until, reason, None, gate_until=until, force=True, named=False)

    def broken(self, reason: str) -> Settlement:
        """A payload that cannot be opened can never be posted."""
        return Settlement(outcomes.FAILED, None, failure_reason=reason)

    def deadline_at(self, created_at: int) -> int:
        return created_at + int(self.deadline * 1000)

    def _again(self, claimed: Claimed, now: int, next_at: int, reason: str, kept: dict | None, *, gate_until: int,
               force: bool, named: bool, provider: str | None = None) -> Settlement:
        gate = {"gate": FAIL, "gate_until": gate_until, "gate_force": force, "gate_reason": reason,
                "provider": provider}
        attempts = claimed.attempts + (1 if kept is not None else 0)
        deadline_at = self.deadline_at(claimed.created_at)
        if now >= deadline_at or (named and next_at > deadline_at):
            why = reason if not named or next_at <= deadline_at else \
                f"{reason} (asked to wait until {records.iso(next_at)}, after the delivery deadline)"
            return Settlement(outcomes.FAILED, kept, failure_reason=gave_up(attempts, now - claimed.created_at, why),
                              **gate)
        next_at = min(max(next_at, gate_until) if force else next_at, deadline_at)  # the last try: the deadline
        return Settlement(outcomes.QUEUED, kept, failure_reason=f"{reason} (next try at {records.iso(next_at)})",
                          next_at=next_at, last_error=reason, **gate)

    def _gate_backoff_ms(self, claimed: Claimed) -> int:
        """The config's wait once its gate closes: doubling with each failure past the threshold."""
        return self._backoff_ms(max(1, claimed.gate_failures + 2 - GATE_THRESHOLD))

    def _backoff_ms(self, failures_in_row: int) -> int:
        return int(1000 * backoff_delay(failures_in_row, self.base, self.cap, self.rng))
