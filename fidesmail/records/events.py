"""Delivery events: the providers' verified reports about a message, kept once with what re-verifies them,
moving its status on.

One short write transaction per webhook post: find each event's message, keep the event once (the
provider's event id is unique per provider), and move the status forward only (a WHERE on the rank: a
later event never moves a status backwards). Mailgun signs the timestamp and the token, not the event,
so every verified Mailgun token is taken (a unique row) before the message is even looked up, whatever
the event says or matches: a verified signature re-posted with any other event, on any worker or
replica, is refused by the database itself and changes nothing. SendGrid, Mandrill and SNS sign the
whole post, which is kept once (webhook_posts.py) for the events it carried.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from fidesmail.core.outcomes import FAILED, RANK
from fidesmail.records import direct
from fidesmail.records.database import Database
from fidesmail.records.messages import iso, lower_than, now_ms
from fidesmail.records.schema import delivery_events, messages, webhook_posts, webhook_tokens
from fidesmail.records.webhook_posts import PostCipher, SignedPost, StoredPost

RECORDED, REPLAY, UNKNOWN_MESSAGE = "verified", "replay", "unknown_message"
MAILGUN = "mailgun"
_EVENT_FIELDS = ("id", "event", "occurred_at", "severity", "reason", "provider", "mailgun_timestamp",
                 "mailgun_token", "mailgun_signature")
_WITH_POSTS = delivery_events.outerjoin(webhook_posts, webhook_posts.c.id == delivery_events.c.post_id)
# Built once (GET one record runs it): the ids are an expanding parameter.
_OF_MESSAGES = (select(delivery_events, webhook_posts.c.signature.label("post_signature")).select_from(_WITH_POSTS)
                .where(delivery_events.c.message_id.in_(bindparam("ids", expanding=True)))
                .order_by(delivery_events.c.occurred_at, delivery_events.c.id))
# The record and its events in one round trip: a row per event (one with NULL event columns if none).
_RECORD_WITH_EVENTS = (
    select(messages, *(delivery_events.c[name].label("e_" + name) for name in _EVENT_FIELDS),
           webhook_posts.c.signature.label("e_post_signature"))
    .select_from(messages.outerjoin(_WITH_POSTS, delivery_events.c.message_id == messages.c.id))
    .where(messages.c.id == bindparam("r_id"))
    .order_by(delivery_events.c.occurred_at, delivery_events.c.id))
_TAKE = insert(webhook_tokens)


def take_token(connection, provider: str, token: str, at: int) -> None:
    """Take a verified token for good (IntegrityError when it was taken before: a replay)."""
    connection.execute(_TAKE, {"provider": provider, "token": token, "taken_at": at})


def forget_tokens(database: Database, before_ms: int) -> int:
    """Remove tokens taken before `before_ms` (their signatures are stale by then); how many."""
    with database.write() as connection:
        return connection.execute(delete(webhook_tokens).where(webhook_tokens.c.taken_at < before_ms)).rowcount


@functools.cache
def _insert_event_once(dialect: str):
    """INSERT of an event that does nothing when the provider's event id was kept before (no row returned: the
    rowcount of an INSERT ... RETURNING is -1 with psycopg, so the returned id tells)."""
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(delivery_events)
    return statement.on_conflict_do_nothing(index_elements=["provider", "event_key"]).returning(delivery_events.c.id)


@dataclass(frozen=True)
class Signature:
    """Mailgun's signature of an event (its block: timestamp, token, signature), kept verbatim."""

    timestamp: str
    token: str
    signature: str


@dataclass(frozen=True)
class Event:
    """One event as a record keeps it: no recipient, no URL, no content; normalised by its provider's package."""

    event: str  # the provider's name for it
    key: str  # the provider's id of the event: what makes it the same event twice
    occurred_at_ms: int | None
    status: str | None  # the status it reports (accepted, delivered, failed), None for an event only kept
    severity: str | None = None
    reason: str | None = None
    fidesmail_id: str | None = None  # the record's id, as the send carried it
    provider_ids: tuple[str, ...] = ()  # the provider's message id as its send answer gave it (or candidates)


@dataclass(frozen=True)
class Kept:
    """What became of one verified event: RECORDED, REPLAY or UNKNOWN_MESSAGE, and its message."""

    outcome: str
    message_id: str | None = None
    status: str | None = None  # the message's status afterwards (RECORDED only)


class DeliveryEvents:
    """The delivery events of one database."""

    def __init__(self, database: Database, posts: PostCipher):
        self.database = database
        self.posts = posts

    # -- writing ------------------------------------------------------------------------------

    def take(self, signature: Signature) -> bool:
        """Take a verified Mailgun token whose event is not recorded (it is not one); False when taken before."""
        try:
            with self.database.write() as connection:
                take_token(connection, MAILGUN, signature.token, now_ms())
        except IntegrityError:
            return False
        return True

    def record(self, config_key: str, event: Event, signature: Signature) -> Kept:
        """Take the verified Mailgun token, then keep its event for the message it names (`config_key`'s only)."""
        at = now_ms()
        try:
            with self.database.write() as connection:
                take_token(connection, MAILGUN, signature.token, at)  # first: whatever the event says or matches
                row = self._message_of(connection, MAILGUN, config_key, event)
                if row is None:
                    return Kept(UNKNOWN_MESSAGE)  # the token stays taken (committed as the block ends)
                connection.execute(insert(delivery_events).values(
                    **self._columns(row.id, config_key, MAILGUN, event, at, int(signature.timestamp) * 1000),
                    mailgun_timestamp=signature.timestamp, mailgun_token=signature.token,
                    mailgun_signature=signature.signature))
                status = self._advance(connection, row, event, at)
        except IntegrityError:  # the token was seen before: nothing is recorded twice
            return Kept(REPLAY)
        return Kept(RECORDED, row.id, status)

    def record_post(self, provider: str, config_key: str, events: Sequence[Event], post: SignedPost) -> list[Kept]:
        """Keep each event of a verified post once, for the message it names (`config_key`'s only), with the post
        that re-verifies it; in one transaction."""
        at = now_ms()
        kept: list[Kept] = []
        with self.database.write() as connection:
            post_id = None
            insert_once = _insert_event_once(connection.dialect.name)
            for event in events:
                row = self._message_of(connection, provider, config_key, event)
                if row is None:
                    kept.append(Kept(UNKNOWN_MESSAGE))
                    continue
                if post_id is None:  # kept only when one of its events is
                    post_id = self.posts.keep(connection, provider, config_key, post, at)
                inserted = connection.execute(insert_once.values(
                    **self._columns(row.id, config_key, provider, event, at, at), post_id=post_id)).first()
                if inserted is None:
                    kept.append(Kept(REPLAY))
                    continue
                kept.append(Kept(RECORDED, row.id, self._advance(connection, row, event, at)))
            if post_id is not None and not any(k.outcome == RECORDED for k in kept):
                connection.execute(delete(webhook_posts).where(webhook_posts.c.id == post_id))
        return kept

    @staticmethod
    def _columns(message_id: str, config_key: str, provider: str, event: Event, at: int, fallback_ms: int) -> dict:
        return {"message_id": message_id, "config_key": config_key, "provider": provider, "event_key": event.key,
                "event": event.event, "severity": event.severity, "reason": event.reason,
                "occurred_at": event.occurred_at_ms or fallback_ms, "received_at": at}

    @staticmethod
    def _message_of(connection, provider: str, config_key: str, event: Event):
        """The message an event names, by the record's id the send carried, else by the provider's message id;
        a message of `config_key` (asked for, or sent through it after a failover) only."""
        wanted = select(messages.c.id, messages.c.config_key, messages.c.sent_via, messages.c.status)
        row = None
        if event.fidesmail_id is not None:
            row = connection.execute(wanted.where(messages.c.id == event.fidesmail_id)).first()
        if row is None and event.provider_ids:
            row = connection.execute(wanted.where(messages.c.provider_message_id.in_(event.provider_ids),
                                                  messages.c.provider == provider)
                                     .order_by(messages.c.created_at).limit(1)).first()
        if row is None or config_key not in (row.config_key, row.sent_via):
            return None
        return row

    @staticmethod
    def _advance(connection, row, event: Event, at: int) -> str:
        """Move the message to the event's status if that is further along; its status afterwards."""
        status = event.status
        if status is None or RANK[status] <= RANK[row.status]:
            return row.status
        reason = (event.reason or f"the provider reported {event.event} (it gave no reason)") \
            if status == FAILED else None
        moved = connection.execute(
            update(messages)
            .where(messages.c.id == row.id, messages.c.status.in_(lower_than(status)))
            .values(status=status, failure_reason=reason, updated_at=at)).rowcount
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
        with self.database.read() as connection:  # direct: ~20 us less on SQLite, ~85 us on PostgreSQL
            rows = direct.rows(connection, _RECORD_WITH_EVENTS, {"r_id": message_id})
        if not rows:
            return None, []
        events = [as_json(SimpleNamespace(post_signature=row.e_post_signature,
                                          **{column: getattr(row, "e_" + column) for column in _EVENT_FIELDS}))
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

    def post(self, post_id: int) -> StoredPost | None:
        """A kept webhook post, its signed bytes opened (for verifying its events again)."""
        with self.database.read() as connection:
            return self.posts.load(connection, post_id)


def as_json(row) -> dict:
    """One event as GET /api/v1/email/messages/{id} shows it (contract sections 9 and 15): the provider's
    signature with it (Mailgun's triple also as `mailgun`, as section 9 shows it)."""
    shown = {"event": row.event, "at": iso(row.occurred_at), "severity": row.severity, "reason": row.reason,
             "provider": row.provider}
    if row.provider == MAILGUN:
        triple = {"timestamp": row.mailgun_timestamp, "token": row.mailgun_token, "signature": row.mailgun_signature}
        shown.update(signature=triple, mailgun=triple)
    else:
        shown["signature"] = json.loads(row.post_signature) if row.post_signature else None
    return shown
