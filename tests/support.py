"""What tests share besides fixtures: the sample config, tokens, and the server as a real process."""

from __future__ import annotations

import os
import random
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


# Ports for the processes tests start, below Linux's ephemeral range (32768-60999): a port the kernel
# picked for bind(0) is free again once closed, and any outgoing connection of any process may take
# it before the server binds it (with tests on several xdist workers, it did). Each worker has its own
# slice, and a process never hands out the same port twice.
_PORTS = range(20000, 32768)
_next_port: list[int] = []


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, for a process this test starts."""
    if not _next_port:
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        size = len(_PORTS) // workers
        first = _PORTS.start + worker * size
        _next_port.extend([first, size, random.randrange(size)])  # the slice, and where in it to go on
    first, size, offset = _next_port
    for step in range(size):
        port = first + (offset + step) % size
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _next_port[2] = offset + step + 1
        return port
    raise RuntimeError(f"no free port in {first}-{first + size - 1}")


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
        for _ in range(3):
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *self.args], cwd=self.cwd,
                                         env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    if f"port {self.port} on 127.0.0.1 is already in use" in self.log():
                        self._log.close()
                        self._move_to(free_port())  # taken since it was found free: another port, once more
                        break
                    raise RuntimeError(f"server exited with {self._exit()}:\n{self.log()}")
                try:
                    # Its own answer, not another process's on a port taken meanwhile: it is still running.
                    if requests.get(self.url + "/health", timeout=1).status_code == 200 and self.proc.poll() is None:
                        return self
                except requests.ConnectionError:
                    time.sleep(0.05)
            else:
                raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")
        raise RuntimeError(f"server found its port taken three times:\n{self.log()}")

    def _move_to(self, port: int) -> None:
        """Serve on `port` instead (in the settings and on the command line alike)."""
        old, self.port = str(self.port), port
        self.url = f"http://127.0.0.1:{port}"
        self.env["FIDESMAIL_PORT"] = str(port)
        self.args = [str(port) if arg == old else arg for arg in self.args]
        log_path, self.log_path = self.log_path, self.cwd / f"server-{port}.log"
        log_path.rename(self.log_path)

    def _exit(self) -> str:
        """How the process ended, in words (a signal named: a SIGTERM this test did not send came from elsewhere)."""
        code = self.proc.returncode
        return f"signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"status {code}"

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


def at_once(count: int, call) -> list:
    """`call(n)` for n in 0..count-1, from as many threads released together (a barrier); results in order."""
    import threading

    barrier = threading.Barrier(count)
    results = [None] * count

    def one(n):
        barrier.wait()
        results[n] = call(n)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def eventually(predicate, timeout=2.0):
    """Poll `predicate` until true; the contract gives changes on disk 2 s to show."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def wait_until(predicate, timeout: float = 10.0, what: str = "the condition", interval: float = 0.02):
    """The first truthy value of `predicate()`, polled until `timeout` seconds; AssertionError naming `what` after.

    The timeout is a bound for a loaded machine, not a measure: the wait ends as soon as the state is there."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:g} s (last value: {value!r})")
        time.sleep(interval)


class Counter:
    """Counts calls of a method of `owner` (and still makes them), so a test can wait for "n more of them"."""

    def __init__(self, owner, name: str):
        import threading

        self.count = 0
        self._lock = threading.Lock()
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            with self._lock:
                self.count += 1
            return original(*args, **kwargs)

        setattr(owner, name, counted)

    def wait_for_more(self, more: int, timeout: float = 10.0, what: str = "calls") -> int:
        """Wait until `more` calls happened after this one; the count then."""
        target = self.count + more
        return wait_until(lambda: self.count >= target and self.count, timeout, f"{more} more {what}")

    def wait_until_quiet(self, quiet: float, timeout: float = 10.0, what: str = "calls") -> int:
        """Wait until no call happened for `quiet` seconds; the count then. This is the one timed wait:
        it proves that nothing more happens, and `quiet` is as short as the property it proves allows."""
        deadline = time.monotonic() + timeout
        seen, since = self.count, time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never stopped for {quiet:g} s within {timeout:g} s ({self.count})")
            time.sleep(0.02)
            if self.count != seen:
                seen, since = self.count, time.monotonic()
        return seen


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
