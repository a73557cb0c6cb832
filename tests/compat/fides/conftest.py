"""fides 2.78.2's own messaging endpoint tests, replayed over HTTP against the package's `python app.py`.

The server and client are tests/compat's (one process for fidesops' and fides' ports). fides'
fixtures become HTTP calls; `generate_auth_header(scopes=[...])` is a token signed with the
service's key, as `flask token create --scope ...` signs it.
"""

from __future__ import annotations

import time

import pytest

from fidesmail.web import auth
from tests.support import SECRET, token_for

# fides' src/fides/common/api/v1/urn_registry.py
V1_URL_PREFIX = "/api/v1"
BASIC_MESSAGING_TEMPLATES = "/messaging/templates"
MESSAGING_TEMPLATE_DEFAULT_BY_TEMPLATE_TYPE = "/messaging/templates/default/{template_type}"
MESSAGING_TEMPLATE_BY_ID = "/messaging/templates/{template_id}"
MESSAGING_CONFIG = "/messaging/config"
MESSAGING_SECRETS = "/messaging/config/{config_key}/secret"
MESSAGING_BY_KEY = "/messaging/config/{config_key}"
MESSAGING_DEFAULT = "/messaging/default"
MESSAGING_ACTIVE_DEFAULT = "/messaging/default/active"
MESSAGING_DEFAULT_SECRETS = "/messaging/default/{service_type}/secret"
MESSAGING_DEFAULT_BY_TYPE = "/messaging/default/{service_type}"
MESSAGING_TEST = "/messaging/test/{service_type}"

# fides' src/fides/common/api/scope_registry.py: the same names in fidesmail's tokens.
MESSAGING_CREATE_OR_UPDATE = auth.MESSAGING_CREATE_OR_UPDATE
MESSAGING_DELETE = auth.MESSAGING_DELETE
MESSAGING_READ = auth.MESSAGING_READ
MESSAGING_TEMPLATE_UPDATE = auth.MESSAGING_TEMPLATE_UPDATE

# fides' MessagingActionType values used by the tests.
SUBJECT_IDENTITY_VERIFICATION = "subject_identity_verification"
CONSENT_REQUEST_EMAIL_FULFILLMENT = "consent_request_email_fulfillment"


def auth_header(scopes) -> dict:
    """fides' generate_auth_header: a token carrying exactly `scopes`.

    fidesmail's CLI mints no token without a scope; fides' tests use one (a client with no scopes),
    so that one is signed here as `flask token create` signs, carrying none."""
    if not scopes:
        token = auth._serializer((SECRET,)).dumps({"scopes": [], "exp": int(time.time()) + 3600})
    else:
        token = token_for(*scopes)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def generate_auth_header():
    return auth_header


@pytest.fixture
def api_client(api_client):
    """tests/compat's client (a service without configs), and no messaging template in the tree: every type
    set to fides' default wording, which is no file."""
    from fidesmail.content.messaging_templates import TEMPLATE_TYPES

    reset = [{"type": template_type, "content": {"subject": None, "body": None}} for template_type in TEMPLATE_TYPES]
    answer = api_client.put(V1_URL_PREFIX + BASIC_MESSAGING_TEMPLATES, json=reset,
                            headers=auth_header([MESSAGING_TEMPLATE_UPDATE]))
    assert answer.status_code == 200 and not answer.json()["failed"], answer.text
    return api_client


@pytest.fixture
def templates_dir(fidesmail):
    """The folder of the server's tree where fides' messaging templates are files."""
    return fidesmail.config_dir / "templates" / "messaging"


@pytest.fixture
def messaging_template_subject_identity_verification(api_client) -> dict:
    """fides' fixture of that name, set through the API: a subject identity verification template (fides links
    it to a property, a fides Plus feature fidesmail has not: see the tests that read it)."""
    template = {"type": SUBJECT_IDENTITY_VERIFICATION, "content": {
        "subject": "Here is your code __CODE__",
        "body": "Use code __CODE__ to verify your identity, you have __MINUTES__ minutes!"}}
    answer = api_client.put(V1_URL_PREFIX + BASIC_MESSAGING_TEMPLATES, json=[template],
                            headers=auth_header([MESSAGING_TEMPLATE_UPDATE]))
    assert answer.status_code == 200 and answer.json()["failed"] == [], answer.text
    return {"id": SUBJECT_IDENTITY_VERIFICATION, **template}
