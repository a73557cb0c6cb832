"""A config's gate in the outbox: Mailgun's refusals counted, the queue parked behind one probe, reopened in order.

A config whose posts Mailgun keeps refusing gets a row in `outbox_gates`: failures in a row are
counted, and once the gate closes (GATE_THRESHOLD of them, or at once for a 429/420 or a key that
cannot be opened) its queued messages are PARKED but one, the oldest, due when the gate is (the
probe); a 200 or a 4xx opens the gate and the whole queue goes out in order of creation. These run
inside the outbox's transactions (records/outbox.py, records/outbox_sweep.py), on their connection.

A config with a fallback (contract section 14) never parks its queue: while its gate is closed its
messages go on to the fallback at once, and the first message to come by after the gate's time takes the
probe (`take_probe`: one at a time, whoever walks through the config), so its own messages go to it again
once it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fidesmail.records import direct
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


@dataclass(frozen=True)
class GateChange:
    """What one outcome does to one config's gate (OPEN or FAIL), and whether its own queue parks behind it."""

    config_key: str
    action: str
    until: int = 0  # FAIL: when its queue may go on, if this closes the gate
    force: bool = False  # FAIL: close now (429/420, a key refused or not opening), whatever the count
    reason: str | None = None
    parks: bool = True  # False for a config with a fallback: its messages go there instead of waiting
    probed: bool = False  # the answer of its probe: the gate's new time replaces the hold taken for the probe


@dataclass(frozen=True)
class GateState:
    """A config's gate as read: closed until when (0: only counting), failures in a row, why."""

    closed_until: int
    failures: int
    reason: str


def due_for_new(database, connection, config_key: str, at: int, parks: bool = True) -> int:
    """Now; behind the gate (parked) when the config's is closed and a message already waits at it (unless its
    messages do not park: a config with a fallback)."""
    if not parks:
        return at
    # FOR SHARE on PostgreSQL: a gate opening meanwhile waits for this insert, then unparks it too
    # (else it would stay parked behind a gate that is gone). SQLite, one writer, compiles no lock clause.
    gate = direct.rows(connection, _GATE_FOR_SHARE, {"g_key": config_key})  # every 202 reads it
    closed_until = gate[0].closed_until if gate else None
    if not closed_until:
        return at
    return PARKED if has_head(connection, config_key) else max(closed_until, at)


def has_head(connection, config_key: str) -> bool:
    """True when one of the config's messages is in flight or due (not parked); the head is the oldest."""
    return any(connection.execute(head, {"g_key": config_key}).first() is not None
               for head in (_HEAD_IN_FLIGHT, _HEAD_DUE))


def _upsert(database):
    return sqlite.insert(outbox_gates) if database.is_sqlite else postgresql.insert(outbox_gates)


def states(connection, config_keys) -> dict[str, GateState]:
    """The gates of these configs (a config without one is open)."""
    rows = connection.execute(select(outbox_gates).where(outbox_gates.c.config_key.in_(sorted(config_keys)))).all()
    return {row.config_key: GateState(row.closed_until, row.failures, row.reason) for row in rows}


def take_probe(connection, config_key: str, now: int, hold_until: int) -> bool:
    """True for the one caller that may try a closed gate's provider now (its time has come); the gate stays
    closed until `hold_until` for everyone else, while the probe's answer is on its way."""
    return connection.execute(update(outbox_gates).where(
        outbox_gates.c.config_key == config_key, outbox_gates.c.closed_until > 0, outbox_gates.c.closed_until <= now,
    ).values(closed_until=hold_until)).rowcount == 1


def fail(database, connection, change: GateChange, now: int) -> None:
    """Count a failure of the config; close its gate at the threshold (or at once when forced)."""
    config_key = change.config_key
    statement = _upsert(database).values(config_key=config_key, closed_until=0, failures=1, reason=change.reason)
    connection.execute(statement.on_conflict_do_update(index_elements=[outbox_gates.c.config_key], set_={
        "failures": outbox_gates.c.failures + 1, "reason": statement.excluded.reason}))
    gate = connection.execute(select(outbox_gates.c.failures, outbox_gates.c.closed_until).where(
        outbox_gates.c.config_key == config_key)).first()
    if not (change.force or gate.failures >= GATE_THRESHOLD):
        return
    # A moment Mailgun named is not cut short by a quicker backoff of a concurrent failure; a probe's answer
    # replaces the hold its taker set (take_probe), which only kept other messages from probing meanwhile.
    kept = gate.closed_until if not change.probed else 0
    until = kept if kept > max(now, change.until) else change.until
    connection.execute(update(outbox_gates).where(outbox_gates.c.config_key == config_key)
                       .values(closed_until=until))
    if change.parks:
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
