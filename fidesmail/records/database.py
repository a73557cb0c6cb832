"""The records database: SQLite (WAL) embedded by default, PostgreSQL (psycopg 3) when replicas share it.

Transactions are short and never span a call to Mailgun. On SQLite a write transaction starts with
BEGIN IMMEDIATE, so two writers queue on SQLite's lock (busy_timeout) instead of failing when a read
would have to become a write; commits are durable against a killed process (WAL, synchronous=NORMAL),
which is what the outbox promises, without an fsync per send.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from fidesmail.core import database_urls, forks, fsutil
from fidesmail.core.exceptions import Unavailable
from fidesmail.records import direct
from fidesmail.records.writer_lock import WriterLock, WriterLockTimeout

log = logging.getLogger("fidesmail.records")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD = "head"
_BUSY_TIMEOUT_MS = 10_000


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached or used; the message names it, never a secret of its URL."""


def engine_url(url: str) -> str:
    """`postgresql://` as SQLAlchemy's psycopg 3 driver (the contract says they are the same)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


class Database:
    """One engine per process (reset after a fork), with read and write transactions and migrations."""

    def __init__(self, url: str):
        self.url = engine_url(url)
        self.safe_url = database_urls.shown(url)  # scheme, host, port, database: what messages and logs show
        self._secrets = database_urls.secrets_of(url)
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        self.engine = self._make_engine()
        # Reads on PostgreSQL without BEGIN and ROLLBACK around each: one round trip per query, not three.
        # (Same pool; SQLite's driver is in autocommit mode already.)
        self._reader = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._writers = WriterLock(self.sqlite_path, _BUSY_TIMEOUT_MS / 1000) if self.is_sqlite else None
        forks.reset_in_children(self)

    def _make_engine(self) -> Engine:
        if self.is_sqlite:
            # The driver in autocommit mode: transactions are the explicit BEGIN IMMEDIATE / COMMIT below.
            engine = create_engine(self.url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(self.url, pool_size=8, max_overflow=8, pool_recycle=1800,
                             connect_args={"connect_timeout": 5})

    def after_fork(self) -> None:
        """A forked worker must not use its parent's connections (SQLAlchemy's advice for multiprocessing)."""
        self.engine.dispose(close=False)
        if self._writers is not None:
            self._writers.after_fork()

    @property
    def sqlite_path(self) -> Path | None:
        database = make_url(self.url).database
        return Path(database) if self.is_sqlite and database and database != ":memory:" else None

    # -- transactions ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends (rolled back on an exception)."""
        with self._unavailable_as_503():
            with self.engine.connect() as connection:
                if self.is_sqlite:
                    with self._writers.held():
                        direct.execute(connection, "BEGIN IMMEDIATE")
                        try:
                            yield connection
                        except BaseException:
                            direct.execute(connection, "ROLLBACK")
                            raise
                        direct.execute(connection, "COMMIT")
                else:
                    with connection.begin():
                        yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (no write lock taken)."""
        with self._unavailable_as_503(), self._reader.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def _unavailable_as_503(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError:
            raise  # a constraint doing its job (a claimed Idempotency-Key): the caller decides
        except WriterLockTimeout:
            raise DatabaseUnavailable(f"The message database ({self.safe_url}) cannot be used: another writer "
                                      f"held it over {_BUSY_TIMEOUT_MS // 1000} s") from None
        except DBAPIError as exc:
            raise DatabaseUnavailable(f"The message database ({self.safe_url}) cannot be used: "
                                      f"{self._describe(exc)}") from None
        except SQLAlchemyError as exc:  # e.g. no such table: the schema was never created
            raise DatabaseUnavailable(f"The message database ({self.safe_url}) cannot be used: "
                                      f"{type(exc).__name__}") from None

    def _describe(self, exc: DBAPIError) -> str:
        words = " ".join(str(exc.orig).split()) if exc.orig is not None else type(exc).__name__
        return database_urls.scrub(words, self._secrets)[:300]  # scrubbed first: a cut could split a secret

    def check(self) -> str | None:
        """Why the database cannot be used right now, or None."""
        try:
            with self.read() as connection:
                connection.execute(text("SELECT 1"))
        except DatabaseUnavailable as exc:
            return exc.detail
        return None

    # -- schema -----------------------------------------------------------------------------------

    def _alembic(self, connection: Connection) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        return config

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision; one process at a time."""
        path = self.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created 0600 before SQLite makes it (its -wal and -shm files take the same mode).
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        with self._unavailable_as_503(), self._migration_lock(), self.engine.connect() as connection:
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(self._alembic(connection), HEAD)
            if not self.is_sqlite:
                connection.commit()
            after = MigrationContext.configure(connection).get_current_revision()
        if before != after:
            log.info("message database %s migrated from %s to %s", self.safe_url, before or "empty", after)

    def current(self) -> str | None:
        """The schema revision of the database (None before the first upgrade)."""
        with self.read() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Replicas and workers starting together migrate one after the other."""
        path = self.sqlite_path
        if path is not None:
            with fsutil.locked(path.with_name(path.name + ".migrate.lock")):
                yield
            return
        if self.is_sqlite:  # in memory: one process only
            yield
            return
        key = int.from_bytes(hashlib.sha256(b"fidesmail migrations").digest()[:8], "big", signed=True)
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; an fsync per checkpoint
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.close()
