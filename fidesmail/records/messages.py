"""Message records: written before anything reaches a provider, updated with each attempt, found, purged.

The Idempotency-Key ledger is part of the records: a send with a key claims it by inserting its record
(the key's column is unique), so two workers or replicas racing with one key cannot both send; a later
request with that key and body is answered from the record instead of sending again. Keys and request
fingerprints are HMACs under the content key (privacy.py); a key recorded before they were keyed is
still found by its plain SHA-256 and, its request no longer comparable, never sends again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import String, Text, and_, bindparam, case, delete, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fidesmail.core import outcomes
from fidesmail.core.exceptions import Invalid, problem
from fidesmail.core.outcomes import QUEUED, RANK, SENDING, STATUSES, UNKNOWN
from fidesmail.records import direct, limits, pacing
from fidesmail.records.database import Database
from fidesmail.records.privacy import ContentKey
from fidesmail.records.schema import callbacks, delivery_events, messages, webhook_posts


def lower_than(status: str) -> tuple[str, ...]:
    """The statuses a message may leave for `status` (the ones not as far along)."""
    return tuple(other for other in STATUSES if RANK[other] < RANK[status])


def further_than(status: str) -> tuple[str, ...]:
    """The statuses `status` must not replace: a delivery event may have arrived before the send's answer."""
    return tuple(other for other in STATUSES if RANK[other] > RANK[status])

INTERRUPTED = ("An earlier request with this Idempotency-Key was interrupted before its outcome was recorded; "
               "the message may have been sent, so it is not sent again. Send with a new Idempotency-Key "
               "to send it anyway.")
_STOPPED = "the worker sending it stopped before the provider's answer was recorded; the provider may have it"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# The hot path's statements, built once: values go to execute() as parameters, so each call skips
# building a statement and its cache key (on SQLite, most of what an INSERT costs).
_GET = select(messages).where(messages.c.id == bindparam("r_id"))
_SETTLE_KEY = select(messages.c.id, messages.c.request_hmac, messages.c.answer, messages.c.status,
                     messages.c.lease_until).where(messages.c.idempotency_key.in_(bindparam("r_keys", expanding=True)))


@functools.cache
def _insert_statement(columns: tuple[str, ...]):
    """INSERT of a record row with these columns (run through records/direct.py: the columns' Python defaults
    are written out, as SQLAlchemy's own execute would fill them in)."""
    values = {name: bindparam(name) for name in columns}
    for column in messages.c:
        if column.name not in values and column.default is not None and column.default.is_scalar:
            values[column.name] = column.default.arg
    return insert(messages).values(values)


@functools.cache
def _finish_statement(status: str, keep_answer: bool, release_key: bool):
    """UPDATE for one outcome: the status never lowered (see further_than), the answer kept or the key released."""
    # Written as ORs of single values, not IN: records/direct.py compiles it once, with no expanding bind.
    kept = or_(false(), *(messages.c.status == other for other in further_than(status)))
    values = {"status": case((kept, messages.c.status), else_=status),
              "failure_reason": case((kept, messages.c.failure_reason), else_=bindparam("r_reason", type_=Text)),
              "attempts": bindparam("r_attempts"), "provider_message_id": bindparam("r_provider_id"),
              "provider": func.coalesce(bindparam("r_provider", type_=String), messages.c.provider),
              "sent_via": func.coalesce(bindparam("r_sent_via", type_=String), messages.c.sent_via),
              "updated_at": bindparam("r_now"), "lease_until": None}
    if keep_answer:
        values["answer"] = bindparam("r_answer")
    if release_key:
        values.update(idempotency_key=None, request_hmac=None)
    return update(messages).where(messages.c.id == bindparam("r_id")).values(values)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_message_id(at_ms: int | None = None) -> str:
    """msg_ + a ULID (48 bits of milliseconds, 80 random bits, Crockford base32): unique, sorted by time."""
    value = ((at_ms if at_ms is not None else now_ms()) << 80) | secrets.randbits(80)
    return "msg_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def iso(ms: int | None) -> str | None:
    """2026-12-01T08:00:00.000Z"""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def legacy_key_hash(idempotency_key: str) -> bytes:
    """How records written before 0003_keyed_digests hold their Idempotency-Key: a plain SHA-256."""
    return hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).digest()


# Answers kept before results had names held the HTTP status (rows within the retention period).
_RESULT_OF_STATUS = {200: outcomes.SENT, 202: outcomes.QUEUED_FOR_LATER, 502: outcomes.REFUSED, 504: outcomes.TIMEOUT}


@dataclass(frozen=True)
class Answer:
    """What a send came to (core.outcomes' result) and the body that says so: kept for an Idempotency-Key."""

    result: str
    body: dict

    def to_json(self) -> str:
        return json.dumps({"result": self.result, "body": self.body}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Answer:
        stored = json.loads(text)
        if "result" in stored:
            return cls(stored["result"], stored["body"])
        return cls(_RESULT_OF_STATUS.get(stored["status"], outcomes.REFUSED), stored["body"])


@dataclass
class NewRecord:
    """What is known of a message before it is sent."""

    config_key: str
    action_type: str
    to_masked: str
    to_digest: bytes
    content_digest: bytes | None
    reference: str | None = None
    test_mode: bool = False
    resend_of: str | None = None
    provider: str | None = None  # the service type it goes to (the config's provider)
    sent_via: str | None = None  # the config it goes to first (its own, unless that one cannot be used now)
    status: str = SENDING
    lease_ms: int = 0  # how long the sender may take before the record is `unknown`
    callback: bool = False  # its config names a callback: each status change is POSTed there (section 15)
    id: str = field(default_factory=new_message_id)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an Idempotency-Key: a record to send with, or an answer to replay."""

    record_id: str | None = None
    replay: Answer | None = None
    slot_us: int | None = None  # the rate-limit slot taken for its first post (records/pacing.py), if paced


class KeyReused(Invalid):
    """The Idempotency-Key was first used with another request body (or before requests were keyed)."""

    def __init__(self, message: str = "this Idempotency-Key was already used with a different request body."):
        super().__init__([problem(["header", "Idempotency-Key"], message)])


_LEGACY_KEY = ("this Idempotency-Key was used before this version of fidesmail, which no longer keeps what "
               "its request was; so that nothing is sent twice, nothing is sent: use a new Idempotency-Key.")


class MessageRecords:
    """The records of one database."""

    def __init__(self, database: Database, content_key: ContentKey, wait_for_key: float = 35.0,
                 poll_interval: float = 0.05, verification_limit: int = 0):
        self.database = database
        self.content_key = content_key  # the Idempotency-Keys' HMAC
        self.wait_for_key = wait_for_key  # how long a request waits for another with the same key
        self.poll_interval = poll_interval
        self.verification_limit = verification_limit  # per address per hour (limits.py); 0: none

    # -- writing ------------------------------------------------------------------------------

    def _row(self, record: NewRecord, at: int) -> dict:
        return {
            "id": record.id, "config_key": record.config_key, "action_type": record.action_type,
            "reference": record.reference, "to_masked": record.to_masked, "to_digest": record.to_digest,
            "status": record.status, "created_at": at, "updated_at": at, "content_hmac": record.content_digest,
            "attempts": "[]", "test_mode": int(record.test_mode), "resend_of": record.resend_of,
            "lease_until": at + record.lease_ms if record.lease_ms else None,
            "provider": record.provider, "sent_via": record.sent_via or record.config_key,
            "callback": int(record.callback),
        }

    def create(self, record: NewRecord, pace: pacing.Pace | None = None) -> int | None:
        """Store a record (durably, before the message goes anywhere), and with a `pace` take the slot of its
        first post: that slot (µs), or None when not paced. TooManyRequests (and no record, no slot) when
        a limit refuses it."""
        with self.database.write() as connection:
            return self.insert(connection, self._row(record, now_ms()), pace)

    def insert(self, connection, row: dict, pace: pacing.Pace | None = None) -> int | None:
        """Write a record's row in the caller's transaction, within the limits the records keep (limits.py,
        pacing.py): a refusal rolls the transaction back, so the refused request leaves no record and
        takes no slot. The slot taken for its first post (µs), if paced."""
        counted = limits.counted(row["action_type"], self.verification_limit)
        if counted:
            limits.lock_address(self.database, connection, row["to_digest"])
        direct.execute(connection, _insert_statement(tuple(row)), row)  # first: a taken key is a replay, not a refusal
        if counted:
            limits.check(connection, row["to_digest"], self.verification_limit, row["created_at"])
        return pacing.take_within(self.database, connection, pace) if pace is not None else None

    def key_digest(self, idempotency_key: str) -> bytes:
        """What the ledger's key column holds for `idempotency_key`."""
        return self.content_key.idempotency_digest(idempotency_key)

    def replay_of(self, idempotency_key: str, request_digest: bytes) -> Answer | None:
        """The answer kept for a key used before (waiting while another request still sends with it), or None."""
        return self._settle(idempotency_key, request_digest, wait=True)

    def claim(self, record: NewRecord, idempotency_key: str, request_digest: bytes,
              pace: pacing.Pace | None = None) -> Claim:
        """Store `record` holding the key (and take its first slot, as create does); or, when the key is
        taken meanwhile, what to answer instead."""
        row = self._row(record, now_ms())
        row.update(idempotency_key=self.key_digest(idempotency_key), request_hmac=request_digest)
        try:
            with self.database.write() as connection:
                slot = self.insert(connection, row, pace)
        except IntegrityError:  # another worker or replica claimed the key first
            return Claim(replay=self._settle(idempotency_key, request_digest, wait=True))
        return Claim(record_id=record.id, slot_us=slot)

    def _settle(self, idempotency_key: str, request_digest: bytes, wait: bool) -> Answer | None:
        deadline = time.monotonic() + (self.wait_for_key if wait else 0)
        # Found by its HMAC, or by the plain SHA-256 a record written before keyed digests holds.
        wanted = {"r_keys": [self.key_digest(idempotency_key), legacy_key_hash(idempotency_key)]}
        while True:
            with self.database.read() as connection:
                row = connection.execute(_SETTLE_KEY, wanted).first()
            if row is None:
                return None
            if row.request_hmac is None:
                raise KeyReused(_LEGACY_KEY)
            if row.request_hmac != request_digest:
                raise KeyReused()
            if row.answer is not None:
                return Answer.from_json(row.answer)
            expired = row.lease_until is not None and row.lease_until < now_ms()
            # A delivery event may move a message on while its sender still waits for the provider (lease held).
            settled = row.status not in (QUEUED, SENDING) and row.lease_until is None
            if expired or settled or time.monotonic() >= deadline:
                return Answer(outcomes.INTERRUPTED, {"detail": INTERRUPTED})
            time.sleep(self.poll_interval)

    def add_attempt(self, record_id: str, attempt: Mapping) -> None:
        """Keep one attempt's outcome (while the message is still being retried)."""
        with self.database.write() as connection:
            current = connection.execute(select(messages.c.attempts).where(messages.c.id == record_id)).scalar()
            attempts = json.loads(current or "[]") + [dict(attempt)]
            connection.execute(update(messages).where(messages.c.id == record_id).values(
                attempts=json.dumps(attempts), updated_at=now_ms()))

    def moving_on(self, record_id: str, attempts: list[Mapping], provider: str, sent_via: str) -> None:
        """The attempts so far, and the config and provider the message goes to next (failover), kept before it
        is posted there: a sender killed meanwhile leaves a record that names where the message may be."""
        with self.database.write() as connection:
            connection.execute(update(messages).where(messages.c.id == record_id).values(
                attempts=json.dumps([dict(a) for a in attempts]), provider=provider, sent_via=sent_via,
                updated_at=now_ms()))

    def finish(self, record_id: str, *, status: str, attempts: list[Mapping], provider_message_id: str | None = None,
               failure_reason: str | None = None, answer: Answer | None = None, keep_key: bool = True,
               provider: str | None = None, sent_via: str | None = None) -> None:
        """The outcome of the send: its status, every attempt, the provider and config that took it (or were tried
        last), and the answer to replay (or the key released)."""
        keep_answer = answer is not None and keep_key
        parameters = {"r_id": record_id, "r_reason": failure_reason, "r_provider_id": provider_message_id,
                      "r_now": now_ms(), "r_provider": provider, "r_sent_via": sent_via,
                      "r_attempts": json.dumps([dict(a) for a in attempts])}
        if keep_answer:
            parameters["r_answer"] = answer.to_json()
        with self.database.write() as connection:  # not keep_key: no provider saw it, the key may send it again
            direct.execute(connection, _finish_statement(status, keep_answer, not keep_key), parameters)

    def reserve_content_check(self, record_id: str, limit: int) -> bool:
        """Count one content check against the record's limit before it is made; False once `limit` is spent.

        Counted first and given back on a match (`content_matched`), so that no number of checks made at once
        answers more than `limit` mismatches: the check cannot be used to guess a one-time code."""
        with self.database.write() as connection:
            return connection.execute(
                update(messages).where(messages.c.id == record_id, messages.c.content_mismatches < limit)
                .values(content_mismatches=messages.c.content_mismatches + 1)).rowcount == 1

    def content_matched(self, record_id: str) -> None:
        """A reserved check that matched: it does not count against the limit."""
        with self.database.write() as connection:
            connection.execute(update(messages).where(messages.c.id == record_id, messages.c.content_mismatches > 0)
                               .values(content_mismatches=messages.c.content_mismatches - 1))

    def expire_leases(self) -> int:
        """Records whose sender stopped (a killed worker) become `unknown`: never sent again on their own."""
        at = now_ms()
        with self.database.write() as connection:
            return connection.execute(
                update(messages)
                .where(and_(messages.c.status == SENDING, messages.c.lease_until < at))
                .values(status=UNKNOWN, failure_reason=_STOPPED, updated_at=at, lease_until=None)).rowcount

    def purge(self, older_than_ms: int) -> int:
        """Remove records created before `older_than_ms`, with their events, the webhook posts only they used (the
        signed bytes name the recipient) and callbacks still waiting; how many records."""
        with self.database.write() as connection:
            old = select(messages.c.id).where(messages.c.created_at < older_than_ms)
            connection.execute(delete(delivery_events).where(delivery_events.c.message_id.in_(old)))
            connection.execute(delete(callbacks).where(callbacks.c.message_id.in_(old)))
            connection.execute(delete(webhook_posts).where(webhook_posts.c.id.not_in(
                select(delivery_events.c.post_id).where(delivery_events.c.post_id.is_not(None)))))
            return connection.execute(delete(messages).where(messages.c.created_at < older_than_ms)).rowcount

    # -- reading ------------------------------------------------------------------------------

    def get(self, record_id: str):
        """The row of one record, or None."""
        with self.database.read() as connection:
            found = direct.rows(connection, _GET, {"r_id": record_id})
        return found[0] if found else None

    def of_reference(self, reference: str, limit: int) -> list:
        """The records of one reference, oldest first, at most `limit` of them."""
        query = (select(messages).where(messages.c.reference == reference)
                 .order_by(messages.c.created_at, messages.c.id).limit(limit))
        with self.database.read() as connection:
            return connection.execute(query).all()

    def page(self, filters: Mapping, page: int, size: int) -> tuple[list, int]:
        """One page of records, newest first, and how many match."""
        conditions = [getattr(messages.c, column) == value for column, value in filters.items()
                      if column not in ("since", "until") and value is not None]
        if filters.get("since") is not None:
            conditions.append(messages.c.created_at >= filters["since"])
        if filters.get("until") is not None:
            conditions.append(messages.c.created_at < filters["until"])
        where = and_(*conditions) if conditions else None
        listing = select(messages).order_by(messages.c.created_at.desc(), messages.c.id.desc())
        counting = select(func.count()).select_from(messages)
        if where is not None:
            listing, counting = listing.where(where), counting.where(where)
        with self.database.read() as connection:
            rows = connection.execute(listing.limit(size).offset((page - 1) * size)).all()
            total = connection.execute(counting).scalar()
        return rows, total
