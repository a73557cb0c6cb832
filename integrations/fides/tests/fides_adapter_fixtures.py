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
from recording_proxy import RecordingProxy  # noqa: E402
from tests.adapter_sidecar import fidesmail, hooked_host, mailgun, send_token  # noqa: E402, F401


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
    with hooked_host(fidesmail_fides, "fides", stub_dir, adapter_env, monkeypatch) as load:
        yield load
