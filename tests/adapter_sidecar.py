"""What the fidesops and fides adapters' tests share: a real fidesmail (`python app.py`) on the Mailgun
fake, and a stand-in for the two things of Celery the adapters read.

Fixture functions here are imported by each adapter's own fixtures module (not a conftest.py: the
repository's tests/ has one, and a second in one run would take its module name).
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, ROOT, Server, token_for

SIDECAR_SRC = ROOT / "integrations" / "sidecar" / "src"  # fidesmail_sidecar, which both adapters depend on
DOMAIN = CONFIG["details"]["domain"]
MAILGUN_KEY = "key-adapter-test"


def sent_to(mailgun, address: str):
    """The messages Mailgun accepted for this address."""
    return [r for r in mailgun.sent if r.field("to") == address]


def await_email(mailgun, address: str, tag: str, timeout: float) -> tuple:
    """(the first message Mailgun accepted for this address with this o:tag, when it was seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in sent_to(mailgun, address) if r.field("o:tag") == tag]
        if found:
            return found[0], time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"no {tag} email for {address} at the Mailgun fake within {timeout} s")


def mint_send_token(fidesmail) -> str:
    """The README's command (`flask token create --scope email:send`), against this fidesmail's signing key."""
    done = subprocess.run([sys.executable, "-m", "flask", "token", "create", "--scope", "email:send", "--ttl", "3600"],
                          cwd=ROOT, env=fidesmail.env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def run_with_pth(tmp_path: Path, pth_file: Path, python_path: list[Path], script: str, env: dict) -> str:
    """Run `script` in a fresh interpreter whose site dir holds `pth_file` (as site-packages would), with
    `python_path` and fidesmail_sidecar importable: its output."""
    import os

    site_dir = tmp_path / "site-packages"
    site_dir.mkdir()
    (site_dir / pth_file.name).write_text(pth_file.read_text())
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_")}
    clean["PYTHONPATH"] = os.pathsep.join(str(path) for path in [*python_path, SIDECAR_SRC])
    done = subprocess.run([sys.executable, "-c", script, str(site_dir)], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@contextlib.contextmanager
def hooked_host(adapter: ModuleType, host: str, stub_dir: Path, env: dict, monkeypatch):
    """The adapter's hook installed (with `env`), then the stand-in host (`fides`, `fidesops`) importable from
    `stub_dir`: yields a function that imports one of its modules (and `.install(env)` to install it first
    with other settings). Afterwards the hook is off, the settings cleared and the host's modules forgotten."""
    monkeypatch.syspath_prepend(str(stub_dir))
    installed = {}

    def install(other_env=None):
        adapter.install(env if other_env is None else other_env)
        installed["yes"] = True

    def load(name: str):
        if not installed:
            install()
        __import__(name)
        return sys.modules[name]

    load.install = install
    try:
        yield load
    finally:
        importlib.import_module(adapter.__name__ + ".hook").uninstall()
        importlib.import_module(adapter.__name__ + ".dispatch").configure({})
        for name in list(sys.modules):
            if name.split(".")[0] in (host, "celery"):
                del sys.modules[name]


@pytest.fixture(scope="session")
def mailgun():
    with MailgunFake({DOMAIN: MAILGUN_KEY}) as fake:
        yield fake


@pytest.fixture(scope="session")
def fidesmail(tmp_path_factory, mailgun):
    """One fidesmail for the session, with one config and its Mailgun key."""
    home = tmp_path_factory.mktemp("fidesmail")
    (home / "config" / "email").mkdir(parents=True)
    srv = Server({"FIDESMAIL_CONFIG_DIR": str(home / "config"), "FIDESMAIL_INSTANCE_DIR": str(home / "instance"),
                  "FIDESMAIL_SECRET_KEY": "test-signing-key", "FIDESMAIL_MAILGUN_BASE_URL": mailgun.base_url,
                  "FIDESMAIL_MAILGUN_RETRIES": "0"}, home).start()
    admin = {"Authorization": f"Bearer {token_for()}"}
    requests.post(srv.url + "/api/v1/email/config", json=CONFIG, headers=admin, timeout=10).raise_for_status()
    requests.put(f"{srv.url}/api/v1/email/config/{CONFIG['key']}/secret", json={"mailgun_api_key": MAILGUN_KEY},
                 headers=admin, timeout=10).raise_for_status()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def send_token():
    return token_for("email:send")


# The two things of Celery the adapters read (`current_task`, the `before_task_publish` signal), and a
# publish that runs the task like a worker would: signal, message headers, then the task with its
# request made of those headers.
CELERY_MODULES = {
    "celery/__init__.py": '''
        """The two things of Celery the adapter reads, and a publish that runs the task like a worker."""
        import types
        import uuid

        from celery import signals

        current_task = None
        published = []  # (task name, headers) of every message


        def publish(task, kwargs, task_id=None, runs=1):
            """Like apply_async then a worker: signal, message headers, then run with request = headers."""
            global current_task
            headers = {"id": task_id or str(uuid.uuid4()), "task": task.name}
            signals.before_task_publish.send(sender=task.name, body=kwargs, headers=headers)
            published.append((task.name, dict(headers)))
            for _ in range(runs):  # runs > 1: the message delivered again (a retry, a lost worker)
                current_task = types.SimpleNamespace(request=types.SimpleNamespace(**headers))
                try:
                    task(**kwargs)
                finally:
                    current_task = None
    ''',
    "celery/signals.py": '''
        class Signal:
            def __init__(self):
                self.receivers = []

            def connect(self, receiver, weak=True):
                self.receivers.append(receiver)

            def send(self, sender=None, **named):
                return [(r, r(sender=sender, **named)) for r in list(self.receivers)]


        before_task_publish = Signal()
    ''',
}


def write_modules(directory: Path, modules: dict[str, str]) -> Path:
    """Write stand-in modules (relative path -> source) under `directory`; returns it (put it on sys.path)."""
    for relative, source in modules.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return directory
