"""The private PostgreSQL of the tests (tests/pg.py, tests/system_parts.py): usable, isolated, and gone
at the end of the session however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests import pg

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_gets_an_empty_database_it_can_use_with_sqlalchemy(postgres_url):
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO notes (body) VALUES ('first'), ('second')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT body FROM notes ORDER BY id")).scalars().all() == ["first", "second"]
            assert conn.execute(sa.text("SELECT version()")).scalar().startswith("PostgreSQL ")
    finally:
        engine.dispose()


def test_two_databases_are_independent(postgres_server, postgres_url):
    other = postgres_server.create_database()
    engines = [sa.create_engine(postgres_url), sa.create_engine(postgres_server.url(other))]
    try:
        with engines[0].begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (x int)"))
        assert sa.inspect(engines[0]).get_table_names() == ["only_here"]
        assert sa.inspect(engines[1]).get_table_names() == []
    finally:
        for engine in engines:
            engine.dispose()
        postgres_server.drop_database(other)


def test_the_server_listens_on_loopback_only_without_durability(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            show = lambda name: conn.execute(sa.text(f"SHOW {name}")).scalar()  # noqa: E731
            assert show("listen_addresses") == "127.0.0.1"
            assert show("unix_socket_directories") == ""
            assert show("fsync") == "off"
    finally:
        engine.dispose()


def test_database_url_gives_each_backend_in_turn(database_url, request):
    backend = request.node.callspec.params["database_url"]
    assert database_url.startswith({"sqlite": "sqlite:///", "postgresql": "postgresql+psycopg://"}[backend])
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT x FROM t")).scalar() == 1
            assert conn.dialect.name == backend
    finally:
        engine.dispose()


NESTED_CONFTEST = 'pytest_plugins = ["tests.system_parts"]\n'

NESTED_TESTS = '''
import json, os, time
from pathlib import Path

def test_records_the_server(postgres_server, postgres_url):
    info = {"port": postgres_server.port, "base": str(postgres_server.base)}
    Path(os.environ["INFO_FILE"]).write_text(json.dumps(info))
    if os.environ.get("THEN") == "sleep":
        time.sleep(120)
    assert False, "this test fails on purpose"

def test_another(postgres_url):
    pass
'''


def _nested_session(tmp_path: Path, **env) -> subprocess.Popen:
    """A separate pytest session on a test file that uses the fixtures (and fails on purpose)."""
    (tmp_path / "conftest.py").write_text(NESTED_CONFTEST)
    (tmp_path / "test_nested.py").write_text(NESTED_TESTS)
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
               "INFO_FILE": str(tmp_path / "info.json"), **env}
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_nested.py"],
                            cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _refuses_connections(port: int) -> bool:
    try:
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def binaries(postgres_server):
    """Only where the binaries are there (the nested sessions start servers of their own)."""


@pytest.mark.slow  # a nested pytest run
def test_the_server_is_stopped_and_removed_when_the_session_ends_with_failures(binaries, tmp_path):
    session = _nested_session(tmp_path)
    output, _ = session.communicate(timeout=120)
    assert session.returncode == 1, output
    assert "1 failed, 1 passed" in output
    info = json.loads((tmp_path / "info.json").read_text())
    assert _refuses_connections(info["port"])
    assert not Path(info["base"]).exists()


@pytest.mark.slow  # a nested pytest run
def test_the_server_is_stopped_even_when_the_test_process_is_killed(binaries, tmp_path):
    session = _nested_session(tmp_path, THEN="sleep")
    try:
        assert _wait_until((tmp_path / "info.json").exists, 60), "the nested session never started its test"
        info = json.loads((tmp_path / "info.json").read_text())
        assert not _refuses_connections(info["port"])
    finally:
        session.send_signal(signal.SIGKILL)  # no teardown runs: the watchdog must do it
        session.communicate()
    assert _wait_until(lambda: not Path(info["base"]).exists(), 30), "the data dir was left behind"
    assert _refuses_connections(info["port"])


@pytest.mark.slow  # a nested pytest run
def test_without_binaries_the_tests_skip_and_say_why_once(tmp_path):
    empty = tmp_path / "no-postgres"
    empty.mkdir()
    session = _nested_session(tmp_path, **{pg.BIN_ENV: str(empty)})
    output, _ = session.communicate(timeout=120)
    assert session.returncode == 0, output
    assert "2 skipped" in output
    summary = [line for line in output.splitlines() if line.startswith("SKIPPED (missing system part)")]
    assert summary == [f"SKIPPED (missing system part): {pg.NOT_FOUND} (no initdb and postgres in "
                       f"{pg.BIN_ENV}={empty})"], output
