"""fides' dispatch tests run on their own service: tests/compat's, also sending to the test SendGrid and SES
(tests/compat/fides/conftest.py's dispatch_fidesmail), every stand-in cleared before each test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fidesmail(dispatch_fidesmail):
    return dispatch_fidesmail


@pytest.fixture(autouse=True)
def nothing_received(api_client, sendgrid, ses):
    sendgrid.reset()
    ses.reset()
