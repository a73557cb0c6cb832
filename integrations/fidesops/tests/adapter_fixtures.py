"""Fixtures: a real fidesmail (`python app.py`) on the Mailgun fake (tests/adapter_sidecar.py), and the
stand-in fidesops hooked.

Not a conftest.py: a second conftest.py in one run would take the module name of the repository's.
Test modules import these.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Importing adapter_support puts the adapter (src/) and the repository (fidesmail's tests/) on sys.path.
import adapter_support  # noqa: E402, F401, I001

import fidesmail_fidesops  # noqa: E402
import stub_fidesops  # noqa: E402
from tests.adapter_sidecar import fidesmail, hooked_host, mailgun, send_token  # noqa: E402, F401


@pytest.fixture
def adapter_env(fidesmail, send_token):
    """What a deployment sets on fidesops: FIDESMAIL_URL and an email:send token (retries kept short)."""
    return {"FIDESMAIL_URL": fidesmail.url, "FIDESMAIL_TOKEN": send_token, "FIDESMAIL_RETRIES": "1"}


@pytest.fixture
def stub_dir(tmp_path):
    return stub_fidesops.write(tmp_path / "site")


@pytest.fixture
def fidesops(stub_dir, adapter_env, mailgun, monkeypatch):
    """Hook installed, then the stand-in fidesops importable; returns a function that imports a module."""
    mailgun.reset()
    with hooked_host(fidesmail_fidesops, "fidesops", stub_dir, adapter_env, monkeypatch) as load:
        yield load
