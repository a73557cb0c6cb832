"""Delivery events: Mailgun's verified reports about a message, kept with their signatures, moving its status on.

One short write transaction per event: take its token, find the message, keep the event, and move the
status forward only (a WHERE on the rank: a later event never moves a status backwards). Mailgun signs
the timestamp and the token, not the event, so every verified token is taken (a unique row) before the
message is even looked up, whatever the event says or matches: a verified signature re-posted with any
other event, on any worker or replica, is refused by the database itself and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from fidesmail.core.outcomes import ACCEPTED, DELIVERED, FAILED, RANK
from fidesmail.records.database import Database
from fidesmail.records.messages import iso, lower_than, now_ms
from fidesmail.records.schema import delivery_events, messages, webhook_tokens

RECORDED, REPLAY, UNKNOWN_MESSAGE = "verified", "replay", "unknown_message"
# Built once (GET one record runs it): the ids are an expanding parameter.
_OF_MESSAGES = (select(delivery_events).where(delivery_events.c.message_id.in_(bindparam("ids", expanding=True)))
                .order_by(delivery_events.c.occurred_at, delivery_events.c.id))
# The record and its events in one round trip: a row per event (one with NULL event columns if none).
_EVENT_FIELDS = ("id", "event", "occurred_at", "severity", "reason", "mailgun_timestamp", "mailgun_token",
                 "mailgun_signature")
_RECORD_WITH_EVENTS = (
    select(messages, *(delivery_events.c[name].label("e_" + name) for name in _EVENT_FIELDS))
    .select_from(messages.outerjoin(delivery_events, delivery_events.c.message_id == messages.c.id))
    .where(messages.c.id == bindparam("r_id"))
    .order_by(delivery_events.c.occurred_at, delivery_events.c.id))
_NO_REASON = "Mailgun reported a permanent failure (it gave no reason)"
_TAKE = insert(webhook_tokens)
MAILGUN = "mailgun"


def take_token(connection, provider: str, token: str, at: int) -> None:
    """Take a verified token for good (IntegrityError when it was taken before: a replay)."""
    connection.execute(_TAKE, {"provider": provider, "token": token, "taken_at": at})


def forget_tokens(database: Database, before_ms: int) -> int:
    """Remove tokens taken before `before_ms` (their signatures are stale by then); how many."""
    with database.write() as connection:
        return connection.execute(delete(webhook_tokens).where(webhook_tokens.c.taken_at < before_ms)).rowcount


@dataclass(frozen=True)
class Signature:
    """The provider's signature of an event (Mailgun's block: timestamp, token, signature), kept verbatim."""

    timestamp: str
    token: str
    signature: str


@dataclass(frozen=True)
class Event:
    """One event as a record keeps it: no recipient, no URL, no content."""

    event: str
    occurred_at_ms: int | None
    severity: str | None
    reason: str | None
    fidesmail_id: str | None  # user-variables.fidesmail-message-id
    mailgun_id: str | None  # message.headers.message-id, in angle brackets as Mailgun's send answer has it

    @property
    def permanent_failure(self) -> bool:
        return self.event == "failed" and self.severity == "permanent"


def status_after(event: Event) -> str | None:
    """The status an event reports (contract section 10), or None for events that are only kept."""
    if event.event == "accepted":
        return ACCEPTED
    if event.event == "delivered":
        return DELIVERED
    if event.permanent_failure:
        return FAILED
    return None


@dataclass(frozen=True)
class Kept:
    """What became of one verified event: RECORDED, REPLAY or UNKNOWN_MESSAGE, and its message."""

    outcome: str
    message_id: str | None = None
    status: str | None = None  # the message's status afterwards (RECORDED only)


class DeliveryEvents:
    """The delivery events of one database."""

    def __init__(self, database: Database):
        self.database = database

    def take(self, signature: Signature) -> bool:
        """Take a verified token whose event is not recorded (it is not one); False when it was taken before."""
        try:
            with self.database.write() as connection:
                take_token(connection, MAILGUN, signature.token, now_ms())
        except IntegrityError:
            return False
        return True

    def record(self, config_key: str, event: Event, signature: Signature) -> Kept:
        """Take the verified token, then keep its event for the message it names (a message of `config_key` only:
        the config it was sent with, or the fallback whose provider took it, contract section 14)."""
        at = now_ms()
        try:
            with self.database.write() as connection:
                take_token(connection, MAILGUN, signature.token, at)  # first: whatever the event says or matches
                row = self._message_of(connection, event)
                if row is None or config_key not in (row.config_key, row.sent_via):
                    return Kept(UNKNOWN_MESSAGE)  # the token stays taken (committed as the block ends)
                connection.execute(insert(delivery_events).values(
                    message_id=row.id, config_key=config_key, event=event.event, severity=event.severity,
                    reason=event.reason, occurred_at=event.occurred_at_ms or int(signature.timestamp) * 1000,
                    received_at=at, mailgun_timestamp=signature.timestamp, mailgun_token=signature.token,
                    mailgun_signature=signature.signature))
                status = self._advance(connection, row, status_after(event), event.reason, at)
        except IntegrityError:  # the token was seen before: nothing is recorded twice
            return Kept(REPLAY)
        return Kept(RECORDED, row.id, status)

    @staticmethod
    def _message_of(connection, event: Event):
        """The message an event names: by fidesmail's id (its user variable), else by Mailgun's message id."""
        wanted = select(messages.c.id, messages.c.config_key, messages.c.sent_via, messages.c.status)
        if event.fidesmail_id is not None:
            row = connection.execute(wanted.where(messages.c.id == event.fidesmail_id)).first()
            if row is not None:
                return row
        if event.mailgun_id is not None:
            return connection.execute(wanted.where(messages.c.provider_message_id == event.mailgun_id,
                                                   messages.c.provider == "mailgun")
                                      .order_by(messages.c.created_at).limit(1)).first()
        return None

    @staticmethod
    def _advance(connection, row, status: str | None, reason: str | None, at: int) -> str:
        """Move the message to `status` if that is further along; its status afterwards."""
        if status is None or RANK[status] <= RANK[row.status]:
            return row.status
        moved = connection.execute(
            update(messages)
            .where(messages.c.id == row.id, messages.c.status.in_(lower_than(status)))
            .values(status=status, failure_reason=(reason or _NO_REASON) if status == FAILED else None,
                    updated_at=at)).rowcount
        return status if moved else row.status

    # -- reading ------------------------------------------------------------------------------

    def for_messages(self, message_ids: Iterable[str]) -> dict[str, list[dict]]:
        """The events of each message, in the order they happened, as the API shows them."""
        ids = list(message_ids)
        found: dict[str, list[dict]] = {message_id: [] for message_id in ids}
        if not ids:
            return found
        with self.database.read() as connection:
            rows = connection.execute(_OF_MESSAGES, {"ids": ids}).all()
        for row in rows:
            found[row.message_id].append(as_json(row))
        return found

    def with_record(self, message_id: str) -> tuple:
        """A message's record row (None if there is none) and its events: one query (GET one record)."""
        with self.database.read() as connection:
            rows = connection.execute(_RECORD_WITH_EVENTS, {"r_id": message_id}).all()
        if not rows:
            return None, []
        events = [as_json(SimpleNamespace(**{column: getattr(row, "e_" + column) for column in _EVENT_FIELDS}))
                  for row in rows if row.e_id is not None]
        return rows[0], events  # the record's columns under their own names

    def stored(self, message_id: str | None = None, batch: int = 500) -> Iterator:
        """Every stored event (or one message's), oldest first, read in batches."""
        after = 0
        while True:
            query = select(delivery_events).where(delivery_events.c.id > after)
            if message_id is not None:
                query = query.where(delivery_events.c.message_id == message_id)
            with self.database.read() as connection:
                rows = connection.execute(query.order_by(delivery_events.c.id).limit(batch)).all()
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id


def as_json(row) -> dict:
    """One event as GET /api/v1/email/messages/{id} shows it (contract section 9)."""
    return {"event": row.event, "at": iso(row.occurred_at), "severity": row.severity, "reason": row.reason,
            "mailgun": {"timestamp": row.mailgun_timestamp, "token": row.mailgun_token,
                        "signature": row.mailgun_signature}}

