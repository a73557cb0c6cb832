"""How the outbox tries one config of a claimed message's chain (contract section 14; the walk is sending/failover).

Beside what a synchronous send does, a background try respects four things: the worker's hold on the message
(no post starts that could outlast its lease), the gates of the chain's configs (a config whose gate is closed
is passed over until its time, then one message probes it), each fallback's own rate_limit (a slot waited for
within the hold; the claimed config's slot came with the claim, outbox/pacing.py), and the record, which names
the config it goes to before it is posted there (a worker killed mid-walk leaves a record that says where the
message may be).
"""

from __future__ import annotations

import time

from fidesmail.core.outcomes import LATER, PARKED, NotSent, Outcome
from fidesmail.outbox.queue import Claimed
from fidesmail.outbox.schedule import Tried
from fidesmail.records.messages import iso, now_ms
from fidesmail.records.pacing import Pace
from fidesmail.sending import delivery
from fidesmail.sending.failover import Leg

_NO_TIME = "not tried: this worker's hold on the message could end during another post (back to the queue)"


class ChainTries:
    """The tries of one claimed message down its chain; `attempt` is what failover.walk calls for each config."""

    def __init__(self, queue, metrics, claimed: Claimed, legs: tuple[Leg, ...], attempt_ms: int, pacer=None):
        self.queue, self.metrics, self.claimed, self.attempt_ms = queue, metrics, claimed, attempt_ms
        self.pacer = pacer  # a fallback's own rate_limit (the claimed config's slot came with the claim)
        self.chained = len(legs) > 1  # alone, a config's gate is kept by parking its queue (gates.arrange)
        self.gates = queue.gate_states([leg.key for leg in legs]) if self.chained else {}
        self.tried: list[Tried] = []
        self._sent_via = claimed.sent_via  # the config the record names
        self._hold_lost = False
        self._probing = False  # the config being tried is a closed gate's probe

    def attempt(self, leg: Leg, last: bool) -> Outcome:
        self._probing = False
        outcome, opens_at = self._try(leg)
        state = self.gates.get(leg.key)
        failures = state.failures if state is not None else (0 if self.chained else self.claimed.gate_failures)
        self.tried.append(Tried(leg.key, leg.provider, outcome, failures, parks=not leg.entry.document.get("fallback"),
                                opens_at=opens_at, probed=self._probing))
        return outcome

    def _try(self, leg: Leg) -> tuple[Outcome, int]:
        if leg.request is None:
            return leg.not_sent(), 0
        now = now_ms()
        if self._hold_lost or self.claimed.lease_until - now < self.attempt_ms:
            return NotSent(_NO_TIME, LATER), 0
        state = self.gates.get(leg.key)
        if self.chained and state is not None and state.closed_until > 0:
            if state.closed_until > now:
                return NotSent(f"not tried: the queue of {leg.key} waits behind its gate until "
                               f"{iso(state.closed_until)} ({state.reason})", PARKED), state.closed_until
            if not self.queue.take_probe(leg.key, now, now + self.attempt_ms):  # another message probes it
                return NotSent(f"not tried: another message is probing {leg.key}'s provider", PARKED), \
                    now + self.attempt_ms
            self._probing = True  # its answer sets the gate anew (gates.fail), not the hold taken for it
        rate = leg.entry.document.get("rate_limit")
        if rate and self.pacer is not None and leg.key != self.claimed.config_key:
            within = (self.claimed.lease_until - now - self.attempt_ms) / 1000  # this worker's hold, less one post
            if within <= 0 or not self.pacer.wait(Pace(leg.key, rate, within), None):
                return NotSent(f"not tried: the rate_limit of {leg.key} leaves no slot within this worker's hold on "
                               "the message", LATER), 0
        if leg.key != self._sent_via:
            so_far = [delivery.attempt_json(t.outcome, t.config_key, t.provider.service_type) for t in self.tried]
            if not self.queue.moving_on(self.claimed, so_far, leg.provider.service_type, leg.key):
                self._hold_lost = True  # its lease ran out: it is no longer this worker's to post
                return NotSent(_NO_TIME, LATER), 0
            self._sent_via = leg.key
        started = time.perf_counter()
        outcome = leg.provider.post(leg.request)
        self.metrics.observe_provider(leg.provider.service_type, time.perf_counter() - started)
        return outcome, 0
