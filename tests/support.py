"""What tests share besides fixtures: the sample config, tokens, and the server as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from fidesmail.web import auth

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-signing-key"

CONFIG = {"key": "my_mailgun", "name": "Mailgun EU", "service_type": "mailgun",
          "details": {"domain": "mg.example.com", "is_eu_domain": False, "api_version": "v3"}}


def token_for(*scopes, keys=(SECRET,), ttl=3600) -> str:
    return auth.create_token(list(keys), scopes or auth.SCOPES, ttl)


def bearer(*scopes) -> dict:
    """Authorization header with the given scopes (all when none given)."""
    return {"Authorization": f"Bearer {token_for(*scopes)}"}


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
        self.args: list[str] = []  # command-line options of `python app.py`
        self.proc = None

    def start(self, timeout: float = 15) -> Server:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *self.args], cwd=self.cwd, env=self.env,
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


def parse_sealed(data: bytes, label: str = "secrets.sealed.yaml"):
    """A sealed file's good part (empty when it cannot be used at all) and its problems."""
    from fidesmail.sealing import sealed_file

    parsed = sealed_file.parse(data, label)
    return parsed.sealed or sealed_file.EMPTY, list(parsed.problems)


def eventually(predicate, timeout=2.0):
    """Poll `predicate` until true; the contract gives changes on disk 2 s to show."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def write_config(folder, key, **changes):
    """A config file written by hand into `folder`'s email/ (as git or an editor would)."""
    import yaml

    body = {**CONFIG, "key": key, "name": f"Config {key}", **changes}
    (folder / "email" / f"{key}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return body


def configure_mailgun(client, secrets) -> None:
    """POST the test CONFIG and PUT its secrets (a Mailgun API key, or the whole secrets body); both answer 200."""
    body = {"mailgun_api_key": secrets} if isinstance(secrets, str) else secrets
    assert client.post("/api/v1/email/config", json=CONFIG, headers=bearer()).status_code == 200
    assert client.put("/api/v1/email/config/my_mailgun/secret", json=body, headers=bearer()).status_code == 200


def head_revision() -> str:
    """The newest migration of the records database (what a fresh or upgraded database is at)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from fidesmail.records.database import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def record(client, message_id: str) -> dict:
    """A message record as GET /api/v1/email/messages/{id} answers it (asserted to be there)."""
    from fidesmail.web import auth

    answer = client.get(f"/api/v1/email/messages/{message_id}", headers=bearer(auth.READ))
    assert answer.status_code == 200, answer.json
    return answer.json


def settled(client, message_id: str, timeout: float = 15.0) -> dict:
    """The record once it has left the queue (polling its Location, as a caller would)."""
    deadline = time.monotonic() + timeout
    while (got := record(client, message_id))["status"] in ("queued", "sending") and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


def tried(client, message_id: str, timeout: float = 10.0) -> dict:
    """The record once its first attempt is recorded."""
    deadline = time.monotonic() + timeout
    while not (got := record(client, message_id))["attempts"] and time.monotonic() < deadline:
        time.sleep(0.02)
    return got
