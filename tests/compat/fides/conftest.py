"""fides 2.78.2's own messaging endpoint tests, replayed over HTTP against the package's `python app.py`.

The server and client are tests/compat's (one process for fidesops' and fides' ports). fides'
fixtures become HTTP calls; `generate_auth_header(scopes=[...])` is a token signed with the
service's key, as `flask token create --scope ...` signs it.
"""

from __future__ import annotations

import time
import uuid

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

SENDGRID_KEY = "SG.fides-compat-test-key"  # the key the test SendGrid of the dispatch tests takes

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
def api_client(api_client, fidesmail):
    """tests/compat's client (a service without configs), no messaging template in the tree (every type set to
    fides' default wording, which is no file), and no messaging defaults (no messaging.yaml)."""
    from fidesmail.content.messaging_templates import TEMPLATE_TYPES

    reset = [{"type": template_type, "content": {"subject": None, "body": None}} for template_type in TEMPLATE_TYPES]
    answer = api_client.put(V1_URL_PREFIX + BASIC_MESSAGING_TEMPLATES, json=reset,
                            headers=auth_header([MESSAGING_TEMPLATE_UPDATE]))
    assert answer.status_code == 200 and not answer.json()["failed"], answer.text
    set_defaults_file(api_client, fidesmail, None)
    return api_client


def set_defaults_file(api_client, fidesmail, text: str | None) -> None:
    """messaging.yaml as a pull request leaves it (None: no file), served once this returns. fidesmail's
    stand-in for fides' `notifications.notification_service_type` setting (which type is active)."""
    path = fidesmail.config_dir / "messaging.yaml"
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(text)
    reloaded = api_client.post("/api/v1/reload", headers=auth_header(["email:create_or_update"]))
    assert reloaded.status_code == 200, reloaded.text


def opened_secrets(fidesmail, key: str) -> dict:
    """A config's secrets as the service opens them (fides' tests read `messaging_config.secrets`)."""
    from fidesmail.sealing import sealed_file
    from fidesmail.sealing.vault import Vault

    sealed = sealed_file.parse((fidesmail.config_dir / "secrets.sealed.yaml").read_bytes()).sealed
    vault = Vault(fidesmail.instance_dir / "seal.key")
    return {field: vault.open(sealed, key, field) for field in sorted(sealed.fields_of(key))}


def stored_config(fidesmail, key: str) -> dict | None:
    """A config's file in the tree (fides' tests read the row), None when there is none."""
    import yaml

    path = fidesmail.config_dir / "email" / f"{key}.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def create_config(api_client, body: dict, secrets: dict | None = None) -> dict:
    """fides' MessagingConfig.create (and set_secrets) as HTTP calls; the config as fides answers it."""
    headers = auth_header([MESSAGING_CREATE_OR_UPDATE])
    created = api_client.post(V1_URL_PREFIX + MESSAGING_CONFIG, headers=headers, json=body)
    assert created.status_code == 200, created.text
    if secrets is not None:
        url = (V1_URL_PREFIX + MESSAGING_SECRETS).format(config_key=created.json()["key"])
        sealed = api_client.put(url, headers=headers, json=secrets)
        assert sealed.status_code == 200, sealed.text
    return created.json()


@pytest.fixture
def messaging_config(api_client) -> dict:
    """fides' fixture: my_mailgun_messaging_config (some.domain), its Mailgun key set."""
    return create_config(api_client, {
        "name": str(uuid.uuid4()), "key": "my_mailgun_messaging_config", "service_type": "mailgun",
        "details": {"api_version": "v3", "domain": "some.domain", "is_eu_domain": False}},
        {"mailgun_api_key": "12984r70298r"})


@pytest.fixture
def messaging_config_twilio_email(api_client) -> dict:
    """fides' fixture: my_twilio_email_config. fides makes it without details; fidesmail's twilio_email configs
    need their From address (twilio_email_from), so it has one; its key is the one the test SendGrid takes."""
    return create_config(api_client, {
        "name": str(uuid.uuid4()), "key": "my_twilio_email_config", "service_type": "twilio_email",
        "details": {"twilio_email_from": "test@example.com"}}, {"twilio_api_key": SENDGRID_KEY})


@pytest.fixture
def messaging_config_mailchimp_transactional(api_client) -> dict:
    """fides' fixture (its `domain` detail, which fides' own API refuses, left out)."""
    return create_config(api_client, {
        "name": str(uuid.uuid4()), "key": "my_mailchimp_transactional_messaging_config",
        "service_type": "mailchimp_transactional", "details": {"email_from": "test@example.com"}},
        {"mailchimp_transactional_api_key": "12984r70298r"})


@pytest.fixture
def messaging_config_aws_ses(api_client) -> dict:
    """fides' fixture: my_aws_ses_config (us-west-2), its keys set."""
    return create_config(api_client, {
        "name": str(uuid.uuid4()), "key": "my_aws_ses_config", "service_type": "aws_ses",
        "details": {"aws_region": "us-west-2", "domain": "some.domain.com", "email_from": "test@test.com"}},
        {"auth_method": "secret_keys", "aws_access_key_id": "test-access-key",
         "aws_secret_access_key": "test-secret-key"})


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


@pytest.fixture(scope="session")
def sendgrid():
    """The test SendGrid of the dispatch tests (started only when one runs)."""
    from tests.standins.sendgrid import SendGridFake

    with SendGridFake([SENDGRID_KEY], verified_senders=["test@example.com"]) as fake:
        yield fake


def dispatch_message(api_client, action_type, to="test@email.com", body_params=None, **more):
    """fides' dispatch_message(db, action_type, to_identity, ...) as the fides adapter sends it."""
    body = {"action_type": action_type, "to": to, "body_params": body_params, **more}
    return api_client.post(V1_URL_PREFIX + "/email/send", headers=auth_header(["email:send"]), json=body)


def sent(mailgun) -> dict:
    """The one message the test Mailgun received: its form fields."""
    [seen] = mailgun.requests
    return {name: seen.field(name) for name in ("to", "subject", "html", "text")}
