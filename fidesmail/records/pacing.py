"""A config's `rate_limit`: one shared limiter per config, in the database, whose slots are 1/rate s apart.

The limiter is a row holding the config's next free moment (microseconds since the epoch). Taking a
slot is one statement, an upsert that moves it on by the interval (1/rate, rounded up to the
microsecond) only if the slot it hands out is soon enough, so every worker and replica takes slots
from the same row and none is handed out twice: PostgreSQL locks the row for the statement's
transaction, SQLite has one writer. Nothing is ever posted to a paced config's provider before the
slot taken for it, so its posts start at least 1/rate s apart (GCRA with a burst of one).

Two callers take slots: a synchronous send, in the transaction that writes its record (so a send
refused for want of a slot leaves no record, and a refused record takes no slot), and then for each
retry; and the outbox's claim (outbox/pacing.py), which takes only slots that are due now.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fidesmail.core.exceptions import TooManyRequests, Unavailable
from fidesmail.records.schema import rate_limits

US = 1_000_000  # microseconds in a second
# A post that would start later than this after its slot (a busy process wakes late, never early) may
# bunch with the next slot's: it moves its slot to now if no later one was handed out yet (the usual
# case), else takes another. So posts start at least 1/rate s apart, less this.
LATE_US = 20_000


def now_us() -> int:
    return time.time_ns() // 1000


def interval_us(per_second: float) -> int:
    """The slots' spacing: rounded up, so rounding never lets one more message into a second."""
    return max(1, math.ceil(US / per_second))


@dataclass(frozen=True)
class Pace:
    """A send's rate limit: its config, messages per second, and how long the send may wait for a slot."""

    config_key: str
    per_second: float
    within_s: float = 0.0


class RateLimitReached(TooManyRequests):
    """The config's next free slot is further away than the send may wait."""

    def __init__(self, pace: Pace, wait_us: int):
        seconds = math.ceil(wait_us / US)
        super().__init__(
            f"The rate limit of {pace.config_key} ({pace.per_second:g} messages per second) has no free slot "
            f"within the {pace.within_s:g} s a send may wait: the next is in {seconds} s. Nothing was sent.",
            limit="rate_limit", retry_after=seconds)


@functools.cache
def _take_statement(is_sqlite: bool):
    """The upsert that takes a slot, built once per dialect (executed with parameters: compiled once)."""
    step, now, latest = bindparam("p_step"), bindparam("p_now"), bindparam("p_latest")
    statement = (sqlite.insert if is_sqlite else postgresql.insert)(rate_limits).values(
        config_key=bindparam("p_key"), next_at=now + step)
    from_ = case((rate_limits.c.next_at > now, rate_limits.c.next_at), else_=now)
    return statement.on_conflict_do_update(
        index_elements=[rate_limits.c.config_key], set_={"next_at": from_ + step},
        where=rate_limits.c.next_at <= latest).returning(rate_limits.c.next_at)


def take(database, connection, config_key: str, per_second: float, now: int, latest: int) -> int | None:
    """Take the config's next slot (µs) if it is at most `latest`, in the caller's transaction; None if it is later."""
    step = interval_us(per_second)
    moved_to = connection.execute(_take_statement(database.is_sqlite), {
        "p_key": config_key, "p_step": step, "p_now": now, "p_latest": latest}).scalar()
    return None if moved_to is None else moved_to - step


def move_to_now(database, config_key: str, slot: int, per_second: float) -> bool:
    """A late slot moved to now, when it is still the last one handed out (own transaction); True if moved."""
    step = interval_us(per_second)
    with database.write() as connection:
        return connection.execute(update(rate_limits).where(
            rate_limits.c.config_key == config_key, rate_limits.c.next_at == slot + step).values(
            next_at=now_us() + step)).rowcount == 1


def on_time(database, config_key: str, slot: int, per_second: float) -> bool:
    """True when a post may start now for `slot`: not late, or late with its slot moved to now (False
    when the database cannot say: nothing is posted that could bunch)."""
    if now_us() - slot <= LATE_US:
        return True
    try:
        return move_to_now(database, config_key, slot, per_second)
    except Unavailable:
        return False


def next_free(connection, config_key: str) -> int | None:
    """When the config's next slot is free (µs), None when it never took one."""
    return connection.execute(select(rate_limits.c.next_at).where(rate_limits.c.config_key == config_key)).scalar()


def take_within(database, connection, pace: Pace) -> int:
    """A slot within the pace's wait, taken in the caller's transaction; RateLimitReached otherwise."""
    now = now_us()
    slot = take(database, connection, pace.config_key, pace.per_second, now, now + int(pace.within_s * US))
    if slot is None:
        raise RateLimitReached(pace, (next_free(connection, pace.config_key) or now) - now)
    return slot


class Pacer:
    """Waiting for slots while a synchronous send's caller waits; further slots each in a transaction of its own."""

    def __init__(self, database, sleep=time.sleep):
        self.database = database
        self._sleep = sleep

    def take(self, pace: Pace) -> int | None:
        """A slot (µs) within the pace's wait, or None when the next free one is later."""
        try:
            with self.database.write() as connection:
                return take_within(self.database, connection, pace)
        except (RateLimitReached, Unavailable):  # no slot in time, or none to be had: not posted
            return None

    def refusal(self, pace: Pace) -> RateLimitReached:
        """The 429 for a send that found no slot within its wait (Retry-After: until the next free one)."""
        now = now_us()
        try:
            with self.database.read() as connection:
                free = next_free(connection, pace.config_key) or now
        except Unavailable:
            free = now + interval_us(pace.per_second)
        return RateLimitReached(pace, free - now)

    def wait(self, pace: Pace, slot: int | None) -> bool:
        """Wait until `slot` (or a slot taken now, when None) and return True, in time to post; a slot
        whose moment passed by more than LATE_US (this process was busy) is moved to now, or when a
        later one was handed out meanwhile, exchanged for another. False when no slot is free in time."""
        deadline = time.monotonic() + pace.within_s
        if slot is None:
            slot = self.take(pace)
        while slot is not None:
            delay = slot - now_us()
            if delay > 0:
                self._sleep(delay / US)
            if on_time(self.database, pace.config_key, slot, pace.per_second):
                return True
            slot = self.take(Pace(pace.config_key, pace.per_second, max(0.0, deadline - time.monotonic())))
        return False
