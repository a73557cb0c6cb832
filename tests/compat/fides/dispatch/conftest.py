"""fides' dispatch tests run on their own service: tests/compat's, also sending to the test SendGrid and SES
(tests/compat/fides/conftest.py's dispatch_fidesmail), every stand-in cleared before each test.

The service and its test SES live as long as this package's tests: moto keeps its state per process, so a
second SES stand-in started later in the same xdist worker (tests/test_standins_ses.py and others) must not
meet this one still running."""

from __future__ import annotations

import pytest

from tests.support import SECRET, Server


@pytest.fixture(scope="package")
def ses():
    """The test SES (moto) of the dispatch tests: it takes test@test.com as a sender."""
    from tests.standins.ses import SesStandin

    with SesStandin(verified=["test@test.com"]) as standin:
        yield standin


@pytest.fixture(scope="package")
def dispatch_fidesmail(tmp_path_factory, mailgun, mailgun_eu, sendgrid, ses):
    """tests/compat's `python app.py`, also sending to the test SendGrid and SES (the dispatch tests' service)."""
    home = tmp_path_factory.mktemp("fides-dispatch")
    (home / "config" / "email").mkdir(parents=True)
    server = Server({"FIDESMAIL_CONFIG_DIR": str(home / "config"), "FIDESMAIL_INSTANCE_DIR": str(home / "instance"),
                     "FIDESMAIL_SECRET_KEY": SECRET, "FIDESMAIL_MAILGUN_BASE_URL": mailgun.base_url,
                     "FIDESMAIL_MAILGUN_EU_BASE_URL": mailgun_eu.base_url, "FIDESMAIL_MAILGUN_RETRIES": "0",
                     "FIDESMAIL_SENDGRID_BASE_URL": sendgrid.base_url, "FIDESMAIL_SES_ENDPOINT_URL": ses.base_url,
                     # fides' dispatch has no such limit, and its tests send many codes to one address.
                     "FIDESMAIL_VERIFICATION_LIMIT": "0"},
                    home).start()
    server.config_dir, server.instance_dir = home / "config", home / "instance"
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="package")
def fidesmail(dispatch_fidesmail):
    return dispatch_fidesmail


@pytest.fixture(autouse=True)
def nothing_received(api_client, sendgrid, ses):
    sendgrid.reset()
    ses.reset()
