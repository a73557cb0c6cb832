"""The outbox's rows: queueing a message with its record, claiming due ones with a lease, settling, cancelling.

Every change of a message's status here happens in one transaction with its outbox row, so a message
is in the queue exactly while its row exists, and a kill -9 at any moment leaves either the one state
or the other. Claims take `FOR UPDATE SKIP LOCKED` on PostgreSQL (replicas claim disjoint rows without
waiting for each other) and rely on SQLite's single writer (BEGIN IMMEDIATE) there. Only `queued`
messages are ever claimed, and a claim whose lease ran out becomes `unknown`, never `queued` again:
that is why no message is posted twice, whatever process dies when.

Statuses never move backwards (outcomes.RANK): a webhook's `accepted` that lands while a worker still
posts is kept, and the worker's outcome only adds its attempt.

A config whose posts Mailgun keeps refusing has a gate (gates.py) that parks its queue behind one
probe; the housekeeping every process runs is in outbox_sweep.py.

Lock order, to stay clear of deadlocks on PostgreSQL: outbox rows, then message rows, then the gate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, exists, func, insert, not_, select, update
from sqlalchemy.exc import IntegrityError

from fidesmail.core.exceptions import Conflict, NotFound
from fidesmail.core.outcomes import CANCELLED, QUEUED, QUEUED_FOR_LATER, RANK, SENDING
from fidesmail.outbox import gates, pacing
from fidesmail.outbox.gates import FAIL, GATE_THRESHOLD, OPEN, PARKED, due_for_new, fail, open_gate
from fidesmail.outbox.sweep import Sweeper, gave_up
from fidesmail.records import direct
from fidesmail.records.database import Database
from fidesmail.records.messages import Answer, MessageRecords, NewRecord, now_ms
from fidesmail.records.record_json import as_json
from fidesmail.records.schema import messages, outbox, outbox_gates

__all__ = ["FAIL", "GATE_THRESHOLD", "OPEN", "PARKED", "Claimed", "Queue", "Settlement", "Stats", "gave_up"]

_IN_QUEUE = (QUEUED, SENDING)

# The statements of every settle, built once and run on the driver's connection (records/direct.py).
_SETTLE = update(messages).where(
    messages.c.id == bindparam("m_id"), messages.c.status == SENDING, messages.c.lease_until == bindparam("m_lease"),
).values(status=bindparam("m_status"), attempts=bindparam("m_attempts"), updated_at=bindparam("m_now"),
         failure_reason=bindparam("m_reason"), lease_until=None,
         provider_message_id=func.coalesce(bindparam("m_provider_id", type_=messages.c.provider_message_id.type),
                                           messages.c.provider_message_id),
         provider=func.coalesce(bindparam("m_provider", type_=messages.c.provider.type), messages.c.provider),
         sent_via=func.coalesce(bindparam("m_sent_via", type_=messages.c.sent_via.type), messages.c.sent_via))
_DROP = delete(outbox).where(outbox.c.message_id == bindparam("o_id"))
_REQUEUE = update(outbox).where(outbox.c.message_id == bindparam("o_id")).values(
    due_at=bindparam("o_due"), last_error=bindparam("o_error"), attempts=outbox.c.attempts + bindparam("o_posted"))


# Queueing's statement alike (every 202 runs it).
_INSERT_OUTBOX = insert(outbox).values({column.name: bindparam(column.name) for column in outbox.c})
# Claiming's, alike (the drain runs them for every message; the ids are expanding parameters).
_COLUMNS = (outbox.c.message_id, outbox.c.config_key, outbox.c.created_at, outbox.c.attempts, outbox.c.payload)
_DUE = (select(*_COLUMNS).where(outbox.c.due_at <= bindparam("c_now"),  # of configs not paced (pacing.py)
                                outbox.c.config_key.not_in(bindparam("c_paced", expanding=True)))
        .order_by(outbox.c.due_at, outbox.c.message_id).limit(bindparam("c_limit")))
_NEXT_DUE = select(outbox.c.due_at).where(outbox.c.due_at < pacing.PACED).order_by(outbox.c.due_at).limit(1)
_DUE_SKIP_LOCKED = _DUE.with_for_update(skip_locked=True)
_HOLD = update(messages).where(messages.c.id.in_(bindparam("c_ids", expanding=True)), messages.c.status == QUEUED
                               ).values(status=SENDING, lease_until=bindparam("c_lease"), updated_at=bindparam("c_now"))
_HELD = select(messages.c.id, messages.c.attempts, messages.c.sent_via).where(
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
    attempts: int  # posts to the provider so far
    payload: bytes
    lease_until: int  # ms; also what proves the hold is still this worker's
    record_attempts: list = field(default_factory=list)  # the record's attempts so far
    gate_failures: int = 0  # the config's refusals in a row when it was claimed
    slot_us: int | None = None  # its config's rate-limit slot (pacing.py): not to be posted much later
    sent_via: str | None = None  # the config the record names as the one it goes to (failover moves it on)


@dataclass(frozen=True)
class Settlement:
    """The record's next state, and what happens to the gates of the configs it went through."""

    status: str  # a final status, or `queued` to be tried again at `next_at`
    attempts: tuple = ()  # this claim's attempts as the record keeps them (the configs of its chain it tried)
    provider_message_id: str | None = None
    provider: str | None = None  # the service type it was last posted to (None: nothing was posted)
    sent_via: str | None = None  # the config whose provider that is
    failure_reason: str | None = None
    next_at: int | None = None  # ms
    last_error: str | None = None
    gates: tuple[gates.GateChange, ...] = ()  # OPEN or FAIL per config tried (none: a fault of this message alone)

    @property
    def posted(self) -> int:
        """Posts to providers in this claim (an attempt that posted nothing is `not_sent`)."""
        return sum(1 for attempt in self.attempts if attempt["outcome"] != "not_sent")


@dataclass(frozen=True)
class Stats:
    """The queue as /health and /metrics show it."""

    queued: int
    sending: int
    oldest_queued_ms: int | None  # created_at of the oldest queued message


class Queue:
    """The outbox of one database (records.MessageRecords holds the message rows it moves)."""

    def __init__(self, database: Database, records: MessageRecords):
        self.database = database
        self.records = records
        self.sweeper = Sweeper(database)

    # -- queueing -----------------------------------------------------------------------------

    def enqueue(self, record: NewRecord, payload: bytes, idempotency: tuple[str, bytes] | None = None,
                parks: bool = True) -> Answer:
        """Store the record (`queued`) and its payload in one transaction: the 202 answer, kept for its
        Idempotency-Key; or, when another request holds the key, the answer kept for that one. `parks`: False for
        a config with a fallback (due now, even while its gate is closed)."""
        at = now_ms()
        row = {**self.records._row(record, at), "status": QUEUED, "lease_until": None}
        # The record as GET will show it: every column (None where not set), the inserted values over them.
        answer = Answer(QUEUED_FOR_LATER, as_json(SimpleNamespace(**{**dict.fromkeys(messages.c.keys()), **row})))
        if idempotency is not None:
            row.update(idempotency_key=self.records.key_digest(idempotency[0]), request_hmac=idempotency[1],
                       answer=answer.to_json())
        try:
            with self.database.write() as connection:
                self.records.insert(connection, row)  # within the limits (records/limits.py), or nothing
                direct.execute(connection, _INSERT_OUTBOX, {
                    "message_id": record.id, "config_key": record.config_key, "created_at": at,
                    "due_at": due_for_new(self.database, connection, record.config_key, at, parks), "attempts": 0,
                    "last_error": None, "payload": payload})
        except IntegrityError:  # another worker or replica holds the key: its answer
            if idempotency is None:
                raise
            return self.records.replay_of(*idempotency)
        return answer

    # -- claiming -----------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """When the next message is due (ms; maybe already past), None when none is waiting unparked:
        a retry come due, or a paced config's next slot. A read: an idle poll takes no write lock."""
        with self.database.read() as connection:
            due = connection.execute(_NEXT_DUE).scalar()
            slot = pacing.next_slot_ms(connection)
        return min(due, slot) if due is not None and slot is not None else due if slot is None else slot

    def claim(self, limit: int, lease_ms: int, rates: Mapping[str, float] | None = None) -> list[Claimed]:
        """Up to `limit` due messages, oldest first, now `sending` and this caller's until the lease ends.
        `rates`: the configs' rate limits (messages per second): theirs are claimed one free slot at a time."""
        now = now_ms()
        lease_until = now + lease_ms
        rates = rates or {}
        with self.database.write() as connection:
            rows = connection.execute(_DUE_SKIP_LOCKED, {"c_now": now, "c_limit": limit,
                                                         "c_paced": list(rates)}).all()
            rows, slots = pacing.admit(self.database, connection, rows, _COLUMNS, rates, now, limit)
            if not rows:
                return []
            ids = [row.message_id for row in rows]
            connection.execute(_HOLD, {"c_ids": ids, "c_lease": lease_until, "c_now": now})
            held = {row.id: row for row in connection.execute(_HELD, {"c_ids": ids, "c_lease": lease_until})}
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
                        json.loads(held[row.message_id].attempts or "[]"), failures.get(row.config_key, 0),
                        slots.get(row.message_id), held[row.message_id].sent_via)
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
            changes = [change for _, settlement in batch for change in settlement.gates]
            for change in sorted(changes, key=lambda change: change.config_key):  # the gates, in order
                if change.action == OPEN and change.config_key not in opened:
                    open_gate(connection, change.config_key)
                    opened.add(change.config_key)
                elif change.action == FAIL:
                    fail(self.database, connection, change, now)
                    opened.discard(change.config_key)
        return statuses

    def _settle_one(self, connection, claimed: Claimed, settlement: Settlement, now: int) -> str | None:
        attempts = claimed.record_attempts + list(settlement.attempts)
        held = direct.execute(connection, _SETTLE, {
            "m_id": claimed.message_id, "m_lease": claimed.lease_until, "m_status": settlement.status,
            "m_attempts": json.dumps(attempts), "m_now": now, "m_reason": settlement.failure_reason,
            "m_provider_id": settlement.provider_message_id, "m_provider": settlement.provider,
            "m_sent_via": settlement.sent_via})
        if not held:  # moved on meanwhile (a webhook's `accepted`, a lease that ran out)
            status = self._settle_late(connection, claimed, settlement, now)
            if status not in _IN_QUEUE:  # never the payload of a message still to be sent
                direct.execute(connection, _DROP, {"o_id": claimed.message_id})
            return status
        if settlement.status == QUEUED:
            direct.execute(connection, _REQUEUE, {"o_id": claimed.message_id, "o_due": settlement.next_at,
                                          "o_error": settlement.last_error, "o_posted": settlement.posted})
        else:
            direct.execute(connection, _DROP, {"o_id": claimed.message_id})
        return settlement.status

    def _settle_late(self, connection, claimed: Claimed, settlement: Settlement, now: int) -> str | None:
        """The record left `sending` without this worker: keep its attempt; move its status only forwards."""
        query = select(messages.c.status, messages.c.attempts, messages.c.provider_message_id).where(
            messages.c.id == claimed.message_id)
        row = connection.execute(query.with_for_update()).first()
        if row is None:
            return None
        values = {"attempts": json.dumps(json.loads(row.attempts or "[]") + list(settlement.attempts)),
                  "updated_at": now} if settlement.attempts else {"updated_at": now}
        if settlement.provider_message_id is not None and row.provider_message_id is None:
            values["provider_message_id"] = settlement.provider_message_id
        if settlement.provider is not None:
            values.update(provider=settlement.provider, sent_via=settlement.sent_via)
        status = row.status
        if settlement.status != QUEUED and RANK[settlement.status] > RANK[row.status]:
            status = settlement.status
            values.update(status=status, failure_reason=settlement.failure_reason, lease_until=None)
        connection.execute(update(messages).where(messages.c.id == claimed.message_id).values(**values))
        return status

    # -- cancelling -----------------------------------------------------------------------------

    def cancel(self, message_id: str):
        """A `queued` message becomes `cancelled` and its payload is deleted; the record's row.
        NotFound for no such message; Conflict for any other status (one being posted included)."""
        now = now_ms()
        with self.database.write() as connection:
            # The outbox row first (lock order): a claim in progress finishes before this reads.
            queued = connection.execute(select(outbox.c.message_id).where(
                outbox.c.message_id == message_id, outbox.c.due_at.is_not(None)).with_for_update()).first() is not None
            row = connection.execute(select(messages.c.status).where(
                messages.c.id == message_id).with_for_update()).first()
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

    def sweep(self, deadline_ms: int, full: bool = False, falls_back: frozenset[str] = frozenset()) -> dict[str, int]:
        """The outbox's housekeeping (outbox_sweep.py): expired leases, stray payloads, the deadline, the gates
        (`falls_back`: the configs with a fallback, whose queues never park)."""
        return self.sweeper.sweep(deadline_ms, full, falls_back)

    # -- failover (contract section 14) ----------------------------------------------------------

    def gate_states(self, config_keys) -> dict[str, gates.GateState]:
        """The gates of the configs of a chain, as they are now (a read)."""
        with self.database.read() as connection:
            return gates.states(connection, config_keys)

    def take_probe(self, config_key: str, now: int, hold_until: int) -> bool:
        """True when this caller probes the config's closed gate now (gates.take_probe)."""
        with self.database.write() as connection:
            return gates.take_probe(connection, config_key, now, hold_until)

    def moving_on(self, claimed: Claimed, attempts: list, provider: str, sent_via: str) -> bool:
        """Before posting to the next config of the chain: the record's attempts so far and where it goes now;
        False when the hold is no longer the caller's (then nothing may be posted)."""
        with self.database.write() as connection:
            return connection.execute(update(messages).where(
                messages.c.id == claimed.message_id, messages.c.status == SENDING,
                messages.c.lease_until == claimed.lease_until).values(
                attempts=json.dumps(claimed.record_attempts + attempts), provider=provider, sent_via=sent_via,
                updated_at=now_ms())).rowcount == 1

    # -- reading --------------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Queued and sending messages, and when the oldest queued one was created."""
        # One statement: two counts read apart could see a message move between them and count it twice.
        with self.database.read() as connection:
            queued, sending, oldest = connection.execute(select(
                func.count().filter(outbox.c.due_at.is_not(None)), func.count().filter(outbox.c.due_at.is_(None)),
                func.min(outbox.c.created_at).filter(outbox.c.due_at.is_not(None)))).one()
        return Stats(queued, sending, oldest)
