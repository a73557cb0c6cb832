"""The outbox's housekeeping, every few seconds in every process: what no single request or post does.

Leases of stopped workers expire (their messages turn `unknown`, never `queued`: they may have been
posted), payloads of messages out of the queue are deleted, messages past FIDESMAIL_DELIVERY_DEADLINE
turn `failed` ("gave up after ..."), and the gates (gates.py) stay consistent. Each part reads first
and takes the write lock only when there is something to do.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, exists, not_, or_, select, update

from fidesmail.core.outcomes import FAILED, QUEUED, SENDING, UNKNOWN
from fidesmail.outbox.gates import PARKED, arrange, has_head
from fidesmail.records.database import Database
from fidesmail.records.messages import _STOPPED, now_ms
from fidesmail.records.schema import messages, outbox, outbox_gates

_IN_QUEUE = (QUEUED, SENDING)
_SWEEP_BATCH = 500


class Sweeper:
    """The housekeeping of one database's outbox."""

    def __init__(self, database: Database):
        self.database = database

    def sweep(self, deadline_ms: int, full: bool = False, falls_back: frozenset[str] = frozenset()) -> dict[str, int]:
        """What every process does every few seconds: leases of stopped workers expired (`unknown`), payloads
        of messages out of the queue deleted, messages past the delivery deadline `failed`, gates kept
        consistent. Reads first; writes only when there is something to do. `full`: also look for
        payloads left by records removed from under them (retention), which costs a scan. `falls_back`: the
        configs with a fallback: their queues never park (their messages go on to it), and their gates stay
        until a probe finds their provider back (gates.take_probe)."""
        done = {"expired": self._expire_leases(), "dropped": self._drop_settled(full)}
        done["gave_up"] = self._give_up(deadline_ms)
        done["gates"] = self._tend_gates(falls_back)
        done["unparked"] = self._unpark_ungated(falls_back)
        return done

    def _expire_leases(self) -> int:
        now = now_ms()
        stale = and_(messages.c.status == SENDING, messages.c.lease_until < now,
                     messages.c.id.in_(select(outbox.c.message_id).where(outbox.c.due_at.is_(None))))
        with self.database.read() as connection:
            if connection.execute(select(messages.c.id).where(stale).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            ids = [r.message_id for r in connection.execute(
                select(outbox.c.message_id).where(outbox.c.due_at.is_(None)).with_for_update(skip_locked=True)).all()]
            if not ids:
                return 0
            expired = [r.id for r in connection.execute(select(messages.c.id).where(
                messages.c.id.in_(ids), messages.c.status == SENDING, messages.c.lease_until < now)).all()]
            if not expired:
                return 0
            connection.execute(update(messages).where(messages.c.id.in_(expired), messages.c.status == SENDING)
                               .values(status=UNKNOWN, failure_reason=_STOPPED, updated_at=now, lease_until=None))
            connection.execute(delete(outbox).where(outbox.c.message_id.in_(expired)))
        return len(expired)

    def _drop_settled(self, full: bool) -> int:
        """Delete payloads whose message is no longer queued or sending (e.g. made `unknown` by the records'
        own lease expiry), or gone."""
        in_queue = exists().where(messages.c.id == outbox.c.message_id, messages.c.status.in_(_IN_QUEUE))
        scope = not_(in_queue) if full else and_(outbox.c.due_at.is_(None), not_(in_queue))
        with self.database.read() as connection:
            if connection.execute(select(outbox.c.message_id).where(scope).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            ids = [r.message_id for r in connection.execute(
                select(outbox.c.message_id).where(scope).limit(_SWEEP_BATCH).with_for_update(skip_locked=True)).all()]
            if ids:
                connection.execute(delete(outbox).where(outbox.c.message_id.in_(ids)))
        return len(ids)

    def _give_up(self, deadline_ms: int) -> int:
        now = now_ms()
        late = and_(outbox.c.due_at.is_not(None), outbox.c.created_at <= now - deadline_ms)
        with self.database.read() as connection:
            if connection.execute(select(outbox.c.message_id).where(late).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            rows = connection.execute(
                select(outbox.c.message_id, outbox.c.config_key, outbox.c.created_at, outbox.c.attempts,
                       outbox.c.last_error).where(late).order_by(outbox.c.created_at).limit(_SWEEP_BATCH)
                .with_for_update(skip_locked=True)).all()
            reasons = dict(connection.execute(select(outbox_gates.c.config_key, outbox_gates.c.reason).where(
                outbox_gates.c.config_key.in_({r.config_key for r in rows}))).all())
            for row in rows:
                why = row.last_error or (f"not tried while its provider refused the older messages of "
                                         f"{row.config_key}: {reasons[row.config_key]}"
                                         if row.config_key in reasons else None)
                connection.execute(update(messages).where(messages.c.id == row.message_id,
                                                          messages.c.status == QUEUED).values(
                    status=FAILED, failure_reason=gave_up(row.attempts, now - row.created_at, why), updated_at=now))
            connection.execute(delete(outbox).where(outbox.c.message_id.in_([r.message_id for r in rows])))
        return len(rows)

    def _tend_gates(self, falls_back: frozenset[str]) -> int:
        """A gate whose probe went away (its worker died, or a message arrived at an empty gate) gets a new
        one, the oldest; a gate with no queue left is removed once its time has come."""
        now = now_ms()
        with self.database.read() as connection:
            gates = connection.execute(select(outbox_gates.c.config_key, outbox_gates.c.closed_until)
                                       .where(outbox_gates.c.closed_until > 0)).all()
            orphaned = [g for g in gates if g.config_key not in falls_back and not has_head(connection, g.config_key)]
        if not orphaned:
            return 0
        with self.database.write() as connection:
            for gate in orphaned:
                connection.execute(select(outbox_gates.c.config_key).where(
                    outbox_gates.c.config_key == gate.config_key).with_for_update())
                if has_head(connection, gate.config_key):
                    continue
                waiting = connection.execute(select(outbox.c.message_id).where(
                    outbox.c.config_key == gate.config_key).limit(1)).first() is not None
                if waiting:
                    arrange(connection, gate.config_key, now)
                elif gate.closed_until <= now:
                    connection.execute(delete(outbox_gates).where(outbox_gates.c.config_key == gate.config_key))
        return len(orphaned)

    def _unpark_ungated(self, falls_back: frozenset[str]) -> int:
        """Parked messages of a config whose gate is no longer closed are due (a safety net: they should
        have been unparked with the gate), and so are those of a config that has a fallback now (with the one
        that waited as its probe: the walk passes over the closed gate, gates.take_probe probes it)."""
        closed = select(outbox_gates.c.config_key).where(outbox_gates.c.closed_until > 0)
        stray = and_(outbox.c.due_at == PARKED, or_(outbox.c.config_key.not_in(closed),
                                                    outbox.c.config_key.in_(sorted(falls_back))))
        with self.database.read() as connection:
            if connection.execute(select(outbox.c.message_id).where(stray).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            configs = {r.config_key for r in connection.execute(select(outbox.c.config_key).where(stray)
                                                                .limit(_SWEEP_BATCH)).all()}
            for config_key in sorted(configs):
                gate = connection.execute(select(outbox_gates.c.closed_until).where(
                    outbox_gates.c.config_key == config_key, outbox_gates.c.closed_until > 0).with_for_update()).first()
                if gate and config_key not in falls_back:
                    continue
                waiting = outbox.c.due_at == PARKED
                if gate:  # a fallback came: the message that waited as the gate's probe need not wait either
                    waiting = or_(waiting, outbox.c.due_at == gate.closed_until)
                connection.execute(update(outbox).where(outbox.c.config_key == config_key, waiting)
                                   .values(due_at=outbox.c.created_at))
        return len(configs)


def gave_up(attempts: int, elapsed_ms: int, reason: str | None) -> str:
    """'gave up after 3 attempts over 24 h: Mailgun answered 503: ...' (contract section 11)."""
    said = f"gave up after {attempts} attempt{'' if attempts == 1 else 's'} over {span(elapsed_ms / 1000)}"
    return f"{said}: {reason}" if reason else said


def span(seconds: float) -> str:
    """A duration as a person reads it: 850 ms, 12 s, 4 min 10 s, 3 h 5 min, 24 h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
