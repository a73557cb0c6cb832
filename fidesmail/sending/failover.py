"""The walk down a config's fallback chain (contract section 14), written once for the synchronous path and the outbox.

A message goes to its config's provider; while the answer proves the provider did not take it
(core.outcomes.never_sent), it goes on to the next config of the chain at once, and so on. The walk stops at
the first answer that is not such a proof (accepted, a refusal of the message itself, anything that may have
sent), and at the last config that can be posted to: that one keeps whatever retries its path gives it.
How one config is tried (retries, gates, leases, records) is the caller's `attempt`; the rule is here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fidesmail.core.exceptions import FidesmailError
from fidesmail.core.outcomes import KEY, NotSent, Outcome, never_sent
from fidesmail.providers.base import Provider
from fidesmail.tree.snapshot import ConfigEntry

log = logging.getLogger("fidesmail.send")


@dataclass(frozen=True)
class Leg:
    """One config of the chain: its provider and the request that posts the message through it (None when it
    cannot be used now: `unusable` says why, as the refusal a send without a fallback would answer)."""

    entry: ConfigEntry
    provider: Provider
    request: object | None = None
    unusable: FidesmailError | None = None

    @property
    def key(self) -> str:
        return self.entry.key

    def not_sent(self) -> NotSent:
        """What trying an unusable config comes to: nothing posted, and why."""
        detail = self.unusable.detail if isinstance(self.unusable.detail, str) else "the config cannot be used"
        return NotSent(detail, KEY)


def last_usable(legs: Sequence[Leg]) -> int:
    """The index of the last config that can be posted to (-1: none can)."""
    return max((index for index, leg in enumerate(legs) if leg.request is not None), default=-1)


def walk(legs: Sequence[Leg], attempt: Callable[[Leg, bool], Outcome], metrics) -> tuple[Leg, Outcome]:
    """Try each config in turn (`attempt(leg, last)`) until one's outcome is not a proof that nothing was sent,
    or the last usable one has answered; the config tried last and its outcome. Counts every failover."""
    last = last_usable(legs)
    if last < 0:
        raise ValueError("no config of the chain can be used")
    for index, leg in enumerate(legs[: last + 1]):
        outcome = attempt(leg, index == last)
        if index == last or not never_sent(outcome):
            return leg, outcome
        following = legs[index + 1]
        log.warning("%s did not take the message (%s): failing over to %s", leg.key, outcome.detail, following.key,
                    extra={"config_key": leg.key, "provider": leg.provider.service_type,
                           "fallback": following.key, "fallback_provider": following.provider.service_type})
        metrics.count_failover(leg.provider.service_type, following.provider.service_type)
    raise AssertionError("unreachable: the last usable config always ends the walk")
