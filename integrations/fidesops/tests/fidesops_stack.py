"""Real fidesops 1.8.2 for the opt-in test: its venv (cached), its web server and worker. PostgreSQL,
Redis and the process helpers are shared with the fides adapter's test (tests/adapter_stack.py).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import textwrap
from pathlib import Path

import requests
from adapter_support import REPO  # noqa: F401 (puts the repository on sys.path)
from tests.adapter_stack import Missing, VenvProcesses, cached_venv, free_port, install_adapter, pyenv_python, redis  # noqa: F401
from tests.adapter_stack import postgres as _postgres
from tests.adapter_stack import tail as _tail
from tests.adapter_stack import wait_for as _wait

# Beside the repository, as the issue names it: ../shared/reference/ (FIDESMAIL_E2E_REQUIREMENTS overrides).
REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "fidesops-1.8.2-requirements.txt"


def python39() -> str:
    """A Python 3.9 interpreter (fidesops 1.8.2's pinned wheels exist for 3.9)."""
    return pyenv_python("3.9")


def requirements_file() -> Path:
    path = Path(os.environ.get("FIDESMAIL_E2E_REQUIREMENTS") or REFERENCE)
    if not path.is_file():
        raise Missing(f"fidesops' pinned requirements are not at {path} (set FIDESMAIL_E2E_REQUIREMENTS)")
    return path


def fidesops_venv() -> tuple[Path, float | None]:
    """The venv with fidesops 1.8.2 (built once; its name carries a digest of the requirements), and
    how long building it took this time (None when it was already there)."""
    requirements = requirements_file()
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    return cached_venv(f"fidesops-1.8.2-py39-{digest}", python39, "-r", str(requirements))


def postgres():
    """A throwaway PostgreSQL with an empty database `fidesops`; "127.0.0.1:port"."""
    return _postgres("fidesops")


# --- fidesops ------------------------------------------------------------------------------

_TOML = """
[database]
server = "{db_host}"
port = "{db_port}"
user = "postgres"
password = "unused-trust-auth"
db = "fidesops"
test_db = "fidesops"

[redis]
host = "127.0.0.1"
port = {redis_port}
password = "{redis_password}"
db_index = 0
enabled = true

[security]
app_encryption_key = "{encryption_key}"
cors_origins = []
oauth_root_client_id = "fidesopsadmin"
oauth_root_client_secret = "{client_secret}"
drp_jwt_secret = "{jwt_secret}"
log_level = "INFO"

[execution]
subject_identity_verification_required = true
require_manual_request_approval = true
worker_enabled = true
masking_strict = true

[root_user]
analytics_opt_out = true

[admin_ui]
enabled = false

[notifications]
send_request_completion_notification = false
send_request_receipt_notification = true
send_request_review_notification = false
"""


class Fidesops(VenvProcesses):
    """fidesops' web server (its FastAPI app under uvicorn) and its Celery worker, from one venv."""

    def __init__(self, venv: Path, workdir: Path, db: str, redis_port: int, redis_password: str, env: dict):
        db_host, db_port = self._prepare(venv, workdir, db)
        (workdir / "data" / "saas").mkdir(parents=True, exist_ok=True)
        # fidesops validates its SaaS connector registry at start; the PyPI release does not ship one.
        (workdir / "data" / "saas" / "saas_connector_registry.toml").write_text("")
        (workdir / "fidesops.toml").write_text(textwrap.dedent(_TOML).format(
            db_host=db_host, db_port=db_port, redis_port=redis_port, redis_password=redis_password,
            encryption_key=secrets.token_hex(16), client_secret=self.client_secret, jwt_secret=secrets.token_hex(16)))
        self.env = self._environment(("FIDESOPS__", "FIDES__"), env, FIDES__CONFIG_PATH=str(workdir),
                                     FIDESOPS__PORT=str(self.port))

    def start(self) -> Fidesops:
        # What `fidesops webserver` does first: run the database migrations (fidesops' own init_db).
        migrate = self._run("python", "-c", "from fidesops.ops.core.config import config; "
                                            "from fidesops.ops.db.database import init_db; "
                                            "init_db(config.database.sqlalchemy_database_uri)", log=self.web_log)
        if migrate.wait(180) != 0:
            raise RuntimeError(f"fidesops' migrations failed:\n{_tail(self.web_log)}")
        # Then fidesops' app under uvicorn, as `fidesops webserver` runs it, but bound to 127.0.0.1
        # (its CLI binds 0.0.0.0); and its Celery worker, as `fidesops worker` (two prefork children).
        web = self._run("python", "-m", "uvicorn", "fidesops.main:app", "--host", "127.0.0.1", "--port", str(self.port),
                           log=self.web_log)
        worker = self._run("fidesops", "worker", log=self.worker_log)
        _wait("fidesops' web server", lambda: requests.get(f"http://127.0.0.1:{self.port}/health", timeout=2).ok,
              120, web, self.web_log)
        _wait("fidesops' Celery worker", lambda: b"ready." in self.worker_log.read_bytes(), 120, worker,
              self.worker_log)
        return self

    def token(self, scopes: list[str] | None = None) -> str:
        """An OAuth token: the root client's, or (scopes given) a new client's, since what a client
        creates (a policy, a rule) must belong to a client row, which the root client is not."""
        client_id, secret = "fidesopsadmin", self.client_secret
        if scopes:
            made = requests.post(self.url + "/oauth/client", json=scopes, timeout=30,
                                 headers={"Authorization": f"Bearer {self.token()}"})
            made.raise_for_status()
            client_id, secret = made.json()["client_id"], made.json()["client_secret"]
        answer = requests.post(self.url + "/oauth/token", timeout=30,
                               data={"client_id": client_id, "client_secret": secret})
        answer.raise_for_status()
        return answer.json()["access_token"]
