"""Fixtures: a real fidesmail (`python app.py`) on the Mailgun fake (tests/adapter_sidecar.py), a recording
hop in front of it, and the stand-in fides hooked.

Not a conftest.py: a second conftest.py in one run would take the module name of the repository's.
Test modules import these.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Importing fides_adapter_support puts the adapter (src/) and the repository (tests/) on sys.path.
import fides_adapter_support  # noqa: E402, F401, I001

import fidesmail_fides  # noqa: E402
import stub_fides  # noqa: E402
from fidesmail_fides import dispatch, hook  # noqa: E402
from recording_proxy import RecordingProxy  # noqa: E402
from tests.adapter_sidecar import fidesmail, mailgun, send_token  # noqa: E402, F401


@pytest.fixture(scope="session")
def recorder(fidesmail):
    with RecordingProxy(fidesmail.url) as proxy:
        yield proxy


@pytest.fixture
def adapter_env(recorder, send_token):
    """What a deployment sets on fides: FIDESMAIL_URL and an email:send token (retries kept short)."""
    return {"FIDESMAIL_URL": recorder.url, "FIDESMAIL_TOKEN": send_token, "FIDESMAIL_RETRIES": "1"}


@pytest.fixture
def stub_dir(tmp_path):
    return stub_fides.write(tmp_path / "site")


@pytest.fixture
def fides(stub_dir, adapter_env, mailgun, recorder, monkeypatch):
    """Hook installed, then the stand-in fides importable; returns a function that imports a module."""
    mailgun.reset()
    recorder.reset()
    monkeypatch.syspath_prepend(str(stub_dir))
    installed = {}

    def install(env=None):
        fidesmail_fides.install(adapter_env if env is None else env)
        installed["yes"] = True

    def load(name: str):
        if not installed:
            install()
        __import__(name)
        return sys.modules[name]

    load.install = install
    yield load
    hook.uninstall()
    dispatch.configure({})
    for name in list(sys.modules):
        if name.split(".")[0] in ("fides", "celery"):
            del sys.modules[name]
