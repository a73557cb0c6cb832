"""Keeping the records database in shape: schema at start, the instance keys agreed, leases expired, retention.

Every process may run these (the statements are idempotent), so replicas need no coordinator.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import insert, select

from fidesmail.core import forks
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
    """The records' readiness (schema, key) and housekeeping every `interval` seconds in a daemon thread."""

    RETRY_SECONDS = 5.0  # a database that was down at start is tried again at most this often

    def __init__(self, database: Database, records: MessageRecords, keys: tuple[InstanceKey, ...],
                 retention_days: int, interval: float = 60.0):
        self.database = database
        self.records = records
        self.keys = keys
        self.retention_days = retention_days
        self.interval = interval
        self.problem: str | None = "not prepared yet"
        self._tried_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        forks.reset_in_children(self)

    def prepare(self) -> str | None:
        """The instance keys, the schema, the keys agreed with other replicas, then housekeeping.

        Returns (and keeps) why records cannot be kept: logged, and sends answer 503 until it is fixed."""
        with self._lock:
            self._tried_at = time.monotonic()
            self.problem = self._prepare()
            return self.problem

    def _prepare(self) -> str | None:
        for key in self.keys:
            try:
                key.ensure()
                key.key()
            except (OSError, ValueError) as exc:
                problem = f"the {key.what} {key.path} cannot be used: {getattr(exc, 'strerror', None) or exc}"
                log.error("%s", problem)
                return problem
        try:
            self.database.upgrade()
            for key in self.keys:
                problem = agree_on_key(self.database, key)
                if problem:
                    log.error("%s", problem)
                    return problem
            housekeeping(self.records, self.retention_days)
        except Unavailable as exc:
            log.error("%s (configs are served; sends answer 503 until it can be used)", exc.detail)
            return exc.detail
        return None

    def ready(self) -> None:
        """Unavailable while records cannot be kept (a send must not go out unrecorded)."""
        if self.problem is not None and time.monotonic() - self._tried_at >= self.RETRY_SECONDS:
            self.prepare()
        if self.problem is not None:
            raise Unavailable(f"Nothing was sent: message records cannot be kept: {self.problem}")

    def start(self) -> None:
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="fidesmail-records", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def after_fork(self) -> None:
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                housekeeping(self.records, self.retention_days)
            except Unavailable as exc:
                log.warning("records housekeeping skipped: %s", exc.detail)
            except Exception:  # the thread must outlive any one failure
                log.exception("records housekeeping failed")
