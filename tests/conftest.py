"""Shared fixtures: a fresh app on a temp config tree, tokens, and the server as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fidesmail import auth, create_app

pytest_plugins = ["tests.system_parts"]  # postgres_server, postgres_url, database_url

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-signing-key"

CONFIG = {"key": "my_mailgun", "name": "Mailgun EU", "service_type": "mailgun",
          "details": {"domain": "mg.example.com", "is_eu_domain": False, "api_version": "v3"}}


@pytest.fixture
def tree(tmp_path) -> Path:
    """An empty config tree."""
    config = tmp_path / "config"
    (config / "email").mkdir(parents=True)
    return config


@pytest.fixture
def make_app(tmp_path, tree):
    """Build an app on the temp tree; keyword overrides go to app.config."""
    apps = []

    def make(**overrides):
        settings = {"CONFIG_DIR": tree, "INSTANCE_DIR": tmp_path / "instance", "SECRET_KEYS": [SECRET],
                    "SEAL_KEY_FILE": tmp_path / "instance" / "seal.key", "WATCH_INTERVAL": 0.2}
        settings.update(overrides)
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["fidesmail.store"].stop()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def token_for(*scopes, keys=(SECRET,), ttl=3600) -> str:
    return auth.create_token(list(keys), scopes or auth.SCOPES, ttl)


def bearer(*scopes) -> dict:
    """Authorization header with the given scopes (all when none given)."""
    return {"Authorization": f"Bearer {token_for(*scopes)}"}


@pytest.fixture
def headers():
    return bearer()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python app.py` as a real process, on a free port of 127.0.0.1."""

    def __init__(self, env: dict, cwd: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "FIDESMAIL_HOST": "127.0.0.1", "FIDESMAIL_PORT": str(self.port)}
        self.cwd = cwd
        self.log_path = cwd / f"server-{self.port}.log"
        self.proc = None

    def start(self, timeout: float = 15) -> Server:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=self.cwd, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self._log.close()

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


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
