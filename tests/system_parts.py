"""Pytest plugin for the system parts some tests need: a private PostgreSQL per session, and one
summary line for each part that is missing (so a skip is never silent under -q)."""

from __future__ import annotations

import pytest

from tests import pg

_MISSING = "missing system part"
_missing: dict[str, None] = {}  # skip reasons, each once, in the order met (where the summary is written)
_pending: list[str] = []  # met in this process, not yet on a test's report


def skip_missing(reason: str):
    """Skip the current test because a system part is missing; the summary repeats `reason` once."""
    _pending.append(reason)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The reason travels with the test's report: under pytest-xdist the summary is written by the controller."""
    outcome = yield
    while _pending:
        outcome.get_result().user_properties.append((_MISSING, _pending.pop(0)))


def pytest_runtest_logreport(report):
    for name, reason in report.user_properties:
        if name == _MISSING:
            _missing.setdefault(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the whole session (tests/pg.py); skips when it cannot be had."""
    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        skip_missing(pg.missing_reason())
    server = pg.PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database of the session's server, as a postgresql+psycopg:// SQLAlchemy URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The same test on both backends: a SQLite file in tmp_path, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fidesmail.db'}"
    return request.getfixturevalue("postgres_url")


def pytest_terminal_summary(terminalreporter):
    if hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller says it
        return
    for reason in _missing:
        terminalreporter.write_line(f"SKIPPED (missing system part): {reason}", yellow=True)
