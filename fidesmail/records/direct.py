"""The hot paths' statements run on the driver's connection, compiled once: SQLAlchemy's per-execute cost skipped.

A send writes its record before the post and its outcome after it, two short transactions of one
statement each; through `Connection.execute` each statement cost ~50 µs of SQLAlchemy's own work
(caching keys, parameter processing, result set-up) beside ~90 µs of SQLite's. Here a statement is
compiled once per dialect with named parameters (sqlite3 and psycopg both take a dict), and run on
the DB-API connection inside the caller's SQLAlchemy transaction or read. A driver error is raised as
SQLAlchemy's exception of its kind (IntegrityError...), parameters hidden, so the callers' handling
is the same either way. Used by the send's writes, the 202's and the outbox settle's, and GET one
record's query: statements whose values are plain str, int, bytes or None (no type needs converting).
"""

from __future__ import annotations

import collections
import functools

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

# psycopg's dialect writes %(name)s; SQLAlchemy's SQLite one writes ?, and sqlite3 takes :name as well.
_NAMED_SQLITE = sqlite.dialect(paramstyle="named")


def compiled(statement: ClauseElement, dialect: Dialect) -> tuple[str, dict]:
    """The SQL of `statement` for the driver of `dialect` with named parameters, and the values it binds
    itself (a literal in it); an expanding IN cannot be compiled ahead (write it as ORs)."""
    return _compiled(statement, _NAMED_SQLITE if dialect.name == "sqlite" else dialect)


@functools.lru_cache(maxsize=256)  # a few statements per engine (one engine per process when serving)
def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[str, dict]:
    done = statement.compile(dialect=dialect)
    if "POSTCOMPILE" in str(done):
        raise ValueError("an expanding bind (IN) cannot be compiled once for every call")
    return str(done), dict(done.params)


def execute(connection: Connection, statement: ClauseElement | str, parameters: dict | None = None) -> int:
    """Run one write (or plain SQL such as BEGIN) in the connection's transaction; the rows it changed."""
    if isinstance(statement, str):
        return _run(connection, statement, parameters or {}).rowcount
    sql, own = compiled(statement, connection.dialect)
    return _run(connection, sql, {**own, **(parameters or {})}).rowcount


def rows(connection: Connection, statement: ClauseElement, parameters: dict) -> list:
    """Run one query on the driver's connection; its rows, each with its columns as attributes."""
    sql, own = compiled(statement, connection.dialect)
    cursor = _run(connection, sql, {**own, **parameters})
    found = cursor.fetchall()
    shape = _row_class(tuple(column[0] for column in cursor.description))
    return [shape._make(row) for row in found]


def _run(connection: Connection, sql: str, parameters: dict):
    """The driver's cursor for `sql`; its error raised as SQLAlchemy's of the same kind, parameters hidden."""
    dialect = connection.dialect
    try:
        return connection.connection.driver_connection.execute(sql, parameters)
    except dialect.loaded_dbapi.Error as exc:
        # A broken connection is still dropped from the pool: the transaction's rollback meets the break.
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                  dialect=dialect) from None


@functools.lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]):
    """A row type with these columns as attributes (made once per column list)."""
    return collections.namedtuple("Row", names, rename=True)
