"""A config's gate in the outbox: Mailgun's refusals counted, the queue parked behind one probe, reopened in order.

A config whose posts Mailgun keeps refusing gets a row in `outbox_gates`: failures in a row are
counted, and once the gate closes (GATE_THRESHOLD of them, or at once for a 429/420 or a key that
cannot be opened) its queued messages are PARKED but one, the oldest, due when the gate is (the
probe); a 200 or a 4xx opens the gate and the whole queue goes out in order of creation. These run
inside the outbox's transactions (records/outbox.py, records/outbox_sweep.py), on their connection.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fidesmail.records.schema import outbox, outbox_gates

PARKED = 1 << 62  # a due_at no clock reaches: waiting behind its config's gate
OPEN, FAIL = "open", "fail"  # what an outcome does to its config's gate
GATE_THRESHOLD = 3  # failures in a row across a config's messages that close its gate (an outage, not a hiccup)

_GATE = select(outbox_gates.c.closed_until).where(outbox_gates.c.config_key == bindparam("g_key"))
_GATE_FOR_SHARE = _GATE.with_for_update(read=True)  # SQLite (one writer) compiles no lock clause
# A config's head: one in flight (due_at NULL) or due (not parked); two range reads of (config_key, due_at)
# rather than one OR, since a parked queue may be long.
_HEAD_IN_FLIGHT = select(outbox.c.message_id).where(outbox.c.config_key == bindparam("g_key"),
                                                    outbox.c.due_at.is_(None)).limit(1)
_HEAD_DUE = select(outbox.c.message_id).where(outbox.c.config_key == bindparam("g_key"),
                                              outbox.c.due_at < PARKED).limit(1)


def due_for_new(database, connection, config_key: str, at: int) -> int:
    """Now; behind the gate (parked) when the config's is closed and a message already waits at it."""
    # FOR SHARE on PostgreSQL: a gate opening meanwhile waits for this insert, then unparks it too
    # (else it would stay parked behind a gate that is gone). SQLite, one writer, compiles no lock clause.
    closed_until = connection.execute(_GATE_FOR_SHARE, {"g_key": config_key}).scalar()
    if not closed_until:
        return at
    return PARKED if has_head(connection, config_key) else max(closed_until, at)


def has_head(connection, config_key: str) -> bool:
    """True when one of the config's messages is in flight or due (not parked); the head is the oldest."""
    return any(connection.execute(head, {"g_key": config_key}).first() is not None
               for head in (_HEAD_IN_FLIGHT, _HEAD_DUE))


def _upsert(database):
    return sqlite.insert(outbox_gates) if database.is_sqlite else postgresql.insert(outbox_gates)


def fail(database, connection, config_key: str, settlement, now: int) -> None:
    """Count a failure of the config; close its gate at the threshold (or at once when forced)."""
    statement = _upsert(database).values(config_key=config_key, closed_until=0, failures=1,
                                         reason=settlement.gate_reason)
    connection.execute(statement.on_conflict_do_update(index_elements=[outbox_gates.c.config_key], set_={
        "failures": outbox_gates.c.failures + 1, "reason": statement.excluded.reason}))
    gate = connection.execute(select(outbox_gates.c.failures, outbox_gates.c.closed_until).where(
        outbox_gates.c.config_key == config_key)).first()
    if not (settlement.gate_force or gate.failures >= GATE_THRESHOLD):
        return
    # A moment Mailgun named is not cut short by a quicker backoff of a concurrent failure.
    until = gate.closed_until if gate.closed_until > max(now, settlement.gate_until) else settlement.gate_until
    connection.execute(update(outbox_gates).where(outbox_gates.c.config_key == config_key)
                       .values(closed_until=until))
    arrange(connection, config_key, now)


def arrange(connection, config_key: str, now: int) -> None:
    """Park every queued message of a gated config but its oldest, due when the gate opens."""
    closed_until = connection.execute(select(outbox_gates.c.closed_until).where(
        outbox_gates.c.config_key == config_key)).scalar()
    if not closed_until:
        return
    head = connection.execute(
        select(outbox.c.message_id).where(outbox.c.config_key == config_key, outbox.c.due_at.is_not(None))
        .order_by(outbox.c.created_at, outbox.c.message_id).limit(1)).scalar()
    if head is None:
        return
    connection.execute(update(outbox).where(outbox.c.config_key == config_key, outbox.c.due_at < PARKED,
                                            outbox.c.message_id != head).values(due_at=PARKED))
    # `due_at IS NOT NULL` again: on PostgreSQL another replica may have claimed the head since it was
    # read; a claimed row made due would be claimed twice (and its payload dropped by the second claim).
    connection.execute(update(outbox).where(outbox.c.message_id == head, outbox.c.due_at.is_not(None))
                       .values(due_at=max(closed_until, now)))


def open_gate(connection, config_key: str) -> None:
    """Mailgun answers for this config again: its whole queue is due, in order of creation."""
    closed = connection.execute(_GATE, {"g_key": config_key}).scalar()
    if closed is None:
        return
    connection.execute(delete(outbox_gates).where(outbox_gates.c.config_key == config_key))
    if closed:
        connection.execute(update(outbox).where(
            outbox.c.config_key == config_key, outbox.c.due_at.is_not(None),
            outbox.c.due_at > outbox.c.created_at).values(due_at=outbox.c.created_at))
