"""fidesops' own email tests, replayed over HTTP: one `python app.py` for the package, two test Mailguns.

fidesops' fixtures become HTTP calls: `email_config` POSTs the config its fixture created and PUTs its
Mailgun key; `generate_auth_header(scopes)` is a signed token with those scopes, as
`flask token create --scope ...` makes. Every test starts from an empty service.
"""

from __future__ import annotations

import base64
import uuid

import pytest
import requests

from tests.mailgun_fake import MailgunFake
from tests.support import SECRET, Server, token_for

V1_URL_PREFIX = "/api/v1"
EMAIL_CONFIG = "/email/config"
EMAIL_BY_KEY = "/email/config/{config_key}"
EMAIL_SECRETS = "/email/config/{config_key}/secret"
EMAIL_SEND = "/email/send"

# fidesops' scope names are fidesmail's (contract section 3).
EMAIL_CREATE_OR_UPDATE = "email:create_or_update"
EMAIL_READ = "email:read"
EMAIL_DELETE = "email:delete"
EMAIL_SEND_SCOPE = "email:send"

# The domains and Mailgun keys fidesops' fixtures and payloads use.
FIXTURE_KEY = "12984r70298r"
DOMAINS = {"some.domain": FIXTURE_KEY, "my.mailgun.domain": "1345234524"}


class Api:
    """fidesops' TestClient, over real HTTP to the fidesmail process."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def request(self, method: str, url: str, headers=None, **kwargs) -> requests.Response:
        return self.session.request(method, self.base_url + url, headers=headers or {}, timeout=30,
                                    allow_redirects=False, **kwargs)

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)

    def put(self, url, **kwargs):
        return self.request("PUT", url, **kwargs)

    def patch(self, url, **kwargs):
        return self.request("PATCH", url, **kwargs)

    def delete(self, url, **kwargs):
        return self.request("DELETE", url, **kwargs)


def auth_header(scopes) -> dict:
    return {"Authorization": f"Bearer {token_for(*scopes)}"}


def basic_auth(recorded) -> tuple[str, str]:
    """The (user, password) a request to the test Mailgun carried."""
    scheme, _, encoded = recorded.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


@pytest.fixture(scope="session")
def mailgun():
    """The test Mailgun standing in for https://api.mailgun.net."""
    with MailgunFake(domains=DOMAINS) as fake:
        yield fake


@pytest.fixture(scope="session")
def mailgun_eu():
    """The test Mailgun standing in for https://api.eu.mailgun.net."""
    with MailgunFake(domains=DOMAINS) as fake:
        yield fake


@pytest.fixture(scope="session")
def fidesmail(tmp_path_factory, mailgun, mailgun_eu):
    """`python app.py` on an empty config tree, sending to the test Mailguns."""
    home = tmp_path_factory.mktemp("fidesops-compat")
    (home / "config" / "email").mkdir(parents=True)
    server = Server({"FIDESMAIL_CONFIG_DIR": str(home / "config"),
                     "FIDESMAIL_INSTANCE_DIR": str(home / "instance"),
                     "FIDESMAIL_SECRET_KEY": SECRET,
                     "FIDESMAIL_MAILGUN_BASE_URL": mailgun.base_url,
                     "FIDESMAIL_MAILGUN_EU_BASE_URL": mailgun_eu.base_url,
                     "FIDESMAIL_MAILGUN_RETRIES": "0"}, home).start()
    server.config_dir = home / "config"
    server.instance_dir = home / "instance"
    yield server
    assert server.stop() == 0


@pytest.fixture
def api_client(fidesmail, mailgun, mailgun_eu) -> Api:
    """A client of a service with no configs, and test Mailguns that saw nothing."""
    client = Api(fidesmail.url)
    everything = auth_header([EMAIL_READ, EMAIL_DELETE])
    listed = client.get(V1_URL_PREFIX + EMAIL_CONFIG, headers=everything, params={"size": 100})
    assert listed.status_code == 200, listed.text
    for item in listed.json()["items"]:
        gone = client.delete((V1_URL_PREFIX + EMAIL_BY_KEY).format(config_key=item["key"]), headers=everything)
        assert gone.status_code == 204, gone.text
    for fake in (mailgun, mailgun_eu):
        fake.reset()
        fake.domains = dict(DOMAINS)
    return client


@pytest.fixture
def generate_auth_header():
    return auth_header


@pytest.fixture
def email_config(api_client) -> dict:
    """fidesops' `email_config` fixture: key my_email_config, domain some.domain, its Mailgun key set."""
    config = {"name": str(uuid.uuid4()), "key": "my_email_config", "service_type": "mailgun",
              "details": {"api_version": "v3", "domain": "some.domain", "is_eu_domain": False}}
    headers = auth_header([EMAIL_CREATE_OR_UPDATE])
    created = api_client.post(V1_URL_PREFIX + EMAIL_CONFIG, headers=headers, json=config)
    assert created.status_code == 200, created.text
    secret = api_client.put((V1_URL_PREFIX + EMAIL_SECRETS).format(config_key="my_email_config"), headers=headers,
                            json={"mailgun_api_key": FIXTURE_KEY})
    assert secret.status_code == 200, secret.text
    return config
