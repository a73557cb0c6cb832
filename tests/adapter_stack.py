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
    """pip install an adapter as a deployment would (not editable: the .pth goes to site-packages)."""
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--force-reinstall", str(adapter_dir)], check=True)


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
