"""What comes of one background attempt: done (and how), or tried again when, within the delivery deadline.

Pure decisions, no I/O: the deliverer asks, records/outbox.py writes the answer in one transaction.
A refusal that is about Mailgun or the way to it (5xx, 429/420, no connection, no clean answer) or
about the config (its key cannot be opened) closes the config's gate: its queue waits, in order of
creation, behind one message tried again at the moment Mailgun named or after an exponential
backoff with jitter; a 200 or a 4xx (Mailgun is answering) opens it again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .. import delivery
from ..mailgun import attempt, failures
from ..mailgun.client import backoff_delay
from ..records import messages as records
from ..records.outbox import CLOSE, OPEN, Claimed, Settlement, gave_up


@dataclass
class Policy:
    """Backoff from `base` seconds doubling to `cap`, jittered; every message done by `deadline` seconds."""

    base: float = 30.0
    cap: float = 3600.0
    deadline: float = 86400.0
    rng: random.Random = field(default_factory=random.Random)

    def after(self, claimed: Claimed, outcome: attempt.Outcome, now: int) -> Settlement:
        """What one post's outcome makes of the message."""
        kept = delivery.attempt_json(outcome)
        if isinstance(outcome, attempt.Accepted):
            return Settlement(records.ACCEPTED, kept, mailgun_id=outcome.mailgun_id, gate=OPEN)
        if isinstance(outcome, attempt.Refused):
            reason = str(failures.MailgunRefused(outcome.http_status, outcome.reason))
            return Settlement(records.FAILED, kept, failure_reason=reason, gate=OPEN)
        failures_in_row = claimed.gate_failures + 1
        if isinstance(outcome, attempt.Unknown):  # never posted again on its own; the others wait for a probe
            until = now + self._backoff_ms(failures_in_row)
            return Settlement(records.UNKNOWN, kept, failure_reason=outcome.reason, gate=CLOSE, gate_until=until,
                              gate_failures=failures_in_row, gate_reason=outcome.reason)
        reason = f"Mailgun answered {outcome.http_status}: {outcome.reason}" if outcome.http_status else outcome.reason
        wait_ms = int(outcome.delay * 1000) if outcome.delay is not None else self._backoff_ms(failures_in_row)
        return self._again(claimed, now, now + wait_ms, reason, kept, failures_in_row,
                           named=outcome.delay is not None)

    def hold(self, claimed: Claimed, reason: str, now: int) -> Settlement:
        """Not posted (the config or its key cannot be used now): tried again later, as after a 5xx."""
        failures_in_row = claimed.gate_failures + 1
        return self._again(claimed, now, now + self._backoff_ms(failures_in_row), reason, None, failures_in_row,
                           named=False)

    def broken(self, reason: str) -> Settlement:
        """A payload that cannot be opened can never be posted."""
        return Settlement(records.FAILED, None, failure_reason=reason)

    def deadline_at(self, created_at: int) -> int:
        return created_at + int(self.deadline * 1000)

    def _again(self, claimed: Claimed, now: int, until: int, reason: str, kept: dict | None, failures_in_row: int,
               *, named: bool) -> Settlement:
        attempts = claimed.attempts + (1 if kept is not None else 0)
        deadline_at = self.deadline_at(claimed.created_at)
        if now >= deadline_at or (named and until > deadline_at):
            why = reason if not named or until <= deadline_at else \
                f"{reason} (Mailgun asked to wait until {records.iso(until)}, after the delivery deadline)"
            return Settlement(records.FAILED, kept, failure_reason=gave_up(attempts, now - claimed.created_at, why),
                              gate=CLOSE, gate_until=until, gate_failures=failures_in_row, gate_reason=reason)
        until = min(until, deadline_at)  # the last try falls on the deadline
        return Settlement(records.QUEUED, kept, failure_reason=f"{reason} (next try at {records.iso(until)})",
                          next_at=until, last_error=reason, gate=CLOSE, gate_until=until,
                          gate_failures=failures_in_row, gate_reason=reason)

    def _backoff_ms(self, failures_in_row: int) -> int:
        return int(1000 * backoff_delay(failures_in_row, self.base, self.cap, self.rng))
