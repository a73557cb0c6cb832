"""Retrying while a caller waits: only what may be retried (core.outcomes.Retry), never past the caller's budget.

Provider-neutral: the provider posts once and classifies (providers/*); this decides whether and when
to post again. A moment the provider named (Retry-After) is waited for; otherwise an exponential backoff
with jitter. A wait that would keep the caller past `max_total_wait` is never started (a 420 "try again
in an hour" fails at once, and says why). A paced send (a config's rate_limit) waits for its slot
before each post, within the same budget; a retry with no slot left in it is not posted.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from fidesmail.core.outcomes import Outcome, Retry

log = logging.getLogger("fidesmail.mailer")


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential with jitter, so many senders failing together do not retry in lockstep."""
    return min(cap, base * 2 ** (attempts - 1)) * rng.uniform(0.5, 1.0)


# Before each post of a paced send: (posts so far, seconds left of the budget) -> True once the slot
# taken for it has come (after waiting for it), False when no slot is free within what is left.
Pace = Callable[[int, float], bool]


class NoSlot(Exception):
    """A paced send's first post found no rate-limit slot within the budget: nothing was posted."""


@dataclass(frozen=True)
class Finished:
    """What the last attempt came to, after how many, and why retrying stopped early (or "")."""

    outcome: Outcome
    attempts: int
    note: str = ""


class Retrier:
    """Posts again after a Retry, at most `retries` times and within `max_total_wait` seconds."""

    def __init__(self, retries: int = 3, *, sleep: Callable[[float], None] = time.sleep, max_total_wait: float = 30,
                 backoff: float = 0.5, max_backoff: float = 8):
        self.retries = retries
        self.max_total_wait = max_total_wait
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._random = random.Random()

    def run(self, post: Callable[[], Outcome], on_attempt: Callable[[Outcome], None] | None = None,
            label: str = "the provider", host: str = "", pace: Pace | None = None, spent: float = 0.0) -> Finished:
        """Post until an outcome other than Retry, or until no retry is left; `on_attempt` hears of each;
        `pace` gives each post's wait for its rate-limit slot; `spent`: seconds of the caller's budget already
        used (by configs of its fallback chain tried before this one)."""
        gave_up: list[str] = []
        attempts = 0
        last: list[Outcome] = []
        started = time.monotonic()

        def one_attempt() -> Outcome:
            nonlocal attempts
            if pace is not None and not pace(attempts, self.max_total_wait - spent - (time.monotonic() - started)):
                raise NoSlot
            attempts += 1
            outcome = post()
            last.append(outcome)
            if on_attempt is not None:
                on_attempt(outcome)
            return outcome

        # The first post outside tenacity: most sends end with it, and tenacity's set-up cost ~13 us a send.
        first = one_attempt()  # NoSlot here: nothing was posted, the caller says so
        if not isinstance(first, Retry) or self.retries == 0:
            return Finished(first, attempts)
        replayed = [first]  # tenacity's attempt 1 is the post just made, not another one

        def next_attempt() -> Outcome:
            return replayed.pop() if replayed else one_attempt()

        def wait(state: tenacity.RetryCallState) -> float:
            outcome = state.outcome.result()
            if outcome.delay is not None:
                return outcome.delay
            return backoff_delay(state.attempt_number, self.backoff, self.max_backoff, self._random)

        def past_budget(state: tenacity.RetryCallState) -> bool:
            # Never start a wait that would keep the caller past the budget (a 420 "try again in an hour").
            if spent + time.monotonic() - started + (state.upcoming_sleep or 0) > self.max_total_wait:
                gave_up.append(f" (gave up: waiting {state.upcoming_sleep:g} s more would pass the "
                               f"{self.max_total_wait:g} s limit)")
                return True
            return False

        def log_retry(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome.result()
            log.warning("%s %s: %s %s; retry %d of %d in %.2f s", label, host,
                        outcome.http_status or "connection failed:", outcome.detail, state.attempt_number,
                        self.retries, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda outcome: isinstance(outcome, Retry)),
            stop=tenacity.stop_after_attempt(self.retries + 1) | past_budget,
            wait=wait,
            sleep=self._sleep,
            before_sleep=log_retry,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        try:
            outcome = retrying(next_attempt)
        except NoSlot:  # a retry found no slot: the first post was made
            return Finished(last[-1], attempts, f" (gave up: the rate limit leaves no slot within the "
                                                f"{self.max_total_wait:g} s limit)")
        return Finished(outcome, attempts, "".join(gave_up))
