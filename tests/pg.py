"""A private, throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temp dir,
127.0.0.1 on a free port. `python tests/pg.py` starts one by hand and prints its URL."""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

NOT_FOUND = "PostgreSQL binaries not found: install Debian's postgresql package"
BIN_ENV = "FIDESMAIL_TEST_POSTGRES_BIN"  # a bin dir to use instead of the newest /usr/lib/postgresql/*/bin
OS_USER = "postgres"  # initdb and postgres refuse to run as root
DB_USER = "postgres"

# A server whose data is thrown away: no durability (fsync off), TCP on loopback only, no Unix socket.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}

# Runs beside the server and stops it when the test process is gone however it ended (even
# SIGKILL): its stdin is a pipe whose only writer is the test process.
_WATCHDOG = """
import os, shutil, signal, sys, time
sys.stdin.buffer.read()
pid, base = int(sys.argv[1]), sys.argv[2]
for sig in (signal.SIGINT, signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        break
    for _ in range(100):
        time.sleep(0.1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
    else:
        continue
    break
shutil.rmtree(base, ignore_errors=True)
"""


class PostgresError(RuntimeError):
    """The server could not be set up (the message carries initdb's or the server's own words)."""


def _version(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def _usable(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "postgres"))


def find_bin_dir() -> Path | None:
    """The bin dir to use: $FIDESMAIL_TEST_POSTGRES_BIN, else the newest Debian one, else initdb on PATH."""
    if os.environ.get(BIN_ENV):
        candidates = [Path(os.environ[BIN_ENV])]
    else:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    return next((path for path in candidates if _usable(path)), None)


def missing_reason() -> str:
    """Why there is no server to start, for a skip message."""
    if os.environ.get(BIN_ENV):
        return f"{NOT_FOUND} (no initdb and postgres in {BIN_ENV}={os.environ[BIN_ENV]})"
    return NOT_FOUND


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _temp_root() -> str | None:
    """/dev/shm when it has room: a database copied per test costs ~10 ms in memory, up to 250 ms on disk."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= 1 << 30
    return "/dev/shm" if roomy and os.access("/dev/shm", os.W_OK | os.X_OK) else None


def _os_user() -> dict:
    """subprocess keywords that run a command as the postgres user when we are root (made if missing)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:  # binaries copied in without the package, which makes the user
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", OS_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(OS_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class PostgresServer:
    """One postgres process on its own temp data dir; `with` or start()/stop(), which always cleans up."""

    def __init__(self, bin_dir: Path | None = None):
        self.bin_dir = bin_dir or find_bin_dir()
        if self.bin_dir is None:
            raise PostgresError(missing_reason())
        self.port: int | None = None
        self.base: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self._admin: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._names = itertools.count(1)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL of one database of this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """The same database as a libpq connection string (psycopg.connect, psql)."""
        return f"host=127.0.0.1 port={self.port} user={DB_USER} dbname={database}"

    def start(self, timeout: float = 60) -> PostgresServer:
        run_as = _os_user()
        env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
        self.base = Path(tempfile.mkdtemp(prefix="fidesmail-pg-", dir=_temp_root()))
        try:
            if run_as:
                os.chown(self.base, run_as["user"], run_as["group"])
            done = subprocess.run(
                [self.bin_dir / "initdb", "-D", self.data_dir, "-U", DB_USER, "-A", "trust", "-E", "UTF8",
                 "--no-locale", "--no-sync"], cwd=self.base, env=env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, **run_as)
            if done.returncode != 0:
                raise PostgresError(f"initdb failed (exit {done.returncode}): {done.stdout}{done.stderr}")
            for _ in range(5):  # another process may take the free port before the server binds it
                if self._launch(env, run_as, timeout):
                    break
            else:
                raise PostgresError(f"no free port could be bound:\n{self._log_tail()}")
            self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(self.proc.pid), str(self.base)],
                                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                              start_new_session=True)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, env: dict, run_as: dict, timeout: float) -> bool:
        """Start postgres on a free port and wait until it answers; False when the port was taken."""
        self.port = free_port()
        settings = [f"-c{name}={value}" for name, value in SETTINGS.items()]
        with open(self.log_path, "wb") as log:  # truncated per try, so a failure shows this try's words
            self.proc = subprocess.Popen([self.bin_dir / "postgres", "-D", self.data_dir, "-p", str(self.port),
                                          *settings], cwd=self.base, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **run_as)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log_tail()
                if "could not bind" in tail or "already in use" in tail:
                    return False
                raise PostgresError(f"postgres exited with {self.proc.returncode}:\n{tail}")
            try:
                self._admin = psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=2)
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise PostgresError(f"postgres did not accept connections within {timeout} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def create_database(self, template: str = "template1") -> str:
        """A new empty database (copied from `template`); returns its name."""
        name = f"test_{next(self._names)}"
        with self._lock:
            self._admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever connections a test left open to it."""
        with self._lock:
            self._admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self, timeout: float = 15) -> None:
        """Fast shutdown (clients are disconnected), SIGKILL past `timeout`; the temp dir is removed."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._watchdog is not None:  # first, so it can never signal a reused pid
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog.stdin.close()
            self._watchdog = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)


if __name__ == "__main__":
    with PostgresServer() as server:
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        print(server.url(), "(Ctrl-C stops it)", flush=True)
        signal.sigwait(stop_signals)
