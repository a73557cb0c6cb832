"""Fixtures: a real fidesmail (`python app.py`) on the Mailgun fake, and the stand-in fidesops hooked.

Not a conftest.py: a second conftest.py in one run would take the module name of the repository's.
Test modules import these.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Importing adapter_support puts the adapter (src/) and the repository (fidesmail's tests/) on sys.path.
import adapter_support  # noqa: E402, F401, I001

import fidesmail_fidesops  # noqa: E402
import stub_fidesops  # noqa: E402
from fidesmail_fidesops import dispatch, hook  # noqa: E402
from tests.support import CONFIG, Server, token_for  # noqa: E402
from tests.mailgun_fake import MailgunFake  # noqa: E402

DOMAIN = CONFIG["details"]["domain"]
MAILGUN_KEY = "key-adapter-test"


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
    monkeypatch.syspath_prepend(str(stub_dir))
    installed = {}

    def install(env=None):
        fidesmail_fidesops.install(adapter_env if env is None else env)
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
        if name.split(".")[0] in ("fidesops", "celery"):
            del sys.modules[name]
