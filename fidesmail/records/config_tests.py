"""The last test of each config through fides' test endpoint: when, and whether it succeeded (section 16).

fides keeps `last_test_timestamp` and `last_test_succeeded` on its config row. They are what happened,
not what is configured, so fidesmail keeps them here, in the database every replica shares, never in
the config tree: a test changes no file a reviewer would have to approve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select

from fidesmail.records.database import Database
from fidesmail.records.messages import iso, now_ms
from fidesmail.records.schema import config_tests

_OF_KEYS = select(config_tests).where(config_tests.c.config_key.in_(bindparam("keys", expanding=True)))


@dataclass(frozen=True)
class LastTest:
    """When a config was last tested (ISO-8601, UTC) and whether the test message was sent."""

    at: str
    succeeded: bool


class ConfigTests:
    """The `config_tests` table: one row per config tested, replaced by each test."""

    def __init__(self, database: Database):
        self.database = database

    def record(self, config_key: str, succeeded: bool) -> LastTest:
        """Keep a test that ended now."""
        at = now_ms()
        with self.database.write() as connection:
            connection.execute(delete(config_tests).where(config_tests.c.config_key == config_key))
            connection.execute(insert(config_tests), {"config_key": config_key, "tested_at": at,
                                                      "succeeded": int(succeeded)})
        return LastTest(iso(at), succeeded)

    def of(self, config_keys: Iterable[str]) -> dict[str, LastTest]:
        """The last test of each of `config_keys` that has one."""
        keys = list(config_keys)
        if not keys:
            return {}
        with self.database.read() as connection:
            rows = connection.execute(_OF_KEYS, {"keys": keys}).all()
        return {row.config_key: LastTest(iso(row.tested_at), bool(row.succeeded)) for row in rows}

    def forget(self, config_key: str) -> None:
        """A deleted config's tests go with it (a new config under its key starts untested)."""
        with self.database.write() as connection:
            connection.execute(delete(config_tests).where(config_tests.c.config_key == config_key))
