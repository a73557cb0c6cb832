"""Keeping the records database in shape: schema at start, the instance keys agreed, leases expired, retention.

Every process may run these (the statements are idempotent), so replicas need no coordinator. The loops that
run them are the runtime's (`runtime/loops`).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import insert, select

from fidesmail.core.exceptions import Unavailable
from fidesmail.records.database import Database
from fidesmail.records.events import forget_tokens
from fidesmail.records.messages import MessageRecords, now_ms
from fidesmail.records.privacy import InstanceKey
from fidesmail.records.schema import meta

log = logging.getLogger("fidesmail.records")

DAY_MS = 24 * 3600 * 1000


def agree_on_key(database: Database, key: InstanceKey) -> str | None:
    """Replicas sharing a database must share its keys: with another records key `?to=` misses the others'
    records, with another content key their Idempotency-Keys, fingerprints and content digests."""
    with database.write() as connection:
        stored = connection.execute(select(meta.c.value).where(meta.c.name == key.meta_name)).scalar()
        if stored is None:
            connection.execute(insert(meta).values(name=key.meta_name, value=key.key_id))
            return None
    if stored != key.key_id:
        return (f"the {key.what} {key.path} (key id {key.key_id}) is not the one this database's records were "
                f"written with (key id {stored}): give every replica the same {key.path.name} file")
    return None


def housekeeping(records: MessageRecords, retention_days: int) -> None:
    """Expire the leases of senders that stopped; remove records past their retention (logged with a count),
    and webhook tokens taken more than a day ago (stale anyway)."""
    expired = records.expire_leases()
    if expired:
        log.warning("%d message(s) were being sent by a process that stopped: now unknown (never sent again "
                    "on their own; see their records)", expired)
    removed = records.purge(now_ms() - retention_days * DAY_MS)
    if removed:
        log.info("removed %d message record(s) older than %d days (FIDESMAIL_RECORD_RETENTION_DAYS)",
                 removed, retention_days, extra={"removed": removed})
    forget_tokens(records.database, now_ms() - DAY_MS)


class Maintenance:
    """The records' readiness (schema, key), prepared at start, and the housekeeping a background loop runs.

    `prepare` (the schema migrated, the instance keys agreed) runs at start, and again from the readiness loop
    while it has not succeeded; `ready` only reads its outcome, so no request ever runs a migration."""

    def __init__(self, database: Database, records: MessageRecords, keys: tuple[InstanceKey, ...],
                 retention_days: int):
        self.database = database
        self.records = records
        self.keys = keys
        self.retention_days = retention_days
        self.problem: str | None = "not prepared yet"
        self._lock = threading.Lock()

    def prepare(self) -> str | None:
        """The instance keys, the schema, the keys agreed with other replicas, then housekeeping.

        Returns (and keeps) why records cannot be kept: logged, and sends answer 503 until it is fixed."""
        with self._lock:
            before, self.problem = self.problem, self._prepare()
            if self.problem is not None and self.problem != before:  # said once, not at every try
                log.error("%s (configs are served; sends answer 503 until it is fixed)", self.problem)
            return self.problem

    def _prepare(self) -> str | None:
        for key in self.keys:
            try:
                key.ensure()
                key.key()
            except (OSError, ValueError) as exc:
                return f"the {key.what} {key.path} cannot be used: {getattr(exc, 'strerror', None) or exc}"
        try:
            self.database.upgrade()
            for key in self.keys:
                problem = agree_on_key(self.database, key)
                if problem:
                    return problem
            housekeeping(self.records, self.retention_days)
        except Unavailable as exc:
            return exc.detail
        return None

    def check(self) -> str | None:
        """Why records cannot be kept now (the readiness loop's check): the start's preparation, tried again
        while it has not succeeded, then whether the database answers."""
        if self.problem is not None:
            self.prepare()
        return self.problem or self.database.check()

    def ready(self) -> None:
        """Unavailable while records cannot be kept (a send must not go out unrecorded); reads state only."""
        if self.problem is not None:
            raise Unavailable(f"Nothing was sent: message records cannot be kept: {self.problem}")

    def housekeep(self) -> None:
        """One round of housekeeping (a background loop's step); a database that is down skips it."""
        if self.problem is not None:
            return  # not prepared: the readiness loop tries that
        try:
            housekeeping(self.records, self.retention_days)
        except Unavailable as exc:
            log.warning("records housekeeping skipped: %s", exc.detail)
