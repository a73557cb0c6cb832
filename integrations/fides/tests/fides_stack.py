"""Real fides 2.78.2 for the opt-in test: its venv (cached), its web server and its Celery worker as real
processes. PostgreSQL, Redis and the process helpers are shared with the fidesops adapter's test
(tests/adapter_stack.py).
"""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import requests
from fides_adapter_support import REPO  # noqa: F401 (puts the repository on sys.path)
from tests.adapter_stack import (  # noqa: F401 (the test uses Missing, install_adapter, redis, tail from here)
    Missing,
    VenvProcesses,
    cached_venv,
    free_port,
    install_adapter,
    pyenv_python,
    redis,
    tail,
    wait_for,
)
from tests.adapter_stack import postgres as _postgres

VERSION = "2.78.2"
# fides' image runs Python 3.13, but its pinned scylla-driver 3.26.8 has wheels up to 3.12 only (the
# sdist downloads setuptools at build time). APScheduler 3.9 still imports pkg_resources, which a
# venv's pip no longer brings: setuptools below 81 is installed beside fides, as its image has it.
PYTHON = "3.12"
PACKAGES = (f"ethyca-fides=={VERSION}", "setuptools<81")


def fides_venv() -> tuple[Path, float | None]:
    """The venv with fides from PyPI (built once), and how long building it took this time."""
    return cached_venv(f"fides-{VERSION}-py{PYTHON.replace('.', '')}", lambda: pyenv_python(PYTHON), *PACKAGES)


def postgres():
    """A throwaway PostgreSQL with an empty database `fides`; "127.0.0.1:port"."""
    return _postgres("fides")


_TOML = """
[database]
server = "{db_host}"
port = "{db_port}"
user = "postgres"
password = "unused-trust-auth"
db = "fides"

[redis]
host = "127.0.0.1"
port = {redis_port}
password = "{redis_password}"
db_index = 0
enabled = true

[security]
app_encryption_key = "{encryption_key}"
oauth_root_client_id = "fidesadmin"
oauth_root_client_secret = "{client_secret}"
drp_jwt_secret = "{jwt_secret}"
cors_origins = []

[execution]
subject_identity_verification_required = true
require_manual_request_approval = true

[notifications]
# What the README asks of a fides beside fidesmail: an email service type (any: fidesmail picks the
# provider) and the notifications it should send.
notification_service_type = "mailgun"
send_request_receipt_notification = true
send_request_review_notification = false
send_request_completion_notification = false

[celery]
task_always_eager = false

[user]
analytics_opt_out = true

[admin_ui]
enabled = false
"""


class Fides(VenvProcesses):
    """fides' web server (its FastAPI app under uvicorn, bound to 127.0.0.1) and its Celery worker."""

    def __init__(self, venv: Path, workdir: Path, db: str, redis_port: int, redis_password: str, env: dict):
        db_host, db_port = self._prepare(venv, workdir, db)
        config = workdir / "fides.toml"
        config.write_text(textwrap.dedent(_TOML).format(
            db_host=db_host, db_port=db_port, redis_port=redis_port, redis_password=redis_password,
            encryption_key=secrets.token_hex(16), client_secret=self.client_secret, jwt_secret=secrets.token_hex(16)))
        self.env = self._environment(("FIDES__",), env, FIDES__CONFIG_PATH=str(config))

    def start(self) -> Fides:
        # `fides webserver` binds 0.0.0.0: its app is run under uvicorn on 127.0.0.1 instead (the app's
        # own lifespan runs the migrations and seeds, as with `fides webserver`). The worker is
        # `fides worker`, as deployed (two prefork children, every queue).
        web = self._run("python", "-m", "uvicorn", "fides.api.main:app", "--host", "127.0.0.1", "--port",
                        str(self.port), log=self.web_log)
        wait_for("fides' web server", lambda: requests.get(f"http://127.0.0.1:{self.port}/health", timeout=5).ok,
                 300, web, self.web_log)
        worker = self._run("fides", "worker", log=self.worker_log)
        wait_for("fides' Celery worker", lambda: b" ready." in self.worker_log.read_bytes(), 180, worker,
                 self.worker_log)
        return self

    def token(self) -> str:
        """The root client's OAuth token."""
        answer = requests.post(self.url + "/oauth/token", timeout=30,
                               data={"client_id": "fidesadmin", "client_secret": self.client_secret})
        answer.raise_for_status()
        return answer.json()["access_token"]
