"""The verification limit: at most N identity-verification emails per address per rolling hour (contract section 17).

Counted over the records themselves (by the address digest, on the digest's index), in the very
transaction that writes the new record: a record is made, whatever becomes of its send, or nothing is
(429, no record, nothing sent). So every path that makes a record counts (a send, a queued send, a
resend, the fidesops and fides adapters' calls), and two requests racing for the last slot cannot both
pass: SQLite has one writer at a time (BEGIN IMMEDIATE), and on PostgreSQL each address takes a
transaction-level advisory lock before it counts, so the second waits for the first to commit and
then counts its record.
"""

from __future__ import annotations

import hashlib
import math

from sqlalchemy import bindparam, select, text

from fidesmail.core.exceptions import TooManyRequests
from fidesmail.records.schema import messages

VERIFICATION = "subject_identity_verification"  # the one action type the limit counts
WINDOW_MS = 3600 * 1000  # rolling: a record leaves the count one hour after it was made
SETTING = "FIDESMAIL_VERIFICATION_LIMIT"

# The advisory locks' class (first int4 of pg_advisory_xact_lock): fidesmail's verification counts.
_LOCK_CLASS = int.from_bytes(hashlib.sha256(b"fidesmail verification limit").digest()[:4], "big", signed=True)
_LOCK = text("SELECT pg_advisory_xact_lock(:lock_class, :lock_key)")
# The newest records of one address in the window (the newest first), the new one included.
_NEWEST = (select(messages.c.created_at)
           .where(messages.c.to_digest == bindparam("v_digest"), messages.c.action_type == VERIFICATION,
                  messages.c.created_at > bindparam("v_since"))
           .order_by(messages.c.created_at.desc()).limit(bindparam("v_rows")))


class VerificationLimitReached(TooManyRequests):
    """One more identity-verification email to this address would pass the hourly limit."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(
            f"Too many identity-verification emails to this address: at most {limit} per hour "
            f"({SETTING}={limit}). Nothing was sent; the next one may be sent in {retry_after} s.",
            limit="verification", retry_after=retry_after)


def lock_address(database, connection, digest: bytes) -> None:
    """On PostgreSQL, hold this address's lock until the transaction ends (SQLite: its one writer does)."""
    if not database.is_sqlite:
        key = int.from_bytes(digest[:4], "big", signed=True)  # a collision only makes two addresses queue
        connection.execute(_LOCK, {"lock_class": _LOCK_CLASS, "lock_key": key})


def check(connection, digest: bytes, limit: int, at_ms: int) -> None:
    """VerificationLimitReached when the address has more than `limit` records in the hour up to `at_ms`,
    the one just written included (so it is rolled back with the transaction)."""
    newest = connection.execute(_NEWEST, {"v_digest": digest, "v_since": at_ms - WINDOW_MS,
                                          "v_rows": limit + 1}).scalars().all()
    if len(newest) <= limit:
        return
    # The next one may go once the limit-th newest earlier record is an hour old (its own row is newest[0]).
    frees_at = newest[limit] + WINDOW_MS
    raise VerificationLimitReached(limit, math.ceil(max(1, frees_at - at_ms) / 1000))


def counted(action_type: str, limit: int) -> bool:
    """True when a record of `action_type` counts towards a limit that is on (0 turns it off)."""
    return limit > 0 and action_type == VERIFICATION
