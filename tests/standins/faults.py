"""Faults every provider stand-in can be told to make, and the counts they keep: shared by all of them.

A stand-in mixes in `Faults` and calls `_init_faults()` in its constructor; each arriving request
calls `_arrive()`, which counts it and returns the `Fault` to act out (or None: answer normally).
What a fault looks like on the wire is the stand-in's business (each renders a status fault with
its provider's own error body and a throttle with its provider's rate-limit answer); `server.py`
acts out the connection-level ones (close, reset, slow, non-JSON 200) the same way for all.

Scripted per next request, in order, each `times` times (default once):

    fake.fail_next(503)                  # the provider's own error body with this status
    fake.fail_next(500, message="boom")  # ... with these words
    fake.throttle_next(retry_after=2)    # the provider's rate-limit answer (429 + its headers; SES v1: 400 Throttling)
    fake.slow_next(3.0)                  # wait 3 s, then answer normally (a client timeout fires first)
    fake.close_next()                    # read the request, close the connection without answering
    fake.reset_next()                    # read the request, reset the connection (TCP RST)
    fake.non_json_200_next()             # 200 with an HTML body
    fake.down(); fake.up()               # an outage (503 to everything) until up(); also POST /fake/down, /fake/up
    fake.refuse_for(5, status=502)       # an outage that ends by itself
    fake.random_faults(p_5xx=0.05, seed=1)

Only the standard library is used, so stand-ins that run as scripts keep working anywhere.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """A scripted answer: "status", "throttle", "slow", "non_json", "close" or "reset"."""

    kind: str
    status: int = 500
    retry_after: float | None = None
    message: str | None = None
    seconds: float = 0.0


class Faults:
    """Mixin: the fault script of one stand-in, thread-safe (requests arrive on many threads)."""

    def _init_faults(self) -> None:
        self._fault_lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._random: tuple[random.Random, list[tuple[float, Fault]]] | None = None
        self._outage: tuple[float, Fault] | None = None  # (until, answer)
        self._arrivals = 0

    # --- scripted faults ---

    def fail_next(
        self, status: int = 500, *, retry_after: float | None = None, message: str | None = None, times: int = 1
    ) -> None:
        """Answer the next request(s) with this status, in the provider's own error body (and Retry-After if given)."""
        self._queue(Fault("status", status=status, retry_after=retry_after, message=message), times)

    def throttle_next(self, *, retry_after: float | None = 1, times: int = 1) -> None:
        """Answer the next request(s) with the provider's rate-limit refusal and its rate-limit headers."""
        self._queue(Fault("throttle", status=429, retry_after=retry_after), times)

    def slow_next(self, seconds: float, *, times: int = 1) -> None:
        """Wait this long before answering the next request(s) normally."""
        self._queue(Fault("slow", seconds=seconds), times)

    def non_json_200_next(self, *, times: int = 1) -> None:
        """Answer the next request(s) 200 with an HTML body (no id, nothing accepted)."""
        self._queue(Fault("non_json", status=200), times)

    def close_next(self, *, times: int = 1) -> None:
        """Read the next request(s), then close the connection without answering."""
        self._queue(Fault("close"), times)

    def reset_next(self, *, times: int = 1) -> None:
        """Read the next request(s), then reset the connection (TCP RST) without answering."""
        self._queue(Fault("reset"), times)

    # --- outages ---

    def refuse_for(self, seconds: float, *, status: int = 503, retry_after: float | None = None) -> None:
        """An outage: answer every request with `status` for `seconds` from now, then normally again."""
        with self._fault_lock:
            self._outage = (time.monotonic() + seconds, Fault("status", status=status, retry_after=retry_after))

    def down(self, *, status: int = 503) -> None:
        """An outage until up()."""
        self.refuse_for(float("inf"), status=status)

    def up(self) -> None:
        """The outage is over."""
        with self._fault_lock:
            self._outage = None

    @property
    def is_down(self) -> bool:
        with self._fault_lock:
            return self._outage is not None and time.monotonic() < self._outage[0]

    def random_faults(
        self,
        *,
        p_5xx: float = 0.05,
        p_429: float = 0.02,
        p_slow: float = 0.01,
        p_close: float = 0.01,
        slow_seconds: float = 1.0,
        retry_after: float = 0,
        seed: int | None = None,
    ) -> None:
        """When no scripted fault is pending, fail at random with these probabilities."""
        table = [
            (p_5xx, Fault("status", status=503)),
            (p_429, Fault("throttle", status=429, retry_after=retry_after)),
            (p_slow, Fault("slow", seconds=slow_seconds)),
            (p_close, Fault("close")),
        ]
        with self._fault_lock:
            self._random = (random.Random(seed), table)

    # --- counts ---

    @property
    def attempts(self) -> int:
        """How many requests arrived, faulted ones included (counted on arrival, before any slow answer)."""
        with self._fault_lock:
            return self._arrivals

    def clear_faults(self) -> None:
        """Forget pending faults, the outage, random faults and the count of attempts."""
        with self._fault_lock:
            self._faults.clear()
            self._random = None
            self._outage = None
            self._arrivals = 0

    def _queue(self, fault: Fault, times: int) -> None:
        with self._fault_lock:
            self._faults.extend([fault] * times)

    def _arrive(self) -> Fault | None:
        """Count a request and pick its fault, if any: the outage first, then the script, then chance."""
        with self._fault_lock:
            self._arrivals += 1
            if self._outage is not None and time.monotonic() < self._outage[0]:
                return self._outage[1]
            if self._faults:
                return self._faults.popleft()
            if self._random is None:
                return None
            rng, table = self._random
            roll = rng.random()
        for probability, fault in table:
            if roll < probability:
                return fault
            roll -= probability
        return None
