"""Shared fixtures: a fresh app on a temp config tree, tokens, and the server as a real process."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from fidesmail import create_app
from fidesmail.records.database import Database
from fidesmail.runtime import services, startup
from tests.support import SECRET, Server, bearer

pytest_plugins = ["tests.system_parts",  # postgres_server, postgres_url, database_url
                  "tests.reliability.figures"]  # the reliability figures in the terminal summary


@pytest.fixture
def tree(tmp_path) -> Path:
    """An empty config tree."""
    config = tmp_path / "config"
    (config / "email").mkdir(parents=True)
    return config


@pytest.fixture(scope="session")
def migrated_records(tmp_path_factory) -> Path:
    """A SQLite records database migrated to the newest revision, once per test process (no keys agreed in it
    yet): each app's new database starts as a copy of it instead of running every migration (30 -> 4 ms an app)."""
    path = tmp_path_factory.mktemp("records-template") / "fidesmail.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.engine.dispose()  # the last connection closed: its WAL is folded into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _new_sqlite_file(settings: dict) -> Path | None:
    """The SQLite file the app's records will be in, when it is a file that does not exist yet."""
    url = settings.get("DATABASE_URL") or f"sqlite:///{Path(settings['INSTANCE_DIR']) / 'fidesmail.db'}"
    if not url.startswith("sqlite:///") or "?" in url or url.endswith(":memory:"):
        return None
    path = Path(url[len("sqlite:///"):])
    return None if path.exists() else path


@pytest.fixture
def make_app(tmp_path, tree, migrated_records):
    """Build an app on the temp tree, prepared as a serving worker is; keyword overrides go to app.config."""
    apps = []

    def make(**overrides):
        settings = {"CONFIG_DIR": tree, "INSTANCE_DIR": tmp_path / "instance", "SECRET_KEYS": [SECRET],
                    "SEAL_KEY_FILE": tmp_path / "instance" / "seal.key", "WATCH_INTERVAL": 0.2}
        settings.update(overrides)
        new_file = _new_sqlite_file(settings)
        if new_file is not None:
            new_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the app makes its instance dir
            shutil.copyfile(migrated_records, new_file)
            new_file.chmod(0o600)
        app = create_app(settings)
        app.config["TESTING"] = True
        startup.start_in_worker(app)  # what a serving worker does: keys, folders, the watcher
        apps.append(app)
        return app

    yield make
    for app in apps:  # every background thread start_in_worker started (none outlives its test's database)
        services.of(app).store.watcher.stop()
        for loop in services.of(app).loops:
            loop.stop()
        services.of(app).deliverer.stop(wait=2)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def headers():
    return bearer()


@pytest.fixture
def serve():
    """Serve an app over real HTTP on 127.0.0.1 (threaded, as workers take requests side by side); its URL."""
    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(tmp_path, tree):
    """Start `python app.py` on the temp tree; call with extra env; stopped at the end."""
    servers = []

    def start(**env):
        base = {"FIDESMAIL_CONFIG_DIR": str(tree), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
                "FIDESMAIL_SECRET_KEY": SECRET}
        srv = Server({**base, **env}, tmp_path).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
