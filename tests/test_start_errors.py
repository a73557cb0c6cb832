"""Starting as a newcomer does (contract section 2): a setting that cannot be used stops the start with
one line naming it and exit 1, no traceback; `--help` lists the settings; flags override for one run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fidesmail.runtime import settings
from tests.support import ROOT, SECRET, Server, free_port

pytestmark = pytest.mark.slow  # each test starts `python app.py` or gunicorn

BAD_SETTINGS = {
    "port not a number": ({"FIDESMAIL_PORT": "abc"}, [], "FIDESMAIL_PORT", "whole number"),
    "workers not a number": ({"WEB_CONCURRENCY": "two"}, [], "WEB_CONCURRENCY", "whole number"),
    "URL without a scheme": ({"FIDESMAIL_MAILGUN_BASE_URL": "127.0.0.1:9999"}, [], "FIDESMAIL_MAILGUN_BASE_URL",
                             "http://"),
    "SendGrid URL without a scheme": ({"FIDESMAIL_SENDGRID_BASE_URL": "api.sendgrid.com"}, [],
                                      "FIDESMAIL_SENDGRID_BASE_URL", "http://"),
    "Mandrill URL not a URL": ({"FIDESMAIL_MANDRILL_BASE_URL": "ftp://mandrill"}, [], "FIDESMAIL_MANDRILL_BASE_URL",
                               "https://"),
    "SES endpoint without a scheme": ({"FIDESMAIL_SES_ENDPOINT_URL": "127.0.0.1:4566"}, [],
                                      "FIDESMAIL_SES_ENDPOINT_URL", "http://"),
    "config dir that does not exist": ({"FIDESMAIL_CONFIG_DIR": "conifg"}, [], "FIDESMAIL_CONFIG_DIR",
                                       "not an existing folder"),
    "--port not a number": ({}, ["--port", "abc"], "--port", "whole number"),
    "--workers zero": ({}, ["--workers", "0"], "--workers", "between 1 and 64"),
    "timeout not a number": ({"FIDESMAIL_MAILGUN_TIMEOUT": "10s"}, [], "FIDESMAIL_MAILGUN_TIMEOUT", "a number"),
    "read-only not a flag": ({"FIDESMAIL_READ_ONLY": "maybe"}, [], "FIDESMAIL_READ_ONLY", "true or false"),
}


def clean_env(**extra) -> dict:
    """The environment with none of our settings, as on a newcomer's machine, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDESMAIL_") and k != "WEB_CONCURRENCY"}
    return {**env, **extra}


def start(cwd: Path, env: dict, args=(), command=None) -> subprocess.CompletedProcess:
    command = command or [sys.executable, str(ROOT / "app.py"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def assert_one_line(result, *words):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("fidesmail: cannot start: "), line
    for word in words:
        assert word in line, line
    return line


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_python_app_py_refuses_a_setting_in_one_line(tmp_path, case):
    env, args, named, words = BAD_SETTINGS[case]
    result = start(tmp_path, clean_env(**{"FIDESMAIL_PORT": str(free_port()), **env}), args)
    line = assert_one_line(result, named, words)
    assert line.index(named) < 40  # the setting comes first: what to change
    assert list(tmp_path.iterdir()) == []  # nothing made: no ./instance, no ./config


@pytest.mark.parametrize("case", sorted(case for case, (_, args, named, _) in BAD_SETTINGS.items()
                                        if not args and named != "WEB_CONCURRENCY"))
def test_gunicorn_refuses_a_setting_in_one_line(tmp_path, case):
    """`gunicorn app:app` (the Dockerfile's command) reads gunicorn.conf.py: the same line.

    Not WEB_CONCURRENCY: gunicorn itself reads it as it is imported, before any file of ours runs."""
    env, _, named, words = BAD_SETTINGS[case]
    env = {"FIDESMAIL_CONFIG_DIR": str(tmp_path), "FIDESMAIL_INSTANCE_DIR": str(tmp_path / "instance"),
           "FIDESMAIL_PORT": str(free_port()), **env}
    if named == "FIDESMAIL_CONFIG_DIR":
        env[named] = str(tmp_path / "conifg")
    gunicorn = [str(Path(sys.executable).with_name("gunicorn")), "app:app"]
    assert_one_line(start(ROOT, clean_env(**env), command=gunicorn), named, words)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def taken_port():
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize("how", ["setting", "flag"])
def test_a_taken_port_says_what_to_change(tmp_path, taken_port, how):
    env = clean_env(FIDESMAIL_PORT=str(taken_port) if how == "setting" else str(free_port()))
    args = ["--port", str(taken_port)] if how == "flag" else []
    line = assert_one_line(start(tmp_path, env, args), f"port {taken_port}", "already in use",
                           f"FIDESMAIL_PORT={taken_port + 1}", f"--port {taken_port + 1}")
    assert line.startswith(f"fidesmail: cannot start: {'FIDESMAIL_PORT' if how == 'setting' else '--port'}:")
    assert list(tmp_path.iterdir()) == []


def test_a_taken_port_under_gunicorn(tmp_path, taken_port):
    env = clean_env(FIDESMAIL_CONFIG_DIR=str(tmp_path), FIDESMAIL_INSTANCE_DIR=str(tmp_path / "instance"),
                    FIDESMAIL_PORT=str(taken_port), FIDESMAIL_SECRET_KEY=SECRET)
    result = start(ROOT, env, command=[str(Path(sys.executable).with_name("gunicorn")), "app:app"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    *before, last = result.stderr.splitlines()
    assert last == (f"fidesmail: cannot start: FIDESMAIL_PORT: port {taken_port} on 127.0.0.1 is already in use "
                    f"by another program; choose another one (e.g. FIDESMAIL_PORT={taken_port + 1})")
    assert [json.loads(line)["msg"] for line in before] == ["Starting gunicorn " + _gunicorn_version()]


def _gunicorn_version() -> str:
    import gunicorn

    return gunicorn.__version__


def test_help_lists_every_setting_and_the_flags(tmp_path):
    result = start(tmp_path, clean_env(), ["--help"])
    assert result.returncode == 0
    for setting in settings.SETTINGS:
        if setting.documented:
            assert setting.env in result.stdout
    for flag in ("--host", "--port", "--workers"):
        assert flag in result.stdout
    retention = next(line for line in result.stdout.splitlines() if "FIDESMAIL_RECORD_RETENTION_DAYS" in line)
    assert "(default: 730)" in retention  # CCPA asks 24 months
    assert list(tmp_path.iterdir()) == []  # --help starts nothing


def _workers_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_flags_override_the_settings_for_one_run(tmp_path, taken_port):
    """FIDESMAIL_PORT names a taken port and FIDESMAIL_HOST another address: the flags win."""
    (tmp_path / "config").mkdir()
    srv = Server({"FIDESMAIL_SECRET_KEY": SECRET}, tmp_path)
    srv.env.update(FIDESMAIL_PORT=str(taken_port), FIDESMAIL_HOST="127.0.0.2", WEB_CONCURRENCY="1")
    srv.args = ["--host", "127.0.0.1", "--port", str(srv.port), "--workers", "3"]
    srv.start()
    try:
        assert requests.get(srv.url + "/health", timeout=5).status_code == 200
        deadline = time.monotonic() + 10  # gunicorn spawns them one after another
        while len(_workers_of(srv.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_workers_of(srv.proc.pid)) == 3
    finally:
        assert srv.stop() == 0
