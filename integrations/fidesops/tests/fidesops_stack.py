"""Real fidesops 1.8.2 for the opt-in test: its venv (cached), PostgreSQL, Redis, its web server and worker.

Everything listens on 127.0.0.1 on free ports and lives in temp dirs that are removed afterwards;
only the Python 3.9 venv is kept (in ~/.cache/fidesmail-e2e, or FIDESMAIL_E2E_CACHE) so that a rerun
does not install fidesops again.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import requests

# Beside the repository, as the issue names it: ../shared/reference/ (FIDESMAIL_E2E_REQUIREMENTS overrides).
REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "fidesops-1.8.2-requirements.txt"


class Missing(RuntimeError):
    """Something the test needs is not on this machine; the message says what and how to get it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            result = check()
            if result:
                return result
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout:g} s:\n{_tail(log)}")


def _tail(log: Path | None, lines: int = 60) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM to the main process only (Celery's warm shutdown lets its children finish), then the group."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- Python 3.9 and the venv ----------------------------------------------------------------


def python39() -> str:
    """A Python 3.9 interpreter: FIDESMAIL_E2E_PYTHON, python3.9 on PATH, or pyenv's."""
    candidates = [os.environ.get("FIDESMAIL_E2E_PYTHON"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")), reverse=True),
                  shutil.which("python3.9")]  # last: a pyenv shim on PATH may not run 3.9 at all
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 9))"],
                capture_output=True).returncode == 0:
            return candidate
    raise Missing("Python 3.9 is needed (fidesops 1.8.2's pinned wheels exist for 3.9): install it "
                  "(e.g. `pyenv install 3.9`) or set FIDESMAIL_E2E_PYTHON")


def requirements_file() -> Path:
    path = Path(os.environ.get("FIDESMAIL_E2E_REQUIREMENTS") or REFERENCE)
    if not path.is_file():
        raise Missing(f"fidesops' pinned requirements are not at {path} (set FIDESMAIL_E2E_REQUIREMENTS)")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("FIDESMAIL_E2E_CACHE") or os.path.expanduser("~/.cache/fidesmail-e2e"))


def fidesops_venv() -> tuple[Path, float | None]:
    """The venv with fidesops 1.8.2 (built once; its name carries a digest of the requirements), and
    how long building it took this time (None when it was already there)."""
    requirements = requirements_file()
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = cache_dir() / f"fidesops-1.8.2-py39-{digest}"
    marker = venv / ".complete"
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build it once
        if marker.exists():
            return venv, None
        shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
        started = time.monotonic()
        subprocess.run([python39(), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "-r", str(requirements)], check=True)
        marker.write_text(f"fidesops 1.8.2 from {requirements}\n")
        return venv, time.monotonic() - started


def install_adapter(venv: Path, adapter_dir: Path) -> None:
    """pip install the adapter as a deployment would (not editable: the .pth goes to site-packages)."""
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--force-reinstall", str(adapter_dir)], check=True)


# --- PostgreSQL and Redis --------------------------------------------------------------------


def _postgres_bin() -> Path:
    named = os.environ.get("FIDESMAIL_E2E_PG_BIN")
    found = [named] if named else sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for directory in found:
        if directory and (Path(directory) / "initdb").exists():
            return Path(directory)
    raise Missing("PostgreSQL's initdb/pg_ctl are needed: `apt-get install -y postgresql` "
                  "(or set FIDESMAIL_E2E_PG_BIN to their directory)")


def _version_key(path: str) -> int:
    digits = Path(path).parent.name
    return int(digits) if digits.isdigit() else 0


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth), with a database `fidesops`; its URL."""
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="fidesmail-e2e-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port, log = root / "data", free_port(), root / "postgres.log"
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off", "start"],
                       check=True, capture_output=True)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "fidesops"],
                       check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis(password: str) -> Iterator[int]:
    """redis-server on 127.0.0.1 with a password and no persistence; its port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Missing("redis-server is needed: `apt-get install -y redis-server`")
    root = Path(tempfile.mkdtemp(prefix="fidesmail-e2e-redis-"))
    port, log = free_port(), root / "redis.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
                                 "--save", "", "--appendonly", "no", "--dir", str(root)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def pong():
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                return b"PONG" in s.recv(100)
        _wait("redis-server", pong, 20, proc, log)
        yield port
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


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


class Fidesops:
    """fidesops' web server (its FastAPI app under uvicorn) and its Celery worker, from one venv."""

    def __init__(self, venv: Path, workdir: Path, db: str, redis_port: int, redis_password: str, env: dict):
        self.venv = venv
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.client_secret = secrets.token_hex(16)
        db_host, db_port = db.rsplit(":", 1)
        (workdir / "data" / "saas").mkdir(parents=True, exist_ok=True)
        # fidesops validates its SaaS connector registry at start; the PyPI release does not ship one.
        (workdir / "data" / "saas" / "saas_connector_registry.toml").write_text("")
        (workdir / "fidesops.toml").write_text(textwrap.dedent(_TOML).format(
            db_host=db_host, db_port=db_port, redis_port=redis_port, redis_password=redis_password,
            encryption_key=secrets.token_hex(16), client_secret=self.client_secret, jwt_secret=secrets.token_hex(16)))
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("FIDESOPS__", "FIDES__", "FIDESMAIL_"))}
        self.env = {**clean, **env, "FIDES__CONFIG_PATH": str(workdir), "FIDESOPS__PORT": str(self.port),
                    "PYTHONUNBUFFERED": "1", "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.web_log, self.worker_log = workdir / "web.log", workdir / "worker.log"
        self._procs: list[subprocess.Popen] = []

    def _run(self, program: str, *args: str, log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen([str(self.venv / "bin" / program), *args], cwd=self.workdir, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._procs.append(proc)
        return proc

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

    def stop(self) -> None:
        for proc in reversed(self._procs):
            _stop(proc)

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
