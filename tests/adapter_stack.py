"""What the adapters' opt-in end-to-end tests share: throwaway PostgreSQL and Redis on 127.0.0.1, their
own processes started and stopped, and a cache of virtual environments for the real fidesops / fides.

Everything listens on 127.0.0.1 on free ports and lives in temp dirs that are removed afterwards;
only the venvs are kept (in ~/.cache/fidesmail-e2e, or FIDESMAIL_E2E_CACHE) so that a rerun does not
install fidesops or fides again.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from tests.pg import PostgresError, PostgresServer
from tests.support import free_port


class Missing(RuntimeError):
    """Something the test needs is not on this machine; the message says what and how to get it."""


def wait_for(what: str, check, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    """check()'s first true answer, polled; RuntimeError with the log's tail if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            result = check()
            if result:
                return result
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout:g} s:\n{tail(log)}")


def tail(log: Path | None, lines: int = 60) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
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


class VenvProcesses:
    """Programs of one venv run as real processes in `workdir` (own session, output to a log); stop() ends them."""

    venv: Path
    workdir: Path
    env: dict

    def _prepare(self, venv: Path, workdir: Path, db: str) -> tuple[str, str]:
        """Where the host runs: its venv, its folder, a free port of 127.0.0.1 (`url` is its API), a new root
        client secret, its two logs; (the database's host, its port)."""
        self.venv, self.workdir = venv, workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.client_secret = secrets.token_hex(16)
        self.web_log, self.worker_log = workdir / "web.log", workdir / "worker.log"
        workdir.mkdir(parents=True, exist_ok=True)
        db_host, db_port = db.rsplit(":", 1)
        return db_host, db_port

    def _environment(self, own_prefixes: tuple[str, ...], env: dict, **more: str) -> dict:
        """This environment without the host's own settings and fidesmail's, then `env` and `more`, with the
        venv's programs first on PATH."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith((*own_prefixes, "FIDESMAIL_"))}
        return {**clean, **env, **more, "PYTHONUNBUFFERED": "1",
                "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    def _run(self, program: str, *args: str, log: Path) -> subprocess.Popen:
        procs = self.__dict__.setdefault("_procs", [])
        with open(log, "ab") as out:
            proc = subprocess.Popen([str(self.venv / "bin" / program), *args], cwd=self.workdir, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.__dict__.get("_procs", [])):
            stop(proc)


def pyenv_python(version: str) -> str:
    """A Python of this minor version: FIDESMAIL_E2E_PYTHON, pyenv's, or pythonX.Y on PATH."""
    candidates = [os.environ.get("FIDESMAIL_E2E_PYTHON"),
                  *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")),
                          reverse=True),
                  shutil.which(f"python{version}")]  # last: a pyenv shim on PATH may not run that version at all
    wanted = tuple(int(part) for part in version.split("."))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and subprocess.run(
                [candidate, "-c", f"import sys; sys.exit(sys.version_info[:2] != {wanted!r})"],
                capture_output=True).returncode == 0:
            return candidate
    raise Missing(f"Python {version} is needed: install it (e.g. `pyenv install {version}`) or set "
                  "FIDESMAIL_E2E_PYTHON")


def cache_dir() -> Path:
    return Path(os.environ.get("FIDESMAIL_E2E_CACHE") or os.path.expanduser("~/.cache/fidesmail-e2e"))


def cached_venv(name: str, python: Callable[[], str], *pip_args: str) -> tuple[Path, float | None]:
    """The venv `name` in the cache, built once with `pip install *pip_args` by the interpreter `python()`
    names, and how long building it took this time (None when it was already there)."""
    venv = cache_dir() / name
    marker = venv / ".complete"
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build it once
        if marker.exists():
            return venv, None
        shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
        started = time.monotonic()
        subprocess.run([python(), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", *pip_args], check=True)
        marker.write_text(f"pip install {' '.join(pip_args)}\n")
        return venv, time.monotonic() - started


def install_adapter(venv: Path, adapter_dir: Path) -> None:
    """pip install an adapter and the package it depends on (integrations/sidecar) as a deployment would (not
    editable: the .pth goes to site-packages)."""
    sidecar = adapter_dir.parent / "sidecar"
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--force-reinstall", str(sidecar), str(adapter_dir)], check=True)


@contextlib.contextmanager
def postgres(database: str) -> Iterator[str]:
    """A throwaway PostgreSQL server (tests/pg.py) with an empty database of this name; "127.0.0.1:port"."""
    try:
        server = PostgresServer()
    except PostgresError as exc:
        raise Missing(f"{exc} (or set FIDESMAIL_TEST_POSTGRES_BIN to their directory)") from None
    with server:
        name = server.create_database()
        server._admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{database}"')
        yield f"127.0.0.1:{server.port}"


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
        wait_for("redis-server", pong, 20, proc, log)
        yield port
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def adapter_venv(make_venv: Callable[[], tuple[Path, float | None]], adapter_dir: Path) -> tuple[Path, float | None,
                                                                                                   float]:
    """The host's cached venv with the adapter (and fidesmail_sidecar) installed: (venv, seconds it took to build
    this time or None, seconds the install took). Missing: the test fails saying what is missing."""
    import pytest

    try:
        venv, built_in = make_venv()
        started = time.monotonic()
        install_adapter(venv, adapter_dir)
    except Missing as missing:
        pytest.fail(str(missing))
    return venv, built_in, time.monotonic() - started


@contextlib.contextmanager
def host_running(make_host: Callable[[str, int, str, dict], VenvProcesses], database: Callable, fidesmail,
                 capsys) -> Iterator[tuple[VenvProcesses, float]]:
    """`make_host(db, redis_port, redis_password, env)` started on a throwaway PostgreSQL (`database()`) and Redis,
    with FIDESMAIL_URL and an email:send token for `fidesmail`: (the host, seconds it took to start). Stopped
    afterwards; a log of it that holds a traceback is printed."""
    from tests.adapter_sidecar import mint_send_token

    redis_password = "e2e-" + os.urandom(8).hex()
    env = {"FIDESMAIL_URL": fidesmail.url, "FIDESMAIL_TOKEN": mint_send_token(fidesmail)}
    with database() as db, redis(redis_password) as redis_port:
        host = make_host(db, redis_port, redis_password, env)
        try:
            started = time.monotonic()
            host.start()
            yield host, time.monotonic() - started
        finally:
            host.stop()
            with capsys.disabled():
                for log in (host.web_log, host.worker_log):
                    if log.exists() and "Traceback" in log.read_text(errors="replace"):
                        print(f"\n--- {log.name} (has a traceback) ---\n{tail(log, 40)}")
