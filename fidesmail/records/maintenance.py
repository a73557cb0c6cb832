"""Keeping the records database in shape: schema at start, the records key agreed, leases expired, retention.

Every process may run these (the statements are idempotent), so replicas need no coordinator. The loops that
run them are the runtime's (`runtime/loops`).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import insert, select

from fidesmail.core.exceptions import Unavailable
from fidesmail.records.database import Database
from fidesmail.records.messages import MessageRecords, now_ms
from fidesmail.records.privacy import RecordsKey
from fidesmail.records.schema import meta

log = logging.getLogger("fidesmail.records")

_KEY_ID = "records_key_id"
DAY_MS = 24 * 3600 * 1000


def agree_on_key(database: Database, key: RecordsKey) -> str | None:
    """Replicas sharing a database must share the records key, or `?to=` misses the others' records."""
    with database.write() as connection:
        stored = connection.execute(select(meta.c.value).where(meta.c.name == _KEY_ID)).scalar()
        if stored is None:
            connection.execute(insert(meta).values(name=_KEY_ID, value=key.key_id))
            return None
    if stored != key.key_id:
        return (f"the records key {key.path} (key id {key.key_id}) is not the one this database's records were "
                f"written with (key id {stored}): give every replica the same records key file")
    return None


def housekeeping(records: MessageRecords, retention_days: int) -> None:
    """Expire the leases of senders that stopped; remove records past their retention (logged with a count)."""
    expired = records.expire_leases()
    if expired:
        log.warning("%d message(s) were being sent by a process that stopped: now unknown (never sent again "
                    "on their own; see their records)", expired)
    removed = records.purge(now_ms() - retention_days * DAY_MS)
    if removed:
        log.info("removed %d message record(s) older than %d days (FIDESMAIL_RECORD_RETENTION_DAYS)",
                 removed, retention_days, extra={"removed": removed})


class Maintenance:
    """The records' readiness (schema, key), prepared at start, and the housekeeping a background loop runs.

    `prepare` (the schema migrated, the records key agreed) runs at start, and again from the readiness loop
    while it has not succeeded; `ready` only reads its outcome, so no request ever runs a migration."""

    def __init__(self, database: Database, records: MessageRecords, key: RecordsKey, retention_days: int):
        self.database = database
        self.records = records
        self.key = key
        self.retention_days = retention_days
        self.problem: str | None = "not prepared yet"
        self._lock = threading.Lock()

    def prepare(self) -> str | None:
        """The records key, the schema, the key agreed with other replicas, then housekeeping.

        Returns (and keeps) why records cannot be kept: logged, and sends answer 503 until it is fixed."""
        with self._lock:
            before, self.problem = self.problem, self._prepare()
            if self.problem is not None and self.problem != before:  # said once, not at every try
                log.error("%s (configs are served; sends answer 503 until it is fixed)", self.problem)
            return self.problem

    def _prepare(self) -> str | None:
        try:
            self.key.ensure()
            self.key.key()
        except (OSError, ValueError) as exc:
            return f"the records key {self.key.path} cannot be used: {getattr(exc, 'strerror', None) or exc}"
        try:
            self.database.upgrade()
            problem = agree_on_key(self.database, self.key)
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
