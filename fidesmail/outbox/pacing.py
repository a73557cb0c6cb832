"""The outbox paces itself: a config with a `rate_limit` has its queued messages claimed one slot at a time.

Slots come from the config's shared limiter (records/pacing.py), the same one synchronous sends take
from, and are taken in the claim's transaction only when they are due now, so a claimed message is
posted at once and the posts of every worker and replica are 1/rate s apart. The config's messages
go in order of creation: each slot claims its oldest waiting message. Messages that are due while
their config has no free slot wait out of the due index (`due_at` = PACED), and the claiming loop
is woken when the first such config's next slot comes (`next_due`): a waiting message costs nothing
per slot, however long the queue. A gate that closes (gates.py) parks them like any other message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sqlalchemy import exists, func, or_, select, update

from fidesmail.outbox.gates import PARKED
from fidesmail.records import pacing
from fidesmail.records.schema import outbox, rate_limits

PACED = PARKED - 1  # a due_at no clock reaches: waiting for its config's next slot

_WAITING = exists().where(outbox.c.config_key == rate_limits.c.config_key, outbox.c.due_at == PACED)
_PACED_CONFIGS = select(rate_limits.c.config_key, rate_limits.c.next_at).where(_WAITING)
_NEXT_SLOT = select(func.min(rate_limits.c.next_at)).where(_WAITING)


def next_slot_ms(connection) -> int | None:
    """When the first config with messages waiting for a slot has one free (ms), None when none waits."""
    at = connection.execute(_NEXT_SLOT).scalar()
    return None if at is None else math.ceil(at / 1000)


def admit(database, connection, rows: list, columns, rates: Mapping[str, float], now_ms: int,
          limit: int) -> tuple[list, dict[str, int]]:
    """The due `rows` of configs without a rate limit (selected with `columns`), with one message more
    for each paced config that has a free slot now: its oldest. Also the slot (µs) each paced one was
    given. The rest of a paced config's due messages wait for a slot; messages of configs no longer
    paced are due again. Paced messages are locked only here, after their config's limiter row, so
    claimers of one config take its slots and messages one after the other, in order."""
    now = pacing.now_us()
    chosen = list(rows)
    due_paced = set(connection.execute(select(outbox.c.config_key).distinct().where(
        outbox.c.config_key.in_(list(rates)), outbox.c.due_at <= now_ms)).scalars()) if rates else set()
    waiting = dict(connection.execute(_PACED_CONFIGS).all())
    for config_key in sorted(set(waiting) - set(rates)):  # its rate_limit (or the config) is gone
        connection.execute(update(outbox).where(outbox.c.config_key == config_key, outbox.c.due_at == PACED)
                           .values(due_at=outbox.c.created_at))
    ready = {key for key, next_at in waiting.items() if key in rates and next_at <= now}
    slots: dict[str, int] = {}
    for config_key in sorted(due_paced | ready):  # one order for every claimer: limiter rows lock in it
        slot = None
        if len(chosen) < limit:
            slot = pacing.take(database, connection, config_key, rates[config_key], now, now)
        oldest = None if slot is None else connection.execute(select(*columns).where(
            outbox.c.config_key == config_key, or_(outbox.c.due_at <= now_ms, outbox.c.due_at == PACED))
            .order_by(outbox.c.created_at, outbox.c.message_id).limit(1)
            .with_for_update(skip_locked=True)).first()  # SQLite (one writer) compiles no lock clause
        if oldest is not None:
            chosen.append(oldest)
            slots[oldest.message_id] = slot
        _wait_for_slot(database, connection, config_key, now_ms, oldest)
    return chosen, slots


def _wait_for_slot(database, connection, config_key: str, now_ms: int, claimed) -> None:
    """The config's other due messages wait for its next slot (another claimer's rows are left to it)."""
    due = select(outbox.c.message_id).where(outbox.c.config_key == config_key, outbox.c.due_at <= now_ms)
    if claimed is not None:
        due = due.where(outbox.c.message_id != claimed.message_id)
    ids = [row.message_id for row in connection.execute(due.with_for_update(skip_locked=True)).all()]
    if ids:
        connection.execute(update(outbox).where(outbox.c.message_id.in_(ids)).values(due_at=PACED))
