"""The outbox's callback rows (contract section 15): claimed with a lease in order per message, settled, swept.

A row is inserted by the database, in the transaction of the status change it reports (the trigger of
migration 0008_callbacks), so no change is lost to a kill -9 between the change and its callback. Rows
are claimed as the outbox claims messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite's single
writer), but only a message's oldest row: a later status is never posted before the earlier one got
its 2xx, whichever worker or replica holds it. Unlike a message, a callback whose holder died is simply
due again when its lease ends (a receiver deduplicates by message_id + status: at least once, never lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, exists, func, not_, select, update

from fidesmail.records.database import Database
from fidesmail.records.messages import now_ms
from fidesmail.records.schema import callbacks

_EARLIER = callbacks.alias("earlier")
# The oldest row of its message (none before it, held or not): the only one that may be posted.
_HEAD = not_(exists().where(_EARLIER.c.message_id == callbacks.c.message_id, _EARLIER.c.id < callbacks.c.id))
_DUE = (select(callbacks).where(callbacks.c.due_at <= bindparam("now"), _HEAD)
        .order_by(callbacks.c.due_at, callbacks.c.id).limit(bindparam("limit")))
_NEXT_DUE = select(func.min(callbacks.c.due_at)).where(callbacks.c.due_at.is_not(None), _HEAD)
_HOLD = update(callbacks).where(callbacks.c.id.in_(bindparam("ids", expanding=True)),
                                callbacks.c.due_at.is_not(None)).values(due_at=None, lease_until=bindparam("lease"))
_MINE = (callbacks.c.id == bindparam("c_id"), callbacks.c.lease_until == bindparam("c_lease"))


@dataclass(frozen=True)
class Callback:
    """One status change to POST, held by this worker until `lease_until`."""

    id: int
    message_id: str
    config_key: str
    status: str
    reference: str | None
    provider: str | None
    failure_reason: str | None
    at: int  # ms
    created_at: int  # ms
    attempts: int
    lease_until: int


class CallbackQueue:
    """The callback rows of one database."""

    def __init__(self, database: Database):
        self.database = database

    def next_due(self) -> int | None:
        """When the next row is due (ms; maybe already past), None when none waits. A read."""
        with self.database.read() as connection:
            return connection.execute(_NEXT_DUE).scalar()

    def claim(self, limit: int, lease_ms: int) -> list[Callback]:
        """Up to `limit` due rows, each the oldest of its message, now this caller's until the lease ends."""
        now = now_ms()
        lease_until = now + lease_ms
        with self.database.write() as connection:
            due = _DUE if self.database.is_sqlite else _DUE.with_for_update(skip_locked=True, of=callbacks)
            rows = connection.execute(due, {"now": now, "limit": limit}).all()
            if not rows:
                return []
            connection.execute(_HOLD, {"ids": [row.id for row in rows], "lease": lease_until})
        return [Callback(row.id, row.message_id, row.config_key, row.status, row.reference, row.provider,
                         row.failure_reason, row.at, row.created_at, row.attempts, lease_until) for row in rows]

    def done(self, callback: Callback) -> None:
        """The receiver answered 2xx (or it is given up): the row goes, and the message's next may be posted."""
        with self.database.write() as connection:
            connection.execute(delete(callbacks).where(*_MINE), {"c_id": callback.id, "c_lease": callback.lease_until})

    def again(self, callback: Callback, next_at: int, error: str) -> None:
        """Not delivered: due again at `next_at` (for any worker), with why."""
        with self.database.write() as connection:
            connection.execute(update(callbacks).where(*_MINE).values(
                due_at=next_at, lease_until=None, attempts=callbacks.c.attempts + 1, last_error=error[:500]),
                {"c_id": callback.id, "c_lease": callback.lease_until})

    def expire_leases(self) -> int:
        """Rows whose holder stopped before settling them are due now (they may have been posted: at least once)."""
        now = now_ms()
        stale = (callbacks.c.due_at.is_(None), callbacks.c.lease_until < now)
        with self.database.read() as connection:
            if connection.execute(select(callbacks.c.id).where(*stale).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            return connection.execute(update(callbacks).where(*stale).values(due_at=now, lease_until=None)).rowcount

    def waiting(self) -> int:
        """How many callbacks wait to be delivered (for /metrics and tests)."""
        with self.database.read() as connection:
            return connection.execute(select(func.count()).select_from(callbacks)).scalar()
