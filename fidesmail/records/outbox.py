"""The outbox's rows: queueing a message with its record, claiming due ones with a lease, settling, cancelling.

Every change of a message's status here happens in one transaction with its outbox row, so a message
is in the queue exactly while its row exists, and a kill -9 at any moment leaves either the one state
or the other. Claims take `FOR UPDATE SKIP LOCKED` on PostgreSQL (replicas claim disjoint rows without
waiting for each other) and rely on SQLite's single writer (BEGIN IMMEDIATE) there. Only `queued`
messages are ever claimed, and a claim whose lease ran out becomes `unknown`, never `queued` again:
that is why no message is posted twice, whatever process dies when.

Statuses never move backwards (records.RANK): a webhook's `accepted` that lands while a worker still
posts is kept, and the worker's outcome only adds its attempt.

A config whose posts Mailgun keeps refusing has a gate (table `outbox_gates`): failures in a row are
counted, and once the gate closes (GATE_THRESHOLD of them, or at once for a 429/420 or a key that
cannot be opened) its queued messages are PARKED but one, the oldest, due when the gate is (the
probe); a 200 or a 4xx opens the gate and the whole queue goes out in order of creation.

Lock order, to stay clear of deadlocks on PostgreSQL: outbox rows, then message rows, then the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import and_, bindparam, delete, exists, func, insert, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..exceptions import Conflict, NotFound
from .database import Database
from .messages import (
    _STOPPED,
    CANCELLED,
    FAILED,
    QUEUED,
    RANK,
    SENDING,
    UNKNOWN,
    Answer,
    MessageRecords,
    NewRecord,
    as_json,
    key_hash,
    now_ms,
)
from .schema import messages, outbox, outbox_gates

PARKED = 1 << 62  # a due_at no clock reaches: waiting behind its config's gate
OPEN, FAIL = "open", "fail"  # what an outcome does to its config's gate
GATE_THRESHOLD = 3  # failures in a row across a config's messages that close its gate (an outage, not a hiccup)
_IN_QUEUE = (QUEUED, SENDING)
_SWEEP_BATCH = 500

# The statements of every settle, built once (executed with parameters: SQLAlchemy's cached compilation).
_SETTLE = update(messages).where(
    messages.c.id == bindparam("m_id"), messages.c.status == SENDING, messages.c.lease_until == bindparam("m_lease"),
).values(status=bindparam("m_status"), attempts=bindparam("m_attempts"), updated_at=bindparam("m_now"),
         failure_reason=bindparam("m_reason"), lease_until=None,
         mailgun_id=func.coalesce(bindparam("m_mailgun", type_=messages.c.mailgun_id.type), messages.c.mailgun_id))
_DROP = delete(outbox).where(outbox.c.message_id == bindparam("o_id"))
_REQUEUE = update(outbox).where(outbox.c.message_id == bindparam("o_id")).values(
    due_at=bindparam("o_due"), last_error=bindparam("o_error"), attempts=outbox.c.attempts + bindparam("o_posted"))


# Queueing's statements alike (every 202 runs them).
_INSERT_MESSAGE, _INSERT_OUTBOX = insert(messages), insert(outbox)
_GATE = select(outbox_gates.c.closed_until).where(outbox_gates.c.config_key == bindparam("g_key"))
_GATE_FOR_SHARE = _GATE.with_for_update(read=True)
# A config's head: one in flight (due_at NULL) or due (not parked); two range reads of (config_key, due_at)
# rather than one OR, since a parked queue may be long.
_HEAD_IN_FLIGHT = select(outbox.c.message_id).where(outbox.c.config_key == bindparam("g_key"),
                                                    outbox.c.due_at.is_(None)).limit(1)
_HEAD_DUE = select(outbox.c.message_id).where(outbox.c.config_key == bindparam("g_key"),
                                              outbox.c.due_at < PARKED).limit(1)

# Claiming's, alike (the drain runs them for every message; the ids are expanding parameters).
_DUE = (select(outbox.c.message_id, outbox.c.config_key, outbox.c.created_at, outbox.c.attempts, outbox.c.payload)
        .where(outbox.c.due_at <= bindparam("c_now")).order_by(outbox.c.due_at, outbox.c.message_id)
        .limit(bindparam("c_limit")))
_NEXT_DUE = select(outbox.c.due_at).where(outbox.c.due_at < PARKED).order_by(outbox.c.due_at).limit(1)
_DUE_SKIP_LOCKED = _DUE.with_for_update(skip_locked=True)
_HOLD = update(messages).where(messages.c.id.in_(bindparam("c_ids", expanding=True)), messages.c.status == QUEUED
                               ).values(status=SENDING, lease_until=bindparam("c_lease"), updated_at=bindparam("c_now"))
_HELD = select(messages.c.id, messages.c.attempts).where(
    messages.c.id.in_(bindparam("c_ids", expanding=True)), messages.c.status == SENDING,
    messages.c.lease_until == bindparam("c_lease"))
_IN_FLIGHT = update(outbox).where(outbox.c.message_id.in_(bindparam("c_ids", expanding=True))).values(due_at=None)
_LOCK_ROWS = (select(outbox.c.message_id).where(outbox.c.message_id.in_(bindparam("c_ids", expanding=True)))
              .order_by(outbox.c.message_id).with_for_update())
_FAILURES = select(outbox_gates.c.config_key, outbox_gates.c.failures).where(
    outbox_gates.c.config_key.in_(bindparam("c_keys", expanding=True)))

@dataclass(frozen=True)
class Claimed:
    """A message a worker holds (status `sending`) until its lease ends."""

    message_id: str
    config_key: str
    created_at: int  # ms
    attempts: int  # posts to Mailgun so far
    payload: bytes
    lease_until: int  # ms; also what proves the hold is still this worker's
    record_attempts: list = field(default_factory=list)  # the record's attempts so far
    gate_failures: int = 0  # the config's refusals in a row when it was claimed


@dataclass(frozen=True)
class Settlement:
    """The record's next state, and what happens to its config's gate."""

    status: str  # a final status, or `queued` to be tried again at `next_at`
    attempt: dict | None = None  # this attempt as the record keeps it (None: nothing was posted)
    mailgun_id: str | None = None
    failure_reason: str | None = None
    next_at: int | None = None  # ms
    last_error: str | None = None
    gate: str | None = None  # OPEN, FAIL or None (a fault of this message alone)
    gate_until: int | None = None  # when its config's queue may go on, if this closes the gate
    gate_force: bool = False  # close the gate now (429/420, a key that cannot be opened), whatever the count
    gate_reason: str | None = None

    @property
    def posted(self) -> bool:
        return self.attempt is not None


@dataclass(frozen=True)
class Stats:
    """The queue as /health and /metrics show it."""

    queued: int
    sending: int
    oldest_queued_ms: int | None  # created_at of the oldest queued message


class Outbox:
    """The outbox of one database (records.MessageRecords holds the message rows it moves)."""

    def __init__(self, database: Database, records: MessageRecords):
        self.database = database
        self.records = records

    def _locked(self, query):
        """SELECT ... FOR UPDATE (SKIP LOCKED where asked) on PostgreSQL; SQLite has one writer anyway."""
        return query if self.database.is_sqlite else query.with_for_update()

    def _skip_locked(self, query):
        return query if self.database.is_sqlite else query.with_for_update(skip_locked=True)

    # -- queueing -----------------------------------------------------------------------------

    def enqueue(self, record: NewRecord, payload: bytes, idempotency: tuple[str, bytes] | None = None) -> Answer:
        """Store the record (`queued`) and its payload in one transaction: the 202 answer, kept for its
        Idempotency-Key; or, when another request holds the key, the answer kept for that one."""
        at = now_ms()
        row = {**self.records._row(record, at), "status": QUEUED, "lease_until": None}
        # The record as GET will show it: every column (None where not set), the inserted values over them.
        answer = Answer(202, as_json(SimpleNamespace(**{**dict.fromkeys(messages.c.keys()), **row})))
        if idempotency is not None:
            row.update(idempotency_key=key_hash(idempotency[0]), request_fingerprint=idempotency[1],
                       answer=json.dumps({"status": answer.status, "body": answer.body}, separators=(",", ":")))
        try:
            with self.database.write() as connection:
                connection.execute(_INSERT_MESSAGE, row)
                connection.execute(_INSERT_OUTBOX, {
                    "message_id": record.id, "config_key": record.config_key, "created_at": at,
                    "due_at": self._due_for_new(connection, record.config_key, at), "attempts": 0,
                    "last_error": None, "payload": payload})
        except IntegrityError:  # another worker or replica holds the key: its answer
            if idempotency is None:
                raise
            return self.records.replay_of(*idempotency)
        return answer

    def _due_for_new(self, connection, config_key: str, at: int) -> int:
        """Now; behind the gate (parked) when the config's is closed and a message already waits at it."""
        # FOR SHARE on PostgreSQL: a gate opening meanwhile waits for this insert, then unparks it too
        # (else it would stay parked behind a gate that is gone).
        gate = _GATE if self.database.is_sqlite else _GATE_FOR_SHARE
        closed_until = connection.execute(gate, {"g_key": config_key}).scalar()
        if not closed_until:
            return at
        return PARKED if self._has_head(connection, config_key) else max(closed_until, at)

    def _has_head(self, connection, config_key: str) -> bool:
        """True when one of the config's messages is in flight or due (not parked); the head is the oldest."""
        return any(connection.execute(head, {"g_key": config_key}).first() is not None
                   for head in (_HEAD_IN_FLIGHT, _HEAD_DUE))

    # -- claiming -----------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """When the next message is due (ms; maybe already past), None when none is waiting unparked.
        A read: an idle poll takes no write lock."""
        with self.database.read() as connection:
            return connection.execute(_NEXT_DUE).scalar()

    def claim(self, limit: int, lease_ms: int) -> list[Claimed]:
        """Up to `limit` due messages, oldest first, now `sending` and this caller's until the lease ends."""
        now = now_ms()
        lease_until = now + lease_ms
        with self.database.write() as connection:
            due = _DUE if self.database.is_sqlite else _DUE_SKIP_LOCKED
            rows = connection.execute(due, {"c_now": now, "c_limit": limit}).all()
            if not rows:
                return []
            ids = [row.message_id for row in rows]
            connection.execute(_HOLD, {"c_ids": ids, "c_lease": lease_until, "c_now": now})
            held = dict(connection.execute(_HELD, {"c_ids": ids, "c_lease": lease_until}).all())
            left = [i for i in ids if i not in held]
            if left:  # not queued: out of the queue (its payload goes), or held by another worker (its row
                # is marked as such, not claimed again; its lease decides if that worker is gone)
                connection.execute(delete(outbox).where(outbox.c.message_id.in_(left), not_(
                    exists().where(messages.c.id == outbox.c.message_id, messages.c.status.in_(_IN_QUEUE)))))
                connection.execute(update(outbox).where(outbox.c.message_id.in_(left), exists().where(
                    messages.c.id == outbox.c.message_id, messages.c.status == SENDING)).values(due_at=None))
            if not held:
                return []
            connection.execute(_IN_FLIGHT, {"c_ids": list(held)})
            failures = dict(connection.execute(_FAILURES, {"c_keys": sorted({row.config_key for row in rows})}).all())
        return [Claimed(row.message_id, row.config_key, row.created_at, row.attempts, row.payload, lease_until,
                        json.loads(held[row.message_id] or "[]"), failures.get(row.config_key, 0))
                for row in rows if row.message_id in held]

    # -- settling -----------------------------------------------------------------------------

    def settle(self, claimed: Claimed, settlement: Settlement) -> str | None:
        """Write what came of a claimed message: its status (never backwards), its attempt, its payload kept
        (tried again) or deleted (out of the queue), and its config's gate. The record's status now."""
        return self.settle_many([(claimed, settlement)])[0]

    def settle_many(self, batch: list[tuple[Claimed, Settlement]]) -> list[str | None]:
        """settle() for several messages in one transaction (a group commit: one write lock, one commit)."""
        now = now_ms()
        with self.database.write() as connection:
            if not self.database.is_sqlite:  # lock order: the outbox rows first, in one order for everyone
                connection.execute(_LOCK_ROWS, {"c_ids": [c.message_id for c, _ in batch]})
            statuses = [self._settle_one(connection, claimed, settlement, now) for claimed, settlement in batch]
            opened: set[str] = set()  # configs already opened in this transaction (and not failed since)
            for claimed, settlement in sorted(batch, key=lambda item: item[0].config_key):  # the gates, in order
                if settlement.gate == OPEN and claimed.config_key not in opened:
                    self._open_gate(connection, claimed.config_key)
                    opened.add(claimed.config_key)
                elif settlement.gate == FAIL:
                    self._fail_gate(connection, claimed.config_key, settlement, now)
                    opened.discard(claimed.config_key)
        return statuses

    def _settle_one(self, connection, claimed: Claimed, settlement: Settlement, now: int) -> str | None:
        attempts = claimed.record_attempts + ([settlement.attempt] if settlement.posted else [])
        held = connection.execute(_SETTLE, {
            "m_id": claimed.message_id, "m_lease": claimed.lease_until, "m_status": settlement.status,
            "m_attempts": json.dumps(attempts), "m_now": now, "m_reason": settlement.failure_reason,
            "m_mailgun": settlement.mailgun_id}).rowcount
        if not held:  # moved on meanwhile (a webhook's `accepted`, a lease that ran out)
            status = self._settle_late(connection, claimed, settlement, now)
            if status not in _IN_QUEUE:  # never the payload of a message still to be sent
                connection.execute(_DROP, {"o_id": claimed.message_id})
            return status
        if settlement.status == QUEUED:
            connection.execute(_REQUEUE, {"o_id": claimed.message_id, "o_due": settlement.next_at,
                                          "o_error": settlement.last_error, "o_posted": int(settlement.posted)})
        else:
            connection.execute(_DROP, {"o_id": claimed.message_id})
        return settlement.status

    def _settle_late(self, connection, claimed: Claimed, settlement: Settlement, now: int) -> str | None:
        """The record left `sending` without this worker: keep its attempt; move its status only forwards."""
        row = connection.execute(self._locked(select(messages.c.status, messages.c.attempts, messages.c.mailgun_id)
                                              .where(messages.c.id == claimed.message_id))).first()
        if row is None:
            return None
        values = {"attempts": json.dumps(json.loads(row.attempts or "[]") + [settlement.attempt]), "updated_at": now} \
            if settlement.posted else {"updated_at": now}
        if settlement.mailgun_id is not None and row.mailgun_id is None:
            values["mailgun_id"] = settlement.mailgun_id
        status = row.status
        if settlement.status != QUEUED and RANK[settlement.status] > RANK[row.status]:
            status = settlement.status
            values.update(status=status, failure_reason=settlement.failure_reason, lease_until=None)
        connection.execute(update(messages).where(messages.c.id == claimed.message_id).values(**values))
        return status

    # -- gates ----------------------------------------------------------------------------------

    def _upsert(self):
        return sqlite.insert(outbox_gates) if self.database.is_sqlite else postgresql.insert(outbox_gates)

    def _fail_gate(self, connection, config_key: str, settlement: Settlement, now: int) -> None:
        """Count a failure of the config; close its gate at the threshold (or at once when forced)."""
        statement = self._upsert().values(config_key=config_key, closed_until=0, failures=1,
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
        self._arrange_gated(connection, config_key, now)

    def _arrange_gated(self, connection, config_key: str, now: int) -> None:
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

    def _open_gate(self, connection, config_key: str) -> None:
        """Mailgun answers for this config again: its whole queue is due, in order of creation."""
        closed = connection.execute(_GATE, {"g_key": config_key}).scalar()
        if closed is None:
            return
        connection.execute(delete(outbox_gates).where(outbox_gates.c.config_key == config_key))
        if closed:
            connection.execute(update(outbox).where(
                outbox.c.config_key == config_key, outbox.c.due_at.is_not(None),
                outbox.c.due_at > outbox.c.created_at).values(due_at=outbox.c.created_at))

    # -- cancelling -----------------------------------------------------------------------------

    def cancel(self, message_id: str):
        """A `queued` message becomes `cancelled` and its payload is deleted; the record's row.
        NotFound for no such message; Conflict for any other status (one being posted included)."""
        now = now_ms()
        with self.database.write() as connection:
            # The outbox row first (lock order): a claim in progress finishes before this reads.
            queued = connection.execute(self._locked(select(outbox.c.message_id).where(
                outbox.c.message_id == message_id, outbox.c.due_at.is_not(None)))).first() is not None
            row = connection.execute(self._locked(select(messages.c.status).where(messages.c.id == message_id))).first()
            if row is None:
                raise NotFound(f"No message found with id {message_id}")
            if row.status != QUEUED or not queued:
                being = "being sent right now" if row.status == SENDING else row.status
                raise Conflict(f"Message {message_id} is {being}: only queued messages can be cancelled.")
            connection.execute(update(messages).where(messages.c.id == message_id, messages.c.status == QUEUED)
                               .values(status=CANCELLED, failure_reason=None, updated_at=now, lease_until=None))
            connection.execute(delete(outbox).where(outbox.c.message_id == message_id))
            return connection.execute(select(messages).where(messages.c.id == message_id)).first()

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep(self, deadline_ms: int, full: bool = False) -> dict[str, int]:
        """What every process does every few seconds: leases of stopped workers expired (`unknown`), payloads
        of messages out of the queue deleted, messages past the delivery deadline `failed`, gates kept
        consistent. Reads first; writes only when there is something to do. `full`: also look for
        payloads left by records removed from under them (retention), which costs a scan."""
        done = {"expired": self._expire_leases(), "dropped": self._drop_settled(full)}
        done["gave_up"] = self._give_up(deadline_ms)
        done["gates"] = self._tend_gates()
        done["unparked"] = self._unpark_ungated()
        return done

    def _expire_leases(self) -> int:
        now = now_ms()
        stale = and_(messages.c.status == SENDING, messages.c.lease_until < now,
                     messages.c.id.in_(select(outbox.c.message_id).where(outbox.c.due_at.is_(None))))
        with self.database.read() as connection:
            if connection.execute(select(messages.c.id).where(stale).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            ids = [r.message_id for r in connection.execute(self._skip_locked(
                select(outbox.c.message_id).where(outbox.c.due_at.is_(None)))).all()]
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
            ids = [r.message_id for r in connection.execute(self._skip_locked(
                select(outbox.c.message_id).where(scope).limit(_SWEEP_BATCH))).all()]
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
            rows = connection.execute(self._skip_locked(
                select(outbox.c.message_id, outbox.c.config_key, outbox.c.created_at, outbox.c.attempts,
                       outbox.c.last_error).where(late).order_by(outbox.c.created_at).limit(_SWEEP_BATCH))).all()
            reasons = dict(connection.execute(select(outbox_gates.c.config_key, outbox_gates.c.reason).where(
                outbox_gates.c.config_key.in_({r.config_key for r in rows}))).all())
            for row in rows:
                why = row.last_error or (f"not tried while Mailgun refused the older messages of {row.config_key}: "
                                         f"{reasons[row.config_key]}" if row.config_key in reasons else None)
                connection.execute(update(messages).where(messages.c.id == row.message_id,
                                                          messages.c.status == QUEUED).values(
                    status=FAILED, failure_reason=gave_up(row.attempts, now - row.created_at, why), updated_at=now))
            connection.execute(delete(outbox).where(outbox.c.message_id.in_([r.message_id for r in rows])))
        return len(rows)

    def _tend_gates(self) -> int:
        """A gate whose probe went away (its worker died, or a message arrived at an empty gate) gets a new
        one, the oldest; a gate with no queue left is removed once its time has come."""
        now = now_ms()
        with self.database.read() as connection:
            gates = connection.execute(select(outbox_gates.c.config_key, outbox_gates.c.closed_until)
                                       .where(outbox_gates.c.closed_until > 0)).all()
            orphaned = [g for g in gates if not self._has_head(connection, g.config_key)]
        if not orphaned:
            return 0
        with self.database.write() as connection:
            for gate in orphaned:
                connection.execute(self._locked(select(outbox_gates.c.config_key).where(
                    outbox_gates.c.config_key == gate.config_key)))
                if self._has_head(connection, gate.config_key):
                    continue
                waiting = connection.execute(select(outbox.c.message_id).where(
                    outbox.c.config_key == gate.config_key).limit(1)).first() is not None
                if waiting:
                    self._arrange_gated(connection, gate.config_key, now)
                elif gate.closed_until <= now:
                    connection.execute(delete(outbox_gates).where(outbox_gates.c.config_key == gate.config_key))
        return len(orphaned)

    def _unpark_ungated(self) -> int:
        """Parked messages of a config whose gate is no longer closed are due (a safety net: they should
        have been unparked with the gate)."""
        closed = select(outbox_gates.c.config_key).where(outbox_gates.c.closed_until > 0)
        stray = and_(outbox.c.due_at == PARKED, outbox.c.config_key.not_in(closed))
        with self.database.read() as connection:
            if connection.execute(select(outbox.c.message_id).where(stray).limit(1)).first() is None:
                return 0
        with self.database.write() as connection:
            configs = {r.config_key for r in connection.execute(select(outbox.c.config_key).where(stray)
                                                                .limit(_SWEEP_BATCH)).all()}
            for config_key in sorted(configs):
                if connection.execute(self._locked(closed.where(outbox_gates.c.config_key == config_key))).first():
                    continue
                connection.execute(update(outbox).where(outbox.c.config_key == config_key, outbox.c.due_at == PARKED)
                                   .values(due_at=outbox.c.created_at))
        return len(configs)

    # -- reading --------------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Queued and sending messages, and when the oldest queued one was created."""
        with self.database.read() as connection:
            sending = connection.execute(select(func.count()).select_from(outbox)
                                         .where(outbox.c.due_at.is_(None))).scalar()
            queued = connection.execute(select(func.count()).select_from(outbox)
                                        .where(outbox.c.due_at.is_not(None))).scalar()
            oldest = connection.execute(select(outbox.c.created_at).where(outbox.c.due_at.is_not(None))
                                        .order_by(outbox.c.created_at).limit(1)).scalar()
        return Stats(queued, sending, oldest)


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
